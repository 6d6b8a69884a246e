//! A `DeliveryToken` says what it tracks, as Paho's `getTopics()` and `getMessageId()` do: the
//! topic the message went to and, for QoS 1/2, its packet id, both on the token `publish`
//! returns and on the one `delivery_complete` receives.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use sansmq_e2e::Mosquitto;
use sansmq_mio::{Callback, Client, DeliveryToken, QoS};

use common::{PATIENCE, options};

/// Hands every completed token to the test.
struct Deliveries(mpsc::Sender<DeliveryToken>);

impl Callback for Deliveries {
    fn delivery_complete(&self, token: &DeliveryToken) {
        let _ = self.0.send(token.clone());
    }
}

#[test]
fn a_delivery_token_names_its_topic_and_packet_id() {
    let broker = Mosquitto::start();
    let client = Client::new(options(&broker.url(), "tokens")).unwrap();
    let (sender, completed) = mpsc::channel();
    client.set_callback(Deliveries(sender));
    client.connect().unwrap();

    let qos0 = client
        .publish("tokens/zero", "0", QoS::AtMostOnce, false)
        .unwrap();
    assert_eq!(qos0.topic().as_str(), "tokens/zero");
    assert_eq!(qos0.message_id(), None);
    assert_eq!(qos0.qos(), QoS::AtMostOnce);

    let mut ids = Vec::new();
    for (topic, qos) in [
        ("tokens/one", QoS::AtLeastOnce),
        ("tokens/two", QoS::ExactlyOnce),
    ] {
        let token = client.publish(topic, "x", qos, false).unwrap();
        assert_eq!(token.topic().as_str(), topic);
        assert_eq!(token.qos(), qos);
        let id = token
            .message_id()
            .expect("QoS 1/2 messages have a packet id");
        token.wait().unwrap();
        assert!(token.is_complete());
        let done = completed.recv_timeout(PATIENCE).expect("delivery_complete");
        assert_eq!(done.topic().as_str(), topic);
        assert_eq!(done.message_id(), Some(id));
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    client.disconnect(Duration::from_secs(5)).unwrap();
}
