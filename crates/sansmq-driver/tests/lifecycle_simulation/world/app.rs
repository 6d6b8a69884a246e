//! The application: its commands at random times, as a program using the client makes them.

use std::collections::HashSet;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter, SubscriptionId};
use sansmq::{MqttString, TopicFilter, TopicName};
use sansmq_driver::ResubscribePolicy;

use super::World;
use crate::broker::{DENIED, ECHO};
use crate::invariants::{Kind, Violation};

impl World {
    pub(super) fn command(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let v5 = self.protocol.is_v5();
        match self.rng.below(100) {
            0..=7 if v5 => self.request()?,
            0..=39 => {
                let qos = *self
                    .rng
                    .pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]);
                let waiter = self.waiter(Kind::Publish(qos));
                let names: &[&str] = if v5 {
                    &[
                        "a/x", "a/x/y", "b/y", "c", "d/e/f", "t", "deny/p", "quota/q",
                    ]
                } else {
                    &["a/x", "a/x/y", "b/y", "c", "d/e/f", "t"]
                };
                let name = *self.rng.pick(names);
                let topic = TopicName::try_from(name).expect("valid topic");
                let payload = Bytes::copy_from_slice(&waiter.to_le_bytes());
                self.log(|| format!("app: publish #{waiter} {qos:?} to {name}"));
                self.count("publishes");
                // A barrier holds every SUBSCRIBE, the restore too, until its PUBACK: the
                // restore check looks for the restore right at CONNACK, so barriers are used
                // only where nothing is restored.
                let barrier = self.sc.resubscribe == ResubscribePolicy::Never;
                let mut expiry = None;
                let mut user_property = false;
                let published = if barrier && qos == QoS::AtLeastOnce && self.rng.percent(20) {
                    self.sup
                        .publish_barrier(now, topic, payload, waiter)
                        .map(Some)
                } else if v5 && self.rng.percent(50) {
                    let mut properties = Properties::new();
                    properties.push_user_property(string("n"), string(&waiter.to_string()));
                    user_property = true;
                    if self.rng.percent(50) {
                        expiry = Some(self.rng.range(1, 30) as u32);
                        properties.message_expiry_interval = expiry;
                    }
                    self.count("publishes with properties");
                    self.sup.publish_with_properties(
                        now, topic, qos, false, payload, properties, waiter,
                    )
                } else {
                    self.sup.publish(now, topic, qos, false, payload, waiter)
                };
                if v5 {
                    self.v5
                        .published(waiter, now, name, qos, expiry, user_property);
                }
                if let Err(rejected) = published {
                    self.log(|| format!("rejected #{waiter}: {}", rejected.error));
                    self.count("publishes rejected");
                    self.answer_rejected(rejected.waiter, Kind::Publish(qos))?;
                }
            }
            40..=54 => {
                let waiter = self.waiter(Kind::Subscribe);
                let filters: Vec<SubscribeFilter> = (0..self.rng.range(1, 2))
                    .map(|_| SubscribeFilter::new(self.filter(), QoS::ExactlyOnce))
                    .collect();
                let mut seen = HashSet::new();
                let filters: Vec<_> = filters
                    .into_iter()
                    .filter(|f| seen.insert(f.filter.to_string()))
                    .collect();
                let names = filters.iter().map(|f| f.filter.to_string()).collect();
                let id = (self.protocol.is_v5() && self.rng.percent(30))
                    .then(|| self.rng.range(1, 1000) as u32);
                self.log(|| format!("app: subscribe #{waiter} {filters:?} identifier {id:?}"));
                self.v5.subscribed(waiter, names, id);
                let subscribed = if let Some(id) = id {
                    let mut properties = Properties::new();
                    properties.push_subscription_identifier(
                        SubscriptionId::new(id).expect("a valid identifier"),
                    );
                    self.sup
                        .subscribe_with_properties(now, filters, properties, waiter)
                } else {
                    self.sup.subscribe(now, filters, waiter)
                };
                if let Err(rejected) = subscribed {
                    self.answer_rejected(rejected.waiter, Kind::Subscribe)?;
                }
            }
            55..=64 => {
                let waiter = self.waiter(Kind::Unsubscribe);
                let filters = vec![self.filter()];
                self.log(|| format!("app: unsubscribe #{waiter} {filters:?}"));
                let names = filters.iter().map(ToString::to_string).collect();
                self.v5.unsubscribed(waiter, names);
                if let Err(rejected) = self.sup.unsubscribe(now, filters, waiter) {
                    self.answer_rejected(rejected.waiter, Kind::Unsubscribe)?;
                }
            }
            65..=69 => {
                let waiter = self.waiter(Kind::Disconnect);
                let drain = self.rng.millis(0, 3_000);
                self.log(|| format!("app: disconnect #{waiter} drain {drain:?}"));
                self.sup.disconnect(now, drain, waiter);
                self.rotation.connect_answered();
            }
            70..=84 => {
                // Acknowledge the oldest messages received.
                let n = (self.rng.range(1, 3) as usize).min(self.unacked.len());
                for (key, number, started) in self.unacked.drain(..n).collect::<Vec<_>>() {
                    let accepted = self.sup.ack(now, key);
                    self.log(|| format!("app: ack message {number} ({key:?}): {accepted:?}"));
                    match accepted {
                        Ok(()) => {
                            self.count("acks");
                            if started.1 != self.unseen_connacks {
                                self.stale_acks.insert(key.id.get());
                            }
                            if started.0 != self.sessions_started {
                                return self.fail(format!(
                                    "ack of message {number} accepted though the broker \
                                     started a new session since it arrived"
                                ));
                            }
                            self.acked.insert(number);
                        }
                        Err(_) => self.count("acks refused"),
                    }
                }
            }
            _ => {
                // Connect now and then, and always when nothing is trying.
                if self.rng.percent(80) && (self.sup.is_connected() || self.current.is_some()) {
                    return Ok(());
                }
                let waiter = self.waiter(Kind::Connect);
                self.log(|| format!("app: connect #{waiter}"));
                // The attempts it starts are drained by the next settle.
                match self.sup.connect(now, waiter) {
                    Ok(()) => {
                        self.count("connects");
                        self.rotation.connect_called();
                        self.reconnect_at = None;
                    }
                    Err(rejected) => self.answer_rejected(rejected.waiter, Kind::Connect)?,
                }
            }
        }
        Ok(())
    }

    /// An MQTT 5.0 request: answered by the responder, refused, or left unanswered.
    fn request(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let qos = *self
            .rng
            .pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]);
        let waiter = self.waiter(Kind::Request);
        // Answered by the responder, by nobody, or refused.
        let name = match self.rng.below(4) {
            0 | 1 => format!("{ECHO}/{}", self.rng.below(3)),
            2 => "svc/void".to_owned(),
            _ => format!("{DENIED}svc"),
        };
        let topic = TopicName::try_from(name.as_str()).expect("valid topic");
        let payload = Bytes::copy_from_slice(&waiter.to_le_bytes());
        let mut properties = Properties::new();
        if self.rng.percent(50) {
            properties.push_user_property(string("request"), string(&waiter.to_string()));
        }
        self.log(|| format!("app: request #{waiter} {qos:?} to {name}"));
        self.count("requests");
        // The first request subscribes to the response topic, even one then refused (a full
        // queue): the subscription stays for the requests to come.
        self.v5.request_made();
        match self
            .sup
            .request(now, topic, qos, payload, properties, waiter)
        {
            Ok(()) => {
                self.v5.published(waiter, now, &name, qos, None, false);
                let deadline = now + self.sup.options().time_to_wait_limit();
                self.requests_due.insert((deadline, waiter));
                Ok(())
            }
            Err(rejected) => {
                self.log(|| format!("rejected #{waiter}: {}", rejected.error));
                self.answer_rejected(rejected.waiter, Kind::Request)
            }
        }
    }

    fn filter(&mut self) -> TopicFilter {
        let name = *self.rng.pick(&["a/#", "b/+", "c", "d/e/f"]);
        let name = if self.rng.percent(10) {
            format!("{DENIED}{name}")
        } else {
            name.to_owned()
        };
        TopicFilter::try_from(name).expect("valid filter")
    }

    pub(super) fn answer_rejected(&mut self, waiter: u64, kind: Kind) -> Result<(), Violation> {
        match self.ledger.answer(waiter, kind, false) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).expect("a valid string")
}
