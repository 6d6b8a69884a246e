//! Routing through the subscription index: it follows sessions as they end and are replaced, and
//! topics and filters are held to the configured depth and length.

mod common;

use std::time::Duration;

use common::{TestClient, connect_packet, will};
use sansmq::packet::{ConnectReturnCode, Packet, QoS, SubscribeReturnCode, Unsubscribe};
use sansmq_broker::{BrokerConfig, start};

const QUIET: Duration = Duration::from_millis(200);
const PATIENCE: Duration = Duration::from_secs(5);

#[test]
fn an_ended_clean_session_takes_its_subscriptions_with_it() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut watcher, _) = TestClient::connect(addr, "watcher", true);
    watcher.subscribe("t/#", QoS::AtMostOnce);

    let (mut clean, _) = TestClient::connect(addr, "returning", true);
    clean.subscribe("t/#", QoS::AtLeastOnce);
    clean.drop_connection();
    let (mut persistent, _) = TestClient::connect(addr, "resumed-clean", false);
    persistent.subscribe("t/+", QoS::AtLeastOnce);
    persistent.disconnect();

    // The same client ids come back with clean sessions and no subscription.
    let (mut returning, _) = TestClient::connect(addr, "returning", true);
    let (mut resumed, present) = TestClient::connect(addr, "resumed-clean", true);
    assert!(!present);
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    publisher.publish("t/x", b"for subscribers only", QoS::AtLeastOnce);
    assert_eq!(
        watcher.expect_publish().payload_bytes().as_ref(),
        b"for subscribers only"
    );
    returning.expect_nothing(QUIET);
    resumed.expect_nothing(QUIET);
}

#[test]
fn a_persistent_session_keeps_its_subscriptions_while_offline() {
    let broker = start(BrokerConfig::default()).unwrap();
    let addr = broker.local_addr();
    let (mut subscriber, _) = TestClient::connect(addr, "offline", false);
    subscriber.subscribe("t/+", QoS::AtLeastOnce);
    subscriber.subscribe("t/#", QoS::AtMostOnce);
    subscriber.send(Unsubscribe::new(
        common::id(50),
        vec![common::filter("t/#")],
    ));
    assert!(matches!(subscriber.next(), Packet::UnsubAck(_)));
    subscriber.disconnect();

    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    publisher.publish("t/x", b"queued", QoS::AtLeastOnce);
    let (mut subscriber, present) = TestClient::connect(addr, "offline", false);
    assert!(present);
    let queued = subscriber.expect_publish();
    assert_eq!(
        (queued.payload_bytes().as_ref(), queued.qos),
        (&b"queued"[..], QoS::AtLeastOnce)
    );
    subscriber.ack(&queued);
    subscriber.expect_nothing(QUIET);
}

fn limited() -> BrokerConfig {
    BrokerConfig {
        max_topic_levels: 4,
        max_topic_length: 32,
        ..BrokerConfig::default()
    }
}

#[test]
fn filters_over_the_topic_limits_get_the_failure_code() {
    let broker = start(limited()).unwrap();
    let (mut client, _) = TestClient::connect(broker.local_addr(), "limited", true);
    assert_eq!(
        client.subscribe("a/b/c/d/e", QoS::AtMostOnce),
        SubscribeReturnCode::Failure
    );
    let long = format!("x/{}", "y".repeat(31));
    assert_eq!(
        client.subscribe(&long, QoS::AtMostOnce),
        SubscribeReturnCode::Failure
    );
    assert_eq!(
        client.subscribe("a/b/+/#", QoS::AtMostOnce),
        SubscribeReturnCode::Success(QoS::AtMostOnce)
    );
    assert_eq!(broker.stats().clients[0].subscriptions, 1);
}

#[test]
fn a_publish_over_the_topic_limits_closes_its_connection() {
    let broker = start(limited()).unwrap();
    let addr = broker.local_addr();
    let (mut subscriber, _) = TestClient::connect(addr, "subscriber", true);
    subscriber.subscribe("#", QoS::AtMostOnce);
    let (mut publisher, _) = TestClient::connect(addr, "publisher", true);
    publisher.publish("a/b/c/d", b"four levels", QoS::AtMostOnce);
    assert_eq!(
        subscriber.expect_publish().payload_bytes().as_ref(),
        b"four levels"
    );

    let (mut deep, _) = TestClient::connect(addr, "deep", true);
    deep.publish("a/b/c/d/e", b"five levels", QoS::AtMostOnce);
    deep.expect_closed(PATIENCE);
    let (mut long, _) = TestClient::connect(addr, "long", true);
    long.publish(&"z".repeat(33), b"33 bytes", QoS::AtMostOnce);
    long.expect_closed(PATIENCE);
    subscriber.expect_nothing(QUIET);
}

#[test]
fn a_will_topic_over_the_topic_limits_is_refused_at_connect() {
    let broker = start(limited()).unwrap();
    let mut connect = connect_packet("deep-will", true, 60);
    connect.will = Some(will("a/b/c/d/e", b"gone", QoS::AtMostOnce, false));
    let (_, ack) = TestClient::connect_with(broker.local_addr(), connect);
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
}

#[test]
fn zero_topic_limits_let_deep_topics_through() {
    let config = BrokerConfig {
        max_topic_levels: 0,
        max_topic_length: 0,
        ..BrokerConfig::default()
    };
    let broker = start(config).unwrap();
    let addr = broker.local_addr();
    let deep = vec!["level"; 200].join("/");
    let (mut subscriber, _) = TestClient::connect(addr, "deep-subscriber", true);
    assert_eq!(
        subscriber.subscribe(&format!("{deep}/#"), QoS::AtMostOnce),
        SubscribeReturnCode::Success(QoS::AtMostOnce)
    );
    let (mut publisher, _) = TestClient::connect(addr, "deep-publisher", true);
    publisher.publish(&deep, b"200 levels", QoS::AtMostOnce);
    assert_eq!(
        subscriber.expect_publish().payload_bytes().as_ref(),
        b"200 levels"
    );
}
