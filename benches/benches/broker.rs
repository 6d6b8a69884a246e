//! Broker bench: one publisher to one subscriber through a private mosquitto, sansmq-mio's blocking
//! `Client` side by side with rumqttc's blocking `Client`, in the same run, on the same broker.
//!
//! Run with `cargo bench -p sansmq-benches --bench broker`. For every case (QoS 0/1/2 × 100 B and
//! 1 KiB payloads) it starts a fresh mosquitto (`max_queued_messages 0`, so nothing is dropped on
//! purpose; packet logging off), warms both libraries up on it, then runs each library
//! `BROKER_BENCH_ROUNDS` times, alternating which goes first (between rounds and between cases).
//! A run connects a subscriber and a publisher of the library under test (setup is not measured),
//! then measures from the first publish until the subscriber has every message and the publisher
//! has every PUBACK / PUBCOMP:
//!
//! - **messages/s**: messages over wall time;
//! - **client CPU µs per message**: the process's `getrusage(RUSAGE_SELF)` user + system time over
//!   the same interval, divided by the messages. Publisher and subscriber both live in this
//!   process, so it is the client CPU of both sides together; mosquitto is another process and is
//!   reported separately (from `/proc/<pid>/stat`, 10 ms ticks, so only roughly).
//!
//! Both libraries get the same window of unacknowledged QoS 1/2 messages (20, mosquitto's QoS 2
//! limit for an MQTT 3.1.1 publisher) and the same queue behind it: sansmq's `offline_queue`, whose
//! `QueueFull` makes the publisher wait on its oldest token, and rumqttc's request channel
//! capacity, whose blocking `send` is its backpressure. Each uses its natural payload type: sansmq
//! shares one `Bytes`, rumqttc's `publish` takes a `Vec<u8>` per message.
//!
//! **The bare client.** A third row-mate, `bare` (`bare_client`), runs the same workload with
//! sansmq's codec in a blocking read-write loop per connection, one thread each, with no session,
//! channels or timers: what the socket pattern alone costs, the floor under both libraries. The
//! table gives its CPU per message as a ratio to rumqttc's too.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that every case works: 200
//! messages, one round.
//!
//! Environment (all optional):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `BROKER_BENCH_MESSAGES` | 20000 (QoS 0/1), 10000 (QoS 2) | messages per run, every case |
//! | `BROKER_BENCH_ROUNDS` | 3 | measured runs per library and case |
//! | `BROKER_BENCH_WINDOW` | 20 | inflight window, both libraries |
//! | `BROKER_BENCH_QUEUE` | 100 | queue behind the window / request channel capacity |
//! | `BROKER_BENCH_TIMEOUT_SECS` | 60 | a run that has not finished by then fails |
//! | `BROKER_BENCH_SANSMQ_RECEIVE` | `receiver` | `receiver` (`Client::messages`) or `handler` (`subscribe_with`) |
//! | `BROKER_BENCH_CASES` | all | comma-separated case names to run, e.g. `qos1/100B,qos2/1KiB` |
//! | `BROKER_BENCH_THREADS` | 0 | 1: also print each thread's CPU µs per message (from `/proc/self/task`) |
//! | `BROKER_BENCH_LIBS` | all | comma-separated among `sansmq`, `rumqttc`, `bare` (one alone for profiling it; no ratios then) |
//! | `BROKER_BENCH_WS` | 1 | 0: skip the WebSocket table below |
//!
//! **WebSocket vs TCP.** Then, unless `BROKER_BENCH_WS=0`, the same cases run sansmq-mio alone
//! through sansmq's own broker (`sansmq-broker`, in a child process: this bench binary re-run
//! with `BROKER_BENCH_SERVE=1`, so its CPU stays out of the client's), once over its TCP listener
//! and once over its WebSocket listener (`ws://…/mqtt`), alternating, for a second table:
//! throughput and client CPU per message over ws ÷ over tcp, the cost of the WebSocket framing
//! for the same client on the same broker.

mod bare_client;
mod broker_cases;
mod usage;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nix::sys::resource::UsageWho;
use sansmq::CommandError;
use sansmq::packet::QoS;
use sansmq_e2e::Mosquitto;

use bare_client::Side;
use broker_cases::{Case, cases, env, rumqttc_qos, wanted_cases};
use sansmq_mio::{Client, ConnectOptions, DeliveryToken};
use usage::{Snapshot, clock_ticks_per_second};

/// What a run may use from the environment.
#[derive(Debug, Clone)]
struct Settings {
    messages: Option<usize>,
    rounds: usize,
    window: u16,
    queue: usize,
    timeout: Duration,
    receive: Receive,
    cases: Option<Vec<String>>,
    libs: Vec<Lib>,
    threads: bool,
}

/// How the sansmq subscriber takes its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receive {
    /// `Client::messages`: a bounded `std::sync::mpsc` receiver read on the bench's thread.
    Receiver,
    /// `Client::subscribe_with`: a handler on the client's callback thread.
    Handler,
}

