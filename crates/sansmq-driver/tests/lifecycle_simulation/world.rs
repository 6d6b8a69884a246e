//! One seed's world: a driver for the supervisor (this file is what a real driver does with
//! sockets, done on a virtual clock), the network between it and the model brokers, the
//! application's commands and the faults. It feeds the checks of `invariants.rs` as it goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::DisconnectReason;
use sansmq::packet::{Packet, PacketDecoder, Protocol, QoS, SubscriptionId};
use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};
use sansmq_driver::{AckKey, ConnectOptions, Credentials, Error, Mqtt5Options};

use crate::broker::{BrokerConn, Cluster, DECOY, Reply, message_number};
use crate::invariants::{BackoffModel, Kind, Ledger, RotationCheck, TokenCheck, Violation};
use crate::mqtt5::Mqtt5Check;
use crate::scenario::{Reach, Scenario};
use sansmq_sim_support::Rng;

mod app;
mod faults;

/// Every waiter is a number; a publish's number is also its message's.
#[derive(Debug)]
pub(crate) struct Waiters;

impl Requests for Waiters {
    type Connect = u64;
    type Publish = u64;
    type Subscribe = u64;
    type Unsubscribe = u64;
    type Disconnect = u64;
    type Request = u64;
}

/// Loop iterations one seed may take: more is a livelock.
const MAX_STEPS: u64 = 2_000_000;

/// The credentials provider's tokens, shared with the faults that invalidate them.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The tokens were declared invalid: the provider fails.
    invalid: bool,
    /// The next call hands out an outdated password (the broker refuses it, code 4).
    stale_once: bool,
    password: String,
    /// Calls, and calls that failed.
    calls: u64,
    failures: u64,
}

/// Something the network delivers later.
#[derive(Debug)]
enum Net {
    Opened(u64),
    OpenFailed(u64, Error),
    ToBroker(u64, Bytes),
    /// The client's FIN or close reaches the broker.
    BrokerEof(u64),
    ToClient(u64, Bytes),
    /// The broker's FIN reaches the client.
    ClientEof(u64),
}

/// One transport, both ends.
struct Conn {
    latency: Duration,
    /// The supervisor still holds it (no `Close`, no `handle_closed` yet).
    client_alive: bool,
    open: bool,
    broker: Option<BrokerConn>,
    /// What the supervisor produced for this transport, decoded (a wiretap on its output).
    produced: PacketDecoder,
    /// What the client read from this transport, decoded (a wiretap on its input).
    received: PacketDecoder,
    /// MQTT 5.0: the QoS 1/2 PUBLISHes sent on this transport and not yet completed by what the
    /// client read (PUBACK, PUBCOMP, a failed PUBREC), by packet id: their message numbers.
    unacknowledged: HashMap<u16, u64>,
    /// Bytes of this transport's stream decoded / written so far.
    produced_len: u64,
    written: u64,
    /// CONNACK processed: a restore SUBSCRIBE from now on is out of place.
    connack_seen: bool,
    /// SUBSCRIBEs asking for no QoS 2 (the application always asks for 2: these are restores),
    /// as (packet id, filters, Subscription Identifier).
    restores: Vec<(u16, Vec<String>, Option<u32>)>,
    /// Filters of the application's SUBSCRIBEs (QoS 2) produced before CONNACK was processed:
    /// unanswered requests sent again, which subscribe to their filters without a restore.
    requested_again: Vec<String>,
    /// The broker stopped answering at this time.
    silent_since: Option<Instant>,
    /// The client's last write of anything but a PINGREQ.
    last_write: Option<Instant>,
    /// The client's last write of anything.
    last_any_write: Option<Instant>,
    /// When the client processed CONNACK.
    connack_at: Option<Instant>,
    /// DISCONNECT was written or the write side shut down: the close's own deadline applies.
    closing: bool,
    /// The client read a CONNACK refusing it.
    refused: bool,
    /// What arrived while the supervisor did not want to read, in order (a real driver leaves
    /// it in the socket).
    inbox: std::collections::VecDeque<Net>,
}

pub(crate) use sansmq_sim_support::Stats;

pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) sc: Scenario,
    rng: Rng,
    start: Instant,
    now: Instant,
    sup: Supervisor<Waiters>,
    uris: Vec<String>,
    reach: Vec<Reach>,
    cluster: Cluster,
    tokens: Arc<Mutex<Tokens>>,
    password_generation: u64,
    net: BTreeMap<(Instant, u64), Net>,
    net_seq: u64,
    conns: HashMap<u64, Conn>,
    current: Option<u64>,
    next_conn: u64,
    next_waiter: u64,
    ledger: Ledger,
    backoff: BackoffModel,
    rotation: RotationCheck,
    token_check: TokenCheck,
    /// The supervisor's transport ended at this time: the next delay is measured from it.
    ended: Option<(Instant, u64)>,
    /// The next automatic attempt, as scheduled.
    reconnect_at: Option<Instant>,
    /// The timer showed a request's deadline where the next attempt's was looked for: the
    /// check waits (see `check_schedule`).
    schedule_deferred: bool,
    /// Restore SUBSCRIBE ids seen on earlier transports (the core re-sends unanswered ones).
    restore_ids: HashSet<u16>,
    /// Messages from the broker the application has not acknowledged yet: key, message number,
    /// and the broker sessions started (CONNACKs with session_present = 0) when it arrived.
    unacked: Vec<(AckKey, u64, (u64, u64))>,
    /// Messages the application acknowledged (accepted by `ack`).
    acked: HashSet<u64>,
    /// CONNACKs with session_present = 0 so far.
    sessions_started: u64,
    /// The credentials provider's latest call gave credentials (true without a provider).
    credentials_ok: bool,
    /// Attempts whose CONNECT was written and whose CONNACK was never read: the broker may have
    /// started a new session there without the client being able to know.
    unseen_connacks: u64,
    /// Packet ids of acks the application made for messages that arrived before such an
    /// attempt (see `Reply::Acked`).
    stale_acks: HashSet<u16>,
    /// The protocol this seed speaks.
    protocol: Protocol,
    /// MQTT 5.0 checks: refusals, expiry, Receive Maximum, requests, server DISCONNECTs.
    v5: Mqtt5Check,
    /// Which excused library bugs fail their seeds instead (read once: `getenv` is slow).
    /// The deadlines of the requests waiting for their response, with their waiters.
    requests_due: std::collections::BTreeSet<(Instant, u64)>,
    pub(crate) stats: Stats,
    pub(crate) trace: Option<Vec<String>>,
}

