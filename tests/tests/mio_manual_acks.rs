//! Manual acknowledgements (Paho's `setManualAcks` / `messageArrivedComplete`): a received QoS 1
//! message is acknowledged when the application says it is done with it, not when it reaches the
//! receiver, in arrival order, and never across a session the broker forgot.

mod common;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{Packet, PacketId, Publish, QoS};
use sansmq_e2e::{Peer, ScriptedBroker};
use sansmq_mio::{Callback, Client, Error, Message, Messages};

/// How long to watch for an acknowledgement that must not come.
const QUIET: Duration = Duration::from_millis(400);

fn publish(id: u16, payload: &'static str) -> Packet {
    let mut publish = Publish::new(
        TopicName::try_from("acks/test").unwrap(),
        Bytes::from_static(payload.as_bytes()),
    );
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = PacketId::new(id);
    Packet::Publish(publish)
}

/// Reports the PUBACK ids the client sends on `peer` until it goes away.
fn report_acks(mut peer: Peer, acks: &Sender<u16>) {
    while !peer.is_closed() {
        if let Some(Packet::PubAck(ack)) = peer.recv_within(Duration::from_millis(50)) {
            if acks.send(ack.packet_id.get()).is_err() {
                return;
            }
        }
    }
}

fn client(broker: &ScriptedBroker) -> (Client, Messages) {
    let options = common::options(&broker.url(), "manual-acks")
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let client = Client::new(options).unwrap();
    let messages = client.messages(16);
    client.set_manual_acks(true);
    client.connect().unwrap();
    (client, messages)
}

fn next(messages: &Messages) -> Message {
    messages.recv_timeout(common::PATIENCE).expect("a message")
}

#[test]
fn a_message_in_the_receiver_is_acknowledged_only_when_the_application_acks_it() {
    let (tx, acks) = mpsc::channel();
    let broker = ScriptedBroker::start(move |mut peer| {
        peer.accept();
        peer.send(&publish(1, "one"));
        peer.send(&publish(2, "two"));
        report_acks(peer, &tx);
    });
    let (client, messages) = client(&broker);
    let one = next(&messages);
    let two = next(&messages);
    assert_eq!(
        acks.recv_timeout(QUIET).ok(),
        None,
        "acknowledged before the application was done"
    );

    // Acks keep arrival order (MQTT-4.6.0-2): the second waits for the first.
    client.ack(&two).unwrap();
    assert_eq!(acks.recv_timeout(QUIET).ok(), None);
    client.ack(&one).unwrap();
    assert_eq!(acks.recv_timeout(common::PATIENCE).ok(), Some(1));
    assert_eq!(acks.recv_timeout(common::PATIENCE).ok(), Some(2));

    assert!(
        matches!(client.ack(&one), Err(Error::Command(_))),
        "a second ack of the same message is refused"
    );
    client.close();
}

#[test]
fn an_ack_for_a_session_the_broker_forgot_does_not_acknowledge_a_new_message_with_its_id() {
    let (tx, acks) = mpsc::channel();
    let broker = ScriptedBroker::start(move |mut peer| {
        peer.accept(); // session_present = 0 every time
        if peer.index() == 0 {
            peer.send(&publish(7, "old"));
            std::thread::sleep(Duration::from_millis(200));
            peer.close();
        } else {
            peer.send(&publish(7, "new"));
            report_acks(peer, &tx);
        }
    });
    let (client, messages) = client(&broker);
    let old = next(&messages);
    assert_eq!(old.payload, "old");
    let new = next(&messages);
    assert_eq!(new.payload, "new");

    assert!(
        client.ack(&old).is_err(),
        "the old session's message is gone"
    );
    assert_eq!(
        acks.recv_timeout(QUIET).ok(),
        None,
        "the late ack of the old message acknowledged the new one, unseen"
    );
    client.ack(&new).unwrap();
    assert_eq!(acks.recv_timeout(common::PATIENCE).ok(), Some(7));
    client.close();
}

/// Acknowledges each message from `message_arrived` only once the test lets it.
struct AckWhenTold {
    client: Client,
    arrived: Mutex<Sender<()>>,
    go: Mutex<Receiver<()>>,
}

impl Callback for AckWhenTold {
    fn message_arrived(&self, _topic: &str, message: &Message) {
        let _ = lock(&self.arrived).send(());
        let _ = lock(&self.go).recv();
        self.client.ack(message).unwrap();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn with_manual_acks_a_callback_acknowledges_by_calling_ack_not_by_returning() {
    let (tx, acks) = mpsc::channel();
    let broker = ScriptedBroker::start(move |mut peer| {
        peer.accept();
        peer.send(&publish(3, "three"));
        report_acks(peer, &tx);
    });
    let client = Client::new(common::options(&broker.url(), "manual-acks-callback")).unwrap();
    let (arrived_tx, arrived) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    client.set_manual_acks(true);
    client.set_callback(AckWhenTold {
        client: client.clone(),
        arrived: Mutex::new(arrived_tx),
        go: Mutex::new(go_rx),
    });
    client.connect().unwrap();
    arrived
        .recv_timeout(common::PATIENCE)
        .expect("message_arrived");
    assert_eq!(
        acks.recv_timeout(QUIET).ok(),
        None,
        "acknowledged inside the callback"
    );
    go.send(()).unwrap();
    assert_eq!(acks.recv_timeout(common::PATIENCE).ok(), Some(3));
    client.close();
}

/// Only returns from `message_arrived` when told, and never acknowledges itself.
struct ReturnWhenTold {
    go: Mutex<Receiver<()>>,
    returned: Mutex<Sender<()>>,
}

impl Callback for ReturnWhenTold {
    fn message_arrived(&self, _topic: &str, _message: &Message) {
        let _ = lock(&self.go).recv();
        let _ = lock(&self.returned).send(());
    }
}

#[test]
fn with_manual_acks_returning_from_the_callback_acknowledges_nothing() {
    let (tx, acks) = mpsc::channel();
    let broker = ScriptedBroker::start(move |mut peer| {
        peer.accept();
        peer.send(&publish(4, "four"));
        report_acks(peer, &tx);
    });
    let client = Client::new(common::options(&broker.url(), "manual-acks-return")).unwrap();
    let (go, go_rx) = mpsc::channel();
    let (returned_tx, returned) = mpsc::channel();
    client.set_manual_acks(true);
    client.set_callback(ReturnWhenTold {
        go: Mutex::new(go_rx),
        returned: Mutex::new(returned_tx),
    });
    client.connect().unwrap();
    go.send(()).unwrap();
    returned
        .recv_timeout(common::PATIENCE)
        .expect("message_arrived returned");
    assert_eq!(
        acks.recv_timeout(QUIET).ok(),
        None,
        "acknowledged on return"
    );
    client.close();
}
