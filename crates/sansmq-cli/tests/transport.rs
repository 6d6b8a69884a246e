//! `--unix`, `--proxy` and `-A` against a real mosquitto, side by side with mosquitto_pub and
//! mosquitto_sub given the same flags: the same messages, the same exit codes, and errors that
//! name what failed.

mod common;

use std::process::{Command, Stdio};

use sansmq_e2e::{Mosquitto, Socks5Proxy, wait_until};

use common::{PATIENCE, Subscriber, run};

/// Runs a mosquitto client (`mosquitto_pub`, `mosquitto_sub`) to the end; its exit code and
/// stdout.
fn mosquitto(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn pub_over_a_unix_socket_reaches_sub_over_it_as_mosquitto_pub_does() {
    let broker = Mosquitto::builder().unix_socket(true).start();
    let path = broker.unix_socket().display().to_string();
    let sub = Subscriber::start(&["sub", "--unix", &path, "-t", "u/#", "-C", "2", "-v"]);
    let ours = run(&[
        "pub", "--unix", &path, "-t", "u/sansmq", "-m", "one", "-q", "1",
    ]);
    assert_eq!(
        (ours.code, ours.stdout.as_str()),
        (Some(0), ""),
        "{ours:#?}"
    );
    let theirs = mosquitto(
        "mosquitto_pub",
        &["--unix", &path, "-t", "u/mosquitto", "-m", "two", "-q", "1"],
    );
    assert_eq!(theirs, (Some(0), String::new()));
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(received.stdout, "u/sansmq one\nu/mosquitto two\n");
}

#[test]
fn unix_with_a_host_or_port_is_refused_rather_than_guessed() {
    // mosquitto lets the last of --unix and -h win, and then takes -h's host for a socket path.
    for args in [
        [
            "pub",
            "--unix",
            "/tmp/x.sock",
            "-h",
            "127.0.0.1",
            "-t",
            "t",
            "-m",
            "m",
        ],
        [
            "pub",
            "-p",
            "1883",
            "--unix",
            "/tmp/x.sock",
            "-t",
            "t",
            "-m",
            "m",
        ],
    ] {
        let outcome = run(&args);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert!(
            outcome.stderr.contains("cannot be used with"),
            "{outcome:#?}"
        );
    }
}

#[test]
fn a_unix_socket_nobody_listens_on_fails_as_mosquitto_pub_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock").display().to_string();
    let args = ["--unix", path.as_str(), "-t", "t", "-m", "m"];
    let ours = run(&[&["pub"][..], &args[..]].concat());
    let (code, _) = mosquitto("mosquitto_pub", &args);
    assert_eq!(ours.code, code, "{ours:#?}");
    let line = ours.error_line();
    assert!(
        line.contains(&format!("connecting to unix://{path}")),
        "{line}"
    );
    assert!(line.contains("check --unix"), "{line}");
}

#[test]
fn sub_through_a_socks5_proxy_with_a_login_gets_what_mosquitto_sub_gets() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::with_login("alice", "proxy-secret");
    let port = broker.port().to_string();
    let retained = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "p/1",
        "-m",
        "through the proxy",
        "-r",
        "-q",
        "1",
    ]);
    assert_eq!(retained.code, Some(0), "{retained:#?}");
    let url = socks.url_with_login();
    // The proxy resolves `localhost` (to ::1 or 127.0.0.1; mosquitto listens on the latter).
    let args = [
        "--proxy",
        url.as_str(),
        "-h",
        "localhost",
        "-p",
        port.as_str(),
        "-t",
        "p/#",
        "-C",
        "1",
        "-v",
        "-W",
        "10",
    ];
    let ours = run(&[&["sub"][..], &args[..]].concat());
    let theirs = mosquitto("mosquitto_sub", &args);
    assert_eq!((ours.code, ours.stdout.clone()), theirs, "{ours:#?}");
    assert_eq!(ours.stdout, "p/1 through the proxy\n");
    let targets = socks.targets();
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(
        targets
            .iter()
            .all(|t| t.host == "localhost" && t.domain_name && t.port == broker.port()),
        "both asked the proxy to resolve the name: {targets:?}"
    );
}

/// Runs `mosquitto_pub args`, stopped after 10 s if it has not ended (it retries some failures).
fn mosquitto_pub_within(args: &[&str]) -> Option<i32> {
    let (code, _) = mosquitto("timeout", &[&["10", "mosquitto_pub"][..], args].concat());
    assert_ne!(code, Some(124), "mosquitto_pub {args:?} did not end");
    code
}

