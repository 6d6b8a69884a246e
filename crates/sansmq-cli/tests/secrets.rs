//! No error, warning or debug line of `sansmq` shows a password, an AccessKey secret, a token or a
//! key password: every error path this file can reach is run, and its stdout and stderr (with
//! `-d`, debug logging included) are searched for the secret.

mod common;

use std::process::Command;

use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, TokenKind};
use sansmq_e2e::{Mosquitto, free_port};

use common::{Outcome, run_with_input, sansmq};

/// What every secret in this file contains; no output may.
const SECRET: &str = "S3CRET-do-not-print";

/// The ApsaraMQ instance of the local broker.
const INSTANCE: &str = "mqtt-secrets";

/// An AccessKey id the local broker knows, with another secret than [`SECRET`].
const KEY_ID: &str = "LTAI-secrets";

/// Runs `command` with `-d` added after the subcommand when `debug`, and checks that nothing it
/// printed holds [`SECRET`], that it failed, and that it said why in one line.
fn assert_fails_without_the_secret(what: &str, mut command: Command) -> Outcome {
    let outcome = run_with_input(
        {
            command.env("RUST_LOG", "trace");
            command
        },
        b"",
    );
    let everything = format!("{}{}", outcome.stdout, outcome.stderr);
    assert!(
        !everything.contains(SECRET) && !everything.contains("S3CRET"),
        "{what} printed the secret:\n{everything}"
    );
    assert_ne!(outcome.code, Some(0), "{what} succeeded: {outcome:#?}");
    assert!(
        outcome
            .errors()
            .iter()
            .any(|l| l.starts_with("sansmq: error: ")),
        "{what} said nothing: {outcome:#?}"
    );
    outcome
}

/// `sansmq args...`, and the same with `-d` (debug logging at trace level).
fn both_ways(args: &[&str]) -> [Command; 2] {
    let mut debug = args.to_vec();
    debug.insert(0, "-d");
    [sansmq(args), sansmq(&debug)]
}

fn apsaramq_broker() -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(KEY_ID, "the-real-secret")
        .token(KEY_ID, TokenKind::ReadWrite, "the-real-token");
    sansmq_broker::start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .expect("the broker starts")
}

#[test]
fn bad_urls_never_show_their_password() {
    let closed = free_port().to_string();
    let urls = [
        format!("mqtt://user:{SECRET}@host:99999/t"),
        format!("mqtt://user:{SECRET}@host:0/t"),
        format!("mqtt://user:{SECRET}@host:x/t"),
        format!("mqtt://user:{SECRET}@host:1883:1884/t"),
        format!("mqtt://user:{SECRET}@/t"),
        format!("mqtt://user:{SECRET}@[::1/t"),
        format!("mqtt://user:{SECRET}/with/slashes@host:99999/t"),
        format!("http://user:{SECRET}@host/t"),
        format!("ws://user:{SECRET}@host:80/t"),
        format!("user:{SECRET}@host/t"),
        format!("mqtt://user:my {SECRET}@host:99999/t"),
        format!("mqtt://user:{SECRET}\"quoted@host:99999/t"),
        // Well formed, but nothing listens there.
        format!("mqtt://user:{SECRET}@127.0.0.1:{closed}/t"),
    ];
    for url in &urls {
        for command in both_ways(&["pub", "-L", url, "-m", "x"]) {
            assert_fails_without_the_secret(url, command);
        }
        let [sub, _] = both_ways(&["sub", "-L", url, "-W", "5"]);
        assert_fails_without_the_secret(url, sub);
    }
    // The demo takes a URI of its own.
    let mut demo = sansmq(&[
        "demo",
        "--broker",
        &format!("tcp://user:{SECRET}@127.0.0.1:{closed}"),
        "--instance",
        INSTANCE,
    ]);
    demo.env("MQTT_AK_ENV", KEY_ID).env("MQTT_SK_ENV", "x");
    assert_fails_without_the_secret("demo --broker", demo);
}

#[test]
fn wrong_passwords_against_a_real_broker_are_not_shown() {
    let broker = Mosquitto::builder().user("alice", "right").start();
    let port = broker.port().to_string();
    for command in both_ways(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-u",
        "alice",
        "-P",
        SECRET,
        "-t",
        "t",
        "-m",
        "x",
    ]) {
        let outcome = assert_fails_without_the_secret("-u/-P", command);
        assert_eq!(outcome.code, Some(5), "{outcome:#?}");
    }
    let url = format!("mqtt://alice:{SECRET}@127.0.0.1:{port}/t");
    for command in both_ways(&["sub", "-L", &url, "-W", "5"]) {
        assert_fails_without_the_secret("-L with a wrong password", command);
    }
    // -P without -u.
    let [command, _] = both_ways(&["pub", "-p", &port, "-P", SECRET, "-t", "t", "-m", "x"]);
    assert_fails_without_the_secret("-P without -u", command);
}

