//! MQTT over WebSocket (`ws://`, `wss://`) for every driver that carries it, against mosquitto
//! behind the harness's WebSocket bridge (tungstenite): QoS round trips, packets cut over frames
//! and gathered into one, the upgrade request (path, subprotocol `mqtt`, extra headers), refused
//! upgrades, pings, the close handshake, a cut link with reconnect, TLS, and a SOCKS5 proxy.
//!
//! Each scenario is generic over [`ScenarioClient`]; `websocket_scenarios_for!` instantiates them
//! all for one driver (`mio` below; another driver is one line once it speaks WebSocket).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sansmq::packet::QoS;
use sansmq_driver::websocket::WebSocketError;
use sansmq_driver::{Error, ProxyOptions, TlsOptions, TrustRoots};
use sansmq_e2e::scenario::{PendingPublish, ScenarioClient, connect_error, connected};
use sansmq_e2e::{
    FaultProxy, Framing, HttpProxy, Mosquitto, PATIENCE, Socks5Proxy, TestPki, WsBridge, run_paho,
    wait_until,
};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use common::options;

/// Every WebSocket scenario for `$client`, in a module `$driver`.
macro_rules! websocket_scenarios_for {
    ($driver:ident: $client:ty) => {
        sansmq_e2e::scenario_tests!($driver: $client =>
            round_trips_at_every_qos_over_ws,
            a_1_mib_message_crosses_frames_of_1000_bytes_both_ways,
            several_packets_in_one_frame_are_all_delivered,
            the_upgrade_asks_for_the_path_with_mqtt_and_the_extra_headers,
            a_header_the_handshake_sets_is_refused_by_name,
            a_refused_upgrade_names_the_http_status_and_the_path,
            a_server_without_the_mqtt_subprotocol_is_refused,
            a_plain_mqtt_port_is_not_a_websocket_server,
            a_text_frame_is_a_protocol_error,
            the_servers_pings_are_answered,
            disconnect_sends_a_close_frame_after_disconnect,
            a_close_frame_from_the_server_is_a_lost_connection,
            a_cut_link_reconnects_over_ws,
            messages_queued_while_offline_go_out_together_in_one_frame,
            wss_round_trips_with_the_test_pki_and_checks_the_certificate,
            reaches_the_bridge_through_a_socks5_proxy,
            reaches_the_bridge_through_an_http_connect_proxy_with_a_login,
            paho_over_websocket_and_the_client_exchange_messages,
            paho_and_the_client_exchange_messages_over_sansmqs_broker,
        );
    };
}

websocket_scenarios_for!(mio: sansmq_e2e::scenario::MioClient);
websocket_scenarios_for!(tokio: sansmq_e2e::scenario::TokioClient);

/// The WebSocket failure inside `error`.
fn websocket_error(error: &Error) -> &WebSocketError {
    match error {
        Error::WebSocket { error, .. } => error,
        other => panic!("expected a WebSocket error, got {other:?}"),
    }
}

/// Publishes one message of `payload` at `qos` from `publisher` to `topic` and checks that
/// `subscriber` (subscribed already) receives it whole.
fn round_trip<C: ScenarioClient>(
    publisher: &C,
    subscriber: &C,
    topic: &str,
    payload: &[u8],
    qos: QoS,
) {
    publisher
        .publish(topic, payload.to_vec(), qos, false)
        .unwrap_or_else(|e| panic!("{}: publish: {e}", C::DRIVER));
    let message = subscriber.next_message(PATIENCE).expect("the message");
    assert_eq!(message.topic, topic);
    assert_eq!(message.qos, qos);
    assert_eq!(message.payload.len(), payload.len());
    assert!(message.payload == payload, "the payload changed on the way");
}

