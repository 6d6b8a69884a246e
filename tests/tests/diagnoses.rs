//! Diagnoses that do not mislead, for both clients. A broker that closes the connection cleanly
//! right after a SUBSCRIBE probably refused the filter; but a broker that is killed closes its
//! connections right after whatever came last too. So a reset is not blamed on the topic, a
//! refused reconnect after a close says the broker is down, and garbage from the broker between
//! CONNACK and SUBACK fails the subscribe at once with the decode error, instead of the subscribe
//! being sent again on every reconnect until its wait times out. A real mosquitto killed right
//! after a PUBLISH leaves either an end of stream or a reset; both end with "probably down".

mod common;

use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use sansmq::DisconnectReason;
use sansmq::packet::{Packet, QoS};
use sansmq_e2e::{Mosquitto, Peer, ScriptedBroker};
use sansmq_mio::{Diagnosis, Error};

use common::{PATIENCE, Recorder, options};

const FILTER: &str = "parent/x";

/// A broker that accepts every connection and does `on_subscribe` with the first SUBSCRIBE.
fn broker(on_subscribe: fn(Peer)) -> ScriptedBroker {
    ScriptedBroker::start(move |mut peer: Peer| {
        if peer.accept().is_none() {
            return;
        }
        loop {
            match peer.recv() {
                Some(Packet::Subscribe(_)) => return on_subscribe(peer),
                Some(_) => {}
                None if peer.is_closed() => return,
                None => {}
            }
        }
    })
}

/// What each scenario needs of a client.
trait Driver {
    /// A connected client; `reconnect` turns automatic reconnect on (quickly).
    fn connected(url: &str, client_id: &str, reconnect: bool) -> Self;
    /// Subscribes to [`FILTER`] on a thread of its own; its outcome arrives on the receiver.
    fn subscribe_in_background(&self) -> Receiver<Result<Vec<QoS>, Error>>;
    /// The cause of the next connection loss.
    fn next_loss(&self) -> Error;
    /// `connect` again.
    fn connect(&self) -> Result<bool, Error>;
    /// Publishes at QoS 0 (never acknowledged, so a close soon after points at its topic).
    fn publish_qos0(&self, topic: &str);
}

fn driver_options(url: &str, client_id: &str, reconnect: bool) -> sansmq_mio::ConnectOptions {
    let options = options(url, client_id).time_to_wait(Duration::from_secs(10));
    if reconnect {
        options.automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200))
    } else {
        options
    }
}

struct Mio {
    client: sansmq_mio::Client,
    events: common::Events,
}

impl Driver for Mio {
    fn connected(url: &str, client_id: &str, reconnect: bool) -> Self {
        let client = sansmq_mio::Client::new(driver_options(url, client_id, reconnect)).unwrap();
        let (recorder, events) = Recorder::new();
        client.set_callback(recorder);
        client.connect().unwrap();
        Self { client, events }
    }

    fn subscribe_in_background(&self) -> Receiver<Result<Vec<QoS>, Error>> {
        let (tx, rx) = mpsc::channel();
        let client = self.client.clone();
        thread::spawn(move || tx.send(client.subscribe(&[(FILTER, QoS::AtLeastOnce)])));
        rx
    }

    fn next_loss(&self) -> Error {
        self.events.lost(PATIENCE).expect("a connection loss").0
    }

    fn connect(&self) -> Result<bool, Error> {
        self.client.connect()
    }

    fn publish_qos0(&self, topic: &str) {
        self.client
            .publish(topic, "x", QoS::AtMostOnce, false)
            .unwrap();
    }
}

impl Drop for Mio {
    fn drop(&mut self) {
        self.client.close();
    }
}

struct Tokio {
    runtime: tokio::runtime::Runtime,
    client: sansmq_tokio::Client,
    losses: Receiver<Error>,
}

impl Driver for Tokio {
    fn connected(url: &str, client_id: &str, reconnect: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (client, mut events) = {
            let _context = runtime.enter();
            sansmq_tokio::Client::new(driver_options(url, client_id, reconnect)).unwrap()
        };
        let (tx, losses) = mpsc::channel();
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                if let sansmq_tokio::Event::ConnectionLost { cause } = event {
                    let _ = tx.send(cause);
                }
            }
        });
        runtime.block_on(client.connect()).unwrap();
        Self {
            runtime,
            client,
            losses,
        }
    }

    fn subscribe_in_background(&self) -> Receiver<Result<Vec<QoS>, Error>> {
        let (tx, rx) = mpsc::channel();
        let client = self.client.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(client.subscribe(&[(FILTER, QoS::AtLeastOnce)]).await);
        });
        rx
    }

    fn next_loss(&self) -> Error {
        self.losses
            .recv_timeout(PATIENCE)
            .expect("a connection loss")
    }

    fn connect(&self) -> Result<bool, Error> {
        self.runtime.block_on(self.client.connect())
    }

    fn publish_qos0(&self, topic: &str) {
        self.runtime
            .block_on(self.client.publish(topic, "x", QoS::AtMostOnce, false))
            .unwrap();
    }
}

