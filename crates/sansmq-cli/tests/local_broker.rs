//! `sansmq pub` and `sansmq sub` against sansmq's own broker: `sansmq broker` as a process, and
//! the broker in ApsaraMQ mode in-process, with Signature logins from the environment, Token
//! logins and P2P messages.

mod common;

use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, TokenKind};

use common::{BrokerProcess, Subscriber, run, sansmq};

const INSTANCE: &str = "mqtt-test";
const KEY_ID: &str = "LTAI-test";
const KEY_SECRET: &str = "test-secret";

/// The local broker in ApsaraMQ mode, knowing one AccessKey and one RW token for it.
fn apsaramq_broker() -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(KEY_ID, KEY_SECRET)
        .token(KEY_ID, TokenKind::ReadWrite, "token-rw")
        .token(KEY_ID, TokenKind::Read, "token-r")
        .token(KEY_ID, TokenKind::Write, "token-w");
    sansmq_broker::start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .expect("the broker starts")
}

/// `sansmq <args> -h 127.0.0.1 -p <port> --apsaramq-instance mqtt-test` with the key in the
/// environment.
fn apsaramq(broker: &Broker, args: &[&str]) -> std::process::Command {
    let port = broker.local_addr().port().to_string();
    let mut command = sansmq(args);
    command
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--apsaramq-instance",
            INSTANCE,
        ])
        .env("MQTT_AK_ENV", KEY_ID)
        .env("MQTT_SK_ENV", KEY_SECRET);
    command
}

fn finish(command: std::process::Command) -> common::Outcome {
    common::run_with_input(command, b"")
}

#[test]
fn pub_and_sub_round_trip_through_the_broker_command() {
    let broker = BrokerProcess::start(&[]);
    let port = broker.port();
    let sub = Subscriber::start(&[
        "sub", "-p", port, "-t", "local/#", "-C", "2", "-v", "-q", "2",
    ]);
    for (topic, qos) in [("local/a", "1"), ("local/b", "2")] {
        let published = run(&["pub", "-p", port, "-t", topic, "-m", "hi", "-q", qos]);
        assert_eq!(published.code, Some(0), "{published:#?}");
    }
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(received.stdout, "local/a hi\nlocal/b hi\n");
}

/// paho-mqtt subscribes over WebSocket at `sys.argv[1]` (host:port); says when subscribed, then
/// prints the first message.
const PAHO_WS_SUBSCRIBER: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
host, port = sys.argv[1].rsplit(":", 1)
got = threading.Event()
def on_message(c, u, m):
    print(m.topic, m.payload.decode(), flush=True)
    got.set()
c = mqtt.Client("paho-ws", transport="websockets")
c.on_message = on_message
c.on_subscribe = lambda *a: print("subscribed", flush=True)
c.connect(host, int(port))
c.subscribe("local/ws", qos=1)
c.loop_start()
assert got.wait(10), "nothing arrived"
"#;

