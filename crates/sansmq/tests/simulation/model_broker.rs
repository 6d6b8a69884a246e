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
//! - MQTT 5 when the CONNECT says level 5 ([`ServerV5`]): a CONNACK with the seed's Receive
//!   Maximum, Maximum Packet Size, Topic Alias Maximum, Server Keep Alive and Maximum QoS; the
//!   client's Topic Aliases resolved per connection; some messages refused with a failure Reason
//!   Code in PUBACK/PUBREC (always the same ones, so a re-send is refused again), and No matching
//!   subscribers (0x10, a success) for a message no subscription took; its own PUBLISHes within
//!   the client's Receive Maximum, with Topic Aliases within the client's Topic Alias Maximum;
//!   some seeds refuse one of the driver's noise filters in SUBACK (0x87); a connection it drops
//!   for silence or takes over gets a DISCONNECT saying why (0x8D, 0x8E).
//!
//! It also checks the client's side of the protocol and reports what it sees as [`Note`]s: the
//! messages it took (the ground truth for delivery checks), session births and deaths, and
//! violations (acks out of order, identifiers reused, DUP missing, malformed bytes; in MQTT 5 a
//! packet above its Maximum Packet Size, a Topic Alias above its Topic Alias Maximum or not set on
//! the connection, a QoS above its Maximum QoS, a PUBREL for a refused message).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sansmq::packet::{
    ConnAck, ConnectReturnCode, DecodeError, Disconnect, Packet, PacketDecoder, PacketId,
    Properties, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, ReasonCode, SubAck,
    Subscribe, SubscribeReturnCode, UnsubAck, Unsubscribe,
};
use sansmq::{TopicFilter, TopicName};

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
    /// How it behaves to an MQTT 5 client (`None`: the seed is MQTT 3.1.1).
    pub(crate) v5: Option<ServerV5>,
}

/// An MQTT 5 broker's side of the seed.
#[derive(Debug, Clone)]
pub(crate) struct ServerV5 {
    /// Receive Maximum in CONNACK: the client's window of unacknowledged QoS 1/2 PUBLISHes.
    pub(crate) receive_maximum: Option<NonZeroU16>,
    /// Maximum Packet Size in CONNACK: a bigger packet from the client is a violation.
    pub(crate) maximum_packet_size: Option<NonZeroU32>,
    /// Topic Alias Maximum in CONNACK (0: none).
    pub(crate) topic_alias_maximum: u16,
    /// Server Keep Alive in CONNACK: the keep-alive the client must use instead of its own.
    pub(crate) server_keep_alive: Option<u16>,
    /// Maximum QoS 1 in CONNACK: a QoS 2 PUBLISH from the client is a violation.
    pub(crate) maximum_qos_1: bool,
    /// The percentage of messages refused with a failure Reason Code in PUBACK/PUBREC.
    pub(crate) refuse_percent: u64,
    /// Which messages are refused: a hash of this and the message's sequence number.
    pub(crate) refuse_salt: u64,
    /// Set Topic Aliases on PUBLISHes to the client (within its Topic Alias Maximum).
    pub(crate) aliases_to_client: bool,
    /// Refuse subscriptions to [`REFUSED_FILTER`] with Not authorized (0x87).
    pub(crate) refuse_filter: bool,
}

/// MQTT 5: the filter (one of the driver's noise) a [`ServerV5::refuse_filter`] broker refuses.
pub(crate) const REFUSED_FILTER: &str = "noise/2";

