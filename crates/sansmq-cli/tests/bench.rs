//! `sansmq bench` end to end against a mosquitto of its own: a `sub` and a `pub` in parallel
//! agree on every message (none lost, none duplicated) and report latency percentiles; failures
//! are counted, named and make the exit code non-zero. Over WebSocket, against `sansmq broker`'s
//! WebSocket listener and, for wss, cut frames and pings, mosquitto behind the test bridge.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{PATIENCE, run, sansmq};
use sansmq_e2e::{Framing, Mosquitto, TestPki, WsBridge};

/// A `sansmq bench` running in the background, its stderr read line by line.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Background {
    fn start(args: &[&str]) -> Self {
        let mut child = sansmq(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sansmq binary runs");
        let (tx, lines) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Waits for a line of stderr starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) {
        let deadline = Instant::now() + PATIENCE;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.starts_with(prefix);
            self.stderr.push(line);
            if found {
                return;
            }
        }
        panic!("no {prefix:?} line; stderr: {:#?}", self.stderr);
    }

    /// Waits for the end; the exit code and stdout.
    fn finish(mut self) -> (Option<i32>, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_string(&mut stdout)
            .expect("reading stdout");
        let status = self.child.wait().expect("waiting for sansmq");
        self.stderr.extend(self.lines.try_iter());
        (status.code(), stdout)
    }
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

fn assert_percentiles(latency: &Value, count: u64) {
    assert_eq!(latency["count"], count, "{latency}");
    let mut previous = 0;
    for key in ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"] {
        let value = latency[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {latency}"));
        assert!(value >= previous && value > 0, "{key} in {latency}");
        previous = value;
    }
}

#[test]
fn sub_receives_every_message_pub_sends_once_with_latencies() {
    const PUBLISHERS: u64 = 100;
    const SUBSCRIBERS: u64 = 10;
    const MESSAGES: u64 = 2_000;
    let broker = Mosquitto::builder().max_queued_messages(0).start();
    let port = broker.port().to_string();
    let expected = (SUBSCRIBERS * MESSAGES).to_string();
    let mut sub = Background::start(&[
        "bench",
        "sub",
        "-p",
        &port,
        "-c",
        "10",
        "-i",
        "0",
        "-t",
        "bench/#",
        "-q",
        "1",
        "-L",
        &expected,
        "--duration",
        "60",
        "--json",
    ]);
    sub.wait_for("ready: 10 connected, 10 subscribed");

    let publisher = run(&[
        "bench", "pub", "-p", &port, "-c", "100", "-i", "1", "-I", "10", "-t", "bench/%i", "-q",
        "1", "-L", "2000", "--json",
    ]);
    assert_eq!(publisher.code, Some(0), "{publisher:#?}");
    let sent = json(&publisher.stdout);
    assert_eq!(sent["published"], MESSAGES, "{sent}");
    assert_eq!(sent["acked"], MESSAGES, "{sent}");
    assert_eq!(sent["connected"], PUBLISHERS, "{sent}");
    assert_eq!(sent["errors"], 0, "{sent}");
    assert_percentiles(&sent["latency"]["publish_to_ack"], MESSAGES);
    assert_percentiles(&sent["latency"]["connect"], PUBLISHERS);

    let (code, stdout) = sub.finish();
    assert_eq!(code, Some(0), "{stdout}");
    let got = json(&stdout);
    // Every subscriber hears every message of every publisher.
    assert_eq!(got["received"], SUBSCRIBERS * MESSAGES, "{got}");
    assert_eq!(got["lost"], 0, "{got}");
    assert_eq!(got["duplicates"], 0, "{got}");
    assert_eq!(got["reordered"], 0, "{got}");
    assert_eq!(got["streams"], SUBSCRIBERS * PUBLISHERS, "{got}");
    assert_eq!(got["subscribed"], SUBSCRIBERS, "{got}");
    assert_percentiles(
        &got["latency"]["publish_to_receive"],
        SUBSCRIBERS * MESSAGES,
    );
}

