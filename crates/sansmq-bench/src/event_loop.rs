//! [`EventLoop`]: many bench clients on one `mio::Poll` and one thread.
//!
//! Each turn: wait for socket readiness, but no longer than the earliest deadline in the shared
//! [`Timers`]; feed what happened to the sessions (`handle_read`, `handle_timeout`,
//! `handle_transmitted`), act on their events (subscribe after CONNACK, count, measure), publish
//! the messages that are due, write what the sessions queued, and re-arm their deadlines from
//! `poll_timeout`. Once a second the loop sends a [`Tick`] with what it counted and measured.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use sansmq::packet::{Password, QoS, SubscribeFilter};
use sansmq::{
    Client, CommandError, Config, DisconnectReason, Event, MqttString, TopicFilter, TopicName,
};

use crate::Error;
use crate::conn::{Conn, Io, Phase, Read};
use crate::header::{Header, wall_clock_ns};
use crate::options::{Mode, Options};
use crate::sequence::{Arrival, Sequences};
use crate::stats::{Counters, Latencies, Tick};
use crate::template::TemplateVars;
use crate::timers::{Kind, Timers};

/// How often a loop reports.
const TICK: Duration = Duration::from_secs(1);
/// The longest wait in `poll`, so that a stop request is seen quickly.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How long a stopping loop waits for its DISCONNECTs to go out.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// With `-I 0`, the most messages a client publishes in one go before others get their turn.
const FILL_BATCH: usize = 64;
/// With `-I 0` at QoS 0, the most bytes a client lets wait for the socket.
const FILL_UNWRITTEN: usize = 64 * 1024;
/// Reconnect backoff: the first delay, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// How long a pubsub loop waits for its own messages to come back after the last ack.
const ECHO_GRACE: Duration = Duration::from_secs(10);

/// What every loop of a bench shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) addresses: Vec<SocketAddr>,
    /// This process's run id, in every header.
    pub(crate) run: u32,
    /// Set to end the bench (signal, duration, `sub -L` reached).
    pub(crate) stop: Arc<AtomicBool>,
    /// Messages taken from the `-L` budget.
    pub(crate) issued: AtomicU64,
    /// Messages received by all loops (`sub -L`).
    pub(crate) received: AtomicU64,
    /// When the bench started: connect `g` starts at `start + g * connect_interval`.
    pub(crate) start: Instant,
    pub(crate) password: Option<Password>,
    /// `--ssl`.
    pub(crate) tls: Option<crate::tls::Tls>,
}

