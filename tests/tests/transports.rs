//! The transports beside plain TCP, for every driver, against a real mosquitto: a Unix domain
//! socket (`unix://`), a SOCKS5 proxy that resolves the broker's name (with and without a login,
//! and TLS through it), an HTTP CONNECT proxy (Basic login, 407 and 502 as typed errors, TLS
//! through it, taken from the environment only when asked), and a socket bound to a local
//! address (mosquitto_pub/sub's `--unix`, `--proxy`, `-A`). The mio and tokio clients carry them out; the futures client, whose runtime
//! opens plain TCP streams, refuses each by name.

mod common;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::http_connect::HttpConnectError;
use sansmq_driver::socks5::Socks5Error;
use sansmq_driver::{Error, ProxyOptions, TlsOptions, TrustRoots};
use sansmq_e2e::scenario::{FuturesClient, ScenarioClient, connect_error, connected};
use sansmq_e2e::{HttpProxy, Mosquitto, PATIENCE, Socks5Proxy, Socks5Target, TestPki, wait_until};

use common::options;

macro_rules! transports_for {
    ($driver:ident: $client:ty) => {
        sansmq_e2e::scenario_tests!($driver: $client =>
            publishes_and_subscribes_over_a_unix_socket,
            a_unix_socket_nobody_listens_on_is_named_in_the_error,
            reaches_the_broker_through_a_socks5_proxy_that_resolves_its_name,
            a_proxy_login_is_sent_and_a_wrong_password_is_a_clear_error,
            a_broker_the_proxy_cannot_reach_is_the_proxys_typed_refusal,
            a_proxy_that_is_not_running_is_named_as_the_proxy,
            a_silent_proxy_is_bounded_by_the_connect_timeout,
            tls_through_the_proxy_checks_the_brokers_name,
            a_bound_client_leaves_from_its_bind_address,
            a_bind_address_not_on_this_machine_fails_naming_it,
            reaches_the_broker_through_an_http_proxy_by_its_name,
            a_basic_login_is_sent_and_a_wrong_one_is_a_clear_407_error,
            a_proxy_that_cannot_reach_the_broker_is_a_clear_502_error,
            tls_through_the_http_proxy_checks_the_brokers_name,
            the_proxy_comes_from_the_environment_only_when_asked,
        );
    };
}

transports_for!(mio: sansmq_e2e::scenario::MioClient);
transports_for!(tokio: sansmq_e2e::scenario::TokioClient);

/// Publishes one QoS 1 message from `publisher` and checks `subscriber` receives it.
fn round_trip<C: ScenarioClient>(publisher: &C, subscriber: &C, payload: &str) {
    subscriber.subscribe(&[("t/#", QoS::AtLeastOnce)]).unwrap();
    publisher
        .publish("t/1", payload.to_owned(), QoS::AtLeastOnce, false)
        .unwrap();
    let message = subscriber.next_message(PATIENCE).expect("the message");
    assert_eq!(message.payload, payload.as_bytes());
}

fn proxy(url: &str) -> ProxyOptions {
    url.parse().unwrap()
}

fn publishes_and_subscribes_over_a_unix_socket<C: ScenarioClient>() {
    let broker = Mosquitto::builder().unix_socket(true).start();
    let subscriber: C = connected(options(&broker.unix_url(), "unix-sub"));
    let (_, uri) = subscriber.next_connected(PATIENCE).expect("connected");
    assert_eq!(uri, broker.unix_url());
    let publisher: C = connected(options(&broker.unix_url(), "unix-pub"));
    round_trip(&publisher, &subscriber, "over a unix socket");
    subscriber.disconnect(Duration::from_secs(5)).unwrap();
}

fn a_unix_socket_nobody_listens_on_is_named_in_the_error<C: ScenarioClient>() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("unix://{}", dir.path().join("nobody.sock").display());
    let error = connect_error::<C>(options(&uri, "lonely"));
    let message = error.to_string();
    assert!(
        message.contains(&format!("connecting to {uri}")),
        "{message}"
    );
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
}

fn reaches_the_broker_through_a_socks5_proxy_that_resolves_its_name<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::start();
    let uri = format!("tcp://localhost:{}", broker.port());
    let through = |id: &str| options(&uri, id).proxy(proxy(&socks.url()));
    let subscriber: C = connected(through("proxied-sub"));
    let publisher: C = connected(through("proxied-pub"));
    round_trip(&publisher, &subscriber, "through the proxy");
    let asked = Socks5Target {
        host: "localhost".into(),
        port: broker.port(),
        domain_name: true,
    };
    assert_eq!(socks.targets(), [asked.clone(), asked]);
}

