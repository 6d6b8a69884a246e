//! MQTT over WebSocket (`BrokerConfig::ws_bind`): the upgrade and its subprotocol, MQTT in binary
//! frames with any boundaries, pings and the close handshake, frames the broker refuses, ApsaraMQ
//! mode, and paho-mqtt and mosquitto's clients as independent peers across both listeners.

mod common;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use common::{WAIT, connect_packet, filter, topic};
use sansmq::MqttString;
use sansmq::packet::{
    ConnectReturnCode, Packet, PacketDecoder, Password, Publish, QoS, Subscribe,
    SubscribeReturnCode,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, signature, start};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// A broker with a WebSocket listener beside its TCP one.
fn broker_with(config: BrokerConfig) -> Broker {
    start(BrokerConfig {
        ws_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..config
    })
    .unwrap()
}

fn broker() -> Broker {
    broker_with(BrokerConfig::default())
}

fn ws_addr(broker: &Broker) -> SocketAddr {
    broker.ws_local_addr().expect("a WebSocket listener")
}

/// The upgrade to `ws://addr/mqtt` offering `protocols`: the socket, or tungstenite's error
/// (an HTTP refusal among them).
// tungstenite's error holds an HTTP response, large by its nature.
#[allow(clippy::result_large_err)]
fn upgrade(
    addr: SocketAddr,
    protocols: &[&str],
) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let mut request = format!("ws://{addr}/mqtt").into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(error)) => Err(error),
        Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("a blocking socket"),
    }
}

/// A WebSocket MQTT client written for these tests: MQTT bytes go out in whatever frames a test
/// chooses, and come back decoded whatever frames the broker used.
struct WsClient {
    ws: WebSocket<TcpStream>,
    decoder: PacketDecoder,
}

impl WsClient {
    fn open(addr: SocketAddr) -> Self {
        let ws = upgrade(addr, &["mqtt"]).unwrap();
        Self {
            ws,
            decoder: PacketDecoder::new(16 * 1024 * 1024),
        }
    }

    fn encode(packets: Vec<Packet>) -> Vec<u8> {
        let mut wire = BytesMut::new();
        for packet in packets {
            packet.encode(&mut wire).unwrap();
        }
        wire.to_vec()
    }

    /// Sends `packets` in frames of `frame` bytes (0: all in one frame).
    fn send_framed(&mut self, packets: Vec<Packet>, frame: usize) {
        let wire = Self::encode(packets);
        let size = if frame == 0 { wire.len() } else { frame };
        for chunk in wire.chunks(size) {
            self.ws
                .send(Message::Binary(chunk.to_vec().into()))
                .unwrap();
        }
    }

    /// The next MQTT packet, or the message that interrupted them (`Err`).
    fn next(&mut self) -> Result<Packet, Message> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(packet) = self.decoder.next_packet().unwrap() {
                return Ok(packet);
            }
            assert!(Instant::now() < deadline, "no packet within {WAIT:?}");
            match self.ws.read() {
                Ok(Message::Binary(bytes)) => self.decoder.extend_from_slice(&bytes),
                Ok(other) => return Err(other),
                Err(error) => panic!("reading: {error}"),
            }
        }
    }

    fn packet(&mut self) -> Packet {
        self.next()
            .unwrap_or_else(|m| panic!("expected MQTT, got {m:?}"))
    }

    fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let mut client = Self::open(addr);
        client.send_framed(vec![connect_packet(client_id, true, 60).into()], 0);
        match client.packet() {
            Packet::ConnAck(ack) => assert_eq!(ack.code, ConnectReturnCode::Accepted),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        client
    }

    /// Reads until the broker's Close frame and the end of the connection; the close code.
    fn expect_close(&mut self) -> Option<CloseCode> {
        let mut code = None;
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => code = frame.map(|f| f.code),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return code,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    panic!("the broker did not close the connection within {WAIT:?}")
                }
                // Closed with or without the rest of the handshake: what counts is the code.
                Err(_) => return code,
            }
        }
    }
}

