//! The mio client speaks TLS to mosquitto's TLS listener: it trusts the right CA (from a file or a
//! directory), refuses a wrong CA and a certificate for another name with an error that says so,
//! presents a client certificate for mutual TLS (its key plain or encrypted by OpenSSL), offers
//! ALPN protocols, and takes a whole rustls configuration.

mod common;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{AlpnOffer, AlpnProbe, FaultProxy, Mosquitto, TestPki};
use sansmq_mio::{Client, Error, KeyProblem, TlsOptions, TrustRoots};

use common::{PATIENCE, Recorder, options};

fn trusting(ca: &std::path::Path) -> TlsOptions {
    TlsOptions::new().roots(TrustRoots::CaFile(ca.to_owned()))
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
    let with_certificate = TlsOptions::new()
        .roots(TrustRoots::CaFile(pki.ca_pem_path().to_owned()))
        .client_auth(pki.client_cert_pem_path(), pki.client_key_pem_path());
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

/// Trusting the test CA, presenting the client certificate with `key`.
fn mutual(pki: &TestPki, key: &std::path::Path) -> TlsOptions {
    trusting(pki.ca_pem_path()).client_auth(pki.client_cert_pem_path(), key)
}

#[test]
fn mutual_tls_with_an_encrypted_pkcs8_key_aes_or_des3() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();
    for cipher in ["aes-256-cbc", "des3"] {
        let key = pki.encrypted_client_key(cipher, "open sesame");
        let tls = mutual(pki, &key).key_password("open sesame");
        let client = Client::new(options(&broker.tls_url(), cipher).tls(tls)).unwrap();
        client.connect().unwrap();
        client
            .publish("encrypted", cipher, QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
        client.disconnect(Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn an_encrypted_key_without_a_password_says_so() {
    let pki = TestPki::generate();
    let key = pki.encrypted_client_key("aes-256-cbc", "open sesame");
    let error = Client::new(options("ssl://127.0.0.1:8883", "forgetful").tls(mutual(&pki, &key)))
        .unwrap_err();
    println!("no password: {error}");
    assert!(
        matches!(&error, Error::ClientKey { problem: KeyProblem::PasswordNeeded, path } if path.contains("client-aes-256-cbc.key")),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("encrypted") && message.contains("password"),
        "{message}"
    );
    assert!(!message.contains("no items found"), "{message}");
}

#[test]
fn a_wrong_key_password_is_refused_without_showing_it() {
    let pki = TestPki::generate();
    for cipher in ["aes-256-cbc", "des3"] {
        let key = pki.encrypted_client_key(cipher, "open sesame");
        let tls = mutual(&pki, &key).key_password("close sesame");
        let error = Client::new(options("ssl://127.0.0.1:8883", "wrong").tls(tls)).unwrap_err();
        println!("wrong password: {error}");
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
}

#[test]
fn alpn_protocols_are_offered_and_negotiated() {
    let pki = TestPki::generate();
    let probe = AlpnProbe::start(&pki, &[b"x-amzn-mqtt-ca"]);
    let tls = trusting(pki.ca_pem_path()).alpn(["mqtt", "x-amzn-mqtt-ca"]);
    let client = Client::new(options(&probe.url(), "aws").tls(tls)).unwrap();
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();
    assert_eq!(
        probe.offers(),
        [AlpnOffer {
            offered: vec![b"mqtt".to_vec(), b"x-amzn-mqtt-ca".to_vec()],
            negotiated: Some(b"x-amzn-mqtt-ca".to_vec()),
        }]
    );

    // Offering nothing the server speaks ends the handshake with TLS's own alert.
    let tls = trusting(pki.ca_pem_path()).alpn(["mqtt"]);
    let client = Client::new(options(&probe.url(), "unheard").tls(tls)).unwrap();
    let error = client.connect().unwrap_err();
    println!("no protocol in common: {error}");
    assert!(
        matches!(&error, Error::Tls(m) if m.contains("NoApplicationProtocol")),
        "{error:?}"
    );

    // By default no ALPN is offered at all.
    let client =
        Client::new(options(&probe.url(), "plain").tls(trusting(pki.ca_pem_path()))).unwrap();
    let _ = client.connect();
    assert!(
        probe.offers().last().unwrap().offered.is_empty(),
        "{:?}",
        probe.offers()
    );
}

#[test]
fn capath_trusts_the_ca_certificates_in_a_directory() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Several CA files, something that is not a certificate, and a subdirectory.
    std::fs::write(dir.path().join("other.pem"), pki.wrong_ca_pem()).unwrap();
    std::fs::write(dir.path().join("README"), "CA certificates for the tests\n").unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    let only_wrong = TlsOptions::new().roots(TrustRoots::CaDir(dir.path().to_owned()));
    let client = Client::new(options(&broker.tls_url(), "capath-wrong").tls(only_wrong)).unwrap();
    common::assert_unknown_issuer(&client.connect().unwrap_err());

    std::fs::write(dir.path().join("test-ca.crt"), pki.ca_pem()).unwrap();
    let with_ca = TlsOptions::new().roots(TrustRoots::CaDir(dir.path().to_owned()));
    let client = Client::new(options(&broker.tls_url(), "capath").tls(with_ca)).unwrap();
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();

    let empty = tempfile::tempdir().unwrap();
    let error = Client::new(
        options(&broker.tls_url(), "capath-empty")
            .tls(TlsOptions::new().roots(TrustRoots::CaDir(empty.path().to_owned()))),
    )
    .unwrap_err();
    assert!(
        matches!(&error, Error::Tls(m) if m.contains("no usable CA certificate")),
        "{error:?}"
    );
}

#[test]
fn a_custom_rustls_config_is_used_as_it_is() {
    let pki = TestPki::generate();
    let probe = AlpnProbe::start(&pki, &[]);
    let config = pki.custom_client_config(&[b"custom"]);

    let client =
        Client::new(options(&probe.url(), "custom").tls(TlsOptions::custom(config.clone())))
            .unwrap();
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();
    // `alpn` on a custom configuration replaces its list.
    let tls = TlsOptions::custom(config).alpn(["replaced"]);
    let client = Client::new(options(&probe.url(), "custom-alpn").tls(tls)).unwrap();
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();
    let offered: Vec<_> = probe
        .offers()
        .into_iter()
        .map(|offer| offer.offered)
        .collect();
    assert_eq!(
        offered,
        [vec![b"custom".to_vec()], vec![b"replaced".to_vec()]]
    );
}
