//! The async client carries MQTT over WebSocket (`ws://`, `wss://`) through [`WsBridge`] in front
//! of mosquitto: every QoS, 1 MiB messages over 1000-byte frames, several packets in one frame,
//! the upgrade request (path, `mqtt` subprotocol, extra headers), a refused upgrade, pongs, a
//! reconnect after a cut, a SOCKS5 proxy, TLS; and, against a scripted WebSocket peer, text
//! frames, the broker's Close, and our Close after DISCONNECT.
//!
//! Each scenario is an `async fn` over a URL and options, run by the `#[tokio::test]`s at the
//! bottom, so that the blocking client's versions can sit beside them.

mod common;
mod common_async;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{
    FaultProxy, Framing, HttpProxy, Mosquitto, Socks5Proxy, TestPki, TlsFront, WsBridge,
};
use sansmq_tokio::{Client, ConnectOptions, Error, TlsOptions, TrustRoots, WebSocketError};

use common::{PATIENCE, options};
use common_async::{connected, lost, message};

const RECONNECT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));

/// `ws://` for `addr` with `path`.
fn ws_url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// Publishes at QoS 0, 1 and 2 to a topic it subscribed to and gets each message back.
async fn round_trips_at_every_qos(options: ConnectOptions, payload: &[u8]) {
    let (client, mut events) = Client::new(options).unwrap();
    assert!(!client.connect().await.unwrap());
    client
        .subscribe(&[("ws/#", QoS::ExactlyOnce)])
        .await
        .unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("ws/qos", payload.to_vec(), qos, false)
            .await
            .unwrap();
        let got = message(&mut events, PATIENCE)
            .await
            .expect("the message back");
        assert_eq!(got.qos, qos);
        assert!(got.payload == payload, "payload changed at {qos:?}");
    }
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}

