//! The guarantees of MQTT 5.0 seeds, fed by the wiretaps on what the client writes and reads and
//! by what the application hears:
//!
//! - a message the broker refuses (PUBACK / PUBREC with a failure code) fails with exactly the
//!   broker's Reason Code and Reason String, and once the client has read the refusal it never
//!   sends the message again;
//! - the client never has more unacknowledged QoS 1/2 PUBLISHes on a connection than the
//!   broker's Receive Maximum for it (MQTT-3.3.4-9);
//! - a message fails as expired only once its Message Expiry Interval has passed, and only if it
//!   was never sent; one sent carries what is left of its interval;
//! - a request is answered by the response with its own Correlation Data (decoys on the response
//!   topic reach the application instead), times out no earlier than its time-to-wait, and fails
//!   with the broker's Reason Code when refused;
//! - a subscription the broker refuses fails with the filter and the broker's Reason Code;
//! - a server DISCONNECT ends the connection with that DISCONNECT's Reason Code.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::DisconnectReason;
use sansmq::packet::{Packet, Publish, QoS, ReasonCode};
use sansmq_driver::{Error, Message};

use crate::broker::{Cluster, DECOY, DENIED, ECHO, message_number, refusal};
use crate::invariants::Violation;

/// A message (or request) the application handed over.
#[derive(Debug)]
struct Published {
    at: Instant,
    topic: String,
    qos: QoS,
    /// Message Expiry Interval, in seconds.
    expiry: Option<u32>,
    /// Published with the User Property `n` = its number.
    user_property: bool,
}

/// Where the supervisor's own subscription to the response topic stands.
#[derive(Debug, PartialEq, Eq)]
enum ResponseSubscription {
    /// No request yet: the supervisor has not subscribed.
    None,
    /// Asked for and not answered yet: the SUBSCRIBEs carrying it, by packet id.
    Pending(HashSet<u16>),
    /// The client processed its SUBACK.
    Answered,
}

/// The library bugs this simulation found and still excuses (each marked LIBRARY BUG where it
/// is). Fixed since, and checked on every seed: an MQTT 5.0 CONNACK refusal's backoff, re-sends
/// over a smaller Receive Maximum, the ping timeout under a Server Keep Alive, and the
/// keep-alive counted from CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownBug {
    /// `subscription-identifier`: a restore leaves out a filter's Subscription Identifier. The
    /// core now restores each filter with the identifier it was last granted with, and a plain
    /// subscribe no longer joins a restore that asks for a former identifier. What is left is a
    /// case this check cannot decide: a subscribe whose waiter failed (tokens invalidated,
    /// time-to-wait) may still be granted, and replace the identifier, unseen by the check.
    SubscriptionIdentifier,
}

impl KnownBug {
    fn name(self) -> &'static str {
        match self {
            Self::SubscriptionIdentifier => "subscription-identifier",
        }
    }

    /// Whether this bug fails its seeds rather than being excused:
    /// `SANSMQ_LIFECYCLE_KNOWN_BUGS=all`, or a comma-separated list of names, to check a fix.
    pub(crate) fn fails(self) -> bool {
        std::env::var("SANSMQ_LIFECYCLE_KNOWN_BUGS").is_ok_and(|v| {
            v.split(',')
                .any(|name| name == "all" || name == self.name())
        })
    }
}

#[derive(Debug)]
pub(crate) struct Mqtt5Check {
    v5: bool,
    /// Whether the excused library bug fails ([`KnownBug::fails`]).
    subscription_identifier_bug_fails: bool,
    pub(crate) response_topic: String,
    time_to_wait: Duration,
    published: HashMap<u64, Published>,
    /// Message numbers the client has sent in a PUBLISH.
    produced: HashSet<u64>,
    /// Refusals the client has processed, by message number.
    refusals_read: HashMap<u64, ReasonCode>,
    /// The Correlation Data each request went out with, by request number.
    correlations: HashMap<u64, Bytes>,
    response_subscription: ResponseSubscription,
    /// The client processed a server DISCONNECT with this code: the connection's loss must say so.
    server_disconnect: Option<ReasonCode>,
    /// The filters of each application subscribe, by waiter.
    subscribes: HashMap<u64, Vec<String>>,
    /// The Subscription Identifier each application subscribe asked for, by waiter.
    subscription_ids: HashMap<u64, u32>,
    /// The filters of each application unsubscribe, by waiter.
    unsubscribes: HashMap<u64, Vec<String>>,
    /// The Subscription Identifier of each filter the application holds, as its last granted
    /// subscribe asked.
    held_ids: HashMap<String, u32>,
    /// Restore SUBSCRIBEs that left out a held filter's Subscription Identifier (see
    /// [`restored`](Self::restored)).
    pub(crate) restores_without_identifier: u64,
}

