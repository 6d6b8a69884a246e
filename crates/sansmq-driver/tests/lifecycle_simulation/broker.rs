//! A model cluster of MQTT brokers behind the client's server URIs, speaking MQTT 3.1.1 or 5.0
//! as the client's CONNECT asks: they share the one session this client has (as a cluster
//! does), refuse CONNECTs with a stale token or when "unavailable", and record every message they
//! take for onward delivery — the ground truth of the delivery checks. In MQTT 5.0 they also grant
//! terms in CONNACK (Receive Maximum, Topic Alias Maximum, a shortened Session Expiry Interval),
//! keep a session after its connection exactly as long as its Session Expiry Interval says,
//! refuse messages on denied topics (PUBACK / PUBREC 0x87 Not authorized, 0x97 Quota exceeded)
//! and denied filters (SUBACK 0x87), answer requests (a responder echoing to the Response Topic
//! with the Correlation Data), and may end a connection with a DISCONNECT of their own. Plain
//! and small on purpose: it is the reference the supervisor is judged against, not a broker.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::MqttString;
use sansmq::TopicName;
use sansmq::packet::{
    ConnAck, ConnectReturnCode, Disconnect, Packet, PacketDecoder, PacketId, Properties, Protocol,
    PubAck, PubComp, PubRec, Publish, QoS, ReasonCode, SubAck, SubscribeReturnCode, SubscriptionId,
    UnsubAck,
};

use crate::scenario::V5;

/// Filters under this prefix are refused (SUBACK 0x80, in MQTT 5.0 0x87 Not authorized); MQTT
/// 5.0 messages published under it are refused with 0x87 too.
pub(crate) const DENIED: &str = "deny/";
/// MQTT 5.0 messages published under this prefix are refused with 0x97 Quota exceeded.
pub(crate) const OVER_QUOTA: &str = "quota/";
/// A responder answers the requests published under this prefix.
pub(crate) const ECHO: &str = "svc/echo";
/// Every fourth request (by number) also gets a decoy first: a message on its Response Topic
/// with Correlation Data no request of this client has, and a payload numbered with this bit.
pub(crate) const DECOY: u64 = 1 << 62;

/// The refusal of a message published to `topic` over MQTT 5.0, if the brokers refuse it.
pub(crate) fn refusal(topic: &str) -> Option<ReasonCode> {
    if topic.starts_with(DENIED) {
        Some(ReasonCode::NotAuthorized)
    } else if topic.starts_with(OVER_QUOTA) {
        Some(ReasonCode::QuotaExceeded)
    } else {
        None
    }
}

/// The one session the cluster keeps for the client.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) epoch: u64,
    /// Incoming QoS 2 identifiers between PUBLISH and PUBREL (delivery "method B").
    qos2: HashSet<u16>,
    pub(crate) subscriptions: BTreeMap<String, QoS>,
    /// MQTT 5.0: the Subscription Identifier of each subscription that has one.
    subscription_ids: BTreeMap<String, u32>,
    /// QoS 1 copies sent to the client and not acknowledged, by the broker's packet id.
    outbound: BTreeMap<u16, Publish>,
    next_id: u16,
    /// MQTT 5.0: disconnected, the session ends then (its Session Expiry Interval after the
    /// connection ended).
    expires_at: Option<Instant>,
    /// The client's Receive Maximum: QoS 1 copies beyond it wait in `held` (MQTT-3.3.4-9).
    quota: u16,
    held: VecDeque<Publish>,
}

impl Session {
    /// A QoS 1 copy of `publish` for the client, with an identifier no copy in flight uses.
    fn outbound(&mut self, publish: &Publish) -> Option<Publish> {
        for _ in 0..u16::MAX {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.outbound.contains_key(&self.next_id) {
                let mut copy = publish.clone();
                copy.qos = QoS::AtLeastOnce;
                copy.dup = false;
                copy.retain = false;
                copy.packet_id = PacketId::new(self.next_id);
                self.outbound.insert(self.next_id, copy.clone());
                return Some(copy);
            }
        }
        None
    }

