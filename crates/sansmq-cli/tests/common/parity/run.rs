//! Running one side of a row (mosquitto's tool or sansmq) with a watcher beside it, and what it
//! showed.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::mqtt::{Mqtt, Seen};
use super::row::{Broker, Row, Tool};

/// How long the watcher waits for stragglers after the run.
const SETTLE: Duration = Duration::from_millis(150);

/// How long a feed or a signal waits for the tool to be ready (subscribed, or as the row says).
const READY_WAIT: Duration = Duration::from_secs(8);

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Mosquitto,
    Sansmq,
}

/// Everything the placeholders of a row stand for.
pub(crate) struct Places {
    pub(crate) values: Vec<(&'static str, String)>,
    pub(crate) main_port: u16,
    pub(crate) main_log: PathBuf,
    pub(crate) auth_port: u16,
    pub(crate) auth_log: PathBuf,
    pub(crate) auth_login: (String, String),
    pub(crate) sansmq: PathBuf,
}

impl Places {
    fn fill(&self, text: &str, row: usize) -> String {
        let mut out = text
            .replace("{t}", &topic(row))
            .replace("{id}", &format!("parity-{row:03}"));
        for (name, value) in &self.values {
            out = out.replace(name, value);
        }
        out
    }
}

/// The row's own topic: nothing else publishes or subscribes under it.
pub(crate) fn topic(row: usize) -> String {
    format!("parity/r{row:03}")
}

/// What one run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    /// `None`: killed by a signal (or by the test at the row's timeout). With the row's
    /// `exit_alike`, any of those codes is recorded as the first.
    pub(crate) code: Option<i32>,
    /// The row's `exit_alike`, for the table.
    pub(crate) code_alike: Option<&'static [i32]>,
    pub(crate) timed_out: bool,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr_empty: bool,
    /// Whether it ended within the row's `within`, if it has one.
    pub(crate) on_time: Option<bool>,
    /// What a subscriber to the row's topics received during the run, in order.
    pub(crate) watched: Vec<Seen>,
    /// With the row's `watch_v5`: what an MQTT 5 subscriber printed of them, properties
    /// included (`mosquitto_sub -V 5 -F`).
    pub(crate) watched_v5: Option<Vec<u8>>,
    /// The retained messages under the row's topic after the run.
    pub(crate) retained: Vec<Seen>,
}

