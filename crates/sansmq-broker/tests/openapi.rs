//! ApsaraMQ mode's local OpenAPI and the tokens it issues: signed requests checked like the
//! service checks them, token logins reaching only their resources, expiry and revocation
//! notices, and uploads. The requests are made by hand here (a blocking socket and the crate's
//! signature), so these tests do not depend on the OpenAPI client they will serve.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{TestClient, connect_packet};
use sansmq::MqttString;
use sansmq::packet::{ConnAck, Connect, ConnectReturnCode, Password, Publish, QoS};
use sansmq_apsaramq::openapi::signature;
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, start};
use serde_json::Value;

const AK: &str = "LTAI5tAppServer";
const SECRET: &str = "app-server-secret";
const INSTANCE: &str = "mqtt-cn-local";
const QUIET: Duration = Duration::from_millis(300);

fn broker_with(adjust: impl FnOnce(ApsaraMqMode) -> ApsaraMqMode) -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(AK, SECRET)
        .openapi_bind(SocketAddr::from(([127, 0, 0, 1], 0)));
    start(BrokerConfig {
        apsaramq: Some(adjust(mode)),
        ..Default::default()
    })
    .unwrap()
}

fn broker() -> Broker {
    broker_with(|mode| mode)
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// A unique nonce per request of this test process.
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "nonce-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The common parameters of a request for `action`, unsigned.
fn common_params(action: &str) -> Vec<(String, String)> {
    [
        ("Action", action.to_owned()),
        ("Format", "JSON".to_owned()),
        ("Version", "2020-04-20".to_owned()),
        ("AccessKeyId", AK.to_owned()),
        ("SignatureMethod", "HMAC-SHA1".to_owned()),
        ("SignatureVersion", "1.0".to_owned()),
        ("SignatureNonce", nonce()),
        ("Timestamp", timestamp()),
        ("InstanceId", INSTANCE.to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Adds the signature made with `secret`.
fn signed(mut params: Vec<(String, String)>, secret: &str) -> Vec<(String, String)> {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signature = signature::sign("GET", &pairs, secret);
    params.push(("Signature".to_owned(), signature));
    params
}

/// Replaces the value of parameter `name`.
fn set(params: &mut [(String, String)], name: &str, value: &str) {
    let param = params.iter_mut().find(|(n, _)| n == name).unwrap();
    param.1 = value.to_owned();
}

/// `name=value&...`, percent-encoded: a query string or a form body.
fn form(params: &[(String, String)]) -> String {
    let pairs: Vec<String> = params
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                signature::percent_encode(n),
                signature::percent_encode(v)
            )
        })
        .collect();
    pairs.join("&")
}

/// Sends `params` as a GET and returns the HTTP status and the JSON body.
fn get(broker: &Broker, params: &[(String, String)]) -> (u16, Value) {
    let request = format!(
        "GET /?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        form(params)
    );
    exchange(broker, request.as_bytes())
}

fn exchange(broker: &Broker, request: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(broker.openapi_local_addr().unwrap()).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

fn call(broker: &Broker, action: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut params = common_params(action);
    params.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    get(broker, &signed(params, SECRET))
}

/// Applies for a token and returns it.
fn apply(broker: &Broker, resources: &str, actions: &str, lifetime: Duration) -> String {
    let expire = (now_ms() + u64::try_from(lifetime.as_millis()).unwrap()).to_string();
    let (status, body) = call(
        broker,
        "ApplyToken",
        &[
            ("Resources", resources),
            ("Actions", actions),
            ("ExpireTime", &expire),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["RequestId"].as_str().unwrap().len(), 36);
    body["Token"].as_str().unwrap().to_owned()
}

fn token_login(client_id: &str, password: &str) -> Connect {
    let mut connect = connect_packet(client_id, true, 60);
    connect.username = Some(MqttString::try_from(format!("Token|{AK}|{INSTANCE}")).unwrap());
    connect.password = Some(Password::from(password));
    connect
}

fn connect(broker: &Broker, connect: Connect) -> (TestClient, ConnAck) {
    TestClient::connect_with(broker.local_addr(), connect)
}

fn notice(client: &mut TestClient) -> (String, Value) {
    let publish = client.expect_publish();
    let json = serde_json::from_slice(publish.payload()).unwrap();
    (publish.topic().to_owned(), json)
}

#[test]
fn an_issued_token_logs_in_and_reaches_only_its_resources() {
    let broker = broker();
    let token = apply(&broker, "parent/+,other/#", "R,W", Duration::from_secs(600));
    let (mut client, ack) = connect(&broker, token_login("GID_a@@@one", &format!("RW|{token}")));
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    client.subscribe("parent/+", QoS::AtLeastOnce);
    client.publish("parent/x", b"inside", QoS::AtLeastOnce);
    assert_eq!(&client.expect_publish().payload(), b"inside");
    // A topic outside the resources closes the connection, as for a token without W.
    let mut outside = Publish::new(common::topic("parent/x/deeper"), Bytes::from_static(b"no"));
    outside.qos = QoS::AtMostOnce;
    client.send(outside);
    client.expect_closed(common::WAIT);

    // Presented as a type the token was not issued for: refused.
    let read_only = apply(&broker, "parent/#", "R", Duration::from_secs(600));
    let (_, ack) = connect(
        &broker,
        token_login("GID_a@@@two", &format!("W|{read_only}")),
    );
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    // A token of another instance's or another AccessKey's login: refused.
    let mut other_key = token_login("GID_a@@@two", &format!("R|{read_only}"));
    other_key.username = Some(MqttString::try_from(format!("Token|LTAIother|{INSTANCE}")).unwrap());
    assert_eq!(
        connect(&broker, other_key).1.code,
        ConnectReturnCode::NotAuthorized
    );
    // Subscribing outside the resources closes the connection.
    let (mut reader, ack) = connect(
        &broker,
        token_login("GID_a@@@three", &format!("R|{read_only}")),
    );
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    reader.subscribe("parent/a/#", QoS::AtMostOnce);
    reader.send(sansmq::packet::Subscribe::new(
        common::id(7),
        common::filter("#"),
        QoS::AtMostOnce,
    ));
    reader.expect_closed(common::WAIT);
}

#[test]
fn query_and_revoke_and_the_holder_is_told_and_closed() {
    let broker = broker();
    let token = apply(&broker, "parent/#", "R", Duration::from_secs(600));
    let (status, body) = call(&broker, "QueryToken", &[("Token", &token)]);
    assert_eq!((status, &body["TokenStatus"]), (200, &Value::Bool(true)));
    let (mut holder, ack) = connect(
        &broker,
        token_login("GID_q@@@holder", &format!("R|{token}")),
    );
    assert_eq!(ack.code, ConnectReturnCode::Accepted);

    let (status, body) = call(&broker, "RevokeToken", &[("Token", &token)]);
    assert_eq!(status, 200, "{body}");
    let (topic, json) = notice(&mut holder);
    assert_eq!(topic, "$SYS/tokenInvalidNotice");
    assert_eq!(
        (json["code"].as_str(), json["type"].as_str()),
        (Some("TokenRevoked"), Some("R"))
    );
    holder.expect_closed(common::WAIT);

    let (_, body) = call(&broker, "QueryToken", &[("Token", &token)]);
    assert_eq!(body["TokenStatus"], Value::Bool(false));
    let (_, ack) = connect(
        &broker,
        token_login("GID_q@@@holder", &format!("R|{token}")),
    );
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    let (_, body) = call(&broker, "QueryToken", &[("Token", "never-issued")]);
    assert_eq!(body["TokenStatus"], Value::Bool(false));
}

#[test]
fn expiry_is_announced_then_enforced_unless_a_new_token_is_uploaded() {
    let broker = broker_with(|mode| mode.token_expire_notice(Duration::from_millis(1500)));
    let lifetime = Duration::from_millis(2500);

    // Left to expire: the notice about a second in, then the invalid notice and the close.
    let token = apply(&broker, "parent/#", "W", lifetime);
    let (mut idle, ack) = connect(&broker, token_login("GID_e@@@idle", &format!("W|{token}")));
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    let (topic, json) = notice(&mut idle);
    assert_eq!(topic, "$SYS/tokenExpireNotice");
    assert_eq!(json["type"], "W");
    let expire_time = json["expireTime"].as_u64().unwrap();
    assert!(expire_time > now_ms(), "{expire_time}");
    let (topic, json) = notice(&mut idle);
    assert_eq!(topic, "$SYS/tokenInvalidNotice");
    assert_eq!(json["code"], "TokenExpired");
    assert!(now_ms() >= expire_time);
    idle.expect_closed(common::WAIT);
    // An expired token is refused at CONNECT.
    let (_, ack) = connect(&broker, token_login("GID_e@@@idle", &format!("W|{token}")));
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);

    // Refreshed in time: the connection stays, with the new token's rights.
    let token = apply(&broker, "parent/#", "W", lifetime);
    let (mut busy, _) = connect(&broker, token_login("GID_e@@@busy", &format!("W|{token}")));
    let (topic, _) = notice(&mut busy);
    assert_eq!(topic, "$SYS/tokenExpireNotice");
    let fresh = apply(&broker, "parent/#", "W", Duration::from_secs(600));
    busy.publish(
        "$SYS/uploadToken",
        format!(r#"{{"token":"{fresh}","type":"W"}}"#).as_bytes(),
        QoS::AtLeastOnce,
    );
    std::thread::sleep(lifetime);
    busy.expect_nothing(QUIET);
    busy.publish("parent/still", b"here", QoS::AtLeastOnce);

    // Uploading a revoked token closes the connection.
    call(&broker, "RevokeToken", &[("Token", &fresh)]);
    let other = apply(&broker, "parent/#", "W", Duration::from_secs(600));
    let (mut late, _) = connect(&broker, token_login("GID_e@@@late", &format!("W|{other}")));
    let mut upload = Publish::new(
        common::topic("$SYS/uploadToken"),
        Bytes::from(format!(r#"{{"token":"{fresh}","type":"W"}}"#)),
    );
    upload.qos = QoS::AtLeastOnce;
    upload.packet_id = Some(common::id(3));
    late.send(upload);
    late.expect_closed(common::WAIT);
}

#[test]
fn requests_are_checked_like_the_service_checks_them() {
    let broker = broker();
    let code = |(status, body): (u16, Value)| (status, body["Code"].as_str().unwrap().to_owned());
    let expire = (now_ms() + 60_000).to_string();
    let apply_params = || {
        let mut params = common_params("ApplyToken");
        params.push(("Resources".to_owned(), "parent/#".to_owned()));
        params.push(("Actions".to_owned(), "R".to_owned()));
        params.push(("ExpireTime".to_owned(), expire.clone()));
        params
    };
    // Signed with another secret: the service's SignatureDoesNotMatch.
    assert_eq!(
        code(get(&broker, &signed(apply_params(), "wrong-secret"))),
        (400, "SignatureDoesNotMatch".to_owned())
    );
    // A parameter changed after signing.
    let mut tampered = signed(apply_params(), SECRET);
    set(&mut tampered, "Actions", "R,W");
    assert_eq!(
        code(get(&broker, &tampered)),
        (400, "SignatureDoesNotMatch".to_owned())
    );
    // An AccessKey the broker does not know.
    let mut unknown = apply_params();
    set(&mut unknown, "AccessKeyId", "LTAInobody");
    assert_eq!(
        code(get(&broker, &signed(unknown, SECRET))),
        (404, "InvalidAccessKeyId.NotFound".to_owned())
    );
    // The same request twice: the nonce was used.
    let once = signed(apply_params(), SECRET);
    assert_eq!(get(&broker, &once).0, 200);
    assert_eq!(
        code(get(&broker, &once)),
        (400, "SignatureNonceUsed".to_owned())
    );
    // A timestamp 20 minutes old.
    let mut stale = apply_params();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(20);
    set(
        &mut stale,
        "Timestamp",
        &old.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    assert_eq!(
        code(get(&broker, &signed(stale, SECRET))),
        (400, "InvalidTimeStamp.Expired".to_owned())
    );
    // Another instance, a bad Actions value, an expiry in the past, a missing parameter, an
    // unknown action.
    let mut elsewhere = apply_params();
    set(&mut elsewhere, "InstanceId", "mqtt-cn-other");
    assert_eq!(
        code(get(&broker, &signed(elsewhere, SECRET))),
        (404, "InvalidInstanceId.NotFound".to_owned())
    );
    let past = (now_ms() - 1000).to_string();
    for (name, value) in [
        ("Actions", "RW"),
        ("ExpireTime", past.as_str()),
        ("Resources", "a/#/b"),
    ] {
        let mut params = apply_params();
        set(&mut params, name, value);
        assert_eq!(
            code(get(&broker, &signed(params, SECRET))),
            (400, "InvalidParameter".to_owned()),
            "{name}={value}"
        );
    }
    let mut missing = apply_params();
    missing.retain(|(n, _)| n != "ExpireTime");
    assert_eq!(
        code(get(&broker, &signed(missing, SECRET))),
        (400, "MissingParameter".to_owned())
    );
    assert_eq!(
        code(call(&broker, "DescribeRegions", &[])),
        (404, "InvalidAction.NotFound".to_owned())
    );
    // A form body works as well as a query string.
    let body = form(&signed_post(apply_params()));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, json) = exchange(&broker, request.as_bytes());
    assert_eq!(status, 200, "{json}");
    assert!(json["Token"].is_string());
    // Not HTTP at all: a 400, and the broker goes on serving.
    assert_eq!(exchange(&broker, b"\x16\x03\x01garbage\r\n\r\n").0, 400);
    let (mut client, ack) = connect(&broker, token_login("GID_x@@@after", "R|nothing"));
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    client.expect_closed(common::WAIT);
}

/// Signed for a POST.
fn signed_post(mut params: Vec<(String, String)>) -> Vec<(String, String)> {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signature = signature::sign("POST", &pairs, SECRET);
    params.push(("Signature".to_owned(), signature));
    params
}

#[test]
fn idle_connections_cannot_take_the_api_over() {
    let broker = broker();
    let addr = broker.openapi_local_addr().unwrap();
    // 64 connections that never send a request: the most served at once.
    let idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The next one is closed at once.
    let mut refused = TcpStream::connect(addr).unwrap();
    refused.set_read_timeout(Some(common::WAIT)).unwrap();
    let mut byte = [0u8; 1];
    match refused.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed at once, got {other:?}"),
    }
    // Meanwhile MQTT goes on, and once the idle ones are gone the API answers again.
    let (_, ack) = connect(&broker, token_login("GID_i@@@mqtt", "R|unknown"));
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    drop(idle);
    let mut answered = false;
    for _ in 0..50 {
        if call_if_served(&broker) {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        answered,
        "the API serves again once the idle connections closed"
    );
}

/// A QueryToken, `true` if it was answered (the broker may not have seen the idle connections
/// close yet, and then closes this one).
fn call_if_served(broker: &Broker) -> bool {
    let mut params = common_params("QueryToken");
    params.push(("Token".to_owned(), "t".to_owned()));
    let request = format!(
        "GET /?{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        form(&signed(params, SECRET))
    );
    let mut stream = TcpStream::connect(broker.openapi_local_addr().unwrap()).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}
