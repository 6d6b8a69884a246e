//! ApsaraMQ mode: logins, client ids, P2P routing, refused features, limits and token upload.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestClient, connect_packet, will};
use sansmq::MqttString;
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Packet, Password, Publish, QoS, ReasonCode,
    SubscribeFilter, SubscribeReturnCode, SubscriptionId,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, TokenKind, signature, start};

const AK: &str = "LTAI5tTestKey";
const SECRET: &str = "secretKey123";
const INSTANCE: &str = "mqtt-cn-test";
const QUIET: Duration = Duration::from_millis(200);

fn broker() -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(AK, SECRET)
        .device_credential("dev-ak", "dev-secret")
        .token(AK, TokenKind::Read, "read-token")
        .token(AK, TokenKind::Write, "write-token")
        .max_topic_len(32)
        .max_payload(1024);
    start(BrokerConfig {
        apsaramq: Some(mode),
        ..Default::default()
    })
    .unwrap()
}

fn login(client_id: &str, clean: bool, username: &str, password: &str) -> Connect {
    let mut connect = connect_packet(client_id, clean, 60);
    connect.username = Some(MqttString::try_from(username).unwrap());
    connect.password = Some(Password::from(password));
    connect
}

fn signed(client_id: &str, clean: bool) -> Connect {
    let user = format!("Signature|{AK}|{INSTANCE}");
    login(client_id, clean, &user, &signature(SECRET, client_id))
}

fn connect(broker: &Broker, connect: Connect) -> (TestClient, ConnAck) {
    TestClient::connect_with(broker.local_addr(), connect)
}

fn accepted(broker: &Broker, packet: Connect) -> TestClient {
    let (client, ack) = connect(broker, packet);
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    client
}

fn refused(broker: &Broker, packet: Connect) -> ConnectReturnCode {
    let (mut client, ack) = connect(broker, packet);
    client.expect_closed(common::WAIT); // MQTT-3.2.2-5
    ack.code
}

#[test]
fn signature_logins_are_checked_against_the_whole_client_id() {
    let broker = broker();
    let user = format!("Signature|{AK}|{INSTANCE}");
    // The test vector of apsaramq.md.
    accepted(
        &broker,
        login(
            "GID_test@@@device-001",
            true,
            &user,
            "WUp3wMiZLkLANz/so65nilEQlic=",
        ),
    );
    // Signed over the group id only: the old, wrong scheme.
    let old = login(
        "GID_test@@@device-001",
        true,
        &user,
        "vNnueb3fxTePnowvE8ma3hks6hI=",
    );
    assert_eq!(refused(&broker, old), ConnectReturnCode::NotAuthorized);
    let other_instance = format!("Signature|{AK}|mqtt-cn-other");
    let password = signature(SECRET, "GID_a@@@b");
    let packet = login("GID_a@@@b", true, &other_instance, &password);
    assert_eq!(refused(&broker, packet), ConnectReturnCode::NotAuthorized);
    let unknown = format!("Signature|LTAIunknown|{INSTANCE}");
    let packet = login("GID_a@@@b", true, &unknown, &password);
    assert_eq!(refused(&broker, packet), ConnectReturnCode::NotAuthorized);
    let packet = login("GID_a@@@b", true, "admin", "admin");
    assert_eq!(
        refused(&broker, packet),
        ConnectReturnCode::BadUserNameOrPassword
    );
    let anonymous = connect_packet("GID_a@@@b", true, 60);
    assert_eq!(
        refused(&broker, anonymous),
        ConnectReturnCode::BadUserNameOrPassword
    );
}

#[test]
fn device_credential_logins_use_the_device_keys() {
    let broker = broker();
    let id = "GID_dev@@@sensor-7";
    let user = format!("DeviceCredential|dev-ak|{INSTANCE}");
    accepted(
        &broker,
        login(id, true, &user, &signature("dev-secret", id)),
    );
    let packet = login(id, true, &user, &signature(SECRET, id));
    assert_eq!(refused(&broker, packet), ConnectReturnCode::NotAuthorized);
}