impl Shared {
    /// Takes one message from the `-L` budget.
    fn take_budget(&self) -> bool {
        match self.options.limit {
            None => true,
            Some(limit) => self
                .issued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < limit).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    fn give_back_budget(&self) {
        if self.options.limit.is_some() {
            self.issued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn budget_spent(&self) -> bool {
        self.options
            .limit
            .is_some_and(|limit| self.issued.load(Ordering::Relaxed) >= limit)
    }
}

/// Many bench clients on one thread.
#[derive(Debug)]
pub(crate) struct EventLoop {
    shared: Arc<Shared>,
    poll: Poll,
    conns: Vec<Conn>,
    timers: Timers,
    counters: Counters,
    latencies: Latencies,
    causes: Vec<(String, u64)>,
    ticks: Sender<Tick>,
    next_tick: Instant,
    /// Connections not [`Phase::Dead`].
    alive: usize,
    /// QoS 1/2 messages awaiting acknowledgement, over all connections.
    outstanding: usize,
    /// Messages published and received by this loop (pubsub's end).
    published: u64,
    received: u64,
    /// Connections touched this turn, to be written once at its end.
    dirty: Vec<u32>,
    /// When this loop began to disconnect everyone.
    stopping: Option<Instant>,
    /// pubsub: when the last acknowledgement came with the budget spent.
    drained_at: Option<Instant>,
}

impl EventLoop {
    /// Loop `index` of `loops`, with the clients whose place `g` in the bench has
    /// `g % loops == index`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: usize,
        loops: usize,
        ticks: Sender<Tick>,
    ) -> Result<Self, Error> {
        let poll = Poll::new().map_err(Error::EventLoop)?;
        let now = Instant::now();
        let options = &shared.options;
        let mut conns = Vec::new();
        let mut timers = Timers::default();
        let count = usize::try_from(options.count).unwrap_or(usize::MAX);
        for place in (index..count).step_by(loops.max(1)) {
            let place32 = u32::try_from(place).unwrap_or(u32::MAX);
            let sequence = options.start_number.saturating_add(place32);
            let client = Client::new(client_config(&shared, sequence)?);
            let local = u32::try_from(conns.len()).unwrap_or(u32::MAX);
            let offset = options.connect_interval.saturating_mul(place32);
            timers.push(shared.start + offset, local, Kind::Connect);
            conns.push(Conn::new(client, sequence, now));
        }
        let shared_start = shared.start;
        Ok(Self {
            alive: conns.len(),
            shared,
            poll,
            conns,
            timers,
            counters: Counters::default(),
            latencies: Latencies::default(),
            causes: Vec::new(),
            ticks,
            // Aligned on the bench's start, so that the ticks of every loop reach `run` before
            // it closes each second.
            next_tick: shared_start + TICK,
            outstanding: 0,
            published: 0,
            received: 0,
            stopping: None,
            drained_at: None,
            dirty: Vec::new(),
        })
    }

    /// Runs until every client is done (or the bench is stopped), then sends the last tick.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        while self.alive > 0 {
            let now = Instant::now();
            if self.stopping.is_none()
                && (self.shared.stop.load(Ordering::Relaxed) || self.finished(now))
            {
                self.begin_stop(now);
            }
            if self.stopping.is_some_and(|since| now >= since + STOP_GRACE) {
                break;
            }
            let deadline = [
                self.timers.next(),
                Some(self.next_tick),
                Some(now + MAX_WAIT),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
            let wait = if self.dirty.is_empty() {
                deadline.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.note_cause(format!("poll: {e}"));
                    break;
                }
            }
            let now = Instant::now();
            for event in &events {
                let idx = event.token().0;
                if idx < self.conns.len() {
                    self.on_ready(idx, now);
                }
            }
            while let Some((at, idx, kind)) = self.timers.pop_due(now) {
                let idx = idx as usize;
                if idx < self.conns.len() {
                    self.on_timer(idx, at, kind, now);
                }
            }
            self.flush_dirty(now);
            if now >= self.next_tick {
                while self.next_tick <= now {
                    self.next_tick += TICK;
                }
                self.send_tick(false);
            }
        }
        for idx in 0..self.conns.len() {
            self.close(idx);
        }
        self.send_tick(true);
    }

    /// Whether this loop's part of the bench is over by itself (`pub -L`, `pubsub -L`).
    fn finished(&mut self, now: Instant) -> bool {
        let options = &self.shared.options;
        if !options.mode.publishes() || !self.shared.budget_spent() || self.outstanding > 0 {
            return false;
        }
        if options.mode == Mode::PubSub && self.received < self.published {
            let since = *self.drained_at.get_or_insert(now);
            return now >= since + ECHO_GRACE;
        }
        true
    }

    /// Sends DISCONNECT on every open connection and gives up the others.
    fn begin_stop(&mut self, now: Instant) {
        self.stopping = Some(now);
        for idx in 0..self.conns.len() {
            match self.conns[idx].phase {
                Phase::Connected => {
                    self.conns[idx].phase = Phase::Closing;
                    if self.conns[idx]
                        .client
                        .disconnect(now, Duration::ZERO)
                        .is_err()
                    {
                        self.kill(idx);
                    } else {
                        self.after_input(idx, now);
                    }
                }
                Phase::Waiting | Phase::Dialing | Phase::Handshake => self.kill(idx),
                Phase::Closing | Phase::Dead => {}
            }
        }
        self.flush_dirty(now);
    }

