//! ApsaraMQ token mode end to end, without a cloud account: an application server applies for
//! tokens over the OpenAPI of sansmq's broker in ApsaraMQ mode, a device logs in with one, is told
//! it expires soon, uploads a fresh one and stays connected past the old one's expiry; then the
//! token is revoked, the device is told and disconnected, and does not reconnect with it; a new
//! login with the revoked token is refused. Once with the blocking client, once with the async one.

mod common;

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, SystemTime};

use sansmq::packet::{ConnectReturnCode, QoS};
use sansmq_apsaramq::openapi::{ApplyToken, OpenApiClient, OpenApiEndpoint};
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCallback, ApsaraMqCredentials, ApsaraMqEvents, AuthMode, ClientError,
    ClientId, Incoming, MessageKind, Token, TokenNotice, TokenType, classify, upload_token,
    upload_token_async,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig};

const AK: &str = "LTAI5tLifecycle";
const SECRET: &str = "lifecycle-secret";
const INSTANCE: &str = "mqtt-cn-lifecycle";
const PARENT: &str = "demo";
/// The first token's life: long enough to connect and upload, short enough to outlive in a test.
const SHORT_LIFE: Duration = Duration::from_secs(3);

/// The broker, announcing expiry 2 s ahead (the service: 5 minutes).
fn broker() -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(AK, SECRET)
        .openapi_bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .token_expire_notice(Duration::from_secs(2));
    sansmq_broker::start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .unwrap()
}

/// The application server's side: the OpenAPI client with the AccessKey pair.
fn app_server(broker: &Broker) -> OpenApiClient {
    let endpoint = OpenApiEndpoint::url(&broker.openapi_url().unwrap()).unwrap();
    OpenApiClient::new(AccessKey::new(AK, SECRET), endpoint)
}

fn apply(app: &OpenApiClient, life: Duration) -> Token {
    let request = ApplyToken::new(
        INSTANCE,
        [format!("{PARENT}/#")],
        TokenType::RW,
        SystemTime::now() + life,
    );
    app.apply_token(&request).unwrap().token
}

fn credentials(device: &str, token: Token) -> ApsaraMqCredentials {
    ApsaraMqCredentials::new(
        AuthMode::token(AK, INSTANCE, [token]),
        ClientId::new("GID_life", device).unwrap(),
    )
}

/// What the blocking client's ApsaraMQ callback saw, in order.
#[derive(Debug)]
enum Seen {
    Notice(TokenNotice),
    Message(String),
    Lost,
}

struct Reporter(Sender<Seen>);

impl ApsaraMqCallback for Reporter {
    fn token_notice(&self, notice: &TokenNotice) {
        let _ = self.0.send(Seen::Notice(notice.clone()));
    }

    fn message_arrived(&self, _topic: &str, message: &sansmq_mio::Message, _kind: MessageKind) {
        let _ = self.0.send(Seen::Message(
            String::from_utf8_lossy(&message.payload).into_owned(),
        ));
    }

    fn connection_lost(&self, _cause: &ClientError) {
        let _ = self.0.send(Seen::Lost);
    }
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(common::PATIENCE)
        .expect("an event in time")
}

#[test]
fn blocking_client_token_life_cycle() {
    let broker = broker();
    let app = app_server(&broker);
    let first = apply(&app, SHORT_LIFE);
    let first_value = first.value().expose().to_owned();
    assert!(app.query_token(INSTANCE, &first_value).unwrap());

    let credentials = credentials("blocking", first);
    let client_id = credentials.client_id().clone();
    let options = common::options(
        &format!("tcp://{}", broker.local_addr()),
        client_id.as_str(),
    )
    .credentials_provider(credentials.clone())
    .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let client = sansmq_mio::Client::new(options).unwrap();
    let (report, seen) = mpsc::channel();
    client.set_callback(
        ApsaraMqEvents::new(Reporter(report), PARENT, client_id.clone())
            .with_credentials(credentials.clone()),
    );
    client.connect().unwrap();
    client
        .subscribe(&[(&format!("{PARENT}/#"), QoS::AtLeastOnce)])
        .unwrap();

    // About a second in: the broker says the token expires soon; the app server issues a fresh
    // one and the device uploads it.
    let Seen::Notice(TokenNotice::Expiring { token_type, .. }) = next(&seen) else {
        panic!("expected the expiry notice");
    };
    assert_eq!(token_type, TokenType::RW);
    let fresh = apply(&app, Duration::from_secs(600));
    let fresh_value = fresh.value().expose().to_owned();
    upload_token(&client, &credentials, fresh).unwrap();

    // Past the first token's expiry the connection is still up and may publish.
    std::thread::sleep(SHORT_LIFE);
    assert!(!app.query_token(INSTANCE, &first_value).unwrap(), "expired");
    client
        .publish(
            &format!("{PARENT}/after"),
            "still here",
            QoS::AtLeastOnce,
            false,
        )
        .unwrap()
        .wait()
        .unwrap();
    assert!(matches!(next(&seen), Seen::Message(m) if m == "still here"));

    // Revoked: told, disconnected, and no reconnect with the revoked token.
    app.revoke_token(INSTANCE, &fresh_value).unwrap();
    let Seen::Notice(TokenNotice::Invalid { code, .. }) = next(&seen) else {
        panic!("expected the invalid notice");
    };
    assert_eq!(code, "TokenRevoked");
    assert!(matches!(next(&seen), Seen::Lost));
    assert!(
        credentials.current().is_err(),
        "the credentials stop signing"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!client.is_connected());
    client.close();

    // A login with the revoked token is refused by the broker.
    let refused = refused_login(&broker, &fresh_value);
    assert_eq!(refused, ConnectReturnCode::NotAuthorized);
}