fn a_proxy_login_is_sent_and_a_wrong_password_is_a_clear_error<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let socks = Socks5Proxy::with_login("alice", "right-password");
    let subscriber: C =
        connected(options(&broker.url(), "logged-in").proxy(proxy(&socks.url_with_login())));
    let publisher: C = connected(options(&broker.url(), "direct"));
    round_trip(&publisher, &subscriber, "after a proxy login");

    let wrong = format!("socks5h://alice:WRONG-SECRET@{}", socks.addr());
    let error = connect_error::<C>(options(&broker.url(), "wrong").proxy(proxy(&wrong)));
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
    let error = connect_error::<C>(options(&broker.url(), "anonymous").proxy(proxy(&socks.url())));
    let message = error.to_string();
    assert!(
        message.contains("may need a user name and password"),
        "{message}"
    );
}

fn a_broker_the_proxy_cannot_reach_is_the_proxys_typed_refusal<C: ScenarioClient>() {
    let socks = Socks5Proxy::start();
    let port = sansmq_e2e::free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let error = connect_error::<C>(options(&uri, "unreachable").proxy(proxy(&socks.url())));
    assert!(
        matches!(&error, Error::Proxy { error: Socks5Error::ConnectFailed { target, .. }, .. }
            if *target == format!("127.0.0.1:{port}")),
        "{error:?}"
    );
    // An IP address goes to the proxy as an address, not a name.
    assert!(!socks.targets()[0].domain_name);
}

fn a_proxy_that_is_not_running_is_named_as_the_proxy<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let port = sansmq_e2e::free_port();
    let url = format!("socks5h://127.0.0.1:{port}");
    let message =
        connect_error::<C>(options(&broker.url(), "no-proxy").proxy(proxy(&url))).to_string();
    assert!(
        message.starts_with(&format!(
            "connecting to SOCKS5 proxy 127.0.0.1:{port} (for {}): ",
            broker.url()
        )),
        "{message}"
    );
}

fn a_silent_proxy_is_bounded_by_the_connect_timeout<C: ScenarioClient>() {
    // Accepts connections and never answers the greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("socks5h://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let error = connect_error::<C>(
        options("tcp://broker.invalid:1883", "patient")
            .connect_timeout(Duration::from_millis(500))
            .proxy(proxy(&url)),
    );
    // Not a DNS error: with a proxy the client never resolves the broker's name itself.
    assert!(matches!(error, Error::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < PATIENCE, "{:?}", started.elapsed());
}

fn tls_through_the_proxy_checks_the_brokers_name<C: ScenarioClient>() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let socks = Socks5Proxy::start();
    let tls = TlsOptions::new().roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()));
    let uri = format!("ssl://localhost:{}", broker.tls_port());
    let client: C = connected(
        options(&uri, "tls-proxied")
            .tls(tls)
            .proxy(proxy(&socks.url())),
    );
    assert!(client.is_connected());
    assert_eq!(socks.targets()[0].host, "localhost");
    client.disconnect(Duration::from_secs(5)).unwrap();
}

fn a_bound_client_leaves_from_its_bind_address<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    for local in ["127.0.0.1", "127.0.0.2"] {
        let id = format!("bound-{local}");
        let client: C = connected(options(&broker.url(), &id).bind_address(local.parse().unwrap()));
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
    let client: C =
        connected(options(&uri, "bound-by-name").bind_address("127.0.0.1".parse().unwrap()));
    assert!(client.is_connected());
}

fn a_bind_address_not_on_this_machine_fails_naming_it<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    // TEST-NET-1 (RFC 5737) is never an address of this machine.
    let error = connect_error::<C>(
        options(&broker.url(), "misbound").bind_address("192.0.2.1".parse().unwrap()),
    );
    let message = error.to_string();
    assert!(message.contains("binding to 192.0.2.1: "), "{message}");
    assert!(
        message.starts_with(&format!("connecting to {}", broker.url())),
        "{message}"
    );
}

/// The futures client's runtime opens plain TCP streams: each transport option is refused by
/// name when the client is made, never ignored.
#[test]
fn the_futures_client_refuses_each_transport_option_by_name() {
    let base = || options("tcp://127.0.0.1:1883", "futures");
    for (options, option) in [
        (
            base().bind_address("127.0.0.1".parse().unwrap()),
            "ConnectOptions::bind_address",
        ),
        (
            base().proxy(ProxyOptions::socks5h("127.0.0.1", 1080)),
            "ConnectOptions::proxy",
        ),
        (
            options("unix:///tmp/broker.sock", "futures"),
            "unix:// server URI",
        ),
        (
            options("ws://127.0.0.1:8080/mqtt", "futures"),
            "ws:// and wss:// server URIs",
        ),
    ] {
        let error = FuturesClient::new(options)
            .err()
            .unwrap_or_else(|| panic!("{option} was accepted"));
        assert!(
            matches!(&error, Error::Unsupported { option: o, .. } if *o == option),
            "{error:?}"
        );
        assert!(error.to_string().starts_with(option), "{error}");
    }
}