#[test]
fn broker_access_key_mistakes_are_not_shown() {
    for key in [
        SECRET.to_owned(),
        format!(":{SECRET}"),
        format!("{SECRET}:"),
    ] {
        let command = sansmq(&[
            "broker",
            "--bind",
            "127.0.0.1:0",
            "--apsaramq",
            INSTANCE,
            "--access-key",
            &key,
        ]);
        let outcome = assert_fails_without_the_secret("broker --access-key", command);
        assert!(
            outcome.error_line().contains("--access-key"),
            "{outcome:#?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("# keys\n{SECRET}\n")).unwrap();
    let command = sansmq(&[
        "broker",
        "--bind",
        "127.0.0.1:0",
        "--apsaramq",
        INSTANCE,
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert_fails_without_the_secret("broker --keys", command);
}

#[test]
fn apsaramq_secrets_and_tokens_are_not_shown() {
    let broker = apsaramq_broker();
    let port = broker.local_addr().port().to_string();
    let login = |extra: &[&str], secret: &str| {
        let args = [
            &[
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--apsaramq-instance",
                INSTANCE,
                "-i",
                "GID_s@@@d1",
                "-t",
                "parent/x",
                "-m",
                "x",
            ][..],
            extra,
        ]
        .concat();
        both_ways(&args).map(|mut command| {
            command
                .env("MQTT_AK_ENV", KEY_ID)
                .env("MQTT_SK_ENV", secret);
            command
        })
    };
    // A Signature made with a wrong secret, and a secret the environment padded.
    for command in login(&[], SECRET) {
        assert_fails_without_the_secret("wrong AccessKey secret", command);
    }
    for command in login(&[], &format!(" {SECRET}\n")) {
        assert_fails_without_the_secret("padded AccessKey secret", command);
    }
    // Tokens: unknown, of a wrong type, malformed.
    for token in [
        format!("RW={SECRET}"),
        format!("X={SECRET}"),
        format!("R={SECRET}|more"),
        SECRET.to_owned(),
    ] {
        for command in login(&["--token", &token], "unused") {
            assert_fails_without_the_secret("--token", command);
        }
    }
    // The Token login without the AccessKey id.
    let [mut command, _] = login(&["--token", &format!("RW={SECRET}")], "unused");
    command.env_remove("MQTT_AK_ENV");
    assert_fails_without_the_secret("--token without MQTT_AK_ENV", command);
}

#[test]
fn tls_key_password_mistakes_are_not_shown() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();
    let port = broker.tls_port().to_string();
    let encrypted = pki.encrypted_client_key("aes-256-cbc", "the-real-password");
    let [ca, cert, plain] = [
        pki.ca_pem_path(),
        pki.client_cert_pem_path(),
        pki.client_key_pem_path(),
    ]
    .map(|p| p.to_str().unwrap().to_owned());
    let encrypted = encrypted.to_str().unwrap();
    let tls = |key: &str, extra: &[&str]| {
        let args = [
            &[
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--cafile",
                &ca,
                "--cert",
                &cert,
                "--key",
                key,
                "-t",
                "t",
                "-m",
                "x",
            ][..],
            extra,
        ]
        .concat();
        both_ways(&args)
    };
    for command in tls(encrypted, &["--keypass", SECRET]) {
        let outcome = assert_fails_without_the_secret("a wrong --keypass", command);
        assert!(
            outcome.error_line().contains("does not decrypt"),
            "{outcome:#?}"
        );
    }
    for command in tls(encrypted, &[]) {
        let outcome = assert_fails_without_the_secret("no --keypass", command);
        assert!(outcome.error_line().contains("--keypass"), "{outcome:#?}");
    }
    // --keypass needs --key.
    let [command, _] = both_ways(&[
        "pub",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--keypass",
        SECRET,
        "-t",
        "t",
        "-m",
        "x",
    ]);
    assert_fails_without_the_secret("--keypass without --key", command);
    // The plain key with a password given: works, as with OpenSSL (the password is unused).
    let [command, _] = tls(&plain, &["--keypass", SECRET]);
    let outcome = run_with_input(command, b"");
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(!format!("{}{}", outcome.stdout, outcome.stderr).contains(SECRET));
}

#[test]
fn command_line_refusals_do_not_echo_secret_values() {
    for args in [
        vec![
            "broker".to_owned(),
            "--access-key".to_owned(),
            format!("id:{SECRET}"),
        ],
        vec![
            "pub".to_owned(),
            "--keypass".to_owned(),
            SECRET.to_owned(),
            "-t".to_owned(),
            "t".to_owned(),
        ],
        vec![
            "pub".to_owned(),
            "-u".to_owned(),
            "u".to_owned(),
            "-P".to_owned(),
            SECRET.to_owned(),
            "-P".to_owned(),
            SECRET.to_owned(),
        ],
        vec![
            "pub".to_owned(),
            format!("--pw={SECRET}"),
            "--bogus".to_owned(),
        ],
        vec![
            "sub".to_owned(),
            "--apsaramq-instance".to_owned(),
            INSTANCE.to_owned(),
            "--token".to_owned(),
            format!("RW={SECRET}|x"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_fails_without_the_secret(&args.join(" ").replace(SECRET, "<secret>"), sansmq(&args));
    }
}
