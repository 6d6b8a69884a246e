//! MQTT 5 sessions beside MQTT 3.1.1 ones: CONNACK's properties, session expiry, properties
//! forwarded (or dropped for MQTT 3.1.1), Topic Aliases, subscription options and identifiers,
//! message expiry, Receive Maximum and Maximum Packet Size both ways, Reason Codes, and the
//! broker's DISCONNECT with its reason.

mod common;

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{TestClient, connect_packet, connect_v5, filter, topic};
use sansmq::MqttString;
use sansmq::packet::{
    ConnAck, Connect, Disconnect, Packet, PayloadFormat, Properties, PubRec, Publish, QoS,
    ReasonCode, RetainHandling, Subscribe, SubscribeFilter, SubscribeReturnCode, SubscriptionId,
    UnsubAck, Unsubscribe,
};
use sansmq_broker::{Broker, BrokerConfig, start};

const QUIET: Duration = Duration::from_millis(300);

fn broker() -> Broker {
    start(BrokerConfig::default()).unwrap()
}

fn connect(broker: &Broker, connect: Connect) -> (TestClient, ConnAck) {
    TestClient::connect_with(broker.local_addr(), connect)
}

/// An MQTT 5 client with a clean start and no session expiry.
fn v5(broker: &Broker, client_id: &str) -> TestClient {
    let (client, ack) = connect(broker, connect_v5(client_id, true, 60));
    assert_eq!(ack.reason_code, ReasonCode::Success, "{client_id}");
    client
}

/// An MQTT 3.1.1 client with a clean session.
fn v311(broker: &Broker, client_id: &str) -> TestClient {
    TestClient::connect(broker.local_addr(), client_id, true).0
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).unwrap()
}

/// SUBSCRIBE with `options` and an optional Subscription Identifier; returns the codes.
fn subscribe(
    client: &mut TestClient,
    options: Vec<SubscribeFilter>,
    id: Option<u32>,
) -> Vec<SubscribeReturnCode> {
    let packet_id = client.next_packet_id();
    let mut subscribe = Subscribe::new(packet_id, options[0].filter.clone(), options[0].qos);
    subscribe.filters = options;
    if let Some(id) = id {
        let id = SubscriptionId::new(id).unwrap();
        subscribe.properties_mut().push_subscription_identifier(id);
    }
    client.send(subscribe);
    match client.wait_for(|p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id)) {
        Packet::SubAck(ack) => ack.return_codes,
        _ => unreachable!(),
    }
}

fn options(filter_str: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(filter(filter_str), qos)
}

/// Publishes with `properties` at QoS 0 or 1; returns the PUBACK's Reason Code (Success for
/// QoS 0).
fn publish_with(
    client: &mut TestClient,
    topic_name: &str,
    payload: &[u8],
    qos: QoS,
    properties: Properties,
) -> ReasonCode {
    let mut publish = Publish::new(topic(topic_name), Bytes::copy_from_slice(payload));
    publish.qos = qos;
    publish.set_properties(properties);
    if qos == QoS::AtMostOnce {
        client.send(publish);
        return ReasonCode::Success;
    }
    let packet_id = client.next_packet_id();
    publish.packet_id = Some(packet_id);
    client.send(publish);
    match client.wait_for(|p| match p {
        Packet::PubAck(a) => a.packet_id == packet_id,
        Packet::PubRec(a) => a.packet_id == packet_id,
        _ => false,
    }) {
        Packet::PubAck(ack) => ack.reason_code,
        Packet::PubRec(rec) => rec.reason_code,
        _ => unreachable!(),
    }
}

/// Waits for the broker's DISCONNECT (other packets skipped) and the close after it; returns
/// its Reason Code.
fn expect_disconnect(client: &mut TestClient) -> ReasonCode {
    let code = match client.wait_for(|p| matches!(p, Packet::Disconnect(_))) {
        Packet::Disconnect(disconnect) => disconnect.reason_code,
        _ => unreachable!(),
    };
    client.expect_closed(common::WAIT);
    code
}