#[test]
fn a_port_nobody_listens_on_counts_connect_errors_and_fails() {
    let port = sansmq_e2e::free_port().to_string();
    let outcome = run(&[
        "bench",
        "conn",
        "-p",
        &port,
        "-h",
        "127.0.0.1",
        "-c",
        "5",
        "-i",
        "0",
        "--json",
    ]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let report = json(&outcome.stdout);
    assert_eq!(report["connect_errors"], 5, "{report}");
    assert_eq!(report["connected"], 0, "{report}");
    assert_eq!(report["error_causes"][0]["count"], 5, "{report}");
    let line = outcome.error_line();
    assert!(
        line.contains("5 errors") && line.contains("refused"),
        "{line}"
    );
}

#[test]
fn conn_keeps_clients_connected_until_the_duration_ends() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("series.csv");
    let html = dir.path().join("report.html");
    let started = Instant::now();
    #[rustfmt::skip]
    let outcome = run(&[
        "bench", "conn", "-p", &port, "-c", "50", "-i", "0", "-V", "5", "-x", "0",
        "--duration", "2", "--json",
        "--csv", csv.to_str().unwrap(), "--report", html.to_str().unwrap(),
    ]);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    let report = json(&outcome.stdout);
    assert_eq!(report["connected"], 50, "{report}");
    assert_eq!(report["closed"], 50, "{report}");
    assert_percentiles(&report["latency"]["connect"], 50);
    let series = std::fs::read_to_string(&csv).unwrap();
    let mut rows = series.lines();
    assert!(
        rows.next().unwrap().starts_with("elapsed_s,connected,"),
        "{series}"
    );
    assert!(rows.count() >= 2, "a row per second: {series}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2, "{page}");
    assert!(page.contains("50 connected"), "{page}");
}

#[test]
fn options_not_built_or_not_fitting_are_refused_by_name() {
    for (args, expected) in [
        (&["bench", "pub", "-t", "t", "--ws-path", "/x"][..], "--ws"),
        (
            &["bench", "pub", "-t", "t", "--ws", "--ws-path", "mqtt"][..],
            "--ws-path",
        ),
        (
            &["bench", "pub", "-t", "t", "--apsaramq-instance", "i"][..],
            "--group-id",
        ),
        (&["bench", "conn", "-x", "60"][..], "-V 5"),
        (&["bench", "pub"][..], "-t/--topic"),
        (&["bench", "pub", "-t", "t/%rand_0"][..], "%rand_N"),
    ] {
        let mut command = sansmq(args);
        command.env_remove("MQTT_AK_ENV").env_remove("MQTT_SK_ENV");
        let outcome = common::run_with_input(command, b"");
        assert_eq!(outcome.code, Some(1), "{args:?}: {outcome:#?}");
        assert!(
            outcome.error_line().contains(expected),
            "{args:?}: {outcome:#?}"
        );
    }
}

#[test]
fn apsaramq_clients_each_sign_their_own_client_id() {
    let broker = common::BrokerProcess::start(&[
        "--apsaramq",
        "mqtt-bench-test",
        "--access-key",
        "LTAIbench:benchsecret",
    ]);
    let login = |secret: &str| {
        #[rustfmt::skip]
        let outcome = run(&[
            "bench", "conn", "-h", "127.0.0.1", "-p", broker.port(), "-c", "5", "-i", "0",
            "--duration", "1", "--json", "--apsaramq-instance", "mqtt-bench-test",
            "--group-id", "GID_bench", "--prefix", "device-", "--access-key", "LTAIbench",
            "--secret-key", secret,
        ]);
        outcome
    };
    let ok = login("benchsecret");
    assert_eq!(ok.code, Some(0), "{ok:#?}");
    assert_eq!(json(&ok.stdout)["connected"], 5, "{ok:#?}");

    let refused = login("wrong");
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let report = json(&refused.stdout);
    assert_eq!(report["connect_errors"], 5, "{report}");
    assert_eq!(report["connected"], 0, "{report}");
}

#[test]
fn ssl_clients_verify_the_broker_and_exchange_messages() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let port = broker.tls_port().to_string();
    let ca = pki.ca_pem_path().to_str().unwrap();
    #[rustfmt::skip]
    let ok = run(&[
        "bench", "pubsub", "-h", "127.0.0.1", "-p", &port, "--ssl", "--cacertfile", ca,
        "-c", "5", "-i", "0", "-I", "20", "-t", "tls/%i", "-q", "1", "-L", "100", "--json",
    ]);
    assert_eq!(ok.code, Some(0), "{ok:#?}");
    let report = json(&ok.stdout);
    assert_eq!(report["connected"], 5, "{report}");
    assert_eq!(report["acked"], 100, "{report}");
    assert_eq!(report["received"], 100, "{report}");
    assert_eq!(report["lost"], 0, "{report}");

    // Mozilla's roots do not know the test CA: every handshake fails, and says why.
    #[rustfmt::skip]
    let refused = run(&[
        "bench", "conn", "-h", "127.0.0.1", "-p", &port, "--ssl", "-c", "3", "-i", "0", "--json",
    ]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let report = json(&refused.stdout);
    assert_eq!(report["connect_errors"], 3, "{report}");
    let cause = report["error_causes"][0]["cause"].as_str().unwrap();
    assert!(
        cause.contains("TLS") || cause.contains("certificate"),
        "{cause}"
    );
}

#[test]
fn sub_and_pub_over_websocket_agree_on_every_message() {
    const PUBLISHERS: u64 = 20;
    const SUBSCRIBERS: u64 = 2;
    const MESSAGES: u64 = 400;
    let broker = common::BrokerProcess::start(&["--ws-bind", "127.0.0.1:0"]);
    let url = broker.ws_url.clone().expect("a ws:// address");
    let port = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let expected = (SUBSCRIBERS * MESSAGES).to_string();
    #[rustfmt::skip]
    let mut sub = Background::start(&[
        "bench", "sub", "--ws", "-h", "127.0.0.1", "-p", &port, "-c", "2", "-i", "0",
        "-t", "bench/#", "-q", "1", "-L", &expected, "--duration", "60", "--json",
    ]);
    sub.wait_for("ready: 2 connected, 2 subscribed");

    #[rustfmt::skip]
    let publisher = run(&[
        "bench", "pub", "--ws", "-h", "127.0.0.1", "-p", &port, "-c", "20", "-i", "0",
        "-I", "5", "-t", "bench/%i", "-q", "1", "-L", "400", "--json",
    ]);
    assert_eq!(publisher.code, Some(0), "{publisher:#?}");
    let sent = json(&publisher.stdout);
    assert_eq!(sent["published"], MESSAGES, "{sent}");
    assert_eq!(sent["acked"], MESSAGES, "{sent}");
    assert_eq!(sent["connected"], PUBLISHERS, "{sent}");
    assert_eq!(sent["errors"], 0, "{sent}");

    let (code, stdout) = sub.finish();
    assert_eq!(code, Some(0), "{stdout}");
    let got = json(&stdout);
    assert_eq!(got["received"], SUBSCRIBERS * MESSAGES, "{got}");
    assert_eq!(got["lost"], 0, "{got}");
    assert_eq!(got["duplicates"], 0, "{got}");
    assert_eq!(got["reordered"], 0, "{got}");
    assert_eq!(got["streams"], SUBSCRIBERS * PUBLISHERS, "{got}");
    assert_percentiles(
        &got["latency"]["publish_to_receive"],
        SUBSCRIBERS * MESSAGES,
    );
}

#[test]
fn websocket_frames_cut_anywhere_pings_and_wss_lose_nothing() {
    let broker = Mosquitto::builder().max_queued_messages(0).start();
    let pki = TestPki::generate();
    let ca = pki.ca_pem_path().display().to_string();
    // Packets split over 7-byte frames, under TLS, on the path asked for.
    let wss = WsBridge::start_tls(broker.addr(), &pki, Framing::Split(7));
    // Several packets to a frame, and a Ping every 20 ms to answer.
    let ws = WsBridge::start_with(
        broker.addr(),
        Framing::Coalesce(Duration::from_millis(2)),
        Some(Duration::from_millis(20)),
    );
    // An MQTT port does not answer the upgrade: every connect fails, and says why.
    let mqtt_port = broker.port().to_string();
    #[rustfmt::skip]
    let refused = run(&[
        "bench", "conn", "--ws", "-h", "127.0.0.1", "-p", &mqtt_port, "-c", "2", "-i", "0", "--json",
    ]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let report = json(&refused.stdout);
    assert_eq!(report["connect_errors"], 2, "{report}");
    let cause = report["error_causes"][0]["cause"].as_str().unwrap();
    assert!(cause.contains("WebSocket port"), "{cause}");

    for (bridge, tls) in [(&wss, true), (&ws, false)] {
        let port = bridge.addr().port().to_string();
        #[rustfmt::skip]
        let mut args = vec![
            "bench", "pubsub", "--ws", "--ws-path", "/gw/mqtt", "-h", "127.0.0.1", "-p", &port,
            "-c", "3", "-i", "0", "-I", "5", "-t", "ws/%i", "-q", "2", "-L", "150", "--json",
        ];
        if tls {
            args.extend(["--ssl", "--cacertfile", &ca]);
        }
        let outcome = run(&args);
        assert_eq!(outcome.code, Some(0), "tls {tls}: {outcome:#?}");
        let report = json(&outcome.stdout);
        assert_eq!(report["connected"], 3, "{report}");
        assert_eq!(report["acked"], 150, "{report}");
        assert_eq!(report["received"], 150, "{report}");
        assert_eq!(report["lost"], 0, "{report}");
        assert_eq!(report["duplicates"], 0, "{report}");
        let upgrades = bridge.upgrades();
        assert_eq!(upgrades.len(), 3, "{upgrades:?}");
        assert!(
            upgrades
                .iter()
                .all(|u| u.path == "/gw/mqtt" && u.protocols == ["mqtt"]),
            "{upgrades:?}"
        );
    }
}
