//! Store cost bench: what keeping the session on disk costs a QoS 1 publisher per message, with
//! each of the file store's fsync policies, beside Paho C's file persistence in the same run.
//!
//! Run with `cargo bench -p sansmq-benches --bench store_cost`. One private mosquitto serves
//! every run (`set_tcp_nodelay true`: with Nagle on its side, its PUBACKs and the client's delayed
//! ACKs stall each run for some 40 ms, both clients alike). A run connects one publisher (not measured), then measures from its first publish
//! until every message is acknowledged: QoS 1, 100-byte payloads, at most 20 messages
//! unacknowledged, each publish after the 20th waiting first for the oldest outstanding PUBACK.
//! The setups, run in alternating order (forwards, then backwards) for `STORE_BENCH_ROUNDS`
//! rounds after one unmeasured warm-up run each:
//!
//! - **sansmq** (sansmq-mio's blocking `Client`, `max_inflight(20)`, a [`DeliveryToken`] per
//!   publish, waiting on the oldest when 20 are outstanding): no store, then
//!   `ConnectOptions::session_dir` with [`SyncPolicy::Never`], `Every(10 ms)` and `EveryRecord`.
//!   With a store, `publish` returns once the message's records (Accepted, Sent) are written,
//!   and under `EveryRecord` fsynced; its Completed record is written with the next one.
//! - **Paho C** (`MQTTClient`, `benches/paho/store_cost_publisher.c`, compiled by this bench with
//!   `cc -O2 … -lpaho-mqtt3c` into the target directory and run as a child process), with
//!   `MQTTCLIENT_PERSISTENCE_NONE` and `MQTTCLIENT_PERSISTENCE_DEFAULT`. It runs in Paho's
//!   multithreaded mode (`MQTTClient_setCallbacks`, `maxInflightMessages` 20): its thread reads
//!   the PUBACKs, and the publishing thread waits on a condition variable that the
//!   `deliveryComplete` callback signals, so both clients keep the same window. (Paho's
//!   single-threaded `MQTTClient_waitForCompletion` yields in 100 ms slices whenever the message
//!   is not complete yet, which would measure that sleep.) Without `MQTTClient.h`, the library or
//!   `cc`, the bench says why it skipped Paho C and measures sansmq alone.
//!
//! **What survives what.** Paho C's default persistence writes a file per message (`fopen`,
//! `fwrite`, `fclose`) before `MQTTClient_publishMessage` returns and unlinks it at the PUBACK;
//! it never calls `fsync` (read in Paho C 1.3.12's `MQTTPersistenceDefault.c`, and seen with
//! `strace -c`), so, like `SyncPolicy::Never`, it survives the process being killed, not the
//! machine losing power. Those two are the comparable pair; `EveryRecord` is the one that
//! survives a power loss and has no Paho C counterpart; `Every(10 ms)` loses at most the last
//! 10 ms of acknowledged publishes.
//!
//! Per setup: wall µs and CPU µs (user + system) per message, and their ratios to the same
//! client without a store; then sansmq ÷ Paho C for the comparable pairs. sansmq's CPU is this
//! process's `getrusage(RUSAGE_SELF)` over the run (the publishing thread and the client's
//! thread). Paho C's wall and CPU are measured by the child over its publishing loop
//! (`clock_gettime`, `getrusage(RUSAGE_SELF)`: both its threads), so the same interval; the
//! round lines also show the child's whole-process CPU from this process's
//! `getrusage(RUSAGE_CHILDREN)`, start-up and connect included. The store directories are made
//! in the target directory (`STORE_BENCH_DIR` to choose another file system).
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that every setup works:
//! 200 messages (50 for `EveryRecord`), one round, no warm-up.
//!
//! Environment (all optional):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `STORE_BENCH_ROUNDS` | 3 | measured runs per setup |
//! | `STORE_BENCH_MESSAGES` | 5000 | messages per run, every setup but `EveryRecord` |
//! | `STORE_BENCH_SYNCED_MESSAGES` | 500 | messages per run under `EveryRecord` (an fsync each) |
//! | `STORE_BENCH_DIR` | the target directory's `tmp` | where the store directories are made |
//! | `STORE_BENCH_TIMEOUT_SECS` | 120 | a run that has not finished by then fails |