#[test]
fn an_mqtt5_connect_gets_a_connack_with_the_brokers_terms() {
    let broker = start(BrokerConfig {
        receive_maximum: 5,
        max_keep_alive: 30,
        ..BrokerConfig::default()
    })
    .unwrap();
    let (_client, ack) = connect(&broker, connect_v5("terms", true, 60));
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert!(!ack.session_present);
    let p = ack.properties();
    assert_eq!(p.receive_maximum, NonZeroU16::new(5));
    assert_eq!(p.maximum_packet_size, NonZeroU32::new(1024 * 1024));
    assert_eq!(p.topic_alias_maximum, Some(10));
    // MQTT-3.2.2-21: a keep-alive over the broker's cap is replaced, and the client told.
    assert_eq!(p.server_keep_alive, Some(30));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.retain_available, None, "retained messages are available");
    assert_eq!(p.assigned_client_identifier(), None);

    // MQTT-3.2.2-16: an empty client id is given one, with either Clean Start.
    let (_anonymous, ack) = connect(&broker, connect_v5("", false, 10));
    assert_eq!(ack.reason_code, ReasonCode::Success);
    let assigned = ack.properties().assigned_client_identifier().unwrap();
    assert!(assigned.as_str().starts_with("sansmq-broker-"));
    assert_eq!(
        ack.properties().server_keep_alive,
        None,
        "10 s is within the cap"
    );
    assert!(broker.stats().client(assigned.as_str()).is_some());
}

#[test]
fn mqtt5_and_mqtt311_clients_exchange_messages_with_properties_kept_or_dropped() {
    let broker = broker();
    let mut new = v5(&broker, "new");
    let mut old = v311(&broker, "old");
    subscribe(&mut new, vec![options("x/#", QoS::AtLeastOnce)], None);
    old.subscribe("x/#", QoS::AtLeastOnce);

    let mut properties = Properties::new();
    properties.push_user_property(string("k"), string("v"));
    properties.push_user_property(string("k"), string("w"));
    properties.set_content_type(Some(string("text/plain")));
    properties.payload_format_indicator = Some(PayloadFormat::Utf8);
    properties.set_response_topic(Some(topic("x/reply")));
    properties.set_correlation_data(Some(Bytes::from_static(b"\x00\x01")));
    properties.message_expiry_interval = Some(3600);
    let mut publisher = v5(&broker, "publisher");
    let code = publish_with(
        &mut publisher,
        "x/a",
        b"from v5",
        QoS::AtLeastOnce,
        properties.clone(),
    );
    assert_eq!(code, ReasonCode::Success);

    // The MQTT 5 subscriber gets every property (MQTT-3.3.2-4 ... MQTT-3.3.2-20), the expiry
    // as what is left of it (MQTT-3.3.2-6).
    let got = new.expect_publish();
    new.ack(&got);
    assert_eq!(got.payload(), b"from v5");
    let p = got.properties();
    let users: Vec<(&str, &str)> = p
        .user_properties()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(users, [("k", "v"), ("k", "w")]);
    assert_eq!(p.content_type().map(|c| c.as_str()), Some("text/plain"));
    assert_eq!(p.payload_format_indicator, Some(PayloadFormat::Utf8));
    assert_eq!(p.response_topic(), Some(topic("x/reply")));
    assert_eq!(p.correlation_data().map(|c| &c[..]), Some(&b"\x00\x01"[..]));
    let left = p.message_expiry_interval.unwrap();
    assert!((3598..=3600).contains(&left), "{left}");

    // The MQTT 3.1.1 subscriber gets the message, decoded as MQTT 3.1.1: no properties.
    let got = old.expect_publish();
    old.ack(&got);
    assert_eq!(got.payload(), b"from v5");

    // And back: an MQTT 3.1.1 publisher reaches the MQTT 5 subscriber.
    old.publish("x/b", b"from v3", QoS::AtLeastOnce);
    let got = new.expect_publish();
    assert_eq!((got.topic(), got.payload()), ("x/b", &b"from v3"[..]));
    assert!(got.properties().is_empty());
}

