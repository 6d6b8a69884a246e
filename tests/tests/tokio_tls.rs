//! The async client speaks TLS (tokio-rustls, ring) to mosquitto's TLS listener: it trusts the
//! right CA, refuses a wrong CA and a certificate for another name with errors that say so,
//! presents a client certificate for mutual TLS, and reconnects over TLS after a cut.

mod common;
mod common_async;

use std::path::Path;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto, TestPki};
use sansmq_tokio::{Client, Error, TlsOptions, TrustRoots};

use common::{PATIENCE, options};
use common_async::{connected, lost, message};

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
    common::assert_unknown_issuer(&error);
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
    common::assert_wrong_name(&error);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
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
    let (client, mut events) =
        Client::new(options(&broker.tls_url(), "mutual").tls(with_certificate)).unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("mutual", QoS::AtLeastOnce)])
        .await
        .unwrap();
    client
        .publish("mutual", "hello", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = message(&mut events, PATIENCE)
        .await
        .expect("the message back");
    assert_eq!(&got.payload[..], b"hello");
    client.disconnect(Duration::from_secs(5)).await.unwrap();

    // Without one, the broker ends the handshake.
    let (anonymous, _events) =
        Client::new(options(&broker.tls_url(), "anonymous").tls(trusting(pki.ca_pem_path())))
            .unwrap();
    let error = anonymous.connect().await.unwrap_err();
    println!("no client certificate: {error}");
    assert!(
        matches!(
            error,
            Error::Tls(_) | Error::Io { .. } | Error::ConnectionLost(_)
        ),
        "{error:?}"
    );
    assert!(!anonymous.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_survives_a_cut_and_reconnects() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let proxy = FaultProxy::start(broker.tls_addr());
    let (client, mut events) = Client::new(
        options(&proxy.tls_url(), "resilient")
            .tls(trusting(pki.ca_pem_path()))
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500)),
    )
    .unwrap();
    client.connect().await.unwrap();
    assert_eq!(
        connected(&mut events, PATIENCE).await,
        Some((false, false, proxy.tls_url()))
    );
    assert_eq!(proxy.cut(), 1);
    let cause = lost(&mut events, PATIENCE)
        .await
        .expect("the loss reported");
    println!("cut: {cause}");
    let (reconnected, _, uri) = connected(&mut events, PATIENCE).await.expect("a reconnect");
    assert!(reconnected);
    assert_eq!(uri, proxy.tls_url());
    client
        .subscribe(&[("back", QoS::AtLeastOnce)])
        .await
        .unwrap();
    client
        .publish("back", "again", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = message(&mut events, PATIENCE)
        .await
        .expect("the message back");
    assert_eq!(&got.payload[..], b"again");
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}
