//! Publish/subscribe through the broker: QoS levels, wildcards, retained and will messages.

mod common;

use std::time::Duration;

use common::{TestClient, connect_packet, eventually, will};
use sansmq::packet::{Packet, PubRec, PubRel, Publish, QoS, SubscribeReturnCode};
use sansmq_broker::{BrokerConfig, start};

const QUIET: Duration = Duration::from_millis(200);

#[test]
fn messages_flow_at_each_qos_and_are_downgraded_to_the_granted_qos() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut sub, _) = TestClient::connect(addr, "sub", true);
    let (mut sub0, _) = TestClient::connect(addr, "sub0", true);
    assert_eq!(
        sub.subscribe("q/+", QoS::ExactlyOnce),
        SubscribeReturnCode::Success(QoS::ExactlyOnce)
    );
    sub0.subscribe("q/#", QoS::AtMostOnce);
    let (mut publisher, _) = TestClient::connect(addr, "pub", true);

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let payload = format!("at {qos}");
        publisher.publish("q/a", payload.as_bytes(), qos);
        let got = sub.expect_publish();
        assert_eq!((got.topic(), got.payload()), ("q/a", payload.as_bytes()));
        assert_eq!(got.qos, qos);
        assert!(!got.retain && !got.dup);
        sub.ack(&got);
        let got0 = sub0.expect_publish();
        assert_eq!(got0.qos, QoS::AtMostOnce, "min(published, granted)");
        assert_eq!(got0.packet_id, None);
    }
    sub.expect_nothing(QUIET);
    sub0.expect_nothing(QUIET);
}

#[test]
fn an_incoming_qos2_message_is_delivered_once_however_often_it_is_resent() {
    let broker = start(BrokerConfig::default()).unwrap();
    let (mut sub, _) = TestClient::connect(broker.local_addr(), "sub", true);
    sub.subscribe("once", QoS::AtMostOnce);
    let (mut publisher, _) = TestClient::connect(broker.local_addr(), "pub", true);

    let mut publish = Publish::new(common::topic("once"), bytes::Bytes::from_static(b"x"));
    publish.qos = QoS::ExactlyOnce;
    publish.packet_id = Some(common::id(7));
    publisher.send(publish.clone());
    assert_eq!(publisher.next(), Packet::PubRec(PubRec::new(common::id(7))));
    publish.dup = true;
    publisher.send(publish.clone());
    assert_eq!(publisher.next(), Packet::PubRec(PubRec::new(common::id(7))));
    publisher.send(PubRel::new(common::id(7)));
    assert!(matches!(publisher.next(), Packet::PubComp(_)));

    assert_eq!(&sub.expect_publish().payload(), b"x");
    sub.expect_nothing(QUIET);

    // After PUBREL the id is free again: the same id is a new message.
    publish.dup = false;
    publisher.send(publish);
    assert!(matches!(publisher.next(), Packet::PubRec(_)));
    assert_eq!(&sub.expect_publish().payload(), b"x");
}

#[test]
fn wildcards_match_levels_and_skip_dollar_topics() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut plus, _) = TestClient::connect(addr, "plus", true);
    plus.subscribe("sport/+/score", QoS::AtMostOnce);
    let (mut hash, _) = TestClient::connect(addr, "hash", true);
    hash.subscribe("#", QoS::AtMostOnce);
    let (mut sys, _) = TestClient::connect(addr, "sys", true);
    sys.subscribe("$SYS/#", QoS::AtMostOnce);
    let (mut publisher, _) = TestClient::connect(addr, "pub", true);

    publisher.publish("sport/tennis/score", b"1", QoS::AtMostOnce);
    publisher.publish("sport/tennis/player/score", b"2", QoS::AtMostOnce);
    publisher.publish("$SYS/broker/load", b"3", QoS::AtMostOnce);

    assert_eq!(&plus.expect_publish().payload(), b"1");
    plus.expect_nothing(QUIET);
    assert_eq!(&hash.expect_publish().payload(), b"1");
    assert_eq!(&hash.expect_publish().payload(), b"2");
    hash.expect_nothing(QUIET); // MQTT-4.7.2-1: `#` does not match `$SYS/...`
    assert_eq!(&sys.expect_publish().payload(), b"3");
    sys.expect_nothing(QUIET);
}