#[test]
fn request_and_response_pass_through_with_response_topic_and_correlation_data() {
    let broker = broker();
    let mut responder = v5(&broker, "responder");
    subscribe(
        &mut responder,
        vec![options("service/time", QoS::AtMostOnce)],
        None,
    );
    let mut requester = v5(&broker, "requester");
    subscribe(
        &mut requester,
        vec![options("reply/requester", QoS::AtMostOnce)],
        None,
    );

    let mut request = Properties::new();
    request.set_response_topic(Some(topic("reply/requester")));
    request.set_correlation_data(Some(Bytes::from_static(b"req-1")));
    publish_with(
        &mut requester,
        "service/time",
        b"now?",
        QoS::AtMostOnce,
        request,
    );

    let got = responder.expect_publish();
    let reply_to = got.properties().response_topic().unwrap();
    let mut response = Properties::new();
    response.set_correlation_data(got.properties().correlation_data().cloned());
    publish_with(
        &mut responder,
        reply_to.as_str(),
        b"noon",
        QoS::AtMostOnce,
        response,
    );

    let answer = requester.expect_publish();
    assert_eq!(answer.payload(), b"noon");
    assert_eq!(
        answer.properties().correlation_data().map(|c| &c[..]),
        Some(&b"req-1"[..])
    );
}

#[test]
fn session_expiry_keeps_a_session_for_its_interval_and_clean_start_discards_it() {
    let broker = broker();
    let addr = broker.local_addr();
    let mut keep = connect_v5("expiring", true, 60);
    keep.properties.session_expiry_interval = Some(1);
    let (mut client, _) = TestClient::connect_with(addr, keep.clone());
    subscribe(&mut client, vec![options("e/#", QoS::AtLeastOnce)], None);
    client.disconnect();

    // Within the interval the session is there, with its subscription and a queued message.
    common::eventually(common::WAIT, "offline", || {
        broker
            .stats()
            .client("expiring")
            .is_some_and(|c| !c.connected)
    });
    v311(&broker, "p").publish("e/1", b"kept", QoS::AtLeastOnce);
    let mut resume = keep.clone();
    resume.clean_session = false;
    let (mut client, ack) = TestClient::connect_with(addr, resume.clone());
    assert!(ack.session_present, "MQTT-3.2.2-2");
    assert_eq!(client.expect_publish().payload(), b"kept");
    client.drop_connection();

    // MQTT-3.1.2-23: once the interval has passed with no connection, it is gone.
    common::eventually(Duration::from_secs(5), "session expired", || {
        broker.stats().client("expiring").is_none()
    });
    let (client, ack) = TestClient::connect_with(addr, resume.clone());
    assert!(!ack.session_present);
    client.disconnect();

    // MQTT-3.1.2-4: Clean Start discards a session that is there.
    common::eventually(common::WAIT, "offline", || {
        broker
            .stats()
            .client("expiring")
            .is_some_and(|c| !c.connected)
    });
    let (_client, ack) = TestClient::connect_with(addr, keep);
    assert!(!ack.session_present);

    // Session Expiry 0 (the default) ends the session with the connection.
    let (client, _) = TestClient::connect_with(addr, connect_v5("short", false, 60));
    client.drop_connection();
    common::eventually(common::WAIT, "session gone", || {
        broker.stats().client("short").is_none()
    });
}

#[test]
fn disconnect_may_change_the_session_expiry_but_not_from_zero() {
    let broker = broker();
    let addr = broker.local_addr();
    let mut keep = connect_v5("lengthens", false, 60);
    keep.properties.session_expiry_interval = Some(10);
    let (mut client, _) = TestClient::connect_with(addr, keep);
    let mut disconnect = Disconnect::new();
    disconnect.properties_mut().session_expiry_interval = Some(0);
    client.send(disconnect);
    common::eventually(common::WAIT, "session ended by DISCONNECT", || {
        broker.stats().client("lengthens").is_none()
    });

    // Section 3.14.2.2.2: after 0 in CONNECT, a non-zero one in DISCONNECT is a Protocol Error.
    let (mut client, _) = TestClient::connect_with(addr, connect_v5("zero", true, 60));
    let mut disconnect = Disconnect::new();
    disconnect.properties_mut().session_expiry_interval = Some(60);
    client.send(disconnect);
    assert_eq!(expect_disconnect(&mut client), ReasonCode::ProtocolError);
    common::eventually(common::WAIT, "session gone", || {
        broker.stats().client("zero").is_none()
    });
}