#[test]
fn broker_command_serves_websocket_beside_tcp_with_ws_bind() {
    let broker = BrokerProcess::start(&["--ws-bind", "127.0.0.1:0"]);
    let ws_url = broker
        .ws_url
        .clone()
        .expect("a ws:// address on the first line");
    let ws_addr = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{ws_url}"));
    assert_ne!(ws_addr, broker.addr);
    let mut paho = std::process::Command::new(sansmq_e2e::python_with_paho())
        .args(["-c", PAHO_WS_SUBSCRIBER, ws_addr])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(paho.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "subscribed");
    let published = run(&[
        "pub",
        "-p",
        broker.port(),
        "-t",
        "local/ws",
        "-m",
        "from tcp",
        "-q",
        "1",
    ]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    assert_eq!(lines.next().unwrap().unwrap(), "local/ws from tcp");
    assert!(paho.wait().unwrap().success());
}

#[test]
fn apsaramq_p2p_reaches_its_target_without_a_subscription() {
    let broker = apsaramq_broker();
    let receiver = "GID_test@@@receiver";
    // `parent/+` does not match `parent/p2p/<id>`: the P2P message comes by its own route.
    let sub = Subscriber::spawn(apsaramq(
        &broker,
        &[
            "sub", "-i", receiver, "-t", "parent/+", "-q", "1", "-C", "2", "--json",
        ],
    ));
    let to_topic = finish(apsaramq(
        &broker,
        &[
            "pub",
            "-i",
            "GID_test@@@sender",
            "-t",
            "parent/hello",
            "-m",
            "to all",
            "-q",
            "1",
        ],
    ));
    assert_eq!(to_topic.code, Some(0), "{to_topic:#?}");
    let p2p = finish(apsaramq(
        &broker,
        &[
            "pub",
            "-i",
            "GID_test@@@sender",
            "-t",
            "parent/anything",
            "--p2p",
            receiver,
            "-m",
            "to you",
            "-q",
            "1",
        ],
    ));
    assert_eq!(p2p.code, Some(0), "{p2p:#?}");

    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    let lines: Vec<serde_json::Value> = received
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{received:#?}");
    assert_eq!(lines[0]["topic"], "parent/hello");
    assert_eq!(lines[0]["payload"], "to all");
    assert_eq!(lines[0]["p2p"], false);
    assert_eq!(lines[1]["topic"], format!("parent/p2p/{receiver}"));
    assert_eq!(lines[1]["payload"], "to you");
    assert_eq!(lines[1]["encoding"], "utf8");
    assert_eq!(lines[1]["qos"], 1);
    assert_eq!(lines[1]["p2p"], true);
}

#[test]
fn apsaramq_wrong_secret_exits_5_and_points_at_the_environment() {
    let broker = apsaramq_broker();
    let mut command = apsaramq(
        &broker,
        &["pub", "-i", "GID_test@@@dev", "-t", "p/t", "-m", "x"],
    );
    command.env("MQTT_SK_ENV", "not-the-secret");
    let outcome = finish(command);
    assert_eq!(outcome.code, Some(5), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(line.contains("MQTT_AK_ENV"), "{line}");
    assert!(!outcome.stderr.contains("not-the-secret"), "{outcome:#?}");
}

#[test]
fn apsaramq_token_login_publishes_with_only_the_key_id() {
    let broker = apsaramq_broker();
    let sub = Subscriber::spawn(apsaramq(
        &broker,
        &[
            "sub",
            "-i",
            "GID_test@@@reader",
            "-t",
            "parent/t",
            "-C",
            "1",
        ],
    ));
    let mut command = apsaramq(
        &broker,
        &[
            "pub",
            "-i",
            "GID_test@@@writer",
            "-t",
            "parent/t",
            "-m",
            "by token",
            "--token",
            "RW=token-rw",
        ],
    );
    command.env_remove("MQTT_SK_ENV");
    let published = finish(command);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let received = sub.finish();
    assert_eq!(received.stdout, "by token\n");

    let mut command = apsaramq(
        &broker,
        &[
            "pub",
            "-i",
            "GID_test@@@writer",
            "-t",
            "parent/t",
            "-m",
            "x",
            "--token",
            "W=unknown",
        ],
    );
    command.env_remove("MQTT_SK_ENV");
    assert_eq!(finish(command).code, Some(5));
}

#[test]
fn apsaramq_rules_are_checked_before_connecting() {
    let broker = apsaramq_broker();
    let cases: [(&[&str], &str); 4] = [
        (
            &["pub", "-i", "GID_test@@@dev", "-t", "p/t", "-m", "x", "-r"],
            "retained",
        ),
        (&["pub", "-t", "p/t", "-m", "x"], "<GroupID>@@@<DeviceID>"),
        (
            &["pub", "-i", "device-1", "-t", "p/t", "-m", "x"],
            "\"device-1\"",
        ),
        (
            &[
                "sub",
                "-i",
                "GID_test@@@dev",
                "-t",
                "p/t",
                "--will-topic",
                "p/will",
            ],
            "will",
        ),
    ];
    for (args, expected) in cases {
        let outcome = finish(apsaramq(&broker, args));
        assert_eq!(outcome.code, Some(1), "{args:?}: {outcome:#?}");
        let line = outcome.error_line();
        assert!(line.contains(expected), "{args:?}: {line}");
    }

    let mut command = apsaramq(
        &broker,
        &["pub", "-i", "GID_test@@@dev", "-t", "p/t", "-m", "x"],
    );
    command.env_remove("MQTT_SK_ENV");
    let outcome = finish(command);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("MQTT_SK_ENV"), "{outcome:#?}");
}

#[test]
fn broker_command_in_apsaramq_mode_takes_keys_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("# test keys\n{KEY_ID}:{KEY_SECRET}\n")).unwrap();
    let broker = BrokerProcess::start(&["--apsaramq", INSTANCE, "--keys", keys.to_str().unwrap()]);
    let login = |secret: &str| {
        let mut command = sansmq(&[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            broker.port(),
            "--apsaramq-instance",
            INSTANCE,
            "-i",
            "GID_test@@@dev",
            "-t",
            "p/t",
            "-m",
            "x",
            "-q",
            "1",
        ]);
        command
            .env("MQTT_AK_ENV", KEY_ID)
            .env("MQTT_SK_ENV", secret);
        finish(command)
    };
    let good = login(KEY_SECRET);
    assert_eq!(good.code, Some(0), "{good:#?}");
    assert_eq!(login("wrong").code, Some(5));
}

