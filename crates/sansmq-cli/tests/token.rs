//! `sansmq token apply|query|revoke` against the harness's OpenAPI stub, which here checks each
//! request's signature as the service does: what goes to stdout and stderr, exit codes, and
//! that no secret is shown; then a token's life against the local broker's OpenAPI.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sansmq_apsaramq::openapi::signature;
use sansmq_broker::{ApsaraMqMode, BrokerConfig};
use sansmq_e2e::{OpenApiRequest, serve_openapi, serve_silence, signature_mismatch};

use common::{Outcome, run_with_input, sansmq};

const KEY_ID: &str = "LTAI5tCliKey";
const SECRET: &str = "cli-secret-value";
const INSTANCE: &str = "mqtt-cn-cli";
const TOKEN: &str = "LzMT+XLFl5s/YWJ/MlDz4t/Lq5HC1iGU1P28HAMaxYxn8aQbALNtml7QZKl9L9kPe6LqUb95tEVo+zUqOogs1q5EBxT8BlrE";

/// The harness's OpenAPI stub on 127.0.0.1 for `connections` connections, answering
/// `SignatureDoesNotMatch` to a request not signed with [`SECRET`], else what `answer` says.
fn serve(
    connections: usize,
    answer: impl Fn(&OpenApiRequest) -> (u16, String) + Send + 'static,
) -> (String, JoinHandle<Vec<OpenApiRequest>>) {
    serve_openapi(connections, move |request| {
        if request.is_signed_with(SECRET) {
            answer(request)
        } else {
            signature_mismatch()
        }
    })
}

/// `sansmq token args...` with the AccessKey in the environment (`secret` for MQTT_SK_ENV).
fn token(args: &[&str], secret: &str) -> Command {
    let mut command = sansmq(&[&["token"], args].concat());
    command
        .env("MQTT_AK_ENV", KEY_ID)
        .env("MQTT_SK_ENV", secret)
        .env_remove("MQTT_OPENAPI_ENDPOINT")
        .env_remove("MQTT_INSTANCE_ID");
    command
}

fn run(command: Command) -> Outcome {
    run_with_input(command, b"")
}

/// No output shows the secret or the token (but `apply`'s stdout, which is the token).
fn assert_no_secrets(outcome: &Outcome) {
    for secret in [SECRET, TOKEN] {
        assert!(!outcome.stderr.contains(secret), "{outcome:#?}");
    }
}

