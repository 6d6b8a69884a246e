//! `sansmq sub` on a persistent session (`-c -q 1 -i ID`) never acknowledges what it did not
//! print: killed mid-stream with its stdout a slow pipe, or stopping at `-C`, what it printed and
//! what the next run prints hold every message. A kill re-delivers at most the broker's in-flight
//! window (acknowledged as soon as queued for printing, 1,914 of 5,000 were lost).

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sansmq_e2e::Mosquitto;

use common::{PATIENCE, run_with_input, sansmq};

const MESSAGES: usize = 5_000;
/// mosquitto's `max_inflight_messages`: the QoS 1 messages it sends without waiting for PUBACK.
const INFLIGHT: usize = 20;
const TOPIC: &str = "no-loss/kill";
/// Makes each message long enough that the pipe fills after a few hundred.
const PADDING: usize = 200;

/// A subscriber whose stdout is read by `reader`, each line sent on as it is read.
struct Running {
    child: Child,
    lines: Receiver<String>,
    reader: JoinHandle<()>,
}

/// Starts `sansmq sub -c -q 1 -i ID` (logging on stderr) and waits for its SUBACK. With `slow`, stdout is read a
/// little at a time, so the pipe stays full and messages wait inside `sub`.
fn start_sub(port: &str, slow: bool) -> Running {
    let mut child = sansmq(&[
        "sub",
        "-p",
        port,
        "-t",
        TOPIC,
        "-q",
        "1",
        "-c",
        "-i",
        "kill-no-loss",
    ])
    .env("RUST_LOG", "debug")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the sansmq binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::with_capacity(512, stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = tx.send(line.trim_end().to_owned());
                }
            }
            if slow {
                thread::sleep(Duration::from_micros(1_500));
            }
        }
    });
    let (subacked_tx, subacked) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    thread::spawn(move || {
        let mut stderr = BufReader::new(stderr);
        let mut line = String::new();
        while matches!(stderr.read_line(&mut line), Ok(n) if n > 0) {
            if line.contains("received SUBACK") {
                let _ = subacked_tx.send(());
            }
            line.clear();
        }
        // Drain the rest so a chatty `-d` never blocks it.
        let _ = stderr.read_to_end(&mut Vec::new());
    });
    assert!(
        subacked.recv_timeout(PATIENCE).is_ok(),
        "sansmq sub never subscribed"
    );
    Running {
        child,
        lines,
        reader,
    }
}

/// Kills `sub` with `signal` once it has printed `before` lines; returns every line it printed
/// (what it wrote to the pipe before dying included).
fn kill_after(mut sub: Running, before: usize, signal: &str) -> Vec<String> {
    let mut printed = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while printed.len() < before && Instant::now() < deadline {
        if let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(100)) {
            printed.push(line);
        }
    }
    assert_eq!(
        printed.len(),
        before,
        "sub printed too little before the kill"
    );
    let killed = Command::new("kill")
        .args(["-s", signal, &sub.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let _ = sub.child.wait();
    let _ = sub.reader.join();
    printed.extend(sub.lines.try_iter());
    printed
}

/// Reads what a restarted `sub` prints until `printed` holds every message (or patience runs
/// out), then stops it.
fn collect_rest(mut sub: Running, printed: &mut Vec<String>) {
    let mut seen = sequence_counts(printed);
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < MESSAGES && Instant::now() < deadline {
        if let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(100)) {
            if let Some(seq) = sequence(&line) {
                *seen.entry(seq).or_insert(0) += 1;
            }
            printed.push(line);
        }
    }
    let _ = sub.child.kill();
    let _ = sub.child.wait();
    let _ = sub.reader.join();
}

/// The sequence number a printed line starts with.
fn sequence(line: &str) -> Option<usize> {
    line.get(..5).and_then(|s| s.parse().ok())
}

/// How many times each sequence number was printed.
fn sequence_counts(printed: &[String]) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for line in printed {
        if let Some(seq) = sequence(line) {
            *counts.entry(seq).or_insert(0) += 1;
        }
    }
    counts
}