impl Settings {
    fn from_env() -> Self {
        let receive = match std::env::var("BROKER_BENCH_SANSMQ_RECEIVE").as_deref() {
            Err(_) | Ok("receiver") => Receive::Receiver,
            Ok("handler") => Receive::Handler,
            Ok(other) => panic!("BROKER_BENCH_SANSMQ_RECEIVE={other:?}: receiver or handler"),
        };
        Self {
            messages: env("BROKER_BENCH_MESSAGES"),
            rounds: env("BROKER_BENCH_ROUNDS").unwrap_or(3).max(1),
            window: env("BROKER_BENCH_WINDOW").unwrap_or(20),
            queue: env("BROKER_BENCH_QUEUE").unwrap_or(100),
            timeout: Duration::from_secs(env("BROKER_BENCH_TIMEOUT_SECS").unwrap_or(60)),
            receive,
            cases: wanted_cases(),
            threads: env::<u8>("BROKER_BENCH_THREADS").unwrap_or(0) != 0,
            libs: wanted_libs(),
        }
    }
}

/// The libraries `BROKER_BENCH_LIBS` names (comma-separated; all three by default).
fn wanted_libs() -> Vec<Lib> {
    match std::env::var("BROKER_BENCH_LIBS") {
        Err(_) => Lib::ALL.to_vec(),
        Ok(names) => names
            .split(',')
            .map(|name| {
                let name = name.trim();
                Lib::ALL
                    .into_iter()
                    .find(|lib| lib.name() == name)
                    .unwrap_or_else(|| {
                        panic!("BROKER_BENCH_LIBS: {name:?} is not sansmq, rumqttc or bare")
                    })
            })
            .collect(),
    }
}

/// What a run measures: a library, or the bare client (`bare_client`), the floor of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    Sansmq,
    Rumqttc,
    Bare,
}

impl Lib {
    const ALL: [Self; 3] = [Self::Sansmq, Self::Rumqttc, Self::Bare];

    fn name(self) -> &'static str {
        match self {
            Self::Sansmq => "sansmq",
            Self::Rumqttc => "rumqttc",
            Self::Bare => "bare",
        }
    }
}

/// One thread of this process and the CPU time it used so far.
#[derive(Debug, Clone)]
struct ThreadTime {
    tid: u32,
    name: String,
    cpu_ns: u64,
}

/// Every thread of this process, in creation (tid) order, with its CPU time from
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU). Empty unless `enabled`.
fn thread_times(enabled: bool) -> Vec<ThreadTime> {
    if !enabled {
        return Vec::new();
    }
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut threads: Vec<ThreadTime> = tasks
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            let schedstat = std::fs::read_to_string(entry.path().join("schedstat")).ok()?;
            let cpu_ns = schedstat.split_whitespace().next()?.parse().ok()?;
            Some(ThreadTime {
                tid,
                name: name.trim().to_owned(),
                cpu_ns,
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// The calling thread's CPU time so far (`/proc/thread-self/schedstat`), if `enabled`.
fn own_cpu_ns(enabled: bool) -> u64 {
    if !enabled {
        return 0;
    }
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What one measured run found.
#[derive(Debug, Clone, Default)]
struct Sample {
    messages: u64,
    wall: Duration,
    user_us: i64,
    sys_us: i64,
    voluntary_switches: i64,
    involuntary_switches: i64,
    broker_ticks: u64,
    /// Times the sansmq publisher met `QueueFull` (rumqttc blocks inside `publish` instead).
    queue_full: u64,
    /// CPU time per thread of this process over the run, in ns, by thread name (`#1`, `#2` for
    /// names seen twice, in creation order); only with `BROKER_BENCH_THREADS=1`.
    threads: Vec<(String, u64)>,
}

impl Sample {
    fn between(start: &Snapshot, end: &Snapshot, messages: usize, queue_full: u64) -> Self {
        Self {
            messages: messages as u64,
            wall: end.at - start.at,
            user_us: end.user_us - start.user_us,
            sys_us: end.sys_us - start.sys_us,
            voluntary_switches: end.voluntary_switches - start.voluntary_switches,
            involuntary_switches: end.involuntary_switches - start.involuntary_switches,
            broker_ticks: match (start.broker_ticks, end.broker_ticks) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            },
            queue_full,
            threads: Vec::new(),
        }
    }

    fn with_threads(
        mut self,
        before: &[ThreadTime],
        after: &[ThreadTime],
        publisher_ns: u64,
    ) -> Self {
        if after.is_empty() {
            return self;
        }
        let mut seen: Vec<(String, u64)> = Vec::new();
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for t in after {
            let start = before
                .iter()
                .find(|b| b.tid == t.tid)
                .map_or(0, |b| b.cpu_ns);
            let delta = t.cpu_ns.saturating_sub(start);
            let nth = match counts.iter_mut().find(|(n, _)| *n == t.name) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    counts.push((&t.name, 1));
                    1
                }
            };
            let label = if after.iter().filter(|o| o.name == t.name).count() > 1 {
                format!("{}#{nth}", t.name)
            } else {
                t.name.clone()
            };
            seen.push((label, delta));
        }
        // The publishing thread has ended by now; it measured itself.
        seen.push(("publisher".to_owned(), publisher_ns));
        self.threads = seen.into_iter().filter(|(_, ns)| *ns > 0).collect();
        self
    }

    fn add(&mut self, other: &Self) {
        for (name, ns) in &other.threads {
            match self.threads.iter_mut().find(|(n, _)| n == name) {
                Some((_, total)) => *total += ns,
                None => self.threads.push((name.clone(), *ns)),
            }
        }
        self.messages += other.messages;
        self.wall += other.wall;
        self.user_us += other.user_us;
        self.sys_us += other.sys_us;
        self.voluntary_switches += other.voluntary_switches;
        self.involuntary_switches += other.involuntary_switches;
        self.broker_ticks += other.broker_ticks;
        self.queue_full += other.queue_full;
    }

    fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }

    fn cpu_us_per_message(&self) -> f64 {
        (self.user_us + self.sys_us) as f64 / self.messages as f64
    }

    fn per_message(&self, value: i64) -> f64 {
        value as f64 / self.messages as f64
    }

    fn broker_us_per_message(&self, ticks_per_second: u64) -> f64 {
        self.broker_ticks as f64 * 1e6 / ticks_per_second as f64 / self.messages as f64
    }
}