    /// The copy of `publish` the client's subscriptions ask for (at most at QoS 1), if any,
    /// with the Subscription Identifiers of every matching subscription (MQTT 5.0 section
    /// 3.3.4), recorded in `routed` by message number.
    fn route(
        &mut self,
        publish: &Publish,
        routed: &mut HashMap<u64, Vec<Vec<u32>>>,
    ) -> Option<Publish> {
        let granted = self
            .subscriptions
            .iter()
            .filter(|(filter, _)| sansmq::topic::matches(filter, publish.topic()))
            .map(|(_, qos)| *qos)
            .max()?;
        let mut ids: Vec<u32> = self
            .subscription_ids
            .iter()
            .filter(|(filter, _)| sansmq::topic::matches(filter, publish.topic()))
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let number = message_number(publish.payload());
        routed.entry(number).or_default().push(ids.clone());
        let mut stamped;
        let publish = if ids.is_empty() && publish.properties().is_empty() {
            publish
        } else {
            stamped = publish.clone();
            let properties = stamped.properties_mut();
            properties.clear_subscription_identifiers();
            for id in ids {
                properties.push_subscription_identifier(
                    SubscriptionId::new(id).expect("a valid identifier"),
                );
            }
            &stamped
        };
        match granted.min(publish.qos) {
            QoS::AtMostOnce => {
                let mut copy = publish.clone();
                copy.qos = QoS::AtMostOnce;
                copy.dup = false;
                copy.retain = false;
                copy.packet_id = None;
                Some(copy)
            }
            _ if self.outbound.len() < usize::from(self.quota) => self.outbound(publish),
            _ => {
                self.held.push_back(publish.clone());
                None
            }
        }
    }

    /// The copies held for the client's Receive Maximum that it has room for now.
    fn release(&mut self) -> Vec<Publish> {
        let mut copies = Vec::new();
        while self.outbound.len() < usize::from(self.quota) {
            let Some(publish) = self.held.pop_front() else {
                break;
            };
            copies.extend(self.outbound(&publish));
        }
        copies
    }
}

/// What the brokers share.
#[derive(Debug, Default)]
pub(crate) struct Cluster {
    pub(crate) session: Option<Session>,
    /// Sessions created so far.
    pub(crate) epochs: u64,
    /// The password a CONNECT must carry.
    pub(crate) valid_password: String,
    /// Answer the next CONNECTs with "server unavailable" (code 3).
    pub(crate) unavailable: bool,
    /// The highest QoS granted to a subscription.
    pub(crate) max_grant: u8,
    /// MQTT 5.0: the terms the brokers grant.
    pub(crate) v5: Option<V5>,
    /// Message number → (QoS, session epoch) of every copy taken for onward delivery.
    pub(crate) taken: HashMap<u64, Vec<(QoS, u64)>>,
    /// Message number → the Reason Code of every refusal of it.
    pub(crate) refused: HashMap<u64, Vec<ReasonCode>>,
    /// CONNACK codes sent, by connection.
    pub(crate) connacks: HashMap<u64, ConnectReturnCode>,
    /// MQTT 5.0: sessions that ended by their Session Expiry Interval.
    pub(crate) expired_sessions: u64,
    /// Responses the responder published (decoys included).
    pub(crate) responses: u64,
    /// Copies for the client held back by its Receive Maximum.
    pub(crate) held_copies: u64,
    /// MQTT 5.0: PUBRELs answered 0x92 Packet Identifier not found.
    pub(crate) unknown_pubrels: u64,
    /// The Subscription Identifiers of each copy routed to the client, by message number.
    pub(crate) routed_ids: HashMap<u64, Vec<Vec<u32>>>,
}

