//! ApsaraMQ behaviour no real test broker shows on demand, played by a scripted broker: unsolicited
//! point-to-point messages, token notices, the upload-token barrier, and a close right after a
//! forbidden SUBSCRIBE.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Packet, PubAck, Publish, QoS, SubAck};
use sansmq::{TopicName, packet::SubscribeReturnCode};
use sansmq_apsaramq::credentials::{Token, TokenType};
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCallback, ApsaraMqCredentials, ApsaraMqEvents, AuthMode, ClientId,
    MessageKind, TokenNotice, UPLOAD_TOKEN_TOPIC, apsaramq_options_with, p2p_topic, upload_token,
};
use sansmq_e2e::{Peer, ScriptedBroker, wait_until};
use sansmq_mio::{Client, Diagnosis, Error, Message, Operation};

const PARENT: &str = "parent";

/// What the ApsaraMQ callback saw.
#[derive(Debug)]
enum Seen {
    Message(String, MessageKind),
    Notice(TokenNotice),
    Lost(Error),
}

struct Recorder(Mutex<Sender<Seen>>);

impl Recorder {
    fn send(&self, seen: Seen) {
        let _ = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(seen);
    }
}

impl ApsaraMqCallback for Recorder {
    fn connection_lost(&self, cause: &Error) {
        self.send(Seen::Lost(cause.clone()));
    }

    fn message_arrived(&self, topic: &str, _message: &Message, kind: MessageKind) {
        self.send(Seen::Message(topic.to_owned(), kind));
    }

    fn token_notice(&self, notice: &TokenNotice) {
        self.send(Seen::Notice(notice.clone()));
    }
}

fn client_id() -> ClientId {
    ClientId::new("GID_script", "device-1").unwrap()
}

fn token_credentials(token: &str) -> ApsaraMqCredentials {
    let token = Token::new(TokenType::RW, token).unwrap();
    ApsaraMqCredentials::new(
        AuthMode::token("LTAIscript", "mqtt-cn-script", [token]),
        client_id(),
    )
}

/// A client of `broker` whose ApsaraMQ events go to the returned receiver.
fn connect(broker: &ScriptedBroker, credentials: &ApsaraMqCredentials) -> (Client, Receiver<Seen>) {
    let options = apsaramq_options_with(&broker.url(), credentials)
        .unwrap()
        .time_to_wait(common::PATIENCE)
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(100));
    let client = Client::new(options).unwrap();
    let (tx, rx) = mpsc::channel();
    client.set_callback(
        ApsaraMqEvents::new(Recorder(Mutex::new(tx)), PARENT, client_id())
            .with_credentials(credentials.clone()),
    );
    client.connect().unwrap();
    (client, rx)
}

fn publish(topic: &str, payload: &str) -> Packet {
    Packet::Publish(Publish::new(
        TopicName::try_from(topic).unwrap(),
        Bytes::copy_from_slice(payload.as_bytes()),
    ))
}

fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(common::PATIENCE)
        .expect("an ApsaraMQ event")
}

#[test]
fn an_unsolicited_p2p_message_reaches_message_arrived_marked_as_p2p() {
    let p2p = p2p_topic(PARENT, &client_id()).unwrap().to_string();
    let pushed = p2p.clone();
    let broker = ScriptedBroker::start(move |mut peer: Peer| {
        peer.accept();
        // Nothing subscribed: the broker pushes the P2P message anyway, then a normal one.
        peer.send(&publish(&pushed, "direct"));
        peer.send(&publish("parent/testMq4Iot", "broadcast"));
        while peer.recv().is_some() {}
    });
    let (client, rx) = connect(&broker, &token_credentials("t"));
    match next(&rx) {
        Seen::Message(topic, kind) => {
            assert_eq!(topic, p2p);
            assert_eq!(kind, MessageKind::PointToPoint);
        }
        other => panic!("expected the P2P message, saw {other:?}"),
    }
    match next(&rx) {
        Seen::Message(topic, kind) => {
            assert_eq!(topic, "parent/testMq4Iot");
            assert_eq!(kind, MessageKind::Subscribed);
        }
        other => panic!("expected the normal message, saw {other:?}"),
    }
    client.close();
}