/// Where a run's clients connect, and the broker process to take CPU readings of.
#[derive(Debug, Clone)]
struct Target {
    /// The URI sansmq connects to.
    url: String,
    /// The plain TCP port (rumqttc's).
    port: u16,
    pid: Option<u32>,
}

impl Target {
    fn mosquitto(broker: &Mosquitto) -> Self {
        Self {
            url: broker.url(),
            port: broker.port(),
            pid: broker.pid(),
        }
    }
}

/// The per-run parameters both libraries share.
#[derive(Debug, Clone)]
struct Run<'a> {
    broker: &'a Target,
    case: &'a Case,
    messages: usize,
    /// Unique per run: client ids and the topic.
    tag: String,
    settings: &'a Settings,
}

impl Run<'_> {
    fn topic(&self) -> String {
        format!("bench/{}", self.tag)
    }

    fn payload(&self) -> Vec<u8> {
        self.case.payload_bytes()
    }

    fn measure(&self, lib: Lib) -> Result<Sample, String> {
        match lib {
            Lib::Sansmq => sansmq_run(self),
            Lib::Rumqttc => rumqttc_run(self),
            Lib::Bare => bare_run(self),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// sansmq-mio

fn sansmq_options(run: &Run<'_>, role: &str) -> Result<ConnectOptions, String> {
    Ok(
        ConnectOptions::new(&run.broker.url, format!("{}-{role}", run.tag))
            .map_err(|e| e.to_string())?
            .max_inflight(run.settings.window)
            .offline_queue(run.settings.queue)
            .time_to_wait(run.settings.timeout),
    )
}

/// How the subscriber's messages reach the counting thread.
enum Incoming {
    Receiver(sansmq_mio::Messages),
    /// The handler counts on the callback thread and says when it has them all.
    Handler(mpsc::Receiver<()>, Arc<AtomicUsize>),
}

fn sansmq_run(run: &Run<'_>) -> Result<Sample, String> {
    let topic = run.topic();
    let qos = run.case.qos;
    let n = run.messages;
    let expected_len = run.case.payload;

    let subscriber = Client::new(sansmq_options(run, "sub")?).map_err(|e| e.to_string())?;
    // The receiver must exist before CONNACK; a handler comes with its subscription.
    let receiver = (run.settings.receive == Receive::Receiver).then(|| subscriber.messages(1024));
    subscriber
        .connect()
        .map_err(|e| format!("subscriber connect: {e}"))?;
    let incoming = match receiver {
        Some(receiver) => {
            subscriber
                .subscribe(&[(&topic, qos)])
                .map_err(|e| format!("subscribe: {e}"))?;
            Incoming::Receiver(receiver)
        }
        None => {
            let (done_tx, done_rx) = mpsc::channel();
            let count = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&count);
            let done = Mutex::new(Some(done_tx));
            subscriber
                .subscribe_with(&topic, qos, move |m| {
                    if m.payload.len() == expected_len
                        && counter.fetch_add(1, Ordering::Relaxed) + 1 == n
                    {
                        let tx = done.lock().ok().and_then(|mut d| d.take());
                        let _ = tx.map(|tx| tx.send(()));
                    }
                })
                .map_err(|e| format!("subscribe: {e}"))?;
            Incoming::Handler(done_rx, count)
        }
    };

    let publisher = Client::new(sansmq_options(run, "pub")?).map_err(|e| e.to_string())?;
    publisher
        .connect()
        .map_err(|e| format!("publisher connect: {e}"))?;
    let payload = Bytes::from(run.payload());
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let threads = run.settings.threads;
    let publishing = {
        let publisher = publisher.clone();
        let topic = topic.clone();
        thread::Builder::new()
            .name("smq-publisher".into())
            .spawn(move || -> Result<(u64, u64), String> {
                go_rx.recv().map_err(|e| e.to_string())?;
                let before = own_cpu_ns(threads);
                let queue_full = sansmq_publish_all(&publisher, &topic, &payload, qos, n)?;
                Ok((queue_full, own_cpu_ns(threads) - before))
            })
            .map_err(|e| e.to_string())?
    };

    let pid = run.broker.pid;
    let threads_before = thread_times(run.settings.threads);
    let start = Snapshot::take(UsageWho::RUSAGE_SELF, pid);
    let deadline = start.at + run.settings.timeout;
    go_tx.send(()).map_err(|e| e.to_string())?;
    let received = match &incoming {
        Incoming::Receiver(rx) => {
            let mut got = 0;
            while got < n {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(m) if m.payload.len() == expected_len => got += 1,
                    Ok(m) => return Err(format!("a payload of {} bytes", m.payload.len())),
                    Err(_) => break,
                }
            }
            got
        }
        Incoming::Handler(done, count) => {
            let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            count.load(Ordering::Relaxed)
        }
    };
    let published = publishing
        .join()
        .map_err(|_| "the publisher panicked".to_owned())?;
    let end = Snapshot::take(UsageWho::RUSAGE_SELF, pid);
    let threads_after = thread_times(run.settings.threads);

    let _ = publisher.disconnect(Duration::from_secs(5));
    publisher.close();
    let _ = subscriber.disconnect(Duration::from_secs(5));
    subscriber.close();
    drop(incoming);
    drop(publisher);
    drop(subscriber);

    let (queue_full, publisher_ns) = published?;
    if received < n {
        return Err(format!("received {received} of {n} messages"));
    }
    Ok(Sample::between(&start, &end, n, queue_full).with_threads(
        &threads_before,
        &threads_after,
        publisher_ns,
    ))
}

