//! The simulated world: the client and the driver around it, the network and the model broker, on
//! one virtual clock. Stepped like quinn-proto's `Pair`: let every side act while anything moves,
//! then jump the clock to the next deadline; the number of steps is bounded to catch livelock.
//!
//! The driver is what a real one does: it drains events and the transmit buffer after every input,
//! appends the client's session records to its store (synced before it acts on the input when a
//! record needs that), writes what the socket takes, reconnects after `Disconnected` (with a
//! backoff), subscribes again after `session_present = 0`, and (in manual-ack mode) acknowledges
//! messages a little later in whatever order their delays give.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use sansmq::client::{Config, SessionRecord, SessionRecording};
use sansmq::packet::{Packet, PacketId, Publish, QoS};
use sansmq::{Client, MqttString, TopicFilter, TopicName};

use crate::ack_order::AckOrder;
use crate::invariants::{Check, Ledger, ensure};
use crate::link::{ConnId, Net, NetEvent};
use crate::model_broker::{Broker, Note, Out};
use crate::scenario::{Fault, Scenario};
use crate::store::Store;
use sansmq_sim_support::Rng;

mod driver;

const CLIENT_ID: &str = "sim-client";

/// Counters of what happened, summed over seeds to show what the run covered.
pub(crate) use sansmq_sim_support::Stats;

pub(crate) struct World {
    rng: Rng,
    pub(crate) sc: Scenario,
    start: Instant,
    now: Instant,
    client: Client,
    topics: Vec<TopicName>,
    broker: Broker,
    net: Net,
    ledger: Ledger,
    /// The driver's session store (empty while recording is off).
    store: Store,
    ack_order: AckOrder,
    /// How much of the client's transmit buffer [`AckOrder`] has seen.
    tx_seen: usize,
    /// Incoming QoS 2 identifiers the client still holds from a session the broker lost without
    /// the client knowing: a new QoS 2 message the broker sends under one of them is swallowed.
    stale_held: BTreeSet<PacketId>,

    // The driver.
    conn: Option<ConnId>,
    /// When each connection was opened.
    opened: BTreeMap<ConnId, Instant>,
    reconnect_at: Option<Instant>,
    broker_up_at: Option<Instant>,
    /// A cut to arm on the next connection.
    cut_next: Option<(crate::link::Dir, usize)>,
    /// The workload's filters were granted once: publishing may start.
    subscribed: bool,
    /// The driver's own SUBSCRIBE for missing workload filters.
    sub_pending: Option<PacketId>,
    /// CONNACK was seen on the current connection.
    connack_seen: bool,
    /// A CONNECT went unanswered (or the process restarted): the broker may have created a
    /// session whose `session_present = 0` never arrived, so the next `session_present = 1` may be
    /// that new, empty session. The driver subscribes again whatever the flag says.
    uncertain: bool,
    /// The broker session the client saw itself attached to at its last CONNACK.
    seen_epoch: u64,
    next_msg: usize,
    publish_retry_at: Option<Instant>,
    /// Manual acks to give: when, which, and the message's sequence number.
    acks: Vec<(Instant, PacketId, usize)>,
    faults: VecDeque<(Duration, Fault)>,
    noise: VecDeque<Duration>,
    /// Faults are over from then on: connections opened after it must stay up.
    quiet_since: Option<Instant>,
    /// The connection the broker stopped reading, while no other fault touched it, and whether it
    /// must end with `TransmitStalled`: the client can write nothing more to it and nothing it
    /// wrote was in flight (a PINGREQ there, or one still fitting in the socket, is written but
    /// never read: `KeepAliveTimeout` is right then too).
    stalled: Option<(ConnId, bool)>,
    /// The client encoded a PINGREQ on this connection and has not read a PINGRESP since.
    ping_outstanding: bool,
    /// MQTT 5: the Topic Aliases the client set on this connection, as its encoded PUBLISHes
    /// say (to know which message an alias-only one is).
    client_aliases: BTreeMap<u16, TopicName>,
    /// MQTT 5: the client's QoS 1/2 PUBLISHes (and PUBRELs) on this connection without their
    /// PUBACK, PUBCOMP or failing PUBREC read yet: never more than the server's Receive Maximum
    /// (MQTT-3.3.4-7).
    unacked_out: BTreeSet<PacketId>,

