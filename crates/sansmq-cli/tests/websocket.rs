//! `sansmq sub` and `pub` over WebSocket (`-L ws://host:port/<ws-path>/<topic>`, `--ws`,
//! `--ws-path`, `--ws-header`, wss with `--cafile`) against mosquitto behind the harness's
//! WebSocket bridge, with mosquitto_pub on mosquitto's TCP port as the independent publisher.

mod common;

use std::process::{Command, Stdio};

use sansmq_e2e::{Framing, Mosquitto, Socks5Proxy, TestPki, WsBridge};

use common::{Subscriber, run, run_with_input, sansmq};

#[test]
fn sub_over_ws_receives_what_pub_over_ws_and_mosquitto_pub_send() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(broker.addr(), Framing::Split(3), None);
    let url = |topic: &str| bridge.url(&format!("/mqtt/{topic}"));
    let sub = Subscriber::start(&["sub", "-L", &url("ws/t"), "-C", "2", "-v", "-q", "1"]);
    let ours = run(&["pub", "-L", &url("ws/t"), "-m", "from sansmq", "-q", "1"]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    let status = Command::new("mosquitto_pub")
        .args([
            "-p",
            &broker.port().to_string(),
            "-t",
            "ws/t",
            "-m",
            "from mosquitto",
        ])
        .stdin(Stdio::null())
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(received.stdout, "ws/t from sansmq\nws/t from mosquitto\n");
    let upgrades = bridge.upgrades();
    assert_eq!(upgrades.len(), 2, "{upgrades:?}");
    assert!(
        upgrades
            .iter()
            .all(|u| u.path == "/mqtt" && u.protocols == ["mqtt"]),
        "{upgrades:?}"
    );
}

#[test]
fn ws_flag_with_host_port_path_and_headers_reaches_the_bridge() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let port = bridge.addr().port().to_string();
    let ours = run(&[
        "pub",
        "--ws",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--ws-path",
        "/gw/mqtt",
        "--ws-header",
        "Authorization: Bearer S3CRET",
        "--ws-header",
        "X-Device: d1",
        "-t",
        "t",
        "-m",
        "m",
    ]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    let upgrades = bridge.upgrades();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    assert_eq!(upgrades[0].path, "/gw/mqtt");
    let headers = &upgrades[0].headers;
    assert!(
        headers.contains(&("authorization".into(), "Bearer S3CRET".into())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("x-device".into(), "d1".into())),
        "{headers:?}"
    );
}

#[test]
fn pub_over_wss_with_cafile_reaches_a_subscriber() {
    let pki = TestPki::generate();
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_tls(broker.addr(), &pki, Framing::AsRead);
    let cafile = pki.ca_pem_path().display().to_string();
    let sub = Subscriber::start(&[
        "sub",
        "-p",
        &broker.port().to_string(),
        "-t",
        "secure/t",
        "-C",
        "1",
        "-v",
    ]);
    let url = bridge.url("/mqtt/secure/t");
    assert!(url.starts_with("wss://"), "{url}");
    let ours = run(&[
        "pub", "-L", &url, "--cafile", &cafile, "-m", "over wss", "-q", "2",
    ]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    let received = sub.finish();
    assert_eq!(received.stdout, "secure/t over wss\n", "{received:#?}");

    // Without --cafile the certificate is not trusted: mosquitto's TLS exit code, 8.
    let untrusted = run(&["pub", "-L", &url, "--tls-use-os-certs", "-m", "x"]);
    assert_eq!(untrusted.code, Some(8), "{untrusted:#?}");
}

#[test]
fn pub_over_ws_through_a_socks5_proxy() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let socks = Socks5Proxy::start();
    let sub = Subscriber::start(&[
        "sub",
        "-p",
        &broker.port().to_string(),
        "-t",
        "proxied",
        "-C",
        "1",
    ]);
    let ours = run(&[
        "pub",
        "-L",
        &bridge.url("/mqtt/proxied"),
        "--proxy",
        &socks.url(),
        "-m",
        "via socks",
    ]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    assert_eq!(sub.finish().stdout, "via socks\n");
    assert_eq!(socks.targets().len(), 1);
}

#[test]
fn a_wrong_websocket_path_names_the_status_the_path_and_the_flag() {
    // The bridge serves any path: a server that refuses one is plain HTTP answering 404.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut client, _)) = listener.accept() {
            let mut buf = [0; 4096];
            let _ = client.read(&mut buf);
            let _ = client.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
    let outcome = run(&[
        "pub",
        "-L",
        &format!("ws://{addr}/wrong/t"),
        "--ws-path",
        "/wrong",
        "-m",
        "x",
    ]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(
        line.contains("HTTP 404") && line.contains("/wrong"),
        "{line}"
    );
    assert!(line.contains("--ws-path"), "{line}");
}

#[test]
fn a_url_path_without_the_websocket_path_is_refused_before_connecting() {
    let outcome = run(&["pub", "-L", "ws://127.0.0.1:9/other/t", "-m", "x"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome
            .error_line()
            .contains("must begin with the WebSocket path \"/mqtt\""),
        "{outcome:#?}"
    );
}

#[test]
fn a_malformed_ws_header_is_refused_without_quoting_it() {
    let outcome = run(&[
        "pub",
        "--ws",
        "-p",
        "9",
        "--ws-header",
        "Bearer S3CRET",
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.stderr.contains("--ws-header"), "{outcome:#?}");
    assert!(!outcome.stderr.contains("S3CRET"), "{outcome:#?}");
}

#[test]
fn trace_logging_never_shows_a_ws_header_value() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let mut command = sansmq(&[
        "pub",
        "-L",
        &bridge.url("/mqtt/t"),
        "--ws-header",
        "Authorization: Bearer S3CRET",
        "-m",
        "m",
    ]);
    command.env("RUST_LOG", "trace,tungstenite=trace");
    let outcome = run_with_input(command, b"");
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(
        outcome.stderr.contains("TRACE"),
        "tracing is on: {outcome:#?}"
    );
    assert!(!outcome.stderr.contains("S3CRET"), "{}", outcome.stderr);
    assert!(!outcome.stdout.contains("S3CRET"), "{}", outcome.stdout);
    assert_eq!(bridge.upgrades().len(), 1);
}

#[test]
fn a_kept_session_over_ws_gets_what_was_published_while_away() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start(broker.addr());
    let url = bridge.url("/mqtt/kept/t");
    let subscribe = ["sub", "-L", &url, "-c", "-i", "ws-keeper", "-q", "1"];
    let first = run(&[&subscribe[..], &["-E"]].concat());
    assert_eq!(first.code, Some(0), "{first:#?}");
    let status = Command::new("mosquitto_pub")
        .args([
            "-p",
            &broker.port().to_string(),
            "-t",
            "kept/t",
            "-m",
            "while away",
            "-q",
            "1",
        ])
        .stdin(Stdio::null())
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    let again = run(&[&subscribe[..], &["-C", "1", "-W", "10"]].concat());
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (Some(0), "while away\n"),
        "{again:#?}"
    );
}