/// A clean close right after SUBSCRIBE may be blamed on the filter; but when the broker then
/// refuses the next connection, it was going down, and the error of that attempt says so.
fn a_refused_reconnect_after_a_close_says_the_broker_is_down<D: Driver>() {
    let broker = broker(Peer::close);
    let client = D::connected(&broker.url(), "killed", false);
    let _subscribe = client.subscribe_in_background();
    let loss = client.next_loss();
    assert!(
        matches!(&loss, Error::ClosedByBroker(Diagnosis::NotAuthorised { topic, .. }) if topic == FILTER),
        "a clean close right after SUBSCRIBE: {loss:?}"
    );
    drop(broker); // the broker's port closes: it is down
    let error = client.connect().expect_err("nothing listens any more");
    match &error {
        Error::ClosedByBroker(Diagnosis::BrokerDown { topic, reason, .. }) => {
            assert_eq!(topic, FILTER);
            assert!(reason.contains("connecting to"), "{reason}");
        }
        other => panic!("expected the broker to be called down, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("the broker is probably down or unreachable"),
        "{message}"
    );
    assert!(!message.contains("not authorised"), "{message}");
}

/// A reset right after SUBSCRIBE is what a killed broker leaves too: it is reported as the
/// reset it is.
fn a_reset_right_after_subscribe_is_not_blamed_on_the_filter<D: Driver>() {
    let broker = broker(Peer::reset);
    let client = D::connected(&broker.url(), "reset", false);
    let _subscribe = client.subscribe_in_background();
    let loss = client.next_loss();
    match &loss {
        Error::Io { reason, .. } => {
            assert!(reason.to_lowercase().contains("reset"), "{reason}");
        }
        other => panic!("expected the reset as an IO error, got {other:?}"),
    }
}

/// Garbage instead of SUBACK: the subscribe fails at once with the decode error, rather than
/// being sent again on every reconnect until its wait runs out.
fn garbage_before_suback_fails_the_subscribe_with_the_decode_error<D: Driver>() {
    let broker = broker(|mut peer| {
        // Packet type 0 is reserved (MQTT 2.2.1).
        peer.send_raw(&[0x00, 0x00]);
        while !peer.is_closed() {
            let _ = peer.recv();
        }
    });
    let client = D::connected(&broker.url(), "garbage", true);
    let outcome = client
        .subscribe_in_background()
        .recv_timeout(PATIENCE)
        .expect("the subscribe ends");
    match outcome {
        Err(Error::ConnectionLost(DisconnectReason::Malformed(_))) => {}
        other => panic!("expected the decode error, got {other:?}"),
    }
}

/// mosquitto killed right after a QoS 0 PUBLISH: its close looks like a refusal of the topic,
/// but the reconnect finds nothing listening, and says the broker is down.
fn a_killed_broker_is_called_down<D: Driver>() {
    let broker = Mosquitto::start();
    let client = D::connected(&broker.url(), "victim", false);
    client.publish_qos0(FILTER);
    broker.kill();
    let loss = client.next_loss();
    let error = client.connect().expect_err("the broker is gone");
    let message = error.to_string();
    assert!(!message.contains("not authorised"), "{message}");
    if let Error::ClosedByBroker(Diagnosis::NotAuthorised { .. }) | Error::Io { .. } = loss {
        // The loss came within the window, as a clean close or a reset.
        assert!(
            matches!(&error, Error::ClosedByBroker(Diagnosis::BrokerDown { topic, .. }) if topic == FILTER),
            "after {loss:?}: {error:?}"
        );
    }
}

#[test]
fn mio_a_killed_broker_is_called_down() {
    a_killed_broker_is_called_down::<Mio>();
}

#[test]
fn tokio_a_killed_broker_is_called_down() {
    a_killed_broker_is_called_down::<Tokio>();
}

#[test]
fn mio_a_refused_reconnect_after_a_close_says_the_broker_is_down() {
    a_refused_reconnect_after_a_close_says_the_broker_is_down::<Mio>();
}

#[test]
fn tokio_a_refused_reconnect_after_a_close_says_the_broker_is_down() {
    a_refused_reconnect_after_a_close_says_the_broker_is_down::<Tokio>();
}

#[test]
fn mio_a_reset_right_after_subscribe_is_not_blamed_on_the_filter() {
    a_reset_right_after_subscribe_is_not_blamed_on_the_filter::<Mio>();
}

#[test]
fn tokio_a_reset_right_after_subscribe_is_not_blamed_on_the_filter() {
    a_reset_right_after_subscribe_is_not_blamed_on_the_filter::<Tokio>();
}

#[test]
fn mio_garbage_before_suback_fails_the_subscribe_with_the_decode_error() {
    garbage_before_suback_fails_the_subscribe_with_the_decode_error::<Mio>();
}

#[test]
fn tokio_garbage_before_suback_fails_the_subscribe_with_the_decode_error() {
    garbage_before_suback_fails_the_subscribe_with_the_decode_error::<Tokio>();
}