/// Publishes `n` messages as fast as the client takes them; on `QueueFull` waits for the oldest
/// unacknowledged message (QoS 1/2) or a moment (QoS 0, whose tokens complete at once). Returns how
/// often the queue was full, after every message was acknowledged.
fn sansmq_publish_all(
    client: &Client,
    topic: &str,
    payload: &Bytes,
    qos: QoS,
    n: usize,
) -> Result<u64, String> {
    let mut pending: VecDeque<DeliveryToken> = VecDeque::new();
    let mut queue_full = 0;
    for _ in 0..n {
        loop {
            match client.publish(topic, payload.clone(), qos, false) {
                Ok(token) => {
                    if qos != QoS::AtMostOnce {
                        pending.push_back(token);
                    }
                    break;
                }
                Err(sansmq_mio::Error::Command(CommandError::QueueFull { .. })) => {
                    queue_full += 1;
                    match pending.pop_front() {
                        Some(token) => token.wait().map_err(|e| format!("delivery: {e}"))?,
                        None => thread::sleep(Duration::from_micros(100)),
                    }
                }
                Err(e) => return Err(format!("publish: {e}")),
            }
        }
    }
    for token in pending {
        token.wait().map_err(|e| format!("delivery: {e}"))?;
    }
    Ok(queue_full)
}

// ---------------------------------------------------------------------------------------------
// rumqttc

fn rumqttc_options(run: &Run<'_>, role: &str) -> rumqttc::MqttOptions {
    let mut options =
        rumqttc::MqttOptions::new(format!("{}-{role}", run.tag), "127.0.0.1", run.broker.port);
    options
        .set_keep_alive(Duration::from_secs(60))
        .set_inflight(run.settings.window)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_request_channel_capacity(run.settings.queue);
    options
}

/// What a rumqttc connection thread reports.
#[derive(Debug)]
enum Report {
    /// CONNACK (publisher) or SUBACK (subscriber).
    Ready,
    /// Every message arrived (subscriber) or was acknowledged (publisher).
    Done,
    Failed(String),
}

/// Drives a rumqttc connection on its own thread, counting `counted` events up to `n`.
fn rumqttc_drive(
    name: &str,
    mut connection: rumqttc::Connection,
    ready: fn(&rumqttc::Event) -> bool,
    counted: impl Fn(&rumqttc::Event) -> bool + Send + 'static,
    n: usize,
    reports: mpsc::Sender<Report>,
) -> Result<thread::JoinHandle<usize>, String> {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut count = 0;
            let mut done = n == 0;
            for event in connection.iter() {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        let _ = reports.send(Report::Failed(e.to_string()));
                        break;
                    }
                };
                if ready(&event) {
                    let _ = reports.send(Report::Ready);
                }
                if counted(&event) {
                    count += 1;
                    if count == n && !done {
                        done = true;
                        let _ = reports.send(Report::Done);
                    }
                }
                if matches!(
                    event,
                    rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)
                ) {
                    // Iterating on would reconnect.
                    break;
                }
            }
            count
        })
        .map_err(|e| e.to_string())
}