#[test]
fn broker_command_refuses_a_taken_port() {
    let first = BrokerProcess::start(&[]);
    let outcome = run(&["broker", "--bind", &first.addr]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains(&first.addr), "{outcome:#?}");
}

#[test]
fn apsaramq_closing_the_connection_after_a_forbidden_publish_is_explained() {
    let broker = apsaramq_broker();
    // A read-only token may not publish: the service closes the connection at once.
    let mut command = apsaramq(
        &broker,
        &[
            "pub",
            "-i",
            "GID_test@@@dev",
            "-t",
            "parent/t",
            "-m",
            "x",
            "-q",
            "1",
            "--token",
            "R=token-r",
        ],
    );
    command.env_remove("MQTT_SK_ENV");
    let outcome = finish(command);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(line.contains("publishing to \"parent/t\""), "{line}");
    assert!(line.contains("may not publish"), "{line}");
    assert!(line.contains("W or RW"), "{line}");
    // It fails as the connection closes, not after a timeout.
    assert!(outcome.elapsed.as_secs() < 4, "{outcome:#?}");
}

#[test]
fn apsaramq_closing_the_connection_after_a_forbidden_subscribe_is_explained() {
    let broker = apsaramq_broker();
    let mut command = apsaramq(
        &broker,
        &[
            "sub",
            "-i",
            "GID_test@@@dev",
            "-t",
            "parent/t",
            "--token",
            "W=token-w",
        ],
    );
    command.env_remove("MQTT_SK_ENV");
    let outcome = finish(command);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(line.contains("subscribing to [\"parent/t\"]"), "{line}");
    assert!(line.contains("may not subscribe"), "{line}");
    assert!(line.contains("R or RW"), "{line}");
}

/// The `export NAME=VALUE ...` lines `sansmq broker --apsaramq` prints, as (name, value) pairs.
fn printed_exports(broker: &mut BrokerProcess) -> Vec<(String, String)> {
    let mut exports = Vec::new();
    for _ in 0..6 {
        let line = broker.next_line();
        if let Some(assignments) = line.trim().strip_prefix("export ") {
            for assignment in assignments.split_whitespace() {
                let (name, value) = assignment.split_once('=').expect("NAME=VALUE");
                exports.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    exports
}

#[test]
fn the_apsaramq_broker_generates_an_access_key_and_prints_a_login_that_works() {
    let mut broker = BrokerProcess::start(&["--apsaramq", "mqtt-gen"]);
    let exports = printed_exports(&mut broker);
    let names: Vec<&str> = exports.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "MQTT_BROKER",
            "MQTT_INSTANCE_ID",
            "MQTT_AK_ENV",
            "MQTT_SK_ENV",
            "MQTT_OPENAPI_ENDPOINT"
        ]
    );
    let value = |name: &str| &exports.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(value("MQTT_AK_ENV").starts_with("LTAI"));
    assert_eq!(value("MQTT_BROKER"), &format!("tcp://{}", broker.addr));
    assert!(value("MQTT_OPENAPI_ENDPOINT").starts_with("http://127.0.0.1:"));

    let publish = |secret: &str| {
        let mut command = sansmq(&[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            broker.port(),
            "--apsaramq-instance",
            "mqtt-gen",
            "-i",
            "GID_demo@@@device-1",
            "-t",
            "demo/x",
            "-m",
            "hi",
            "-q",
            "1",
        ]);
        command
            .env("MQTT_AK_ENV", value("MQTT_AK_ENV"))
            .env("MQTT_SK_ENV", secret);
        finish(command)
    };
    let accepted = publish(value("MQTT_SK_ENV"));
    assert_eq!(accepted.code, Some(0), "{accepted:#?}");
    let refused = publish("not-the-secret");
    assert_eq!(refused.code, Some(5), "{refused:#?}");
}