impl Mqtt5Check {
    pub(crate) fn new(v5: bool, response_topic: String, time_to_wait: Duration) -> Self {
        Self {
            v5,
            subscription_identifier_bug_fails: KnownBug::SubscriptionIdentifier.fails(),
            response_topic,
            time_to_wait,
            published: HashMap::new(),
            produced: HashSet::new(),
            refusals_read: HashMap::new(),
            correlations: HashMap::new(),
            response_subscription: ResponseSubscription::None,
            server_disconnect: None,
            subscribes: HashMap::new(),
            subscription_ids: HashMap::new(),
            unsubscribes: HashMap::new(),
            held_ids: HashMap::new(),
            restores_without_identifier: 0,
        }
    }

    /// The application published (or requested) message `number`.
    pub(crate) fn published(
        &mut self,
        number: u64,
        at: Instant,
        topic: &str,
        qos: QoS,
        expiry: Option<u32>,
        user_property: bool,
    ) {
        let topic = topic.to_owned();
        self.published.insert(
            number,
            Published {
                at,
                topic,
                qos,
                expiry,
                user_property,
            },
        );
    }

    /// A message reached the application: on the topic it was published to (Topic Aliases
    /// resolved), with the User Property its publisher gave it; a response (or decoy) on the
    /// response topic.
    pub(crate) fn message(
        &self,
        message: &Message,
        routed_ids: Option<&Vec<Vec<u32>>>,
    ) -> Result<(), Violation> {
        let number = message_number(&message.payload);
        // The Subscription Identifiers the broker stamped on a copy of it, unchanged.
        let mut ids: Vec<u32> = message
            .subscription_identifiers()
            .map(|id| id.get())
            .collect();
        ids.sort_unstable();
        if let Some(routed) = routed_ids.filter(|routed| !routed.contains(&ids)) {
            return Err(format!(
                "message {number} arrived with Subscription Identifiers {ids:?}, the broker \
                 sent it with {routed:?}"
            ));
        }
        let topic = message.topic.as_str();
        let (expected, user_property) = match self.published.get(&number) {
            _ if number & DECOY != 0 => (self.response_topic.as_str(), false),
            Some(published) if published.topic.starts_with(ECHO) => {
                (self.response_topic.as_str(), false)
            }
            Some(published) => (published.topic.as_str(), published.user_property),
            None => return Ok(()),
        };
        if topic != expected {
            return Err(format!(
                "message {number} arrived on {topic:?}, published to {expected:?}"
            ));
        }
        let users: Vec<_> = message
            .properties()
            .user_properties()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let own = number.to_string();
        let kept = users.iter().any(|(k, v)| *k == "n" && *v == own);
        if users.iter().any(|(k, v)| *k == "n" && *v != own) || kept != user_property {
            return Err(format!(
                "message {number} (published with its User Property: {user_property}) arrived \
                 with User Properties {users:?}"
            ));
        }
        Ok(())
    }

    /// A request was made: the supervisor subscribes to the response topic if it has not.
    pub(crate) fn request_made(&mut self) {
        if self.response_subscription == ResponseSubscription::None {
            self.response_subscription = ResponseSubscription::Pending(HashSet::new());
        }
    }

    /// The application subscribes (`waiter`) to `filters`, with Subscription Identifier `id`.
    pub(crate) fn subscribed(&mut self, waiter: u64, filters: Vec<String>, id: Option<u32>) {
        self.subscribes.insert(waiter, filters);
        if let Some(id) = id {
            self.subscription_ids.insert(waiter, id);
        }
    }