/// Waits for `Ready` (or, with `done`, for `Done`); a failure or the deadline is an error.
fn wait_for(
    reports: &mpsc::Receiver<Report>,
    deadline: Instant,
    what: &str,
    done: bool,
) -> Result<(), String> {
    loop {
        match reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Report::Ready) if !done => return Ok(()),
            Ok(Report::Done) if done => return Ok(()),
            Ok(Report::Ready | Report::Done) => {}
            Ok(Report::Failed(e)) => return Err(format!("{what}: {e}")),
            Err(_) => return Err(format!("{what}: timed out")),
        }
    }
}

fn rumqttc_run(run: &Run<'_>) -> Result<Sample, String> {
    let topic = run.topic();
    let qos = rumqttc_qos(run.case.qos);
    let n = run.messages;
    let expected_len = run.case.payload;
    let setup_deadline = Instant::now() + run.settings.timeout;

    let (subscriber, sub_connection) =
        rumqttc::Client::new(rumqttc_options(run, "sub"), run.settings.queue);
    let (sub_tx, sub_reports) = mpsc::channel();
    let sub_thread = rumqttc_drive(
        "rmq-sub-conn",
        sub_connection,
        |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))),
        move |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) if p.payload.len() == expected_len),
        n,
        sub_tx,
    )?;
    subscriber
        .subscribe(topic.as_str(), qos)
        .map_err(|e| format!("subscribe: {e}"))?;
    wait_for(&sub_reports, setup_deadline, "subscribe", false)?;

    let (publisher, pub_connection) =
        rumqttc::Client::new(rumqttc_options(run, "pub"), run.settings.queue);
    let (pub_tx, pub_reports) = mpsc::channel();
    let acked = match qos {
        rumqttc::QoS::AtMostOnce => 0,
        _ => n,
    };
    let pub_thread = rumqttc_drive(
        "rmq-pub-conn",
        pub_connection,
        |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))),
        move |e| {
            matches!(
                e,
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_) | rumqttc::Packet::PubComp(_))
            )
        },
        acked,
        pub_tx,
    )?;
    wait_for(&pub_reports, setup_deadline, "publisher connect", false)?;

    let payload = run.payload();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let threads = run.settings.threads;
    let publishing = {
        let publisher = publisher.clone();
        let topic = topic.clone();
        thread::Builder::new()
            .name("rmq-publisher".into())
            .spawn(move || -> Result<u64, String> {
                go_rx.recv().map_err(|e| e.to_string())?;
                let before = own_cpu_ns(threads);
                for _ in 0..n {
                    publisher
                        .publish(topic.as_str(), qos, false, payload.clone())
                        .map_err(|e| format!("publish: {e}"))?;
                }
                Ok(own_cpu_ns(threads) - before)
            })
            .map_err(|e| e.to_string())?
    };

    let pid = run.broker.pid;
    let threads_before = thread_times(run.settings.threads);
    let start = Snapshot::take(UsageWho::RUSAGE_SELF, pid);
    let deadline = start.at + run.settings.timeout;
    go_tx.send(()).map_err(|e| e.to_string())?;
    let sub_result = wait_for(&sub_reports, deadline, "receive", true);
    let pub_result = if acked > 0 {
        wait_for(&pub_reports, deadline, "acknowledgements", true)
    } else {
        Ok(())
    };
    let published = publishing
        .join()
        .map_err(|_| "the publisher panicked".to_owned())?;
    let end = Snapshot::take(UsageWho::RUSAGE_SELF, pid);
    let threads_after = thread_times(run.settings.threads);

    let _ = publisher.disconnect();
    let _ = subscriber.disconnect();
    drop(publisher);
    drop(subscriber);
    let received = sub_thread.join().unwrap_or(0);
    let _ = pub_thread.join();

    let publisher_ns = published?;
    pub_result?;
    sub_result.map_err(|e| format!("{e} (received {received} of {n})"))?;
    Ok(Sample::between(&start, &end, n, 0).with_threads(
        &threads_before,
        &threads_after,
        publisher_ns,
    ))
}

// ---------------------------------------------------------------------------------------------
// bare: sansmq's codec and a socket loop, no client library (see `bare_client`)

/// What the bare client reads at a time.
const BARE_READ: usize = 8 * 1024;

/// A connection of the bare client: the stream, what was read and not yet decoded, and what
/// waits to be written.
struct BareConnection {
    stream: TcpStream,
    /// What a read fills, zeroed once (a fresh array per read would zero 8 KiB each time).
    chunk: Box<[u8; BARE_READ]>,
    input: BytesMut,
    output: BytesMut,
}