    /// A connection is over for good.
    fn kill(&mut self, idx: usize) {
        self.close(idx);
        let conn = &mut self.conns[idx];
        if conn.phase != Phase::Dead {
            conn.phase = Phase::Dead;
            self.alive -= 1;
            self.outstanding -= conn.pending.len().min(self.outstanding);
            conn.pending.clear();
        }
    }

    /// Closes the socket, if any.
    fn close(&mut self, idx: usize) {
        if let Some(mut socket) = self.conns[idx].socket.take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
    }

    fn on_timer(&mut self, idx: usize, at: Instant, kind: Kind, now: Instant) {
        match kind {
            Kind::Connect => {
                if self.conns[idx].phase == Phase::Waiting && self.stopping.is_none() {
                    self.dial(idx, now);
                }
            }
            Kind::Session => {
                let conn = &mut self.conns[idx];
                if conn.armed != Some(at) {
                    return; // superseded by an earlier deadline that already came
                }
                conn.armed = None;
                if conn.client.poll_timeout().is_some_and(|d| d <= now) {
                    conn.client.handle_timeout(now);
                }
                self.after_input(idx, now);
            }
            Kind::Publish => {
                let conn = &mut self.conns[idx];
                if conn.phase != Phase::Connected || self.stopping.is_some() {
                    return;
                }
                conn.publishing = true;
                let interval = self.shared.options.publish_interval;
                if !interval.is_zero() {
                    self.publish_one(idx, now);
                    // Keep the rate: the next one is due an interval after this one was, unless
                    // the loop fell far behind.
                    let next = (at + interval).max(now.checked_sub(TICK).unwrap_or(now));
                    if !self.shared.budget_spent() {
                        self.timers.push(next, idx as u32, Kind::Publish);
                    }
                }
                self.after_input(idx, now);
            }
        }
    }