#[test]
fn overlapping_subscriptions_give_one_copy_and_unsubscribe_stops_delivery() {
    let broker = start(BrokerConfig::default()).unwrap();
    let (mut sub, _) = TestClient::connect(broker.local_addr(), "sub", true);
    sub.subscribe("a/#", QoS::AtMostOnce);
    sub.subscribe("a/b", QoS::AtLeastOnce);
    let (mut publisher, _) = TestClient::connect(broker.local_addr(), "pub", true);
    publisher.publish("a/b", b"x", QoS::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(
        got.qos,
        QoS::AtLeastOnce,
        "the highest matching subscription"
    );
    sub.ack(&got);
    sub.expect_nothing(QUIET);

    sub.send(sansmq::packet::Unsubscribe::new(
        common::id(50),
        vec![common::filter("a/#"), common::filter("a/b")],
    ));
    assert!(matches!(sub.next(), Packet::UnsubAck(_)));
    publisher.publish("a/b", b"y", QoS::AtMostOnce);
    sub.expect_nothing(QUIET);
}

#[test]
fn retained_messages_reach_later_subscribers_until_cleared() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut publisher, _) = TestClient::connect(addr, "pub", true);
    let retain = |client: &mut TestClient, topic: &str, payload: &[u8]| {
        let mut publish =
            Publish::new(common::topic(topic), bytes::Bytes::copy_from_slice(payload));
        publish.retain = true;
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = Some(common::id(9));
        client.send(publish);
        assert!(matches!(client.next(), Packet::PubAck(_)));
    };
    retain(&mut publisher, "status/a", b"old");
    retain(&mut publisher, "status/a", b"on");
    retain(&mut publisher, "status/b", b"off");

    let (mut sub, _) = TestClient::connect(addr, "late", true);
    sub.subscribe("status/a", QoS::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(got.payload(), b"on");
    assert!(
        got.retain,
        "MQTT-3.3.1-8: RETAIN 1 for a retained message on subscribe"
    );
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.ack(&got);
    sub.expect_nothing(QUIET);

    // Live messages to existing subscribers go with RETAIN 0 (MQTT-3.3.1-9).
    retain(&mut publisher, "status/a", b"live");
    let live = sub.expect_publish();
    assert!(!live.retain);
    sub.ack(&live);

    retain(&mut publisher, "status/a", b""); // clears it
    let cleared = sub.expect_publish();
    assert!(cleared.payload_bytes().is_empty());
    sub.ack(&cleared);
    let (mut later, _) = TestClient::connect(addr, "later", true);
    later.subscribe("status/#", QoS::AtMostOnce);
    let got = later.expect_publish();
    assert_eq!((got.topic(), got.payload()), ("status/b", &b"off"[..]));
    later.expect_nothing(QUIET);
    assert_eq!(broker.stats().retained_messages, 1);
}

#[test]
fn a_will_is_published_on_abrupt_close_but_not_after_disconnect() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut watcher, _) = TestClient::connect(addr, "watcher", true);
    watcher.subscribe("wills/#", QoS::AtLeastOnce);

    let mut connect = connect_packet("dying", true, 60);
    connect.will = Some(will("wills/dying", b"gone", QoS::AtLeastOnce, false));
    let (dying, _) = TestClient::connect_with(addr, connect);
    dying.drop_connection();
    let got = watcher.expect_publish();
    assert_eq!((got.topic(), got.payload()), ("wills/dying", &b"gone"[..]));
    assert_eq!(got.qos, QoS::AtLeastOnce);
    watcher.ack(&got);

    let mut connect = connect_packet("polite", true, 60);
    connect.will = Some(will("wills/polite", b"gone", QoS::AtMostOnce, false));
    let (polite, _) = TestClient::connect_with(addr, connect);
    polite.disconnect();
    eventually(common::WAIT, "polite session gone", || {
        broker.stats().client("polite").is_none()
    });
    watcher.expect_nothing(QUIET);
}

#[test]
fn a_retained_will_is_kept_for_later_subscribers() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let mut connect = connect_packet("sensor", true, 60);
    connect.will = Some(will("sensors/1/online", b"false", QoS::AtMostOnce, true));
    let (sensor, _) = TestClient::connect_with(addr, connect);
    sensor.drop_connection();
    eventually(common::WAIT, "will retained", || {
        broker.stats().retained_messages == 1
    });
    let (mut sub, _) = TestClient::connect(addr, "dashboard", true);
    sub.subscribe("sensors/+/online", QoS::AtMostOnce);
    let got = sub.expect_publish();
    assert!(got.retain);
    assert_eq!(got.payload(), b"false");
}