impl BareConnection {
    /// Connects as `client_id` and waits for CONNACK; a read that waits longer than `limit`
    /// fails the run, as the libraries' runs time out.
    fn open(port: u16, client_id: &str, limit: Duration) -> Result<Self, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(limit))
            .map_err(|e| e.to_string())?;
        let mut connection = Self {
            stream,
            chunk: Box::new([0; BARE_READ]),
            input: BytesMut::with_capacity(BARE_READ),
            output: BytesMut::new(),
        };
        bare_client::connect_packet(client_id, &mut connection.output)?;
        connection.until_accepted()?;
        Ok(connection)
    }

    /// Writes what waits, then reads until CONNACK or SUBACK accepts.
    fn until_accepted(&mut self) -> Result<(), String> {
        self.write()?;
        loop {
            while let Some(packet) = bare_client::next_packet(&mut self.input)? {
                if bare_client::accepted(&packet)? {
                    return Ok(());
                }
            }
            self.read()?;
        }
    }

    fn read(&mut self) -> Result<(), String> {
        match self.stream.read(&mut self.chunk[..]) {
            Ok(0) => Err("the broker closed the connection".to_owned()),
            Ok(n) => {
                self.input.extend_from_slice(&self.chunk[..n]);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn write(&mut self) -> Result<(), String> {
        if !self.output.is_empty() {
            self.stream
                .write_all(&self.output)
                .map_err(|e| e.to_string())?;
            self.output.clear();
        }
        Ok(())
    }

    /// Runs `side` (publisher or subscriber) until it is done: decode what was read, let it
    /// answer, write the answers in one go, read again.
    fn run(&mut self, side: &mut impl Side) -> Result<(), String> {
        loop {
            side.fill(&mut self.output)?;
            self.write()?;
            if side.is_done() {
                return Ok(());
            }
            if side.waits_for_broker() {
                self.read()?;
                while let Some(packet) = bare_client::next_packet(&mut self.input)? {
                    side.on_packet(packet, &mut self.output)?;
                }
            }
        }
    }
}

fn bare_run(run: &Run<'_>) -> Result<Sample, String> {
    let n = run.messages;
    let topic = run.topic();
    let mut subscriber = BareConnection::open(
        run.broker.port,
        &format!("{}-sub", run.tag),
        run.settings.timeout,
    )?;
    bare_client::subscribe_packet(&topic, run.case.qos, &mut subscriber.output)?;
    subscriber.until_accepted()?;
    let mut publisher = BareConnection::open(
        run.broker.port,
        &format!("{}-pub", run.tag),
        run.settings.timeout,
    )?;
    let mut publishing = bare_client::Publisher::new(
        &topic,
        Bytes::from(run.payload()),
        run.case.qos,
        n,
        usize::from(run.settings.window),
    )?;
    let mut receiving = bare_client::Subscriber::new(n, run.case.payload);

    let start = Snapshot::take(UsageWho::RUSAGE_SELF, run.broker.pid);
    let received = thread::scope(|scope| {
        let receiver = scope.spawn(|| subscriber.run(&mut receiving));
        let published = publisher.run(&mut publishing);
        let received = receiver
            .join()
            .map_err(|_| "the bare subscriber panicked".to_owned())?;
        published.and(received)
    });
    let end = Snapshot::take(UsageWho::RUSAGE_SELF, run.broker.pid);
    received?;
    Ok(Sample::between(&start, &end, receiving.received(), 0))
}

// ---------------------------------------------------------------------------------------------
// The driver

fn start_broker() -> Mosquitto {
    // Packet logging (the harness's default `all`) would make the broker write a line per packet.
    Mosquitto::builder().log_types(["error", "warning"]).start()
}

#[derive(Debug, Default)]
struct Row {
    name: String,
    /// The two compared (sansmq and rumqttc; WebSocket and TCP), then the bare client's.
    totals: [Sample; 3],
    failures: [Vec<String>; 3],
}

fn index(lib: Lib) -> usize {
    match lib {
        Lib::Sansmq => 0,
        Lib::Rumqttc => 1,
        Lib::Bare => 2,
    }
}

fn main() {
    if std::env::var_os(SERVE_BROKER).is_some() {
        return serve_sansmq_broker();
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported (use BROKER_BENCH_CASES).
    // Without `--bench` (`cargo test --benches`) it is a smoke run: few messages, one round.
    let mut settings = Settings::from_env();
    if !std::env::args().any(|a| a == "--bench") {
        settings.messages.get_or_insert(200);
        settings.rounds = 1;
    }
    let ticks = clock_ticks_per_second();
    println!(
        "broker bench: mosquitto per case, window {}, queue {}, {} round(s) per library, sansmq receives via {:?}",
        settings.window, settings.queue, settings.rounds, settings.receive
    );
    let mut rows = Vec::new();
    let mut run_id = 0_usize;
    for (case_index, case) in cases(settings.messages, settings.cases.as_deref())
        .into_iter()
        .enumerate()
    {
        let mosquitto = start_broker();
        let broker = Target::mosquitto(&mosquitto);
        let mut row = Row {
            name: case.name.clone(),
            ..Row::default()
        };
        let mut make_run = |messages: usize| {
            run_id += 1;
            Run {
                broker: &broker,
                case: &case,
                messages,
                tag: format!("{}-{run_id}", std::process::id()),
                settings: &settings,
            }
        };
        // Warm-up: both libraries, a tenth of the messages, not counted.
        let warm = (case.messages / 10).max(500);
        for &lib in &settings.libs {
            if let Err(e) = make_run(warm).measure(lib) {
                println!("  {} {} warm-up failed: {e}", case.name, lib.name());
            }
        }
        for round in 0..settings.rounds {
            let mut order = Lib::ALL;
            if (case_index + round) % 2 == 1 {
                order.reverse();
            }
            for lib in order.into_iter().filter(|l| settings.libs.contains(l)) {
                match make_run(case.messages).measure(lib) {
                    Ok(sample) => {
                        println!(
                            "  {:<10} {:<8} round {}: {:>9.0} msg/s, {:>6.2} µs CPU/msg (user {:.2}, sys {:.2}), {:.2} ctx switches/msg, broker ~{:.1} µs/msg{}",
                            case.name,
                            lib.name(),
                            round + 1,
                            sample.rate(),
                            sample.cpu_us_per_message(),
                            sample.per_message(sample.user_us),
                            sample.per_message(sample.sys_us),
                            sample.per_message(
                                sample.voluntary_switches + sample.involuntary_switches
                            ),
                            sample.broker_us_per_message(ticks),
                            if lib == Lib::Sansmq && sample.queue_full > 0 {
                                format!(", QueueFull x{}", sample.queue_full)
                            } else {
                                String::new()
                            },
                        );
                        if !sample.threads.is_empty() {
                            let per_thread: Vec<String> = sample
                                .threads
                                .iter()
                                .map(|(name, ns)| {
                                    format!(
                                        "{name} {:.2}",
                                        *ns as f64 / 1e3 / sample.messages as f64
                                    )
                                })
                                .collect();
                            println!("      threads, CPU µs/msg: {}", per_thread.join(", "));
                        }
                        row.totals[index(lib)].add(&sample);
                    }
                    Err(e) => {
                        println!(
                            "  {:<10} {:<8} round {}: FAILED: {e}",
                            case.name,
                            lib.name(),
                            round + 1
                        );
                        row.failures[index(lib)].push(e);
                    }
                }
            }
        }
        drop(mosquitto);
        rows.push(row);
    }
    println!();
    println!("{}", table(&rows, ticks, ["sansmq", "rumqttc"]));
    if env::<u8>("BROKER_BENCH_WS").unwrap_or(1) != 0 {
        websocket_vs_tcp(&settings, ticks);
    }
}

fn table(rows: &[Row], ticks: u64, [a, b]: [&str; 2]) -> String {
    let mut out = String::new();
    let with_bare = rows.iter().any(|row| row.totals[2].messages > 0);
    let _ = writeln!(
        out,
        "| case | {a} msg/s | {b} msg/s | throughput ratio | {a} CPU µs/msg | {b} CPU µs/msg | CPU ratio |{}",
        if with_bare {
            " bare CPU µs/msg | bare ÷ rumqttc |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|{}",
        if with_bare { "---:|---:|" } else { "" }
    );
    for row in rows {
        let [s, r, bare] = &row.totals;
        let cell = |sample: &Sample, failures: &[String], value: f64, precision: usize| {
            if !failures.is_empty() {
                format!("FAILED ({} run(s))", failures.len())
            } else if sample.messages == 0 {
                "-".to_owned()
            } else {
                format!("{value:.precision$}")
            }
        };
        let ok = row.failures.iter().all(Vec::is_empty) && s.messages > 0 && r.messages > 0;
        let ratio = |a: f64, b: f64| {
            if ok {
                format!("{:.2}x", a / b)
            } else {
                "-".to_owned()
            }
        };
        let bare = if !with_bare {
            String::new()
        } else if bare.messages == 0 || r.messages == 0 || !row.failures[2].is_empty() {
            format!(
                " {} | - |",
                cell(bare, &row.failures[2], bare.cpu_us_per_message(), 2)
            )
        } else {
            format!(
                " {:.2} | {:.2}x |",
                bare.cpu_us_per_message(),
                bare.cpu_us_per_message() / r.cpu_us_per_message()
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |{bare}",
            row.name,
            cell(s, &row.failures[0], s.rate(), 0),
            cell(r, &row.failures[1], r.rate(), 0),
            ratio(s.rate(), r.rate()),
            cell(s, &row.failures[0], s.cpu_us_per_message(), 2),
            cell(r, &row.failures[1], r.cpu_us_per_message(), 2),
            ratio(s.cpu_us_per_message(), r.cpu_us_per_message()),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| case | {a} user/sys µs/msg | {b} user/sys µs/msg | {a} ctx sw/msg | {b} ctx sw/msg | broker µs/msg ({a} / {b}, ~) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let [s, r, _] = &row.totals;
        if s.messages == 0 || r.messages == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | {:.2} | {:.1} / {:.1} |",
            row.name,
            s.per_message(s.user_us),
            s.per_message(s.sys_us),
            r.per_message(r.user_us),
            r.per_message(r.sys_us),
            s.per_message(s.voluntary_switches + s.involuntary_switches),
            r.per_message(r.voluntary_switches + r.involuntary_switches),
            s.broker_us_per_message(ticks),
            r.broker_us_per_message(ticks),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// WebSocket vs TCP, through sansmq's own broker

/// Set in the child process that serves sansmq's broker for the WebSocket table.
const SERVE_BROKER: &str = "BROKER_BENCH_SERVE";

/// The child process's side: a sansmq broker with TCP and WebSocket listeners on free loopback
/// ports, printed as `<tcp> <ws>`, until the bench closes its stdin.
fn serve_sansmq_broker() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let broker = sansmq_broker::start(sansmq_broker::BrokerConfig {
        ws_bind: Some(loopback),
        ..sansmq_broker::BrokerConfig::with_bind(loopback)
    })
    .expect("start sansmq's broker");
    let ws = broker.ws_local_addr().expect("a WebSocket listener");
    println!("{} {ws}", broker.local_addr());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    broker.shutdown();
}

/// sansmq's broker in a child process (this bench binary), stopped when dropped.
struct SansmqBroker {
    child: Child,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl SansmqBroker {
    fn start() -> Self {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut child = Command::new(exe)
            .env(SERVE_BROKER, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the broker process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the broker's addresses");
        let mut addrs = line
            .split_whitespace()
            .map(|a| a.parse().expect("an address"));
        let (Some(tcp), Some(ws)) = (addrs.next(), addrs.next()) else {
            panic!("no addresses in {line:?}");
        };
        Self { child, tcp, ws }
    }

    fn target(&self, websocket: bool) -> Target {
        Target {
            url: if websocket {
                format!("ws://{}/mqtt", self.ws)
            } else {
                format!("tcp://{}", self.tcp)
            },
            port: self.tcp.port(),
            pid: Some(self.child.id()),
        }
    }
}

impl Drop for SansmqBroker {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the broker's cue to stop
        let _ = self.child.wait();
    }
}

/// The second table: sansmq-mio over WebSocket (first column, so the ratios are ws ÷ tcp) and
/// over TCP (second), every case, on one sansmq broker per case.
fn websocket_vs_tcp(settings: &Settings, ticks: u64) {
    println!(
        "WebSocket vs TCP: sansmq-mio through sansmq-broker, both listeners of one broker per case"
    );
    let names = ["ws", "tcp"];
    let mut rows = Vec::new();
    let mut run_id = 0_usize;
    for (case_index, case) in cases(settings.messages, settings.cases.as_deref())
        .into_iter()
        .enumerate()
    {
        let broker = SansmqBroker::start();
        let targets = [broker.target(true), broker.target(false)];
        let mut row = Row {
            name: case.name.clone(),
            ..Row::default()
        };
        let mut measure = |at: usize, messages: usize| {
            run_id += 1;
            Run {
                broker: &targets[at],
                case: &case,
                messages,
                tag: format!("{}-ws-{run_id}", std::process::id()),
                settings,
            }
            .measure(Lib::Sansmq)
        };
        let warm = (case.messages / 10).max(500);
        for at in [0, 1] {
            if let Err(e) = measure(at, warm) {
                println!("  {} {} warm-up failed: {e}", case.name, names[at]);
            }
        }
        for round in 0..settings.rounds {
            let order = if (case_index + round) % 2 == 0 {
                [0, 1]
            } else {
                [1, 0]
            };
            for at in order {
                match measure(at, case.messages) {
                    Ok(sample) => {
                        println!(
                            "  {:<10} {:<3} round {}: {:>9.0} msg/s, {:>6.2} µs CPU/msg, broker ~{:.1} µs/msg",
                            case.name,
                            names[at],
                            round + 1,
                            sample.rate(),
                            sample.cpu_us_per_message(),
                            sample.broker_us_per_message(ticks),
                        );
                        row.totals[at].add(&sample);
                    }
                    Err(e) => {
                        println!(
                            "  {:<10} {:<3} round {}: FAILED: {e}",
                            case.name,
                            names[at],
                            round + 1
                        );
                        row.failures[at].push(e);
                    }
                }
            }
        }
        drop(broker);
        rows.push(row);
    }
    println!();
    println!("{}", table(&rows, ticks, names));
}