#[test]
fn topic_aliases_from_the_client_are_honoured_up_to_the_maximum() {
    let broker = broker();
    let mut subscriber = v5(&broker, "sub");
    subscribe(
        &mut subscriber,
        vec![options("alias/#", QoS::AtMostOnce)],
        None,
    );
    let mut client = v5(&broker, "aliaser");

    let aliased =
        |client: &mut TestClient, alias: u16, with_topic: bool, payload: &'static [u8]| {
            let publish = Publish::new(topic("alias/long/topic"), Bytes::from_static(payload));
            let mut wire = BytesMut::new();
            let alias = NonZeroU16::new(alias).unwrap();
            publish
                .encode_aliased(alias, with_topic, &mut wire)
                .unwrap();
            client.send_raw(&wire);
        };
    aliased(&mut client, 10, true, b"1");
    aliased(&mut client, 10, false, b"2"); // the alias alone: an empty topic
    for payload in [b"1", b"2"] {
        let got = subscriber.expect_publish();
        assert_eq!(
            (got.topic(), got.payload()),
            ("alias/long/topic", &payload[..])
        );
        // MQTT-3.3.2-7: the alias is not forwarded.
        assert_eq!(got.properties().topic_alias, None);
    }

    // An unknown alias with an empty topic is a Protocol Error.
    aliased(&mut client, 3, false, b"3");
    assert_eq!(expect_disconnect(&mut client), ReasonCode::ProtocolError);

    // MQTT-3.3.2-9: above the Topic Alias Maximum (10): 0x94 Topic Alias invalid.
    let mut client = v5(&broker, "abuser");
    let mut over = Properties::new();
    over.topic_alias = NonZeroU16::new(11);
    publish_with(&mut client, "alias/x", b"4", QoS::AtMostOnce, over);
    assert_eq!(
        expect_disconnect(&mut client),
        ReasonCode::TopicAliasInvalid
    );
    subscriber.expect_nothing(QUIET);
}

#[test]
fn no_local_retain_as_published_and_retain_handling() {
    let broker = broker();
    let mut client = v5(&broker, "options");
    let mut no_local = options("own/#", QoS::AtMostOnce);
    no_local.no_local = true;
    subscribe(&mut client, vec![no_local], None);
    // MQTT-3.8.3-3: its own message does not come back; another client's does.
    publish_with(
        &mut client,
        "own/a",
        b"mine",
        QoS::AtMostOnce,
        Properties::new(),
    );
    v311(&broker, "other").publish("own/a", b"theirs", QoS::AtMostOnce);
    assert_eq!(client.expect_publish().payload(), b"theirs");
    client.expect_nothing(QUIET);

    // Retain As Published keeps RETAIN on live messages (MQTT-3.3.1-12); without it, 0.
    let mut keeper = v5(&broker, "rap");
    let mut rap = options("r/kept/#", QoS::AtMostOnce);
    rap.retain_as_published = true;
    subscribe(
        &mut keeper,
        vec![rap, options("r/plain/#", QoS::AtMostOnce)],
        None,
    );
    let mut publisher = v311(&broker, "retainer");
    for topic_name in ["r/kept/a", "r/plain/a"] {
        let mut publish = Publish::new(topic(topic_name), Bytes::from_static(b"r"));
        publish.retain = true;
        publisher.send(publish);
    }
    let first = keeper.expect_publish();
    let second = keeper.expect_publish();
    assert_eq!((first.topic(), first.retain), ("r/kept/a", true));
    assert_eq!((second.topic(), second.retain), ("r/plain/a", false));

    // Retain Handling: 0 sends retained messages at every SUBSCRIBE, 1 only for a new
    // subscription, 2 never (MQTT-3.3.1-9 to MQTT-3.3.1-11).
    let mut late = v5(&broker, "late");
    let mut at_new = options("r/kept/#", QoS::AtMostOnce);
    at_new.retain_handling = RetainHandling::SendAtNewSubscribe;
    subscribe(&mut late, vec![at_new.clone()], None);
    let got = late.expect_publish();
    assert_eq!((got.topic(), got.retain), ("r/kept/a", true));
    subscribe(&mut late, vec![at_new], None);
    late.expect_nothing(QUIET);
    let mut never = options("r/plain/#", QoS::AtMostOnce);
    never.retain_handling = RetainHandling::DoNotSend;
    subscribe(&mut late, vec![never], None);
    late.expect_nothing(QUIET);
    subscribe(&mut late, vec![options("r/plain/#", QoS::AtMostOnce)], None);
    assert_eq!(late.expect_publish().topic(), "r/plain/a");
}

