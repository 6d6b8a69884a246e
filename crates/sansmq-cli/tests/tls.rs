//! `sansmq pub`'s TLS flags against mosquitto and a TLS endpoint that records ALPN: --cafile or
//! --capath, --cert/--key with --keypass for a key OpenSSL encrypted, and --tls-alpn.

mod common;

use sansmq_e2e::{AlpnProbe, Mosquitto, TestPki};

use common::run;

#[test]
fn an_encrypted_key_with_keypass_and_a_capath_make_mutual_tls() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();
    let port = broker.tls_port().to_string();
    let capath = tempfile::tempdir().unwrap();
    std::fs::write(capath.path().join("ca.pem"), pki.ca_pem()).unwrap();
    std::fs::write(capath.path().join("other.pem"), pki.wrong_ca_pem()).unwrap();
    let cert = pki.client_cert_pem_path().to_str().unwrap();
    for cipher in ["aes-256-cbc", "des3"] {
        let key = pki.encrypted_client_key(cipher, "pw");
        let args = |extra: &[&'static str]| -> Vec<&str> {
            let base = [
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--capath",
                capath.path().to_str().unwrap(),
                "--cert",
                cert,
                "--key",
                key.to_str().unwrap(),
                "-t",
                "t",
                "-m",
                cipher,
                "-q",
                "1",
            ];
            [&base[..], extra].concat()
        };
        let published = run(&args(&["--keypass", "pw"]));
        assert_eq!(published.code, Some(0), "{cipher}: {published:#?}");

        let without = run(&args(&[]));
        let line = without.error_line();
        assert!(
            line.contains("encrypted") && line.contains("--keypass"),
            "{line}"
        );
        assert!(line.contains(&format!("client-{cipher}.key")), "{line}");
        assert_eq!(without.code, Some(1));
    }
}

#[test]
fn tls_alpn_offers_the_protocol() {
    let pki = TestPki::generate();
    let probe = AlpnProbe::start(&pki, &[b"x-amzn-mqtt-ca"]);
    let port = probe.url().rsplit(':').next().unwrap().to_owned();
    let published = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        pki.ca_pem_path().to_str().unwrap(),
        "--tls-alpn",
        "x-amzn-mqtt-ca",
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let offers = probe.offers();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(
        offers[0].negotiated.as_deref(),
        Some(&b"x-amzn-mqtt-ca"[..])
    );

    // --alpn is the same flag; a protocol the server does not speak ends the handshake.
    let refused = run(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        pki.ca_pem_path().to_str().unwrap(),
        "--alpn",
        "mqtt",
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert!(
        refused.error_line().contains("NoApplicationProtocol"),
        "{refused:#?}"
    );
}

#[test]
fn cafile_and_capath_together_are_refused() {
    let outcome = run(&[
        "pub", "--cafile", "a.pem", "--capath", "dir", "-t", "t", "-m", "x",
    ]);
    let line = outcome.error_line();
    assert!(
        line.contains("--cafile") && line.contains("--capath"),
        "{line}"
    );
}

#[test]
fn a_host_with_a_port_in_it_is_refused_with_a_hint() {
    let outcome = run(&["pub", "-h", "broker:1883", "-t", "t", "-m", "x"]);
    let line = outcome.error_line();
    assert!(
        line.contains("broker:1883") && line.contains("-p"),
        "{line}"
    );
}

#[test]
fn tls_version_and_ciphers_choose_what_is_offered_as_mosquittos_flags_do() {
    // An endpoint that speaks TLS 1.2 with one cipher suite only.
    let pki = TestPki::generate();
    let probe = AlpnProbe::start_restricted(
        &pki,
        &[],
        &[&rustls::version::TLS12],
        &[rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
    );
    let url = probe.url().replace("ssl://", "mqtts://") + "/t";
    let ca = pki.ca_pem_path().to_str().unwrap().to_owned();
    let publish = |extra: &[&str]| {
        let mut args = vec!["pub", "-L", &url, "--cafile", &ca, "-m", "x"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let matching = publish(&[
        "--ciphers",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "--tls-version",
        "tlsv1.2",
    ]);
    assert_eq!(matching.code, Some(0), "{matching:#?}");
    // Offered only other suites, or only TLS 1.3, the handshake fails: 8, as mosquitto_pub.
    let other = publish(&[
        "--ciphers",
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
    ]);
    assert_eq!(other.code, Some(8), "{other:#?}");
    let tls13 = publish(&["--tls-version", "tlsv1.3"]);
    assert_eq!(tls13.code, Some(8), "{tls13:#?}");

    let keyword = publish(&["--ciphers", "HIGH:!aNULL"]);
    assert_eq!(keyword.code, Some(1), "{keyword:#?}");
    assert!(
        keyword.error_line().contains("ECDHE-RSA-AES128-GCM-SHA256"),
        "{keyword:#?}"
    );
    for refused in [
        &["--psk", "deadbeef", "--psk-identity", "me"][..],
        &["--tls-engine", "pkcs11"],
    ] {
        let outcome = publish(refused);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert!(outcome.error_line().contains("rustls"), "{outcome:#?}");
    }
}