// Only `env` is shared with this bench; the cases are the broker benches'.
#[allow(dead_code)]
mod broker_cases;
mod usage;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::resource::UsageWho;
use sansmq::packet::QoS;
use sansmq_e2e::Mosquitto;
use sansmq_mio::{Client, ConnectOptions, DeliveryToken, SyncPolicy};

use broker_cases::env;
use usage::{Snapshot, clock_ticks_per_second};

/// Messages published and not yet acknowledged, both clients.
const WINDOW: usize = 20;
const PAYLOAD: usize = 100;
/// The period of the batched policy.
const SYNC_PERIOD: Duration = Duration::from_millis(10);

/// What a run may use from the environment.
#[derive(Debug, Clone)]
struct Settings {
    rounds: usize,
    messages: usize,
    synced_messages: usize,
    dir: PathBuf,
    timeout: Duration,
}

impl Settings {
    fn from_env(smoke: bool) -> Self {
        let (messages, synced) = if smoke { (200, 50) } else { (5_000, 500) };
        Self {
            rounds: if smoke {
                1
            } else {
                env("STORE_BENCH_ROUNDS").unwrap_or(3).max(1)
            },
            messages: env("STORE_BENCH_MESSAGES").unwrap_or(messages).max(1),
            synced_messages: env("STORE_BENCH_SYNCED_MESSAGES").unwrap_or(synced).max(1),
            dir: std::env::var_os("STORE_BENCH_DIR")
                .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from),
            timeout: Duration::from_secs(env("STORE_BENCH_TIMEOUT_SECS").unwrap_or(120)),
        }
    }
}

/// One row of the table: a client and where it keeps its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Sansmq(Option<SyncPolicy>),
    /// Paho C with `MQTTCLIENT_PERSISTENCE_DEFAULT` (`true`) or `_NONE`.
    Paho(bool),
}

const SETUPS: [Setup; 6] = [
    Setup::Sansmq(None),
    Setup::Sansmq(Some(SyncPolicy::Never)),
    Setup::Sansmq(Some(SyncPolicy::Every(SYNC_PERIOD))),
    Setup::Sansmq(Some(SyncPolicy::EveryRecord)),
    Setup::Paho(false),
    Setup::Paho(true),
];

/// The pairs that survive the same failures: (sansmq, Paho C, what they survive).
const COMPARABLE: [(Setup, Setup, &str); 2] = [
    (
        Setup::Sansmq(None),
        Setup::Paho(false),
        "nothing on disk: a restart loses the session",
    ),
    (
        Setup::Sansmq(Some(SyncPolicy::Never)),
        Setup::Paho(true),
        "written, never fsynced: survives a killed process, not a power loss",
    ),
];

impl Setup {
    fn client(self) -> &'static str {
        match self {
            Self::Sansmq(_) => "sansmq-mio",
            Self::Paho(_) => "Paho C MQTTClient",
        }
    }

    fn store(self) -> &'static str {
        match self {
            Self::Sansmq(None) => "none",
            Self::Sansmq(Some(SyncPolicy::Never)) => "FileStore, SyncPolicy::Never",
            Self::Sansmq(Some(SyncPolicy::Every(_))) => "FileStore, SyncPolicy::Every(10 ms)",
            Self::Sansmq(Some(SyncPolicy::EveryRecord)) => "FileStore, SyncPolicy::EveryRecord",
            Self::Paho(false) => "MQTTCLIENT_PERSISTENCE_NONE",
            Self::Paho(true) => "MQTTCLIENT_PERSISTENCE_DEFAULT",
        }
    }

    fn fsync(self) -> &'static str {
        match self {
            Self::Sansmq(Some(SyncPolicy::Every(_))) => "every 10 ms",
            Self::Sansmq(Some(SyncPolicy::EveryRecord)) => "every publish",
            Self::Sansmq(None) | Self::Paho(false) => "-",
            Self::Sansmq(Some(SyncPolicy::Never)) | Self::Paho(true) => "never",
        }
    }

    /// A short name for the round lines and client ids.
    fn tag(self) -> &'static str {
        match self {
            Self::Sansmq(None) => "smq-none",
            Self::Sansmq(Some(SyncPolicy::Never)) => "smq-never",
            Self::Sansmq(Some(SyncPolicy::Every(_))) => "smq-10ms",
            Self::Sansmq(Some(SyncPolicy::EveryRecord)) => "smq-every",
            Self::Paho(false) => "paho-none",
            Self::Paho(true) => "paho-default",
        }
    }

    /// The same client without a store.
    fn baseline(self) -> Self {
        match self {
            Self::Sansmq(_) => Self::Sansmq(None),
            Self::Paho(_) => Self::Paho(false),
        }
    }

    fn messages(self, settings: &Settings) -> usize {
        match self {
            Self::Sansmq(Some(SyncPolicy::EveryRecord)) => settings.synced_messages,
            _ => settings.messages,
        }
    }
}

