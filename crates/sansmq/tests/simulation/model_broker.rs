//! A model MQTT 3.1.1 broker on sansmq's own codec: just the semantics the client's guarantees
//! rest on, written plainly so it can be trusted as the reference.
//!
//! - CONNECT → CONNACK with `session_present` from the sessions it keeps; clean session discards
//!   the session at CONNECT and when the connection ends; a second connection with the same client
//!   id takes over (MQTT-3.1.4-2); it can refuse CONNECTs (code 3, server unavailable).
//! - PUBLISH from the client at QoS 0/1/2 with PUBACK / PUBREC, PUBREL → PUBCOMP. QoS 2 is
//!   exactly once on its side: either the identifier is stored and the message routed at once
//!   ("method B" of MQTT 4.3.3) or the message is stored and routed at PUBREL ("method A").
//! - Routing to matching subscriptions at min(publish QoS, granted QoS); QoS 1/2 copies wait in
//!   the session (a window in flight to the client, a queue behind it) with the broker's own packet
//!   ids; resent with DUP=1 on a resumed session, and, like ApsaraMQ, optionally every few seconds
//!   while connected.
//! - Keep-alive: a connection silent for 1.5 × keep-alive is dropped (MQTT-3.1.2-24).
//! - Restart with or without the sessions.
//! - A hostile turn: it stops reading a connection and floods it with PUBRELs (for identifiers it
//!   never uses) and re-sends of its messages in flight (DUP=1), for the client's transmit-stall
//!   limit to end it.
//!
//! It also checks the client's side of the protocol and reports what it sees as [`Note`]s: the
//! messages it took (the ground truth for delivery checks), session births and deaths, and
//! violations (acks out of order, identifiers reused, DUP missing, malformed bytes).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sansmq::TopicFilter;
use sansmq::packet::{
    ConnAck, ConnectReturnCode, Packet, PacketDecoder, PacketId, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, UnsubAck, Unsubscribe,
};

use crate::link::ConnId;

/// How this seed's broker behaves.
#[derive(Debug, Clone)]
pub(crate) struct BrokerParams {
    /// The highest QoS it grants.
    pub(crate) max_qos: QoS,
    /// QoS 1/2 messages in flight to a client at once.
    pub(crate) window: usize,
    /// QoS 2 from the client: store the message and route it at PUBREL (method A) instead of
    /// routing at PUBLISH and storing the identifier (method B).
    pub(crate) route_on_pubrel: bool,
    /// Resend unacknowledged messages this often while connected (ApsaraMQ: every 5–10 s).
    pub(crate) resend_every: Option<Duration>,
}

/// What the broker reports to the test.
#[derive(Debug)]
pub(crate) enum Note {
    /// The broker took a client's message for onward delivery (a QoS 1 message may be taken more
    /// than once). `routed` is the QoS of the copy queued for the subscriber (our client's session
    /// of `epoch`), `None` if no subscription matched.
    Accepted {
        publish: Publish,
        epoch: u64,
        routed: Option<QoS>,
    },
    /// A QoS 1/2 copy went to the client for the first time (DUP=0) with this identifier.
    FirstSent {
        id: PacketId,
        publish: Publish,
        epoch: u64,
    },
    /// A session was created.
    SessionCreated { epoch: u64 },
    /// The session of `epoch` was discarded, with every message it held.
    SessionEnded { epoch: u64 },
    /// An accepted CONNECT attached the client to the session of `epoch`.
    Attached { epoch: u64 },
    /// CONNECT as received.
    Connect {
        client_id: String,
        clean_session: bool,
        keep_alive: u16,
    },
    /// The connection was dropped for silence.
    KeepAliveExpired { conn: ConnId },
    /// The client broke a rule.
    Violation(String),
}

