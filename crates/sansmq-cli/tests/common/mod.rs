//! Running the built `sansmq` binary: to completion, or as a subscriber in the background that is
//! known to hold its subscription before anything is published.
//!
//! Each test file is its own crate and uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sansmq_e2e::wait_until;

/// How long anything that should happen may take on a loaded 2-core machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// How a finished `sansmq` ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The exit code (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Outcome {
    /// The lines of stderr that are not debug logging.
    pub(crate) fn errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("sansmq:"))
            .collect()
    }

    /// The single `sansmq: error: ...` line, checking there is exactly one and no panic.
    pub(crate) fn error_line(&self) -> &str {
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        let errors = self.errors();
        assert_eq!(errors.len(), 1, "{self:#?}");
        let line = errors[0];
        assert!(line.starts_with("sansmq: error: "), "{self:#?}");
        line
    }
}

/// A `sansmq` command with a clean environment for logging.
pub(crate) fn sansmq(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sansmq"));
    command.args(args).env_remove("RUST_LOG");
    command
}

/// Runs `sansmq` with `stdin` as its input, to the end (at most [`PATIENCE`]).
pub(crate) fn run_with_input(mut command: Command, stdin: &[u8]) -> Outcome {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sansmq binary runs");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).expect("writing stdin");
    drop(input);
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    finish(child, stdout, stderr, started)
}

/// Runs `sansmq args` with empty stdin, to the end.
pub(crate) fn run(args: &[&str]) -> Outcome {
    run_with_input(sansmq(args), b"")
}

/// A `sansmq sub` running in the background.
pub(crate) struct Subscriber {
    child: Child,
    stdout: JoinHandle<String>,
    stderr_lines: Receiver<String>,
    stderr: Vec<String>,
    started: Instant,
}

impl Subscriber {
    /// Starts `sansmq args...` (a `sub`) logging on stderr (`RUST_LOG=debug`) and returns once
    /// the broker acknowledged its subscription (it logs "received SUBACK").
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::spawn(sansmq(args))
    }

    /// [`start`](Self::start) with a command prepared by [`sansmq`] (to set the environment).
    pub(crate) fn spawn(mut command: Command) -> Self {
        let started = Instant::now();
        let mut child = command
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sansmq binary runs");
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let (tx, stderr_lines) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut subscriber = Self {
            child,
            stdout,
            stderr_lines,
            stderr: Vec::new(),
            started,
        };
        subscriber.wait_for_stderr("received SUBACK");
        subscriber
    }

    /// Waits until stderr has a line containing `text`.
    pub(crate) fn wait_for_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => self.stderr.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "sansmq never said {text:?}; stderr:\n{}",
                        self.stderr.join("\n")
                    );
                }
            }
        }
    }

    /// Sends it `signal` (`INT`, `TERM`...), as `kill -s` does.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Kills it at once (SIGKILL): no DISCONNECT reaches the broker.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit by itself (at most [`PATIENCE`]).
    pub(crate) fn finish(self) -> Outcome {
        let (tx, rx) = mpsc::channel();
        let lines = self.stderr_lines;
        let earlier = self.stderr;
        thread::spawn(move || {
            let mut all = earlier;
            all.extend(lines.iter());
            let _ = tx.send(all.join("\n"));
        });
        let stderr = thread::spawn(move || rx.recv().unwrap_or_default());
        finish(self.child, self.stdout, stderr, self.started)
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn finish(
    mut child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    started: Instant,
) -> Outcome {
    let exited = wait_until(PATIENCE, || !matches!(child.try_wait(), Ok(None)));
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for sansmq");
    let outcome = Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    };
    assert!(
        exited,
        "sansmq did not exit within {PATIENCE:?}: {outcome:#?}"
    );
    outcome
}

/// A `sansmq broker` process on a free port, killed on drop.
pub(crate) struct BrokerProcess {
    child: Child,
    /// `127.0.0.1:port`.
    pub(crate) addr: String,
    /// `ws://127.0.0.1:port/`, with `--ws-bind`.
    pub(crate) ws_url: Option<String>,
    /// The rest of what it prints.
    stdout: BufReader<std::process::ChildStdout>,
}

impl BrokerProcess {
    /// Runs `sansmq broker --bind 127.0.0.1:0 extra...` and reads the address it prints.
    pub(crate) fn start(extra: &[&str]) -> Self {
        Self::spawn(sansmq(
            &[&["broker", "--bind", "127.0.0.1:0"], extra].concat(),
        ))
    }

    /// Runs `command`, which starts a `sansmq broker` (through a shell, say), and reads the
    /// address it prints.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the broker command runs");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        stdout
            .read_line(&mut first)
            .expect("reading the broker's first line");
        let addr = first
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        let ws_url = first
            .split_whitespace()
            .find(|word| word.starts_with("ws://"))
            .map(str::to_owned);
        Self {
            child,
            addr,
            ws_url,
            stdout,
        }
    }

    /// The next line it prints after the first.
    pub(crate) fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading the broker's output");
        line
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