/// What a broker does on one connection.
pub(crate) enum Reply {
    Bytes(BytesMut),
    /// The client's PUBACK (packet id) acknowledged the copy of this message (number).
    Acked(u64, u16),
    /// Closes the connection (after what it sent before).
    Close,
}

/// One accepted TCP connection.
pub(crate) struct BrokerConn {
    id: u64,
    decoder: PacketDecoder,
    protocol: Protocol,
    connected: bool,
    clean: bool,
    /// MQTT 5.0: the Session Expiry Interval in force on this connection.
    session_expiry: Option<u32>,
    /// MQTT 5.0: the client's Topic Aliases (MQTT-3.3.2-12: per connection).
    aliases_in: HashMap<u16, TopicName>,
    /// MQTT 5.0: the Topic Alias Maximum this broker granted.
    alias_maximum: u16,
    /// MQTT 5.0: the aliases this broker set on its messages to the client, and how many the
    /// client takes.
    aliases_out: HashMap<String, NonZeroU16>,
    client_alias_maximum: u16,
    /// Gone quiet: reads nothing and answers nothing (a hung broker, a black-holed route).
    pub(crate) silent: bool,
}

impl BrokerConn {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            decoder: PacketDecoder::new(1 << 20),
            protocol: Protocol::Mqtt311,
            connected: false,
            clean: true,
            session_expiry: None,
            aliases_in: HashMap::new(),
            alias_maximum: 0,
            aliases_out: HashMap::new(),
            client_alias_maximum: 0,
            silent: false,
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    /// Another connection of the client took over: this one ends without touching the session.
    pub(crate) fn taken_over(&mut self) {
        self.connected = false;
    }

    /// The connection ended: a clean session ends with it (MQTT-3.1.2-6); in MQTT 5.0 the
    /// session ends now with a Session Expiry Interval of 0, then at its end otherwise.
    pub(crate) fn closed(&mut self, cluster: &mut Cluster, now: Instant) {
        if self.connected {
            match self.session_expiry {
                None if self.clean => cluster.session = None,
                None | Some(u32::MAX) => {}
                Some(0) => cluster.session = None,
                Some(secs) => {
                    if let Some(session) = cluster.session.as_mut() {
                        session.expires_at = Some(now + Duration::from_secs(secs.into()));
                    }
                }
            }
        }
        self.connected = false;
    }

    /// MQTT 5.0: the broker ends the connection with a DISCONNECT of its own (`code`), then
    /// closes; the bytes to send, if it is connected.
    pub(crate) fn server_disconnect(
        &mut self,
        cluster: &mut Cluster,
        now: Instant,
        code: ReasonCode,
    ) -> Option<BytesMut> {
        if !self.connected || !self.protocol.is_v5() || self.silent {
            return None;
        }
        let mut disconnect = Disconnect::with_reason_code(code);
        let mut properties = Properties::new();
        properties.set_reason_string(Some(string("the model broker says goodbye")));
        disconnect.set_properties(properties);
        let mut bytes = BytesMut::new();
        Packet::Disconnect(disconnect)
            .encode_in(self.protocol, &mut bytes)
            .expect("the model broker encodes valid packets");
        self.closed(cluster, now);
        Some(bytes)
    }