fn killed_mid_stream_loses_nothing(signal: &str) {
    let broker = Mosquitto::builder()
        .max_queued_messages(0)
        .max_inflight_messages(u16::try_from(INFLIGHT).unwrap())
        .start();
    let port = broker.port().to_string();
    let first = start_sub(&port, true);

    let input: String = (0..MESSAGES)
        .map(|seq| format!("{seq:05} {}\n", "x".repeat(PADDING)))
        .collect();
    let publisher = {
        let port = port.clone();
        thread::spawn(move || {
            run_with_input(
                sansmq(&["pub", "-p", &port, "-t", TOPIC, "-q", "1", "-l"]),
                input.as_bytes(),
            )
        })
    };
    let before = 1_500;
    let mut printed = kill_after(first, before, signal);
    let published = publisher.join().expect("the publisher thread");
    assert_eq!(published.code, Some(0), "{published:#?}");

    let second = start_sub(&port, false);
    collect_rest(second, &mut printed);

    let counts = sequence_counts(&printed);
    let lost: Vec<usize> = (0..MESSAGES).filter(|s| !counts.contains_key(s)).collect();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "SIG{signal} after {before} lines: {} printed in all, {} lost, {duplicates} duplicates",
        printed.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {MESSAGES} messages lost across the kill (first: {:?}); {duplicates} duplicates",
        lost.len(),
        lost.first()
    );
    assert!(
        duplicates <= INFLIGHT,
        "{duplicates} duplicates: more than the {INFLIGHT} messages the broker had in flight"
    );
}

#[test]
fn sub_killed_with_sigkill_mid_stream_loses_no_message_of_its_persistent_session() {
    killed_mid_stream_loses_nothing("KILL");
}

#[test]
fn sub_interrupted_with_sigint_mid_stream_loses_no_message_of_its_persistent_session() {
    killed_mid_stream_loses_nothing("INT");
}

#[test]
fn sub_resuming_a_session_with_a_backlog_larger_than_its_queue_prints_it_all() {
    // Before SUBACK arrives the broker sends the whole backlog; waiting for SUBACK before
    // printing anything filled the receive queue and stopped reading, SUBACK included.
    let broker = Mosquitto::builder().max_queued_messages(0).start();
    let port = broker.port().to_string();
    let session = [
        "sub", "-p", &port, "-t", TOPIC, "-q", "1", "-c", "-i", "backlog",
    ];
    let created = common::run(&[&session[..], &["-W", "1"]].concat());
    assert_eq!(created.code, Some(27), "{created:#?}");
    let input: String = (0..MESSAGES).map(|seq| format!("{seq:05}\n")).collect();
    let published = run_with_input(
        sansmq(&["pub", "-p", &port, "-t", TOPIC, "-q", "1", "-l"]),
        input.as_bytes(),
    );
    assert_eq!(published.code, Some(0), "{published:#?}");

    let count = MESSAGES.to_string();
    let resumed = common::run(&[&session[..], &["-C", &count]].concat());
    assert_eq!(resumed.code, Some(0), "{resumed:#?}");
    assert_eq!(resumed.stdout, input);
}

#[test]
fn sub_count_leaves_what_it_did_not_print_to_the_next_run_of_a_persistent_session() {
    let broker = Mosquitto::builder().max_queued_messages(0).start();
    let port = broker.port().to_string();
    let session = [
        "sub", "-p", &port, "-t", TOPIC, "-q", "1", "-c", "-i", "count",
    ];
    let created = common::run(&[&session[..], &["-W", "1"]].concat());
    assert_eq!(created.code, Some(27), "{created:#?}");
    let published = run_with_input(
        sansmq(&["pub", "-p", &port, "-t", TOPIC, "-q", "1", "-l"]),
        b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
    );
    assert_eq!(published.code, Some(0), "{published:#?}");

    // The broker sends all ten at once; the first run prints five and must leave the others.
    let first = common::run(&[&session[..], &["-C", "5"]].concat());
    assert_eq!(first.code, Some(0), "{first:#?}");
    assert_eq!(first.stdout, "1\n2\n3\n4\n5\n");
    let second = common::run(&[&session[..], &["-C", "5", "-W", "10"]].concat());
    assert_eq!(second.code, Some(0), "{second:#?}");
    assert_eq!(second.stdout, "6\n7\n8\n9\n10\n");
}
