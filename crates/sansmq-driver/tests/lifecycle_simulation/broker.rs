//! A model cluster of MQTT 3.1.1 brokers behind the client's server URIs: they share the one
//! session this client has (as a cluster does), refuse CONNECTs with a stale token or when
//! "unavailable", and record every message they take for onward delivery — the ground truth of
//! the delivery checks. Plain and small on purpose: it is the reference the supervisor is judged
//! against, not a broker.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::BytesMut;
use sansmq::packet::{
    ConnAck, ConnectReturnCode, Packet, PacketDecoder, PacketId, PubAck, PubComp, PubRec, Publish,
    QoS, SubAck, SubscribeReturnCode, UnsubAck,
};

/// Filters under this prefix are refused (SUBACK 0x80).
pub(crate) const DENIED: &str = "deny/";

/// The one session the cluster keeps for the client.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) epoch: u64,
    /// Incoming QoS 2 identifiers between PUBLISH and PUBREL (delivery "method B").
    qos2: HashSet<u16>,
    pub(crate) subscriptions: BTreeMap<String, QoS>,
    /// QoS 1 copies sent to the client and not acknowledged, by the broker's packet id.
    outbound: BTreeMap<u16, Publish>,
    next_id: u16,
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
    /// Message number → (QoS, session epoch) of every copy taken for onward delivery.
    pub(crate) taken: HashMap<u64, Vec<(QoS, u64)>>,
    /// CONNACK codes sent, by connection.
    pub(crate) connacks: HashMap<u64, ConnectReturnCode>,
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
    connected: bool,
    clean: bool,
    /// Gone quiet: reads nothing and answers nothing (a hung broker, a black-holed route).
    pub(crate) silent: bool,
}

impl BrokerConn {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            decoder: PacketDecoder::new(1 << 20),
            connected: false,
            clean: true,
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

    /// The connection ended: a clean session ends with it (MQTT-3.1.2-6).
    pub(crate) fn closed(&mut self, cluster: &mut Cluster) {
        if self.connected && self.clean {
            cluster.session = None;
        }
        self.connected = false;
    }

    /// Bytes from the client, cut anywhere.
    pub(crate) fn receive(&mut self, cluster: &mut Cluster, bytes: &[u8]) -> Vec<Reply> {
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
                        push(
                            &mut replies,
                            &Packet::ConnAck(ConnAck::new(code).with_session_present(false)),
                        );
                        replies.push(Reply::Close);
                        return replies;
                    }
                    self.connected = true;
                    self.clean = connect.clean_session;
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
                            outbound: BTreeMap::new(),
                            next_id: 0,
                        });
                    }
                    let connack = ConnAck::new(code).with_session_present(session_present);
                    push(&mut replies, &Packet::ConnAck(connack));
                    // A resumed session's unacknowledged copies go out again (MQTT-4.4.0-1).
                    if let Some(session) = cluster.session.as_ref().filter(|_| session_present) {
                        for copy in session.outbound.values() {
                            let mut again = copy.clone();
                            again.dup = true;
                            push(&mut replies, &Packet::Publish(again));
                        }
                    }
                    None
                }
                _ if !self.connected => panic!("a packet before CONNECT (MQTT-3.1.0-1)"),
                Packet::Publish(publish) => {
                    let Some(session) = cluster.session.as_mut() else {
                        panic!("connected without a session");
                    };
                    let (take, answer) = match (publish.qos, publish.packet_id) {
                        (QoS::AtMostOnce, _) => (true, None),
                        (QoS::AtLeastOnce, Some(id)) => {
                            (true, Some(Packet::PubAck(PubAck::new(id))))
                        }
                        (QoS::ExactlyOnce, Some(id)) => (
                            session.qos2.insert(id.get()),
                            Some(Packet::PubRec(PubRec::new(id))),
                        ),
                        (_, None) => panic!("QoS 1/2 PUBLISH without an identifier"),
                    };
                    if take {
                        let number = message_number(publish.payload());
                        let taken = cluster.taken.entry(number).or_default();
                        taken.push((publish.qos, session.epoch));
                        // Routed to the client's own matching subscription, at most at QoS 1.
                        let granted = session
                            .subscriptions
                            .iter()
                            .filter(|(filter, _)| sansmq::topic::matches(filter, publish.topic()))
                            .map(|(_, qos)| *qos)
                            .max();
                        match granted.map(|g| g.min(publish.qos)) {
                            Some(QoS::AtMostOnce) => {
                                let mut copy = publish.clone();
                                copy.qos = QoS::AtMostOnce;
                                copy.dup = false;
                                copy.packet_id = None;
                                push(&mut replies, &Packet::Publish(copy));
                            }
                            Some(_) => {
                                if let Some(copy) = session.outbound(&publish) {
                                    push(&mut replies, &Packet::Publish(copy));
                                }
                            }
                            None => {}
                        }
                    }
                    answer
                }
                Packet::PubAck(ack) => {
                    let copy = cluster
                        .session
                        .as_mut()
                        .and_then(|session| session.outbound.remove(&ack.packet_id.get()));
                    if let Some(copy) = copy {
                        let number = message_number(copy.payload());
                        replies.push(Reply::Acked(number, ack.packet_id.get()));
                    }
                    None
                }
                Packet::PubRel(rel) => {
                    if let Some(session) = cluster.session.as_mut() {
                        session.qos2.remove(&rel.packet_id.get());
                    }
                    Some(Packet::PubComp(PubComp::new(rel.packet_id)))
                }
                Packet::Subscribe(subscribe) => {
                    let session = cluster.session.as_mut().expect("a session while connected");
                    let return_codes = subscribe
                        .filters
                        .iter()
                        .map(|f| {
                            if f.filter.starts_with(DENIED) {
                                return SubscribeReturnCode::Failure;
                            }
                            let granted = QoS::from_u8((f.qos as u8).min(cluster.max_grant))
                                .unwrap_or(QoS::AtMostOnce);
                            session.subscriptions.insert(f.filter.to_string(), granted);
                            SubscribeReturnCode::Success(granted)
                        })
                        .collect();
                    Some(Packet::SubAck(SubAck::new(
                        subscribe.packet_id,
                        return_codes,
                    )))
                }
                Packet::Unsubscribe(unsubscribe) => {
                    if let Some(session) = cluster.session.as_mut() {
                        for filter in &unsubscribe.filters {
                            session.subscriptions.remove(&filter.to_string());
                        }
                    }
                    Some(Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id)))
                }
                Packet::PingReq => Some(Packet::PingResp),
                Packet::Disconnect(_) => {
                    // MQTT-3.14.4-1: the broker closes; a clean session ends with the connection.
                    self.closed(cluster);
                    replies.push(Reply::Close);
                    return replies;
                }
                other => panic!("the client sent a broker's packet: {other:?}"),
            };
            if let Some(answer) = answer {
                push(&mut replies, &answer);
            }
        }
        replies
    }
}

fn push(replies: &mut Vec<Reply>, packet: &Packet) {
    let mut bytes = BytesMut::new();
    packet
        .encode(&mut bytes)
        .expect("the model broker encodes valid packets");
    replies.push(Reply::Bytes(bytes));
}

/// The simulation numbers each message in its first 8 payload bytes.
pub(crate) fn message_number(payload: &[u8]) -> u64 {
    let mut n = [0; 8];
    for (to, from) in n.iter_mut().zip(payload) {
        *to = *from;
    }
    u64::from_le_bytes(n)
}