    pub(crate) fn unsubscribed(&mut self, waiter: u64, filters: Vec<String>) {
        self.unsubscribes.insert(waiter, filters);
    }

    /// An unsubscribe completed.
    pub(crate) fn completed_unsubscribe(&mut self, waiter: u64, result: &Result<(), Error>) {
        if let (Ok(()), Some(filters)) = (result, self.unsubscribes.get(&waiter)) {
            for filter in filters {
                self.held_ids.remove(filter);
            }
        }
    }

    /// The client sent a SUBSCRIBE restoring `filters` with `ids`: a filter the application
    /// subscribed to with a Subscription Identifier must keep it, or the messages it matches
    /// arrive without the identifier the application dispatches them by.
    ///
    /// Counted, not failed, unless `SANSMQ_LIFECYCLE_KNOWN_BUGS` says so: see
    /// [`KnownBug::SubscriptionIdentifier`] for what is left (seed 108 shows it).
    pub(crate) fn restored(&mut self, filters: &[String], ids: &[u32]) -> Result<(), Violation> {
        let dropped: Vec<_> = filters
            .iter()
            .filter_map(|f| self.held_ids.get_key_value(f))
            .filter(|(_, id)| !ids.contains(id))
            .collect();
        if dropped.is_empty() {
            return Ok(());
        }
        self.restores_without_identifier += 1;
        if !self.subscription_identifier_bug_fails {
            return Ok(());
        }
        Err(format!(
            "the restore SUBSCRIBE for {filters:?} carries Subscription Identifiers {ids:?}, \
             leaving out the application's {dropped:?}"
        ))
    }

    /// Whether a SUBSCRIBE the client sent (`packet_id`, `filters`) is the supervisor's own
    /// subscription to the response topic, not yet answered (it may be sent again on a later
    /// connection, as any unanswered SUBSCRIBE).
    pub(crate) fn is_response_subscribe(&mut self, packet_id: u16, filters: &[String]) -> bool {
        let ResponseSubscription::Pending(ids) = &mut self.response_subscription else {
            return false;
        };
        if filters != [self.response_topic.as_str()] {
            return false;
        }
        ids.insert(packet_id);
        true
    }

    /// The client wrote `publish` on a transport whose broker granted `receive_maximum`.
    pub(crate) fn sent(
        &mut self,
        now: Instant,
        publish: &Publish,
        unacknowledged: &mut HashMap<u16, u64>,
        receive_maximum: Option<u16>,
    ) -> Result<(), Violation> {
        let number = message_number(publish.payload());
        self.produced.insert(number);
        if let Some(code) = self.refusals_read.get(&number) {
            return Err(format!(
                "message {number} sent again after the broker refused it with {code:?}"
            ));
        }
        if let Some(id) = publish.packet_id {
            unacknowledged.insert(id.get(), number);
            if let Some(maximum) = receive_maximum {
                // A PUBLISH sent again at a reconnect counts as much as a new one.
                if unacknowledged.len() > usize::from(maximum) {
                    return Err(format!(
                        "{} QoS 1/2 PUBLISHes unacknowledged on one connection, the broker's \
                         Receive Maximum is {maximum} (MQTT-3.3.4-9): {unacknowledged:?}",
                        unacknowledged.len()
                    ));
                }
            }
        }
        let Some(published) = self.published.get(&number) else {
            return Ok(());
        };
        let properties = publish.properties();
        if let Some(correlation) = properties.correlation_data() {
            self.correlations.insert(number, correlation.clone());
        }
        if let Some(expiry) = published.expiry {
            let Some(sent) = properties.message_expiry_interval else {
                return Err(format!(
                    "message {number} lost its Message Expiry Interval ({expiry} s) on the wire"
                ));
            };
            let expires = published.at + Duration::from_secs(expiry.into());
            let left = expires.saturating_duration_since(now);
            let at_least = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            if sent > expiry || u64::from(sent) < at_least {
                return Err(format!(
                    "message {number} (expiry {expiry} s, {left:?} left) sent with a Message \
                     Expiry Interval of {sent} s"
                ));
            }
        }
        Ok(())
    }

