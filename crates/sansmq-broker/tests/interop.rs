//! Interoperability with other MQTT implementations: `mosquitto_pub`/`mosquitto_sub` (Debian package
//! `mosquitto-clients`) and Python paho-mqtt (`python3-paho-mqtt`). These tools are required: CI
//! installs them (`cargo xtask ci`), and a test fails, saying what to install, when one is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestClient, connect_v5, eventually};
use sansmq::packet::{Properties, Publish, QoS};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, signature, start};

/// How long an external client may take.
const TOOL_TIMEOUT: &str = "10";

fn require_mosquitto_clients() {
    for tool in ["mosquitto_pub", "mosquitto_sub", "mosquitto_rr"] {
        let found = Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "{tool} not found: install the mosquitto-clients package (apt-get install mosquitto-clients)"
        );
    }
}

fn port(broker: &Broker) -> String {
    broker.local_addr().port().to_string()
}

/// Starts `mosquitto_sub` and waits until the broker has its subscription.
fn mosquitto_sub(broker: &Broker, client_id: &str, args: &[&str]) -> Child {
    let child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(broker),
            "-i",
            client_id,
            "-W",
            TOOL_TIMEOUT,
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(5), "mosquitto_sub subscribed", || {
        broker
            .stats()
            .client(client_id)
            .is_some_and(|c| c.subscriptions > 0)
    });
    child
}

fn mosquitto_pub(broker: &Broker, args: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port(broker)])
        .args(args)
        .output()
        .unwrap()
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn mosquitto_clients_exchange_messages_at_each_qos() {
    require_mosquitto_clients();
    let broker = start(BrokerConfig::default()).unwrap();
    let sub = mosquitto_sub(
        &broker,
        "mosq-sub",
        &["-t", "interop/#", "-q", "2", "-v", "-C", "3"],
    );
    for qos in ["0", "1", "2"] {
        let out = mosquitto_pub(
            &broker,
            &[
                "-t",
                &format!("interop/q{qos}"),
                "-q",
                qos,
                "-m",
                &format!("hello at {qos}"),
            ],
        );
        assert!(out.status.success(), "mosquitto_pub -q {qos}: {out:?}");
    }
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        lines(&out),
        [
            "interop/q0 hello at 0",
            "interop/q1 hello at 1",
            "interop/q2 hello at 2"
        ]
    );
}

/// A paho subscriber: prints `ready` once subscribed, then `<topic> <qos> <payload>` per message,
/// and exits 0 after `count` messages (1 on timeout).
const PAHO_SUBSCRIBER: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
port, topic, qos, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
done = threading.Event()
got = []
def on_connect(c, userdata, flags, rc):
    if rc != 0:
        print("refused", rc, flush=True); sys.exit(2)
    c.subscribe(topic, qos)
def on_subscribe(c, userdata, mid, granted):
    print("ready", granted[0], flush=True)
def on_message(c, userdata, msg):
    print(msg.topic, msg.qos, msg.payload.decode(), flush=True)
    got.append(msg)
    if len(got) >= count:
        done.set()
c = mqtt.Client(client_id="paho-sub", clean_session=True, protocol=mqtt.MQTTv311)
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
ok = done.wait(10)
c.disconnect()
c.loop_stop()
sys.exit(0 if ok else 1)
"#;

