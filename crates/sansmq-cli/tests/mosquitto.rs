//! `sansmq pub` and `sansmq sub` against a real mosquitto: what they print and how they exit,
//! compared with what mosquitto_pub and mosquitto_sub do.

mod common;

use std::time::Duration;

use sansmq_e2e::{Mosquitto, free_port};

use common::{Subscriber, run, run_with_input, sansmq};

fn port(broker: &Mosquitto) -> String {
    broker.port().to_string()
}

#[test]
fn pub_reaches_sub_at_every_qos_and_v_prints_the_topic() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let sub = Subscriber::start(&[
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "rt/#",
        "-q",
        "2",
        "-C",
        "3",
        "-v",
    ]);
    for qos in ["0", "1", "2"] {
        let topic = format!("rt/{qos}");
        let message = format!("at qos {qos}");
        let published = run(&[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            &topic,
            "-m",
            &message,
            "-q",
            qos,
        ]);
        assert_eq!(published.code, Some(0), "{published:#?}");
        assert_eq!(published.stdout, "");
    }
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(
        received.stdout,
        "rt/0 at qos 0\nrt/1 at qos 1\nrt/2 at qos 2\n"
    );
}

#[test]
fn sub_exits_after_count_messages_from_several_topics() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let sub = Subscriber::start(&[
        "sub", "-p", &port, "-t", "a", "-t", "b/+", "-C", "2", "-q", "1",
    ]);
    let lines = run_with_input(
        sansmq(&["pub", "-p", &port, "-t", "b/x", "-l", "-q", "1"]),
        b"first\nsecond\nthird\n",
    );
    assert_eq!(lines.code, Some(0), "{lines:#?}");
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    // Payloads only, one per line, and nothing after the count.
    assert_eq!(received.stdout, "first\nsecond\n");
}

#[test]
fn an_empty_stdin_is_no_message_for_s_as_for_mosquitto_pub() {
    let outcome = run_with_input(sansmq(&["pub", "-t", "t", "-s"]), b"");
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("-n"), "{outcome:#?}");
}

#[test]
fn stdin_lines_keep_empty_lines_as_null_messages() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let sub = Subscriber::start(&["sub", "-p", &port, "-t", "l", "-C", "4", "-v"]);
    let lines = run_with_input(
        sansmq(&["pub", "-p", &port, "-t", "l", "-l"]),
        b"x\n\ny\r\nz",
    );
    assert_eq!(lines.code, Some(0), "{lines:#?}");
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    // As mosquitto: only '\n' ends a line, an empty line is an empty message, shown as (null),
    // and a last line without a newline is sent too.
    assert_eq!(received.stdout, "l x\nl (null)\nl y\r\nl z\n");
}

#[test]
fn sub_with_w_exits_27_when_time_runs_out() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let outcome = run(&["sub", "-p", &port, "-t", "quiet", "-W", "1"]);
    assert_eq!(outcome.code, Some(27), "{outcome:#?}");
    assert!(outcome.elapsed >= Duration::from_secs(1), "{outcome:#?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "{outcome:#?}");
    assert!(
        outcome.error_line().contains("timed out after 1 s"),
        "{outcome:#?}"
    );
    assert_eq!(outcome.stdout, "");
}

#[test]
fn sub_with_w_and_c_exits_27_with_fewer_messages_and_0_with_enough() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let short = Subscriber::start(&["sub", "-p", &port, "-t", "w", "-C", "2", "-W", "2"]);
    assert_eq!(
        run(&["pub", "-p", &port, "-t", "w", "-m", "one"]).code,
        Some(0)
    );
    let outcome = short.finish();
    assert_eq!(outcome.code, Some(27), "{outcome:#?}");
    assert_eq!(outcome.stdout, "one\n");
    assert!(
        outcome.error_line().contains("1 of 2 messages"),
        "{outcome:#?}"
    );

    let enough = Subscriber::start(&["sub", "-p", &port, "-t", "w", "-C", "1", "-W", "10"]);
    assert_eq!(
        run(&["pub", "-p", &port, "-t", "w", "-m", "two"]).code,
        Some(0)
    );
    let outcome = enough.finish();
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "{outcome:#?}");
}