    /// Bytes from the client, cut anywhere.
    pub(crate) fn receive(
        &mut self,
        cluster: &mut Cluster,
        now: Instant,
        bytes: &[u8],
    ) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.silent {
            return replies;
        }
        self.decoder.extend_from_slice(bytes);
        loop {
            let packet = match self.decoder.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => panic!("the client sent a malformed packet: {e}"),
            };
            let answer = match packet {
                Packet::Connect(connect) => {
                    assert!(!self.connected, "a second CONNECT (MQTT-3.1.0-2)");
                    // The protocol is what CONNECT says; the packets after it are decoded in it.
                    self.protocol = connect.protocol;
                    self.decoder.set_protocol(connect.protocol);
                    let v5 = cluster.v5.clone().filter(|_| self.protocol.is_v5());
                    assert_eq!(
                        self.protocol.is_v5(),
                        cluster.v5.is_some(),
                        "the client speaks {} to a {} cluster",
                        self.protocol,
                        if cluster.v5.is_some() {
                            "MQTT 5.0"
                        } else {
                            "MQTT 3.1.1"
                        }
                    );
                    let password = connect
                        .password
                        .as_ref()
                        .map(|p| String::from_utf8_lossy(&p.0).into_owned());
                    let code = if cluster.unavailable {
                        ConnectReturnCode::ServerUnavailable
                    } else if password.as_deref() != Some(cluster.valid_password.as_str()) {
                        ConnectReturnCode::BadUserNameOrPassword
                    } else {
                        ConnectReturnCode::Accepted
                    };
                    cluster.connacks.insert(self.id, code);
                    if code != ConnectReturnCode::Accepted {
                        let connack = ConnAck::new(code).with_session_present(false);
                        self.push(&mut replies, &Packet::ConnAck(connack));
                        replies.push(Reply::Close);
                        return replies;
                    }
                    self.connected = true;
                    self.clean = connect.clean_session;
                    let mut properties = Properties::new();
                    if let Some(v5) = &v5 {
                        // Absent, the Session Expiry Interval is 0 (MQTT 5.0 3.1.2.11.2).
                        let asked = connect.properties.session_expiry_interval.unwrap_or(0);
                        let granted = match v5.session_expiry_cap {
                            Some(cap) if asked > cap => {
                                properties.session_expiry_interval = Some(cap);
                                cap
                            }
                            _ => asked,
                        };
                        self.session_expiry = Some(granted);
                        let receive_maximum = v5.receive_maximum
                            [(self.id % v5.receive_maximum.len() as u64) as usize];
                        properties.receive_maximum = NonZeroU16::new(receive_maximum);
                        self.alias_maximum = v5.topic_alias_maximum;
                        properties.server_keep_alive = v5.server_keep_alive;
                        properties.topic_alias_maximum =
                            Some(v5.topic_alias_maximum).filter(|&max| max > 0);
                        self.client_alias_maximum =
                            connect.properties.topic_alias_maximum.unwrap_or(0);
                    }
                    let expired = cluster
                        .session
                        .as_ref()
                        .and_then(|session| session.expires_at)
                        .is_some_and(|at| now >= at);
                    if expired {
                        cluster.expired_sessions += 1;
                        cluster.session = None;
                    }
                    // Clean Start, in MQTT 5.0.
                    if connect.clean_session {
                        cluster.session = None;
                    }
                    let session_present = cluster.session.is_some();
                    if cluster.session.is_none() {
                        cluster.epochs += 1;
                        cluster.session = Some(Session {
                            epoch: cluster.epochs,
                            qos2: HashSet::new(),
                            subscriptions: BTreeMap::new(),
                            subscription_ids: BTreeMap::new(),
                            outbound: BTreeMap::new(),
                            next_id: 0,
                            expires_at: None,
                            quota: u16::MAX,
                            held: VecDeque::new(),
                        });
                    }
                    let Some(session) = cluster.session.as_mut() else {
                        unreachable!("a session was made above");
                    };
                    session.expires_at = None;
                    session.quota = connect
                        .properties
                        .receive_maximum
                        .map_or(u16::MAX, NonZeroU16::get);
                    let mut connack = ConnAck::new(code).with_session_present(session_present);
                    if self.protocol.is_v5() {
                        connack.set_properties(properties);
                    }
                    self.push(&mut replies, &Packet::ConnAck(connack));
                    // A resumed session's unacknowledged copies go out again (MQTT-4.4.0-1).
                    if session_present {
                        let again: Vec<Publish> = session.outbound.values().cloned().collect();
                        for mut copy in again {
                            copy.dup = true;
                            self.push_publish(&mut replies, copy);
                        }
                    }
                    for copy in session.release() {
                        self.push_publish(&mut replies, copy);
                    }
                    None
                }
                _ if !self.connected => panic!("a packet before CONNECT (MQTT-3.1.0-1)"),
                Packet::Publish(mut publish) => {
                    self.resolve_alias(&mut publish);
                    let Some(session) = cluster.session.as_mut() else {
                        panic!("connected without a session");
                    };
                    let number = message_number(publish.payload());
                    let refused = refusal(publish.topic()).filter(|_| self.protocol.is_v5());
                    let (take, answer) = match (publish.qos, publish.packet_id, refused) {
                        (QoS::AtMostOnce, _, None) => (true, None),
                        (QoS::AtMostOnce, _, Some(_)) => (false, None),
                        (_, None, _) => panic!("QoS 1/2 PUBLISH without an identifier"),
                        (QoS::AtLeastOnce, Some(id), Some(code)) => {
                            cluster.refused.entry(number).or_default().push(code);
                            (false, Some(Packet::PubAck(refused_ack(id, code))))
                        }
                        (QoS::ExactlyOnce, Some(id), Some(code)) => {
                            cluster.refused.entry(number).or_default().push(code);
                            let mut rec = PubRec::with_reason_code(id, code);
                            rec.set_properties(reason_string(code));
                            (false, Some(Packet::PubRec(rec)))
                        }
                        (QoS::AtLeastOnce, Some(id), None) => {
                            (true, Some(Packet::PubAck(PubAck::new(id))))
                        }
                        (QoS::ExactlyOnce, Some(id), None) => (
                            session.qos2.insert(id.get()),
                            Some(Packet::PubRec(PubRec::new(id))),
                        ),
                    };
                    let mut answer = answer;
                    if take {
                        let taken = cluster.taken.entry(number).or_default();
                        taken.push((publish.qos, session.epoch));
                        // Routed to the client's own matching subscription, at most at QoS 1.
                        let mut copies = Vec::new();
                        let held = session.held.len();
                        let mut routed = publish.clone();
                        if self.protocol.is_v5() {
                            routed.properties_mut().topic_alias = None;
                        }
                        copies.extend(session.route(&routed, &mut cluster.routed_ids));
                        if copies.is_empty() && self.protocol.is_v5() {
                            // MQTT 5.0: a success code that is not 0 (mosquitto sends it too).
                            answer = match answer {
                                Some(Packet::PubAck(ack)) => {
                                    Some(Packet::PubAck(PubAck::with_reason_code(
                                        ack.packet_id,
                                        ReasonCode::NoMatchingSubscribers,
                                    )))
                                }
                                Some(Packet::PubRec(rec)) => {
                                    Some(Packet::PubRec(PubRec::with_reason_code(
                                        rec.packet_id,
                                        ReasonCode::NoMatchingSubscribers,
                                    )))
                                }
                                other => other,
                            };
                        }
                        if let Some(responses) = respond(&routed, number) {
                            for response in responses {
                                cluster.responses += 1;
                                copies.extend(session.route(&response, &mut cluster.routed_ids));
                            }
                        }
                        cluster.held_copies += (session.held.len() - held) as u64;
                        for copy in copies {
                            self.push_publish(&mut replies, copy);
                        }
                    }
                    answer
                }
                Packet::PubAck(ack) => {
                    let Some(session) = cluster.session.as_mut() else {
                        continue;
                    };
                    if let Some(copy) = session.outbound.remove(&ack.packet_id.get()) {
                        let number = message_number(copy.payload());
                        replies.push(Reply::Acked(number, ack.packet_id.get()));
                    }
                    for copy in session.release() {
                        self.push_publish(&mut replies, copy);
                    }
                    None
                }
                Packet::PubRel(rel) => {
                    let known = cluster
                        .session
                        .as_mut()
                        .is_some_and(|session| session.qos2.remove(&rel.packet_id.get()));
                    // MQTT 5.0: a PUBREL for an identifier the session does not hold (its
                    // PUBCOMP was lost, or the session was) is answered 0x92 Packet Identifier
                    // not found; the message was taken at its PUBLISH.
                    Some(Packet::PubComp(if known || !self.protocol.is_v5() {
                        PubComp::new(rel.packet_id)
                    } else {
                        cluster.unknown_pubrels += 1;
                        PubComp::with_reason_code(
                            rel.packet_id,
                            ReasonCode::PacketIdentifierNotFound,
                        )
                    }))
                }
                Packet::Subscribe(subscribe) => {
                    let session = cluster.session.as_mut().expect("a session while connected");
                    let v5 = self.protocol.is_v5();
                    let return_codes = subscribe
                        .filters
                        .iter()
                        .map(|f| {
                            if f.filter.starts_with(DENIED) {
                                return if v5 {
                                    SubscribeReturnCode::Refused(ReasonCode::NotAuthorized)
                                } else {
                                    SubscribeReturnCode::Failure
                                };
                            }
                            let granted = QoS::from_u8((f.qos as u8).min(cluster.max_grant))
                                .unwrap_or(QoS::AtMostOnce);
                            session.subscriptions.insert(f.filter.to_string(), granted);
                            // MQTT 5.0: a new SUBSCRIBE replaces the subscription, identifier
                            // included (none if it has none).
                            match subscribe.properties().subscription_identifiers().next() {
                                Some(id) => session
                                    .subscription_ids
                                    .insert(f.filter.to_string(), id.get()),
                                None => session.subscription_ids.remove(&f.filter.to_string()),
                            };
                            SubscribeReturnCode::Success(granted)
                        })
                        .collect();
                    Some(Packet::SubAck(SubAck::new(
                        subscribe.packet_id,
                        return_codes,
                    )))
                }
                Packet::Unsubscribe(unsubscribe) => {
                    let mut codes = Vec::new();
                    if let Some(session) = cluster.session.as_mut() {
                        for filter in &unsubscribe.filters {
                            let removed = session.subscriptions.remove(&filter.to_string());
                            session.subscription_ids.remove(&filter.to_string());
                            codes.push(match removed {
                                Some(_) => ReasonCode::Success,
                                None => ReasonCode::NoSubscriptionExisted,
                            });
                        }
                    }
                    Some(Packet::UnsubAck(if self.protocol.is_v5() {
                        UnsubAck::with_reason_codes(unsubscribe.packet_id, codes)
                    } else {
                        UnsubAck::new(unsubscribe.packet_id)
                    }))
                }
                Packet::PingReq => Some(Packet::PingResp),
                Packet::Disconnect(disconnect) => {
                    // The client ends a connection only normally: a Reason Code of its own would
                    // be a complaint about the broker (a model bug, or a client miscounting).
                    assert_eq!(
                        disconnect.reason_code,
                        ReasonCode::NORMAL_DISCONNECTION,
                        "the client ended the connection with a Reason Code"
                    );
                    // MQTT 5.0: DISCONNECT may set a new Session Expiry Interval (MQTT-3.14.2-2:
                    // not from 0).
                    if let Some(secs) = disconnect.properties().session_expiry_interval {
                        assert!(
                            self.session_expiry != Some(0) || secs == 0,
                            "DISCONNECT sets a Session Expiry Interval after 0 (MQTT-3.14.2-2)"
                        );
                        self.session_expiry = Some(secs);
                    }
                    // MQTT-3.14.4-1: the broker closes; a clean session ends with the connection.
                    self.closed(cluster, now);
                    replies.push(Reply::Close);
                    return replies;
                }
                other => panic!("the client sent a broker's packet: {other:?}"),
            };
            if let Some(answer) = answer {
                self.push(&mut replies, &answer);
            }
        }
        replies
    }

    /// MQTT 5.0: the topic of a PUBLISH that names it by its Topic Alias (MQTT-3.3.2-12).
    fn resolve_alias(&mut self, publish: &mut Publish) {
        let Some(alias) = publish.properties().topic_alias else {
            return;
        };
        let maximum = self.alias_maximum;
        assert!(
            alias.get() <= maximum,
            "the client used Topic Alias {alias} over the maximum {maximum} (MQTT-3.3.2-9)"
        );
        if publish.topic().is_empty() {
            let Some(topic) = self.aliases_in.get(&alias.get()) else {
                panic!("the client used Topic Alias {alias} before setting it (MQTT-3.3.2-12)");
            };
            publish.set_topic(topic.clone());
        } else {
            self.aliases_in.insert(alias.get(), publish.topic_name());
        }
    }

    fn push(&self, replies: &mut Vec<Reply>, packet: &Packet) {
        let mut bytes = BytesMut::new();
        packet
            .encode_in(self.protocol, &mut bytes)
            .expect("the model broker encodes valid packets");
        replies.push(Reply::Bytes(bytes));
    }

    /// A PUBLISH to the client, with a Topic Alias of ours when the client takes them.
    fn push_publish(&mut self, replies: &mut Vec<Reply>, publish: Publish) {
        if !self.protocol.is_v5() || self.client_alias_maximum == 0 {
            return self.push(replies, &Packet::Publish(publish));
        }
        let topic = publish.topic().to_owned();
        let (alias, with_topic) = match self.aliases_out.get(&topic) {
            Some(alias) => (*alias, false),
            None => {
                let next = self.aliases_out.len() as u16 + 1;
                if next > self.client_alias_maximum {
                    return self.push(replies, &Packet::Publish(publish));
                }
                let alias = NonZeroU16::new(next).expect("counted from 1");
                self.aliases_out.insert(topic, alias);
                (alias, true)
            }
        };
        let mut bytes = BytesMut::new();
        publish
            .encode_aliased(alias, with_topic, &mut bytes)
            .expect("the model broker encodes valid packets");
        replies.push(Reply::Bytes(bytes));
    }
}