    /// The client read `packet` (`processed`: the supervisor handles it, rather than discarding
    /// it in a requested close; `disconnecting`: a requested disconnect is under way).
    pub(crate) fn read(
        &mut self,
        packet: &Packet,
        processed: bool,
        disconnecting: bool,
        unacknowledged: &mut HashMap<u16, u64>,
    ) -> Result<(), Violation> {
        let (id, code, done) = match packet {
            Packet::PubAck(ack) => (ack.packet_id, ack.reason_code, true),
            Packet::PubRec(rec) => (rec.packet_id, rec.reason_code, rec.reason_code.is_error()),
            Packet::PubComp(comp) => (comp.packet_id, comp.reason_code, true),
            Packet::SubAck(suback) if processed => {
                if let ResponseSubscription::Pending(ids) = &self.response_subscription {
                    if ids.contains(&suback.packet_id.get()) {
                        self.response_subscription = ResponseSubscription::Answered;
                    }
                }
                return Ok(());
            }
            Packet::Disconnect(disconnect) if processed && !disconnecting => {
                self.server_disconnect = Some(disconnect.reason_code);
                return Ok(());
            }
            _ => return Ok(()),
        };
        if !done {
            return Ok(());
        }
        let Some(number) = unacknowledged.remove(&id.get()) else {
            return Ok(());
        };
        if code.is_error() && processed {
            let expected = self
                .published
                .get(&number)
                .and_then(|p| refusal(&p.topic).filter(|_| self.v5));
            if expected != Some(code) {
                return Err(format!(
                    "the client read a refusal {code:?} of message {number}, which the broker \
                     refuses with {expected:?}"
                ));
            }
            self.refusals_read.insert(number, code);
        }
        Ok(())
    }

    /// A publish completed.
    pub(crate) fn completed_publish(
        &self,
        now: Instant,
        waiter: u64,
        result: &Result<(), Error>,
    ) -> Result<(), Violation> {
        let Some(published) = self.published.get(&waiter) else {
            return Ok(());
        };
        let refused = refusal(&published.topic).filter(|_| self.v5);
        match result {
            Ok(()) if refused.is_some() && published.qos != QoS::AtMostOnce => Err(format!(
                "message {waiter} to {:?} completed Ok, but the broker refuses it with {refused:?}",
                published.topic
            )),
            Err(Error::PublishRefused(reason)) => {
                self.check_refusal(waiter, reason.reason_code, reason.reason_string())
            }
            Err(Error::Expired) => self.check_expired(now, waiter, published),
            _ => Ok(()),
        }
    }

    fn check_refusal(
        &self,
        number: u64,
        code: ReasonCode,
        reason_string: Option<&sansmq::MqttString>,
    ) -> Result<(), Violation> {
        let read = self.refusals_read.get(&number);
        if read != Some(&code) {
            return Err(format!(
                "message {number} failed as refused with {code:?}; the client read {read:?}"
            ));
        }
        let said = format!("refused: {code:?}");
        if reason_string.map(sansmq::MqttString::as_str) != Some(said.as_str()) {
            return Err(format!(
                "message {number}'s refusal lost the broker's Reason String: {reason_string:?}"
            ));
        }
        Ok(())
    }

    fn check_expired(
        &self,
        now: Instant,
        number: u64,
        published: &Published,
    ) -> Result<(), Violation> {
        let Some(expiry) = published.expiry else {
            return Err(format!(
                "message {number} failed as expired without a Message Expiry Interval"
            ));
        };
        let after = now - published.at;
        if after < Duration::from_secs(expiry.into()) {
            return Err(format!(
                "message {number} failed as expired {after:?} after it was published, its \
                 interval is {expiry} s"
            ));
        }
        if self.produced.contains(&number) {
            return Err(format!(
                "message {number} failed as expired, but it was sent (the broker may have it)"
            ));
        }
        Ok(())
    }