#[test]
fn connection_refused_exits_1_with_one_line_saying_where_and_why() {
    let port = free_port().to_string();
    for command in [
        vec!["pub", "-h", "127.0.0.1", "-p", &port, "-t", "t", "-m", "x"],
        vec!["sub", "-h", "127.0.0.1", "-p", &port, "-t", "t"],
    ] {
        let outcome = run(&command);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        let line = outcome.error_line();
        assert!(line.contains(&format!("tcp://127.0.0.1:{port}")), "{line}");
        assert!(line.contains("refused"), "{line}");
        assert!(line.contains("sansmq broker"), "{line}");

        // --quiet: the same exit code, nothing on stderr.
        let mut quiet = command.clone();
        quiet.push("--quiet");
        let outcome = run(&quiet);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert_eq!(outcome.stderr, "", "{outcome:#?}");
    }
}

#[test]
fn wrong_password_exits_with_the_connack_code_and_says_what_to_check() {
    let broker = Mosquitto::builder().user("alice", "secret").start();
    let port = port(&broker);
    for command in [
        vec![
            "pub", "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "wrong",
        ],
        vec!["sub", "-p", &port, "-t", "t", "-u", "alice", "-P", "wrong"],
    ] {
        let outcome = run(&command);
        // mosquitto 2.0 answers a wrong password with 5 (not authorized); mosquitto_sub
        // exits with the CONNACK code.
        assert_eq!(outcome.code, Some(5), "{outcome:#?}");
        let line = outcome.error_line();
        assert!(line.contains("refused"), "{line}");
        assert!(line.contains("check the user name and password"), "{line}");
    }
    let right = run(&[
        "pub", "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "secret",
    ]);
    assert_eq!(right.code, Some(0), "{right:#?}");
}

#[test]
fn url_flag_carries_login_host_port_and_topic() {
    let broker = Mosquitto::builder().user("bob", "pw").start();
    let url = format!("mqtt://bob:pw@127.0.0.1:{}/from/url", broker.port());
    let sub = Subscriber::start(&["sub", "-L", &url, "-C", "1", "-v"]);
    let published = run(&["pub", "-L", &url, "-m", "via -L", "-q", "1"]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(received.stdout, "from/url via -L\n");
}

#[test]
fn retained_file_message_arrives_later_as_json_with_base64() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, [0xff, 0x00, 0x01]).unwrap();
    let published = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "bin",
        "-f",
        file.to_str().unwrap(),
        "-r",
    ]);
    assert_eq!(published.code, Some(0), "{published:#?}");

    let outcome = run(&[
        "sub", "-p", &port, "-t", "bin", "-C", "1", "--json", "-W", "10",
    ]);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    let json: serde_json::Value = serde_json::from_str(outcome.stdout.trim_end()).unwrap();
    assert_eq!(json["topic"], "bin");
    assert_eq!(json["payload"], "/wAB");
    assert_eq!(json["encoding"], "base64");
    assert_eq!(json["retain"], true);
    assert_eq!(json["qos"], 0);
    assert_eq!(json["p2p"], false);
}

#[test]
fn will_is_published_when_the_client_vanishes() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let watcher = Subscriber::start(&["sub", "-p", &port, "-t", "status", "-C", "1", "-v"]);
    let doomed = Subscriber::start(&[
        "sub",
        "-p",
        &port,
        "-t",
        "nothing",
        "--will-topic",
        "status",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
    ]);
    doomed.kill();
    let outcome = watcher.finish();
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert_eq!(outcome.stdout, "status gone\n");
}