    /// Bounds derived from the configuration.
    transmit_bound: usize,
    max_packet: usize,

    pub(crate) steps: u64,
    pub(crate) stats: Stats,
    pub(crate) trace: Option<Vec<String>>,
}

/// The origin of the virtual clock: only durations added to it matter.
#[allow(clippy::disallowed_methods)] // the ban on clocks is for the library, not its tests
fn epoch() -> Instant {
    Instant::now()
}

/// Which seeds run MQTT 5: `SANSMQ_SIM_PROTOCOL` is `311` (none: every seed draws as it always
/// did), `5` (all) or `both` (the default: every fourth seed).
fn is_v5_seed(seed: u64) -> bool {
    match std::env::var("SANSMQ_SIM_PROTOCOL").as_deref() {
        Ok("311") => false,
        Ok("5") => true,
        Ok("both") | Err(_) => seed % 4 == 3,
        Ok(other) => panic!("SANSMQ_SIM_PROTOCOL={other}: expected 311, 5 or both"),
    }
}

impl World {
    pub(crate) fn new(seed: u64, trace: bool) -> Self {
        Self::with(seed, is_v5_seed(seed), trace)
    }

    /// The world of `seed`, MQTT 5 or not.
    pub(crate) fn with(seed: u64, v5: bool, trace: bool) -> Self {
        let mut rng = Rng::new(seed);
        // The MQTT 5 limits come from a second stream: the first draws what a 3.1.1 seed does.
        let mut v5_rng = v5.then(|| Rng::new(!seed));
        let sc = Scenario::generate(&mut rng, v5_rng.as_mut());
        let start = epoch();
        let mut config = Config::new(MqttString::try_from(CLIENT_ID).unwrap());
        config.protocol = sc.protocol;
        config.clean_session = sc.clean_session;
        config.keep_alive = sc.keep_alive;
        config.ping_timeout = sc.ping_timeout;
        config.connack_timeout = sc.connack_timeout;
        config.max_inflight = sc.max_inflight;
        config.max_queued = sc.max_queued;
        config.max_transmit_buffer = sc.max_transmit_buffer;
        config.manual_acks = sc.manual_acks;
        config.unacked_policy = sc.policy;
        config.session_recording = sc.session_recording;
        if let Some(v5) = &sc.v5 {
            config.receive_maximum = v5.receive_maximum;
            config.topic_alias_maximum = v5.topic_alias_maximum;
            config.outgoing_topic_aliases = v5.outgoing_topic_aliases;
        }
        let max_packet = sc.max_packet();
        // What may sit in the transmit buffer: QoS 0 up to its limit (plus the one that crossed
        // it), the window of QoS 1/2 messages and their PUBRELs, requests, acks for what the
        // broker's window lets it send (and re-send), a PINGREQ, CONNECT; and past the limit,
        // the answers to one read (the driver stops reading then): at most a flood round's
        // PUBCOMPs, one per identifier however often the broker repeats them.
        let transmit_bound = sc.max_transmit_buffer
            + max_packet * (usize::from(sc.max_inflight) + 8)
            + 4 * 16 * (sc.broker.window + 8)
            + 4 * crate::model_broker::FLOOD_PUBRELS
            + 1024;
        let topics = sc
            .topics
            .iter()
            .map(|t| TopicName::try_from(t.name.as_str()).unwrap())
            .collect();
        let net = Net::new(sc.net_capacity, sc.net_max_write, sc.net_split_percent);
        Self {
            broker: Broker::new(sc.broker.clone()),
            net,
            ledger: Ledger::new(sc.messages.len()),
            store: Store::default(),
            ack_order: AckOrder::new(sc.one_packet_reads, sc.protocol),
            tx_seen: 0,
            stale_held: BTreeSet::new(),
            client: Client::new(config),
            topics,
            faults: sc.faults.iter().cloned().collect(),
            noise: sc.noise.iter().copied().collect(),
            rng,
            sc,
            start,
            now: start,
            conn: None,
            opened: BTreeMap::new(),
            reconnect_at: Some(start),
            broker_up_at: None,
            cut_next: None,
            subscribed: false,
            sub_pending: None,
            connack_seen: false,
            uncertain: false,
            seen_epoch: 0,
            next_msg: 0,
            publish_retry_at: None,
            acks: Vec::new(),
            quiet_since: None,
            stalled: None,
            ping_outstanding: false,
            client_aliases: BTreeMap::new(),
            unacked_out: BTreeSet::new(),
            transmit_bound,
            max_packet,
            steps: 0,
            stats: Stats::new(),
            trace: trace.then(Vec::new),
        }
        .with_wire_log(trace)
    }