#[test]
fn apply_prints_the_token_alone_on_stdout() {
    let (url, server) = serve(1, |request| {
        assert_eq!(request.param("Action"), Some("ApplyToken"));
        (200, format!(r#"{{"RequestId":"RID-A","Token":"{TOKEN}"}}"#))
    });
    let before = SystemTime::now();
    let outcome = run(token(
        &[
            "apply",
            "--endpoint",
            &url,
            "--instance",
            INSTANCE,
            "--resource",
            "parent/a",
            "--resource",
            "parent/b,parent/c",
            "--actions",
            "RW",
            "--expire-in",
            "2h",
        ],
        SECRET,
    ));
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert_eq!(outcome.stdout, format!("{TOKEN}\n"));
    assert!(outcome.stderr.contains("expires 20"), "{outcome:#?}");
    assert!(outcome.stderr.contains("(in 2h)"), "{outcome:#?}");
    assert!(outcome.stderr.contains("RID-A"), "{outcome:#?}");
    assert_no_secrets(&outcome);

    let received = server.join().unwrap();
    let request = &received[0];
    assert!(request.is_signed_with(SECRET));
    assert_eq!(request.param("AccessKeyId"), Some(KEY_ID));
    assert_eq!(request.param("InstanceId"), Some(INSTANCE));
    assert_eq!(
        request.param("Resources"),
        Some("parent/a,parent/b,parent/c")
    );
    assert_eq!(request.param("Actions"), Some("R,W"));
    let expire: u128 = request.param("ExpireTime").unwrap().parse().unwrap();
    let millis = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let two_hours = 2 * 3600 * 1000;
    assert!(expire >= millis(before) + two_hours, "{expire}");
    assert!(expire <= millis(SystemTime::now()) + two_hours, "{expire}");
}

#[test]
fn query_says_valid_or_invalid_with_its_exit_code() {
    let (url, server) = serve(2, |request| {
        let valid = request.param("Token") == Some(TOKEN);
        (200, format!(r#"{{"RequestId":"R","TokenStatus":{valid}}}"#))
    });
    let valid = run(token(
        &["query", "--endpoint", &url, "--instance", INSTANCE, TOKEN],
        SECRET,
    ));
    assert_eq!(
        (valid.code, valid.stdout.as_str()),
        (Some(0), "valid\n"),
        "{valid:#?}"
    );
    assert_eq!(valid.stderr, "");
    let invalid = run(token(
        &[
            "query",
            "--endpoint",
            &url,
            "--instance",
            INSTANCE,
            "revoked-token",
        ],
        SECRET,
    ));
    assert_eq!(
        (invalid.code, invalid.stdout.as_str()),
        (Some(1), "invalid\n"),
        "{invalid:#?}"
    );
    assert_eq!(invalid.stderr, "", "an answer is no error");
    assert!(
        server
            .join()
            .unwrap()
            .iter()
            .all(|r| r.is_signed_with(SECRET))
    );
}

#[test]
fn revoke_reads_the_token_from_stdin_and_prints_nothing() {
    let (url, server) = serve(1, |_| (200, r#"{"RequestId":"R"}"#.to_owned()));
    let mut command = token(&["revoke", "--instance", INSTANCE, "-"], SECRET);
    command.env("MQTT_OPENAPI_ENDPOINT", &url);
    let outcome = run_with_input(command, format!("{TOKEN}\n").as_bytes());
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert_eq!((outcome.stdout.as_str(), outcome.stderr.as_str()), ("", ""));
    let received = server.join().unwrap();
    assert_eq!(received[0].param("Action"), Some("RevokeToken"));
    assert_eq!(received[0].param("Token"), Some(TOKEN));
}

#[test]
fn the_access_key_id_may_come_from_the_command_line() {
    let (url, server) = serve(1, |_| (200, r#"{"RequestId":"R"}"#.to_owned()));
    let mut command = sansmq(&[
        "token",
        "revoke",
        "--endpoint",
        &url,
        "--instance",
        INSTANCE,
        "--access-key-id",
        "LTAI5tOther",
        TOKEN,
    ]);
    command.env_remove("MQTT_AK_ENV").env("MQTT_SK_ENV", SECRET);
    let outcome = run(command);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    let received = server.join().unwrap();
    assert!(received[0].is_signed_with(SECRET));
    assert_eq!(received[0].param("AccessKeyId"), Some("LTAI5tOther"));
}

#[test]
fn a_refusal_is_one_line_with_a_hint_and_exit_code_3() {
    let (url, server) = serve(1, |_| unreachable!("the signature is wrong"));
    let outcome = run(token(
        &["query", "--endpoint", &url, "--instance", INSTANCE, TOKEN],
        "a-wrong-secret",
    ));
    assert_eq!(outcome.code, Some(3), "{outcome:#?}");
    assert_eq!(outcome.stdout, "");
    let line = outcome.error_line();
    assert!(line.contains("SignatureDoesNotMatch (HTTP 400)"), "{line}");
    assert!(line.contains("check the AccessKey secret"), "{line}");
    assert!(line.contains("RID-SIG"), "{line}");
    assert!(!outcome.stderr.contains("a-wrong-secret"), "{outcome:#?}");
    assert_no_secrets(&outcome);
    assert!(!server.join().unwrap()[0].is_signed_with(SECRET));
}

#[test]
fn no_answer_exits_4_and_a_missing_setting_2() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}/");
    let outcome = run(token(
        &[
            "revoke",
            "--endpoint",
            &closed,
            "--instance",
            INSTANCE,
            TOKEN,
        ],
        SECRET,
    ));
    assert_eq!(outcome.code, Some(4), "{outcome:#?}");
    assert!(
        outcome.error_line().contains("cannot reach"),
        "{outcome:#?}"
    );
    assert_no_secrets(&outcome);

    let mut no_key = token(
        &[
            "revoke",
            "--endpoint",
            &closed,
            "--instance",
            INSTANCE,
            TOKEN,
        ],
        SECRET,
    );
    no_key.env_remove("MQTT_SK_ENV");
    let outcome = run(no_key);
    assert_eq!(outcome.code, Some(2), "{outcome:#?}");
    assert!(outcome.error_line().contains("MQTT_SK_ENV"), "{outcome:#?}");

    let outcome = run(token(&["revoke", "--instance", INSTANCE, TOKEN], SECRET));
    assert_eq!(outcome.code, Some(2), "{outcome:#?}");
    assert!(
        outcome.error_line().contains("--region REGION"),
        "{outcome:#?}"
    );

    let outcome = run(token(
        &[
            "apply",
            "--endpoint",
            &closed,
            "--instance",
            INSTANCE,
            "--resource",
            "t",
            "--actions",
            "R",
            "--expire-in",
            "31d",
        ],
        SECRET,
    ));
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("60s to 30d"), "{outcome:#?}");
}

#[test]
fn a_silent_server_times_out() {
    // Accepts, reads nothing, answers nothing, until the client gave up.
    let (url, server) = serve_silence(Duration::from_secs(3));
    let outcome = run(token(
        &[
            "query",
            "--endpoint",
            &url,
            "--instance",
            INSTANCE,
            "--timeout",
            "1",
            TOKEN,
        ],
        SECRET,
    ));
    assert_eq!(outcome.code, Some(4), "{outcome:#?}");
    assert!(outcome.error_line().contains("no answer"), "{outcome:#?}");
    assert!(outcome.elapsed < Duration::from_secs(3), "{outcome:#?}");
    server.join().unwrap();
}

#[test]
fn debug_logs_show_neither_token_nor_signature() {
    let (url, server) = serve(1, |_| {
        (200, r#"{"RequestId":"R","TokenStatus":true}"#.to_owned())
    });
    let mut command = token(
        &[
            "-d",
            "query",
            "--endpoint",
            &url,
            "--instance",
            INSTANCE,
            TOKEN,
        ],
        SECRET,
    );
    // The most the user can ask for: the HTTP client would trace the whole request.
    command.env("RUST_LOG", "trace");
    let outcome = run(command);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(
        outcome.stderr.contains("DEBUG"),
        "logging is on: {outcome:#?}"
    );
    assert_no_secrets(&outcome);
    let received = server.join().unwrap();
    let signature = received[0].param("Signature").unwrap();
    let encoded = signature::percent_encode(signature);
    for shown in [signature, encoded.as_str()] {
        assert!(!outcome.stderr.contains(shown), "{outcome:#?}");
    }
    // Nor in the hex dump of what was written: "Token=" and "Signature=" in hex.
    for hex in ["546f 6b65 6e3d", "5369 676e 6174 7572 653d"] {
        assert!(!outcome.stderr.contains(hex), "{outcome:#?}");
    }
}

/// `sansmq pub` of one QoS 1 message to `topic` through `port` with `token` (RW) for the login.
fn publish_with(port: u16, token: &str, topic: &str) -> Outcome {
    let port = port.to_string();
    let mut command = sansmq(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--apsaramq-instance",
        INSTANCE,
        "-i",
        "GID_cli@@@device-1",
        "-t",
        topic,
        "-m",
        "hello",
        "-q",
        "1",
        "--token",
        &format!("RW={token}"),
    ]);
    command.env("MQTT_AK_ENV", KEY_ID).env_remove("MQTT_SK_ENV");
    run(command)
}

#[test]
fn a_token_from_the_local_broker_logs_in_until_revoked() {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(KEY_ID, SECRET)
        .openapi_bind("127.0.0.1:0".parse().unwrap());
    let broker = sansmq_broker::start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .unwrap();
    let port = broker.local_addr().port();
    let endpoint = broker.openapi_url().unwrap();
    let with_endpoint = |args: &[&str], secret: &str| {
        let mut command = token(args, secret);
        command.env("MQTT_OPENAPI_ENDPOINT", &endpoint);
        command
    };

    let applied = run(with_endpoint(
        &[
            "apply",
            "--instance",
            INSTANCE,
            "--resource",
            "parent/#",
            "--actions",
            "RW",
            "--expire-in",
            "10m",
        ],
        SECRET,
    ));
    assert_eq!(applied.code, Some(0), "{applied:#?}");
    let issued = applied.stdout.trim_end().to_owned();
    assert!(!issued.is_empty() && !issued.contains('\n'), "{applied:#?}");
    assert!(!applied.stderr.contains(&issued), "{applied:#?}");

    let published = publish_with(port, &issued, "parent/a");
    assert_eq!(published.code, Some(0), "{published:#?}");
    let query = || {
        run(with_endpoint(
            &["query", "--instance", INSTANCE, &issued],
            SECRET,
        ))
    };
    let valid = query();
    assert_eq!(
        (valid.code, valid.stdout.as_str()),
        (Some(0), "valid\n"),
        "{valid:#?}"
    );

    // The broker checks the signature as the service does.
    let refused = run(with_endpoint(
        &["query", "--instance", INSTANCE, &issued],
        "wrong",
    ));
    assert_eq!(refused.code, Some(3), "{refused:#?}");
    assert!(
        refused.error_line().contains("SignatureDoesNotMatch"),
        "{refused:#?}"
    );
    assert!(!refused.stderr.contains(&issued), "{refused:#?}");

    let revoked = run(with_endpoint(
        &["revoke", "--instance", INSTANCE, &issued],
        SECRET,
    ));
    assert_eq!(
        (revoked.code, revoked.stdout.as_str()),
        (Some(0), ""),
        "{revoked:#?}"
    );
    // What `sansmq broker --apsaramq` tells to export is enough.
    let mut from_env = token(&["query", &issued], SECRET);
    from_env
        .env("MQTT_OPENAPI_ENDPOINT", &endpoint)
        .env("MQTT_INSTANCE_ID", INSTANCE);
    let invalid = run(from_env);
    assert_eq!(
        (invalid.code, invalid.stdout.as_str()),
        (Some(1), "invalid\n"),
        "{invalid:#?}"
    );
    let published = publish_with(port, &issued, "parent/a");
    // CONNACK 5, not authorised: the broker no longer knows the token.
    assert_eq!(published.code, Some(5), "{published:#?}");
    assert!(!published.stderr.contains(&issued), "{published:#?}");
    broker.shutdown();
}