#[test]
fn a_wrong_proxy_password_is_one_clear_error_line_without_the_password() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::with_login("alice", "proxy-secret");
    let port = broker.port().to_string();
    let url = format!("socks5h://alice:WRONG-SECRET@{}", socks.addr());
    let args = [
        "--proxy",
        url.as_str(),
        "-p",
        port.as_str(),
        "-t",
        "t",
        "-m",
        "m",
    ];
    let ours = run(&[&["pub"][..], &args[..]].concat());
    // 16: mosquitto's MOSQ_ERR_PROXY.
    assert_eq!(ours.code, Some(16), "{ours:#?}");
    assert_eq!(ours.code, mosquitto_pub_within(&args));
    let line = ours.error_line();
    assert!(line.contains("refused the user name \"alice\""), "{line}");
    assert!(
        line.contains("check the user name and password in --proxy"),
        "{line}"
    );
    assert!(!ours.stderr.contains("WRONG-SECRET"), "{ours:#?}");
}

#[test]
fn proxy_refusals_exit_with_mosquittos_codes() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::with_login("alice", "proxy-secret");
    let port = broker.port().to_string();
    // No login offered to a proxy that demands one: MOSQ_ERR_AUTH.
    let anonymous = socks.url();
    let args = [
        "--proxy",
        anonymous.as_str(),
        "-p",
        port.as_str(),
        "-t",
        "t",
        "-m",
        "m",
    ];
    let ours = run(&[&["pub"][..], &args[..]].concat());
    assert_eq!(ours.code, Some(11), "{ours:#?}");
    assert_eq!(ours.code, mosquitto_pub_within(&args));
    assert!(
        ours.error_line()
            .contains("may need a user name and password"),
        "{ours:#?}"
    );
    // A broker the proxy cannot reach (the test proxy answers "host unreachable"):
    // MOSQ_ERR_NO_CONN.
    let with_login = socks.url_with_login();
    let closed = sansmq_e2e::free_port().to_string();
    let args = [
        "--proxy",
        with_login.as_str(),
        "-p",
        closed.as_str(),
        "-t",
        "t",
        "-m",
        "m",
    ];
    let ours = run(&[&["pub"][..], &args[..]].concat());
    assert_eq!(ours.code, Some(4), "{ours:#?}");
    assert_eq!(ours.code, mosquitto_pub_within(&args));
    assert!(ours.error_line().contains("host unreachable"), "{ours:#?}");
}

#[test]
fn a_proxy_url_mosquitto_refuses_is_refused_naming_it_without_its_password() {
    for url in [
        "socks5://u:SECRET@127.0.0.1:1080",
        "socks5h://u:SECRET@proxy:0",
    ] {
        let ours = run(&["pub", "--proxy", url, "-t", "t", "-m", "m"]);
        let (code, _) = mosquitto("mosquitto_pub", &["--proxy", url, "-t", "t", "-m", "m"]);
        assert_eq!(ours.code, code, "{url}: {ours:#?}");
        let line = ours.error_line();
        assert!(line.contains("--proxy"), "{line}");
        assert!(!ours.stderr.contains("SECRET"), "{ours:#?}");
    }
}

#[test]
fn a_bind_address_picks_the_interface_and_one_not_here_fails_as_mosquitto_pub_does() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let ours = run(&[
        "pub",
        "-A",
        "127.0.0.2",
        "-p",
        &port,
        "-i",
        "bound",
        "-t",
        "t",
        "-m",
        "m",
    ]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    assert!(
        wait_until(PATIENCE, || broker
            .log()
            .contains("New client connected from 127.0.0.2:")),
        "{}",
        broker.log()
    );

    let args = [
        "-A",
        "192.0.2.1",
        "-h",
        "127.0.0.1",
        "-p",
        port.as_str(),
        "-t",
        "t",
        "-m",
        "m",
    ];
    let ours = run(&[&["pub"][..], &args[..]].concat());
    let (code, _) = mosquitto("mosquitto_pub", &args);
    assert_eq!(ours.code, code, "{ours:#?}");
    let line = ours.error_line();
    assert!(line.contains("binding to 192.0.2.1"), "{line}");
    assert!(
        line.contains("-A must be an address of this machine"),
        "{line}"
    );
}
