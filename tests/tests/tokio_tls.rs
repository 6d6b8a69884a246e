//! The async client speaks TLS (tokio-rustls, ring) to mosquitto's TLS listener: it trusts the
//! right CA, and refuses a wrong CA and a certificate for another name with errors that say so.

mod common;
mod common_async;

use std::path::Path;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{Mosquitto, TestPki};
use sansmq_tokio::{Client, Error, TlsOptions, TrustRoots};

use common::{PATIENCE, options};
use common_async::message;

fn trusting(ca: &Path) -> TlsOptions {
    TlsOptions {
        roots: TrustRoots::CaFile(ca.to_owned()),
        client_auth: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_with_the_right_ca_and_messages_go_both_ways() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let (client, mut events) =
        Client::new(options(&broker.tls_url(), "secure").tls(trusting(pki.ca_pem_path()))).unwrap();
    assert!(!client.connect().await.unwrap());
    client
        .subscribe(&[("secure/#", QoS::ExactlyOnce)])
        .await
        .unwrap();
    // Enough data to take many TLS records each way, at every QoS.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("secure/big", payload.clone(), qos, false)
            .await
            .unwrap();
        let got = message(&mut events, PATIENCE)
            .await
            .expect("the message back");
        assert!(got.payload == payload, "payload changed at {qos:?}");
    }
    let mut handles = Vec::new();
    for n in 0..300u32 {
        handles.push(
            client
                .publish_later("secure/small", n.to_string(), QoS::AtLeastOnce, false)
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await.unwrap();
    }
    for n in 0..300u32 {
        let got = message(&mut events, PATIENCE)
            .await
            .expect("every small message");
        assert_eq!(got.payload, n.to_string().as_bytes());
    }
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_tls_error_naming_the_unknown_issuer() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let (client, _events) = Client::new(
        options(&broker.tls_url(), "suspicious").tls(trusting(pki.wrong_ca_pem_path())),
    )
    .unwrap();
    let error = client.connect().await.unwrap_err();
    println!("wrong CA: {error}");
    match &error {
        Error::Tls(message) => assert!(
            message.contains("UnknownIssuer") || message.to_lowercase().contains("unknown issuer"),
            "{message}"
        ),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(!client.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_a_tls_error_naming_the_name() {
    let broker = Mosquitto::builder()
        .tls_with(TestPki::with_server_names(&["broker.invalid"]))
        .start();
    let pki = broker.pki().unwrap();
    let (client, _events) =
        Client::new(options(&broker.tls_url(), "misdirected").tls(trusting(pki.ca_pem_path())))
            .unwrap();
    let error = client.connect().await.unwrap_err();
    println!("wrong host name: {error}");
    match &error {
        Error::Tls(message) => {
            assert!(message.contains("not valid for name"), "{message}");
            assert!(message.contains("127.0.0.1"), "{message}");
            assert!(message.contains("broker.invalid"), "{message}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_to_a_tls_listener_fails_rather_than_hangs() {
    let broker = Mosquitto::builder().tls().start();
    let uri = format!("tcp://127.0.0.1:{}", broker.tls_port());
    let (client, _events) =
        Client::new(options(&uri, "confused").connect_timeout(Duration::from_secs(3))).unwrap();
    let started = std::time::Instant::now();
    let error = client.connect().await.unwrap_err();
    println!("plain TCP to TLS: {error}");
    assert!(started.elapsed() < Duration::from_secs(8), "{error}");
}