impl ServerV5 {
    /// The failure Reason Code the broker refuses message `seq` with, if it refuses it: always
    /// the same answer for the same message.
    pub(crate) fn refusal(&self, seq: u64) -> Option<ReasonCode> {
        const CODES: [ReasonCode; 5] = [
            ReasonCode::UnspecifiedError,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::NotAuthorized,
            ReasonCode::QuotaExceeded,
            ReasonCode::PayloadFormatInvalid,
        ];
        let mut h = sansmq_sim_support::Rng::from_state(self.refuse_salt ^ seq);
        (h.below(100) < self.refuse_percent).then(|| *h.pick(&CODES))
    }
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
    /// MQTT 5: the broker refused the client's message with a failure Reason Code (it took it
    /// not; a re-send is refused again).
    Refused {
        publish: Publish,
        reason: ReasonCode,
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
    /// MQTT 5: CONNECTs at level 5.
    pub(crate) v5_connects: u64,
    /// MQTT 5: the client's PUBLISHes that set a Topic Alias, and that used one without a topic.
    pub(crate) aliases_set_by_client: u64,
    pub(crate) aliases_used_by_client: u64,
    /// MQTT 5: PUBLISHes to the client that set a Topic Alias, and that used one without a topic.
    pub(crate) aliases_set_to_client: u64,
    pub(crate) aliases_used_to_client: u64,
    /// MQTT 5: PUBACK/PUBREC with a failure Reason Code.
    pub(crate) refusals_sent: u64,
    /// MQTT 5: PUBACK/PUBREC with No matching subscribers.
    pub(crate) no_matching_subscribers: u64,
    /// MQTT 5: subscriptions refused in SUBACK.
    pub(crate) subscriptions_refused: u64,
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
    /// What the CONNECT said (3.1.1 until then).
    protocol: Protocol,
    /// MQTT 5: the client's Topic Aliases on this connection.
    aliases_in: BTreeMap<u16, TopicName>,
    /// MQTT 5: ours on this connection, and the client's Topic Alias Maximum.
    aliases_out: BTreeMap<TopicName, NonZeroU16>,
    client_alias_maximum: u16,
    /// MQTT 5: the client's Receive Maximum (our window to it).
    client_receive_maximum: usize,
    /// MQTT 5: QoS 2 messages refused at PUBREC on this connection (no PUBREL may follow).
    refused_pubrecs: BTreeSet<PacketId>,
    /// PUBLISHes sent to the client, to vary how aliases are used.
    publishes_out: u64,
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
                protocol: Protocol::Mqtt311,
                aliases_in: BTreeMap::new(),
                aliases_out: BTreeMap::new(),
                client_alias_maximum: 0,
                client_receive_maximum: usize::MAX,
                refused_pubrecs: BTreeSet::new(),
                publishes_out: 0,
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
                Err(e @ DecodeError::PacketTooLarge { .. }) => {
                    self.violation(format!(
                        "conn {conn}: the client sent a packet above the server's Maximum Packet \
                         Size (MQTT-3.2.2-15): {e}"
                    ));
                    self.close(conn);
                    return;
                }
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
                    self.disconnect_v5(conn, ReasonCode::KeepAliveTimeout);
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
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let protocol = c.protocol;
        let alias = match packet {
            Packet::Publish(p) if self.params.v5.as_ref().is_some_and(|v| v.aliases_to_client) => {
                Self::alias_out(c, p)
            }
            _ => None,
        };
        if let Some((_, with_topic)) = alias {
            if with_topic {
                self.stats.aliases_set_to_client += 1;
            } else {
                self.stats.aliases_used_to_client += 1;
            }
        }
        let buf = match self.out.last_mut() {
            Some(Out::Bytes(last, buf)) if *last == conn => buf,
            _ => {
                self.out.push(Out::Bytes(conn, BytesMut::new()));
                match self.out.last_mut() {
                    Some(Out::Bytes(_, buf)) => buf,
                    _ => unreachable!("pushed above"),
                }
            }
        };
        match (packet, alias) {
            (Packet::Publish(p), Some((alias, with_topic))) => p
                .encode_aliased(alias, with_topic, buf)
                .expect("the broker sends valid packets"),
            _ => packet
                .encode_in(protocol, buf)
                .expect("the broker sends valid packets"),
        }
    }

