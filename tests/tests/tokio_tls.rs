//! The async client speaks TLS (tokio-rustls, ring) to mosquitto's TLS listener: it trusts the
//! right CA (from a file or a directory), refuses a wrong CA and a certificate for another name
//! with errors that say so, presents a client certificate for mutual TLS (its key plain or
//! encrypted by OpenSSL), offers ALPN protocols, takes a whole rustls configuration, and
//! reconnects over TLS after a cut.

mod common;
mod common_async;

use std::path::Path;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{AlpnOffer, AlpnProbe, FaultProxy, Mosquitto, TestPki};
use sansmq_tokio::{Client, Error, KeyProblem, TlsOptions, TrustRoots};

use common::{PATIENCE, options};
use common_async::{connected, lost, message};

fn trusting(ca: &Path) -> TlsOptions {
    TlsOptions::new().roots(TrustRoots::CaFile(ca.to_owned()))
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
    let with_certificate = TlsOptions::new()
        .roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()))
        .client_auth(pki.client_cert_pem_path(), pki.client_key_pem_path());
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

/// Trusting the test CA, presenting the client certificate with `key`.
fn mutual(pki: &TestPki, key: &Path) -> TlsOptions {
    trusting(pki.ca_pem_path()).client_auth(pki.client_cert_pem_path(), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_an_encrypted_pkcs8_key_aes_or_des3() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();
    for cipher in ["aes-128-cbc", "des3"] {
        let key = pki.encrypted_client_key(cipher, "open sesame");
        let tls = mutual(pki, &key).key_password("open sesame");
        let (client, _events) = Client::new(options(&broker.tls_url(), cipher).tls(tls)).unwrap();
        client.connect().await.unwrap();
        client
            .publish("encrypted", cipher, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        client.disconnect(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_key_mistakes_say_what_is_wrong_without_the_password() {
    let pki = TestPki::generate();
    let key = pki.encrypted_client_key("aes-256-cbc", "open sesame");
    let error = Client::new(options("ssl://127.0.0.1:8883", "forgetful").tls(mutual(&pki, &key)))
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::ClientKey {
                problem: KeyProblem::PasswordNeeded,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("encrypted"), "{error}");
    let tls = mutual(&pki, &key).key_password("close sesame");
    let error = Client::new(options("ssl://127.0.0.1:8883", "wrong").tls(tls)).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::ClientKey {
                problem: KeyProblem::WrongPassword,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !format!("{error} {error:?}").contains("sesame"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_protocols_are_offered_and_negotiated() {
    let pki = TestPki::generate();
    let probe = AlpnProbe::start(&pki, &[b"x-amzn-mqtt-ca"]);
    let tls = trusting(pki.ca_pem_path()).alpn(["mqtt", "x-amzn-mqtt-ca"]);
    let (client, _events) = Client::new(options(&probe.url(), "aws").tls(tls)).unwrap();
    client.connect().await.unwrap();
    client.disconnect(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        probe.offers(),
        [AlpnOffer {
            offered: vec![b"mqtt".to_vec(), b"x-amzn-mqtt-ca".to_vec()],
            negotiated: Some(b"x-amzn-mqtt-ca".to_vec()),
        }]
    );
    let tls = trusting(pki.ca_pem_path()).alpn(["mqtt"]);
    let (client, _events) = Client::new(options(&probe.url(), "unheard").tls(tls)).unwrap();
    let error = client.connect().await.unwrap_err();
    assert!(
        matches!(&error, Error::Tls(m) if m.contains("NoApplicationProtocol")),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capath_trusts_the_ca_certificates_in_a_directory() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.pem"), pki.wrong_ca_pem()).unwrap();
    std::fs::write(dir.path().join("test-ca.crt"), pki.ca_pem()).unwrap();
    let tls = TlsOptions::new().roots(TrustRoots::CaDir(dir.path().to_owned()));
    let (client, _events) = Client::new(options(&broker.tls_url(), "capath").tls(tls)).unwrap();
    client.connect().await.unwrap();
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_rustls_config_is_used_as_it_is() {
    let pki = TestPki::generate();
    let probe = AlpnProbe::start(&pki, &[]);
    let tls = TlsOptions::custom(pki.custom_client_config(&[b"custom"]));
    let (client, _events) = Client::new(options(&probe.url(), "custom").tls(tls)).unwrap();
    client.connect().await.unwrap();
    client.disconnect(Duration::from_secs(5)).await.unwrap();
    assert_eq!(probe.offers()[0].offered, [b"custom".to_vec()]);
}