#[test]
fn token_notices_arrive_typed_and_an_invalid_token_is_not_reused() {
    let broker = ScriptedBroker::start(|mut peer: Peer| {
        peer.accept();
        peer.send(&publish(
            "$SYS/tokenExpireNotice",
            r#"{"expireTime":1764151200000,"type":"RW"}"#,
        ));
        peer.send(&publish(
            "$SYS/tokenInvalidNotice",
            r#"{"code":"TokenExpired","type":"RW"}"#,
        ));
        // As ApsaraMQ does: disconnect after an invalid-token notice.
        std::thread::sleep(Duration::from_millis(200));
        peer.close();
    });
    let credentials = token_credentials("soon-invalid");
    let (client, rx) = connect(&broker, &credentials);
    match next(&rx) {
        Seen::Notice(TokenNotice::Expiring {
            token_type,
            expire_time,
        }) => {
            assert_eq!(token_type, TokenType::RW);
            assert_eq!(expire_time, 1_764_151_200_000);
        }
        other => panic!("expected the expiry notice, saw {other:?}"),
    }
    match next(&rx) {
        Seen::Notice(TokenNotice::Invalid { token_type, code }) => {
            assert_eq!(token_type, TokenType::RW);
            assert_eq!(code, "TokenExpired");
        }
        other => panic!("expected the invalid notice, saw {other:?}"),
    }
    assert!(matches!(next(&rx), Seen::Lost(_)));
    // Reconnects are attempted every 50-100 ms, but none may sign with the invalid token.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(broker.connections(), 1, "reconnected with an invalid token");

    // New tokens: the client connects again by itself.
    credentials
        .set_tokens([Token::new(TokenType::RW, "fresh").unwrap()])
        .unwrap();
    assert!(wait_until(common::PATIENCE, || broker.connections() == 2));
    client.close();
}

#[test]
fn upload_token_sends_nothing_else_until_its_puback_and_reconnects_with_the_new_token() {
    // What the broker saw, in order, and the CONNECT passwords.
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let passwords: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    // Set by the test once it has asked for a PUBLISH and a SUBSCRIBE during the upload.
    let release = Arc::new(AtomicBool::new(false));
    let broker = {
        let log = Arc::clone(&log);
        let passwords = Arc::clone(&passwords);
        let release = Arc::clone(&release);
        let note = move |line: String| log.lock().unwrap().push(line);
        ScriptedBroker::start(move |mut peer: Peer| {
            let connect = peer.accept().expect("CONNECT");
            let password = connect.password.map(|p| p.0).unwrap_or_default();
            passwords.lock().unwrap().push(password);
            let mut held_upload = None;
            loop {
                let Some(packet) = peer.recv_within(Duration::from_millis(200)) else {
                    if peer.is_closed() {
                        break;
                    }
                    // 200 ms of silence after the test's requests: acknowledge the upload.
                    if release.load(Ordering::SeqCst) {
                        if let Some(id) = held_upload.take() {
                            note("PUBACK uploadToken".into());
                            peer.send(&Packet::PubAck(PubAck::new(id)));
                        }
                    }
                    continue;
                };
                match packet {
                    Packet::Publish(p) if &*p.topic_name() == UPLOAD_TOKEN_TOPIC => {
                        note("PUBLISH uploadToken".into());
                        held_upload = p.packet_id;
                    }
                    Packet::Publish(p) => {
                        note(format!("PUBLISH {}", &*p.topic_name()));
                        if let Some(id) = p.packet_id {
                            peer.send(&Packet::PubAck(PubAck::new(id)));
                        }
                        if &*p.topic_name() == "parent/after" {
                            // Everything seen: drop the link so the client reconnects.
                            peer.close();
                            return;
                        }
                    }
                    Packet::Subscribe(s) => {
                        note("SUBSCRIBE".into());
                        let return_codes = s
                            .filters
                            .iter()
                            .map(|_| SubscribeReturnCode::Success(QoS::AtLeastOnce))
                            .collect();
                        peer.send(&Packet::SubAck(SubAck::new(s.packet_id, return_codes)));
                    }
                    Packet::Disconnect(_) => break,
                    _ => {}
                }
            }
        })
    };
    let credentials = token_credentials("old");
    let (client, _rx) = connect(&broker, &credentials);

    let uploader = {
        let client = client.clone();
        let credentials = credentials.clone();
        std::thread::spawn(move || {
            upload_token(
                &client,
                &credentials,
                Token::new(TokenType::RW, "new").unwrap(),
            )
        })
    };
    assert!(wait_until(common::PATIENCE, || {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l == "PUBLISH uploadToken")
    }));
    // Both are held by the client until the upload's PUBACK.
    let during = client
        .publish("parent/during", "held", QoS::AtLeastOnce, false)
        .unwrap();
    let subscriber = {
        let client = client.clone();
        std::thread::spawn(move || client.subscribe(&[("parent/#", QoS::AtLeastOnce)]))
    };
    std::thread::sleep(Duration::from_millis(100));
    release.store(true, Ordering::SeqCst);
    uploader.join().unwrap().unwrap();
    during.wait().unwrap();
    subscriber.join().unwrap().unwrap();
    client
        .publish("parent/after", "x", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();

    let seen = log.lock().unwrap().clone();
    let upload = seen
        .iter()
        .position(|l| l == "PUBLISH uploadToken")
        .unwrap();
    assert_eq!(
        seen.get(upload + 1).map(String::as_str),
        Some("PUBACK uploadToken"),
        "something was sent between the upload and its PUBACK: {seen:?}"
    );
    assert!(
        seen.contains(&"PUBLISH parent/during".to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"SUBSCRIBE".to_owned()), "{seen:?}");

    // The broker dropped the link after "parent/after": the reconnect signs with the new token.
    assert!(wait_until(common::PATIENCE, || passwords
        .lock()
        .unwrap()
        .len()
        >= 2));
    let passwords = passwords.lock().unwrap().clone();
    assert_eq!(&passwords[0][..], b"RW|old");
    assert_eq!(&passwords[1][..], b"RW|new");
    client.close();
}

