//! The OpenAPI client (`sansmq_apsaramq::openapi`) over real HTTP, against the harness's stub that checks each
//! request's signature as the service does and answers as it would.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sansmq_apsaramq::openapi::{
    ApplyToken, OpenApiClient, OpenApiEndpoint, OpenApiError, ServiceError,
};
use sansmq_apsaramq::{AccessKey, TokenType};
use sansmq_e2e::{serve_openapi as serve, serve_silence, signature_mismatch};

const KEY_ID: &str = "LTAI5tLocalKey";
const SECRET: &str = "local-secret";
const INSTANCE: &str = "mqtt-cn-local";
const TOKEN: &str = "LzMT+XLFl5s/YWJ/MlDz4t/Lq5HC1iGU1P28HAMaxYxn8aQbALNtml7QZKl9L9kPe6LqUb95tEVo+zUqOogs1q5EBxT8BlrE";

fn client(url: &str, secret: &str) -> OpenApiClient {
    OpenApiClient::new(
        AccessKey::new(KEY_ID, secret),
        OpenApiEndpoint::url(url).unwrap(),
    )
    .timeout(Duration::from_secs(5))
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[test]
fn apply_query_and_revoke_a_token() {
    // A service holding one token, valid until revoked.
    let revoked = Arc::new(Mutex::new(false));
    let (url, server) = serve(4, move |request| {
        if !request.is_signed_with(SECRET) {
            return signature_mismatch();
        }
        let mut revoked = revoked.lock().unwrap();
        match request.param("Action") {
            Some("ApplyToken") => (
                200,
                format!(r#"{{"RequestId":"RID-APPLY","Token":"{TOKEN}"}}"#),
            ),
            Some("QueryToken") => (
                200,
                format!(
                    r#"{{"RequestId":"RID-Q","TokenStatus":{}}}"#,
                    request.param("Token") == Some(TOKEN) && !*revoked
                ),
            ),
            Some("RevokeToken") => {
                *revoked = true;
                (200, r#"{"RequestId":"RID-R"}"#.to_owned())
            }
            _ => (
                400,
                r#"{"RequestId":"X","Code":"InvalidAction"}"#.to_owned(),
            ),
        }
    });
    let client = client(&url, SECRET);
    let expire_time = in_an_hour();
    let request = ApplyToken::new(
        INSTANCE,
        ["parent/a", "parent/b"],
        TokenType::RW,
        expire_time,
    );

    let issued = client.apply_token(&request).unwrap();
    assert_eq!(issued.token.value().expose(), TOKEN);
    assert_eq!(issued.token.kind(), TokenType::RW);
    assert_eq!(issued.request_id, "RID-APPLY");
    assert!(client.query_token(INSTANCE, TOKEN).unwrap());
    client.revoke_token(INSTANCE, TOKEN).unwrap();
    assert!(!client.query_token(INSTANCE, TOKEN).unwrap());

    let received = server.join().unwrap();
    let actions: Vec<_> = received
        .iter()
        .map(|r| r.param("Action").unwrap())
        .collect();
    assert_eq!(
        actions,
        ["ApplyToken", "QueryToken", "RevokeToken", "QueryToken"]
    );
    for request in &received {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/")
        );
        assert!(request.is_signed_with(SECRET));
        assert_eq!(request.param("AccessKeyId"), Some(KEY_ID));
        assert_eq!(request.param("Version"), Some("2020-04-20"));
        assert_eq!(request.param("Format"), Some("JSON"));
        assert_eq!(request.param("InstanceId"), Some(INSTANCE));
        let timestamp = request.param("Timestamp").unwrap();
        assert_eq!(timestamp.len(), "2016-02-23T12:46:24Z".len(), "{timestamp}");
        assert!(timestamp.ends_with('Z'), "{timestamp}");
    }
    let apply = &received[0];
    assert_eq!(apply.param("Resources"), Some("parent/a,parent/b"));
    assert_eq!(apply.param("Actions"), Some("R,W"));
    let millis = expire_time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    assert_eq!(apply.param("ExpireTime"), Some(millis.as_str()));
    assert_eq!(received[1].param("Token"), Some(TOKEN));
    // Every request has a nonce of its own.
    let mut nonces: Vec<_> = received
        .iter()
        .map(|r| r.param("SignatureNonce").unwrap())
        .collect();
    nonces.sort_unstable();
    nonces.dedup();
    assert_eq!(nonces.len(), 4);
}

#[test]
fn a_wrong_secret_is_refused_by_the_signature_check() {
    let (url, server) = serve(1, |request| {
        if request.is_signed_with(SECRET) {
            (200, r#"{"RequestId":"R"}"#.to_owned())
        } else {
            signature_mismatch()
        }
    });
    let error = client(&url, "not-the-secret")
        .revoke_token(INSTANCE, TOKEN)
        .unwrap_err();
    let OpenApiError::Service(service) = &error else {
        panic!("not a service error: {error:?}");
    };
    assert_eq!(service.code, "SignatureDoesNotMatch");
    assert_eq!(service.status, 400);
    assert_eq!(service.request_id.as_deref(), Some("RID-SIG"));
    let shown = error.to_string();
    assert!(shown.contains("check the AccessKey secret"), "{shown}");
    assert!(
        !shown.contains("not-the-secret") && !shown.contains(TOKEN),
        "{shown}"
    );
    assert!(!server.join().unwrap()[0].is_signed_with(SECRET));
}

#[test]
fn service_errors_carry_code_message_request_id_and_status() {
    let (url, server) = serve(1, |_| {
        (
            404,
            r#"{"RequestId":"RID-404","HostId":"onsmqtt.local","Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found.","Recommend":"https://example.invalid/r"}"#.to_owned(),
        )
    });
    let error = client(&url, SECRET)
        .query_token(INSTANCE, TOKEN)
        .unwrap_err();
    assert_eq!(
        error,
        OpenApiError::from(ServiceError {
            status: 404,
            code: "InvalidAccessKeyId.NotFound".to_owned(),
            message: "Specified access key is not found.".to_owned(),
            request_id: Some("RID-404".to_owned()),
            host_id: Some("onsmqtt.local".to_owned()),
            recommend: Some("https://example.invalid/r".to_owned()),
        })
    );
    server.join().unwrap();
}

#[test]
fn a_silent_server_times_out() {
    // Accepts, reads nothing, answers nothing, until the client gave up.
    let (url, server) = serve_silence(Duration::from_secs(2));
    let client = OpenApiClient::new(
        AccessKey::new(KEY_ID, SECRET),
        OpenApiEndpoint::url(&url).unwrap(),
    )
    .timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = client.query_token(INSTANCE, TOKEN).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    match &error {
        OpenApiError::Timeout {
            operation, timeout, ..
        } => assert_eq!(
            (*operation, *timeout),
            ("QueryToken", Duration::from_millis(300))
        ),
        other => panic!("not a timeout: {other:?}"),
    }
    assert!(error.to_string().contains("within 300ms"), "{error}");
    server.join().unwrap();
}

#[test]
fn a_closed_port_is_a_transport_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = client(&format!("http://127.0.0.1:{port}/"), SECRET)
        .apply_token(&ApplyToken::new(
            INSTANCE,
            ["t"],
            TokenType::R,
            in_an_hour(),
        ))
        .unwrap_err();
    assert!(
        matches!(
            error,
            OpenApiError::Transport {
                operation: "ApplyToken",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[test]
fn an_endpoint_path_is_kept() {
    let (url, server) = serve(1, |request| {
        assert!(request.is_signed_with(SECRET));
        (200, r#"{"RequestId":"R","TokenStatus":false}"#.to_owned())
    });
    let client = client(&format!("{url}openapi"), SECRET);
    assert!(!client.query_token(INSTANCE, "unknown").unwrap());
    assert_eq!(server.join().unwrap()[0].path, "/openapi/");
}

#[test]
fn invalid_requests_are_refused_before_sending() {
    // Nothing listens: a request that went out would fail with a transport error instead.
    let client = client("http://127.0.0.1:9/", SECRET);
    let past = ApplyToken::new(INSTANCE, ["t"], TokenType::R, SystemTime::now());
    assert!(matches!(
        client.apply_token(&past),
        Err(OpenApiError::InvalidRequest {
            field: "ExpireTime",
            ..
        })
    ));
    let empty: [&str; 0] = [];
    let none = ApplyToken::new(INSTANCE, empty, TokenType::R, in_an_hour());
    assert!(matches!(
        client.apply_token(&none),
        Err(OpenApiError::InvalidRequest {
            field: "Resources",
            ..
        })
    ));
    assert!(matches!(
        client.query_token("", TOKEN),
        Err(OpenApiError::InvalidRequest {
            field: "InstanceId",
            ..
        })
    ));
}