fn publish(topic_name: &str, payload: &[u8], qos: QoS, id: u16) -> Packet {
    let mut publish = Publish::new(topic(topic_name), Bytes::copy_from_slice(payload));
    publish.qos = qos;
    publish.packet_id = (qos != QoS::AtMostOnce).then(|| common::id(id));
    publish.into()
}

fn connections(broker: &Broker) -> usize {
    broker.stats().connections
}

#[test]
fn the_upgrade_answers_mqtt_refuses_other_subprotocols_and_takes_any_path() {
    let broker = broker();
    let addr = ws_addr(&broker);
    let ws = upgrade(addr, &["mqttv5", "mqtt"]).unwrap();
    drop(ws);
    match upgrade(addr, &["graphql-ws"]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    // No subprotocol at all, and another path: let in.
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("ws://{addr}/").into_client_request().unwrap();
    let (mut ws, response) = tungstenite::client::client(request, stream).unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    let connect = WsClient::encode(vec![connect_packet("no-subprotocol", true, 60).into()]);
    ws.send(Message::Binary(connect.into())).unwrap();
    let Ok(Message::Binary(connack)) = ws.read() else {
        panic!("expected a CONNACK frame");
    };
    assert_eq!(&connack[..2], &[0x20, 0x02]);
}

#[test]
fn an_upgrade_request_arriving_in_pieces_is_resumed_until_it_is_whole() {
    let broker = broker();
    let mut stream = TcpStream::connect(ws_addr(&broker)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    for piece in request.as_bytes().chunks(16) {
        stream.write_all(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut response = Vec::new();
    let mut byte = [0_u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut stream, &mut byte).unwrap();
        response.push(byte[0]);
    }
    let response = String::from_utf8(response).unwrap().to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 101"), "{response}");
    assert!(
        response.contains("sec-websocket-protocol: mqtt\r\n"),
        "{response}"
    );
    // RFC 6455 section 1.3's example key and its answer.
    assert!(
        response.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{response}"
    );
    let mut client = WsClient {
        ws: WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None),
        decoder: PacketDecoder::new(1024),
    };
    client.send_framed(vec![connect_packet("slow-upgrade", true, 60).into()], 0);
    assert!(matches!(client.packet(), Packet::ConnAck(_)));
}

#[test]
fn a_websocket_client_that_never_upgrades_is_closed_at_the_connect_timeout() {
    let broker = broker_with(BrokerConfig {
        connect_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    });
    let mut stream = TcpStream::connect(ws_addr(&broker)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    // The broker closes the socket (end of stream or reset) rather than letting us time out.
    let outcome = std::io::Read::read_to_end(&mut stream, &mut rest);
    assert!(
        outcome.is_ok() || started.elapsed() < WAIT,
        "still open after {WAIT:?}"
    );
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    common::eventually(WAIT, "the connection is gone", || connections(&broker) == 0);
}

#[test]
fn garbage_on_the_websocket_listener_closes_only_its_connection() {
    let broker = broker();
    let addr = ws_addr(&broker);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..60 {
        let garbage: Vec<u8> = (0..(next() % 400)).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            // Garbage instead of an upgrade request.
            let mut stream = TcpStream::connect(addr).unwrap();
            let _ = stream.write_all(&garbage);
        } else {
            // Garbage frames after a good upgrade.
            let mut client = WsClient::open(addr);
            let _ = client.ws.get_mut().write_all(&garbage);
        }
    }
    let mut client = WsClient::connect(addr, "after-the-garbage");
    client.send_framed(vec![Packet::PingReq], 1);
    assert!(matches!(client.packet(), Packet::PingResp));
}

#[test]
fn mqtt_split_over_one_byte_frames_and_packed_into_one_frame_is_understood() {
    let broker = broker();
    let mut client = WsClient::open(ws_addr(&broker));
    client.send_framed(vec![connect_packet("split", true, 60).into()], 1);
    assert!(matches!(client.packet(), Packet::ConnAck(_)));
    let subscribe = Subscribe::new(common::id(1), filter("ws/#"), QoS::ExactlyOnce);
    client.send_framed(
        vec![
            subscribe.into(),
            publish("ws/one", b"in one frame", QoS::AtLeastOnce, 2),
            Packet::PingReq,
        ],
        0,
    );
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(client.packet());
    }
    assert!(seen.iter().any(|p| matches!(p, Packet::SubAck(ack)
        if ack.return_codes == [SubscribeReturnCode::Success(QoS::ExactlyOnce)])));
    assert!(seen.iter().any(|p| matches!(p, Packet::PubAck(_))));
    assert!(seen.iter().any(|p| matches!(p, Packet::PingResp)));
    assert!(seen.iter().any(|p| matches!(p, Packet::Publish(m)
        if m.payload_bytes().as_ref() == b"in one frame")));
    // A 100 KiB message in 7-byte frames comes back whole.
    let payload = vec![0x5A; 100 * 1024];
    client.send_framed(vec![publish("ws/big", &payload, QoS::AtMostOnce, 0)], 7);
    match client.packet() {
        Packet::Publish(m) => assert_eq!(m.payload_bytes().as_ref(), &payload[..]),
        other => panic!("expected the PUBLISH, got {other:?}"),
    }
}

#[test]
fn pings_are_answered_and_a_close_is_answered_with_a_close() {
    let broker = broker();
    let mut client = WsClient::connect(ws_addr(&broker), "pinger");
    client
        .ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match client.next() {
        Err(Message::Pong(payload)) => assert_eq!(payload.as_ref(), b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    client.ws.close(None).unwrap();
    assert_eq!(client.expect_close(), None);
    common::eventually(WAIT, "the connection is gone", || connections(&broker) == 0);
}

#[test]
fn a_broker_shutting_down_says_going_away_and_a_refused_connect_closes_normally() {
    let broker = broker_with(BrokerConfig {
        max_sessions: 1,
        ..Default::default()
    });
    let mut client = WsClient::connect(ws_addr(&broker), "first");
    let mut refused = WsClient::open(ws_addr(&broker));
    refused.send_framed(vec![connect_packet("second", true, 60).into()], 0);
    match refused.packet() {
        Packet::ConnAck(ack) => assert_eq!(ack.code, ConnectReturnCode::ServerUnavailable),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(refused.expect_close(), Some(CloseCode::Normal));
    broker.shutdown();
    assert_eq!(client.expect_close(), Some(CloseCode::Away));
}

#[test]
fn packets_that_arrive_with_the_close_frame_are_handled_before_it() {
    let broker = broker();
    let mut client = WsClient::connect(ws_addr(&broker), "last-words");
    // Many small frames, then the Close, in one write: one read of the broker sees them all.
    let mut packets: Vec<Packet> = (0..200)
        .map(|n| publish(&format!("kept/{n}"), b"x", QoS::AtMostOnce, 0))
        .collect();
    let mut retained = Publish::new(topic("kept/last"), Bytes::from_static(b"before the close"));
    retained.retain = true;
    packets.push(retained.into());
    // tungstenite buffers the frames (up to its 128 KiB write buffer) until the close flushes.
    for packet in packets {
        let frame = WsClient::encode(vec![packet]);
        client.ws.write(Message::Binary(frame.into())).unwrap();
    }
    client.ws.close(None).unwrap();
    common::eventually(WAIT, "the connection is gone", || connections(&broker) == 0);
    assert_eq!(broker.stats().retained_messages, 1);
}

#[test]
fn a_text_frame_closes_the_connection_with_1003() {
    let broker = broker();
    let mut client = WsClient::connect(ws_addr(&broker), "texter");
    client.ws.send(Message::text("PUBLISH t hello")).unwrap();
    assert_eq!(client.expect_close(), Some(CloseCode::Unsupported));
    common::eventually(WAIT, "the connection is gone", || connections(&broker) == 0);
}

#[test]
fn a_frame_over_the_packet_limit_is_refused_from_its_header() {
    let broker = broker();
    let mut client = WsClient::connect(ws_addr(&broker), "oversized");
    // A masked binary frame announcing 16 MiB (tungstenite's own frame limit), and nothing more:
    // the broker must refuse it from these 14 bytes rather than wait for, and buffer, its payload.
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(16_u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.ws.get_mut().write_all(&header).unwrap();
    assert_eq!(client.expect_close(), Some(CloseCode::Size));
    common::eventually(WAIT, "the connection is gone", || connections(&broker) == 0);
    assert_eq!(broker.stats().incoming_bytes, 0);
}

#[test]
fn apsaramq_mode_checks_logins_over_websocket_as_over_tcp() {
    const AK: &str = "LTAI5tWsKey";
    const SECRET: &str = "wsSecret";
    const INSTANCE: &str = "mqtt-cn-ws";
    let broker = broker_with(BrokerConfig {
        apsaramq: Some(ApsaraMqMode::new(INSTANCE).access_key(AK, SECRET)),
        ..Default::default()
    });
    let login = |client_id: &str, password: &str| {
        let mut connect = connect_packet(client_id, true, 60);
        connect.username =
            Some(MqttString::try_from(format!("Signature|{AK}|{INSTANCE}")).unwrap());
        connect.password = Some(Password::from(password));
        let mut client = WsClient::open(ws_addr(&broker));
        client.send_framed(vec![connect.into()], 0);
        match client.packet() {
            Packet::ConnAck(ack) => (client, ack.code),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    };
    let (mut refused, code) = login("GID_ws@@@device-1", "bm90IHRoZSBzaWduYXR1cmU=");
    assert_eq!(code, ConnectReturnCode::NotAuthorized);
    refused.expect_close();
    let good = signature(SECRET, "GID_ws@@@device-1");
    let (_accepted, code) = login("GID_ws@@@device-1", &good);
    assert_eq!(code, ConnectReturnCode::Accepted);
}

#[test]
fn a_websocket_subscriber_that_never_reads_holds_the_broker_to_its_output_limit() {
    const OUT_LIMIT: usize = 64 * 1024;
    let broker = broker_with(BrokerConfig {
        max_outgoing_bytes: OUT_LIMIT,
        max_queued_messages: 100,
        ..Default::default()
    });
    let mut sleeper = WsClient::connect(ws_addr(&broker), "ws-sleeper");
    let subscribe = Subscribe::new(common::id(1), filter("flood/#"), QoS::AtLeastOnce);
    sleeper.send_framed(vec![subscribe.into()], 0);
    assert!(matches!(sleeper.packet(), Packet::SubAck(_)));
    // From here on `sleeper` never reads.

    let (mut publisher, _) = common::TestClient::connect(broker.local_addr(), "flooder", true);
    let payload = Bytes::from(vec![0x55_u8; 4096]);
    let mut wire = BytesMut::new();
    for _ in 0..8000 {
        // 32 MiB: far more than the kernel's socket buffers absorb.
        Publish::new(topic("flood/data"), payload.clone())
            .encode(&mut wire)
            .unwrap();
        if wire.len() > 256 * 1024 {
            publisher.send_raw(&wire);
            wire.clear();
        }
    }
    publisher.send_raw(&wire);
    publisher.publish("flood/done", b"end", QoS::AtLeastOnce);

    let stats = broker.stats();
    let sleeper_stats = stats.client("ws-sleeper").unwrap().clone();
    let one_message = 4096 + 128;
    // What the WebSocket layer holds counts: the connection's buffer and the frame in flight
    // together stay within the limit (plus the one message always let through).
    assert!(
        sleeper_stats.outgoing_bytes <= OUT_LIMIT + one_message,
        "{sleeper_stats:?}"
    );
    assert!(
        sleeper_stats.dropped_qos0 > 0,
        "the flood must have hit the limit: {sleeper_stats:?}"
    );
}

/// paho-mqtt over WebSocket both ways through the broker: QoS 0, 1 and 2 and a 1 MiB payload.
const PAHO_ROUND_TRIP: &str = r#"
import hashlib, sys, threading
import paho.mqtt.client as mqtt
port = int(sys.argv[1])
got, subscribed, done = [], threading.Event(), threading.Event()
def on_message(c, u, m):
    got.append((m.topic, m.qos, len(m.payload), hashlib.sha1(m.payload).hexdigest()[:8]))
    if len(got) == 4: done.set()
sub = mqtt.Client("paho-ws-sub", transport="websockets")
sub.ws_set_options(path="/mqtt")
sub.on_message = on_message
sub.on_subscribe = lambda *a: subscribed.set()
sub.connect("127.0.0.1", port)
sub.subscribe("paho/#", qos=2)
sub.loop_start()
assert subscribed.wait(5), "no SUBACK"
pub = mqtt.Client("paho-ws-pub", transport="websockets")
pub.connect("127.0.0.1", port)
pub.loop_start()
big = bytes(range(256)) * 4096
for topic, payload, qos in [("paho/0", b"zero", 0), ("paho/1", b"one", 1), ("paho/2", b"two", 2), ("paho/big", big, 1)]:
    pub.publish(topic, payload, qos=qos).wait_for_publish()
assert done.wait(10), f"got only {got}"
for line in sorted(got): print(*line)
"#;

#[test]
fn paho_publishes_to_paho_over_websocket_at_every_qos_and_with_1_mib() {
    let broker = broker_with(BrokerConfig {
        max_packet_size: 2 * 1024 * 1024,
        ..Default::default()
    });
    let port = ws_addr(&broker).port().to_string();
    let run = sansmq_e2e::run_paho(PAHO_ROUND_TRIP, &[&port]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let big: Vec<u8> = (0..=255_u8).cycle().take(1 << 20).collect();
    let big = hex_sha1_prefix(&big);
    let expected = format!(
        "paho/0 0 4 {}\npaho/1 1 3 {}\npaho/2 2 3 {}\npaho/big 1 1048576 {big}\n",
        hex_sha1_prefix(b"zero"),
        hex_sha1_prefix(b"one"),
        hex_sha1_prefix(b"two"),
    );
    assert_eq!(stdout, expected);
}

/// The first 8 hex digits of SHA-1, as the paho script prints them.
fn hex_sha1_prefix(bytes: &[u8]) -> String {
    let output = Command::new(sansmq_e2e::python_with_paho())
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:8])",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// paho over WebSocket and mosquitto's clients over TCP, through one broker, both ways.
const PAHO_AND_MOSQUITTO: &str = r#"
import subprocess, sys, threading, time
import paho.mqtt.client as mqtt
ws_port, tcp_port = int(sys.argv[1]), sys.argv[2]
got, subscribed = threading.Event(), threading.Event()
def on_message(c, u, m):
    if m.topic == "mix/from-tcp" and m.payload == b"over tcp": got.set()
ws = mqtt.Client("paho-ws", transport="websockets")
ws.on_message = on_message
ws.on_subscribe = lambda *a: subscribed.set()
ws.connect("127.0.0.1", ws_port)
ws.subscribe("mix/from-tcp", qos=1)
ws.loop_start()
assert subscribed.wait(5), "no SUBACK"
subprocess.run(["mosquitto_pub", "-p", tcp_port, "-t", "mix/from-tcp", "-q", "1", "-m", "over tcp"], check=True, timeout=10)
assert got.wait(5), "the WebSocket subscriber got nothing from mosquitto_pub"
sub = subprocess.Popen(["mosquitto_sub", "-p", tcp_port, "-t", "mix/from-ws", "-q", "1", "-C", "1", "-W", "10"], stdout=subprocess.PIPE)
while sub.poll() is None:
    ws.publish("mix/from-ws", b"over websocket", qos=1)
    time.sleep(0.1)
print(sub.stdout.read().decode().strip())
"#;

#[test]
fn mosquitto_clients_over_tcp_and_paho_over_websocket_reach_each_other() {
    let broker = broker();
    let ws_port = ws_addr(&broker).port().to_string();
    let tcp_port = broker.local_addr().port().to_string();
    let run = sansmq_e2e::run_paho(PAHO_AND_MOSQUITTO, &[&ws_port, &tcp_port]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout.trim(), "over websocket");
}
