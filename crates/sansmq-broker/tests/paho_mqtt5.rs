//! Interoperability with Python's paho-mqtt over MQTT 5 (Debian's `python3-paho-mqtt`, which CI
//! installs; a test fails saying what to install when it is missing): paho and a sansmq client
//! exchange requests and responses through the broker in both directions, with Response Topic,
//! Correlation Data and User Properties, and an MQTT 3.1.1 subscriber gets paho's message
//! without them. The paho side is `tests/paho/mqtt5_peer.py`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestClient, connect_v5, filter, topic};
use sansmq::MqttString;
use sansmq::packet::{Packet, Properties, PubAck, Publish, QoS, ReasonCode, Subscribe};
use sansmq_broker::{Broker, BrokerConfig, start};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho/mqtt5_peer.py");

/// Starts the paho peer with `args` after the port; its stdout lines arrive on the receiver.
fn paho(broker: &Broker, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(sansmq_e2e::python_with_paho())
        .arg(PEER)
        .arg(broker.local_addr().port().to_string())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, receiver)
}

fn line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a line from the paho peer")
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).unwrap()
}

fn v5(broker: &Broker, client_id: &str) -> TestClient {
    let (client, ack) =
        TestClient::connect_with(broker.local_addr(), connect_v5(client_id, true, 60));
    assert_eq!(ack.reason_code, ReasonCode::Success);
    client
}

fn subscribe(client: &mut TestClient, filter_str: &str) {
    let packet_id = client.next_packet_id();
    client.send(Subscribe::new(
        packet_id,
        filter(filter_str),
        QoS::AtLeastOnce,
    ));
    client.wait_for(|p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id));
}

/// Publishes at QoS 1 with `properties` and waits for a successful PUBACK.
fn publish(
    client: &mut TestClient,
    topic_name: &str,
    payload: &'static [u8],
    properties: Properties,
) {
    let mut publish = Publish::new(topic(topic_name), Bytes::from_static(payload));
    publish.qos = QoS::AtLeastOnce;
    let packet_id = client.next_packet_id();
    publish.packet_id = Some(packet_id);
    publish.set_properties(properties);
    client.send(publish);
    match client.wait_for(|p| matches!(p, Packet::PubAck(a) if a.packet_id == packet_id)) {
        Packet::PubAck(PubAck { reason_code, .. }) => assert_eq!(reason_code, ReasonCode::Success),
        _ => unreachable!(),
    }
}

fn users(properties: &Properties) -> Vec<(String, String)> {
    properties
        .user_properties()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

#[test]
fn a_sansmq_request_is_answered_by_paho() {
    let broker = start(BrokerConfig::default()).unwrap();
    let (mut responder, lines) = paho(&broker, &["responder", "req/#", "1"]);
    assert_eq!(line(&lines), "ready");

    let mut requester = v5(&broker, "sansmq-requester");
    subscribe(&mut requester, "reply/sansmq");
    let mut request = Properties::new();
    request.set_response_topic(Some(topic("reply/sansmq")));
    request.set_correlation_data(Some(Bytes::from_static(b"sansmq-1")));
    request.push_user_property(string("asked-by"), string("sansmq"));
    publish(&mut requester, "req/time", b"what time", request);

    assert_eq!(
        line(&lines),
        r#"request req/time what time [["asked-by", "sansmq"]]"#
    );
    let response = requester.expect_publish();
    requester.ack(&response);
    assert_eq!(
        (response.topic(), response.payload()),
        ("reply/sansmq", &b"re:what time"[..])
    );
    let p = response.properties();
    assert_eq!(p.correlation_data().map(|c| &c[..]), Some(&b"sansmq-1"[..]));
    assert_eq!(
        users(p),
        [pair("asked-by", "sansmq"), pair("served-by", "paho")]
    );
    let status = responder.wait().unwrap();
    assert!(status.success(), "paho exited with {status}");
}

#[test]
fn a_paho_request_is_answered_by_sansmq_and_reaches_an_mqtt311_subscriber_too() {
    let broker = start(BrokerConfig::default()).unwrap();
    let mut responder = v5(&broker, "sansmq-responder");
    subscribe(&mut responder, "req/#");
    let (mut old, _) = TestClient::connect(broker.local_addr(), "old-subscriber", true);
    old.subscribe("req/#", QoS::AtLeastOnce);

    let (mut requester, lines) = paho(&broker, &["requester", "req/paho", "reply/paho"]);
    let request = responder.expect_publish();
    responder.ack(&request);
    assert_eq!(
        (request.topic(), request.payload()),
        ("req/paho", &b"ping"[..])
    );
    let p = request.properties();
    assert_eq!(p.response_topic(), Some(topic("reply/paho")));
    assert_eq!(p.correlation_data().map(|c| &c[..]), Some(&b"paho-1"[..]));
    assert_eq!(users(p), [pair("asked-by", "paho")]);

    // The MQTT 3.1.1 subscriber gets the message, without MQTT 5's properties.
    let plain = old.expect_publish();
    old.ack(&plain);
    assert_eq!(plain.payload(), b"ping");

    let mut response = Properties::new();
    response.set_correlation_data(p.correlation_data().cloned());
    response.push_user_property(string("served-by"), string("sansmq"));
    response.set_content_type(Some(string("text/plain")));
    let reply_to = p.response_topic().unwrap();
    publish(&mut responder, reply_to.as_str(), b"pong", response);

    let got: serde_json::Value = serde_json::from_str(&line(&lines)).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "topic": "reply/paho",
            "payload": "pong",
            "correlation_data": "paho-1",
            "user_properties": [["served-by", "sansmq"]],
            "content_type": "text/plain",
        })
    );
    let status = requester.wait().unwrap();
    assert!(status.success(), "paho exited with {status}");
}