#[test]
fn subscription_identifiers_come_with_the_messages_they_match() {
    let broker = broker();
    let mut client = v5(&broker, "ids");
    subscribe(&mut client, vec![options("s/+", QoS::AtMostOnce)], Some(7));
    subscribe(
        &mut client,
        vec![options("s/#", QoS::AtLeastOnce)],
        Some(268_435_455),
    );
    subscribe(&mut client, vec![options("s/x", QoS::AtMostOnce)], None);
    let mut publisher = v311(&broker, "p");
    publisher.publish("s/x", b"both", QoS::AtLeastOnce);
    // One copy at the highest QoS, with both identifiers (MQTT-3.3.4-3, MQTT-3.3.4-5).
    let got = client.expect_publish();
    client.ack(&got);
    assert_eq!(got.qos, QoS::AtLeastOnce);
    let mut ids: Vec<u32> = got
        .properties()
        .subscription_identifiers()
        .map(|id| id.get())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [7, 268_435_455]);
    client.expect_nothing(QUIET);

    // A retained message sent for a subscription carries its identifier.
    let mut retained = Publish::new(topic("t/r"), Bytes::from_static(b"kept"));
    retained.retain = true;
    publisher.send(retained);
    publisher.publish("t/sync", b"", QoS::AtLeastOnce);
    subscribe(&mut client, vec![options("t/+", QoS::AtMostOnce)], Some(42));
    let got = client.expect_publish();
    assert!(got.retain);
    let ids: Vec<u32> = got
        .properties()
        .subscription_identifiers()
        .map(|id| id.get())
        .collect();
    assert_eq!(ids, [42]);
}

#[test]
fn an_expired_queued_message_is_not_sent() {
    let broker = broker();
    let addr = broker.local_addr();
    let mut keep = connect_v5("away", true, 60);
    keep.properties.session_expiry_interval = Some(60);
    let (mut client, _) = TestClient::connect_with(addr, keep.clone());
    subscribe(&mut client, vec![options("m/#", QoS::AtLeastOnce)], None);
    client.disconnect();
    common::eventually(common::WAIT, "offline", || {
        broker.stats().client("away").is_some_and(|c| !c.connected)
    });
    let mut publisher = v5(&broker, "p");
    for (payload, expiry) in [(&b"short"[..], 1), (&b"long"[..], 100)] {
        let mut properties = Properties::new();
        properties.message_expiry_interval = Some(expiry);
        publish_with(&mut publisher, "m/a", payload, QoS::AtLeastOnce, properties);
    }
    std::thread::sleep(Duration::from_millis(1500));
    keep.clean_session = false;
    let (mut client, ack) = TestClient::connect_with(addr, keep);
    assert!(ack.session_present);
    // MQTT-3.3.2-5: the expired one is dropped; MQTT-3.3.2-6: the other's interval is less.
    let got = client.expect_publish();
    assert_eq!(got.payload(), b"long");
    let left = got.properties().message_expiry_interval.unwrap();
    assert!((97..=99).contains(&left), "{left}");
    client.ack(&got);
    client.expect_nothing(QUIET);
}