/// Connects a new blocking client with `token` and returns the broker's refusal.
fn refused_login(broker: &Broker, token: &str) -> ConnectReturnCode {
    let credentials = credentials("again", Token::new(TokenType::RW, token).unwrap());
    let options = common::options(
        &format!("tcp://{}", broker.local_addr()),
        credentials.client_id().as_str(),
    )
    .credentials_provider(credentials);
    let client = sansmq_mio::Client::new(options).unwrap();
    match client.connect() {
        Err(ClientError::Refused(code)) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The async client's next message, sorted as an ApsaraMQ client sorts it.
async fn next_incoming(
    events: &mut sansmq_tokio::Events,
    client_id: &ClientId,
) -> (Incoming, sansmq_tokio::Message) {
    let message = tokio::time::timeout(common::PATIENCE, events.next_message())
        .await
        .expect("a message in time")
        .expect("the client is alive");
    let incoming = classify(&message.topic, &message.payload, PARENT, client_id);
    (incoming, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_client_token_life_cycle() {
    let broker = broker();
    let app = app_server(&broker);
    let first = apply(&app, SHORT_LIFE);
    let credentials = credentials("async", first);
    let client_id = credentials.client_id().clone();
    let options = common::options(
        &format!("tcp://{}", broker.local_addr()),
        client_id.as_str(),
    )
    .credentials_provider(credentials.clone());
    let (client, mut events) = sansmq_tokio::Client::new(options).unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[(&format!("{PARENT}/#"), QoS::AtLeastOnce)])
        .await
        .unwrap();

    // The async client's messages are sorted with `classify`.
    let (incoming, _) = next_incoming(&mut events, &client_id).await;
    assert!(
        matches!(incoming, Incoming::Notice(Ok(TokenNotice::Expiring { .. }))),
        "{incoming:?}"
    );
    let fresh = apply(&app, Duration::from_secs(600));
    let fresh_value = fresh.value().expose().to_owned();
    tokio::time::timeout(
        common::PATIENCE,
        upload_token_async(&client, &credentials, fresh),
    )
    .await
    .unwrap()
    .unwrap();

    tokio::time::sleep(SHORT_LIFE).await;
    client
        .publish(
            &format!("{PARENT}/after"),
            "still here",
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let (incoming, message) = next_incoming(&mut events, &client_id).await;
    assert_eq!(incoming, Incoming::Message(MessageKind::Subscribed));
    assert_eq!(&message.payload[..], b"still here");

    // Revoked: told, disconnected; the credentials then refuse to sign, so the client waits for
    // new ones instead of reconnecting with the revoked token.
    app.revoke_token(INSTANCE, &fresh_value).unwrap();
    let (incoming, _) = next_incoming(&mut events, &client_id).await;
    let Incoming::Notice(Ok(notice)) = incoming else {
        panic!("expected the invalid notice, got {incoming:?}");
    };
    assert!(matches!(&notice, TokenNotice::Invalid { code, .. } if code == "TokenRevoked"));
    credentials.observe(&notice);
    assert!(
        credentials.current().is_err(),
        "the credentials stop signing"
    );
    let lost = tokio::time::timeout(common::PATIENCE, async {
        loop {
            match events.recv().await {
                Some(sansmq_tokio::Event::ConnectionLost { .. }) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(lost, "the broker closes the connection after the notice");
    let refused = tokio::task::spawn_blocking(move || refused_login(&broker, &fresh_value))
        .await
        .unwrap();
    assert_eq!(refused, ConnectReturnCode::NotAuthorized);
}