/// 300 small messages in flight at once, all back in order.
async fn many_small_messages_in_order(options: ConnectOptions) {
    let (client, mut events) = Client::new(options).unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("ws/many", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..300u32 {
        let handle = client
            .publish_later("ws/many", n.to_string(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
        handles.push(handle);
    }
    for handle in handles {
        handle.await.unwrap();
    }
    for n in 0..300u32 {
        let got = message(&mut events, PATIENCE).await.expect("every message");
        assert_eq!(got.payload, n.to_string().as_bytes());
    }
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}

/// Room for a 1 MiB payload and its packet's header.
fn big(options: ConnectOptions) -> ConnectOptions {
    options.max_packet_size(2 * 1024 * 1024)
}

fn mib() -> Vec<u8> {
    (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// A tiny WebSocket peer that accepts one client, answers its CONNECT with a CONNACK, then runs
/// `script` on the connection; what the script returns is sent on the channel.
fn scripted_peer<T: Send + 'static>(
    script: impl FnOnce(&mut tungstenite::WebSocket<TcpStream>) -> T + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    // The upgrade callback's error type is tungstenite's HTTP response, large by its nature.
    #[allow(clippy::result_large_err)]
    thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept_hdr(
            socket,
            |_: &_, mut response: tungstenite::handshake::server::Response| {
                response.headers_mut().insert(
                    "sec-websocket-protocol",
                    tungstenite::http::HeaderValue::from_static("mqtt"),
                );
                Ok(response)
            },
        )
        .unwrap();
        // CONNECT: any binary frames; a CONNACK once it has come.
        let mut connect = Vec::new();
        while connect.len() < 2 || connect.len() < 2 + connect[1] as usize {
            if let tungstenite::Message::Binary(bytes) = ws.read().unwrap() {
                connect.extend_from_slice(&bytes);
            }
        }
        assert_eq!(connect[0], 0x10, "CONNECT first");
        ws.send(tungstenite::Message::binary(vec![0x20, 0x02, 0, 0]))
            .unwrap();
        let _ = tx.send(script(&mut ws));
    });
    (addr, rx)
}

/// A listener that answers any request with `status_line` and closes.
fn http_refuser(status_line: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let mut request = [0; 4096];
            let _ = socket.read(&mut request);
            let _ = write!(socket, "{status_line}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    addr
}

mod tokio_client {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_round_trip_at_every_qos_over_ws() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start(broker.addr());
        round_trips_at_every_qos(options(&bridge.url("/mqtt"), "ws-qos"), b"over websocket").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_mib_messages_cross_thousand_byte_frames_both_ways() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start_with(broker.addr(), Framing::Split(1000), None);
        round_trips_at_every_qos(big(options(&bridge.url("/mqtt"), "ws-mib")), &mib()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_packets_in_one_frame_are_all_read() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start_with(
            broker.addr(),
            Framing::Coalesce(Duration::from_millis(20)),
            None,
        );
        many_small_messages_in_order(options(&bridge.url("/mqtt"), "ws-coalesce")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_upgrade_asks_for_the_path_the_mqtt_subprotocol_and_the_extra_headers() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start(broker.addr());
        let options = options(&bridge.url("/gateway/mqtt?tenant=7"), "ws-upgrade")
            .websocket_header("Authorization", "Bearer t0ken")
            .websocket_header("X-Device", "17");
        let (client, _events) = Client::new(options).unwrap();
        client.connect().await.unwrap();
        let upgrades = bridge.upgrades();
        assert_eq!(upgrades.len(), 1, "{upgrades:?}");
        assert_eq!(upgrades[0].path, "/gateway/mqtt?tenant=7");
        assert_eq!(upgrades[0].protocols, ["mqtt"]);
        let header = |name: &str| {
            upgrades[0]
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("authorization"), Some("Bearer t0ken"));
        assert_eq!(header("x-device"), Some("17"));
        assert_eq!(header("host"), Some(bridge.addr().to_string().as_str()));
        client.disconnect(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_header_the_handshake_sets_itself_is_refused_by_name() {
        let options = options("ws://127.0.0.1:9/mqtt", "ws-reserved")
            .websocket_header("Sec-WebSocket-Protocol", "mqttv3.1");
        let error = Client::new(options).unwrap_err();
        match error {
            Error::WebSocket {
                uri,
                error: WebSocketError::ReservedHeader { name },
            } => {
                assert_eq!(uri, "ws://127.0.0.1:9/mqtt");
                assert_eq!(name, "Sec-WebSocket-Protocol");
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_upgrade_is_an_error_with_its_http_status_and_the_uri() {
        let server = http_refuser("HTTP/1.1 404 Not Found");
        let uri = ws_url(server, "/wrong");
        let (client, _events) = Client::new(options(&uri, "ws-404")).unwrap();
        let error = client.connect().await.unwrap_err();
        println!("refused upgrade: {error}");
        match &error {
            Error::WebSocket {
                uri: named,
                error: WebSocketError::Refused { status, .. },
            } => {
                assert_eq!(named, &uri);
                assert_eq!(*status, 404);
            }
            other => panic!("{other}"),
        }
        assert!(error.to_string().contains("HTTP 404 Not Found"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bridges_pings_are_answered_with_pongs() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start_with(
            broker.addr(),
            Framing::AsRead,
            Some(Duration::from_millis(50)),
        );
        let (client, mut events) = Client::new(options(&bridge.url("/mqtt"), "ws-ping")).unwrap();
        client.connect().await.unwrap();
        client
            .subscribe(&[("ws/ping", QoS::AtLeastOnce)])
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while bridge.pongs() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(bridge.pongs() >= 3, "pongs: {}", bridge.pongs());
        // The pings did not disturb the stream.
        client
            .publish("ws/ping", "still here", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        assert!(message(&mut events, PATIENCE).await.is_some());
        client.disconnect(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_websocket_reconnects_with_a_new_upgrade() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start(broker.addr());
        let proxy = FaultProxy::start(bridge.addr());
        let uri = ws_url(proxy.addr(), "/mqtt");
        let (client, mut events) = Client::new(
            options(&uri, "ws-cut")
                .clean_session(false)
                .automatic_reconnect(RECONNECT.0, RECONNECT.1),
        )
        .unwrap();
        client.connect().await.unwrap();
        client
            .subscribe(&[("ws/cut", QoS::AtLeastOnce)])
            .await
            .unwrap();
        assert_eq!(
            connected(&mut events, PATIENCE).await,
            Some((false, false, uri.clone()))
        );
        assert_eq!(proxy.cut(), 1);
        assert!(lost(&mut events, PATIENCE).await.is_some());
        assert_eq!(
            connected(&mut events, PATIENCE).await,
            Some((true, true, uri))
        );
        client
            .publish("ws/cut", "after", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let got = message(&mut events, PATIENCE)
            .await
            .expect("a message after the cut");
        assert_eq!(got.payload, "after".as_bytes());
        assert_eq!(bridge.upgrades().len(), 2, "one upgrade per connection");
        client.disconnect(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_runs_through_a_socks5_proxy_to_the_brokers_name() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start(broker.addr());
        let socks = Socks5Proxy::start();
        let options = options(&ws_url(bridge.addr(), "/mqtt"), "ws-socks")
            .proxy(socks.url().parse().unwrap());
        round_trips_at_every_qos(options, b"through socks").await;
        let targets = socks.targets();
        assert_eq!(targets.len(), 1, "{targets:?}");
        assert_eq!(targets[0].port, bridge.addr().port());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_runs_through_an_http_connect_proxy_with_a_login() {
        let broker = Mosquitto::start();
        let bridge = WsBridge::start(broker.addr());
        let http = HttpProxy::with_login("alice", "pw");
        let uri = format!("ws://localhost:{}/mqtt", bridge.addr().port());
        let options = options(&uri, "ws-http").proxy(http.url_with_login().parse().unwrap());
        round_trips_at_every_qos(options, b"through an HTTP proxy").await;
        assert_eq!(
            http.targets(),
            [format!("localhost:{}", bridge.addr().port())]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wss_upgrades_over_tls_checking_the_brokers_name() {
        let broker = Mosquitto::builder().tls().start();
        let pki = broker.pki().unwrap();
        let bridge = WsBridge::start_with(broker.addr(), Framing::Split(1000), None);
        let front = TlsFront::start(pki, bridge.addr());
        let trusting = TlsOptions::new().roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()));
        let uri = format!("wss://localhost:{}/mqtt", front.addr().port());
        round_trips_at_every_qos(big(options(&uri, "wss").tls(trusting.clone())), &mib()).await;
        assert_eq!(bridge.upgrades()[0].path, "/mqtt");
        // A certificate for another name is refused, through the WebSocket too.
        let elsewhere = TestPki::with_server_names(&["elsewhere.example"]);
        let impostor = TlsFront::start(&elsewhere, bridge.addr());
        let wrong = format!("wss://localhost:{}/mqtt", impostor.addr().port());
        let trusting =
            TlsOptions::new().roots(TrustRoots::CaFile(elsewhere.ca_pem_path().to_owned()));
        let (client, _events) = Client::new(options(&wrong, "wss-wrong").tls(trusting)).unwrap();
        let error = client.connect().await.unwrap_err();
        assert!(
            matches!(&error, Error::Tls(m) if m.contains("not valid for name \"localhost\"")),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disconnect_sends_a_close_frame_after_disconnect() {
        let (addr, seen) = scripted_peer(|ws| {
            let mut frames = Vec::new();
            loop {
                match ws.read() {
                    Ok(tungstenite::Message::Binary(bytes)) => {
                        frames.push(format!("{:02x?}", &bytes[..]))
                    }
                    Ok(tungstenite::Message::Close(_)) => {
                        frames.push("close".to_owned());
                        let _ = ws.flush();
                    }
                    Ok(_) => {}
                    Err(_) => return frames,
                }
            }
        });
        let (client, _events) = Client::new(options(&ws_url(addr, "/mqtt"), "ws-close")).unwrap();
        client.connect().await.unwrap();
        client.disconnect(Duration::from_secs(1)).await.unwrap();
        let frames = seen.recv_timeout(PATIENCE).unwrap();
        assert_eq!(frames, ["[e0, 00]", "close"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_text_frame_is_a_websocket_error_naming_the_uri() {
        let (addr, _done) = scripted_peer(|ws| {
            ws.send(tungstenite::Message::text("hello")).unwrap();
            thread::sleep(Duration::from_secs(2));
        });
        let uri = ws_url(addr, "/mqtt");
        let (client, mut events) = Client::new(options(&uri, "ws-text")).unwrap();
        client.connect().await.unwrap();
        match lost(&mut events, PATIENCE).await {
            Some(Error::WebSocket {
                uri: named,
                error: WebSocketError::TextFrame,
            }) => assert_eq!(named, uri),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_brokers_close_frame_is_a_lost_connection() {
        let (addr, _done) = scripted_peer(|ws| {
            ws.close(None).unwrap();
            let _ = ws.flush();
            // Read our answer to the close.
            while ws.read().is_ok() {}
        });
        let (client, mut events) =
            Client::new(options(&ws_url(addr, "/mqtt"), "ws-closed")).unwrap();
        client.connect().await.unwrap();
        let cause = lost(&mut events, PATIENCE)
            .await
            .expect("the connection lost");
        println!("closed by the broker: {cause}");
        assert!(!client.is_connected());
    }
}