fn round_trips_at_every_qos_over_ws<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let subscriber: C = connected(options(&bridge.url("/mqtt"), "ws-sub"));
    let publisher: C = connected(options(&bridge.url("/mqtt"), "ws-pub"));
    subscriber.subscribe(&[("ws/#", QoS::ExactlyOnce)]).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        round_trip(
            &publisher,
            &subscriber,
            &format!("ws/{qos:?}"),
            b"over WebSocket",
            qos,
        );
    }
    publisher.disconnect(PATIENCE).unwrap();
    subscriber.disconnect(PATIENCE).unwrap();
}

fn a_1_mib_message_crosses_frames_of_1000_bytes_both_ways<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(broker.addr(), Framing::Split(1000), None);
    let options = options(&bridge.url("/mqtt"), "ws-big").max_packet_size(2 * 1024 * 1024);
    let client: C = connected(options);
    client.subscribe(&[("big", QoS::AtLeastOnce)]).unwrap();
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    // Out: the client's own 1 MiB message; back: the broker's bytes in 1000-byte frames.
    round_trip(&client, &client, "big", &payload, QoS::AtLeastOnce);
    client.disconnect(PATIENCE).unwrap();
}

fn several_packets_in_one_frame_are_all_delivered<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(
        broker.addr(),
        Framing::Coalesce(Duration::from_millis(100)),
        None,
    );
    let subscriber: C = connected(options(&bridge.url("/mqtt"), "ws-coalesced"));
    subscriber.subscribe(&[("many", QoS::AtLeastOnce)]).unwrap();
    let publisher: C = connected(options(&broker.url(), "tcp-pub"));
    let pending: Vec<_> = (0..50)
        .map(|i| {
            publisher
                .start_publish("many", format!("{i}").into(), QoS::AtLeastOnce, false)
                .unwrap()
        })
        .collect();
    for publish in pending {
        publish.wait(PATIENCE).unwrap();
    }
    for i in 0..50 {
        let message = subscriber.next_message(PATIENCE).expect("every message");
        assert_eq!(message.payload, format!("{i}").as_bytes());
    }
    subscriber.disconnect(PATIENCE).unwrap();
}

fn the_upgrade_asks_for_the_path_with_mqtt_and_the_extra_headers<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let options = options(&bridge.url("/gateway/mqtt?tenant=7"), "ws-headers")
        .websocket_header("Authorization", "Bearer token-1")
        .websocket_header("X-Device", "d-1");
    let client: C = connected(options);
    let upgrades = bridge.upgrades();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    let upgrade = &upgrades[0];
    assert_eq!(upgrade.path, "/gateway/mqtt?tenant=7");
    assert_eq!(upgrade.protocols, ["mqtt"]);
    let header = |name: &str| {
        upgrade
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some("Bearer token-1"));
    assert_eq!(header("x-device"), Some("d-1"));
    assert_eq!(header("host"), Some(bridge.addr().to_string().as_str()));
    client.disconnect(PATIENCE).unwrap();
}

fn a_header_the_handshake_sets_is_refused_by_name<C: ScenarioClient>() {
    let options = options("ws://127.0.0.1:9/mqtt", "ws-reserved")
        .websocket_header("Sec-WebSocket-Protocol", "other");
    let error = connect_error::<C>(options);
    assert_eq!(
        websocket_error(&error),
        &WebSocketError::ReservedHeader {
            name: "Sec-WebSocket-Protocol".into()
        }
    );
    assert!(
        error.to_string().contains("Sec-WebSocket-Protocol"),
        "{error}"
    );
}

fn a_refused_upgrade_names_the_http_status_and_the_path<C: ScenarioClient>() {
    let server = http_responder("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let error = connect_error::<C>(options(
        &format!("ws://{server}/wrong/path?k=SECRET"),
        "ws-404",
    ));
    assert_eq!(
        websocket_error(&error),
        &WebSocketError::Refused {
            status: 404,
            reason: Some("Not Found".into()),
            path: "/wrong/path".into(),
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("HTTP 404") && message.contains("/wrong/path"),
        "{message}"
    );
    assert!(message.contains(&server.to_string()), "{message}");
    assert!(
        !message.contains("SECRET"),
        "the query stays out of messages: {message}"
    );
}