/// Something for the network.
#[derive(Debug)]
pub(crate) enum Out {
    Bytes(ConnId, BytesMut),
    Close(ConnId),
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BrokerStats {
    pub(crate) connects: u64,
    pub(crate) refusals: u64,
    pub(crate) takeovers: u64,
    pub(crate) resumed: u64,
    pub(crate) dup_publishes: u64,
    pub(crate) periodic_resends: u64,
    pub(crate) keep_alive_drops: u64,
    pub(crate) qos2_duplicates_from_client: u64,
    /// Connections that ended with part of a packet buffered.
    pub(crate) cut_mid_packet: u64,
    /// PUBRELs from the client for an identifier the session does not hold (answered PUBCOMP).
    pub(crate) unknown_pubrels: u64,
    /// Flood rounds sent to connections the broker stopped reading.
    pub(crate) flood_rounds: u64,
}

/// A QoS 1/2 message in flight to the client.
struct Outbound {
    id: PacketId,
    publish: Publish,
    /// QoS 2: PUBREC received, PUBREL sent.
    released: bool,
}

struct Session {
    epoch: u64,
    clean: bool,
    conn: Option<ConnId>,
    subs: BTreeMap<TopicFilter, QoS>,
    /// QoS 2 from the client awaiting PUBREL, by identifier (the message, to compare re-sends and
    /// to route at PUBREL under method A).
    inbound: BTreeMap<PacketId, Publish>,
    inflight: VecDeque<Outbound>,
    queue: VecDeque<Publish>,
    last_id: u16,
}

impl Session {
    fn allocate(&mut self) -> PacketId {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if let Some(id) = PacketId::new(self.last_id) {
                if !self.inflight.iter().any(|o| o.id == id) {
                    return id;
                }
            }
        }
    }
}

struct BConn {
    decoder: PacketDecoder,
    client_id: Option<String>,
    keep_alive: Duration,
    opened: Instant,
    last_recv: Instant,
    /// PUBRECs written on this connection whose PUBREL is awaited, in order (MQTT-4.6.0-4).
    sent_pubrec: VecDeque<PacketId>,
    next_resend: Option<Instant>,
    /// The broker stopped reading this connection and floods it from then on.
    next_flood: Option<Instant>,
}

/// Identifiers of the flood's PUBRELs: the session's own allocation never gets this far in a run,
/// so the client holds none of them.
const FLOOD_IDS: std::ops::RangeInclusive<u16> = (65_536 - FLOOD_PUBRELS) as u16..=65_535;
/// Flood rounds come this often.
const FLOOD_EVERY: Duration = Duration::from_millis(100);

/// The most PUBRELs one flood round sends (each needs a PUBCOMP).
pub(crate) const FLOOD_PUBRELS: usize = 32;

/// Connections that never send CONNECT are dropped after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Broker {
    pub(crate) up: bool,
    pub(crate) params: BrokerParams,
    /// Refuse this many coming CONNECTs.
    pub(crate) refuse: u32,
    sessions: BTreeMap<String, Session>,
    conns: BTreeMap<ConnId, BConn>,
    epochs: u64,
    pub(crate) notes: Vec<Note>,
    pub(crate) out: Vec<Out>,
    pub(crate) stats: BrokerStats,
}

impl Broker {
    pub(crate) fn new(params: BrokerParams) -> Self {
        Self {
            up: true,
            params,
            refuse: 0,
            sessions: BTreeMap::new(),
            conns: BTreeMap::new(),
            epochs: 0,
            notes: Vec::new(),
            out: Vec::new(),
            stats: BrokerStats::default(),
        }
    }

    /// The network opened a connection to us.
    pub(crate) fn accept(&mut self, now: Instant, conn: ConnId) {
        self.conns.insert(
            conn,
            BConn {
                decoder: PacketDecoder::new(usize::MAX),
                client_id: None,
                keep_alive: Duration::ZERO,
                opened: now,
                last_recv: now,
                sent_pubrec: VecDeque::new(),
                next_resend: None,
                next_flood: None,
            },
        );
    }

