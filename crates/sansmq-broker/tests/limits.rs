//! The broker-wide limits and what happens at each: read buffers that grow with what arrived,
//! sessions, retained messages and queued bytes over all sessions, retained messages delivered
//! whole to a new subscription, and no acknowledged message lost without being counted.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{TestClient, connect_packet, eventually};
use sansmq::packet::{ConnectReturnCode, Packet, PubAck, Publish, QoS};
use sansmq_broker::{BrokerConfig, start};

/// The fixed header and topic `t` of a QoS 0 PUBLISH whose payload is `payload_len` bytes.
fn publish_head(payload_len: usize) -> Vec<u8> {
    let mut wire = BytesMut::new();
    Publish::new(common::topic("t"), Bytes::from(vec![0u8; payload_len]))
        .encode(&mut wire)
        .unwrap();
    let head = wire.len() - payload_len;
    wire[..head].to_vec()
}

#[test]
fn a_trickled_big_publish_costs_what_arrived_not_what_was_announced() {
    let broker = start(BrokerConfig {
        max_packet_size: 4 * 1024 * 1024,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut sub, _) = TestClient::connect(addr, "sub", true);
    sub.subscribe("t", QoS::AtMostOnce);
    let announced = 3 * 1024 * 1024;
    let (mut trickler, _) = TestClient::connect(addr, "trickler", true);
    trickler.send_raw(&publish_head(announced));
    trickler.send_raw(&[7u8; 1000]);
    eventually(common::WAIT, "the first bytes read", || {
        broker.stats().incoming_bytes >= 1000
    });
    let held = broker.stats().incoming_bytes;
    assert!(
        held < 64 * 1024,
        "{held} bytes held for 1 KiB of an announced 3 MiB"
    );
    // The rest arrives and the message goes through; the buffer is given back.
    trickler.send_raw(&vec![7u8; announced - 1000]);
    assert_eq!(sub.expect_publish().payload().len(), announced);
    eventually(common::WAIT, "the read buffer released", || {
        broker.stats().incoming_bytes < 64 * 1024
    });
}

#[test]
fn big_packets_are_admitted_within_the_incoming_limit_and_small_ones_flow() {
    const LIMIT: usize = 1024 * 1024;
    const BIG: usize = 400 * 1024;
    const CLIENTS: usize = 8;
    let broker = start(BrokerConfig {
        max_packet_size: 4 * 1024 * 1024,
        max_incoming_bytes: LIMIT,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut sub, _) = TestClient::connect(addr, "sub", true);
    sub.subscribe("polite", QoS::AtMostOnce);
    let senders: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (mut client, _) = TestClient::connect(addr, &format!("big-{i}"), true);
            std::thread::spawn(move || {
                // Slowly, so that all of them are arriving at once.
                client.send_raw(&publish_head(BIG));
                for _ in 0..BIG / (8 * 1024) {
                    client.send_raw(&[1u8; 8 * 1024]);
                    std::thread::sleep(Duration::from_millis(2));
                }
                // Acknowledged only once the big one before it was handled.
                client.publish("done", b"", QoS::AtLeastOnce);
                client
            })
        })
        .collect();
    // Meanwhile small packets still go through both ways.
    let (mut polite, _) = TestClient::connect(addr, "polite", true);
    let allowance = 64 * 1024 * (CLIENTS + 3);
    let mut peak = 0;
    for i in 0..20u8 {
        polite.publish("polite", &[i], QoS::AtLeastOnce);
        assert_eq!(&sub.expect_publish().payload(), &[i]);
        peak = peak.max(broker.stats().incoming_bytes);
        std::thread::sleep(Duration::from_millis(20));
    }
    while !senders.iter().all(|s| s.is_finished()) {
        peak = peak.max(broker.stats().incoming_bytes);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(peak <= LIMIT + allowance, "{peak} bytes held");
    for sender in senders {
        drop(sender.join().unwrap());
    }
    eventually(common::WAIT, "the read buffers released", || {
        broker.stats().incoming_bytes < 64 * 1024
    });
}

#[test]
fn a_connect_past_max_sessions_gets_server_unavailable() {
    let broker = start(BrokerConfig {
        max_sessions: 2,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (first, _) = TestClient::connect(addr, "first", false);
    let (second, _) = TestClient::connect(addr, "second", true);
    first.disconnect(); // its session stays, offline, and still counts
    let (mut third, ack) = TestClient::connect_with(addr, connect_packet("third", true, 60));
    assert_eq!(ack.code, ConnectReturnCode::ServerUnavailable);
    assert!(!ack.session_present); // MQTT-3.2.2-4
    third.expect_closed(common::WAIT);
    // Resuming a session, or replacing one, adds none: allowed.
    let (_first, present) = TestClient::connect(addr, "first", false);
    assert!(present);
    let (_second, _) = TestClient::connect(addr, "second", true);
    let stats = broker.stats();
    assert_eq!((stats.sessions, stats.sessions_refused), (2, 1));
    drop(second);
}

#[test]
fn retained_messages_past_the_byte_limit_are_refused_and_counted() {
    let broker = start(BrokerConfig {
        max_retained_bytes: 64 * 1024,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    let payload = vec![3u8; 10 * 1024];
    for i in 0..20 {
        let mut publish = Publish::new(
            common::topic(&format!("r/{i}")),
            Bytes::from(payload.clone()),
        );
        publish.retain = true;
        publisher.send(publish);
    }
    publisher.publish("sync", b"", QoS::AtLeastOnce);
    let stats = broker.stats();
    assert_eq!(stats.retained_messages, 6, "{stats:?}");
    assert!(stats.retained_bytes <= 64 * 1024, "{stats:?}");
    assert_eq!(stats.retained_refused, 14);
    // The refused ones are not there for a new subscriber; the kept ones are.
    let (mut sub, _) = TestClient::connect(addr, "sub", true);
    sub.subscribe("r/#", QoS::AtMostOnce);
    for _ in 0..6 {
        assert!(sub.expect_publish().retain);
    }
    sub.expect_nothing(Duration::from_millis(100));
}

#[test]
fn offline_fan_out_stops_at_the_total_queued_bytes_and_counts_the_rest() {
    const TOTAL: usize = 256 * 1024;
    let broker = start(BrokerConfig {
        max_total_queued_bytes: TOTAL,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let sessions = 50;
    for i in 0..sessions {
        let (mut client, _) = TestClient::connect(addr, &format!("offline-{i}"), false);
        client.subscribe("fan/#", QoS::AtLeastOnce);
        client.disconnect();
    }
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    let messages = 100;
    for _ in 0..messages {
        publisher.publish("fan/out", &[9u8; 512], QoS::AtLeastOnce); // each one PUBACKed
    }
    let stats = broker.stats();
    assert!(stats.held_bytes <= TOTAL, "{}", stats.held_bytes);
    let queued: u64 = stats.clients.iter().map(|c| c.queued_messages as u64).sum();
    assert!(stats.dropped > 0);
    assert_eq!(queued + stats.dropped, sessions * messages);
    let per_client: u64 = stats.clients.iter().map(|c| c.dropped).sum();
    assert_eq!(per_client, stats.dropped);
}

/// Subscribes `client` to `filter` at `qos` and reads every message that comes, acknowledging
/// QoS 1 ones; returns how many came.
fn receive_all(client: &mut TestClient, filter: &str, qos: QoS) -> usize {
    client.subscribe(filter, qos);
    let mut received = 0;
    while let common::Recv::Packet(packet) = client.recv(Duration::from_millis(500)) {
        if let Packet::Publish(publish) = packet {
            assert!(publish.retain);
            if let Some(id) = publish.packet_id {
                client.send(PubAck::new(id));
            }
            received += 1;
        }
    }
    received
}

#[test]
fn a_new_subscriber_gets_every_retained_message() {
    let broker = start(BrokerConfig {
        max_queued_messages: 100,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    let count = 2000;
    let mut wire = BytesMut::new();
    for i in 0..count {
        let mut publish = Publish::new(
            common::topic(&format!("many/{i}")),
            Bytes::from(vec![5u8; 1024]),
        );
        publish.retain = true;
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = Some(common::id(1 + i as u16));
        publish.encode(&mut wire).unwrap();
    }
    publisher.send_raw(&wire);
    eventually(common::WAIT, "all retained", || {
        broker.stats().retained_messages == count
    });
    // More than one output buffer (256 KiB) and more than the session queue (100) hold.
    let (mut at_most_once, _) = TestClient::connect(addr, "qos0", true);
    assert_eq!(
        receive_all(&mut at_most_once, "many/#", QoS::AtMostOnce),
        count
    );
    let (mut at_least_once, _) = TestClient::connect(addr, "qos1", true);
    assert_eq!(
        receive_all(&mut at_least_once, "many/#", QoS::AtLeastOnce),
        count
    );
    assert_eq!(broker.stats().dropped, 0);
}

#[test]
fn by_default_a_subscriber_far_behind_loses_nothing() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut sleeper, _) = TestClient::connect(addr, "sleeper", true);
    sleeper.subscribe("burst", QoS::AtLeastOnce);
    // `sleeper` reads nothing until the publisher is done and acknowledged for all.
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    let count: u16 = 5000;
    let mut wire = BytesMut::new();
    for i in 1..=count {
        let mut publish = Publish::new(
            common::topic("burst"),
            Bytes::from(i.to_be_bytes().to_vec()),
        );
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = Some(common::id(i));
        publish.encode(&mut wire).unwrap();
    }
    publisher.send_raw(&wire);
    let mut acked = 0;
    while acked < count {
        if let Packet::PubAck(_) = publisher.next() {
            acked += 1;
        }
    }
    for i in 1..=count {
        let publish = sleeper.expect_publish();
        assert_eq!(publish.payload(), &i.to_be_bytes()[..]);
        sleeper.send(PubAck::new(publish.packet_id.unwrap()));
    }
    assert_eq!(broker.stats().dropped, 0);
}

#[test]
fn every_acknowledged_message_dropped_is_counted_after_its_session_ends() {
    let broker = start(BrokerConfig {
        max_queued_messages: 10,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut slow, _) = TestClient::connect(addr, "slow", true);
    slow.subscribe("t", QoS::AtLeastOnce);
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    let count = 200;
    for _ in 0..count {
        publisher.publish("t", b"m", QoS::AtLeastOnce);
    }
    let mut received = 0;
    while let common::Recv::Packet(packet) = slow.recv(Duration::from_millis(300)) {
        if let Packet::Publish(publish) = packet {
            slow.send(PubAck::new(publish.packet_id.unwrap()));
            received += 1;
        }
    }
    let stats = broker.stats();
    let dropped = stats.client("slow").unwrap().dropped;
    assert_eq!(received + dropped, count);
    assert_eq!(received, 10 + 20, "the queue and the inflight window");
    // The clean session goes; the broker still accounts for what it lost.
    slow.disconnect();
    eventually(common::WAIT, "slow's session gone", || {
        broker.stats().client("slow").is_none()
    });
    assert_eq!(broker.stats().dropped, dropped);
}
