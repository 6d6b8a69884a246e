//! Sessions: persistence while offline, session present, resending, takeover, client ids and
//! keep-alive.

mod common;

use std::time::Duration;

use common::{TestClient, connect_packet, eventually};
use sansmq::packet::{ConnectReturnCode, Packet, Protocol, PubRec, QoS};
use sansmq_broker::{BrokerConfig, start};

const QUIET: Duration = Duration::from_millis(200);

#[test]
fn a_persistent_session_queues_qos1_and_qos2_while_offline_and_reports_session_present() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut sub, present) = TestClient::connect(addr, "keeper", false);
    assert!(!present, "MQTT-3.2.2-3: no session stored yet");
    sub.subscribe("news/#", QoS::ExactlyOnce);
    sub.drop_connection();
    eventually(common::WAIT, "keeper offline", || {
        broker
            .stats()
            .client("keeper")
            .is_some_and(|c| !c.connected)
    });

    let (mut publisher, _) = TestClient::connect(addr, "pub", true);
    publisher.publish("news/1", b"one", QoS::AtLeastOnce);
    publisher.publish("news/2", b"two", QoS::ExactlyOnce);
    publisher.publish("news/3", b"zero", QoS::AtMostOnce); // QoS 0 is not queued
    eventually(common::WAIT, "two queued", || {
        broker.stats().client("keeper").map(|c| c.queued_messages) == Some(2)
    });

    let (mut sub, present) = TestClient::connect(addr, "keeper", false);
    assert!(present, "MQTT-3.2.2-2: the stored session is resumed");
    let first = sub.expect_publish();
    assert_eq!(
        (first.payload(), first.qos),
        (&b"one"[..], QoS::AtLeastOnce)
    );
    sub.ack(&first);
    let second = sub.expect_publish();
    assert_eq!(
        (second.payload(), second.qos),
        (&b"two"[..], QoS::ExactlyOnce)
    );
    sub.ack(&second);
    sub.expect_nothing(QUIET);

    // The subscription was kept too.
    publisher.publish("news/4", b"four", QoS::AtLeastOnce);
    assert_eq!(&sub.expect_publish().payload(), b"four");
}

#[test]
fn clean_session_discards_the_stored_session() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut sub, _) = TestClient::connect(addr, "c", false);
    sub.subscribe("t", QoS::AtLeastOnce);
    sub.disconnect();
    let (sub, present) = TestClient::connect(addr, "c", true);
    assert!(
        !present,
        "MQTT-3.2.2-1: clean session never has a session present"
    );
    sub.disconnect();
    eventually(common::WAIT, "clean session removed on close", || {
        broker.stats().sessions == 0
    });
    let (_sub, present) = TestClient::connect(addr, "c", false);
    assert!(!present);
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_in_order_on_resume() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut sub, _) = TestClient::connect(addr, "slow", false);
    sub.subscribe("work", QoS::ExactlyOnce);
    let (mut publisher, _) = TestClient::connect(addr, "pub", true);
    publisher.publish("work", b"a", QoS::AtLeastOnce);
    publisher.publish("work", b"b", QoS::ExactlyOnce);
    publisher.publish("work", b"c", QoS::ExactlyOnce);

    let a = sub.expect_publish();
    let b = sub.expect_publish();
    let c = sub.expect_publish();
    assert_eq!([a.payload(), b.payload(), c.payload()], [b"a", b"b", b"c"]);
    // Receive `c` half-way: PUBREC sent, PUBREL arrives, PUBCOMP never sent.
    let c_id = c.packet_id.unwrap();
    sub.send(PubRec::new(c_id));
    assert!(matches!(sub.next(), Packet::PubRel(r) if r.packet_id == c_id));
    sub.drop_connection();

    let (mut sub, present) = TestClient::connect(addr, "slow", false);
    assert!(present);
    let a2 = sub.expect_publish();
    assert!(a2.dup, "MQTT-3.3.1-1: a resent PUBLISH has DUP 1");
    assert_eq!((a2.packet_id, a2.payload()), (a.packet_id, &b"a"[..]));
    let b2 = sub.expect_publish();
    assert!(b2.dup);
    assert_eq!(b2.packet_id, b.packet_id);
    // MQTT-4.4.0-1: and the PUBREL again for the message that got that far.
    assert!(matches!(sub.next(), Packet::PubRel(r) if r.packet_id == c_id));
    sub.send(sansmq::packet::PubComp::new(c_id));
    sub.ack(&a2);
    sub.ack(&b2);
    eventually(common::WAIT, "nothing inflight", || {
        broker.stats().client("slow").map(|c| c.inflight_messages) == Some(0)
    });
}

