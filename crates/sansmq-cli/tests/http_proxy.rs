//! `--proxy http://…` (an HTTP CONNECT proxy, our extension beside mosquitto's socks5h://) and
//! `--proxy-env` (the proxy from http_proxy/https_proxy/all_proxy/no_proxy, only when asked),
//! against a real mosquitto through the harness's HTTP proxy.

mod common;

use sansmq_e2e::{HttpProxy, Mosquitto};

use common::{Subscriber, run, run_with_input, sansmq};

#[test]
fn pub_through_an_http_proxy_with_a_login_reaches_mosquitto() {
    let broker = Mosquitto::start();
    let http = HttpProxy::with_login("alice", "proxy-secret");
    let port = broker.port().to_string();
    let sub = Subscriber::start(&["sub", "-p", &port, "-t", "h/#", "-C", "1", "-v"]);
    let url = http.url_with_login();
    let ours = run(&[
        "pub",
        "--proxy",
        &url,
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "h/1",
        "-m",
        "via http",
        "-q",
        "1",
    ]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    let received = sub.finish();
    assert_eq!(received.stdout, "h/1 via http\n", "{received:#?}");
    assert_eq!(http.targets(), [format!("localhost:{port}")]);
}

#[test]
fn a_wrong_http_proxy_login_is_one_clear_line_without_the_password() {
    let broker = Mosquitto::start();
    let http = HttpProxy::with_login("alice", "proxy-secret");
    let port = broker.port().to_string();
    let url = format!("http://alice:WRONG-SECRET@{}", http.addr());
    let ours = run(&["pub", "--proxy", &url, "-p", &port, "-t", "t", "-m", "m"]);
    // 11: MOSQ_ERR_AUTH, as for a SOCKS5 login refusal.
    assert_eq!(ours.code, Some(11), "{ours:#?}");
    let line = ours.error_line();
    assert!(
        line.contains("refused the login of user \"alice\""),
        "{line}"
    );
    assert!(
        line.contains("check the user name and password in --proxy"),
        "{line}"
    );
    assert!(!ours.stderr.contains("WRONG-SECRET"), "{ours:#?}");
}

#[test]
fn proxy_env_takes_the_proxy_from_the_environment_only_when_given() {
    let broker = Mosquitto::start();
    let http = HttpProxy::start();
    let port = broker.port().to_string();
    let args = ["pub", "-p", &port, "-t", "t", "-m", "m"];
    let with_env = |extra: &[&str]| {
        let mut command = sansmq(&[&args[..], extra].concat());
        command
            .env("http_proxy", http.url())
            .env_remove("no_proxy")
            .env_remove("NO_PROXY");
        run_with_input(command, b"")
    };
    let ours = with_env(&[]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    assert!(http.targets().is_empty(), "not read without --proxy-env");
    let ours = with_env(&["--proxy-env"]);
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    assert_eq!(http.targets(), [format!("localhost:{port}")]);
}