#[test]
fn client_ids_must_follow_the_group_at_device_form() {
    let broker = broker();
    for bad in ["device-001", "GID_test", "XID_test@@@d", "GID_te.st@@@d"] {
        assert_eq!(
            refused(&broker, signed(bad, true)),
            ConnectReturnCode::IdentifierRejected,
            "{bad}"
        );
    }
    let long = format!("GID_x@@@{}", "d".repeat(57)); // 65 characters
    assert_eq!(
        refused(&broker, signed(&long, true)),
        ConnectReturnCode::IdentifierRejected
    );
    accepted(&broker, signed(&long[..64], true));
}

#[test]
fn p2p_messages_reach_the_named_client_without_a_subscription() {
    let broker = broker();
    let mut target = accepted(&broker, signed("GID_t@@@target", true));
    let mut bystander = accepted(&broker, signed("GID_t@@@bystander", true));
    bystander.subscribe("parent/#", QoS::AtLeastOnce);
    let mut sender = accepted(&broker, signed("GID_t@@@sender", true));

    sender.publish("parent/p2p/GID_t@@@target", b"for you", QoS::AtLeastOnce);
    let got = target.expect_publish();
    assert_eq!(
        (got.topic(), got.payload(), got.qos),
        (
            "parent/p2p/GID_t@@@target",
            &b"for you"[..],
            QoS::AtLeastOnce
        )
    );
    target.ack(&got);
    bystander.expect_nothing(QUIET); // P2P is not broadcast to subscribers

    // Ordinary topics still go to subscribers.
    sender.publish("parent/all", b"everyone", QoS::AtMostOnce);
    assert_eq!(&bystander.expect_publish().payload(), b"everyone");
    target.expect_nothing(QUIET);
}

#[test]
fn wills_retained_messages_and_persistent_qos2_are_refused() {
    let broker = broker();
    let mut with_will = signed("GID_w@@@will", true);
    with_will.will = Some(will("parent/will", b"bye", QoS::AtMostOnce, false));
    assert_eq!(
        refused(&broker, with_will),
        ConnectReturnCode::NotAuthorized
    );

    let mut client = accepted(&broker, signed("GID_w@@@retain", true));
    let mut retained = Publish::new(common::topic("parent/r"), Bytes::from_static(b"x"));
    retained.retain = true;
    client.send(retained);
    client.expect_closed(common::WAIT);
    assert_eq!(broker.stats().retained_messages, 0);

    let mut persistent = accepted(&broker, signed("GID_w@@@persistent", false));
    persistent.publish("parent/q1", b"fine", QoS::AtLeastOnce);
    let mut qos2 = Publish::new(common::topic("parent/q2"), Bytes::from_static(b"x"));
    qos2.qos = QoS::ExactlyOnce;
    qos2.packet_id = Some(common::id(3));
    persistent.send(qos2.clone());
    persistent.expect_closed(common::WAIT);

    // QoS 2 with clean session is fine.
    let mut clean = accepted(&broker, signed("GID_w@@@clean", true));
    clean.send(qos2);
    assert!(matches!(clean.next(), Packet::PubRec(_)));
}

#[test]
fn a_topic_or_payload_over_the_limit_closes_the_connection() {
    let broker = broker(); // topics up to 32 characters, payloads up to 1024 bytes
    let mut client = accepted(&broker, signed("GID_l@@@a", true));
    client.publish(&"p".repeat(32), &[0; 1024], QoS::AtLeastOnce);
    client.send(Publish::new(
        common::topic(&"p".repeat(33)),
        Bytes::from_static(b"x"),
    ));
    client.expect_closed(common::WAIT);

    let mut client = accepted(&broker, signed("GID_l@@@b", true));
    client.send(Publish::new(
        common::topic("parent/big"),
        Bytes::from(vec![0; 1025]),
    ));
    client.expect_closed(common::WAIT);

    let mut client = accepted(&broker, signed("GID_l@@@c", true));
    client.send(sansmq::packet::Subscribe::new(
        common::id(1),
        common::filter(&format!("{}/#", "p".repeat(31))),
        QoS::AtMostOnce,
    ));
    client.expect_closed(common::WAIT);
}