#[test]
fn a_close_right_after_subscribe_is_reported_as_probably_not_authorised() {
    let broker = ScriptedBroker::start(|mut peer: Peer| {
        peer.accept();
        // ApsaraMQ's answer to a filter this client may not use: hang up, no SUBACK.
        if let Some(Packet::Subscribe(_)) = peer.recv() {
            peer.close();
        }
    });
    let credentials = ApsaraMqCredentials::new(
        AuthMode::signature(AccessKey::new("LTAIscript", "secret"), "mqtt-cn-script"),
        client_id(),
    );
    let (client, rx) = connect(&broker, &credentials);
    let subscriber = {
        let client = client.clone();
        std::thread::spawn(move || client.subscribe(&[("parent/forbidden", QoS::AtLeastOnce)]))
    };
    let cause = loop {
        if let Seen::Lost(cause) = next(&rx) {
            break cause;
        }
    };
    match &cause {
        Error::ClosedByBroker(Diagnosis::NotAuthorised {
            operation, topic, ..
        }) => {
            assert_eq!(*operation, Operation::Subscribe);
            assert_eq!(topic, "parent/forbidden");
        }
        other => panic!("expected a not-authorised diagnosis, got {other:?}"),
    }
    assert!(
        cause
            .to_string()
            .contains("probably not authorised for topic \"parent/forbidden\""),
        "{cause}"
    );
    client.close();
    let _ = subscriber.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_client_reports_a_close_after_a_forbidden_publish_too() {
    let broker = ScriptedBroker::start(|mut peer: Peer| {
        peer.accept();
        if let Some(Packet::Publish(_)) = peer.recv() {
            peer.close();
        }
    });
    let options = sansmq_mio::ConnectOptions::new(&broker.url(), client_id().as_str())
        .unwrap()
        .time_to_wait(common::PATIENCE);
    let (client, mut events) = sansmq_tokio::Client::new(options).unwrap();
    client.connect().await.unwrap();
    let publish = client.publish_later("parent/forbidden", "x", QoS::AtLeastOnce, false);
    let _handle = publish.await.unwrap();
    let cause = loop {
        match tokio::time::timeout(common::PATIENCE, events.recv()).await {
            Ok(Some(sansmq_tokio::Event::ConnectionLost { cause })) => break cause,
            Ok(Some(_)) => {}
            other => panic!("no connection-lost event: {other:?}"),
        }
    };
    match cause {
        Error::ClosedByBroker(Diagnosis::NotAuthorised {
            operation, topic, ..
        }) => {
            assert_eq!(operation, Operation::Publish);
            assert_eq!(topic, "parent/forbidden");
        }
        other => panic!("expected a not-authorised diagnosis, got {other:?}"),
    }
}
