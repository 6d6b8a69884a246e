//! The mio client connects, logs in and disconnects against a real mosquitto; refusals and
//! unreachable brokers are typed errors.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use sansmq::CommandError;
use sansmq::packet::ConnectReturnCode;
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_mio::{Client, Error};

use common::{PATIENCE, Recorder, options};

#[test]
fn connects_and_disconnects() {
    let broker = Mosquitto::start();
    let client = Client::new(options(&broker.url(), "plain")).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    assert!(!client.is_connected());

    let session_present = client.connect().unwrap();
    assert!(!session_present, "a clean session is never present");
    assert!(client.is_connected());
    let (reconnect, uri) = events.connected(PATIENCE).expect("connect_complete");
    assert!(!reconnect);
    assert_eq!(uri, broker.url());
    assert!(matches!(
        client.connect(),
        Err(Error::Command(CommandError::AlreadyConnected))
    ));

    client.disconnect(Duration::from_secs(5)).unwrap();
    assert!(!client.is_connected());
    // DISCONNECT was sent, not just a closed socket; and a requested end is no `connection_lost`.
    assert!(
        wait_until(PATIENCE, || broker
            .log()
            .contains("Client plain disconnected.")),
        "{}",
        broker.log()
    );
    assert!(events.lost(Duration::from_millis(200)).is_none());

    // The same client connects again.
    assert!(!client.connect().unwrap());
    assert!(client.is_connected());
    client.disconnect(Duration::from_secs(5)).unwrap();
    client.close();
    assert!(matches!(client.connect(), Err(Error::Closed)));
}

#[test]
fn a_persistent_session_is_present_on_the_next_connect() {
    let broker = Mosquitto::start();
    let client = Client::new(options(&broker.url(), "keeper").clean_session(false)).unwrap();
    assert!(!client.connect().unwrap(), "first time: no session yet");
    client.disconnect(Duration::from_secs(5)).unwrap();
    assert!(client.connect().unwrap(), "the broker kept the session");
    client.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn user_and_password_are_accepted() {
    // An ApsaraMQ-style user name, with '|'.
    let user = "Signature|LTAI5tAccessKey|mqtt-cn-instance";
    let broker = Mosquitto::builder().user(user, "s3cret").start();
    let client =
        Client::new(options(&broker.url(), "GID_e2e@@@device-1").credentials(user, "s3cret"))
            .unwrap();
    client.connect().unwrap();
    assert!(client.is_connected());
    client.disconnect(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_wrong_password_is_refused_as_not_authorized() {
    let broker = Mosquitto::builder().user("alice", "right").start();
    let client =
        Client::new(options(&broker.url(), "intruder").credentials("alice", "wrong")).unwrap();
    let error = client.connect().unwrap_err();
    // mosquitto 2.0 answers a wrong password with 5, not 4.
    assert!(
        matches!(error, Error::Refused(ConnectReturnCode::NotAuthorized)),
        "{error:?}"
    );
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(!client.is_connected());

    // No user name at all is refused the same way.
    let anonymous = Client::new(options(&broker.url(), "anonymous")).unwrap();
    let error = anonymous.connect().unwrap_err();
    assert!(
        matches!(error, Error::Refused(ConnectReturnCode::NotAuthorized)),
        "{error:?}"
    );
}

#[test]
fn a_refused_login_with_automatic_reconnect_fails_connect_and_is_not_retried() {
    let broker = Mosquitto::builder().user("alice", "right").start();
    let client = Client::new(
        options(&broker.url(), "stubborn")
            .credentials("alice", "wrong")
            .automatic_reconnect(Duration::from_millis(10), Duration::from_millis(50)),
    )
    .unwrap();
    let error = client.connect().unwrap_err();
    assert!(
        matches!(error, Error::Refused(ConnectReturnCode::NotAuthorized)),
        "{error:?}"
    );
    // `connect` failing ends the attempt: automatic reconnect only takes over after a success,
    // so the broker sees no second login within many reconnect delays.
    std::thread::sleep(Duration::from_millis(500));
    let log = broker.log();
    assert_eq!(log.matches("Sending CONNACK").count(), 1, "{log}");
    assert!(!client.is_connected());
}

#[test]
fn nothing_listening_is_an_io_error_naming_the_uri() {
    // A port that was just free: nothing listens on it.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let uri = format!("tcp://127.0.0.1:{port}");
    let client = Client::new(options(&uri, "lonely")).unwrap();
    let start = Instant::now();
    let error = client.connect().unwrap_err();
    assert!(start.elapsed() < PATIENCE, "{:?}", start.elapsed());
    match &error {
        Error::Io { context, .. } => assert!(context.contains(&uri), "{error}"),
        other => panic!("expected an IO error, got {other:?}"),
    }
}

#[test]
fn an_unknown_host_is_a_dns_error() {
    let client = Client::new(options("tcp://no-such-host.invalid:1883", "lost")).unwrap();
    let error = client.connect().unwrap_err();
    assert!(
        matches!(&error, Error::Dns { host, .. } if host == "no-such-host.invalid"),
        "{error:?}"
    );
}

#[test]
fn the_second_server_uri_is_used_when_the_first_is_down() {
    let broker = Mosquitto::start();
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let (recorder, events) = Recorder::new();
    let client = Client::new(
        options(&dead, "failover")
            .server_uris(&[&dead, &broker.url()])
            .unwrap(),
    )
    .unwrap();
    client.set_callback(recorder);
    client.connect().unwrap();
    let (_, uri) = events.connected(PATIENCE).unwrap();
    assert_eq!(uri, broker.url());
    client.disconnect(Duration::from_secs(5)).unwrap();
}