#[test]
fn the_clients_receive_maximum_bounds_unacknowledged_messages() {
    let broker = broker();
    let mut connect = connect_v5("slow", true, 60);
    connect.properties.receive_maximum = NonZeroU16::new(2);
    let (mut client, _) = TestClient::connect_with(broker.local_addr(), connect);
    subscribe(&mut client, vec![options("rm", QoS::AtLeastOnce)], None);
    let mut publisher = v311(&broker, "fast");
    for n in 0..5u8 {
        publisher.publish("rm", &[n], QoS::AtLeastOnce);
    }
    // MQTT-3.3.4-9: two at a time; each PUBACK lets one more go.
    let first = client.expect_publish();
    let second = client.expect_publish();
    client.expect_nothing(QUIET);
    let mut got = vec![first.payload()[0], second.payload()[0]];
    client.ack(&first);
    client.ack(&second);
    for _ in 0..3 {
        let next = client.expect_publish();
        got.push(next.payload()[0]);
        client.ack(&next);
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn a_client_past_the_brokers_receive_maximum_is_disconnected_with_0x93() {
    let broker = start(BrokerConfig {
        receive_maximum: 2,
        ..BrokerConfig::default()
    })
    .unwrap();
    let mut client = v5(&broker, "eager");
    for n in 1..=3u16 {
        let mut publish = Publish::new(topic("q2"), Bytes::from_static(b"x"));
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = Some(common::id(n));
        client.send(publish); // never released
    }
    assert_eq!(
        expect_disconnect(&mut client),
        ReasonCode::ReceiveMaximumExceeded
    );
}

#[test]
fn a_message_over_the_clients_maximum_packet_size_is_dropped_for_it() {
    let broker = broker();
    let mut connect = connect_v5("small", true, 60);
    connect.properties.maximum_packet_size = NonZeroU32::new(64);
    let (mut small, _) = TestClient::connect_with(broker.local_addr(), connect);
    subscribe(&mut small, vec![options("size", QoS::AtLeastOnce)], None);
    let mut big = v5(&broker, "big");
    subscribe(&mut big, vec![options("size", QoS::AtLeastOnce)], None);
    let mut publisher = v311(&broker, "p");
    publisher.publish("size", &[b'x'; 100], QoS::AtLeastOnce);
    publisher.publish("size", b"fits", QoS::AtLeastOnce);
    // MQTT-3.1.2-25: the big one is dropped as if sent; the next one follows.
    assert_eq!(small.expect_publish().payload(), b"fits");
    assert_eq!(big.expect_publish().payload().len(), 100);
    assert_eq!(big.expect_publish().payload(), b"fits");
}

#[test]
fn reason_codes_refuse_one_publish_subscribe_or_unsubscribe() {
    let broker = start(BrokerConfig {
        max_topic_levels: 3,
        max_subscriptions: 2,
        ..BrokerConfig::default()
    })
    .unwrap();
    let mut client = v5(&broker, "coded");
    // A topic over the limits: 0x90 Topic Name invalid, and the connection stays.
    let code = publish_with(
        &mut client,
        "a/b/c/d",
        b"",
        QoS::AtLeastOnce,
        Properties::new(),
    );
    assert_eq!(code, ReasonCode::TopicNameInvalid);
    let code = publish_with(
        &mut client,
        "a/b/c/d",
        b"",
        QoS::ExactlyOnce,
        Properties::new(),
    );
    assert_eq!(code, ReasonCode::TopicNameInvalid);

    let codes = subscribe(
        &mut client,
        vec![
            options("ok/1", QoS::AtLeastOnce),
            options("$share/group/t", QoS::AtMostOnce),
            options("a/b/c/d", QoS::AtMostOnce),
            options("ok/2", QoS::ExactlyOnce),
            options("ok/3", QoS::AtMostOnce),
        ],
        None,
    );
    use SubscribeReturnCode::{Refused, Success};
    assert_eq!(
        codes,
        [
            Success(QoS::AtLeastOnce),
            Refused(ReasonCode::SharedSubscriptionsNotSupported),
            Refused(ReasonCode::TopicFilterInvalid),
            Success(QoS::ExactlyOnce),
            Refused(ReasonCode::QuotaExceeded),
        ]
    );

    let packet_id = client.next_packet_id();
    client.send(Unsubscribe::new(
        packet_id,
        vec![filter("ok/1"), filter("never")],
    ));
    let ack = client.wait_for(|p| matches!(p, Packet::UnsubAck(_)));
    let Packet::UnsubAck(UnsubAck { reason_codes, .. }) = ack else {
        unreachable!()
    };
    assert_eq!(
        reason_codes,
        [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    );
    // Still connected; a message nobody is subscribed to any more is answered 0x10 No matching
    // subscribers, one that reaches a subscriber Success.
    let none = Properties::new();
    let code = publish_with(&mut client, "ok/1", b"", QoS::AtLeastOnce, none.clone());
    assert_eq!(code, ReasonCode::NoMatchingSubscribers);
    let code = publish_with(&mut client, "ok/1", b"", QoS::ExactlyOnce, none.clone());
    assert_eq!(code, ReasonCode::NoMatchingSubscribers);
    let code = publish_with(&mut client, "ok/2", b"", QoS::ExactlyOnce, none);
    assert_eq!(code, ReasonCode::Success);

    // MQTT 3.1.1 is unchanged: a topic over the limits closes the connection.
    let mut old = v311(&broker, "old");
    let mut publish = Publish::new(topic("a/b/c/d"), Bytes::new());
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = Some(common::id(1));
    old.send(publish);
    old.expect_closed(common::WAIT);
}

#[test]
fn a_refused_qos2_exchange_and_an_unknown_pubrel_get_their_codes() {
    let broker = broker();
    let mut client = v5(&broker, "q2");
    client.send(sansmq::packet::PubRel::new(common::id(9)));
    match client.next() {
        Packet::PubComp(comp) => {
            assert_eq!(comp.reason_code, ReasonCode::PacketIdentifierNotFound)
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // A subscriber refusing a QoS 2 message with its PUBREC ends that exchange: the next one
    // goes out in its place.
    let mut connect = connect_v5("refuser", true, 60);
    connect.properties.receive_maximum = NonZeroU16::new(1);
    let (mut refuser, _) = TestClient::connect_with(broker.local_addr(), connect);
    subscribe(&mut refuser, vec![options("r2", QoS::ExactlyOnce)], None);
    let mut publisher = v311(&broker, "p");
    publisher.publish("r2", b"1", QoS::ExactlyOnce);
    publisher.publish("r2", b"2", QoS::ExactlyOnce);
    let first = refuser.expect_publish();
    let id = first.packet_id.unwrap();
    refuser.send(PubRec::with_reason_code(id, ReasonCode::QuotaExceeded));
    let second = refuser.expect_publish();
    assert_eq!(second.payload(), b"2");
}

#[test]
fn the_broker_says_why_it_disconnects() {
    let broker = broker();
    let addr = broker.local_addr();
    // MQTT-3.1.4-3: a new connection with the client id takes the session over: 0x8E.
    let (mut first, _) = TestClient::connect_with(addr, connect_v5("twin", true, 60));
    let (_second, _) = TestClient::connect_with(addr, connect_v5("twin", true, 60));
    assert_eq!(expect_disconnect(&mut first), ReasonCode::SessionTakenOver);

    // MQTT-3.1.2-22: silent for 1.5 x keep-alive: 0x8D.
    let (mut silent, _) = TestClient::connect_with(addr, connect_v5("silent", true, 1));
    assert_eq!(expect_disconnect(&mut silent), ReasonCode::KeepAliveTimeout);

    // MQTT-3.1.0-2: a second CONNECT is a Protocol Error: 0x82.
    let mut again = v5(&broker, "again");
    again.send(connect_v5("again", true, 60));
    assert_eq!(expect_disconnect(&mut again), ReasonCode::ProtocolError);

    // A malformed packet: 0x81 (a PUBLISH whose properties run past its end).
    let mut broken = v5(&broker, "broken");
    broken.send_raw(&[0x30, 0x05, 0x00, 0x01, b't', 0x09, 0x01]);
    assert_eq!(expect_disconnect(&mut broken), ReasonCode::MalformedPacket);

    // An MQTT 3.1.1 client is closed without a DISCONNECT, as before.
    let (mut old, _) = TestClient::connect_with(addr, connect_packet("old-twin", true, 60));
    let _ = TestClient::connect_with(addr, connect_packet("old-twin", true, 60));
    old.expect_closed(common::WAIT);
}

#[test]
fn a_will_keeps_its_properties_and_disconnect_0x04_sends_it() {
    let broker = broker();
    let mut watcher = v5(&broker, "watcher");
    subscribe(
        &mut watcher,
        vec![options("wills/#", QoS::AtMostOnce)],
        None,
    );
    let mut connect = connect_v5("mortal", true, 60);
    let mut will = common::will("wills/mortal", b"gone", QoS::AtMostOnce, false);
    will.properties.set_content_type(Some(string("text/plain")));
    will.properties
        .push_user_property(string("why"), string("asked"));
    connect.will = Some(will);
    let (mut client, _) = TestClient::connect_with(broker.local_addr(), connect);
    client.send(Disconnect::with_reason_code(
        ReasonCode::DisconnectWithWillMessage,
    ));
    let got = watcher.expect_publish();
    assert_eq!(got.payload(), b"gone");
    assert_eq!(
        got.properties().content_type().map(|c| c.as_str()),
        Some("text/plain")
    );
    assert_eq!(got.properties().user_properties().count(), 1);
}

#[test]
fn a_will_waits_for_its_delay_and_is_not_sent_if_its_client_comes_back() {
    let broker = broker();
    let addr = broker.local_addr();
    let mut watcher = v5(&broker, "watcher");
    subscribe(
        &mut watcher,
        vec![options("wills/#", QoS::AtMostOnce)],
        None,
    );
    let with_delayed_will = |client_id: &str, payload: &'static [u8]| {
        let mut connect = connect_v5(client_id, true, 60);
        connect.properties.session_expiry_interval = Some(60);
        let mut will = common::will("wills/delayed", payload, QoS::AtMostOnce, false);
        will.properties.will_delay_interval = Some(1);
        connect.will = Some(will);
        connect
    };
    let (client, _) = TestClient::connect_with(addr, with_delayed_will("late", b"late"));
    client.drop_connection();
    // MQTT 5.0 section 3.1.3.2.2: not before the delay, then sent.
    watcher.expect_nothing(Duration::from_millis(500));
    assert_eq!(watcher.expect_publish().payload(), b"late");

    // MQTT-3.1.3-9: back before the delay: no will.
    let (client, _) = TestClient::connect_with(addr, with_delayed_will("back", b"back"));
    client.drop_connection();
    std::thread::sleep(Duration::from_millis(300));
    let mut resume = connect_v5("back", false, 60);
    resume.properties.session_expiry_interval = Some(60);
    let (_client, ack) = TestClient::connect_with(addr, resume);
    assert!(ack.session_present);
    watcher.expect_nothing(Duration::from_millis(1500));

    // A session that ends with its connection sends the will at once, whatever the delay.
    let mut connect = with_delayed_will("short", b"short");
    connect.properties.session_expiry_interval = None;
    let (client, _) = TestClient::connect_with(addr, connect);
    client.drop_connection();
    match watcher.recv(Duration::from_millis(500)) {
        common::Recv::Packet(Packet::Publish(got)) => assert_eq!(got.payload(), b"short"),
        other => panic!("expected the will at once, got {other:?}"),
    }
}

#[test]
fn a_resumed_session_resends_within_the_new_receive_maximum() {
    let broker = broker();
    let addr = broker.local_addr();
    let session = |receive_maximum: u16, clean_start: bool| {
        let mut connect = connect_v5("resumer", clean_start, 60);
        connect.properties.session_expiry_interval = Some(60);
        connect.properties.receive_maximum = NonZeroU16::new(receive_maximum);
        connect
    };
    let (mut client, _) = TestClient::connect_with(addr, session(5, true));
    subscribe(&mut client, vec![options("rs", QoS::AtLeastOnce)], None);
    let mut publisher = v311(&broker, "p");
    for n in 0..6u8 {
        publisher.publish("rs", &[n], QoS::AtLeastOnce);
    }
    for n in 0..5u8 {
        assert_eq!(client.expect_publish().payload(), [n]); // never acknowledged
    }
    client.drop_connection();
    common::eventually(common::WAIT, "offline", || {
        broker
            .stats()
            .client("resumer")
            .is_some_and(|c| !c.connected)
    });

    // Back with a Receive Maximum of 2: two of the five again, with DUP (MQTT-4.4.0-1), and the
    // others only as acknowledgements make room (MQTT-3.3.4-9), in their order, then the sixth.
    let (mut client, ack) = TestClient::connect_with(addr, session(2, false));
    assert!(ack.session_present);
    let mut got = Vec::new();
    let mut window =
        std::collections::VecDeque::from([client.expect_publish(), client.expect_publish()]);
    client.expect_nothing(QUIET);
    while let Some(publish) = window.pop_front() {
        got.push((publish.payload()[0], publish.dup));
        client.ack(&publish);
        // Each acknowledgement lets one more come.
        if got.len() + window.len() < 6 {
            window.push_back(client.expect_publish());
        }
    }
    got.sort_unstable();
    assert_eq!(
        got,
        [
            (0, true),
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, false)
        ]
    );
    client.expect_nothing(QUIET);
}