impl World {
    pub(crate) fn new(seed: u64, trace: bool) -> Self {
        // This simulation's own scramble of the seed, kept so that a recorded seed replays the
        // same run.
        let mut rng =
            Rng::from_state(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x2545_F491_4F6C_DD1D);
        let sc = Scenario::draw(&mut rng);
        let uris = sc.uris();
        let tokens = Arc::new(Mutex::new(Tokens {
            password: "token-0".into(),
            ..Tokens::default()
        }));
        let uri_refs: Vec<&str> = uris.iter().map(String::as_str).collect();
        let mut options = ConnectOptions::new(&uris[0], "lifecycle-sim")
            .and_then(|o| o.server_uris(&uri_refs))
            .expect("valid options")
            .keep_alive(sc.keep_alive)
            .connect_timeout(sc.connect_timeout)
            .clean_session(sc.clean_session)
            .resubscribe(sc.resubscribe)
            .max_inflight(sc.max_inflight)
            .offline_queue(sc.offline_queue);
        if sc.reconnect {
            options = options.automatic_reconnect(sc.min_delay, sc.max_delay);
        }
        if let Some(v5) = &sc.mqtt5 {
            let mut mqtt5 = Mqtt5Options::new()
                .topic_alias_maximum(v5.client_topic_alias_maximum)
                .user_property("sim", "lifecycle")
                .expect("a valid user property");
            if let Some(maximum) = v5.client_receive_maximum {
                mqtt5 = mqtt5.receive_maximum(maximum);
            }
            if let Some(secs) = v5.session_expiry {
                mqtt5 = mqtt5.session_expiry(Duration::from_secs(secs.into()));
            }
            options = options.mqtt5(mqtt5).time_to_wait(v5.time_to_wait);
        }
        let protocol = if sc.mqtt5.is_some() {
            Protocol::Mqtt5
        } else {
            Protocol::Mqtt311
        };
        let mut cluster = Cluster {
            v5: sc.mqtt5.clone(),
            max_grant: sc.max_grant,
            valid_password: "token-0".into(),
            ..Cluster::default()
        };
        if sc.provider {
            let tokens = Arc::clone(&tokens);
            options = options.credentials_provider(move || {
                let mut tokens = tokens.lock().expect("tokens");
                tokens.calls += 1;
                if tokens.invalid {
                    tokens.failures += 1;
                    return Err("the tokens were declared invalid".to_owned());
                }
                let password = if std::mem::take(&mut tokens.stale_once) {
                    "token-outdated".to_owned()
                } else {
                    tokens.password.clone()
                };
                Ok(Credentials {
                    username: "sim".into(),
                    password: Some(Bytes::from(password)),
                })
            });
        } else {
            options = options.credentials("sim", "token-0");
        }
        let sup = Supervisor::new(options)
            .expect("supervisor")
            .with_jitter_seed(rng.next_u64());
        #[allow(clippy::disallowed_methods)] // the virtual clock's origin
        let start = Instant::now();
        cluster.unavailable = false;
        Self {
            seed,
            rng,
            start,
            now: start,
            sup,
            reach: sc.servers.clone(),
            uris,
            cluster,
            tokens,
            password_generation: 0,
            net: BTreeMap::new(),
            net_seq: 0,
            conns: HashMap::new(),
            current: None,
            next_conn: 1,
            next_waiter: 1,
            ledger: Ledger::default(),
            backoff: BackoffModel::new(sc.min_delay, sc.max_delay),
            rotation: RotationCheck::default(),
            token_check: TokenCheck::default(),
            ended: None,
            reconnect_at: None,
            schedule_deferred: false,
            restore_ids: HashSet::new(),
            unacked: Vec::new(),
            acked: HashSet::new(),
            sessions_started: 0,
            credentials_ok: true,
            unseen_connacks: 0,
            stale_acks: HashSet::new(),
            protocol,
            requests_due: std::collections::BTreeSet::new(),
            v5: Mqtt5Check::new(
                protocol.is_v5(),
                "responses/lifecycle-sim".to_owned(),
                sc.mqtt5
                    .as_ref()
                    .map_or(Duration::ZERO, |v5| v5.time_to_wait),
            ),
            stats: Stats::new(),
            trace: trace.then(Vec::new),
            sc,
        }
    }