#[test]
fn tls_with_cafile_verifies_the_broker() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let port = broker.tls_port().to_string();
    let ca = pki.ca_pem_path().to_str().unwrap();
    let good = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        ca,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(good.code, Some(0), "{good:#?}");

    let wrong = pki.wrong_ca_pem_path().to_str().unwrap();
    let bad = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        wrong,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    // mosquitto_pub exits with 8 (MOSQ_ERR_TLS) here too.
    assert_eq!(bad.code, Some(8), "{bad:#?}");
    assert!(bad.error_line().contains("--cafile"), "{bad:#?}");

    // A TLS client at a plain listener: the handshake is cut, also 8.
    let plain = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port().to_string(),
        "--cafile",
        ca,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(plain.code, Some(8), "{plain:#?}");
    assert!(plain.error_line().contains("TLS listener"), "{plain:#?}");

    let insecure = run(&[
        "pub",
        "-p",
        &port,
        "--cafile",
        ca,
        "--insecure",
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(insecure.code, Some(1), "{insecure:#?}");
    assert!(
        insecure
            .error_line()
            .contains("--insecure is not supported"),
        "{insecure:#?}"
    );
}

#[test]
fn usage_errors_exit_1_with_one_line() {
    let outcome = run(&["pub", "-t", "t"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("--message"), "{outcome:#?}");

    let outcome = run(&["pub", "-t", "t", "-m", "x", "-q", "3"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("0, 1 or 2"), "{outcome:#?}");

    let outcome = run(&["sub", "-t", "t", "-c"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("-i"), "{outcome:#?}");

    // As mosquitto_sub and mosquitto_pub: help and version on stdout, exit code 1.
    let help = run(&["sub", "--help"]);
    assert_eq!(help.code, Some(1), "{help:#?}");
    assert!(help.stdout.contains("-h, --host"), "{help:#?}");
    let version = run(&["pub", "--version"]);
    assert_eq!(version.code, Some(1), "{version:#?}");
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{version:#?}"
    );
    // The command's own help is no mosquitto command: it succeeds.
    assert_eq!(run(&["--help"]).code, Some(0));
}

#[test]
fn disabled_clean_session_keeps_messages_while_the_subscriber_is_away() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let keeper = [
        "sub", "-p", &port, "-t", "kept", "-q", "1", "-c", "-i", "keeper",
    ];
    // The first run only makes the session: it times out with nothing received.
    let first = run(&[&keeper[..], &["-W", "1"]].concat());
    assert_eq!(first.code, Some(27), "{first:#?}");
    let published = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "kept",
        "-m",
        "while away",
        "-q",
        "1",
    ]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let back = run(&[&keeper[..], &["-C", "1", "-W", "10"]].concat());
    assert_eq!(back.code, Some(0), "{back:#?}");
    assert_eq!(back.stdout, "while away\n");
}

#[test]
fn protocol_version_keepalive_and_client_id_reach_the_broker() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let outcome = run(&[
        "pub",
        "-p",
        &port,
        "-V",
        "mqttv31",
        "-k",
        "30",
        "-i",
        "v31client",
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    // mosquitto logs the protocol (p1: MQTT 3.1), clean session and keep-alive of a client.
    assert!(
        sansmq_e2e::wait_until(Duration::from_secs(5), || broker
            .log()
            .contains("as v31client (p1, c1, k30)")),
        "{}",
        broker.log()
    );

    let prefixed = run(&["pub", "-p", &port, "-I", "pre-", "-t", "t", "-m", "x"]);
    assert_eq!(prefixed.code, Some(0), "{prefixed:#?}");
    assert!(
        sansmq_e2e::wait_until(Duration::from_secs(5), || broker.log().contains(" as pre-")),
        "{}",
        broker.log()
    );
}

#[test]
fn sub_reconnects_after_a_broker_restart_and_keeps_receiving() {
    let broker = Mosquitto::start();
    let port = port(&broker);
    let mut sub = Subscriber::start(&["sub", "-p", &port, "-t", "again", "-C", "1", "-q", "1"]);
    broker.restart();
    // It says so on stderr, and subscribes again (the clean session was lost with the broker):
    // a retained message reaches it whether it subscribes again before or after the publish.
    sub.wait_for_stderr("sansmq: reconnected to");
    let published = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "again",
        "-m",
        "after restart",
        "-q",
        "1",
        "-r",
    ]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let outcome = sub.finish();
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert_eq!(outcome.stdout, "after restart\n");
    assert!(
        outcome.stderr.contains("sansmq: warning: connection to"),
        "{outcome:#?}"
    );
}