    /// A request completed; returns the number of the response the supervisor acknowledged.
    pub(crate) fn completed_request(
        &self,
        now: Instant,
        waiter: u64,
        result: &Result<Message, Error>,
    ) -> Result<Option<u64>, Violation> {
        match result {
            Ok(message) => {
                if message.topic.as_str() != self.response_topic {
                    return Err(format!(
                        "request {waiter} answered by a message on {:?}, not the response topic",
                        message.topic
                    ));
                }
                let correlation = message.properties().correlation_data();
                let sent = self.correlations.get(&waiter);
                if correlation.is_none() || correlation != sent {
                    return Err(format!(
                        "request {waiter} (sent with Correlation Data {sent:?}) answered by a \
                         response with {correlation:?}"
                    ));
                }
                let number = message_number(&message.payload);
                if number != waiter {
                    return Err(format!(
                        "request {waiter} answered by the response to {number}"
                    ));
                }
                Ok(message.ack_key().map(|_| number))
            }
            Err(Error::Timeout(_)) => {
                let at = self.published.get(&waiter).map(|p| p.at);
                match at {
                    Some(at) if now - at >= self.time_to_wait => Ok(None),
                    _ => Err(format!(
                        "request {waiter} timed out at {now:?}, made at {at:?}, time-to-wait {:?}",
                        self.time_to_wait
                    )),
                }
            }
            Err(Error::PublishRefused(reason)) => self
                .check_refusal(waiter, reason.reason_code, reason.reason_string())
                .map(|()| None),
            Err(_) => Ok(None),
        }
    }

    /// A subscribe completed: refused exactly where the broker refuses (filters under
    /// [`DENIED`]), with its Reason Code.
    pub(crate) fn completed_subscribe(
        &mut self,
        waiter: u64,
        result: &Result<Vec<QoS>, Error>,
    ) -> Result<(), Violation> {
        let Some(filters) = self.subscribes.get(&waiter) else {
            return Ok(());
        };
        // The broker answered (a refusal of some filters grants the others): each granted
        // filter now has the identifier this subscribe asked for, or none.
        let answered = matches!(result, Ok(_) | Err(Error::SubscribeRefused { .. }));
        if answered {
            let id = self.subscription_ids.get(&waiter);
            for filter in filters.iter().filter(|f| !f.starts_with(DENIED)) {
                match id {
                    Some(id) => self.held_ids.insert(filter.clone(), *id),
                    None => self.held_ids.remove(filter),
                };
            }
        }
        let denied = filters.iter().find(|f| f.starts_with(DENIED));
        match (result, denied) {
            (Ok(granted), None) if granted.len() == filters.len() => Ok(()),
            (Ok(granted), _) => Err(format!(
                "subscribe {waiter} to {filters:?} granted {granted:?}"
            )),
            (
                Err(Error::SubscribeRefused {
                    filter,
                    reason_code,
                }),
                _,
            ) => {
                let code = if self.v5 {
                    ReasonCode::NotAuthorized
                } else {
                    ReasonCode::UnspecifiedError
                };
                if denied != Some(filter) || *reason_code != code {
                    return Err(format!(
                        "subscribe {waiter} to {filters:?} refused for {filter:?} with \
                         {reason_code:?}; the broker refuses {denied:?} with {code:?}"
                    ));
                }
                Ok(())
            }
            (Err(_), _) => Ok(()),
        }
    }

    /// At the end of the run: a message whose refusal the client read was never taken.
    pub(crate) fn check_end(&self, cluster: &Cluster) -> Result<(), Violation> {
        for (number, code) in &self.refusals_read {
            if let Some(taken) = cluster.taken.get(number) {
                return Err(format!(
                    "message {number} refused with {code:?}, yet the broker took it: {taken:?}"
                ));
            }
        }
        Ok(())
    }

    /// The application heard of the connection's loss.
    pub(crate) fn connection_lost(&mut self, cause: &Error) -> Result<(), Violation> {
        let Some(code) = self.server_disconnect.take() else {
            return Ok(());
        };
        match cause {
            Error::ConnectionLost(DisconnectReason::ServerDisconnected(reason))
                if reason.reason_code == code =>
            {
                Ok(())
            }
            other => Err(format!(
                "the server's DISCONNECT {code:?} was reported as {other:?}"
            )),
        }
    }

    /// After every input's outputs are drained: a server DISCONNECT the client processed was
    /// reported.
    pub(crate) fn check_settled(&self) -> Result<(), Violation> {
        match self.server_disconnect {
            Some(code) => Err(format!(
                "the client processed the server's DISCONNECT {code:?} and reported no loss"
            )),
            None => Ok(()),
        }
    }
}
