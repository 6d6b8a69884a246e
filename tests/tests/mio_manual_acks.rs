//! Manual acknowledgements (Paho's `setManualAcks` / `messageArrivedComplete`): a received QoS 1
//! message is acknowledged when the application says it is done with it, not when it reaches the
//! receiver, in arrival order, and never across a session the broker forgot.

mod common;

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{Packet, PacketId, Publish, QoS};
use sansmq_e2e::{Peer, ScriptedBroker};
use sansmq_mio::{Client, Error, Message};

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

fn client(broker: &ScriptedBroker) -> (Client, Receiver<Message>) {
    let options = common::options(&broker.url(), "manual-acks")
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let client = Client::new(options).unwrap();
    let messages = client.messages(16);
    client.set_manual_acks(true);
    client.connect().unwrap();
    (client, messages)
}

fn next(messages: &Receiver<Message>) -> Message {
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