fn a_server_without_the_mqtt_subprotocol_is_refused<C: ScenarioClient>() {
    let server = websocket_server(false, |_ws| {});
    let error = connect_error::<C>(options(&format!("ws://{server}/mqtt"), "ws-no-mqtt"));
    assert!(
        matches!(websocket_error(&error), WebSocketError::Subprotocol(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"mqtt\""), "{error}");
}

fn a_plain_mqtt_port_is_not_a_websocket_server<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let error = connect_error::<C>(options(&format!("ws://{}/mqtt", broker.addr()), "ws-tcp"));
    assert!(
        matches!(websocket_error(&error), WebSocketError::NotWebSocket(_)),
        "{error:?}"
    );
}

fn a_text_frame_is_a_protocol_error<C: ScenarioClient>() {
    let server = websocket_server(true, |mut ws| {
        let _ = ws.read(); // the CONNECT
        let _ = ws.send(Message::text("not MQTT"));
        thread::sleep(Duration::from_secs(2));
    });
    let error = connect_error::<C>(options(&format!("ws://{server}/mqtt"), "ws-text"));
    assert_eq!(
        websocket_error(&error),
        &WebSocketError::TextFrame,
        "{error:?}"
    );
}

fn the_servers_pings_are_answered<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(
        broker.addr(),
        Framing::AsRead,
        Some(Duration::from_millis(50)),
    );
    let client: C = connected(options(&bridge.url("/mqtt"), "ws-pings"));
    assert!(
        wait_until(PATIENCE, || bridge.pongs() >= 3),
        "pongs: {}",
        bridge.pongs()
    );
    assert!(client.is_connected());
    client.disconnect(PATIENCE).unwrap();
}

fn disconnect_sends_a_close_frame_after_disconnect<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let client: C = connected(options(&bridge.url("/mqtt"), "ws-close"));
    client.disconnect(PATIENCE).unwrap();
    assert!(
        wait_until(PATIENCE, || bridge.closes() == 1),
        "no Close frame"
    );
    // The DISCONNECT went first: mosquitto saw a clean disconnect, not a lost client.
    assert!(
        wait_until(PATIENCE, || broker.log().contains("ws-close disconnected.")),
        "{}",
        broker.log()
    );
}

fn a_close_frame_from_the_server_is_a_lost_connection<C: ScenarioClient>() {
    let server = websocket_server(true, |mut ws| {
        let _ = ws.read(); // the CONNECT
        // CONNACK: session not present, accepted.
        let _ = ws.send(Message::binary(vec![0x20, 0x02, 0x00, 0x00]));
        thread::sleep(Duration::from_millis(200));
        let _ = ws.close(None);
        let _ = ws.flush();
        let _ = ws.read();
    });
    let client: C = connected(options(&format!("ws://{server}/mqtt"), "ws-closed"));
    assert!(
        client.next_lost(PATIENCE).is_some(),
        "the close went unnoticed"
    );
    assert!(!client.is_connected());
}

fn a_cut_link_reconnects_over_ws<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let cutter = FaultProxy::start(bridge.addr());
    let uri = format!("ws://{}/mqtt", cutter.addr());
    let options = options(&uri, "ws-reconnect")
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let client: C = connected(options);
    client.subscribe(&[("again", QoS::AtLeastOnce)]).unwrap();
    assert_eq!(cutter.cut(), 1);
    assert!(
        client.next_lost(PATIENCE).is_some(),
        "the cut went unnoticed"
    );
    let (reconnect, _) = client.next_connected(PATIENCE).expect("a reconnect");
    assert!(reconnect);
    client.subscribe(&[("again", QoS::AtLeastOnce)]).unwrap();
    round_trip(
        &client,
        &client,
        "again",
        b"after the cut",
        QoS::AtLeastOnce,
    );
    assert_eq!(bridge.upgrades().len(), 2, "a second upgrade");
    client.disconnect(PATIENCE).unwrap();
}