    /// MQTT 5: the Topic Alias for a PUBLISH to the client on `c`, and whether the topic goes
    /// with it: a topic that has one uses it (every third time setting it again), a new topic
    /// takes a free one while the client's Topic Alias Maximum allows, and then replaces the
    /// alias of another topic in turn.
    fn alias_out(c: &mut BConn, p: &Publish) -> Option<(NonZeroU16, bool)> {
        if c.client_alias_maximum == 0 || !c.protocol.is_v5() {
            return None;
        }
        c.publishes_out += 1;
        let topic = p.topic_name();
        if let Some(&alias) = c.aliases_out.get(&topic) {
            return Some((alias, c.publishes_out % 3 == 0));
        }
        let used = c.aliases_out.len() as u16;
        let alias = if used < c.client_alias_maximum {
            NonZeroU16::new(used + 1)?
        } else {
            // Take over an alias in turn: the topic that had it loses it.
            let alias = NonZeroU16::new((c.publishes_out % u64::from(used)) as u16 + 1)?;
            c.aliases_out.retain(|_, a| *a != alias);
            alias
        };
        c.aliases_out.insert(topic, alias);
        Some((alias, true))
    }

    /// MQTT 5: tells the client why we end the connection, before we do.
    fn disconnect_v5(&mut self, conn: ConnId, reason_code: ReasonCode) {
        if self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5()) {
            let mut disconnect = Disconnect::new();
            disconnect.reason_code = reason_code;
            self.send(conn, &Packet::Disconnect(disconnect));
        }
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
        let v5 = connect.protocol.is_v5();
        if v5 {
            self.stats.v5_connects += 1;
            self.start_v5(conn, &connect);
        }
        if self.refuse > 0 {
            self.refuse -= 1;
            self.stats.refusals += 1;
            let refusal = if v5 {
                ConnAck::from_reason_code(ReasonCode::ServerUnavailable)
            } else {
                ConnAck::new(ConnectReturnCode::ServerUnavailable)
            };
            self.send(conn, &Packet::ConnAck(refusal));
            self.close(conn);
            return;
        }
        // MQTT-3.1.4-2: a new connection with the same client id takes over.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.conn) {
            self.stats.takeovers += 1;
            self.disconnect_v5(old, ReasonCode::SessionTakenOver);
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
        // MQTT 5: the session ends with the connection when its Session Expiry Interval is 0
        // (absent means 0); Clean Start only says whether it starts anew.
        s.clean = if v5 {
            connect.properties.session_expiry_interval.unwrap_or(0) == 0
        } else {
            connect.clean_session
        };
        self.notes.push(Note::Attached { epoch: s.epoch });
        let server_keep_alive = self.params.v5.as_ref().and_then(|p| p.server_keep_alive);
        let c = self.conns.get_mut(&conn).expect("handling its bytes");
        c.client_id = Some(client_id.clone());
        // MQTT-3.2.2-21: the client uses the Server Keep Alive.
        let keep_alive = match server_keep_alive {
            Some(server) if v5 => server,
            _ => connect.keep_alive,
        };
        c.keep_alive = Duration::from_secs(u64::from(keep_alive));
        c.next_resend = self.params.resend_every.map(|every| now + every);
        let connack = if v5 {
            ConnAck::from_reason_code(ReasonCode::Success)
                .with_properties(self.connack_properties())
        } else {
            ConnAck::new(ConnectReturnCode::Accepted)
        };
        self.send(
            conn,
            &Packet::ConnAck(connack.with_session_present(session_present)),
        );
        if session_present {
            self.stats.resumed += 1;
            self.resend(conn, &client_id);
        }
        self.pump(&client_id);
    }

    /// MQTT 5: the connection speaks it from now on, with the limits the client's CONNECT set
    /// and ours on what it may send.
    fn start_v5(&mut self, conn: ConnId, connect: &sansmq::packet::Connect) {
        let maximum = self
            .params
            .v5
            .as_ref()
            .and_then(|p| p.maximum_packet_size)
            .map_or(usize::MAX, |m| m.get() as usize);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.protocol = Protocol::Mqtt5;
        // What the client sent after CONNECT is decoded by the new rules.
        let rest = c.decoder.buffer_mut().split();
        c.decoder = PacketDecoder::with_protocol(maximum, Protocol::Mqtt5);
        c.decoder.extend_from_slice(&rest);
        let props = &connect.properties;
        c.client_alias_maximum = props.topic_alias_maximum.unwrap_or(0);
        c.client_receive_maximum = props
            .receive_maximum
            .map_or(usize::from(u16::MAX), |m| usize::from(m.get()));
    }

    /// MQTT 5: what an accepting CONNACK announces.
    fn connack_properties(&self) -> Properties {
        let mut props = Properties::default();
        if let Some(v5) = &self.params.v5 {
            props.receive_maximum = v5.receive_maximum;
            props.maximum_packet_size = v5.maximum_packet_size;
            props.topic_alias_maximum =
                (v5.topic_alias_maximum > 0).then_some(v5.topic_alias_maximum);
            props.server_keep_alive = v5.server_keep_alive;
            props.maximum_qos = v5.maximum_qos_1.then_some(QoS::AtLeastOnce);
        }
        props
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
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let Some(conn) = s.conn else {
            return;
        };
        // MQTT 5: the client's Receive Maximum caps our window (MQTT-3.3.4-9).
        let receive_maximum = self
            .conns
            .get(&conn)
            .map_or(usize::MAX, |c| c.client_receive_maximum);
        let window = self.params.window.min(receive_maximum);
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

    /// MQTT 5: the client's PUBLISH with its Topic Alias resolved (and removed), or `None` after
    /// a violation.
    fn resolve_alias(&mut self, conn: ConnId, mut publish: Publish) -> Option<Publish> {
        let maximum = self.params.v5.as_ref().map_or(0, |v| v.topic_alias_maximum);
        let Some(alias) = publish.properties().topic_alias else {
            return Some(publish);
        };
        let c = self.conns.get_mut(&conn)?;
        if alias.get() > maximum {
            self.violation(format!(
                "conn {conn}: PUBLISH with Topic Alias {alias}, above the server's Topic Alias \
                 Maximum {maximum} (MQTT-3.3.2-9)"
            ));
            self.close(conn);
            return None;
        }
        if publish.topic().is_empty() {
            let Some(topic) = c.aliases_in.get(&alias.get()).cloned() else {
                self.violation(format!(
                    "conn {conn}: PUBLISH with no topic and Topic Alias {alias}, which the client \
                     did not set on this connection (MQTT 5.0 section 3.3.2.3.4)"
                ));
                self.close(conn);
                return None;
            };
            publish.set_topic(topic);
            self.stats.aliases_used_by_client += 1;
        } else {
            c.aliases_in.insert(alias.get(), publish.topic_name());
            self.stats.aliases_set_by_client += 1;
        }
        publish.properties_mut().topic_alias = None;
        Some(publish)
    }

    /// MQTT 5: whether the broker refuses `publish` (by its sequence number), and with what.
    fn refusal(&self, publish: &Publish) -> Option<ReasonCode> {
        let v5 = self.params.v5.as_ref()?;
        let seq = publish.payload().get(..8)?;
        v5.refusal(u64::from_be_bytes(seq.try_into().ok()?))
    }

    /// The Reason Code of a successful PUBACK/PUBREC: MQTT 5 says when no subscription took it.
    fn success(&mut self, matched: bool) -> ReasonCode {
        if matched || self.params.v5.is_none() {
            ReasonCode::Success
        } else {
            self.stats.no_matching_subscribers += 1;
            ReasonCode::NoMatchingSubscribers
        }
    }

    fn on_publish(&mut self, conn: ConnId, client_id: &str, publish: Publish) {
        let epoch = self.sessions.get(client_id).expect("attached").epoch;
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let publish = if v5 {
            let Some(publish) = self.resolve_alias(conn, publish) else {
                return;
            };
            publish
        } else {
            publish
        };
        if v5
            && publish.qos == QoS::ExactlyOnce
            && self.params.v5.as_ref().is_some_and(|p| p.maximum_qos_1)
        {
            self.violation(format!(
                "conn {conn}: a QoS 2 PUBLISH, above the server's Maximum QoS 1 (MQTT-3.2.2-11)"
            ));
            self.close(conn);
            return;
        }
        let refusal = if v5 { self.refusal(&publish) } else { None };
        if let (Some(id), Some(c)) = (publish.packet_id, self.conns.get_mut(&conn)) {
            c.refused_pubrecs.remove(&id); // a new message under the identifier
        }
        match (publish.qos, publish.packet_id, refusal) {
            (QoS::AtMostOnce, _, _) => {
                self.route(epoch, client_id, publish);
            }
            (QoS::AtLeastOnce, Some(id), Some(reason)) => {
                self.stats.refusals_sent += 1;
                self.notes.push(Note::Refused { publish, reason });
                let mut puback = PubAck::new(id);
                puback.reason_code = reason;
                self.send(conn, &Packet::PubAck(puback));
            }
            (QoS::AtLeastOnce, Some(id), None) => {
                let matched = self.route(epoch, client_id, publish);
                let mut puback = PubAck::new(id);
                puback.reason_code = self.success(matched);
                self.send(conn, &Packet::PubAck(puback));
            }
            (QoS::ExactlyOnce, Some(id), Some(reason))
                if !self
                    .sessions
                    .get(client_id)
                    .is_some_and(|s| s.inbound.contains_key(&id)) =>
            {
                self.stats.refusals_sent += 1;
                self.notes.push(Note::Refused { publish, reason });
                let mut pubrec = PubRec::new(id);
                pubrec.reason_code = reason;
                self.send(conn, &Packet::PubRec(pubrec));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.refused_pubrecs.insert(id);
                }
            }
            (QoS::ExactlyOnce, Some(id), _) => {
                let s = self.sessions.get_mut(client_id).expect("attached");
                // Method A routes at PUBREL, and a re-send was answered before: not known here.
                let mut matched = true;
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
                        matched = self.route(epoch, client_id, publish);
                    }
                }
                let mut pubrec = PubRec::new(id);
                pubrec.reason_code = self.success(matched);
                self.send(conn, &Packet::PubRec(pubrec));
                let c = self.conns.get_mut(&conn).expect("attached");
                if !c.sent_pubrec.contains(&id) {
                    c.sent_pubrec.push_back(id);
                }
            }
            _ => unreachable!("the decoder checks the identifier"),
        }
    }

    fn on_pubrel(&mut self, conn: ConnId, client_id: &str, id: PacketId) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.refused_pubrecs.contains(&id))
        {
            self.violation(format!(
                "conn {conn}: PUBREL {id} for a message refused with a failure Reason Code in its \
                 PUBREC: the exchange was over (MQTT 5.0 section 4.3.3)"
            ));
        }
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
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let s = self.sessions.get_mut(client_id).expect("attached");
        let Some(at) = s
            .inflight
            .iter()
            .position(|o| o.id == id && o.publish.qos == qos)
        else {
            // A late duplicate, or a message of a session we lost. MQTT 5 answers a PUBREC it
            // does not know with PUBREL 0x92 (MQTT 5.0 section 3.6.2.1), which frees the
            // identifier the client holds, so it does not count against its Receive Maximum.
            if v5 && qos == QoS::ExactlyOnce {
                let pubrel = PubRel::with_reason_code(id, ReasonCode::PacketIdentifierNotFound);
                self.send(conn, &Packet::PubRel(pubrel));
            }
            return;
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
        let refuse = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5())
            && self.params.v5.as_ref().is_some_and(|v5| v5.refuse_filter);
        let s = self.sessions.get_mut(client_id).expect("attached");
        let mut return_codes = Vec::with_capacity(subscribe.filters.len());
        for f in subscribe.filters {
            if refuse && f.filter.as_str() == REFUSED_FILTER {
                self.stats.subscriptions_refused += 1;
                return_codes.push(SubscribeReturnCode::Refused(ReasonCode::NotAuthorized));
                continue;
            }
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
        let codes: Vec<ReasonCode> = unsubscribe
            .filters
            .iter()
            .map(|f| match s.subs.remove(f) {
                Some(_) => ReasonCode::Success,
                None => ReasonCode::NoSubscriptionExisted,
            })
            .collect();
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let unsuback = if v5 {
            UnsubAck::with_reason_codes(unsubscribe.packet_id, codes)
        } else {
            UnsubAck::new(unsubscribe.packet_id)
        };
        self.send(conn, &Packet::UnsubAck(unsuback));
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
    /// Returns whether any subscription matched.
    fn route(&mut self, epoch: u64, client_id: &str, publish: Publish) -> bool {
        let mut routed_here = None;
        let mut matched = false;
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
            matched = true;
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
        matched
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
