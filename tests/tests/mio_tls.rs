//! The mio client speaks TLS to mosquitto's TLS listener: it trusts the right CA, refuses a wrong
//! CA and a certificate for another name with an error that says so, and presents a client
//! certificate for mutual TLS.

mod common;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto, TestPki};
use sansmq_mio::{Client, Error, TlsOptions, TrustRoots};

use common::{PATIENCE, Recorder, options};

fn trusting(ca: &std::path::Path) -> TlsOptions {
    TlsOptions {
        roots: TrustRoots::CaFile(ca.to_owned()),
        client_auth: None,
    }
}

#[test]
fn connects_with_the_right_ca_and_messages_go_both_ways() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let client =
        Client::new(options(&broker.tls_url(), "secure").tls(trusting(pki.ca_pem_path()))).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    assert!(!client.connect().unwrap());
    assert_eq!(events.connected(PATIENCE), Some((false, broker.tls_url())));
    client.subscribe(&[("secure/#", QoS::ExactlyOnce)]).unwrap();

    // Enough data to take many TLS records each way, at every QoS.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("secure/big", payload.clone(), qos, false)
            .unwrap()
            .wait()
            .unwrap();
        let message = events.message(PATIENCE).expect("the message back");
        assert!(message.payload == payload, "payload changed at {qos:?}");
    }
    let tokens: Vec<_> = (0..300u32)
        .map(|n| {
            client
                .publish("secure/small", n.to_string(), QoS::AtLeastOnce, false)
                .unwrap()
        })
        .collect();
    for token in &tokens {
        token.wait().unwrap();
    }
    for n in 0..300u32 {
        let message = events.message(PATIENCE).expect("every small message");
        assert_eq!(message.payload, n.to_string().as_bytes());
    }
    client.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn localhost_matches_the_certificate_too() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let uri = format!("ssl://localhost:{}", broker.tls_port());
    let client = Client::new(options(&uri, "by-name").tls(trusting(pki.ca_pem_path()))).unwrap();
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_wrong_ca_is_a_tls_error_naming_the_unknown_issuer() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let client = Client::new(
        options(&broker.tls_url(), "suspicious").tls(trusting(pki.wrong_ca_pem_path())),
    )
    .unwrap();
    let error = client.connect().unwrap_err();
    println!("wrong CA: {error}");
    common::assert_unknown_issuer(&error);
    assert!(!client.is_connected());
}

#[test]
fn a_certificate_for_another_name_is_a_tls_error_naming_the_name() {
    let broker = Mosquitto::builder()
        .tls_with(TestPki::with_server_names(&["broker.invalid"]))
        .start();
    let pki = broker.pki().unwrap();
    let client =
        Client::new(options(&broker.tls_url(), "misdirected").tls(trusting(pki.ca_pem_path())))
            .unwrap();
    let error = client.connect().unwrap_err();
    println!("wrong host name: {error}");
    common::assert_wrong_name(&error);
}

#[test]
fn plain_tcp_to_a_tls_listener_fails_rather_than_hangs() {
    let broker = Mosquitto::builder().tls().start();
    let uri = format!("tcp://127.0.0.1:{}", broker.tls_port());
    let client =
        Client::new(options(&uri, "confused").connect_timeout(Duration::from_secs(3))).unwrap();
    let error = client.connect().unwrap_err();
    assert!(
        matches!(
            error,
            Error::Io { .. } | Error::ConnectionLost(_) | Error::Timeout(_)
        ),
        "{error:?}"
    );
}

#[test]
fn a_missing_ca_file_is_refused_when_the_client_is_made() {
    let error = Client::new(
        options("ssl://127.0.0.1:8883", "careless")
            .tls(trusting(std::path::Path::new("/no/such/ca.pem"))),
    )
    .unwrap_err();
    match &error {
        Error::Tls(message) => assert!(message.contains("/no/such/ca.pem"), "{message}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();
    let with_certificate = TlsOptions {
        roots: TrustRoots::CaFile(pki.ca_pem_path().to_owned()),
        client_auth: Some((
            pki.client_cert_pem_path().to_owned(),
            pki.client_key_pem_path().to_owned(),
        )),
    };
    let client = Client::new(options(&broker.tls_url(), "mutual").tls(with_certificate)).unwrap();
    client.connect().unwrap();
    client
        .publish("mutual", "hello", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();

    // Without one, the broker ends the handshake.
    let anonymous =
        Client::new(options(&broker.tls_url(), "anonymous").tls(trusting(pki.ca_pem_path())))
            .unwrap();
    let error = anonymous.connect().unwrap_err();
    println!("no client certificate: {error}");
    assert!(
        matches!(
            error,
            Error::Tls(_) | Error::Io { .. } | Error::ConnectionLost(_)
        ),
        "{error:?}"
    );
}

#[test]
fn tls_survives_a_cut_and_reconnects() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let proxy = FaultProxy::start(broker.tls_addr());
    let client = Client::new(
        options(&proxy.tls_url(), "resilient")
            .tls(trusting(pki.ca_pem_path()))
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500)),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    assert!(events.connected(PATIENCE).is_some());
    proxy.cut();
    assert_eq!(events.connected(PATIENCE), Some((true, proxy.tls_url())));
    client.subscribe(&[("back", QoS::AtLeastOnce)]).unwrap();
    client
        .publish("back", "again", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(&events.message(PATIENCE).unwrap().payload[..], b"again");
}