fn messages_queued_while_offline_go_out_together_in_one_frame<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let cutter = FaultProxy::start(bridge.addr());
    let uri = format!("ws://{}/mqtt", cutter.addr());
    // A backoff long enough to queue every message before the reconnect.
    let options = options(&uri, "ws-offline")
        .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(2));
    let client: C = connected(options);
    client.subscribe(&[("queued", QoS::AtLeastOnce)]).unwrap();
    cutter.cut();
    assert!(
        client.next_lost(PATIENCE).is_some(),
        "the cut went unnoticed"
    );
    let before = bridge.client_frames();
    let pending: Vec<_> = (0..20)
        .map(|i| {
            client
                .start_publish("queued", format!("{i}").into(), QoS::AtLeastOnce, false)
                .unwrap()
        })
        .collect();
    for publish in pending {
        publish.wait(PATIENCE).unwrap();
    }
    for i in 0..20 {
        let message = client.next_message(PATIENCE).expect("every queued message");
        assert_eq!(message.payload, format!("{i}").as_bytes());
    }
    // CONNECT, then the 20 PUBLISH packets that were ready at once: not a frame per packet.
    let frames = bridge.client_frames() - before;
    assert!(
        frames <= 4,
        "{frames} frames for CONNECT and 20 PUBLISH packets"
    );
    client.disconnect(PATIENCE).unwrap();
}

fn wss_round_trips_with_the_test_pki_and_checks_the_certificate<C: ScenarioClient>() {
    let pki = TestPki::generate();
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_tls(broker.addr(), &pki, Framing::Split(500));
    let uri = bridge.url("/mqtt");
    assert!(uri.starts_with("wss://"), "{uri}");
    let trusted = TlsOptions::new().roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()));
    let client: C = connected(
        options(&uri, "wss")
            .tls(trusted)
            .max_packet_size(2 * 1024 * 1024),
    );
    client.subscribe(&[("secure", QoS::ExactlyOnce)]).unwrap();
    // 1 MiB: more than TLS and the socket buffer take at once, so writing waits for room.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    round_trip(&client, &client, "secure", &payload, QoS::ExactlyOnce);
    client.disconnect(PATIENCE).unwrap();
    assert!(
        wait_until(PATIENCE, || bridge.closes() == 1),
        "no Close frame"
    );

    let wrong = TlsOptions::new().roots(TrustRoots::CaFile(pki.wrong_ca_pem_path().to_owned()));
    let error = connect_error::<C>(options(&uri, "wss-wrong-ca").tls(wrong));
    assert!(matches!(error, Error::Tls(_)), "{error:?}");
}

fn reaches_the_bridge_through_a_socks5_proxy<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let socks = Socks5Proxy::start();
    let proxy = socks.url().parse::<ProxyOptions>().unwrap();
    let client: C = connected(options(&bridge.url("/mqtt"), "ws-socks").proxy(proxy));
    client.subscribe(&[("proxied", QoS::AtLeastOnce)]).unwrap();
    round_trip(&client, &client, "proxied", b"via SOCKS5", QoS::AtLeastOnce);
    let targets = socks.targets();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(bridge.upgrades().len(), 1);
    client.disconnect(PATIENCE).unwrap();
}

fn reaches_the_bridge_through_an_http_connect_proxy_with_a_login<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let http = HttpProxy::with_login("alice", "pw");
    let proxy = http.url_with_login().parse::<ProxyOptions>().unwrap();
    // A host name, which the proxy resolves: the client never does.
    let uri = format!("ws://localhost:{}/mqtt", bridge.addr().port());
    let client: C = connected(options(&uri, "ws-http").proxy(proxy));
    client.subscribe(&[("proxied", QoS::AtLeastOnce)]).unwrap();
    round_trip(
        &client,
        &client,
        "proxied",
        b"via HTTP CONNECT",
        QoS::AtLeastOnce,
    );
    assert_eq!(
        http.targets(),
        [format!("localhost:{}", bridge.addr().port())]
    );
    assert_eq!(bridge.upgrades().len(), 1);
    client.disconnect(PATIENCE).unwrap();
}