    fn with_wire_log(mut self, trace: bool) -> Self {
        if trace {
            self.ack_order.log = Some(Vec::new());
        }
        self
    }

    fn bump(&mut self, what: &'static str) {
        self.count(what, 1);
    }

    fn count(&mut self, what: &'static str, n: u64) {
        *self.stats.entry(what).or_default() += n;
    }

    fn trace(&mut self, what: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let t = (self.now - self.start).as_secs_f64();
            for line in self.ack_order.log.iter_mut().flat_map(|l| l.drain(..)) {
                trace.push(format!("{t:>9.3}s  {line}"));
            }
            trace.push(format!("{t:>9.3}s  {}", what()));
        }
    }

    fn backoff(&mut self) -> Duration {
        let (lo, hi) = self.sc.backoff_ms;
        self.rng.millis(lo, hi)
    }

    /// Runs the scenario to the end and checks everything.
    pub(crate) fn run(&mut self) -> Check {
        let mut result = self.run_to_end();
        if let Err(e) = &mut result {
            self.trace(|| format!("FAILED: {e}"));
            if self.sc.v5.is_some() {
                // Its replay needs the protocol too.
                e.insert_str(0, "MQTT 5 (replay with SANSMQ_SIM_PROTOCOL=5): ");
            }
        }
        result
    }

    fn run_to_end(&mut self) -> Check {
        let fault_end = self.start + self.sc.fault_phase;
        let deadline = fault_end + Duration::from_secs(1800);
        // Seeds settle in at most ~6,000 steps (100,000 seeds measured): ten times that is a
        // livelock, or a thrash the client should not be doing.
        let max_steps = 20_000 + 200 * self.sc.messages.len() as u64;
        loop {
            self.steps += 1;
            ensure!(
                self.steps <= max_steps,
                "livelock: {max_steps} steps without settling; {}",
                self.describe()
            );
            ensure!(
                self.now <= deadline,
                "stuck: not settled 30 minutes after the faults ended; {}",
                self.describe()
            );
            if self.quiet_since.is_none() && self.now >= fault_end {
                self.quiet_since = Some(self.now);
                self.broker.refuse = 0;
                self.cut_next = None;
                self.faults.clear();
                self.trace(|| "faults over: quiet period".into());
            }
            let mut progress = self.due()?;
            // Bytes the socket would not take before may fit now.
            progress |= self.client_io(0)?;
            if let Some(event) = self.net.poll(self.now, &mut self.rng) {
                self.on_net(event)?;
                progress = true;
            }
            progress |= self.timers()?;
            if progress {
                continue;
            }
            if self.quiet_since.is_some() && self.settled() {
                break;
            }
            let next = self.next_deadline();
            match next {
                Some(t) => self.now = t,
                None => {
                    return Err(format!(
                        "stuck: nothing to wait for and not settled; {}",
                        self.describe()
                    ));
                }
            }
        }
        self.trace(|| "settled".into());
        self.finish()
    }

    fn describe(&mut self) -> String {
        let session = self.broker.session_state(CLIENT_ID);
        format!(
            "t={:.3}s client connected={} inflight={} queued={} transmit={}; workload {}/{} \
             published, {} awaiting Published; acks held={}; broker up={} session={session:?}",
            (self.now - self.start).as_secs_f64(),
            self.client.is_connected(),
            self.client.inflight_len(),
            self.client.queued_len(),
            self.client.poll_transmit().map_or(0, <[u8]>::len),
            self.next_msg,
            self.sc.messages.len(),
            self.ledger.outstanding(),
            self.acks.len(),
            self.broker.up,
        )
    }

    fn settled(&mut self) -> bool {
        // The broker holds every workload subscription: a SUBSCRIBE the client wrote may still be
        // unread (e.g. by a broker that stopped reading, on a connection then black-holed) while
        // the client has nothing left to do that it can see.
        let subscribed = |s: &crate::model_broker::SessionState| {
            self.sc.topics.iter().enumerate().all(|(t, spec)| {
                s.subscriptions
                    .iter()
                    .any(|(f, q)| f.as_str() == spec.filter && *q == self.sc.granted(t))
            })
        };
        let broker_done = self.broker.session_state(CLIENT_ID).is_some_and(|s| {
            s.connected && s.inbound == 0 && s.inflight == 0 && s.queued == 0 && subscribed(&s)
        });
        broker_done
            && self.next_msg == self.sc.messages.len()
            && self.ledger.outstanding() == 0
            && self.acks.is_empty()
            && self.subscribed
            && self.sub_pending.is_none()
            && self.client.is_connected()
            && self.client.inflight_len() == 0
            && self.client.queued_len() == 0
            && self.client.poll_transmit().is_none()
            && self.conn.is_some_and(|c| self.net.is_idle(c))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let publish = (self.subscribed && self.next_msg < self.sc.messages.len()).then(|| {
            let at = self.start + self.sc.messages[self.next_msg].at;
            self.publish_retry_at.map_or(at, |r| r.max(at))
        });
        let quiet = self
            .quiet_since
            .is_none()
            .then_some(self.start + self.sc.fault_phase);
        [
            self.client.poll_timeout(),
            self.broker.poll_timeout(),
            self.net.next_deadline(),
            self.faults.front().map(|f| self.start + f.0),
            self.noise.front().map(|&n| self.start + n),
            self.reconnect_at,
            self.broker_up_at,
            publish,
            self.acks.iter().map(|a| a.0).min(),
            quiet,
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > self.now)
        .min()
    }

    /// Drains the client's events and writes its bytes, after any input. `bytes_in` bounds the
    /// events that input may produce.
    fn client_io(&mut self, bytes_in: usize) -> Result<bool, String> {
        let mut events = 0;
        let mut progress = false;
        loop {
            let mut moved = false;
            self.persist()?;
            while let Some(event) = self.client.poll_event() {
                // Any number of queued messages may expire, or turn out unsendable under the
                // terms a CONNACK set, at one input (the ledger checks each of them).
                if !matches!(
                    event,
                    sansmq::Event::Expired { .. } | sansmq::Event::Unsendable { .. }
                ) {
                    events += 1;
                }
                moved = true;
                self.on_event(event)?;
            }
            // What the application did about the events comes before the bytes too.
            self.persist()?;
            self.tap_transmit()?;
            if let Some(conn) = self.conn {
                if let Some(bytes) = self.client.poll_transmit() {
                    let n = self.net.client_write(self.now, conn, bytes, &mut self.rng);
                    if n > 0 {
                        self.client.handle_transmitted(self.now, n);
                        self.tx_seen = self.tx_seen.saturating_sub(n);
                        self.ack_order.written(n);
                        moved = true;
                    }
                }
            }
            self.check_client(events, bytes_in)?;
            if !moved {
                // A real driver stops reading while the transmit buffer is full.
                if let Some(conn) = self.conn {
                    let reading = self.client.wants_read();
                    if !reading {
                        self.bump("driver: reads paused, transmit buffer full");
                    }
                    self.net.set_client_reading(conn, reading);
                }
                return Ok(progress);
            }
            progress = true;
        }
    }

    /// Appends the client's session records to the store, and syncs it if one of them needs
    /// that: after an input, before the driver acts on it.
    pub(super) fn persist(&mut self) -> Check {
        let mut sync = false;
        while let Some(record) = self.client.poll_session_record() {
            ensure!(
                self.sc.session_recording != SessionRecording::Off,
                "a session record with recording off: {record:?}"
            );
            self.trace(|| format!("store: {}", brief(&record)));
            sync |= record.needs_sync();
            self.store.append(record);
            self.bump("store: records appended");
        }
        if sync {
            self.store.sync();
            self.bump("store: syncs");
        }
        Ok(())
    }

    /// Hands what the client encoded since the last look to [`AckOrder`].
    fn tap_transmit(&mut self) -> Check {
        let transmit = self.client.poll_transmit().unwrap_or_default();
        if transmit.len() < self.tx_seen {
            // Cleared: the connection failed, and what was not written is gone.
            self.ack_order.transmit_reset();
            self.tx_seen = 0;
        }
        if transmit.len() > self.tx_seen {
            let packets = self.ack_order.encoded(&transmit[self.tx_seen..])?;
            self.tx_seen = transmit.len();
            for packet in packets {
                match packet {
                    Packet::Publish(p) => {
                        let p = self.resolve_client_alias(p)?;
                        self.trace(|| {
                            format!(
                                "wire: client sends PUBLISH {:?} {} dup={} {}",
                                p.packet_id,
                                p.qos,
                                p.dup,
                                p.topic()
                            )
                        });
                        if let Some(id) = p.packet_id {
                            self.unacked_out.insert(id);
                            self.check_receive_maximum()?;
                            self.ledger.encoded(&self.sc, &p)?;
                        }
                    }
                    Packet::PubRel(r) => {
                        // A QoS 2 message carried over from an earlier connection counts too.
                        self.unacked_out.insert(r.packet_id);
                    }
                    Packet::PingReq => self.ping_outstanding = true,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// MQTT 5: the message an encoded PUBLISH carries, its Topic Alias resolved by what the
    /// client set before on this connection.
    fn resolve_client_alias(&mut self, mut p: Publish) -> Result<Publish, String> {
        let Some(alias) = p.properties().topic_alias else {
            return Ok(p);
        };
        if p.topic().is_empty() {
            let topic = self.client_aliases.get(&alias.get()).ok_or_else(|| {
                format!(
                    "the client encoded a PUBLISH with no topic and Topic Alias {alias}, which it \
                     did not set on this connection"
                )
            })?;
            p.set_topic(topic.clone());
            self.bump("v5: client PUBLISHes by alias alone");
        } else {
            self.client_aliases.insert(alias.get(), p.topic_name());
        }
        p.properties_mut().topic_alias = None;
        Ok(p)
    }

    /// MQTT-3.3.4-7: no more QoS 1/2 PUBLISHes unacknowledged than the server's Receive Maximum
    /// (once the client has read it).
    fn check_receive_maximum(&mut self) -> Check {
        let Some(v5) = &self.sc.broker.v5 else {
            return Ok(());
        };
        let maximum = v5
            .receive_maximum
            .map_or(usize::from(u16::MAX), |m| usize::from(m.get()));
        let unacked = self.unacked_out.len();
        ensure!(
            !self.connack_seen || unacked <= maximum,
            "the client sent a QoS 1/2 PUBLISH with {unacked} unacknowledged, above the server's \
             Receive Maximum {maximum} (MQTT-3.3.4-7): {:?}",
            self.unacked_out
        );
        if unacked == maximum && maximum < usize::from(self.sc.max_inflight) {
            self.bump("v5: window full at the server's Receive Maximum");
        }
        Ok(())
    }

    /// Bounds that hold after every input.
    fn check_client(&mut self, events: usize, bytes_in: usize) -> Check {
        let window = usize::from(self.sc.max_inflight);
        let inflight = self.client.inflight_len();
        ensure!(
            inflight <= window,
            "inflight {inflight} above the window {window}"
        );
        let queued = self.client.queued_len();
        ensure!(
            queued <= self.sc.max_queued,
            "queue {queued} above max_queued {}",
            self.sc.max_queued
        );
        let transmit = self.client.poll_transmit().map_or(0, <[u8]>::len);
        ensure!(
            transmit <= self.transmit_bound,
            "transmit buffer {transmit} bytes, above the bound {} derived from the config",
            self.transmit_bound
        );
        // While the connection is open, only a partial packet waits. (Once the client gives the
        // connection up, the rest of the read it was processing stays until the next `connect`
        // replaces the decoder: one read's worth, never more.)
        let read = self.client.read_buffer().len();
        ensure!(
            self.conn.is_none() || read < self.max_packet,
            "read buffer holds {read} bytes after processing: more than a partial packet"
        );
        // Each packet (2 bytes at least) gives at most one event; CONNACK may also report the
        // window's messages (Published or Dropped) and a disconnect may follow.
        let bound = bytes_in / 2 + window + 3;
        ensure!(
            events <= bound,
            "{events} events from one input of {bytes_in} bytes (bound {bound})"
        );
        Ok(())
    }

    // ---- the network and the broker ----

    fn on_net(&mut self, event: NetEvent) -> Check {
        match event {
            NetEvent::ToClient(conn, data) => {
                if self.conn != Some(conn) || data.is_empty() {
                    return Ok(());
                }
                let pieces = self.ack_order.split(&data)?;
                if self.sc.one_packet_reads {
                    for (range, packet) in pieces {
                        if self.conn != Some(conn) {
                            break; // the client gave the connection up
                        }
                        if let Some(packet) = &packet {
                            self.arrival(packet);
                        }
                        self.feed(&data[range])?;
                    }
                } else {
                    for packet in pieces.iter().filter_map(|p| p.1.as_ref()) {
                        self.arrival(packet);
                    }
                    self.feed(&data)?;
                }
            }
            NetEvent::ToBroker(conn, data) => {
                self.broker.handle_bytes(self.now, conn, &data);
                self.broker_io()?;
            }
            NetEvent::ClientClosed(conn) => {
                if self.conn == Some(conn) {
                    self.client.handle_closed(self.now);
                    self.client_io(0)?;
                }
            }
            NetEvent::BrokerClosed(conn) => {
                self.broker.handle_closed(conn);
                self.broker_io()?;
            }
        }
        Ok(())
    }

    /// The client is about to process `packet`.
    fn arrival(&mut self, packet: &Packet) {
        self.ack_order.arrival(packet);
        match packet {
            Packet::PubComp(c) => {
                self.ledger.pubcomp(c.packet_id);
                self.unacked_out.remove(&c.packet_id);
            }
            Packet::PubAck(a) => {
                self.unacked_out.remove(&a.packet_id);
            }
            Packet::PubRec(r) if r.reason_code.is_error() => {
                self.unacked_out.remove(&r.packet_id);
            }
            Packet::PingResp => self.ping_outstanding = false,
            _ => {}
        }
    }

    /// The client reads `data`, through either input.
    fn feed(&mut self, data: &[u8]) -> Check {
        if self.rng.percent(50) {
            self.client.handle_received(self.now, data);
        } else {
            self.client.read_buffer().extend_from_slice(data);
            self.client.handle_read(self.now);
        }
        self.client_io(data.len())?;
        Ok(())
    }

    fn timers(&mut self) -> Result<bool, String> {
        let mut progress = false;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
            if let Some(t) = self.client.poll_timeout() {
                ensure!(
                    t > self.now,
                    "poll_timeout is not after now right after handle_timeout: a driver would spin"
                );
            }
            self.client_io(0)?;
            progress = true;
        }
        if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
            self.broker.handle_timeout(self.now);
            self.broker_io()?;
            progress = true;
        }
        Ok(progress)
    }

    /// Hands the broker's output to the network and its notes to the ledger.
    fn broker_io(&mut self) -> Check {
        for out in std::mem::take(&mut self.broker.out) {
            match out {
                Out::Bytes(conn, bytes) => {
                    self.net.broker_write(self.now, conn, &bytes, &mut self.rng);
                }
                Out::Close(conn) => self.net.close(self.now, conn, false),
            }
        }
        for note in std::mem::take(&mut self.broker.notes) {
            self.on_note(note)?;
        }
        Ok(())
    }

    fn on_note(&mut self, note: Note) -> Check {
        match note {
            Note::Accepted {
                publish,
                epoch,
                routed,
            } => {
                self.trace(|| {
                    format!(
                        "broker: took {} {} dup={} (session {epoch}), routed {routed:?}",
                        publish.topic(),
                        publish.qos,
                        publish.dup
                    )
                });
                self.ledger.accepted(&self.sc, &publish, epoch, routed)?;
            }
            Note::Attached { epoch } => self.ledger.attached(epoch),
            Note::Refused { publish, reason } => {
                self.trace(|| {
                    format!(
                        "broker: refused {} {} dup={}: {reason:?}",
                        publish.topic(),
                        publish.qos,
                        publish.dup
                    )
                });
                self.ledger.broker_refused(&self.sc, &publish)?;
            }
            Note::FirstSent { id, publish, epoch } => {
                let swallowed = match publish.qos {
                    QoS::ExactlyOnce => self.stale_held.remove(&id),
                    _ => self.sc.manual_acks && self.ack_order.is_stale(id),
                };
                if swallowed {
                    self.trace(|| format!("broker: new message under stale id {id}: swallowed"));
                    self.ledger.swallowed(&self.sc, &publish, epoch)?;
                }
            }
            Note::SessionCreated { epoch } => {
                self.trace(|| format!("broker: session {epoch} created"));
            }
            Note::SessionEnded { epoch } => {
                self.trace(|| format!("broker: session {epoch} LOST"));
                self.ledger.session_ended(epoch);
            }
            Note::Connect {
                client_id,
                clean_session,
                keep_alive,
            } => {
                let config = self.client.config();
                ensure!(
                    client_id == CLIENT_ID
                        && clean_session == config.clean_session
                        && u64::from(keep_alive) == config.keep_alive.as_secs(),
                    "CONNECT carries {client_id:?} clean={clean_session} keep_alive={keep_alive}, \
                     not the configuration"
                );
            }
            Note::KeepAliveExpired { conn } => {
                self.trace(|| format!("broker: conn {conn} silent too long, dropped"));
                let opened = self.opened.get(&conn).copied();
                if let (Some(quiet), Some(opened)) = (self.quiet_since, opened) {
                    ensure!(
                        opened < quiet,
                        "the broker dropped conn {conn} (opened after the faults ended) for \
                         silence: the client did not keep it alive (MQTT-3.1.2-23)"
                    );
                }
            }
            Note::Violation(what) => return Err(format!("broker saw a violation: {what}")),
        }
        Ok(())
    }

    // ---- the end ----

    fn finish(&mut self) -> Check {
        self.ledger.finish(&self.sc)?;
        if self.sc.session_recording != SessionRecording::Off {
            let session = self.client.snapshot();
            self.store
                .check_replays_to(&session, self.sc.session_recording)?;
        }
        let session = self
            .broker
            .session_state(CLIENT_ID)
            .ok_or("no session at the end")?;
        for (t, spec) in self.sc.topics.iter().enumerate() {
            let granted = self.sc.granted(t);
            let filter = TopicFilter::try_from(spec.filter.as_str()).unwrap();
            ensure!(
                session.subscriptions.contains(&(filter.clone(), granted)),
                "the broker's session lacks {} at {granted}: {:?}",
                spec.filter,
                session.subscriptions
            );
            ensure!(
                self.client
                    .subscriptions()
                    .any(|(f, q)| *f == filter && q == granted),
                "the client's registry lacks {} at {granted}",
                spec.filter
            );
        }
        self.collect_stats();
        Ok(())
    }

    fn collect_stats(&mut self) {
        let l = self.ledger.stats;
        let n = self.net.stats;
        let b = self.broker.stats;
        let mut add = |k: &'static str, v: u64| *self.stats.entry(k).or_default() += v;
        add("messages QoS 0", l.published[0]);
        add("messages QoS 1", l.published[1]);
        add("messages QoS 2", l.published[2]);
        add("deliveries", l.deliveries);
        add("duplicate deliveries (QoS 1)", l.duplicate_deliveries);
        add("session losses", l.session_losses);
        add("copies that had to arrive", l.obligations_kept);
        add("copies lost with their session", l.obligations_voided);
        add("QoS 2 exactly-once checks", l.exactly_once_checked);
        add("first deliveries checked for order", l.order_checked);
        add("dropped (Discard policy)", l.dropped);
        add("store: messages restored after a crash", l.restored);
        add(
            "store: messages Published again (Completed lost at a crash)",
            l.resurrected,
        );
        add(
            "store: messages lost with the process (queue not recorded)",
            l.lost_with_process,
        );
        add(
            "client: first sends with DUP=1 after a crash (possible copies)",
            l.first_sends_marked_dup,
        );
        add(
            "copies swallowed by a stale id (unnoticed loss)",
            l.swallowed,
        );
        add("client acks checked for order", self.ack_order.acks);
        add(
            "streams to the client ended mid-packet",
            self.ack_order.cut_reads,
        );
        add("streams to the broker ended mid-packet", b.cut_mid_packet);
        add("net: partial writes", n.partial_writes);
        add("net: blocked writes", n.blocked_writes);
        add("net: split reads", n.split_reads);
        add("net: cuts toward broker", n.cuts_to_broker);
        add("net: cuts toward client", n.cuts_to_client);
        add("net: resets", n.breaks);
        add("broker: CONNECTs", b.connects);
        add("broker: refusals", b.refusals);
        add("broker: takeovers", b.takeovers);
        add("broker: sessions resumed", b.resumed);
        add("broker: DUP re-sends", b.dup_publishes);
        add("broker: periodic re-send rounds", b.periodic_resends);
        add("broker: PUBCOMP for an unknown PUBREL", b.unknown_pubrels);
        add("broker: flood rounds while not reading", b.flood_rounds);
        add(
            "client: PUBLISHes re-sent, each with DUP=1",
            l.resent_with_dup,
        );
        add(
            "client: QoS 2 Published after PUBCOMP",
            l.completed_at_pubcomp,
        );
        add("broker: keep-alive drops", b.keep_alive_drops);
        add("v5: CONNECTs at level 5", b.v5_connects);
        add("v5: messages PublishRefused (checked)", l.refused);
        add(
            "v5: QoS 2 refused by publish (Maximum QoS 1)",
            l.not_supported,
        );
        add("v5: messages Expired (checked)", l.expired);
        add("v5: publish refused as too large (checked)", l.too_large);
        add(
            "v5: taken before CONNACK, Unsendable for its terms (checked)",
            l.unsendable,
        );
        add(
            "v5: Message Expiry Intervals checked at the broker",
            l.expiry_checked,
        );
        add("v5: broker refusals (failure Reason Code)", b.refusals_sent);
        add("v5: broker SUBACK refusals", b.subscriptions_refused);
        add(
            "v5: broker acks with No matching subscribers",
            b.no_matching_subscribers,
        );
        add("v5: client Topic Aliases set", b.aliases_set_by_client);
        add(
            "v5: client Topic Aliases used without topic",
            b.aliases_used_by_client,
        );
        add("v5: broker Topic Aliases set", b.aliases_set_to_client);
        add(
            "v5: broker Topic Aliases used without topic",
            b.aliases_used_to_client,
        );
        add(
            "broker: QoS 2 re-sends from client",
            b.qos2_duplicates_from_client,
        );
        add("steps", self.steps);
    }
}

/// A record for the trace: a message by its identifier and sequence number, not its bytes.
fn brief(record: &SessionRecord) -> String {
    match record {
        SessionRecord::Accepted(p) => format!(
            "Accepted({:?} {} #{:?})",
            p.packet_id,
            p.qos,
            p.payload_bytes()
                .get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
        ),
        SessionRecord::Snapshot(s) => format!(
            "Snapshot({} in flight, {} queued)",
            s.inflight.len(),
            s.queued.len()
        ),
        other => format!("{other:?}"),
    }
}
