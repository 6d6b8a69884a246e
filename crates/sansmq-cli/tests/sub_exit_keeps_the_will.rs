//! `sansmq sub -C N` exiting normally while messages are still arriving must not fire its will:
//! the broker has to read the DISCONNECT before the socket closes. Closing a socket with unread
//! data makes Linux send a reset, and a broker that sees the reset first publishes the will
//! (mosquitto_sub has this bug; the review saw sansmq's will fire 10 times out of 10). Ctrl-C
//! (SIGINT) and SIGTERM are normal exits too: sub disconnects and exits 0, as mosquitto_sub does.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq_e2e::{Mosquitto, wait_until};

use common::{PATIENCE, Subscriber, run, sansmq};

/// A `sansmq pub -l` fed QoS 0 lines as fast as the pipe takes them, until dropped.
struct Flood {
    child: Child,
    stop: Arc<AtomicBool>,
    feeder: Option<thread::JoinHandle<()>>,
}

impl Flood {
    fn start(port: &str, topic: &str) -> Self {
        let mut child = sansmq(&["pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the sansmq binary runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let line = [b'x'; 200];
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let ok = write!(stdin, "{n} ").is_ok()
                        && stdin.write_all(&line).is_ok()
                        && stdin.write_all(b"\n").is_ok();
                    if !ok {
                        break;
                    }
                }
            }
        });
        Self {
            child,
            stop,
            feeder: Some(feeder),
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}

/// A `sub` that prints the first message on `will/#`: a will if one fired, else the end marker
/// that [`no_will_fired`] sends.
fn will_watcher(port: &str) -> Subscriber {
    Subscriber::start(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-t",
        "will/#",
        "-v",
        "-C",
        "1",
    ])
}

/// Checks that `watcher` saw no will, after `exits` exits of sub.
fn no_will_fired(port: &str, watcher: Subscriber, exits: &str) {
    // A will is published at once when the broker sees the connection break; give it time.
    thread::sleep(Duration::from_millis(500));
    let marker = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-t",
        "will/end",
        "-m",
        "end",
    ]);
    assert_eq!(marker.code, Some(0), "{marker:#?}");
    let watched = watcher.finish();
    assert_eq!(
        watched.stdout, "will/end end\n",
        "a normal exit of sub fired its will ({exits}): {watched:#?}"
    );
}

#[test]
fn sub_interrupted_while_messages_arrive_disconnects_without_firing_its_will() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let watcher = will_watcher(&port);
    let _flood = Flood::start(&port, "flood/t");
    const EXITS: usize = 3;
    for exit in 0..EXITS {
        let will_topic = format!("will/{exit}");
        let mut sub = Subscriber::start(&[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "flood/t",
            "--will-topic",
            &will_topic,
            "--will-payload",
            "gone",
        ]);
        sub.wait_for_stderr("received PUBLISH");
        // Ctrl-C pressed impatiently, then SIGTERM (a service manager stopping it).
        for signal in ["INT", "INT", "INT", "TERM"] {
            sub.signal(signal);
        }
        let outcome = sub.finish();
        assert_eq!(outcome.code, Some(0), "exit {exit}: {outcome:#?}");
        assert!(!outcome.stdout.is_empty(), "exit {exit}: {outcome:#?}");
    }
    no_will_fired(&port, watcher, &format!("{EXITS} exits on SIGINT"));
}

#[test]
fn sub_count_exiting_while_messages_arrive_does_not_fire_its_will() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let watcher = will_watcher(&port);
    let _flood = Flood::start(&port, "flood/t");
    const EXITS: usize = 5;
    for exit in 0..EXITS {
        let will_topic = format!("will/{exit}");
        let sub = run(&[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "flood/t",
            "-C",
            "10",
            "-W",
            "30",
            "--will-topic",
            &will_topic,
            "--will-payload",
            "gone",
        ]);
        assert_eq!(sub.code, Some(0), "exit {exit}: {sub:#?}");
        assert_eq!(sub.stdout.lines().count(), 10, "exit {exit}: {sub:#?}");
    }
    no_will_fired(&port, watcher, &format!("{EXITS} exits at -C"));
}

#[test]
fn pub_lines_interrupted_sends_what_it_read_and_does_not_fire_its_will() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let watcher = will_watcher(&port);
    let reader = Subscriber::start(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "lines/t",
        "-C",
        "1",
    ]);
    let mut publisher = sansmq(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "lines/t",
        "-l",
        "-q",
        "1",
        "--will-topic",
        "will/pub",
        "--will-payload",
        "gone",
    ])
    .env("RUST_LOG", "debug")
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the sansmq binary runs");
    // stdin stays open: pub waits for the next line when the signal comes.
    let mut stdin = publisher.stdin.take().expect("piped stdin");
    stdin.write_all(b"first\n").expect("writing stdin");
    let stderr = BufReader::new(publisher.stderr.take().expect("piped stderr"));
    let (tx, logged) = mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let published = wait_until(PATIENCE, || {
        logged
            .try_iter()
            .any(|line| line.contains("sending PUBLISH"))
    });
    assert!(published, "pub never published");
    let pid = publisher.id().to_string();
    for signal in ["INT", "INT"] {
        let status = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
    let exited = wait_until(PATIENCE, || !matches!(publisher.try_wait(), Ok(None)));
    let _ = publisher.kill();
    let status = publisher.wait().expect("pub exits");
    drop(stdin);
    assert!(exited, "pub -l did not exit on SIGINT");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(reader.finish().stdout, "first\n");
    no_will_fired(&port, watcher, "pub -l on SIGINT");
}