    /// Starts connection `idx`: TCP connect, CONNECT queued.
    fn dial(&mut self, idx: usize, now: Instant) {
        let shared = &self.shared;
        let address = shared.addresses[self.conns[idx].sequence as usize % shared.addresses.len()];
        let ifaddrs = &shared.options.ifaddrs;
        let local: Option<IpAddr> = (!ifaddrs.is_empty())
            .then(|| ifaddrs[self.conns[idx].sequence as usize % ifaddrs.len()]);
        self.counters.connect_attempts += 1;
        let conn = &mut self.conns[idx];
        conn.started = now;
        let mut socket = match crate::socket::connect(address, local) {
            Ok(socket) => socket,
            Err(e) => return self.connect_failed(idx, now, format!("connect: {e}")),
        };
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.connect_failed(idx, now, format!("registering the socket: {e}"));
        }
        conn.socket = Some(socket);
        conn.phase = Phase::Dialing;
        conn.tls = None;
        conn.ws = None;
        if let Some(tls) = &self.shared.tls {
            match tls.session() {
                Ok(session) => self.conns[idx].tls = Some(session),
                Err(e) => return self.connect_failed(idx, now, e),
            }
        }
        if let Some(path) = &self.shared.options.websocket {
            let options = &self.shared.options;
            match crate::websocket::WebSocket::new(&options.host, options.port, path) {
                Ok(ws) => self.conns[idx].ws = Some(Box::new(ws)),
                Err(e) => return self.connect_failed(idx, now, e),
            }
        }
        let conn = &mut self.conns[idx];
        if let Err(e) = conn.client.connect(now) {
            return self.connect_failed(idx, now, format!("CONNECT: {e}"));
        }
        self.after_input(idx, now);
    }

    /// A connect failed before CONNACK: count it, then retry or give up.
    fn connect_failed(&mut self, idx: usize, now: Instant, cause: String) {
        self.counters.connect_errors += 1;
        self.note_cause(format!("connect failed: {cause}"));
        self.close(idx);
        self.retry_or_kill(idx, now);
    }

    fn retry_or_kill(&mut self, idx: usize, now: Instant) {
        if self.shared.options.reconnect && self.stopping.is_none() {
            let conn = &mut self.conns[idx];
            conn.phase = Phase::Waiting;
            conn.publishing = false;
            conn.failures = conn.failures.saturating_add(1);
            let delay = BACKOFF
                .0
                .saturating_mul(1 << conn.failures.min(5).saturating_sub(1))
                .min(BACKOFF.1);
            // Jitter, so that a broker restart is not met by every client at once.
            let delay = delay.mul_f64(0.5 + fastrand::f64() * 0.5);
            self.timers.push(now + delay, idx as u32, Kind::Connect);
        } else {
            self.kill(idx);
        }
    }

    /// Socket readiness for connection `idx`.
    fn on_ready(&mut self, idx: usize, now: Instant) {
        if self.conns[idx].socket.is_none() {
            return;
        }
        if self.conns[idx].phase == Phase::Dialing {
            match self.conns[idx].check_dialed() {
                Ok(false) => return,
                Ok(true) => self.conns[idx].phase = Phase::Handshake,
                Err(cause) => {
                    self.conns[idx].client.handle_closed(now);
                    return self.drain_events_and_fail(idx, now, cause);
                }
            }
        }
        loop {
            let read = self.conns[idx].read_once(now);
            self.drain_events(idx, now);
            self.conns[idx].shrink();
            match read {
                Read::Again => {}
                Read::Done => break,
                Read::Closed(cause) => {
                    if self.conns[idx].socket.is_some() {
                        self.conns[idx].client.handle_closed(now);
                        return self.drain_events_and_fail(idx, now, cause);
                    }
                    return;
                }
            }
        }
        self.after_input(idx, now);
    }

    /// After the session was told the transport closed: handle its `Disconnected`, naming `cause`.
    fn drain_events_and_fail(&mut self, idx: usize, now: Instant, cause: String) {
        self.note_cause_for(idx, &cause);
        self.drain_events(idx, now);
        // A session already disconnected (a stop under way) reports nothing more.
        if self.conns[idx].socket.is_some() {
            self.close(idx);
            self.retry_or_kill(idx, now);
        }
    }

    /// What follows every input: drain the events, publish (with `-I 0`), and mark the
    /// connection for [`flush_dirty`](Self::flush_dirty) at the end of the turn, so that
    /// everything a turn queued for it (acks read, messages due, refills) goes out in one write.
    fn after_input(&mut self, idx: usize, now: Instant) {
        self.drain_events(idx, now);
        if self.conns[idx].socket.is_none() {
            return;
        }
        self.fill(idx, now);
        let conn = &mut self.conns[idx];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(idx as u32);
        }
    }

    /// Writes what the turn queued on each connection it touched, resumes reading where a full
    /// transmit buffer had stopped it, and re-arms the session deadlines.
    fn flush_dirty(&mut self, now: Instant) {
        // Resuming a read may dirty a connection again; a few rounds settle it, and what is left
        // waits for the next turn (which then does not block).
        for _ in 0..4 {
            if self.dirty.is_empty() {
                return;
            }
            let mut batch = std::mem::take(&mut self.dirty);
            for &idx in &batch {
                let idx = idx as usize;
                self.conns[idx].dirty = false;
                self.finish(idx, now);
            }
            batch.clear();
            if self.dirty.is_empty() {
                self.dirty = batch; // keep the capacity
                return;
            }
        }
    }

    fn finish(&mut self, idx: usize, now: Instant) {
        if self.conns[idx].socket.is_none() {
            return;
        }
        if let Io::Closed(cause) = self.conns[idx].flush(now) {
            self.conns[idx].client.handle_closed(now);
            return self.drain_events_and_fail(idx, now, cause);
        }
        if self.conns[idx].may_resume_reading() {
            // The transmit buffer drained below its limit: read what waited meanwhile (no new
            // readiness event would come for it).
            return self.on_ready(idx, now);
        }
        self.drain_events(idx, now);
        let conn = &mut self.conns[idx];
        if conn.socket.is_some() {
            let at = conn.client.poll_timeout();
            self.timers.arm_session(idx as u32, &mut conn.armed, at);
        }
    }

    fn drain_events(&mut self, idx: usize, now: Instant) {
        while let Some(event) = self.conns[idx].client.poll_event() {
            self.on_event(idx, event, now);
        }
    }

    fn on_event(&mut self, idx: usize, event: Event, now: Instant) {
        match event {
            Event::Connected { .. } => self.on_connected(idx, now),
            Event::Subscribed { results, .. } => {
                for (_, result) in results {
                    match result {
                        Ok(_) => self.counters.subscribed += 1,
                        Err(refused) => {
                            self.counters.subscribe_errors += 1;
                            self.note_cause(format!("subscription refused: {refused}"));
                        }
                    }
                }
            }
            Event::Published { packet_id, .. } => {
                if let Some(sent) = self.settle(idx, packet_id) {
                    self.counters.acked += 1;
                    Latencies::record(&mut self.latencies.ack, now.saturating_duration_since(sent));
                }
            }
            Event::PublishRefused { packet_id, .. } | Event::Dropped { packet_id } => {
                self.settle(idx, packet_id);
                self.counters.refused += 1;
            }
            Event::Unsendable { packet_id, .. } | Event::Expired { packet_id, .. } => {
                if let Some(id) = packet_id {
                    self.settle(idx, id);
                }
                self.counters.refused += 1;
            }
            Event::Message(publish) => self.on_message(idx, publish.payload()),
            Event::Disconnected { reason } => self.on_disconnected(idx, reason, now),
            _ => {}
        }
    }

    /// Forgets an acknowledged (or given up) message; returns when it was published.
    fn settle(&mut self, idx: usize, packet_id: sansmq::packet::PacketId) -> Option<Instant> {
        let pending = &mut self.conns[idx].pending;
        let at = pending.iter().position(|(id, _)| *id == packet_id)?;
        let (_, sent) = pending.remove(at)?;
        self.outstanding = self.outstanding.saturating_sub(1);
        Some(sent)
    }

    fn on_connected(&mut self, idx: usize, now: Instant) {
        self.counters.connected += 1;
        let shared = Arc::clone(&self.shared);
        let options = &shared.options;
        let conn = &mut self.conns[idx];
        Latencies::record(
            &mut self.latencies.connect,
            now.saturating_duration_since(conn.started),
        );
        conn.phase = Phase::Connected;
        conn.failures = 0;
        if options.mode.subscribes() {
            if let Some(filter) = self
                .render_topic(idx)
                .and_then(|t| TopicFilter::try_from(t).ok())
            {
                let qos = options.qos;
                let conn = &mut self.conns[idx];
                if let Err(e) = conn
                    .client
                    .subscribe(now, vec![SubscribeFilter::new(filter, qos)])
                {
                    self.counters.subscribe_errors += 1;
                    self.note_cause(format!("SUBSCRIBE: {e}"));
                }
            }
        }
        if options.mode.publishes() && !self.conns[idx].publishing {
            let (min, max) = options.random_wait;
            let wait = if max > min {
                min + (max - min).mul_f64(fastrand::f64())
            } else {
                min
            };
            self.timers.push(now + wait, idx as u32, Kind::Publish);
        }
    }

    fn on_disconnected(&mut self, idx: usize, reason: DisconnectReason, now: Instant) {
        let phase = self.conns[idx].phase;
        match phase {
            Phase::Closing => {
                self.counters.closed += 1;
                // The DISCONNECT is the last thing in the buffer: write it, then close.
                self.conns[idx].flush_last(now);
                self.kill(idx);
            }
            Phase::Dialing | Phase::Handshake => {
                self.counters.connect_errors += 1;
                if reason != DisconnectReason::TransportClosed {
                    self.note_cause(format!("connect failed: {reason}"));
                }
                self.close(idx);
                self.retry_or_kill(idx, now);
            }
            Phase::Connected => {
                self.counters.disconnects += 1;
                if reason != DisconnectReason::TransportClosed {
                    self.note_cause(format!("connection lost: {reason}"));
                }
                self.close(idx);
                self.retry_or_kill(idx, now);
            }
            Phase::Waiting | Phase::Dead => {}
        }
    }

    /// Names the cause of a transport failure, as a connect failure or a lost connection.
    fn note_cause_for(&mut self, idx: usize, cause: &str) {
        let prefix = match self.conns[idx].phase {
            Phase::Dialing | Phase::Handshake => "connect failed",
            Phase::Closing => return,
            _ => "connection lost",
        };
        self.note_cause(format!("{prefix}: {cause}"));
    }

    fn note_cause(&mut self, cause: String) {
        match self.causes.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => self.causes.push((cause, 1)),
        }
    }

    fn on_message(&mut self, idx: usize, payload: &[u8]) {
        let Some(header) = Header::parse(payload) else {
            self.counters.foreign += 1;
            return;
        };
        self.counters.received += 1;
        self.received += 1;
        let latency_ns = wall_clock_ns().saturating_sub(header.sent_ns);
        Latencies::record(&mut self.latencies.e2e, Duration::from_nanos(latency_ns));
        let sequences = self.conns[idx]
            .sequences
            .get_or_insert_with(|| Box::new(Sequences::default()));
        match sequences.record(header.run, header.publisher, header.sequence) {
            Arrival::InOrder => {}
            Arrival::Reordered => self.counters.reordered += 1,
            Arrival::Duplicate => self.counters.duplicates += 1,
        }
        if let Some(limit) = self.shared.options.limit {
            if self.shared.options.mode == Mode::Sub
                && self.shared.received.fetch_add(1, Ordering::Relaxed) + 1 >= limit
            {
                self.shared.stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// With `-I 0`: publishes while the window has room. A QoS 1/2 window is refilled once half
    /// of it is acknowledged, so that messages go out several to a write; a QoS 0 client that
    /// still has room after a batch comes back for more after the other clients had their turn.
    fn fill(&mut self, idx: usize, now: Instant) {
        let options = &self.shared.options;
        if !options.publish_interval.is_zero() || self.stopping.is_some() {
            return;
        }
        let max_inflight = usize::from(options.inflight);
        let qos = options.qos;
        {
            let conn = &self.conns[idx];
            if conn.phase != Phase::Connected || !conn.publishing || conn.client.queued_len() > 0 {
                return;
            }
            if qos != QoS::AtMostOnce && conn.client.inflight_len() > max_inflight / 2 {
                return;
            }
        }
        for _ in 0..FILL_BATCH {
            let conn = &self.conns[idx];
            if conn.client.queued_len() > 0 {
                return;
            }
            let room = match qos {
                QoS::AtMostOnce => conn.unwritten() < FILL_UNWRITTEN,
                _ => conn.client.inflight_len() < max_inflight,
            };
            if !room || !self.publish_one(idx, now) {
                return;
            }
        }
        if qos == QoS::AtMostOnce && !self.shared.budget_spent() {
            // After this turn's other work: a deadline of `now` would come due again at once.
            self.timers
                .push(now + Duration::from_micros(1), idx as u32, Kind::Publish);
        }
    }

    /// Publishes connection `idx`'s next message; `false` when none went out.
    fn publish_one(&mut self, idx: usize, now: Instant) -> bool {
        if !self.shared.take_budget() {
            return false;
        }
        let Some(topic) = self
            .render_topic(idx)
            .and_then(|t| TopicName::try_from(t).ok())
        else {
            self.shared.give_back_budget();
            return false;
        };
        let shared = Arc::clone(&self.shared);
        let options = &shared.options;
        let conn = &mut self.conns[idx];
        let body = options.message.as_ref().map(|m| {
            let id = conn.client.config().client_id.as_str().to_owned();
            m.render(&TemplateVars {
                sequence: conn.sequence,
                client_id: &id,
                username: options.username.as_deref(),
            })
        });
        let header = Header {
            run: shared.run,
            publisher: conn.sequence,
            sequence: conn.next_message,
            sent_ns: wall_clock_ns(),
        };
        let payload: Bytes = header.payload(options.size, body.as_deref().unwrap_or("").as_bytes());
        match conn.client.publish(now, topic, options.qos, false, payload) {
            Ok(id) => {
                conn.next_message += 1;
                self.counters.published += 1;
                self.published += 1;
                if let Some(id) = id {
                    conn.pending.push_back((id, now));
                    self.outstanding += 1;
                }
                true
            }
            Err(CommandError::QueueFull { .. }) => {
                self.counters.backpressure += 1;
                shared.give_back_budget();
                false
            }
            Err(e) => {
                self.counters.refused += 1;
                self.note_cause(format!("publish: {e}"));
                shared.give_back_budget();
                false
            }
        }
    }

    /// Connection `idx`'s topic (`-t` rendered for it).
    fn render_topic(&self, idx: usize) -> Option<String> {
        let options = &self.shared.options;
        let conn = &self.conns[idx];
        let template = options.topic.as_ref()?;
        Some(template.render(&TemplateVars {
            sequence: conn.sequence,
            client_id: conn.client.config().client_id.as_str(),
            username: options.username.as_deref(),
        }))
    }

    fn send_tick(&mut self, last: bool) {
        let mut tick = Tick {
            counters: std::mem::take(&mut self.counters),
            latencies: std::mem::take(&mut self.latencies),
            causes: std::mem::take(&mut self.causes),
            last,
            ..Tick::default()
        };
        if last {
            for conn in &self.conns {
                if let Some(sequences) = &conn.sequences {
                    tick.lost += sequences.lost();
                    tick.streams += sequences.publishers() as u64;
                }
            }
        }
        // The receiver only goes away when the bench is over.
        let _ = self.ticks.send(tick);
    }
}

/// Room for a PUBLISH's fixed header, topic and properties on top of its payload.
const PACKET_OVERHEAD: usize = 64 * 1024;

/// The largest packet MQTT can frame.
fn frame_len_limit() -> usize {
    sansmq::packet::MAX_REMAINING_LENGTH + 5
}

/// The session settings of client `sequence`.
fn client_config(shared: &Shared, sequence: u32) -> Result<Config, Error> {
    let options = &shared.options;
    let invalid = |what: &'static str, value: &str, reason: String| Error::Invalid {
        what,
        value: value.to_owned(),
        reason,
    };
    let mut login = None;
    let id = if let Some(apsaramq) = &options.apsaramq {
        let device = format!("{}{sequence}", options.prefix);
        let id = sansmq_apsaramq::ClientId::new(&apsaramq.group_id, &device)
            .map_err(|e| invalid("ApsaraMQ client id", &device, e.to_string()))?;
        let credentials = apsaramq
            .auth
            .connect_credentials(&id)
            .map_err(|e| invalid("ApsaraMQ login", id.as_str(), e.to_string()))?;
        login = Some(credentials);
        id.as_str().to_owned()
    } else if options.short_ids {
        format!("{}{sequence}", options.prefix)
    } else {
        format!(
            "{}_bench_{}_{sequence}_{:08x}",
            options.prefix,
            options.mode.name(),
            shared.run
        )
    };
    let client_id =
        MqttString::try_from(id.as_str()).map_err(|e| invalid("client id", &id, e.to_string()))?;
    let mut config = Config::new(client_id);
    config.clean_session = options.clean;
    config.keep_alive = options.keep_alive;
    config.protocol = options.protocol;
    config.session_expiry_interval = options.session_expiry;
    config.max_inflight = options.inflight;
    config.max_queued = usize::from(options.inflight).max(100);
    // A connect storm of thousands takes a while to be accepted.
    config.connack_timeout = Duration::from_secs(30);
    // Room for -s (and, for a subscriber, for publishers using the same -s), with the topic.
    let packet = options
        .size
        .saturating_add(PACKET_OVERHEAD)
        .min(frame_len_limit());
    config.max_outgoing_packet_size = config.max_outgoing_packet_size.max(packet);
    config.max_packet_size = config.max_packet_size.max(packet);
    if let Some(credentials) = login {
        config.username = Some(
            MqttString::try_from(credentials.username.as_str())
                .map_err(|e| invalid("user name", &credentials.username, e.to_string()))?,
        );
        config.password = credentials.password.map(Password);
        return Ok(config);
    }
    if let Some(user) = &options.username {
        let rendered = crate::template::Template::parse(user)?.render(&TemplateVars {
            sequence,
            client_id: &id,
            username: None,
        });
        config.username = Some(
            MqttString::try_from(rendered.as_str())
                .map_err(|e| invalid("user name", &rendered, e.to_string()))?,
        );
    }
    config.password = shared.password.clone();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use sansmq_apsaramq::{AccessKey, AuthMode};

    use super::*;
    use crate::options::ApsaraMq;

    fn shared(options: Options) -> Shared {
        Shared {
            options,
            addresses: Vec::new(),
            run: 0xabcd,
            stop: Arc::new(AtomicBool::new(false)),
            issued: AtomicU64::new(0),
            received: AtomicU64::new(0),
            start: Instant::now(),
            password: None,
            tls: None,
        }
    }

    #[test]
    fn an_apsaramq_client_signs_its_own_client_id() {
        let mut options = Options::new(Mode::Conn);
        options.prefix = "device-00".into();
        options.apsaramq = Some(ApsaraMq {
            group_id: "GID_test".into(),
            auth: AuthMode::signature(
                AccessKey::new("LTAI5tTestKey", "secretKey123"),
                "mqtt-cn-test",
            ),
        });
        let config = client_config(&shared(options), 1).unwrap();
        assert_eq!(config.client_id.as_str(), "GID_test@@@device-001");
        assert_eq!(
            config.username.unwrap().as_str(),
            "Signature|LTAI5tTestKey|mqtt-cn-test"
        );
        assert_eq!(
            &config.password.unwrap().0[..],
            b"WUp3wMiZLkLANz/so65nilEQlic="
        );
    }

    #[test]
    fn client_ids_are_long_or_short_and_user_names_are_templates() {
        let mut options = Options::new(Mode::Pub);
        options.username = Some("user-%i".into());
        let config = client_config(&shared(options.clone()), 7).unwrap();
        assert_eq!(config.client_id.as_str(), "sansmq_bench_pub_7_0000abcd");
        assert_eq!(config.username.unwrap().as_str(), "user-7");
        options.short_ids = true;
        assert_eq!(
            client_config(&shared(options), 7)
                .unwrap()
                .client_id
                .as_str(),
            "sansmq7"
        );
    }

    #[test]
    fn a_bad_group_id_is_refused_with_the_value() {
        let mut options = Options::new(Mode::Conn);
        options.apsaramq = Some(ApsaraMq {
            group_id: "test".into(),
            auth: AuthMode::signature(AccessKey::new("k", "s"), "i"),
        });
        let error = client_config(&shared(options), 1).unwrap_err().to_string();
        assert!(error.contains("sansmq1"), "{error}");
    }
}
