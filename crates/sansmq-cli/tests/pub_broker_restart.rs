//! `sansmq pub -l` when the broker goes away mid-stream: with `-c` it reconnects and sends every
//! line; without, it says exactly which lines were not sent, and that holds.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sansmq_e2e::{Mosquitto, wait_until};

use common::{Outcome, PATIENCE, run, sansmq};

const TOPIC: &str = "restart/lines";
const LINES: usize = 3_000;

/// A persistent broker that keeps what it queued for offline sessions across a restart.
fn broker() -> Mosquitto {
    Mosquitto::builder()
        .persistence(true)
        .max_queued_messages(0)
        .start()
}

/// The arguments of a persistent QoS 1 subscriber session on `port`.
fn session(port: &str) -> Vec<String> {
    [
        "sub",
        "-p",
        port,
        "-t",
        TOPIC,
        "-q",
        "1",
        "-c",
        "-i",
        "restart-reader",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs the subscriber session for `seconds` (it exits 27) and returns what it printed.
fn read_session(port: &str, seconds: &str) -> Outcome {
    let mut args = session(port);
    args.extend(["-W".to_owned(), seconds.to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = run(&args);
    assert_eq!(outcome.code, Some(27), "{outcome:#?}");
    outcome
}

/// Starts `sansmq pub -l extra...` with stdin a pipe the test writes to.
fn start_pub(port: &str, extra: &[&str]) -> Child {
    sansmq(&[&["pub", "-p", port, "-t", TOPIC, "-l"], extra].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sansmq binary runs")
}

/// Writes lines `from..=to` (each its 1-based number) to `child`'s stdin, a little at a time.
fn feed(child: &mut Child, from: usize, to: usize) {
    let stdin = child.stdin.as_mut().expect("piped stdin");
    for line in from..=to {
        // The reader may be gone (pub exited on the lost connection): that is for the test to see.
        if writeln!(stdin, "{line:05}").is_err() {
            return;
        }
        if line % 50 == 0 {
            let _ = stdin.flush();
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Closes stdin and waits for `child` to exit.
fn finish(mut child: Child) -> (Option<i32>, String) {
    drop(child.stdin.take());
    let exited = wait_until(PATIENCE, || !matches!(child.try_wait(), Ok(None)));
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("waiting for sansmq pub");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(exited, "sansmq pub did not exit: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code(), stderr)
}

/// The line numbers a subscriber printed.
fn numbers(outcome: &Outcome) -> HashSet<usize> {
    outcome
        .stdout
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn pub_lines_with_a_persistent_session_reconnect_after_a_broker_restart_and_send_every_line() {
    let broker = broker();
    let port = broker.port().to_string();
    read_session(&port, "1"); // creates the session; it queues while offline

    let mut publisher = start_pub(&port, &["-q", "1", "-c", "-i", "restart-writer"]);
    feed(&mut publisher, 1, LINES / 2);
    let started = Instant::now();
    broker.restart();
    let restart_took = started.elapsed();
    feed(&mut publisher, LINES / 2 + 1, LINES);
    let (code, stderr) = finish(publisher);
    assert_eq!(code, Some(0), "restart took {restart_took:?}; {stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");

    let received = numbers(&read_session(&port, "3"));
    let missing: Vec<usize> = (1..=LINES).filter(|n| !received.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {LINES} lines never reached the broker (first: {:?})",
        missing.len(),
        missing.first()
    );
}

#[test]
fn pub_lines_without_a_persistent_session_say_which_lines_were_not_sent_when_the_broker_stops() {
    let broker = broker();
    let port = broker.port().to_string();
    read_session(&port, "1");

    let mut publisher = start_pub(&port, &["-q", "1"]);
    feed(&mut publisher, 1, LINES / 2);
    broker.stop();
    feed(&mut publisher, LINES / 2 + 1, LINES);
    let (code, stderr) = finish(publisher);
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("sansmq: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    eprintln!("{error}");
    assert!(
        !error.contains("may not allow"),
        "a stopped broker is no refusal: {error}"
    );
    let first: usize = error
        .split_once("; lines ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no first line not sent in {error}"));
    assert!(error.contains(&format!("tail -n +{first}")), "{error}");
    assert!((1..=LINES / 2 + 1).contains(&first), "{error}");

    // What it says the broker acknowledged, the broker has.
    broker.restart();
    let received = numbers(&read_session(&port, "3"));
    let missing: Vec<usize> = (1..first).filter(|n| !received.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "pub said lines before {first} were acknowledged, but {} are missing (first: {:?}): {error}",
        missing.len(),
        missing.first()
    );
}

#[test]
fn pub_lines_at_qos_0_with_a_persistent_session_wait_while_the_broker_is_down() {
    let broker = broker();
    let port = broker.port().to_string();
    let mut publisher = start_pub(&port, &["-q", "0", "-c", "-i", "restart-writer-0"]);
    feed(&mut publisher, 1, 100);
    broker.stop();
    // More than the client's offline queue (1,000 messages) arrives while the broker is down.
    feed(&mut publisher, 101, LINES);
    broker.restart();
    let (code, stderr) = finish(publisher);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");
}
