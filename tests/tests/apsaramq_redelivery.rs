//! ApsaraMQ re-delivers a QoS 1 message its consumer has not acknowledged every few seconds while
//! it stays connected. sansmq's clients hold the acknowledgement until the application is done
//! with a message, and a copy of a message whose acknowledgement is still pending is the same
//! publication (MQTT-4.3.2): it is dropped, so a slow handler is not handed the copies the broker
//! (the local one, re-delivering every 150 ms here) sends while it works — five or so per
//! message here. One copy may still cross the acknowledgement on the wire; after the PUBACK it
//! is a new publication and is delivered, which is what deduplication is for.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig};

/// How long the broker waits for an acknowledgement before sending a message again.
const INTERVAL: Duration = Duration::from_millis(150);
/// How long the application takes over each message: several intervals.
const SLOW: Duration = Duration::from_millis(800);
const MESSAGES: usize = 3;
const INSTANCE: &str = "mqtt-cn-redelivery";
const KEY_ID: &str = "LTAIredelivery";
const SECRET: &str = "redelivery-secret";

fn broker() -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(KEY_ID, SECRET)
        .redelivery_interval(INTERVAL);
    sansmq_broker::start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .unwrap()
}

/// A Signature login as `GID_redelivery@@@<device>` to the broker at `addr`.
fn options(addr: SocketAddr, device: &str) -> sansmq_mio::ConnectOptions {
    let client_id = sansmq_apsaramq::ClientId::new("GID_redelivery", device).unwrap();
    let auth = sansmq_apsaramq::AuthMode::signature(
        sansmq_apsaramq::AccessKey::new(KEY_ID, SECRET),
        INSTANCE,
    );
    sansmq_apsaramq::apsaramq_options(&format!("tcp://{addr}"), &client_id, auth)
        .unwrap()
        .time_to_wait(common::PATIENCE)
}

/// Publishes [`MESSAGES`] QoS 1 messages to `topic` from a client of its own.
fn publish(broker: &Broker, topic: &str) {
    let publisher = sansmq_mio::Client::new(options(broker.local_addr(), "publisher")).unwrap();
    publisher.connect().unwrap();
    for n in 0..MESSAGES {
        publisher
            .publish(topic, format!("m{n}"), QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
    }
    publisher.disconnect(common::PATIENCE).unwrap();
}

/// The broker's count of re-deliveries cannot be read, so a raw MQTT peer confirms that this
/// broker does re-deliver within [`SLOW`]: without that, the clients' tests prove nothing.
fn assert_the_broker_redelivers(addr: SocketAddr) {
    use std::io::{Read, Write};

    use sansmq::packet::{Connect, Packet, PacketDecoder, Subscribe};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let client_id = "GID_redelivery@@@raw";
    let mut connect = Connect::new(sansmq::MqttString::try_from(client_id).unwrap());
    connect.username =
        Some(sansmq::MqttString::try_from(format!("Signature|{KEY_ID}|{INSTANCE}")).unwrap());
    connect.password = Some(sansmq::packet::Password::from(
        sansmq_broker::signature(SECRET, client_id).as_str(),
    ));
    let filter = sansmq::TopicFilter::try_from("raw/#").unwrap();
    let id = sansmq::packet::PacketId::new(1).unwrap();
    let mut wire = bytes::BytesMut::new();
    Packet::Connect(Box::new(connect))
        .encode(&mut wire)
        .unwrap();
    Packet::Subscribe(Subscribe::new(id, filter, QoS::AtLeastOnce))
        .encode(&mut wire)
        .unwrap();
    socket.write_all(&wire).unwrap();
    let mut decoder = PacketDecoder::new(1 << 20);
    let mut publishes = Vec::new();
    let mut buf = [0u8; 4096];
    let mut published = false;
    while publishes.len() < 2 {
        while let Some(packet) = decoder.next_packet().unwrap() {
            match packet {
                Packet::SubAck(_) if !published => {
                    publish_one(addr);
                    published = true;
                }
                Packet::Publish(p) => publishes.push(p),
                _ => {}
            }
        }
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the broker closed the connection");
        decoder.extend_from_slice(&buf[..n]);
    }
    assert!(!publishes[0].dup && publishes[1].dup);
    assert_eq!(publishes[0].packet_id, publishes[1].packet_id);
}

fn publish_one(addr: SocketAddr) {
    let publisher = sansmq_mio::Client::new(options(addr, "raw-publisher")).unwrap();
    publisher.connect().unwrap();
    publisher
        .publish("raw/x", "once", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    publisher.close();
}

/// Each message handled in order, with at most one later copy each: one that crossed its
/// acknowledgement (the copies sent while it was being handled, several per message, are gone).
fn assert_handled_once_each(handled: &[String]) {
    assert_eq!(
        handled.get(..MESSAGES),
        Some(&["m0", "m1", "m2"].map(String::from)[..]),
        "{handled:?}"
    );
    for message in ["m0", "m1", "m2"] {
        let copies = handled.iter().filter(|m| *m == message).count();
        assert!(copies <= 2, "{message} handled {copies} times: {handled:?}");
    }
}

struct Slow {
    seen: Arc<Mutex<Vec<String>>>,
}

impl sansmq_mio::Callback for Slow {
    fn message_arrived(&self, _topic: &str, message: &sansmq_mio::Message) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(String::from_utf8_lossy(&message.payload).into_owned());
        std::thread::sleep(SLOW);
    }
}

#[test]
fn a_slow_callback_is_not_handed_the_copies_sent_while_it_works() {
    let broker = broker();
    assert_the_broker_redelivers(broker.local_addr());
    let consumer = sansmq_mio::Client::new(options(broker.local_addr(), "consumer")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    consumer.set_callback(Slow {
        seen: Arc::clone(&seen),
    });
    consumer.connect().unwrap();
    consumer.subscribe(&[("slow/#", QoS::AtLeastOnce)]).unwrap();
    publish(&broker, "slow/x");
    std::thread::sleep(SLOW * u32::try_from(MESSAGES + 2).unwrap());
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_handled_once_each(&seen);
    consumer.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_async_consumer_with_manual_acks_is_not_handed_the_copies_sent_while_it_works() {
    let broker = broker();
    let (client, mut events) = sansmq_tokio::Client::builder(options(broker.local_addr(), "async"))
        .manual_acks(true)
        .build()
        .unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("slow/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let broker = Arc::new(broker);
    let for_publisher = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || publish(&for_publisher, "slow/y"))
        .await
        .unwrap();
    let mut payloads = Vec::new();
    // Each message is held for several re-delivery intervals before it is acknowledged.
    while let Ok(Some(message)) = tokio::time::timeout(SLOW * 2, events.next_message()).await {
        payloads.push(String::from_utf8_lossy(&message.payload).into_owned());
        tokio::time::sleep(SLOW).await;
        client.ack(&message).await.unwrap();
    }
    assert_handled_once_each(&payloads);
}
