//! The mio client's transports beside plain TCP, against a real mosquitto: a Unix domain socket
//! (`unix://`), a SOCKS5 proxy that resolves the broker's name (with and without a login, and
//! TLS through it), and a socket bound to a local address (mosquitto_pub/sub's `--unix`,
//! `--proxy`, `-A`).

mod common;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::socks5::Socks5Error;
use sansmq_e2e::{Mosquitto, Socks5Proxy, Socks5Target, wait_until};
use sansmq_mio::{Client, ConnectOptions, Error, ProxyOptions, TlsOptions, TrustRoots};

use common::{PATIENCE, Recorder, options};

/// Publishes one QoS 1 message from `publisher` and checks `subscriber` (subscribed to `t/#`)
/// receives it.
fn round_trip(publisher: &Client, subscriber: &Client, payload: &str) {
    let messages = subscriber.messages(4);
    subscriber.subscribe(&[("t/#", QoS::AtLeastOnce)]).unwrap();
    publisher
        .publish("t/1", payload.to_owned(), QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = messages.recv_timeout(PATIENCE).expect("the message");
    assert_eq!(&message.payload[..], payload.as_bytes());
}

fn connected(options: ConnectOptions) -> Client {
    let client = Client::new(options).unwrap();
    client.connect().unwrap();
    client
}

fn proxy(url: &str) -> ProxyOptions {
    url.parse().unwrap()
}

#[test]
fn publishes_and_subscribes_over_a_unix_socket() {
    let broker = Mosquitto::builder().unix_socket(true).start();
    let subscriber = Client::new(options(&broker.unix_url(), "unix-sub")).unwrap();
    let (recorder, events) = Recorder::new();
    subscriber.set_callback(recorder);
    subscriber.connect().unwrap();
    let (_, uri) = events.connected(PATIENCE).expect("connect_complete");
    assert_eq!(uri, broker.unix_url());
    let publisher = connected(options(&broker.unix_url(), "unix-pub"));
    round_trip(&publisher, &subscriber, "over a unix socket");
    assert!(
        broker.log().contains("New client connected from unix-sub")
            || broker.log().contains("unix-sub"),
        "{}",
        broker.log()
    );
    subscriber.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_unix_socket_nobody_listens_on_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let uri = format!("unix://{}", path.display());
    let client = Client::new(options(&uri, "lonely")).unwrap();
    let error = client.connect().unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("connecting to {uri}")),
        "{message}"
    );
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
}

#[test]
fn reaches_the_broker_through_a_socks5_proxy_that_resolves_its_name() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::start();
    let uri = format!("tcp://localhost:{}", broker.port());
    let through = |id: &str| options(&uri, id).proxy(proxy(&socks.url()));
    let subscriber = connected(through("proxied-sub"));
    let publisher = connected(through("proxied-pub"));
    round_trip(&publisher, &subscriber, "through the proxy");
    let asked = Socks5Target {
        host: "localhost".into(),
        port: broker.port(),
        domain_name: true,
    };
    assert_eq!(socks.targets(), [asked.clone(), asked]);
}

#[test]
fn a_proxy_login_is_sent_and_a_wrong_password_is_a_clear_error() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::with_login("alice", "right-password");
    let subscriber =
        connected(options(&broker.url(), "logged-in").proxy(proxy(&socks.url_with_login())));
    let publisher = connected(options(&broker.url(), "direct"));
    round_trip(&publisher, &subscriber, "after a proxy login");

    let wrong = format!("socks5h://alice:WRONG-SECRET@{}", socks.addr());
    let client = Client::new(options(&broker.url(), "wrong").proxy(proxy(&wrong))).unwrap();
    let error = client.connect().unwrap_err();
    match &error {
        Error::Proxy {
            proxy,
            error: Socks5Error::LoginRefused { username, .. },
        } => {
            assert_eq!(proxy, &socks.addr().to_string());
            assert_eq!(username, "alice");
        }
        other => panic!("expected a refused proxy login, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("refused the user name \"alice\""),
        "{message}"
    );
    assert!(!message.contains("WRONG-SECRET"), "{message}");

    // Without a login, the proxy's refusal says one may be needed.
    let client =
        Client::new(options(&broker.url(), "anonymous").proxy(proxy(&socks.url()))).unwrap();
    let message = client.connect().unwrap_err().to_string();
    assert!(
        message.contains("may need a user name and password"),
        "{message}"
    );
}

#[test]
fn a_broker_the_proxy_cannot_reach_is_the_proxys_typed_refusal() {
    let socks = Socks5Proxy::start();
    let port = sansmq_e2e::free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let client = Client::new(options(&uri, "unreachable").proxy(proxy(&socks.url()))).unwrap();
    let error = client.connect().unwrap_err();
    assert!(
        matches!(&error, Error::Proxy { error: Socks5Error::ConnectFailed { target, .. }, .. }
            if *target == format!("127.0.0.1:{port}")),
        "{error:?}"
    );
    // An IP address goes to the proxy as an address, not a name.
    assert!(!socks.targets()[0].domain_name);
}

#[test]
fn a_proxy_that_is_not_running_is_named_as_the_proxy() {
    let broker = Mosquitto::start();
    let port = sansmq_e2e::free_port();
    let url = format!("socks5h://127.0.0.1:{port}");
    let client = Client::new(options(&broker.url(), "no-proxy").proxy(proxy(&url))).unwrap();
    let message = client.connect().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "connecting to SOCKS5 proxy 127.0.0.1:{port} (for {}): ",
            broker.url()
        )),
        "{message}"
    );
}

#[test]
fn tls_through_the_proxy_checks_the_brokers_name() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let socks = Socks5Proxy::start();
    let tls = TlsOptions::new().roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()));
    let uri = format!("ssl://localhost:{}", broker.tls_port());
    let client = connected(
        options(&uri, "tls-proxied")
            .tls(tls)
            .proxy(proxy(&socks.url())),
    );
    assert!(client.is_connected());
    assert_eq!(socks.targets()[0].host, "localhost");
    client.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_bound_client_leaves_from_its_bind_address() {
    let broker = Mosquitto::start();
    for local in ["127.0.0.1", "127.0.0.2"] {
        let id = format!("bound-{local}");
        let client = connected(options(&broker.url(), &id).bind_address(local.parse().unwrap()));
        // mosquitto logs "New client connected from 127.0.0.2:PORT as bound-127.0.0.2".
        assert!(
            wait_until(PATIENCE, || broker
                .log()
                .contains(&format!("connected from {local}:"))),
            "{}",
            broker.log()
        );
        client.disconnect(Duration::from_secs(5)).unwrap();
    }
    // A host name resolving to ::1 and 127.0.0.1: the IPv4 bind tries 127.0.0.1 only.
    let uri = format!("tcp://localhost:{}", broker.port());
    let client =
        connected(options(&uri, "bound-by-name").bind_address("127.0.0.1".parse().unwrap()));
    assert!(client.is_connected());
}

#[test]
fn a_bind_address_not_on_this_machine_fails_naming_it() {
    let broker = Mosquitto::start();
    // TEST-NET-1 (RFC 5737) is never an address of this machine.
    let client =
        Client::new(options(&broker.url(), "misbound").bind_address("192.0.2.1".parse().unwrap()))
            .unwrap();
    let message = client.connect().unwrap_err().to_string();
    assert!(message.contains("binding to 192.0.2.1: "), "{message}");
    assert!(
        message.starts_with(&format!("connecting to {}", broker.url())),
        "{message}"
    );
}