/// What one measured run found.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    messages: u64,
    wall: Duration,
    user_us: i64,
    sys_us: i64,
    /// Voluntary + involuntary context switches (Paho C: its whole process).
    switches: i64,
    broker_ticks: u64,
    /// Paho C only: the child's whole CPU time, start-up and connect included.
    process_cpu_us: Option<i64>,
}

impl Sample {
    fn add(&mut self, other: &Self) {
        self.messages += other.messages;
        self.wall += other.wall;
        self.user_us += other.user_us;
        self.sys_us += other.sys_us;
        self.switches += other.switches;
        self.broker_ticks += other.broker_ticks;
        self.process_cpu_us = match (self.process_cpu_us, other.process_cpu_us) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    fn per_message(&self, value: f64) -> f64 {
        value / self.messages as f64
    }

    fn wall_us(&self) -> f64 {
        self.per_message(self.wall.as_secs_f64() * 1e6)
    }

    fn cpu_us(&self) -> f64 {
        self.per_message((self.user_us + self.sys_us) as f64)
    }
}

/// The broker every run connects to.
#[derive(Debug)]
struct Target {
    url: String,
    pid: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// sansmq-mio

fn sansmq_run(
    target: &Target,
    policy: Option<SyncPolicy>,
    client_id: &str,
    n: usize,
    settings: &Settings,
) -> Result<Sample, String> {
    let dir = store_dir(settings)?;
    let mut options = ConnectOptions::new(&target.url, client_id)
        .map_err(|e| e.to_string())?
        .clean_session(false)
        .max_inflight(WINDOW as u16)
        .time_to_wait(settings.timeout);
    if let Some(policy) = policy {
        options = options.session_dir(dir.path(), policy);
    }
    let client = Client::new(options).map_err(|e| format!("client: {e}"))?;
    client.connect().map_err(|e| format!("connect: {e}"))?;
    let topic = format!("bench/{client_id}");
    let payload = Bytes::from(payload());

    let start = Snapshot::take(UsageWho::RUSAGE_SELF, target.pid);
    let mut pending: VecDeque<DeliveryToken> = VecDeque::with_capacity(WINDOW);
    for _ in 0..n {
        if pending.len() >= WINDOW
            && let Some(oldest) = pending.pop_front()
        {
            oldest.wait().map_err(|e| format!("delivery: {e}"))?;
        }
        let token = client
            .publish(&topic, payload.clone(), QoS::AtLeastOnce, false)
            .map_err(|e| format!("publish: {e}"))?;
        pending.push_back(token);
    }
    for token in pending {
        token.wait().map_err(|e| format!("delivery: {e}"))?;
    }
    let end = Snapshot::take(UsageWho::RUSAGE_SELF, target.pid);

    let _ = client.disconnect(Duration::from_secs(5));
    client.close();
    Ok(Sample {
        messages: n as u64,
        wall: end.at - start.at,
        user_us: end.user_us - start.user_us,
        sys_us: end.sys_us - start.sys_us,
        switches: switches(&start, &end),
        broker_ticks: broker_ticks(&start, &end),
        process_cpu_us: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Paho C

/// The C publisher, next to this file's crate.
const PAHO_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/paho/store_cost_publisher.c");

/// Compiles the Paho C publisher into `out`; an error says why it cannot be measured.
fn build_paho_publisher(out: &Path) -> Result<PathBuf, String> {
    let exe = out.join("store_cost_publisher");
    let output = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(PAHO_SOURCE)
        .args(["-lpaho-mqtt3c", "-lpthread"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The line that names what is missing (MQTTClient.h, -lpaho-mqtt3c), else the first error.
        let reason = stderr
            .lines()
            .find(|l| l.contains("No such file") || l.contains("cannot find"))
            .or_else(|| stderr.lines().find(|l| l.contains("error")))
            .or_else(|| stderr.lines().next())
            .unwrap_or("no output");
        return Err(format!(
            "cc failed ({}): {} (Debian: apt-get install libpaho-mqtt-dev)",
            output.status,
            reason.trim()
        ));
    }
    Ok(exe)
}

fn paho_run(
    exe: &Path,
    target: &Target,
    persistence: bool,
    client_id: &str,
    n: usize,
    settings: &Settings,
) -> Result<Sample, String> {
    let dir = store_dir(settings)?;
    let mut command = Command::new(exe);
    command.args([target.url.as_str(), client_id]);
    if persistence {
        command.arg(dir.path());
    } else {
        command.arg("-");
    }
    command
        .args([n.to_string(), WINDOW.to_string(), PAYLOAD.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let start = Snapshot::take(UsageWho::RUSAGE_CHILDREN, target.pid);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let deadline = Instant::now() + settings.timeout;
    // The child writes one line, so its pipes cannot fill before it ends.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".to_owned());
            }
            Err(e) => return Err(format!("waiting for the publisher: {e}")),
        }
    };
    let end = Snapshot::take(UsageWho::RUSAGE_CHILDREN, target.pid);
    let output = child
        .wait_with_output()
        .map_err(|e| format!("the publisher's output: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the publisher failed ({status}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<i64> = stdout
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the publisher printed {stdout:?}: {e}"))?;
    let &[wall_us, user_us, sys_us] = fields.as_slice() else {
        return Err(format!("the publisher printed {stdout:?}"));
    };
    Ok(Sample {
        messages: n as u64,
        wall: Duration::from_micros(u64::try_from(wall_us).unwrap_or(0)),
        user_us,
        sys_us,
        switches: switches(&start, &end),
        broker_ticks: broker_ticks(&start, &end),
        process_cpu_us: Some(end.user_us - start.user_us + end.sys_us - start.sys_us),
    })
}

// ---------------------------------------------------------------------------------------------
// The driver

fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| (i % 251) as u8).collect()
}

/// A fresh directory for one run's store, removed when dropped.
fn store_dir(settings: &Settings) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("store-cost-")
        .tempdir_in(&settings.dir)
        .map_err(|e| format!("a directory in {}: {e}", settings.dir.display()))
}

fn switches(start: &Snapshot, end: &Snapshot) -> i64 {
    end.voluntary_switches - start.voluntary_switches + end.involuntary_switches
        - start.involuntary_switches
}

fn broker_ticks(start: &Snapshot, end: &Snapshot) -> u64 {
    match (start.broker_ticks, end.broker_ticks) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct Row {
    total: Sample,
    failures: Vec<String>,
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) it is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let settings = Settings::from_env(smoke);
    let ticks = clock_ticks_per_second();
    if let Err(e) = std::fs::create_dir_all(&settings.dir) {
        panic!("{}: {e}", settings.dir.display());
    }
    let paho = build_paho_publisher(&settings.dir);
    let setups: Vec<Setup> = match &paho {
        Ok(_) => SETUPS.to_vec(),
        Err(reason) => {
            println!("Paho C skipped: {reason}");
            SETUPS
                .into_iter()
                .filter(|s| matches!(s, Setup::Sansmq(_)))
                .collect()
        }
    };
    println!(
        "store cost bench: QoS 1, {PAYLOAD} B payloads, window {WINDOW}, {} messages per run ({} under EveryRecord), {} round(s), stores in {}",
        settings.messages,
        settings.synced_messages,
        settings.rounds,
        settings.dir.display()
    );

    // Without TCP_NODELAY on mosquitto's side, its PUBACKs meet the client's delayed ACKs in a
    // stall of some 40 ms per run (a fixed 8 µs per message at 5,000 messages, for both clients).
    let mosquitto = Mosquitto::builder()
        .log_types(["error", "warning"])
        .config_line("set_tcp_nodelay true")
        .start();
    let target = Target {
        url: mosquitto.url(),
        pid: mosquitto.pid(),
    };
    let mut run_id = 0_usize;
    let mut measure = |setup: Setup, n: usize| {
        run_id += 1;
        let client_id = format!("{}-{run_id}-{}", std::process::id(), setup.tag());
        match (setup, &paho) {
            (Setup::Sansmq(policy), _) => sansmq_run(&target, policy, &client_id, n, &settings),
            (Setup::Paho(persistence), Ok(exe)) => {
                paho_run(exe, &target, persistence, &client_id, n, &settings)
            }
            (Setup::Paho(_), Err(reason)) => Err(reason.clone()),
        }
    };
    if !smoke {
        for &setup in &setups {
            if let Err(e) = measure(setup, (setup.messages(&settings) / 5).max(50)) {
                println!("  {:<12} warm-up failed: {e}", setup.tag());
            }
        }
    }
    let mut rows: Vec<(Setup, Row)> = setups.iter().map(|&s| (s, Row::default())).collect();
    for round in 0..settings.rounds {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (setup, row) = &mut rows[i];
            match measure(*setup, setup.messages(&settings)) {
                Ok(sample) => {
                    println!(
                        "  {:<12} round {}: {:>8.2} µs wall/msg, {:>6.2} µs CPU/msg (user {:.2}, sys {:.2}){}, {:.2} ctx switches/msg, broker ~{:.1} µs/msg",
                        setup.tag(),
                        round + 1,
                        sample.wall_us(),
                        sample.cpu_us(),
                        sample.per_message(sample.user_us as f64),
                        sample.per_message(sample.sys_us as f64),
                        sample.process_cpu_us.map_or_else(String::new, |us| format!(
                            ", whole process {:.2}",
                            sample.per_message(us as f64)
                        )),
                        sample.per_message(sample.switches as f64),
                        sample.per_message(sample.broker_ticks as f64 * 1e6 / ticks as f64),
                    );
                    row.total.add(&sample);
                }
                Err(e) => {
                    println!("  {:<12} round {}: FAILED: {e}", setup.tag(), round + 1);
                    row.failures.push(e);
                }
            }
        }
    }
    drop(mosquitto);
    println!();
    println!("{}", table(&rows));
}

fn table(rows: &[(Setup, Row)]) -> String {
    let find = |setup: Setup| {
        rows.iter()
            .find(|(s, row)| *s == setup && row.failures.is_empty() && row.total.messages > 0)
            .map(|(_, row)| &row.total)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| client | session store | fsync | wall µs/msg | CPU µs/msg | wall ÷ no store | CPU ÷ no store |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
    for (setup, row) in rows {
        let (wall, cpu) = match find(*setup) {
            Some(s) => (format!("{:.2}", s.wall_us()), format!("{:.2}", s.cpu_us())),
            None if !row.failures.is_empty() => {
                let failed = format!("FAILED ({} run(s))", row.failures.len());
                (failed.clone(), failed)
            }
            None => ("-".to_owned(), "-".to_owned()),
        };
        let base = find(setup.baseline());
        let this = find(*setup);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {wall} | {cpu} | {} | {} |",
            setup.client(),
            setup.store(),
            setup.fsync(),
            ratio(this.map(Sample::wall_us), base.map(Sample::wall_us)),
            ratio(this.map(Sample::cpu_us), base.map(Sample::cpu_us)),
        );
    }
    if !rows.iter().any(|(s, _)| matches!(s, Setup::Paho(_))) {
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| sansmq-mio ÷ Paho C | survives | wall ratio | CPU ratio |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|");
    for (sansmq, paho, survives) in COMPARABLE {
        let (a, b) = (find(sansmq), find(paho));
        let _ = writeln!(
            out,
            "| {} ÷ {} | {survives} | {} | {} |",
            sansmq.store(),
            paho.store(),
            ratio(a.map(Sample::wall_us), b.map(Sample::wall_us)),
            ratio(a.map(Sample::cpu_us), b.map(Sample::cpu_us)),
        );
    }
    out
}