    fn log(&mut self, what: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let at = self.now - self.start;
            trace.push(format!("{:>10.3}s {}", at.as_secs_f64(), what()));
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn fail(&self, violation: Violation) -> Result<(), Violation> {
        Err(format!(
            "at {:.3}s: {violation}",
            (self.now - self.start).as_secs_f64()
        ))
    }

    fn waiter(&mut self, kind: Kind) -> u64 {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        self.ledger.issue(waiter, kind);
        waiter
    }

    fn schedule(&mut self, after: Duration, what: Net) {
        self.net_seq += 1;
        self.net.insert((self.now + after, self.net_seq), what);
    }

    // ---- the run ----

    pub(crate) fn run(&mut self) -> Result<(), Violation> {
        let end = self.start + self.sc.run_for;
        let mut next_app = self.start;
        let mut next_fault = self.start + self.gap(self.sc.fault_gap);
        let mut steps = 0;
        let mut finishing = None::<Instant>;
        loop {
            steps += 1;
            if steps > MAX_STEPS {
                return self.fail(format!("no end after {MAX_STEPS} steps (livelock?)"));
            }
            self.settle()?;
            let timeout = self.sup.poll_timeout();
            let net = self.net.keys().next().map(|(at, _)| *at);
            let mut next = [timeout, net].into_iter().flatten().min();
            if finishing.is_none() {
                next = [next, Some(next_app), Some(next_fault), Some(end)]
                    .into_iter()
                    .flatten()
                    .min();
            }
            let Some(next) = next else { break };
            if let Some(since) = finishing {
                if next > since + Duration::from_secs(3_600) {
                    return self.fail("still busy an hour after the final disconnect".into());
                }
            }
            self.now = self.now.max(next);
            if timeout.is_some_and(|t| t <= self.now) {
                self.sup.handle_timeout(self.now);
                continue;
            }
            if let Some(entry) = self.net.first_entry() {
                if entry.key().0 <= self.now {
                    let what = entry.remove();
                    self.deliver(what)?;
                    continue;
                }
            }
            if finishing.is_some() {
                continue;
            }
            if self.now >= end {
                self.finish()?;
                finishing = Some(self.now);
            } else if self.now >= next_fault {
                self.fault();
                next_fault = self.now + self.gap(self.sc.fault_gap);
            } else if self.now >= next_app {
                self.command()?;
                next_app = self.now + self.gap(self.sc.app_gap);
            }
        }
        // Quiet: shut down answers whatever is left.
        self.sup.shut_down(self.now);
        self.settle()?;
        self.stats.insert("steps", steps);
        if self.protocol.is_v5() {
            self.stats.insert("MQTT 5.0 seeds", 1);
            self.stats
                .insert("sessions expired", self.cluster.expired_sessions);
            self.stats.insert("responses sent", self.cluster.responses);
            self.stats.insert(
                "copies held for the client's Receive Maximum",
                self.cluster.held_copies,
            );
            self.stats.insert(
                "PUBCOMPs 0x92 (identifier not found)",
                self.cluster.unknown_pubrels,
            );
            self.stats.insert(
                "restores without a Subscription Identifier (known bug)",
                self.v5.restores_without_identifier,
            );
            let refused = self.cluster.refused.values().map(Vec::len).sum::<usize>();
            self.stats.insert("messages refused", refused as u64);
        }
        self.ledger.check_end(&self.cluster)?;
        self.v5.check_end(&self.cluster)?;
        self.token_check.check_end()?;
        Ok(())
    }

    /// A random gap around `mean` (uniform on 0..2×mean).
    fn gap(&mut self, mean: Duration) -> Duration {
        let ms = mean.as_millis() as u64;
        Duration::from_millis(self.rng.range(1, 2 * ms.max(1)))
    }

    /// The application ends: disconnect, then the faults stop and the network drains.
    fn finish(&mut self) -> Result<(), Violation> {
        let waiter = self.waiter(Kind::Disconnect);
        let drain = self.rng.millis(0, 2_000);
        self.log(|| format!("app: final disconnect #{waiter} drain {drain:?}"));
        self.sup.disconnect(self.now, drain, waiter);
        self.rotation.connect_answered();
        Ok(())
    }

    /// Drains the supervisor's outputs after an input, feeding the checks.
    fn settle(&mut self) -> Result<(), Violation> {
        loop {
            let mut progress = false;
            // First: a provider that failed in the last input must be known before its report.
            self.check_failures()?;
            while let Some(action) = self.sup.poll_action() {
                progress = true;
                self.act(action)?;
            }
            self.observe()?;
            progress |= self.transmit()?;
            while let Some(event) = self.sup.poll_event() {
                progress = true;
                self.event(event)?;
            }
            if self.sup.wants_read() {
                let waiting = self
                    .current
                    .and_then(|id| self.conns.get_mut(&id))
                    .and_then(|conn| conn.inbox.pop_front());
                if let Some(what) = waiting {
                    progress = true;
                    self.read(what)?;
                }
            }
            if !progress {
                break;
            }
        }
        self.check_bounds()?;
        self.check_keep_alive()?;
        if let Err(e) = self.v5.check_settled() {
            return self.fail(e);
        }
        self.check_schedule()
    }

    /// A broker gone silent is given up: within 1.5 × keep-alive of the client's last write
    /// once connected (PINGREQ after one keep-alive of quiet, PINGRESP due half of one later),
    /// within the connect timeout before CONNACK.
    fn check_keep_alive(&self) -> Result<(), Violation> {
        let Some(conn) = self.current.and_then(|id| self.conns.get(&id)) else {
            return Ok(());
        };
        // Connected, the client writes at least once a keep-alive (a PINGREQ when it has
        // nothing else to say), or the broker drops it (MQTT-3.1.2-22).
        // (A PINGREQ awaiting its PINGRESP holds the next one back for the ping timeout.) The
        // keep-alive counts from the last write, the CONNECT included (MQTT-3.1.2-23).
        let quiet = conn.last_any_write.map(|w| self.now - w);
        let most = self.keep_alive().max(self.ping_timeout());
        if let (true, false, Some(quiet)) = (conn.connack_seen, conn.closing, quiet) {
            if quiet > most + Duration::from_millis(10) {
                return self.fail(format!(
                    "the client wrote nothing for {quiet:?}, keep-alive {:?}, ping timeout {:?}",
                    self.keep_alive(),
                    self.ping_timeout(),
                ));
            }
        }
        let Some(silent) = conn.silent_since else {
            return Ok(());
        };
        if conn.closing {
            return Ok(());
        }
        let keep_alive = self.keep_alive();
        let (from, limit) = if conn.connack_seen {
            let from = conn.last_write.map_or(silent, |w| w.max(silent));
            (from, keep_alive + self.ping_timeout())
        } else {
            (silent, self.sc.connect_timeout)
        };
        if self.now > from + limit + Duration::from_millis(10) {
            return self.fail(format!(
                "the broker went silent at {:.3}s and the client still holds the connection \
                 {:?} after {:.3}s (limit {limit:?})",
                (silent - self.start).as_secs_f64(),
                self.now - from,
                (from - self.start).as_secs_f64(),
            ));
        }
        Ok(())
    }

    /// The keep-alive in force once connected: the brokers' Server Keep Alive, else the client's.
    fn keep_alive(&self) -> Duration {
        match self.sc.mqtt5.as_ref().and_then(|v5| v5.server_keep_alive) {
            Some(secs) => Duration::from_secs(secs.into()),
            None => self.sc.keep_alive,
        }
    }

    /// How long a PINGREQ waits for its PINGRESP: half the keep-alive in force (a Server Keep
    /// Alive shortens it), so a dead broker is given up within 1.5 times that keep-alive.
    fn ping_timeout(&self) -> Duration {
        self.keep_alive() / 2
    }

    /// What the credentials provider answered since the last look (one attempt per input).
    fn check_failures(&mut self) -> Result<(), Violation> {
        let (calls, failures) = {
            let tokens = self.tokens.lock().expect("tokens");
            (tokens.calls, tokens.failures)
        };
        let seen_calls = self.stats.get("provider calls").copied().unwrap_or(0);
        let seen_failures = self.stats.get("provider failures").copied().unwrap_or(0);
        if calls == seen_calls {
            return Ok(());
        }
        self.stats.insert("provider calls", calls);
        self.stats.insert("provider failures", failures);
        self.credentials_ok = failures == seen_failures;
        if self.credentials_ok {
            if let Err(e) = self.token_check.provider_succeeded() {
                return self.fail(e);
            }
        } else {
            self.log(|| "the credentials provider failed".into());
            self.token_check.provider_failed(self.now - self.start);
            self.rotation.attempted_without_credentials(self.uris.len());
            // An automatic attempt without credentials may be tried again later: after the
            // backoff, like a failed attempt.
            self.ended = Some((self.now, u64::MAX));
        }
        Ok(())
    }

    /// Queues stay within the configured limits.
    fn check_bounds(&self) -> Result<(), Violation> {
        let core = self.sup.core();
        if core.inflight_len() > usize::from(self.sc.max_inflight) {
            return self.fail(format!(
                "{} messages in flight, window {}",
                core.inflight_len(),
                self.sc.max_inflight
            ));
        }
        if core.queued_len() > self.sc.offline_queue {
            return self.fail(format!(
                "{} messages queued, limit {}",
                core.queued_len(),
                self.sc.offline_queue
            ));
        }
        Ok(())
    }

    /// After a transport ended: the next automatic attempt's delay (if one was scheduled) is
    /// within the documented backoff.
    fn check_schedule(&mut self) -> Result<(), Violation> {
        let Some((ended, conn)) = self.ended.take() else {
            return Ok(());
        };
        self.schedule_deferred = false;
        if self.ledger.connect_outstanding() || self.sup.is_connected() || self.current.is_some() {
            return Ok(());
        }
        let Some(at) = self.sup.poll_timeout() else {
            return Ok(());
        };
        if self.is_request_deadline(at) {
            // The timer shows a request's deadline, and the reconnect (if any) is not before
            // it: look again once the request is over, or at the attempt if it falls then.
            self.ended = Some((ended, conn));
            self.schedule_deferred = true;
            return Ok(());
        }
        self.reconnect_at = Some(at);
        self.check_delay(ended, conn, at)
    }

    /// The automatic attempt after the transport `conn` that ended at `ended` is due at `at`:
    /// the delay is within the documented backoff.
    fn check_delay(&mut self, ended: Instant, conn: u64, at: Instant) -> Result<(), Violation> {
        // A CONNACK refusal, MQTT 3.1.1 or 5.0, jumps to the longest delay.
        let refused = self.conns.get(&conn).is_some_and(|c| c.refused);
        let delay = at - ended;
        self.log(|| format!("reconnect scheduled in {delay:?} (refused {refused})"));
        self.count("reconnects scheduled");
        if let Err(e) = self.backoff.check(delay, refused) {
            return self.fail(e);
        }
        Ok(())
    }

    /// Whether `at` is the deadline of a request waiting for its response.
    fn is_request_deadline(&self, at: Instant) -> bool {
        self.requests_due
            .range((at, 0)..=(at, u64::MAX))
            .next()
            .is_some()
    }

    // ---- the driver's side ----

    fn act(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Open { uri } => {
                let uri = uri.to_string();
                let Some(index) = self.uris.iter().position(|u| *u == uri) else {
                    return self.fail(format!("asked to open {uri}, not a configured URI"));
                };
                let next = self.next_conn;
                self.log(|| format!("open #{next} {uri}"));
                self.count("opens");
                if let Err(e) = self.token_check.opened(self.credentials_ok) {
                    return self.fail(e);
                }
                if let Err(e) = self.rotation.opened(index, self.uris.len()) {
                    return self.fail(e);
                }
                if !self.ledger.connect_outstanding() {
                    // Automatic: never before its time.
                    match self.reconnect_at.take() {
                        Some(at) if self.now >= at => {}
                        // The reconnect fell on a request's deadline (see `check_schedule`).
                        None if self.schedule_deferred => {
                            self.schedule_deferred = false;
                            if let Some((ended, conn)) = self.ended.take() {
                                self.check_delay(ended, conn, self.now)?;
                            }
                        }
                        at => {
                            return self.fail(format!(
                                "an automatic attempt at a time no backoff scheduled ({at:?})"
                            ));
                        }
                    }
                }
                if let Some(old) = self.current {
                    return self.fail(format!("open while transport #{old} is still held"));
                }
                let id = self.next_conn;
                self.next_conn += 1;
                let (lo, hi) = self.sc.latency;
                let latency = self.rng.millis(lo, hi);
                self.conns.insert(
                    id,
                    Conn {
                        latency,
                        client_alive: true,
                        open: false,
                        broker: None,
                        produced: PacketDecoder::with_protocol(1 << 20, self.protocol),
                        received: PacketDecoder::with_protocol(1 << 20, self.protocol),
                        unacknowledged: HashMap::new(),
                        produced_len: 0,
                        written: 0,
                        connack_seen: false,
                        restores: Vec::new(),
                        requested_again: Vec::new(),
                        silent_since: None,
                        last_write: None,
                        last_any_write: None,
                        connack_at: None,
                        closing: false,
                        refused: false,
                        inbox: std::collections::VecDeque::new(),
                    },
                );
                self.current = Some(id);
                match self.reach[index] {
                    Reach::Up => self.schedule(latency * 2, Net::Opened(id)),
                    Reach::NoDns => {
                        let after = self.rng.millis(1, 100);
                        let host = format!("broker-{index}.sim");
                        let error = Error::Dns {
                            host,
                            reason: "no such host".into(),
                        };
                        self.schedule(after, Net::OpenFailed(id, error));
                    }
                    Reach::Refused => {
                        let error = Error::Io {
                            context: format!("connecting to {uri}"),
                            reason: "connection refused".into(),
                        };
                        self.schedule(latency * 2, Net::OpenFailed(id, error));
                    }
                    Reach::BlackHole => {}
                }
            }
            Action::Close => {
                let Some(id) = self.current.take() else {
                    return self.fail("Close without a transport".into());
                };
                self.log(|| format!("close #{id}"));
                if self
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.silent_since.is_some())
                {
                    self.count("silent brokers given up");
                }
                self.transport_ended(id);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.client_alive = false;
                    if conn.broker.is_some() {
                        let latency = conn.latency;
                        self.schedule(latency, Net::BrokerEof(id));
                    }
                }
            }
            Action::ShutdownWrite => {
                let Some(id) = self.current else {
                    return self.fail("ShutdownWrite without a transport".into());
                };
                self.log(|| format!("shut down writing on #{id}"));
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.closing = true;
                }
                if let Some(latency) = self.conns.get(&id).map(|c| c.latency) {
                    self.schedule(latency, Net::BrokerEof(id));
                }
            }
        }
        Ok(())
    }

    /// The supervisor no longer holds transport `id`.
    fn transport_ended(&mut self, id: u64) {
        if let Some(conn) = self.conns.get(&id) {
            if conn.written > 0 && !conn.connack_seen && !conn.refused {
                self.unseen_connacks += 1;
            }
        }
        self.ended = Some((self.now, id));
    }

    /// Decodes what the supervisor produced since the last look (the tail of its transmit
    /// buffer), before any of it is written.
    fn observe(&mut self) -> Result<(), Violation> {
        let Some(id) = self.current else {
            return Ok(());
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        if !conn.open {
            return Ok(());
        }
        let Some(pending) = self.sup.poll_transmit() else {
            return Ok(());
        };
        let end = conn.written + pending.len() as u64;
        if end <= conn.produced_len {
            return Ok(());
        }
        let from = (conn.produced_len - conn.written) as usize;
        conn.produced.extend_from_slice(&pending[from..]);
        conn.produced_len = end;
        let mut restores = Vec::new();
        let mut violation = None;
        let receive_maximum = self
            .sc
            .mqtt5
            .as_ref()
            .map(|v5| v5.receive_maximum[(id % v5.receive_maximum.len() as u64) as usize]);
        loop {
            match conn.produced.next_packet() {
                Ok(Some(Packet::Subscribe(subscribe))) => {
                    let filters: Vec<String> = subscribe
                        .filters
                        .iter()
                        .map(|f| f.filter.to_string())
                        .collect();
                    if self
                        .v5
                        .is_response_subscribe(subscribe.packet_id.get(), &filters)
                    {
                        // The supervisor's own subscription for requests: sent again unanswered,
                        // it needs no restore.
                        if !conn.connack_seen {
                            conn.requested_again.extend(filters);
                        }
                    } else if subscribe.filters.iter().all(|f| f.qos != QoS::ExactlyOnce) {
                        let ids: Vec<u32> = subscribe
                            .properties()
                            .subscription_identifiers()
                            .map(SubscriptionId::get)
                            .collect();
                        if let Err(e) = self.v5.restored(&filters, &ids) {
                            violation = Some(e);
                            break;
                        }
                        restores.push((subscribe.packet_id.get(), filters, ids.first().copied()));
                    } else if !conn.connack_seen {
                        conn.requested_again.extend(filters);
                    }
                }
                Ok(Some(Packet::Publish(publish))) if self.protocol.is_v5() => {
                    let sent = self.v5.sent(
                        self.now,
                        &publish,
                        &mut conn.unacknowledged,
                        receive_maximum,
                    );
                    if let Err(e) = sent {
                        violation = Some(e);
                        break;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(format!("the supervisor produced a malformed packet: {e}")),
            }
        }
        if let Some(e) = violation {
            return self.fail(e);
        }
        let late = conn.connack_seen && !restores.is_empty();
        conn.restores.extend(restores);
        if late {
            return self.fail(format!(
                "a restore SUBSCRIBE after the CONNACK was processed on #{id}"
            ));
        }
        Ok(())
    }

    /// Writes what the supervisor has to send, sometimes in pieces.
    fn transmit(&mut self) -> Result<bool, Violation> {
        let Some(id) = self.current else {
            return Ok(false);
        };
        let Some(conn) = self.conns.get(&id) else {
            return Ok(false);
        };
        if !conn.open {
            return Ok(false);
        }
        let latency = conn.latency;
        let mut progress = false;
        while let Some(pending) = self.sup.poll_transmit() {
            let n = if self.sc.partial_writes && pending.len() > 1 && self.rng.percent(50) {
                self.rng.range(1, pending.len() as u64 - 1) as usize
            } else {
                pending.len()
            };
            let bytes = Bytes::copy_from_slice(&pending[..n]);
            self.sup.handle_transmitted(self.now, n);
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.written += n as u64;
                // PINGREQ is C0 00 (possibly cut in two writes); DISCONNECT starts E0.
                if !(bytes.len() <= 2 && bytes.iter().all(|b| matches!(b, 0xC0 | 0x00))) {
                    conn.last_write = Some(self.now);
                }
                conn.last_any_write = Some(self.now);
                conn.closing |= bytes.first() == Some(&0xE0);
            }
            self.schedule(latency, Net::ToBroker(id, bytes));
            progress = true;
            self.observe()?;
        }
        Ok(progress)
    }

    fn deliver(&mut self, what: Net) -> Result<(), Violation> {
        match what {
            Net::Opened(id) => {
                if self.current != Some(id) {
                    return Ok(()); // abandoned
                }
                let Some(conn) = self.conns.get_mut(&id) else {
                    return Ok(());
                };
                conn.open = true;
                conn.broker = Some(BrokerConn::new(id));
                self.log(|| format!("#{id} open"));
                self.sup.handle_opened(self.now);
            }
            Net::OpenFailed(id, error) => {
                if self.current != Some(id) {
                    return Ok(());
                }
                self.log(|| format!("#{id} failed: {error}"));
                self.count("open failures");
                self.current = None;
                self.transport_ended(id);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.client_alive = false;
                }
                self.sup.handle_open_failed(self.now, error);
            }
            Net::ToBroker(id, bytes) => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return Ok(());
                };
                let latency = conn.latency;
                let Some(broker) = conn.broker.as_mut() else {
                    return Ok(());
                };
                let was_connected = broker.is_connected();
                let replies = broker.receive(&mut self.cluster, self.now, &bytes);
                if !was_connected && broker.is_connected() {
                    // MQTT-3.1.4-2: a new connection of the client id takes over.
                    let others: Vec<u64> = self
                        .conns
                        .iter_mut()
                        .filter(|(other, _)| **other != id)
                        .filter_map(|(other, c)| {
                            let broker = c.broker.as_mut()?;
                            broker.is_connected().then(|| {
                                broker.taken_over();
                                *other
                            })
                        })
                        .collect();
                    for other in others {
                        self.count("takeovers");
                        self.broker_close(other);
                    }
                }
                for reply in replies {
                    match reply {
                        Reply::Bytes(bytes) => {
                            self.schedule(latency, Net::ToClient(id, bytes.freeze()))
                        }
                        Reply::Close => {
                            self.broker_close(id);
                            break;
                        }
                        Reply::Acked(number, packet_id) => {
                            self.count("messages acknowledged to the broker");
                            if !self.acked.contains(&number) && self.stale_acks.remove(&packet_id) {
                                // A known hole of MQTT 3.1.1, not the supervisor's: a CONNECT
                                // reached a broker that had lost the session, which started a
                                // new one, and the client never read that CONNACK
                                // (session_present = 0); the next CONNACK says 1, so an ack for
                                // a message of the old session lands on a new message with the
                                // same identifier.
                                self.count("acks landing on a new session unseen");
                            } else if !self.acked.contains(&number) {
                                return self.fail(format!(
                                    "the broker took a PUBACK as the ack of message {number}, \
                                     which the application never acknowledged"
                                ));
                            }
                        }
                    }
                }
            }
            Net::BrokerEof(id) => {
                // The broker reads the client's end of stream and closes its side too.
                if self.conns.get(&id).is_some_and(|c| c.broker.is_some()) {
                    self.broker_close(id);
                }
            }
            Net::ToClient(id, _) | Net::ClientEof(id) => {
                if self.current != Some(id) {
                    return Ok(());
                }
                let paused = !self.sup.wants_read()
                    || self.conns.get(&id).is_some_and(|c| !c.inbox.is_empty());
                if paused {
                    self.count("reads paused");
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.inbox.push_back(what);
                    }
                    return Ok(());
                }
                self.read(what)?;
            }
        }
        Ok(())
    }

    /// The driver reads from transport `id`: bytes, or its end of stream.
    fn read(&mut self, what: Net) -> Result<(), Violation> {
        match what {
            Net::ToClient(id, bytes) if self.current == Some(id) => {
                // The wiretap on what the client reads: whether the supervisor processes it
                // (connected; a requested close discards it), and whether a requested
                // disconnect is under way (a server DISCONNECT then ends it, unreported).
                let processed = self.sup.is_connected();
                let disconnecting = self.ledger.disconnect_outstanding();
                let mut violation = None;
                let v5 = self.protocol.is_v5();
                if let (false, Some(conn)) = (v5, self.conns.get_mut(&id)) {
                    // MQTT 3.1.1: only CONNACK matters, and the model sends it alone, first.
                    if let [0x20, 0x02, _, code, ..] = bytes[..] {
                        conn.refused |= code != 0;
                    }
                } else if let Some(conn) = self.conns.get_mut(&id) {
                    conn.received.extend_from_slice(&bytes);
                    loop {
                        let packet = match conn.received.next_packet() {
                            Ok(Some(packet)) => packet,
                            Ok(None) => break,
                            Err(e) => {
                                return Err(format!(
                                    "the model broker sent a malformed packet: {e}"
                                ));
                            }
                        };
                        if let Packet::ConnAck(connack) = &packet {
                            conn.refused |= !connack.is_accepted();
                        }
                        let read = self.v5.read(
                            &packet,
                            processed,
                            disconnecting,
                            &mut conn.unacknowledged,
                        );
                        if let Err(e) = read {
                            violation = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = violation {
                    return self.fail(e);
                }
                if self.rng.percent(50) {
                    self.sup.handle_received(self.now, &bytes);
                } else {
                    // The zero-copy path: read straight into the supervisor's buffer.
                    self.sup.read_buffer().extend_from_slice(&bytes);
                    self.sup.handle_read(self.now);
                }
            }
            Net::ClientEof(id) if self.current == Some(id) => {
                self.log(|| format!("#{id} end of stream"));
                self.current = None;
                self.transport_ended(id);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.client_alive = false;
                }
                self.sup.handle_closed(self.now, None);
            }
            _ => {}
        }
        Ok(())
    }

    /// The broker closes its end: the client reads the end of stream after the latency.
    fn broker_close(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(mut broker) = conn.broker.take() {
            broker.closed(&mut self.cluster, self.now);
            let latency = conn.latency;
            self.schedule(latency, Net::ClientEof(id));
        }
    }

    // ---- what the application sees ----

    fn event(&mut self, event: Event<Waiters>) -> Result<(), Violation> {
        match event {
            Event::Completed(completed) => {
                let (waiter, kind, ok) = match &completed {
                    Completed::Connect(w, r) => (*w, Kind::Connect, r.is_ok()),
                    Completed::Publish(w, qos, r) => (*w, Kind::Publish(*qos), r.is_ok()),
                    Completed::Subscribe(w, r) => (*w, Kind::Subscribe, r.is_ok()),
                    Completed::Unsubscribe(w, r) => (*w, Kind::Unsubscribe, r.is_ok()),
                    Completed::Disconnect(w, r) => (*w, Kind::Disconnect, r.is_ok()),
                    Completed::Request(w, r) => (*w, Kind::Request, r.is_ok()),
                };
                self.log(|| format!("completed #{waiter}: {completed:?}"));
                let now = self.now;
                let checked = match &completed {
                    Completed::Publish(w, _, result) => self.v5.completed_publish(now, *w, result),
                    Completed::Subscribe(w, result) => self.v5.completed_subscribe(*w, result),
                    Completed::Unsubscribe(w, result) => {
                        self.v5.completed_unsubscribe(*w, result);
                        Ok(())
                    }
                    Completed::Request(w, result) => {
                        self.requests_due.retain(|(_, waiter)| waiter != w);
                        self.v5.completed_request(now, *w, result).map(|acked| {
                            // Acknowledged by the supervisor for the request.
                            if let Some(number) = acked {
                                self.acked.insert(number);
                            }
                        })
                    }
                    _ => Ok(()),
                };
                if let Err(e) = checked {
                    return self.fail(e);
                }
                match &completed {
                    Completed::Publish(_, _, Err(Error::PublishRefused(_)))
                    | Completed::Request(_, Err(Error::PublishRefused(_))) => {
                        self.count("refusals reported")
                    }
                    Completed::Publish(_, _, Err(Error::Expired)) => self.count("messages expired"),
                    Completed::Request(_, Ok(_)) => self.count("requests answered"),
                    Completed::Request(_, Err(Error::Timeout(_))) => {
                        self.count("requests timed out")
                    }
                    Completed::Subscribe(_, Err(Error::SubscribeRefused { .. })) => {
                        self.count("subscriptions refused")
                    }
                    _ => {}
                }
                if kind == Kind::Connect {
                    self.rotation.connect_answered();
                    if !ok {
                        self.token_check.connect_failed();
                    }
                }
                if let Err(e) = self.ledger.answer(waiter, kind, ok) {
                    return self.fail(e);
                }
            }
            Event::Connected {
                uri,
                session_present,
                reconnect,
                requested,
            } => {
                self.log(|| {
                    format!("connected to {uri} session_present {session_present} reconnect {reconnect} requested {requested}")
                });
                self.count("connections");
                if session_present {
                    self.count("sessions resumed");
                } else {
                    self.sessions_started += 1;
                }
                self.backoff.connected();
                self.check_restore(session_present, reconnect)?;
            }
            Event::ConnectionLost {
                cause,
                reconnect_at,
            } => {
                self.log(|| format!("connection lost: {cause} (reconnect at {reconnect_at:?})"));
                self.count("connections lost");
                if matches!(
                    cause,
                    Error::ConnectionLost(DisconnectReason::ServerDisconnected(_))
                ) {
                    self.count("server DISCONNECTs reported");
                }
                if let Err(e) = self.v5.connection_lost(&cause) {
                    return self.fail(e);
                }
                // The timer is the reconnect's, unless a request's deadline comes first.
                let timer = self.sup.poll_timeout();
                let request_first = timer.is_some_and(|at| self.is_request_deadline(at))
                    && reconnect_at.is_some_and(|r| Some(r) >= timer);
                if reconnect_at.is_some() && reconnect_at != timer && !request_first {
                    return self.fail(format!(
                        "ConnectionLost says reconnect at {reconnect_at:?}, the timer says {:?}",
                        self.sup.poll_timeout()
                    ));
                }
            }
            Event::WaitingForCredentials { cause } => {
                self.log(|| format!("reconnect stopped: {cause}"));
                self.count("reconnects stopped");
                if let Err(e) = self.token_check.stop_event() {
                    return self.fail(e);
                }
            }
            Event::Message(message) => {
                self.count("messages received");
                if self.protocol.is_v5() {
                    if message.subscription_identifiers().next().is_some() {
                        self.count("messages with Subscription Identifiers");
                    }
                    let number = message_number(&message.payload);
                    let routed = self.cluster.routed_ids.get(&number);
                    if let Err(e) = self.v5.message(&message, routed) {
                        return self.fail(e);
                    }
                }
                if let Some(key) = message.ack_key() {
                    let number = message_number(&message.payload);
                    if number & DECOY != 0 {
                        self.count("decoy responses passed to the application");
                    }
                    self.log(|| format!("message {number} ({key:?}, dup {})", message.duplicate));
                    let seen = (self.sessions_started, self.unseen_connacks);
                    self.unacked.push((key, number, seen));
                }
            }
        }
        Ok(())
    }

    /// At a CONNACK: the SUBSCRIBEs restoring the session went out exactly as the policy says.
    /// A restore lost before its SUBACK is sent again by the core; together with any new one,
    /// the restores ask for every subscription held exactly once.
    fn check_restore(&mut self, session_present: bool, reconnect: bool) -> Result<(), Violation> {
        let Some(id) = self.current else {
            return self.fail("Connected without a transport".into());
        };
        let held: Vec<String> = self
            .sup
            .core()
            .subscriptions()
            .map(|(f, _)| f.to_string())
            .collect();
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        conn.connack_seen = true;
        conn.connack_at = Some(self.now);
        let burst = conn.restores.clone();
        let expected =
            reconnect && !held.is_empty() && self.sc.resubscribe.resubscribes(session_present);
        let new: Vec<_> = burst
            .iter()
            .filter(|(pid, _, _)| !self.restore_ids.contains(pid))
            .collect();
        let mut asked: HashMap<&str, usize> = HashMap::new();
        for (_, filters, _) in &burst {
            for f in filters {
                *asked.entry(f.as_str()).or_default() += 1;
            }
        }
        let unheld = new
            .iter()
            .flat_map(|(_, filters, _)| filters)
            .find(|f| !held.contains(f));
        // A filter an unanswered application SUBSCRIBE asks for again needs no restore.
        let missing = held
            .iter()
            .find(|f| !asked.contains_key(f.as_str()) && !conn.requested_again.contains(f));
        let identifiers: std::collections::HashSet<Option<u32>> =
            new.iter().map(|(_, _, identifier)| *identifier).collect();
        let result = if let Some((filter, n)) = asked.iter().find(|(_, n)| **n > 1) {
            Err(format!(
                "filter {filter:?} restored {n} times on one connection: {burst:?}"
            ))
        } else if !expected && !new.is_empty() {
            Err(format!(
                "a restore SUBSCRIBE ({new:?}) after a connection with session_present \
                 {session_present}, reconnect {reconnect}, policy {:?}",
                self.sc.resubscribe
            ))
        } else if new.len() > identifiers.len() {
            // One restore per Subscription Identifier (a SUBSCRIBE carries at most one).
            Err(format!(
                "{} new restore SUBSCRIBEs on one connection for {} Subscription Identifiers: \
                 {new:?}",
                new.len(),
                identifiers.len()
            ))
        } else if let Some(filter) = new
            .iter()
            .flat_map(|(_, filters, _)| filters)
            .find(|f| conn.requested_again.contains(f))
        {
            Err(format!(
                "the restore asked for {filter:?}, which a SUBSCRIBE sent again asks for already"
            ))
        } else if let Some(filter) = unheld {
            Err(format!(
                "the restore asked for {filter:?}, which the session did not hold"
            ))
        } else if let (true, Some(filter)) = (expected, missing) {
            Err(format!(
                "no restore asked for {filter:?} after a reconnect with session_present \
                 {session_present}, policy {:?}: {burst:?}",
                self.sc.resubscribe
            ))
        } else {
            Ok(())
        };
        if expected {
            self.count("restores");
        }
        for (pid, _, _) in &burst {
            self.restore_ids.insert(*pid);
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
}