/// Not compared: for the table.
#[derive(Debug, Clone)]
pub(crate) struct Extra {
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

/// Runs `row` (number `index`) once with `side`'s tool, and cleans up after it: the row's
/// retained messages are removed and a persistent session of `{id}` is ended.
pub(crate) fn run(row: &Row, index: usize, side: Side, places: &Places) -> (Observed, Extra) {
    let (port, log, login) = match row.broker {
        Broker::Main => (places.main_port, places.main_log.as_path(), None),
        Broker::Auth => (
            places.auth_port,
            places.auth_log.as_path(),
            Some((places.auth_login.0.as_str(), places.auth_login.1.as_str())),
        ),
    };
    let everything = format!("+/r{index:03}/#");
    let side_tag = match side {
        Side::Mosquitto => "m",
        Side::Sansmq => "s",
    };
    let connect = |role: &str| {
        Mqtt::connect(port, &format!("{role}-{index:03}-{side_tag}"), login)
            .unwrap_or_else(|e| panic!("row {index} {}: the {role} cannot connect: {e}", row.name))
    };
    let mut watcher = connect("watch");
    watcher
        .subscribe(&[&everything])
        .unwrap_or_else(|e| panic!("row {index}: the watcher cannot subscribe: {e}"));
    if !row.retained.is_empty() {
        let mut publisher = connect("prepare");
        for msg in &row.retained {
            publisher
                .publish(&places.fill(&msg.topic, index), &msg.payload, msg.qos, true)
                .unwrap_or_else(|e| panic!("row {index}: cannot prepare: {e}"));
        }
        publisher.disconnect();
    }
    // What the watcher saw of the preparation is not part of the run.
    let _ = watcher.drain(Duration::from_millis(20));

    let v5_watcher = row
        .watch_v5
        .then(|| watch_v5(port, &everything, log, index));
    let log_start = File::open(log)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .unwrap_or(0);
    let mut running = Running::spawn(row, index, side, places);
    if !row.feed.is_empty() || row.signal.is_some() {
        running.wait(|| match &row.ready_log {
            Some(needle) => log_has(log, log_start, &places.fill(needle, index)),
            None => {
                count_subscriptions(log, log_start, &format!("\t{}", topic(index)))
                    >= row.subscriptions()
            }
        });
    }
    if !row.feed.is_empty() {
        let mut feeder = connect("feed");
        for msg in &row.feed {
            if !msg.properties.is_empty() {
                publish_v5(msg, port, index, places);
                continue;
            }
            // A sub that exits mid-feed (-C, --retained-only) may leave the rest unread.
            let _ = feeder.publish(
                &places.fill(&msg.topic, index),
                &msg.payload,
                msg.qos,
                msg.retain,
            );
        }
        feeder.disconnect();
    }
    if let Some(signal) = row.signal {
        // A `sub` that was sent messages is signalled once it has printed something.
        if row.tool == Tool::Sub && !row.feed.is_empty() {
            let printed = Arc::clone(&running.stdout_so_far);
            running.wait(|| !lock(&printed).is_empty());
        }
        running.signal(signal);
    }
    let (status, stdout, stderr, elapsed) = running.finish(row.timeout);

    let watched = watcher.drain(SETTLE).unwrap_or_default();
    watcher.disconnect();
    let watched_v5 = v5_watcher.map(|child| {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        child
            .wait_with_output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    });
    // End a persistent session of the row's id first, so that removing the retained messages
    // is not queued for it.
    if let Ok(session) = Mqtt::connect(port, &format!("parity-{index:03}"), login) {
        session.disconnect();
    }
    let retained = remove_retained(connect("clean"), &everything);

    let code = match (status.and_then(|s| s.code()), row.exit_alike) {
        (Some(code), Some(alike)) if alike.contains(&code) => alike.first().copied(),
        (code, _) => code,
    };
    let observed = Observed {
        code,
        code_alike: row.exit_alike,
        timed_out: status.is_none(),
        stdout: comparable_stdout(row, stdout),
        stderr_empty: stderr.is_empty(),
        on_time: row.within.map(|limit| elapsed <= limit),
        watched,
        watched_v5,
        retained,
    };
    let extra = Extra {
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
    };
    (observed, extra)
}

/// An MQTT 5 subscriber to `everything` printing each message with its properties (but the
/// Message Expiry Interval, which counts down), once the broker holds its subscription.
fn watch_v5(port: u16, everything: &str, log: &Path, index: usize) -> Child {
    let start = File::open(log)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .unwrap_or(0);
    let child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-V",
            "5",
            "-q",
            "2",
        ])
        .args(["-i", &format!("watch5-{index:03}"), "-t", everything])
        .args(["-F", "%t|%q|%r|%F|%C|%R|%D|%P|%p"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("row {index}: mosquitto_sub -V 5 does not run: {e}"));
    let deadline = Instant::now() + READY_WAIT;
    while Instant::now() < deadline
        && count_subscriptions(log, start, &format!("\t{everything}")) == 0
    {
        thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Publishes `msg` with its MQTT 5 properties through `mosquitto_pub -V 5 -D ...`.
fn publish_v5(msg: &super::row::Msg, port: u16, index: usize, places: &Places) {
    let properties: Vec<String> = msg
        .properties
        .iter()
        .map(|p| places.fill(p, index))
        .collect();
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "5"])
        .args([
            "-t",
            &places.fill(&msg.topic, index),
            "-q",
            &msg.qos.to_string(),
        ])
        .arg("-m")
        .arg(std::ffi::OsStr::from_bytes(&msg.payload))
        .args(&properties)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "row {index}: mosquitto_pub -V 5 {properties:?} failed"
    );
}

/// A tool running with its stdin fed and its stdout and stderr read.
struct Running {
    child: Child,
    started: Instant,
    /// What it has printed so far.
    stdout_so_far: Arc<Mutex<Vec<u8>>>,
    stdout: thread::JoinHandle<Vec<u8>>,
    stderr: thread::JoinHandle<Vec<u8>>,
    /// Dropped when the run ends: a stdin kept open closes then.
    stdin_open: mpsc::Sender<()>,
}