#[test]
fn a_second_connection_with_the_same_client_id_closes_the_first() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut first, _) = TestClient::connect(addr, "twin", false);
    first.subscribe("x", QoS::AtLeastOnce);
    let (mut second, present) = TestClient::connect(addr, "twin", false);
    assert!(present, "the session moves to the new connection");
    first.expect_closed(common::WAIT); // MQTT-3.1.4-2

    let (mut publisher, _) = TestClient::connect(addr, "pub", true);
    publisher.publish("x", b"to the new one", QoS::AtLeastOnce);
    assert_eq!(&second.expect_publish().payload(), b"to the new one");
    assert_eq!(broker.stats().connections, 2);
}

#[test]
fn an_empty_client_id_gets_one_only_with_clean_session() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (_anonymous, ack) = TestClient::connect_with(addr, connect_packet("", true, 60));
    assert_eq!(ack.code, ConnectReturnCode::Accepted); // MQTT-3.1.3-6
    let (mut refused, ack) = TestClient::connect_with(addr, connect_packet("", false, 60));
    assert_eq!(ack.code, ConnectReturnCode::IdentifierRejected); // MQTT-3.1.3-8
    assert!(!ack.session_present);
    refused.expect_closed(common::WAIT);
    let stats = broker.stats();
    assert_eq!(stats.sessions, 1);
    assert!(stats.clients[0].client_id.starts_with("sansmq-broker-"));
}

#[test]
fn mqtt_3_1_clients_are_served() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let mut connect = connect_packet("old-timer", true, 60);
    connect.protocol = Protocol::Mqtt31;
    let (mut old, ack) = TestClient::connect_with(addr, connect);
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    old.subscribe("legacy", QoS::AtLeastOnce);
    let (mut publisher, _) = TestClient::connect(addr, "pub", true);
    publisher.publish("legacy", b"hi", QoS::AtLeastOnce);
    assert_eq!(&old.expect_publish().payload(), b"hi");
}

#[test]
fn an_unsupported_protocol_level_gets_connack_1() {
    let broker = start(BrokerConfig::default()).unwrap();
    let mut client = TestClient::open(broker.local_addr());
    // CONNECT "MQTT" level 6, clean session, keep-alive 60, client id "v6": no such MQTT.
    client.send_raw(&[
        0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x02, b'v',
        b'6',
    ]);
    match client.next() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.code, ConnectReturnCode::UnacceptableProtocolVersion)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    client.expect_closed(common::WAIT); // MQTT-3.1.2-2
}

#[test]
fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut pinging, _) = TestClient::connect_with(addr, connect_packet("pinging", true, 1));
    let (mut silent, _) = TestClient::connect_with(addr, connect_packet("silent", true, 1));

    let start_time = std::time::Instant::now();
    // The pinging client stays: a PINGREQ every 0.9 s.
    let keeper = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(900));
            pinging.send(Packet::PingReq);
            assert_eq!(pinging.next(), Packet::PingResp);
        }
        pinging
    });
    let elapsed = silent.expect_closed(Duration::from_secs(4));
    // MQTT-3.1.2-24: not before 1.5 s (a little timer slack allowed), and not much after.
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "closed after {elapsed:?}"
    );
    let mut pinging = keeper.join().unwrap();
    assert!(start_time.elapsed() > Duration::from_millis(2600));
    pinging.send(Packet::PingReq);
    assert_eq!(pinging.next(), Packet::PingResp);
}

#[test]
fn a_connection_that_never_sends_connect_is_closed() {
    let config = BrokerConfig {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let broker = start(config).unwrap();
    let mut idle = TestClient::open(broker.local_addr());
    idle.expect_closed(common::WAIT);
}

#[test]
fn a_zero_connect_timeout_lets_a_connection_take_its_time() {
    let config = BrokerConfig {
        connect_timeout: Duration::ZERO,
        ..Default::default()
    };
    let broker = start(config).unwrap();
    let mut slow = TestClient::open(broker.local_addr());
    slow.expect_nothing(QUIET);
    slow.send(connect_packet("slow", true, 60));
    match slow.next() {
        Packet::ConnAck(ack) => assert_eq!(ack.code, ConnectReturnCode::Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}