#[test]
fn token_logins_grant_what_their_types_allow_and_upload_token_adds_rights() {
    let broker = broker();
    let user = format!("Token|{AK}|{INSTANCE}");
    let packet = login("GID_k@@@a", true, &user, "R|unknown-token");
    assert_eq!(refused(&broker, packet), ConnectReturnCode::NotAuthorized);
    let packet = login("GID_k@@@a", true, &user, "R|read-token|W");
    assert_eq!(
        refused(&broker, packet),
        ConnectReturnCode::BadUserNameOrPassword
    );

    // A read-only token may subscribe...
    let mut reader = accepted(&broker, login("GID_k@@@r", true, &user, "R|read-token"));
    reader.subscribe("parent/#", QoS::AtLeastOnce);
    // ...and may publish once it uploads a W token, acknowledged with PUBACK.
    reader.publish(
        "$SYS/uploadToken",
        br#"{"token":"write-token","type":"W"}"#,
        QoS::AtLeastOnce,
    );
    reader.publish("parent/self", b"mine", QoS::AtLeastOnce);
    assert_eq!(&reader.expect_publish().payload(), b"mine");

    // A read-only token that publishes is disconnected.
    let mut other = accepted(&broker, login("GID_k@@@o", true, &user, "R|read-token"));
    other.send(Publish::new(
        common::topic("parent/x"),
        Bytes::from_static(b"x"),
    ));
    other.expect_closed(common::WAIT);

    // A write-only token that subscribes is disconnected.
    let mut writer = accepted(&broker, login("GID_k@@@w", true, &user, "W|write-token"));
    writer.publish("parent/x", b"ok", QoS::AtLeastOnce);
    writer.send(sansmq::packet::Subscribe::new(
        common::id(9),
        common::filter("parent/#"),
        QoS::AtMostOnce,
    ));
    writer.expect_closed(common::WAIT);

    // Uploading a token that is not registered closes the connection.
    let mut liar = accepted(&broker, login("GID_k@@@l", true, &user, "R|read-token"));
    let mut upload = Publish::new(
        common::topic("$SYS/uploadToken"),
        Bytes::from_static(br#"{"token":"forged","type":"RW"}"#),
    );
    upload.qos = QoS::AtLeastOnce;
    upload.packet_id = Some(common::id(4));
    liar.send(upload);
    liar.expect_closed(common::WAIT);
}

#[test]
fn a_duplicate_client_id_closes_the_older_connection() {
    let broker = broker();
    let mut first = accepted(&broker, signed("GID_d@@@same", true));
    let mut second = accepted(&broker, signed("GID_d@@@same", true));
    first.expect_closed(common::WAIT);
    second.send(Packet::PingReq);
    assert_eq!(second.next(), Packet::PingResp);
}

#[test]
fn p2p_messages_wait_for_an_offline_persistent_client() {
    let broker = broker();
    let target = accepted(&broker, signed("GID_o@@@offline", false));
    target.disconnect();
    common::eventually(common::WAIT, "target offline", || {
        broker
            .stats()
            .client("GID_o@@@offline")
            .is_some_and(|c| !c.connected)
    });
    let mut sender = accepted(&broker, signed("GID_o@@@sender", true));
    sender.publish("parent/p2p/GID_o@@@offline", b"later", QoS::AtLeastOnce);
    let (mut target, ack) = connect(&broker, signed("GID_o@@@offline", false));
    assert!(ack.session_present);
    assert_eq!(&target.expect_publish().payload(), b"later");
}

/// A broker knowing one AccessKey that re-delivers every `interval` (0: never).
fn redelivering_every(interval: Duration) -> Broker {
    let mode = ApsaraMqMode::new(INSTANCE)
        .access_key(AK, SECRET)
        .redelivery_interval(interval);
    start(BrokerConfig {
        apsaramq: Some(mode),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn unacknowledged_qos1_messages_are_sent_again_while_connected() {
    let interval = Duration::from_millis(300);
    let broker = redelivering_every(interval);
    let mut consumer = accepted(&broker, signed("GID_r@@@consumer", true));
    consumer.subscribe("parent/#", QoS::AtLeastOnce);
    let mut producer = accepted(&broker, signed("GID_r@@@producer", true));
    producer.publish("parent/a", b"slow", QoS::AtLeastOnce);
    producer.publish("parent/p2p/GID_r@@@consumer", b"direct", QoS::AtLeastOnce);

    let first = consumer.expect_publish();
    let sent = std::time::Instant::now();
    let direct = consumer.expect_publish();
    assert!(!first.dup && !direct.dup);
    // Not acknowledged: both come again, with DUP and their packet ids, after about an interval
    // (between one and one and a quarter), in their order...
    let again = consumer.expect_publish();
    assert!(
        sent.elapsed() >= interval,
        "sent again after {:?}",
        sent.elapsed()
    );
    let direct_again = consumer.expect_publish();
    assert_eq!(
        (again.dup, again.packet_id, again.payload()),
        (true, first.packet_id, &b"slow"[..])
    );
    assert_eq!(
        (direct_again.dup, direct_again.packet_id),
        (true, direct.packet_id)
    );
    // ...and again, until acknowledged; then never.
    let third = consumer.expect_publish();
    assert_eq!(third.packet_id, first.packet_id);
    consumer.ack(&third);
    let fourth = consumer.expect_publish();
    assert_eq!(fourth.packet_id, direct.packet_id);
    consumer.ack(&fourth);
    consumer.expect_nothing(interval * 2);
}

#[test]
fn redelivery_off_sends_only_on_reconnect() {
    let broker = redelivering_every(Duration::ZERO);
    let mut consumer = accepted(&broker, signed("GID_r@@@consumer", true));
    consumer.subscribe("parent/#", QoS::AtLeastOnce);
    let mut producer = accepted(&broker, signed("GID_r@@@producer", true));
    producer.publish("parent/a", b"once", QoS::AtLeastOnce);
    assert!(!consumer.expect_publish().dup);
    consumer.expect_nothing(Duration::from_millis(500));
}

/// `packet` as an MQTT 5 CONNECT.
fn v5(mut packet: Connect) -> Connect {
    packet.protocol = sansmq::packet::Protocol::Mqtt5;
    packet
}

/// Waits for the broker's DISCONNECT and the close; returns its Reason Code.
fn disconnected_with(client: &mut TestClient) -> ReasonCode {
    let code = match client.wait_for(|p| matches!(p, Packet::Disconnect(_))) {
        Packet::Disconnect(disconnect) => disconnect.reason_code,
        _ => unreachable!(),
    };
    client.expect_closed(common::WAIT);
    code
}

#[test]
fn mqtt5_clients_get_apsaramqs_mqtt5_limits_in_connack() {
    let broker = broker();
    // Keep-alive at most 8 minutes: more, or none, is answered with Server Keep Alive 480.
    for (asked, told) in [(0, Some(480)), (600, Some(480)), (90, None)] {
        let mut packet = v5(signed("GID_5@@@keep", true));
        packet.keep_alive = asked;
        let (_client, ack) = connect(&broker, packet);
        assert_eq!(ack.reason_code, ReasonCode::Success);
        assert_eq!(ack.properties().server_keep_alive, told, "asked {asked}");
        // No retained messages, no shared subscriptions.
        assert_eq!(ack.properties().retain_available, Some(false));
        assert_eq!(ack.properties().shared_subscription_available, Some(false));
    }
    // MQTT 3.1.1 clients, which cannot be told, keep theirs.
    let mut packet = signed("GID_5@@@old", true);
    packet.keep_alive = 600;
    let (_client, ack) = connect(&broker, packet);
    assert!(ack.properties().is_empty());
}

#[test]
fn mqtt5_wills_retained_messages_and_shared_subscriptions_are_refused() {
    let broker = broker();
    // A will: 0x87 Not authorized, as MQTT 3.1.1 gets 0x05; a retained one: 0x9A.
    for (retain, code) in [
        (false, ReasonCode::NotAuthorized),
        (true, ReasonCode::RetainNotSupported),
    ] {
        let mut packet = v5(signed("GID_5@@@will", true));
        packet.will = Some(will("parent/will", b"bye", QoS::AtMostOnce, retain));
        let (mut client, ack) = connect(&broker, packet);
        assert_eq!(ack.reason_code, code);
        client.expect_closed(common::WAIT); // MQTT-3.2.2-7
    }

    let mut client = accepted(&broker, v5(signed("GID_5@@@share", true)));
    let packet_id = common::id(1);
    let mut subscribe =
        sansmq::packet::Subscribe::new(packet_id, common::filter("parent/a"), QoS::AtMostOnce);
    subscribe.filters.push(SubscribeFilter::new(
        common::filter("$share/g/parent/b"),
        QoS::AtMostOnce,
    ));
    // The largest Subscription Identifier ApsaraMQ (and MQTT) takes.
    let id = SubscriptionId::new(268_435_455).unwrap();
    subscribe.properties_mut().push_subscription_identifier(id);
    client.send(subscribe);
    match client.next() {
        Packet::SubAck(ack) => assert_eq!(
            ack.return_codes,
            [
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Refused(ReasonCode::SharedSubscriptionsNotSupported),
            ]
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    let mut sender = accepted(&broker, signed("GID_5@@@sender", true));
    sender.publish("parent/a", b"hi", QoS::AtMostOnce);
    let got = client.expect_publish();
    let ids: Vec<u32> = got
        .properties()
        .subscription_identifiers()
        .map(SubscriptionId::get)
        .collect();
    assert_eq!(ids, [268_435_455]);

    // MQTT-3.2.2-14: a retained PUBLISH with Retain Available 0: DISCONNECT 0x9A.
    let mut retained = Publish::new(common::topic("parent/r"), Bytes::from_static(b"r"));
    retained.retain = true;
    client.send(retained);
    assert_eq!(
        disconnected_with(&mut client),
        ReasonCode::RetainNotSupported
    );
}

#[test]
fn mqtt5_token_logins_are_refused_one_publish_or_filter_at_a_time() {
    let broker = broker();
    let user = format!("Token|{AK}|{INSTANCE}");
    let mut reader = accepted(&broker, v5(login("GID_5@@@r", true, &user, "R|read-token")));
    // No W token: the PUBLISH is refused with 0x87 and the connection stays.
    let mut publish = Publish::new(common::topic("parent/x"), Bytes::from_static(b"x"));
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = Some(common::id(1));
    reader.send(publish);
    match reader.next() {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    reader.send(Packet::PingReq);
    assert_eq!(reader.next(), Packet::PingResp);

    // No R token: the filter is refused with 0x87.
    let mut writer = accepted(
        &broker,
        v5(login("GID_5@@@w", true, &user, "W|write-token")),
    );
    assert_eq!(
        writer.subscribe("parent/#", QoS::AtMostOnce),
        SubscribeReturnCode::Refused(ReasonCode::NotAuthorized)
    );
    // Rules other than the grants still close the connection, saying which.
    let long = format!("parent/{}", "x".repeat(40));
    writer.send(Publish::new(common::topic(&long), Bytes::from_static(b"x")));
    assert_eq!(disconnected_with(&mut writer), ReasonCode::TopicNameInvalid);
}