fn reaches_the_broker_through_an_http_proxy_by_its_name<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let http = HttpProxy::start();
    let uri = format!("tcp://localhost:{}", broker.port());
    let through = |id: &str| options(&uri, id).proxy(proxy(&http.url()));
    let subscriber: C = connected(through("http-sub"));
    let publisher: C = connected(through("http-pub"));
    round_trip(&publisher, &subscriber, "through the HTTP proxy");
    let asked = format!("localhost:{}", broker.port());
    assert_eq!(http.targets(), [asked.clone(), asked]);
    subscriber.disconnect(Duration::from_secs(5)).unwrap();
}

fn a_basic_login_is_sent_and_a_wrong_one_is_a_clear_407_error<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let http = HttpProxy::with_login("alice", "right-password");
    let subscriber: C =
        connected(options(&broker.url(), "http-login").proxy(proxy(&http.url_with_login())));
    let publisher: C = connected(options(&broker.url(), "direct"));
    round_trip(&publisher, &subscriber, "after a proxy login");

    let wrong = format!("http://alice:WRONG-SECRET@{}", http.addr());
    let error = connect_error::<C>(options(&broker.url(), "wrong").proxy(proxy(&wrong)));
    match &error {
        Error::HttpProxy {
            proxy,
            error: HttpConnectError::LoginRefused { username },
        } => {
            assert_eq!(proxy, &http.addr().to_string());
            assert_eq!(username, "alice");
        }
        other => panic!("expected a refused proxy login, got {other:?}"),
    }
    assert!(!error.to_string().contains("WRONG-SECRET"), "{error}");

    let error = connect_error::<C>(options(&broker.url(), "anonymous").proxy(proxy(&http.url())));
    assert!(
        matches!(
            &error,
            Error::HttpProxy {
                error: HttpConnectError::LoginRequired,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("wants a login (407"), "{error}");
}

fn a_proxy_that_cannot_reach_the_broker_is_a_clear_502_error<C: ScenarioClient>() {
    // The harness's proxy answers 502 when its own connection is refused.
    let http = HttpProxy::start();
    let port = sansmq_e2e::free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let error = connect_error::<C>(options(&uri, "unreachable").proxy(proxy(&http.url())));
    match &error {
        Error::HttpProxy {
            error: HttpConnectError::Unreachable { target, status, .. },
            ..
        } => {
            assert_eq!(target, &format!("127.0.0.1:{port}"));
            assert_eq!(*status, 502);
        }
        other => panic!("expected the proxy's 502, got {other:?}"),
    }
    println!("{}: {error}", C::DRIVER);
    // A proxy that refuses by policy says so with its status.
    let broker = Mosquitto::start();
    let refusing = HttpProxy::refusing("403 Forbidden");
    let error =
        connect_error::<C>(options(&broker.url(), "forbidden").proxy(proxy(&refusing.url())));
    assert!(
        matches!(
            &error,
            Error::HttpProxy {
                error: HttpConnectError::Forbidden { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

fn tls_through_the_http_proxy_checks_the_brokers_name<C: ScenarioClient>() {
    // A certificate for `localhost` only: the proxy's address (127.0.0.1) would not pass.
    let broker = Mosquitto::builder()
        .tls_with(TestPki::with_server_names(&["localhost"]))
        .start();
    let pki = broker.pki().unwrap();
    let http = HttpProxy::start();
    let tls = || TlsOptions::new().roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()));
    let uri = format!("ssl://localhost:{}", broker.tls_port());
    let client: C = connected(
        options(&uri, "tls-http")
            .tls(tls())
            .proxy(proxy(&http.url())),
    );
    assert!(client.is_connected());
    assert_eq!(
        http.targets()[0],
        format!("localhost:{}", broker.tls_port())
    );
    client.disconnect(Duration::from_secs(5)).unwrap();
    // The same broker by an address its certificate does not name is refused.
    let by_address = format!("ssl://127.0.0.1:{}", broker.tls_port());
    let error = connect_error::<C>(
        options(&by_address, "tls-wrong-name")
            .tls(tls())
            .proxy(proxy(&http.url())),
    );
    assert!(
        matches!(&error, Error::Tls(m) if m.contains("not valid for name")),
        "{error:?}"
    );
}

fn the_proxy_comes_from_the_environment_only_when_asked<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let http = HttpProxy::start();
    let url = http.url();
    let env = |name: &str| (name == "http_proxy").then(|| url.clone());
    let client: C = connected(
        options(&broker.url(), "from-env")
            .proxy_from_env_with(env)
            .unwrap(),
    );
    assert!(client.is_connected());
    assert_eq!(http.targets(), [format!("127.0.0.1:{}", broker.port())]);
    // no_proxy exempts the broker: a direct connection.
    let exempt = |name: &str| match name {
        "http_proxy" => Some(url.clone()),
        "no_proxy" => Some("localhost,127.0.0.1".to_owned()),
        _ => None,
    };
    let direct: C = connected(
        options(&broker.url(), "exempt")
            .proxy_from_env_with(exempt)
            .unwrap(),
    );
    assert!(direct.is_connected());
    assert_eq!(http.targets().len(), 1, "no second CONNECT");
}
