//! HTTP CONNECT proxies (`http://[user[:password]@]host[:port]`), for every driver, against a
//! real mosquitto through the harness's [`HttpProxy`]: with and without a Basic login, a wrong
//! login (407) and a proxy that cannot reach the broker (502) as typed errors, TLS through the
//! proxy checking the broker's name, and a proxy taken from the environment when asked.

mod common;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::http_connect::HttpConnectError;
use sansmq_driver::{Error, ProxyOptions, TlsOptions, TrustRoots};
use sansmq_e2e::scenario::{ScenarioClient, connect_error, connected};
use sansmq_e2e::{HttpProxy, Mosquitto, PATIENCE, TestPki};

use common::options;

macro_rules! http_proxy_scenarios_for {
    ($driver:ident: $client:ty) => {
        sansmq_e2e::scenario_tests!($driver: $client =>
            reaches_the_broker_through_an_http_proxy_by_its_name,
            a_basic_login_is_sent_and_a_wrong_one_is_a_clear_407_error,
            a_proxy_that_cannot_reach_the_broker_is_a_clear_502_error,
            tls_through_the_http_proxy_checks_the_brokers_name,
            the_proxy_comes_from_the_environment_only_when_asked,
        );
    };
}

http_proxy_scenarios_for!(mio: sansmq_e2e::scenario::MioClient);
http_proxy_scenarios_for!(tokio: sansmq_e2e::scenario::TokioClient);

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