    /// Stops reading `conn` (the network holds its bytes back) and floods it from now on.
    pub(crate) fn stop_reading(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.next_flood = Some(now);
        }
    }

    /// The session of `client_id`, if kept, with whether anything is left in it.
    pub(crate) fn session_state(&self, client_id: &str) -> Option<SessionState> {
        self.sessions.get(client_id).map(|s| SessionState {
            connected: s.conn.is_some(),
            subscriptions: s.subs.iter().map(|(f, q)| (f.clone(), *q)).collect(),
            inbound: s.inbound.len(),
            inflight: s.inflight.len(),
            queued: s.queue.len(),
        })
    }

    /// Crash and come back later: every connection is gone; sessions are kept only if `keep`.
    /// Returns the connections to reset.
    pub(crate) fn restart(&mut self, keep: bool) -> Vec<ConnId> {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        self.conns.clear();
        let mut ended = Vec::new();
        self.sessions.retain(|_, s| {
            s.conn = None;
            let kept = keep && !s.clean;
            if !kept {
                ended.push(s.epoch);
            }
            kept
        });
        for epoch in ended {
            self.notes.push(Note::SessionEnded { epoch });
        }
        self.up = false;
        conns
    }

    /// Bytes from the client.
    pub(crate) fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return; // we closed it already
        };
        c.decoder.extend_from_slice(data);
        c.last_recv = now;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.decoder.next_packet() {
                Ok(Some(packet)) => self.handle_packet(now, conn, packet),
                Ok(None) => return,
                Err(e) => {
                    self.violation(format!("conn {conn}: the client sent malformed bytes: {e}"));
                    self.close(conn);
                    return;
                }
            }
        }
    }

    /// The client's end closed or the connection was reset.
    pub(crate) fn handle_closed(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.close(conn);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .flat_map(|c| [Self::expiry(c), c.next_resend, c.next_flood])
            .flatten()
            .min()
    }

    fn expiry(c: &BConn) -> Option<Instant> {
        if c.next_flood.is_some() {
            None // it hears nothing, and does not care
        } else if c.client_id.is_none() {
            Some(c.opened + CONNECT_TIMEOUT)
        } else if c.keep_alive.is_zero() {
            None
        } else {
            Some(c.last_recv + c.keep_alive * 3 / 2)
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if Self::expiry(c).is_some_and(|t| now >= t) {
                if c.client_id.is_some() {
                    self.stats.keep_alive_drops += 1;
                    self.notes.push(Note::KeepAliveExpired { conn });
                }
                self.close(conn);
                continue;
            }
            if let Some(t) = c.next_flood.filter(|t| now >= *t) {
                c.next_flood = Some(t.max(now) + FLOOD_EVERY);
                if let Some(client_id) = c.client_id.clone() {
                    self.stats.flood_rounds += 1;
                    for id in FLOOD_IDS.filter_map(PacketId::new) {
                        self.send(conn, &Packet::PubRel(PubRel::new(id)));
                    }
                    self.resend(conn, &client_id);
                }
                continue;
            }
            if let Some(t) = c.next_resend.filter(|t| now >= *t) {
                let every = self.params.resend_every.unwrap_or(Duration::from_secs(5));
                c.next_resend = Some(t.max(now) + every);
                if let Some(client_id) = c.client_id.clone() {
                    self.stats.periodic_resends += 1;
                    self.resend(conn, &client_id);
                }
            }
        }
    }

    fn violation(&mut self, what: String) {
        self.notes.push(Note::Violation(what));
    }

    fn send(&mut self, conn: ConnId, packet: &Packet) {
        if let Some(Out::Bytes(last, buf)) = self.out.last_mut() {
            if *last == conn {
                packet.encode(buf).expect("the broker sends valid packets");
                return;
            }
        }
        let mut buf = BytesMut::with_capacity(packet.encoded_len());
        packet
            .encode(&mut buf)
            .expect("the broker sends valid packets");
        self.out.push(Out::Bytes(conn, buf));
    }

    /// We end the connection (protocol error, keep-alive, takeover, DISCONNECT, refusal).
    fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.stats.cut_mid_packet += u64::from(c.decoder.buffered_len() > 0);
        self.out.push(Out::Close(conn));
        let Some(client_id) = c.client_id else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&client_id) else {
            return;
        };
        if s.conn == Some(conn) {
            s.conn = None;
            if s.clean {
                let epoch = s.epoch;
                self.sessions.remove(&client_id);
                self.notes.push(Note::SessionEnded { epoch });
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        let Some(client_id) = self.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
            match packet {
                Packet::Connect(connect) => self.on_connect(now, conn, *connect),
                other => {
                    self.violation(format!(
                        "conn {conn}: {} before CONNECT (MQTT-3.1.0-1)",
                        other.packet_type()
                    ));
                    self.close(conn);
                }
            }
            return;
        };
        match packet {
            Packet::Publish(publish) => self.on_publish(conn, &client_id, publish),
            Packet::PubAck(PubAck { packet_id, .. }) => {
                self.on_first_ack(conn, &client_id, packet_id, QoS::AtLeastOnce)
            }
            Packet::PubRec(PubRec { packet_id, .. }) => {
                self.on_first_ack(conn, &client_id, packet_id, QoS::ExactlyOnce)
            }
            Packet::PubRel(PubRel { packet_id, .. }) => self.on_pubrel(conn, &client_id, packet_id),
            Packet::PubComp(PubComp { packet_id, .. }) => {
                let s = self.sessions.get_mut(&client_id).expect("attached");
                if let Some(at) = s
                    .inflight
                    .iter()
                    .position(|o| o.id == packet_id && o.released)
                {
                    s.inflight.remove(at);
                    self.pump(&client_id);
                }
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(conn, &client_id, subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(conn, &client_id, unsubscribe),
            Packet::PingReq => self.send(conn, &Packet::PingResp),
            Packet::Disconnect(_) => self.close(conn),
            other => {
                self.violation(format!(
                    "conn {conn}: the client sent {}, a packet only servers send",
                    other.packet_type()
                ));
                self.close(conn);
            }
        }
    }

    fn on_connect(&mut self, now: Instant, conn: ConnId, connect: sansmq::packet::Connect) {
        self.stats.connects += 1;
        let client_id = connect.client_id.as_str().to_owned();
        self.notes.push(Note::Connect {
            client_id: client_id.clone(),
            clean_session: connect.clean_session,
            keep_alive: connect.keep_alive,
        });
        if self.refuse > 0 {
            self.refuse -= 1;
            self.stats.refusals += 1;
            self.send(
                conn,
                &Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServerUnavailable)),
            );
            self.close(conn);
            return;
        }
        // MQTT-3.1.4-2: a new connection with the same client id takes over.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.conn) {
            self.stats.takeovers += 1;
            self.close(old);
        }
        if connect.clean_session {
            if let Some(s) = self.sessions.remove(&client_id) {
                self.notes.push(Note::SessionEnded { epoch: s.epoch });
            }
        }
        let session_present = self.sessions.contains_key(&client_id);
        if !session_present {
            self.epochs += 1;
            self.notes.push(Note::SessionCreated { epoch: self.epochs });
            self.sessions.insert(
                client_id.clone(),
                Session {
                    epoch: self.epochs,
                    clean: connect.clean_session,
                    conn: None,
                    subs: BTreeMap::new(),
                    inbound: BTreeMap::new(),
                    inflight: VecDeque::new(),
                    queue: VecDeque::new(),
                    last_id: 0,
                },
            );
        }
        let s = self.sessions.get_mut(&client_id).expect("inserted above");
        s.conn = Some(conn);
        s.clean = connect.clean_session;
        self.notes.push(Note::Attached { epoch: s.epoch });
        let c = self.conns.get_mut(&conn).expect("handling its bytes");
        c.client_id = Some(client_id.clone());
        c.keep_alive = Duration::from_secs(u64::from(connect.keep_alive));
        c.next_resend = self.params.resend_every.map(|every| now + every);
        self.send(
            conn,
            &Packet::ConnAck(
                ConnAck::new(ConnectReturnCode::Accepted).with_session_present(session_present),
            ),
        );
        if session_present {
            self.stats.resumed += 1;
            self.resend(conn, &client_id);
        }
        self.pump(&client_id);
    }

    /// Everything in flight to the client again, in order: PUBLISH with DUP=1, or PUBREL.
    fn resend(&mut self, conn: ConnId, client_id: &str) {
        let s = self.sessions.get(client_id).expect("attached");
        let mut packets = Vec::with_capacity(s.inflight.len());
        for o in &s.inflight {
            if o.released {
                packets.push(Packet::PubRel(PubRel::new(o.id)));
            } else {
                let mut p = o.publish.clone();
                p.dup = true;
                packets.push(Packet::Publish(p));
            }
        }
        for packet in &packets {
            if matches!(packet, Packet::Publish(_)) {
                self.stats.dup_publishes += 1;
            }
            self.send(conn, packet);
        }
    }

    /// Moves queued messages into the window to the client.
    fn pump(&mut self, client_id: &str) {
        let window = self.params.window;
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let Some(conn) = s.conn else {
            return;
        };
        let epoch = s.epoch;
        let mut packets = Vec::new();
        while s.inflight.len() < window {
            let Some(mut p) = s.queue.pop_front() else {
                break;
            };
            let id = s.allocate();
            p.packet_id = Some(id);
            p.dup = false;
            packets.push(p.clone());
            s.inflight.push_back(Outbound {
                id,
                publish: p,
                released: false,
            });
        }
        for p in packets {
            self.notes.push(Note::FirstSent {
                id: p.packet_id.expect("QoS 1/2"),
                publish: p.clone(),
                epoch,
            });
            self.send(conn, &Packet::Publish(p));
        }
    }

    fn on_publish(&mut self, conn: ConnId, client_id: &str, publish: Publish) {
        let epoch = self.sessions.get(client_id).expect("attached").epoch;
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => self.route(epoch, client_id, publish),
            (QoS::AtLeastOnce, Some(id)) => {
                self.route(epoch, client_id, publish);
                self.send(conn, &Packet::PubAck(PubAck::new(id)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let s = self.sessions.get_mut(client_id).expect("attached");
                if let Some(stored) = s.inbound.get(&id).cloned() {
                    self.stats.qos2_duplicates_from_client += 1;
                    let same = stored.topic_name() == publish.topic_name()
                        && stored.payload_bytes() == publish.payload_bytes();
                    if !same {
                        self.violation(format!(
                            "PUBLISH {id} reuses an identifier awaiting PUBREL (MQTT-2.3.1-2): \
                             had {:?}, got {:?}",
                            stored.payload_bytes(),
                            publish.payload_bytes()
                        ));
                    } else if !publish.dup {
                        self.violation(format!(
                            "PUBLISH {id} re-sent in a kept session without DUP (MQTT-3.3.1-1)"
                        ));
                    }
                } else {
                    s.inbound.insert(id, publish.clone());
                    if !self.params.route_on_pubrel {
                        self.route(epoch, client_id, publish);
                    }
                }
                self.send(conn, &Packet::PubRec(PubRec::new(id)));
                let c = self.conns.get_mut(&conn).expect("attached");
                if !c.sent_pubrec.contains(&id) {
                    c.sent_pubrec.push_back(id);
                }
            }
            _ => unreachable!("the decoder checks the identifier"),
        }
    }

    fn on_pubrel(&mut self, conn: ConnId, client_id: &str, id: PacketId) {
        let s = self.sessions.get_mut(client_id).expect("attached");
        if s.inbound.contains_key(&id) {
            // MQTT-4.6.0-4: PUBREL in the order the PUBRECs were received.
            let c = self.conns.get_mut(&conn).expect("attached");
            if let Some(at) = c.sent_pubrec.iter().position(|&x| x == id) {
                let before: Vec<PacketId> = c.sent_pubrec.iter().take(at).copied().collect();
                let late = before.into_iter().find(|y| s.inbound.contains_key(y));
                if let Some(y) = late {
                    self.notes.push(Note::Violation(format!(
                        "PUBREL {id} before PUBREL {y}, whose PUBREC came first (MQTT-4.6.0-4)"
                    )));
                }
            }
            let c = self.conns.get_mut(&conn).expect("attached");
            c.sent_pubrec.retain(|&x| x != id);
            let s = self.sessions.get_mut(client_id).expect("attached");
            let publish = s.inbound.remove(&id).expect("checked");
            let epoch = s.epoch;
            if self.params.route_on_pubrel {
                self.route(epoch, client_id, publish);
            }
        } else {
            // E.g. the client's PUBREL re-sent to a session that was lost (MQTT-4.4.0-1).
            self.stats.unknown_pubrels += 1;
        }
        // An unknown identifier still gets PUBCOMP, so the client can finish (MQTT 4.3.3).
        self.send(conn, &Packet::PubComp(PubComp::new(id)));
    }

    /// PUBACK (QoS 1) or PUBREC (QoS 2) for a message in flight to the client.
    fn on_first_ack(&mut self, conn: ConnId, client_id: &str, id: PacketId, qos: QoS) {
        let s = self.sessions.get_mut(client_id).expect("attached");
        let Some(at) = s
            .inflight
            .iter()
            .position(|o| o.id == id && o.publish.qos == qos)
        else {
            return; // a late duplicate, or a message of a session we lost
        };
        // (Acks in arrival order, MQTT-4.6.0-2/3, are checked on the client's side of the wire,
        // where it is known which arrival an ack answers; see `invariants::AckOrder`.)
        if qos == QoS::AtLeastOnce {
            s.inflight.remove(at);
            self.pump(client_id);
        } else {
            s.inflight[at].released = true;
            self.send(conn, &Packet::PubRel(PubRel::new(id)));
        }
    }

    fn on_subscribe(&mut self, conn: ConnId, client_id: &str, subscribe: Subscribe) {
        self.check_request_id(client_id, subscribe.packet_id, "SUBSCRIBE");
        let max_qos = self.params.max_qos;
        let s = self.sessions.get_mut(client_id).expect("attached");
        let mut return_codes = Vec::with_capacity(subscribe.filters.len());
        for f in subscribe.filters {
            let granted = f.qos.min(max_qos);
            s.subs.insert(f.filter, granted);
            return_codes.push(SubscribeReturnCode::Success(granted));
        }
        let suback = SubAck::new(subscribe.packet_id, return_codes);
        self.send(conn, &Packet::SubAck(suback));
    }

    fn on_unsubscribe(&mut self, conn: ConnId, client_id: &str, unsubscribe: Unsubscribe) {
        self.check_request_id(client_id, unsubscribe.packet_id, "UNSUBSCRIBE");
        let s = self.sessions.get_mut(client_id).expect("attached");
        for f in &unsubscribe.filters {
            s.subs.remove(f);
        }
        self.send(
            conn,
            &Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id)),
        );
    }

    /// MQTT-2.3.1-2: one identifier space; a QoS 2 PUBLISH awaiting PUBREL still holds its id.
    fn check_request_id(&mut self, client_id: &str, id: PacketId, what: &str) {
        let s = self.sessions.get(client_id).expect("attached");
        if s.inbound.contains_key(&id) {
            self.violation(format!(
                "{what} {id} reuses the identifier of a QoS 2 PUBLISH awaiting PUBREL (MQTT-2.3.1-2)"
            ));
        }
    }

    /// Onward delivery of a client's message.
    fn route(&mut self, epoch: u64, client_id: &str, publish: Publish) {
        let mut routed_here = None;
        let keys: Vec<String> = self.sessions.keys().cloned().collect();
        for key in keys {
            let s = self.sessions.get_mut(&key).expect("listed");
            // One copy per session at the highest matching grant (allowed by MQTT 3.3.5).
            let granted = s
                .subs
                .iter()
                .filter(|(f, _)| f.matches(&publish.topic_name()))
                .map(|(_, q)| *q)
                .max();
            let Some(granted) = granted else {
                continue;
            };
            let qos = publish.qos.min(granted);
            if key == client_id {
                routed_here = Some(qos);
            }
            let mut copy = Publish::new(publish.topic_name(), publish.payload_bytes());
            copy.qos = qos;
            if qos == QoS::AtMostOnce {
                if let Some(conn) = s.conn {
                    self.send(conn, &Packet::Publish(copy));
                } // offline: QoS 0 is not kept
            } else {
                s.queue.push_back(copy);
                self.pump(&key);
            }
        }
        self.notes.push(Note::Accepted {
            publish,
            epoch,
            routed: routed_here,
        });
    }
}

/// A view of a session for the test's end checks.
#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) connected: bool,
    pub(crate) subscriptions: Vec<(TopicFilter, QoS)>,
    pub(crate) inbound: usize,
    pub(crate) inflight: usize,
    pub(crate) queued: usize,
}