impl Running {
    fn spawn(row: &Row, index: usize, side: Side, places: &Places) -> Self {
        let args: Vec<String> = row.args.iter().map(|a| places.fill(a, index)).collect();
        let mut command = match side {
            Side::Mosquitto => Command::new(row.tool.mosquitto()),
            Side::Sansmq => {
                let mut command = Command::new(&places.sansmq);
                command.arg(row.tool.sansmq());
                command
            }
        };
        command
            .args(&args)
            .env("TZ", "UTC")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = row.stdin.clone();
        let (stdin_open, close_stdin) = mpsc::channel::<()>();
        let keep_open = row.keep_stdin_open;
        // A tool that does not read stdin never takes it all: write from a thread, ignore EPIPE.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
            if keep_open {
                let _ = close_stdin.recv();
            }
        });
        let stdout_so_far = Arc::new(Mutex::new(Vec::new()));
        let stdout = drain_shared(
            child.stdout.take().expect("piped stdout"),
            Arc::clone(&stdout_so_far),
        );
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            started,
            stdout_so_far,
            stdout,
            stderr,
            stdin_open,
        }
    }

    /// Waits until `ready` holds, the tool exits, or [`READY_WAIT`] has passed.
    fn wait(&mut self, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + READY_WAIT;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            if ready() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` as `kill -s` names it; does nothing if the tool has exited already.
    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status();
    }

    /// Waits for the exit, killing the tool `timeout` after it started (status `None`), and
    /// returns the status, stdout, stderr and how long it ran.
    fn finish(mut self, timeout: Duration) -> (Option<ExitStatus>, Vec<u8>, Vec<u8>, Duration) {
        let deadline = self.started + timeout;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.started.elapsed();
        drop(self.stdin_open);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        (status, stdout, stderr, elapsed)
    }
}

/// The retained messages under the row's topics (`everything`), which `cleaner` then removes.
fn remove_retained(mut cleaner: Mqtt, everything: &str) -> Vec<Seen> {
    cleaner
        .subscribe(&[everything])
        .unwrap_or_else(|e| panic!("the cleaner cannot subscribe to {everything}: {e}"));
    let retained: Vec<Seen> = cleaner
        .drain(Duration::from_millis(30))
        .unwrap_or_default()
        .into_iter()
        .filter(|seen| seen.retain)
        .collect();
    for seen in &retained {
        let _ = cleaner.publish(&seen.topic, b"", 0, true);
    }
    cleaner.disconnect();
    retained
}

/// Stdout as the row compares it: as is, with digits masked, or only whether there is any.
fn comparable_stdout(row: &Row, stdout: Vec<u8>) -> Vec<u8> {
    if row.stdout_presence {
        if stdout.is_empty() {
            stdout
        } else {
            b"(some text)".to_vec()
        }
    } else if row.mask_digits {
        stdout
            .into_iter()
            .map(|b| if b.is_ascii_digit() { b'#' } else { b })
            .collect()
    } else {
        stdout
    }
}

/// How many subscription lines (`time: \tfilter (QoS n)`) holding `needle` the log has after
/// `start`.
fn count_subscriptions(log: &Path, start: u64, needle: &str) -> usize {
    log_since(log, start)
        .lines()
        .filter(|line| line.contains(needle) && line.contains(" (QoS "))
        .count()
}

/// Whether the log has `needle` after `start`.
fn log_has(log: &Path, start: u64, needle: &str) -> bool {
    log_since(log, start).contains(needle)
}

/// The log from byte `start` on.
fn log_since(log: &Path, start: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(log) {
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_end(&mut text);
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Reads `pipe` to its end into `so_far`, and returns it all.
fn drain_shared(
    mut pipe: impl std::io::Read + Send + 'static,
    so_far: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            lock(&so_far).extend_from_slice(&buf[..n]);
        }
        std::mem::take(&mut *lock(&so_far))
    })
}

fn lock(bytes: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    bytes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