/// paho-mqtt over `transport="websockets"`: takes the retained message on argv[3]/back, prints
/// it, and answers on argv[3]/out (QoS 1).
const PAHO_ANSWERS: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
done, sent = threading.Event(), []
def on_message(client, userdata, msg):
    print(msg.payload.decode())
    sent.append(client.publish(topic + "/out", b"hello sansmq", qos=1))
    done.set()
client = mqtt.Client(client_id="paho-ws-peer", transport="websockets")
client.ws_set_options(path="/mqtt")
client.on_message = on_message
client.on_connect = lambda c, u, f, rc: c.subscribe(topic + "/back", qos=1)
client.connect(host, port, keepalive=30)
client.loop_start()
ok = done.wait(20)
if ok:
    sent[0].wait_for_publish(20)
client.disconnect()
client.loop_stop()
sys.exit(0 if ok else 1)
"#;

fn paho_over_websocket_and_the_client_exchange_messages<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(broker.addr(), Framing::Split(5), None);
    let client: C = connected(options(&bridge.url("/mqtt"), "ws-meets-paho"));
    client.subscribe(&[("paho/out", QoS::AtLeastOnce)]).unwrap();
    client
        .publish("paho/back", "hello paho", QoS::AtLeastOnce, true)
        .unwrap();
    let port = bridge.addr().port().to_string();
    let output = run_paho(PAHO_ANSWERS, &["127.0.0.1", &port, "paho"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello paho\n");
    let message = client.next_message(PATIENCE).expect("paho's answer");
    assert_eq!(message.payload, "hello sansmq".as_bytes());
    client.disconnect(PATIENCE).unwrap();
}

/// The same exchange over sansmq's own broker's WebSocket listener (`--ws-bind`): the client and
/// paho-mqtt both over WebSocket, each way.
fn paho_and_the_client_exchange_messages_over_sansmqs_broker<C: ScenarioClient>() {
    let broker = sansmq_broker::start(sansmq_broker::BrokerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ws_bind: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .expect("the broker starts");
    let ws = broker.ws_local_addr().expect("a WebSocket listener");
    let client: C = connected(options(&format!("ws://{ws}/mqtt"), "ws-meets-paho-here"));
    client.subscribe(&[("here/out", QoS::AtLeastOnce)]).unwrap();
    client
        .publish("here/back", "hello paho", QoS::AtLeastOnce, true)
        .unwrap();
    let output = run_paho(PAHO_ANSWERS, &["127.0.0.1", &ws.port().to_string(), "here"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello paho\n");
    let message = client.next_message(PATIENCE).expect("paho's answer");
    assert_eq!(message.payload, "hello sansmq".as_bytes());
    client.disconnect(PATIENCE).unwrap();
}

/// A listener that answers the first request with `answer`, whatever it asks.
fn http_responder(answer: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        let give_up = Instant::now() + PATIENCE;
        while !request.ends_with(b"\r\n\r\n") && Instant::now() < give_up {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = client.write_all(answer.as_bytes());
        thread::sleep(Duration::from_millis(500));
    });
    addr
}

/// A WebSocket server for one client that selects the `mqtt` subprotocol only when `mqtt` says
/// so, then hands the socket to `script`.
fn websocket_server(
    mqtt: bool,
    script: impl FnOnce(WebSocket<TcpStream>) + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        #[allow(clippy::result_large_err)]
        let answer = move |_: &Request, mut response: Response| {
            if mqtt {
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
            }
            Ok(response)
        };
        if let Ok(ws) = tungstenite::accept_hdr(client, answer) {
            script(ws);
        }
    });
    addr
}