#[test]
fn paho_receives_from_mosquitto_pub_at_each_qos() {
    require_mosquitto_clients();
    let python = sansmq_e2e::python_with_paho();
    let broker = start(BrokerConfig::default()).unwrap();
    let mut paho = Command::new(python)
        .args(["-c", PAHO_SUBSCRIBER, &port(&broker), "paho/+", "2", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = paho.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, "ready 2", "paho was granted QoS 2");
    for qos in ["0", "1", "2"] {
        let out = mosquitto_pub(
            &broker,
            &["-t", "paho/x", "-q", qos, "-m", &format!("m{qos}")],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let got: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(got, ["paho/x 0 m0", "paho/x 1 m1", "paho/x 2 m2"]);
    let status = paho.wait().unwrap();
    assert!(status.success(), "paho exited with {status}");
}

/// A paho publisher over MQTT 3.1 (`MQIsdp`): publishes `payload` at QoS 0, 1 and 2 and waits for
/// each to complete.
const PAHO_PUBLISHER_31: &str = r#"
import sys
import paho.mqtt.client as mqtt
port, topic = int(sys.argv[1]), sys.argv[2]
c = mqtt.Client(client_id="paho-pub-31", protocol=mqtt.MQTTv31)
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
for qos in (0, 1, 2):
    info = c.publish(topic, "from paho 3.1 at %d" % qos, qos=qos)
    info.wait_for_publish(10)
    if not info.is_published():
        sys.exit(1)
c.disconnect()
c.loop_stop()
"#;

#[test]
fn paho_over_mqtt_3_1_publishes_to_mosquitto_sub() {
    require_mosquitto_clients();
    let python = sansmq_e2e::python_with_paho();
    let broker = start(BrokerConfig::default()).unwrap();
    let sub = mosquitto_sub(&broker, "mosq-31", &["-t", "legacy", "-q", "2", "-C", "3"]);
    let out = Command::new(python)
        .args(["-c", PAHO_PUBLISHER_31, &port(&broker), "legacy"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        lines(&out),
        [
            "from paho 3.1 at 0",
            "from paho 3.1 at 1",
            "from paho 3.1 at 2"
        ]
    );
}

const AK: &str = "LTAI5tInteropKey";
const SECRET: &str = "interop-secret";
const INSTANCE: &str = "mqtt-local-interop";

fn apsaramq_broker() -> Broker {
    start(BrokerConfig {
        apsaramq: Some(ApsaraMqMode::new(INSTANCE).access_key(AK, SECRET)),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn mosquitto_sub_gets_a_p2p_message_with_a_signature_login() {
    require_mosquitto_clients();
    let broker = apsaramq_broker();
    let user = format!("Signature|{AK}|{INSTANCE}");
    let target = "GID_interop@@@receiver";
    let sender = "GID_interop@@@sender";
    // Subscribed to something else entirely: the P2P message comes without a subscription.
    let sub = mosquitto_sub(
        &broker,
        target,
        &[
            "-u",
            &user,
            "-P",
            &signature(SECRET, target),
            "-t",
            "parent/unrelated",
            "-q",
            "1",
            "-v",
            "-C",
            "1",
        ],
    );
    let p2p_topic = format!("parent/p2p/{target}");
    let out = mosquitto_pub(
        &broker,
        &[
            "-i",
            sender,
            "-u",
            &user,
            "-P",
            &signature(SECRET, sender),
            "-t",
            &p2p_topic,
            "-q",
            "1",
            "-m",
            "direct",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&out), [format!("{p2p_topic} direct")]);
}

#[test]
fn mosquitto_pub_with_a_bad_signature_is_refused() {
    require_mosquitto_clients();
    let broker = apsaramq_broker();
    let client_id = "GID_interop@@@intruder";
    let user = format!("Signature|{AK}|{INSTANCE}");
    let wrong = signature("not-the-secret", client_id);
    let out = mosquitto_pub(
        &broker,
        &[
            "-i", client_id, "-u", &user, "-P", &wrong, "-t", "parent/x", "-m", "x",
        ],
    );
    assert!(
        !out.status.success(),
        "a bad signature must be refused: {out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("not authori"), "{stderr}");
    // The right one is accepted.
    let right = signature(SECRET, client_id);
    let out = mosquitto_pub(
        &broker,
        &[
            "-i", client_id, "-u", &user, "-P", &right, "-t", "parent/x", "-m", "x",
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn mosquitto_clients_over_mqtt5_keep_every_publish_property() {
    require_mosquitto_clients();
    let broker = start(BrokerConfig::default()).unwrap();
    let sub = mosquitto_sub(
        &broker,
        "mosq-sub-v5",
        &["-V", "5", "-t", "v5/#", "-q", "1", "-F", "%j", "-C", "1"],
    );
    let out = mosquitto_pub(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "v5/a",
            "-q",
            "1",
            "-m",
            "hello",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "v5/reply",
            "-D",
            "publish",
            "correlation-data",
            "abc",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "message-expiry-interval",
            "3600",
        ],
    );
    assert!(out.status.success(), "mosquitto_pub -V 5: {out:?}");
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["topic"], "v5/a");
    assert_eq!(got["payload"], "hello");
    let properties = &got["properties"];
    assert_eq!(properties["user-properties"], serde_json::json!({"k": "v"}));
    assert_eq!(properties["content-type"], "text/plain");
    assert_eq!(properties["response-topic"], "v5/reply");
    assert_eq!(properties["correlation-data"], "abc");
    assert_eq!(properties["payload-format-indicator"], 1);
    let left = properties["message-expiry-interval"].as_u64().unwrap();
    assert!((3598..=3600).contains(&left), "{left}");
}

#[test]
fn mosquitto_rr_gets_its_answer_through_the_broker() {
    require_mosquitto_clients();
    let broker = start(BrokerConfig::default()).unwrap();
    // The responder: a raw MQTT 5 client answering one request on its Response Topic, with its
    // Correlation Data.
    let (mut responder, _) =
        TestClient::connect_with(broker.local_addr(), connect_v5("responder", true, 60));
    responder.subscribe("service/time", QoS::AtMostOnce);
    let answering = std::thread::spawn(move || {
        let request = responder.expect_publish();
        let properties = request.properties();
        let mut answer = Properties::new();
        answer.set_correlation_data(properties.correlation_data().cloned());
        let mut response = Publish::new(
            properties.response_topic().expect("a Response Topic"),
            Bytes::from_static(b"noon"),
        );
        response.set_properties(answer);
        responder.send(response);
        responder
    });
    let out = Command::new("mosquitto_rr")
        .args(["-V", "5", "-h", "127.0.0.1", "-p", &port(&broker)])
        .args([
            "-t",
            "service/time",
            "-e",
            "reply/rr",
            "-m",
            "what time",
            "-W",
            TOOL_TIMEOUT,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "mosquitto_rr: {out:?}");
    assert_eq!(lines(&out), ["noon"]);
    drop(answering.join().unwrap());
}