/// A failure acknowledgement with a Reason String.
fn refused_ack(id: PacketId, code: ReasonCode) -> PubAck {
    let mut ack = PubAck::with_reason_code(id, code);
    ack.set_properties(reason_string(code));
    ack
}

fn reason_string(code: ReasonCode) -> Properties {
    let mut properties = Properties::new();
    properties.set_reason_string(Some(string(&format!("refused: {code:?}"))));
    properties
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).expect("a valid string")
}

/// The responder: a request (Response Topic and Correlation Data) to an [`ECHO`] topic is
/// answered on its Response Topic with its Correlation Data and payload, at QoS 1; every fourth
/// also gets a decoy first.
fn respond(request: &Publish, number: u64) -> Option<Vec<Publish>> {
    if !request.topic().starts_with(ECHO) {
        return None;
    }
    let properties = request.properties();
    let topic = properties.response_topic()?;
    let correlation = properties.correlation_data()?.clone();
    let answer = |payload: Bytes, correlation: Bytes| {
        let mut response = Publish::new(topic.clone(), payload);
        response.qos = QoS::AtLeastOnce;
        let mut properties = Properties::new();
        properties.set_correlation_data(Some(correlation));
        response.set_properties(properties);
        response
    };
    let mut responses = Vec::new();
    if number % 4 == 0 {
        let decoy = Bytes::copy_from_slice(&(number | DECOY).to_le_bytes());
        responses.push(answer(decoy, Bytes::from_static(&[0xFF; 8])));
    }
    responses.push(answer(request.payload_bytes(), correlation));
    Some(responses)
}

/// The simulation numbers each message in its first 8 payload bytes.
pub(crate) fn message_number(payload: &[u8]) -> u64 {
    let mut n = [0; 8];
    for (to, from) in n.iter_mut().zip(payload) {
        *to = *from;
    }
    u64::from_le_bytes(n)
}
