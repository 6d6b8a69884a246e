//! A publisher with a session store is killed with `SIGKILL` at random moments and started again
//! with the same store, while mosquitto_sub takes its messages: every message whose `publish`
//! returned `Ok` arrives, at least once at QoS 1 and exactly once at QoS 2 (with an fsync of every
//! record), and the store is empty once the last run has disconnected.
//!
//! CI runs a scaled-down run (`SANSMQ_CRASH_MESSAGES`, default 1,500, and `SANSMQ_CRASH_KILLS`,
//! default 20, per QoS); `cargo xtask crash` runs 10,000 messages in release mode.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sansmq_e2e::{KillLoop, Life, Mosquitto, PATIENCE, scale_from_env, wait_until};
use sansmq_mio::{FileStore, SessionStore, SyncPolicy};

const TOPIC: &str = "crash/pub";
const PUBLISHER_ID: &str = "crash-publisher";

/// mosquitto_sub with a kept session, its output in a file.
struct Subscriber {
    child: Child,
    output: File,
}

impl Subscriber {
    fn start(broker: &Mosquitto, qos: u8, dir: &Path) -> Self {
        let path = dir.join("received.txt");
        let output = File::create(&path).expect("output file");
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args([
                "-t",
                TOPIC,
                "-q",
                &qos.to_string(),
                "-c",
                "-i",
                "crash-subscriber",
            ])
            .stdout(Stdio::from(output))
            .spawn()
            .expect("mosquitto_sub runs");
        let output = File::open(&path).expect("output file");
        let mut subscriber = Self { child, output };
        subscriber.wait_until_subscribed(broker);
        subscriber
    }

    /// Publishes probes until one arrives: the subscription is in place then.
    fn wait_until_subscribed(&mut self, broker: &Mosquitto) {
        let mut seen = String::new();
        let subscribed = wait_until(PATIENCE, || {
            let status = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
                .args(["-t", TOPIC, "-q", "1", "-m", "probe"])
                .status()
                .expect("mosquitto_pub runs");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(50));
            let _ = self.output.read_to_string(&mut seen);
            seen.contains("probe")
        });
        assert!(subscribed, "mosquitto_sub never received a probe");
    }

    /// Every number received so far, with how often.
    fn received(&mut self, counts: &mut BTreeMap<u64, usize>, rest: &mut String) {
        let _ = self.output.read_to_string(rest);
        let complete = rest.rfind('\n').map_or(0, |i| i + 1);
        for line in rest[..complete].lines() {
            if let Ok(n) = line.parse() {
                *counts.entry(n).or_default() += 1;
            }
        }
        rest.drain(..complete);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The numbers the runs printed after `prefix` (`try ` or `ok `).
fn numbers<'a>(lives: &'a [Life], prefix: &'a str) -> impl Iterator<Item = u64> + 'a {
    lives
        .iter()
        .flat_map(Life::lines)
        .filter_map(move |line| line.strip_prefix(prefix)?.parse().ok())
}

fn publisher_survives_kills(qos: u8) {
    let messages = scale_from_env("SANSMQ_CRASH_MESSAGES", 1_500);
    let kills = scale_from_env("SANSMQ_CRASH_KILLS", 20) as usize;
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().expect("a temporary directory");
    let store_dir = work.path().join("sessions");
    let mut subscriber = Subscriber::start(&broker, qos, work.path());

    let mut kill_loop =
        KillLoop::new(kills).lifetimes(Duration::from_millis(5), Duration::from_millis(150));
    let lives = kill_loop.run(|lives| {
        // Each run goes on after the last message an earlier one tried: a number is published
        // once by the application, whatever became of it.
        let next = numbers(lives, "try ").max().map_or(1, |n| n + 1);
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash_publisher"));
        command
            .args([&broker.url(), PUBLISHER_ID])
            .arg(&store_dir)
            .args([qos.to_string(), next.to_string(), messages.to_string()]);
        command
    });
    let killed = lives.iter().filter(|l| l.killed).count();
    let last = lives.last().expect("a last run");
    assert!(
        last.output.ends_with("done\n"),
        "the last run failed: {}",
        last.output
    );
    let accepted: BTreeSet<u64> = numbers(&lives, "ok ").collect();
    let tried: BTreeSet<u64> = numbers(&lives, "try ").collect();
    assert_eq!(tried.len() as u64, messages, "every number was tried");

    let mut counts = BTreeMap::new();
    let mut rest = String::new();
    let all_arrived = wait_until(PATIENCE, || {
        subscriber.received(&mut counts, &mut rest);
        accepted.iter().all(|n| counts.contains_key(n))
    });
    // Late copies, if any, have time to show.
    std::thread::sleep(Duration::from_millis(300));
    subscriber.received(&mut counts, &mut rest);
    let missing: Vec<&u64> = accepted
        .iter()
        .filter(|n| !counts.contains_key(n))
        .collect();
    assert!(
        all_arrived && missing.is_empty(),
        "{} of {} accepted messages never arrived (seed {}): {:?}",
        missing.len(),
        accepted.len(),
        kill_loop.seed(),
        missing.iter().take(20).collect::<Vec<_>>()
    );
    let strangers: Vec<&u64> = counts.keys().filter(|n| !tried.contains(n)).collect();
    assert!(strangers.is_empty(), "never published: {strangers:?}");
    let duplicated: Vec<(&u64, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    if qos == 2 {
        assert!(
            duplicated.is_empty(),
            "QoS 2 messages received twice (seed {}): {:?}",
            kill_loop.seed(),
            duplicated.iter().take(20).collect::<Vec<_>>()
        );
    }
    // The last run disconnected with nothing in flight: the store holds no message.
    let mut store =
        FileStore::open(&store_dir, PUBLISHER_ID, SyncPolicy::Never).expect("the store opens");
    let session = store.load().expect("the session loads");
    assert!(
        session.inflight.is_empty() && session.queued.is_empty(),
        "messages left in the store: {session:?}"
    );
    eprintln!(
        "QoS {qos}: {messages} messages, {killed} kills, {} runs; {} accepted, {} tried without an \
         answer, {} received more than once",
        lives.len(),
        accepted.len(),
        tried.len() - accepted.len(),
        duplicated.len()
    );
    assert!(killed >= kills, "only {killed} kills");
}

#[test]
fn a_killed_qos1_publisher_loses_nothing() {
    publisher_survives_kills(1);
}

#[test]
fn a_killed_qos2_publisher_loses_nothing_and_duplicates_nothing() {
    publisher_survives_kills(2);
}
