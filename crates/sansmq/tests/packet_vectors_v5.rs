//! Byte-exact MQTT 5 vectors for every packet type, assembled by hand from the OASIS MQTT 5.0
//! spec (sections 2.2.2 and 2.4 for properties and reason codes, 3.1 to 3.15 for the packets), not
//! produced by our encoder: each must decode to the expected packet and encode back to the same
//! bytes. Properties are written in ascending identifier order, the order our encoder picks (the
//! spec allows any); User Properties and Subscription Identifiers keep theirs.
//!
//! The long forms the spec allows but our encoder never writes (a PUBACK with an explicit Success
//! and an empty property section) are checked to decode, and to encode as the short form.
//!
//! Then the bytes MQTT 5 refuses, each with its error and the Reason Code to disconnect with.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    Auth, ConnAck, Connect, ConnectReturnCode, DecodeError, Disconnect, EncodeError, LastWill,
    Packet, PacketId, PacketType, Password, PayloadFormat, Properties, PropertyContext,
    PropertyError, PropertyId, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, ReasonCode,
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscribeReturnCode, SubscriptionId,
    UnsubAck, Unsubscribe,
};
use sansmq::{MqttString, TopicFilter, TopicName};

fn s(v: &str) -> MqttString {
    MqttString::try_from(v).unwrap()
}

fn name(v: &str) -> TopicName {
    TopicName::try_from(v).unwrap()
}

fn filter(v: &str) -> TopicFilter {
    TopicFilter::try_from(v).unwrap()
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

/// Our own arithmetic, before the codec sees the bytes: a one-byte remaining length must count
/// the rest of the vector.
fn check_remaining_length(wire: &[u8]) {
    if wire[1] < 0x80 {
        assert_eq!(
            usize::from(wire[1]),
            wire.len() - 2,
            "hand-assembled vector {wire:02x?} miscounts its remaining length"
        );
    }
}

/// Decodes `wire` as exactly one MQTT 5 packet and checks it is `expected`.
fn decode_v5(wire: &[u8]) -> Result<Option<Packet>, DecodeError> {
    Packet::read_in(Protocol::Mqtt5, &mut BytesMut::from(wire), usize::MAX)
}

fn check_decode(wire: &[u8], expected: &Packet) {
    check_remaining_length(wire);
    let mut buf = BytesMut::from(wire);
    let decoded = Packet::read_in(Protocol::Mqtt5, &mut buf, usize::MAX)
        .unwrap_or_else(|e| panic!("{expected:?}: {e}"))
        .expect("a whole frame");
    assert!(buf.is_empty(), "{expected:?}: {} bytes left", buf.len());
    assert_eq!(&decoded, expected);
}

fn encode_v5(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .encode_in(Protocol::Mqtt5, &mut out)
        .unwrap_or_else(|e| panic!("encoding {packet:?}: {e}"));
    assert_eq!(packet.encoded_len_in(Protocol::Mqtt5), out.len());
    out.to_vec()
}

/// Decodes `wire` as exactly one MQTT 5 packet, checks it is `expected`, and that encoding
/// `expected` as MQTT 5 gives `wire` back with `encoded_len_in` bytes.
fn check(wire: &[u8], expected: Packet) {
    check_decode(wire, &expected);
    assert_eq!(encode_v5(&expected), wire, "encoding {expected:?}");
}

/// A long form: `wire` decodes to `expected`, which encodes as `short`, which decodes to
/// `expected` too.
fn check_long_form(wire: &[u8], short: &[u8], expected: Packet) {
    check_decode(wire, &expected);
    check(short, expected);
}

/// `wire` is refused in MQTT 5 with `error`, which ends the connection with `reason_code`.
fn refused(wire: &[u8], error: DecodeError, reason_code: ReasonCode) {
    check_remaining_length(wire);
    match decode_v5(wire) {
        Err(e) => {
            assert_eq!(e, error, "{wire:02x?}");
            assert!(!e.to_string().is_empty());
            assert_eq!(e.reason_code(), reason_code, "{e}");
        }
        other => panic!("{wire:02x?} was accepted: {other:?}"),
    }
}

fn user(properties: &mut Properties, name: &str, value: &str) {
    properties.push_user_property(s(name), s(value));
}

// ---------------------------------------------------------------------------------------------
// CONNECT (3.1)

#[test]
fn connect_minimal() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x0D,                               // CONNECT, remaining length 13
        0x00, 0x04, b'M', b'Q', b'T', b'T',       // protocol name (3.1.2.1)
        0x05,                                     // level 5 (3.1.2.2)
        0x02,                                     // clean start (3.1.2.4)
        0x00, 0x3C,                               // keep-alive 60
        0x00,                                     // no properties (3.1.2.11)
        0x00, 0x00,                               // client id: empty (MQTT-3.1.3-6)
    ];
    let mut connect = Connect::new(s(""));
    connect.protocol = Protocol::Mqtt5;
    connect.keep_alive = 60;
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connect_with_properties_will_properties_and_credentials() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x59,                               // remaining length 89 = 36 + 53
        // Variable header (36 bytes).
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0b1110_1110,                              // user, password, will retain, will QoS 1, will,
                                                  // clean start
        0x00, 0x1E,                               // keep-alive 30
        0x19,                                     // property length 25
        0x11, 0x00, 0x00, 0x0E, 0x10,             // Session Expiry Interval 3600
        0x17, 0x00,                               // Request Problem Information 0
        0x21, 0x00, 0x0A,                         // Receive Maximum 10
        0x22, 0x00, 0x05,                         // Topic Alias Maximum 5
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1', // User Property a=1
        0x27, 0x00, 0x00, 0x10, 0x00,             // Maximum Packet Size 4096
        // Payload (53 bytes).
        0x00, 0x02, b'c', b'1',                   // client id
        0x1E,                                     // will property length 30 (3.1.3.2)
        0x01, 0x01,                               // Payload Format Indicator: UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C,             // Message Expiry Interval 60
        0x03, 0x00, 0x04, b't', b'e', b'x', b't', // Content Type
        0x08, 0x00, 0x03, b'r', b'/', b's',       // Response Topic
        0x09, 0x00, 0x02, 0xAB, 0xCD,             // Correlation Data
        0x18, 0x00, 0x00, 0x00, 0x05,             // Will Delay Interval 5
        0x00, 0x03, b'w', b'/', b't',             // will topic
        0x00, 0x04, b'g', b'o', b'n', b'e',       // will payload
        0x00, 0x01, b'u',                         // user name
        0x00, 0x02, b'p', b'w',                   // password
    ];
    let mut properties = Properties::new();
    properties.session_expiry_interval = Some(3600);
    properties.request_problem_information = Some(false);
    properties.receive_maximum = NonZeroU16::new(10);
    properties.topic_alias_maximum = Some(5);
    user(&mut properties, "a", "1");
    properties.maximum_packet_size = NonZeroU32::new(4096);

    let mut will_properties = Properties::new();
    will_properties.payload_format_indicator = Some(PayloadFormat::Utf8);
    will_properties.message_expiry_interval = Some(60);
    will_properties.set_content_type(Some(s("text")));
    will_properties.set_response_topic(Some(name("r/s")));
    will_properties.set_correlation_data(Some(Bytes::from_static(&[0xAB, 0xCD])));
    will_properties.will_delay_interval = Some(5);

    let mut connect = Connect::new(s("c1"));
    connect.protocol = Protocol::Mqtt5;
    connect.keep_alive = 30;
    connect.clean_session = true;
    connect.properties = properties;
    connect.will = Some(LastWill {
        topic: name("w/t"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: will_properties,
    });
    connect.username = Some(s("u"));
    connect.password = Some(Password(Bytes::from_static(b"pw")));
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connect_with_extended_authentication() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x1F,                               // remaining length 31
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0x00,                                     // no flags: keep the session
        0x00, 0x00,                               // keep-alive off
        0x10,                                     // property length 16
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
        0x16, 0x00, 0x03, 0x01, 0x02, 0x03,       // Authentication Data
        0x19, 0x01,                               // Request Response Information 1
        0x00, 0x02, b'i', b'd',                   // client id
    ];
    let mut connect = Connect::new(s("id"));
    connect.protocol = Protocol::Mqtt5;
    connect.keep_alive = 0;
    connect.clean_session = false;
    connect
        .properties
        .set_authentication_method(Some(s("SCRAM")));
    connect
        .properties
        .set_authentication_data(Some(Bytes::from_static(&[1, 2, 3])));
    connect.properties.request_response_information = Some(true);
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connect_with_a_password_and_no_user_name() {
    // 3.1.2.9: "This version of the protocol allows the sending of a Password with no User Name,
    // where MQTT v3.1.1 did not."
    #[rustfmt::skip]
    let wire = [
        0x10, 0x12,                               // remaining length 18
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0b0100_0010,                              // password, clean start
        0x00, 0x3C,
        0x00,                                     // no properties
        0x00, 0x01, b'c',                         // client id
        0x00, 0x02, b'p', b'w',                   // password
    ];
    let mut connect = Connect::new(s("c"));
    connect.protocol = Protocol::Mqtt5;
    connect.keep_alive = 60;
    connect.password = Some(Password(Bytes::from_static(b"pw")));
    check(&wire, Packet::Connect(Box::new(connect)));
}

// ---------------------------------------------------------------------------------------------
// CONNACK (3.2)

#[test]
fn connack_minimal() {
    // Acknowledge flags, Reason Code, empty properties (3.2.2).
    check(
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        Packet::ConnAck(ConnAck::from_reason_code(ReasonCode::Success)),
    );
    let mut resumed = ConnAck::new(ConnectReturnCode::Accepted);
    resumed.session_present = true;
    assert_eq!(resumed.reason_code, ReasonCode::Success);
    check(&[0x20, 0x03, 0x01, 0x00, 0x00], Packet::ConnAck(resumed));
}

#[test]
fn connack_with_properties() {
    #[rustfmt::skip]
    let wire = [
        0x20, 0x1D,                               // remaining length 29
        0x01,                                     // session present
        0x00,                                     // Success
        0x1A,                                     // property length 26
        0x12, 0x00, 0x03, b'x', b'9', b'z',       // Assigned Client Identifier
        0x13, 0x00, 0x14,                         // Server Keep Alive 20
        0x21, 0x00, 0x14,                         // Receive Maximum 20
        0x22, 0x00, 0x0A,                         // Topic Alias Maximum 10
        0x24, 0x01,                               // Maximum QoS 1
        0x25, 0x00,                               // Retain Available: no
        0x27, 0x00, 0x01, 0x00, 0x00,             // Maximum Packet Size 65,536
        0x2A, 0x00,                               // Shared Subscription Available: no
    ];
    let mut properties = Properties::new();
    properties.set_assigned_client_identifier(Some(s("x9z")));
    properties.server_keep_alive = Some(20);
    properties.receive_maximum = NonZeroU16::new(20);
    properties.topic_alias_maximum = Some(10);
    properties.maximum_qos = Some(QoS::AtLeastOnce);
    properties.retain_available = Some(false);
    properties.maximum_packet_size = NonZeroU32::new(65_536);
    properties.shared_subscription_available = Some(false);
    let mut connack = ConnAck::from_reason_code(ReasonCode::Success).with_properties(properties);
    connack.session_present = true;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);
    check(&wire, Packet::ConnAck(connack));
}

#[test]
fn connack_refusing() {
    // 0x87 Not authorized, no properties.
    let refusal = ConnAck::from_reason_code(ReasonCode::NotAuthorized);
    assert_eq!(refusal.code, ConnectReturnCode::NotAuthorized);
    check(&[0x20, 0x03, 0x00, 0x87, 0x00], Packet::ConnAck(refusal));

    // 0x9C Use another server, with a Server Reference and a Reason String (3.2.2.3.16,
    // 3.2.2.3.9).
    #[rustfmt::skip]
    let wire = [
        0x20, 0x0F,                               // remaining length 15
        0x00,                                     // no session (MQTT-3.2.2-6)
        0x9C,                                     // Use another server
        0x0C,                                     // property length 12
        0x1C, 0x00, 0x02, b'h', b'2',             // Server Reference
        0x1F, 0x00, 0x04, b'b', b'u', b's', b'y', // Reason String
    ];
    let mut properties = Properties::new();
    properties.set_server_reference(Some(s("h2")));
    properties.set_reason_string(Some(s("busy")));
    let connack =
        ConnAck::from_reason_code(ReasonCode::UseAnotherServer).with_properties(properties);
    assert_eq!(connack.reason_code, ReasonCode::UseAnotherServer);
    check(&wire, Packet::ConnAck(connack));
}

// ---------------------------------------------------------------------------------------------
// PUBLISH (3.3)

#[test]
fn publish_without_properties() {
    // Topic, then a property length of 0 (3.3.2.3.1), then no payload.
    check(
        &[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'b', 0x00],
        Packet::Publish(Publish::new(name("a/b"), Bytes::new())),
    );
}

#[test]
fn publish_with_properties() {
    #[rustfmt::skip]
    let wire = [
        0x33, 0x2E,                               // PUBLISH, QoS 1, retain; remaining length 46
        0x00, 0x03, b'a', b'/', b'b',             // topic
        0x00, 0x0A,                               // packet id 10
        0x24,                                     // property length 36
        0x01, 0x01,                               // Payload Format Indicator: UTF-8
        0x08, 0x00, 0x03, b'r', b'/', b'1',       // Response Topic
        0x09, 0x00, 0x03, 0x01, 0x02, 0x03,       // Correlation Data
        0x0B, 0x80, 0x01,                         // Subscription Identifier 128: two-byte VBI
        0x0B, 0x01,                               // Subscription Identifier 1 (3.3.4: several)
        0x23, 0x00, 0x05,                         // Topic Alias 5, set along with the topic
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property k=v
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'w', // User Property k=w: names repeat, in order
        b'h', b'i',                               // payload
    ];
    let mut properties = Properties::new();
    properties.payload_format_indicator = Some(PayloadFormat::Utf8);
    properties.set_response_topic(Some(name("r/1")));
    properties.set_correlation_data(Some(Bytes::from_static(&[1, 2, 3])));
    properties.push_subscription_identifier(SubscriptionId::new(128).unwrap());
    properties.push_subscription_identifier(SubscriptionId::new(1).unwrap());
    properties.topic_alias = NonZeroU16::new(5);
    user(&mut properties, "k", "v");
    user(&mut properties, "k", "w");
    let mut publish = Publish::new(name("a/b"), Bytes::from_static(b"hi"));
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = Some(id(10));
    publish.retain = true;
    let publish = publish.with_properties(properties);
    check(&wire, Packet::Publish(publish));
}

#[test]
fn publish_with_the_largest_subscription_identifier() {
    #[rustfmt::skip]
    let wire = [
        0x3C, 0x10,                               // PUBLISH, DUP, QoS 2; remaining length 16
        0x00, 0x01, b't',
        0xFF, 0xFE,                               // packet id 65,534
        0x0A,                                     // property length 10
        0x02, 0x00, 0x00, 0x00, 0x3C,             // Message Expiry Interval 60
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F,             // Subscription Identifier 268,435,455 (1.5.5)
    ];
    let mut properties = Properties::new();
    properties.message_expiry_interval = Some(60);
    properties.push_subscription_identifier(SubscriptionId::MAX);
    assert_eq!(SubscriptionId::MAX.get(), 268_435_455);
    let mut publish = Publish::new(name("t"), Bytes::new());
    publish.qos = QoS::ExactlyOnce;
    publish.packet_id = Some(id(0xFFFE));
    publish.dup = true;
    publish.set_properties(properties);
    check(&wire, Packet::Publish(publish));
}

#[test]
fn publish_with_a_topic_alias_and_an_empty_topic() {
    // 3.3.2.3.4: a sender that has set an alias may send an empty topic with that alias.
    #[rustfmt::skip]
    let wire = [
        0x30, 0x07,                               // PUBLISH, QoS 0; remaining length 7
        0x00, 0x00,                               // topic: empty
        0x03,                                     // property length 3
        0x23, 0x00, 0x05,                         // Topic Alias 5
        b'x',                                     // payload
    ];
    check_remaining_length(&wire);
    let Some(Packet::Publish(publish)) = decode_v5(&wire).unwrap() else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(publish.topic(), "");
    assert_eq!(publish.topic_bytes(), b"");
    assert_eq!(publish.payload(), b"x");
    assert_eq!(publish.qos, QoS::AtMostOnce);
    assert_eq!(publish.packet_id, None);
    assert_eq!(publish.properties().topic_alias, NonZeroU16::new(5));
    let mut only_alias = Properties::new();
    only_alias.topic_alias = NonZeroU16::new(5);
    assert_eq!(publish.properties(), &only_alias);
    // The decoded message encodes back to the same bytes.
    assert_eq!(encode_v5(&Packet::Publish(publish)), wire);
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 to 3.7)

/// The three forms of an acknowledgement whose first byte is `first`, with a failure or
/// non-default `reason_code` valid in it, built by `make(packet id, reason code, properties)`;
/// and the long forms the encoder shortens.
fn acknowledgement_forms(
    first: u8,
    reason_code: ReasonCode,
    make: impl Fn(PacketId, ReasonCode, Properties) -> Packet,
) {
    let rc = reason_code.to_u8();
    // Short form: Success and no properties, remaining length 2 (3.4.2.1).
    check(
        &[first, 0x02, 0x12, 0x34],
        make(id(0x1234), ReasonCode::Success, Properties::new()),
    );
    // Reason Code only: "If the Remaining Length is less than 4 there is no Property Length"
    // (3.4.2.2.1).
    check(
        &[first, 0x03, 0x00, 0x01, rc],
        make(id(1), reason_code, Properties::new()),
    );
    // Reason Code and properties.
    #[rustfmt::skip]
    let wire = [
        first, 0x11,                              // remaining length 17 = 2 + 1 + 1 + 13
        0x00, 0x02,                               // packet id 2
        rc,
        0x0D,                                     // property length 13
        0x1F, 0x00, 0x04, b'n', b'o', b'n', b'e', // Reason String "none"
        0x26, 0x00, 0x01, b'k', 0x00, 0x00,       // User Property k=""
    ];
    let mut properties = Properties::new();
    properties.set_reason_string(Some(s("none")));
    user(&mut properties, "k", "");
    check(&wire, make(id(2), reason_code, properties.clone()));
    // Success with properties keeps its Reason Code byte.
    #[rustfmt::skip]
    let success_with_properties = [
        first, 0x11, 0x00, 0x02, 0x00, 0x0D,
        0x1F, 0x00, 0x04, b'n', b'o', b'n', b'e',
        0x26, 0x00, 0x01, b'k', 0x00, 0x00,
    ];
    check(
        &success_with_properties,
        make(id(2), ReasonCode::Success, properties),
    );

    // Long forms our encoder shortens: Success spelt out, an empty property section spelt out.
    check_long_form(
        &[first, 0x03, 0x00, 0x07, 0x00],
        &[first, 0x02, 0x00, 0x07],
        make(id(7), ReasonCode::Success, Properties::new()),
    );
    check_long_form(
        &[first, 0x04, 0x00, 0x07, 0x00, 0x00],
        &[first, 0x02, 0x00, 0x07],
        make(id(7), ReasonCode::Success, Properties::new()),
    );
    check_long_form(
        &[first, 0x04, 0x00, 0x07, rc, 0x00],
        &[first, 0x03, 0x00, 0x07, rc],
        make(id(7), reason_code, Properties::new()),
    );
}

#[test]
fn puback_forms() {
    acknowledgement_forms(0x40, ReasonCode::NoMatchingSubscribers, |id, rc, p| {
        let mut ack = PubAck::new(id);
        ack.reason_code = rc;
        Packet::PubAck(ack.with_properties(p))
    });
    acknowledgement_forms(0x40, ReasonCode::QuotaExceeded, |id, rc, p| {
        let mut ack = PubAck::new(id);
        ack.reason_code = rc;
        Packet::PubAck(ack.with_properties(p))
    });
}

#[test]
fn pubrec_forms() {
    acknowledgement_forms(0x50, ReasonCode::PayloadFormatInvalid, |id, rc, p| {
        let mut ack = PubRec::new(id);
        ack.reason_code = rc;
        Packet::PubRec(ack.with_properties(p))
    });
}

#[test]
fn pubrel_forms() {
    // PUBREL keeps its fixed-header flags 0b0010 (MQTT-3.6.1-1).
    acknowledgement_forms(0x62, ReasonCode::PacketIdentifierNotFound, |id, rc, p| {
        let mut ack = PubRel::new(id);
        ack.reason_code = rc;
        Packet::PubRel(ack.with_properties(p))
    });
}

#[test]
fn pubcomp_forms() {
    acknowledgement_forms(0x70, ReasonCode::PacketIdentifierNotFound, |id, rc, p| {
        let mut ack = PubComp::new(id);
        ack.reason_code = rc;
        Packet::PubComp(ack.with_properties(p))
    });
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (3.8 to 3.11)

#[test]
fn subscribe_with_options_and_a_subscription_identifier() {
    #[rustfmt::skip]
    let wire = [
        0x82, 0x1C,                               // SUBSCRIBE; remaining length 28
        0x00, 0x0A,                               // packet id 10
        0x09,                                     // property length 9
        0x0B, 0x2A,                               // Subscription Identifier 42
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property k=v
        0x00, 0x03, b'a', b'/', b'b',
        0b0010_1101,                              // retain handling 2, retain as published,
                                                  // no local, QoS 1 (3.8.3.1)
        0x00, 0x03, b'c', b'/', b'#',
        0b0001_0010,                              // retain handling 1, QoS 2
        0x00, 0x01, b'd',
        0b0000_0000,                              // all defaults, QoS 0
    ];
    let mut properties = Properties::new();
    properties.push_subscription_identifier(SubscriptionId::new(42).unwrap());
    user(&mut properties, "k", "v");
    let mut first = SubscribeFilter::new(filter("a/b"), QoS::AtLeastOnce);
    first.no_local = true;
    first.retain_as_published = true;
    first.retain_handling = RetainHandling::DoNotSend;
    let mut second = SubscribeFilter::new(filter("c/#"), QoS::ExactlyOnce);
    second.retain_handling = RetainHandling::SendAtNewSubscribe;
    let third = SubscribeFilter::new(filter("d"), QoS::AtMostOnce);
    assert!(!third.no_local && !third.retain_as_published);
    assert_eq!(third.retain_handling, RetainHandling::SendAtSubscribe);
    assert_eq!(RetainHandling::default(), RetainHandling::SendAtSubscribe);
    let subscribe =
        Subscribe::with_filters(id(10), vec![first, second, third]).with_properties(properties);
    check(&wire, Packet::Subscribe(subscribe));
}

#[test]
fn subscribe_without_properties() {
    #[rustfmt::skip]
    let wire = [
        0x82, 0x07,
        0x00, 0x01,
        0x00,                                     // property length 0
        0x00, 0x01, b'#', 0x01,
    ];
    check(
        &wire,
        Packet::Subscribe(Subscribe::new(id(1), filter("#"), QoS::AtLeastOnce)),
    );
}

#[test]
fn suback_with_every_reason_code() {
    #[rustfmt::skip]
    let wire = [
        0x90, 0x15,                               // SUBACK; remaining length 21
        0x00, 0x0A,                               // packet id 10
        0x06,                                     // property length 6
        0x1F, 0x00, 0x03, b'p', b'r', b't',       // Reason String
        // The SUBACK Reason Codes of 3.9.3.
        0x00, 0x01, 0x02,                         // Granted QoS 0, 1, 2
        0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    let mut properties = Properties::new();
    properties.set_reason_string(Some(s("prt")));
    let refused = SubscribeReturnCode::Refused;
    let suback = SubAck::new(
        id(10),
        vec![
            SubscribeReturnCode::Success(QoS::AtMostOnce),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
            SubscribeReturnCode::Success(QoS::ExactlyOnce),
            SubscribeReturnCode::Failure,
            refused(ReasonCode::ImplementationSpecificError),
            refused(ReasonCode::NotAuthorized),
            refused(ReasonCode::TopicFilterInvalid),
            refused(ReasonCode::PacketIdentifierInUse),
            refused(ReasonCode::QuotaExceeded),
            refused(ReasonCode::SharedSubscriptionsNotSupported),
            refused(ReasonCode::SubscriptionIdentifiersNotSupported),
            refused(ReasonCode::WildcardSubscriptionsNotSupported),
        ],
    )
    .with_properties(properties);
    assert_eq!(
        suback.return_codes[3].reason_code(),
        ReasonCode::UnspecifiedError
    );
    assert_eq!(
        suback.return_codes[2].reason_code(),
        ReasonCode::GrantedQos2
    );
    check(&wire, Packet::SubAck(suback));
}

#[test]
fn unsubscribe_with_user_properties() {
    #[rustfmt::skip]
    let wire = [
        0xA2, 0x1B,                               // UNSUBSCRIBE; remaining length 27
        0x00, 0x0B,                               // packet id 11
        0x0E,                                     // property length 14
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property k=v
        0x26, 0x00, 0x02, b'k', b'2', 0x00, 0x00, // User Property k2=""
        0x00, 0x03, b'a', b'/', b'#',
        0x00, 0x03, b'c', b'/', b'd',
    ];
    let mut properties = Properties::new();
    user(&mut properties, "k", "v");
    user(&mut properties, "k2", "");
    let unsubscribe =
        Unsubscribe::new(id(11), vec![filter("a/#"), filter("c/d")]).with_properties(properties);
    check(&wire, Packet::Unsubscribe(unsubscribe));
}

#[test]
fn unsuback_with_reason_codes() {
    #[rustfmt::skip]
    let wire = [
        0xB0, 0x0A,                               // UNSUBACK; remaining length 10
        0x00, 0x0B,                               // packet id 11
        0x00,                                     // property length 0
        // The UNSUBACK Reason Codes of 3.11.3, one per filter.
        0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91,
    ];
    let unsuback = UnsubAck::with_reason_codes(
        id(11),
        vec![
            ReasonCode::Success,
            ReasonCode::NoSubscriptionExisted,
            ReasonCode::UnspecifiedError,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::PacketIdentifierInUse,
        ],
    );
    check(&wire, Packet::UnsubAck(unsuback));

    #[rustfmt::skip]
    let wire = [
        0xB0, 0x08,
        0x00, 0x0C,
        0x04,                                     // property length 4
        0x1F, 0x00, 0x01, b'x',                   // Reason String
        0x11,                                     // No subscription existed
    ];
    let mut properties = Properties::new();
    properties.set_reason_string(Some(s("x")));
    let unsuback = UnsubAck::with_reason_codes(id(12), vec![ReasonCode::NoSubscriptionExisted])
        .with_properties(properties);
    check(&wire, Packet::UnsubAck(unsuback));
}

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH (3.12 to 3.15)

#[test]
fn pings_are_as_in_311() {
    check(&[0xC0, 0x00], Packet::PingReq);
    check(&[0xD0, 0x00], Packet::PingResp);
}

#[test]
fn disconnect_forms() {
    // Remaining length 0: Normal disconnection, no properties (3.14.2.1).
    check(&[0xE0, 0x00], Packet::Disconnect(Disconnect::new()));
    assert_eq!(
        Disconnect::new().reason_code,
        ReasonCode::NORMAL_DISCONNECTION
    );
    // One byte: the Reason Code; "If the Remaining Length is less than 2, a value of 0 is used"
    // for the property length (3.14.2.2.1).
    let mut with_will = Disconnect::new();
    with_will.reason_code = ReasonCode::DisconnectWithWillMessage;
    check(&[0xE0, 0x01, 0x04], Packet::Disconnect(with_will.clone()));
    // Long forms.
    check_long_form(
        &[0xE0, 0x01, 0x00],
        &[0xE0, 0x00],
        Packet::Disconnect(Disconnect::new()),
    );
    check_long_form(
        &[0xE0, 0x02, 0x00, 0x00],
        &[0xE0, 0x00],
        Packet::Disconnect(Disconnect::new()),
    );
    check_long_form(
        &[0xE0, 0x02, 0x04, 0x00],
        &[0xE0, 0x01, 0x04],
        Packet::Disconnect(with_will),
    );
}

#[test]
fn disconnect_with_properties() {
    #[rustfmt::skip]
    let wire = [
        0xE0, 0x15,                               // DISCONNECT; remaining length 21
        0x9D,                                     // Server moved
        0x13,                                     // property length 19
        0x11, 0x00, 0x00, 0x0E, 0x10,             // Session Expiry Interval 3600
        0x1C, 0x00, 0x03, b'h', b':', b'1',       // Server Reference
        0x1F, 0x00, 0x05, b'm', b'o', b'v', b'e', b'd', // Reason String
    ];
    let mut properties = Properties::new();
    properties.session_expiry_interval = Some(3600);
    properties.set_server_reference(Some(s("h:1")));
    properties.set_reason_string(Some(s("moved")));
    let mut disconnect = Disconnect::new().with_properties(properties.clone());
    disconnect.reason_code = ReasonCode::ServerMoved;
    check(&wire, Packet::Disconnect(disconnect));

    // Normal disconnection with properties keeps its Reason Code byte.
    #[rustfmt::skip]
    let wire = [
        0xE0, 0x07,
        0x00,                                     // Normal disconnection
        0x05,                                     // property length 5
        0x11, 0x00, 0x00, 0x00, 0x00,             // Session Expiry Interval 0
    ];
    let mut properties = Properties::new();
    properties.session_expiry_interval = Some(0);
    check(
        &wire,
        Packet::Disconnect(Disconnect::new().with_properties(properties)),
    );
}

#[test]
fn auth_forms() {
    // Remaining length 0: Success, no properties (3.15.2.1).
    check(&[0xF0, 0x00], Packet::Auth(Auth::new(ReasonCode::Success)));
    check_long_form(
        &[0xF0, 0x02, 0x00, 0x00],
        &[0xF0, 0x00],
        Packet::Auth(Auth::new(ReasonCode::Success)),
    );

    // Unlike DISCONNECT, AUTH has no one-byte form: a Reason Code other than Success comes with
    // its Property Length (3.15.2.1, 3.15.2.2.1).
    check(
        &[0xF0, 0x02, 0x18, 0x00],
        Packet::Auth(Auth::new(ReasonCode::ContinueAuthentication)),
    );
    #[rustfmt::skip]
    let wire = [
        0xF0, 0x11,                               // AUTH; remaining length 17
        0x18,                                     // Continue authentication
        0x0F,                                     // property length 15
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
        0x16, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, // Authentication Data
    ];
    let mut properties = Properties::new();
    properties.set_authentication_method(Some(s("SCRAM")));
    properties.set_authentication_data(Some(Bytes::from_static(&[1, 2, 3, 4])));
    let auth = Auth::new(ReasonCode::ContinueAuthentication).with_properties(properties);
    check(&wire, Packet::Auth(auth));

    #[rustfmt::skip]
    let wire = [
        0xF0, 0x0E,                               // remaining length 14
        0x19,                                     // Re-authenticate
        0x0C,                                     // property length 12
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
        0x1F, 0x00, 0x01, b'r',                   // Reason String
    ];
    let mut properties = Properties::new();
    properties.set_authentication_method(Some(s("SCRAM")));
    properties.set_reason_string(Some(s("r")));
    let auth = Auth::new(ReasonCode::ReAuthenticate).with_properties(properties);
    check(&wire, Packet::Auth(auth));
}

// ---------------------------------------------------------------------------------------------
// What MQTT 5 refuses

#[test]
fn a_property_not_allowed_in_the_packet_is_malformed() {
    // 2.2.2.2: "A Control Packet which contains an Identifier which is not valid for its packet
    // type ... is a Malformed Packet".
    #[rustfmt::skip]
    let topic_alias_in_connect = [
        0x10, 0x10,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x03, 0x23, 0x00, 0x01,                   // Topic Alias 1
        0x00, 0x00,
    ];
    refused(
        &topic_alias_in_connect,
        DecodeError::Property(PropertyError::NotAllowed {
            property: PropertyId::TopicAlias,
            context: PropertyContext::Connect,
        }),
        ReasonCode::MalformedPacket,
    );
    // Will Delay Interval belongs to the will properties, not CONNECT's own.
    #[rustfmt::skip]
    let will_delay_in_connect = [
        0x10, 0x12,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x05, 0x18, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00,
    ];
    refused(
        &will_delay_in_connect,
        DecodeError::Property(PropertyError::NotAllowed {
            property: PropertyId::WillDelayInterval,
            context: PropertyContext::Connect,
        }),
        ReasonCode::MalformedPacket,
    );
    // A Reason String in PUBLISH.
    refused(
        &[0x30, 0x08, 0x00, 0x01, b't', 0x04, 0x1F, 0x00, 0x01, b'x'],
        DecodeError::Property(PropertyError::NotAllowed {
            property: PropertyId::ReasonString,
            context: PropertyContext::Publish,
        }),
        ReasonCode::MalformedPacket,
    );
    // Session Expiry Interval in PUBACK.
    refused(
        &[
            0x40, 0x09, 0x00, 0x01, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
        ],
        DecodeError::Property(PropertyError::NotAllowed {
            property: PropertyId::SessionExpiryInterval,
            context: PropertyContext::PubAck,
        }),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn a_repeated_property_is_a_protocol_error() {
    // 3.3.2.3.3: "It is a Protocol Error to include the Message Expiry Interval more than once".
    #[rustfmt::skip]
    let wire = [
        0x30, 0x0E,
        0x00, 0x01, b't',
        0x0A,
        0x02, 0x00, 0x00, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x02,
    ];
    refused(
        &wire,
        DecodeError::Property(PropertyError::Duplicate {
            property: PropertyId::MessageExpiryInterval,
            context: PropertyContext::Publish,
        }),
        ReasonCode::ProtocolError,
    );
    // 3.8.2.1.2: "It is a Protocol Error to include the Subscription Identifier more than once"
    // in SUBSCRIBE.
    #[rustfmt::skip]
    let wire = [
        0x82, 0x0B,
        0x00, 0x01,
        0x04, 0x0B, 0x01, 0x0B, 0x02,
        0x00, 0x01, b't', 0x00,
    ];
    refused(
        &wire,
        DecodeError::Property(PropertyError::Duplicate {
            property: PropertyId::SubscriptionIdentifier,
            context: PropertyContext::Subscribe,
        }),
        ReasonCode::ProtocolError,
    );
    // 3.15.2.2.3: the Reason String once in AUTH.
    #[rustfmt::skip]
    let wire = [
        0xF0, 0x0A,
        0x18, 0x08,
        0x1F, 0x00, 0x01, b'a',
        0x1F, 0x00, 0x01, b'b',
    ];
    refused(
        &wire,
        DecodeError::Property(PropertyError::Duplicate {
            property: PropertyId::ReasonString,
            context: PropertyContext::Auth,
        }),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn receive_maximum_zero_is_a_protocol_error() {
    // 3.1.2.11.3 and 3.2.2.3.3: "It is a Protocol Error to include the Receive Maximum value
    // more than once or for it to have the value 0."
    #[rustfmt::skip]
    let connect = [
        0x10, 0x10,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x03, 0x21, 0x00, 0x00,
        0x00, 0x00,
    ];
    let error = DecodeError::Property(PropertyError::Zero {
        property: PropertyId::ReceiveMaximum,
    });
    refused(&connect, error.clone(), ReasonCode::ProtocolError);
    refused(
        &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00],
        error,
        ReasonCode::ProtocolError,
    );
}

#[test]
fn a_reason_code_not_valid_in_the_packet_is_refused() {
    // Each packet's table lists its Reason Codes, and its sender "MUST use one of" them
    // (MQTT-3.4.2-1, MQTT-3.6.2-1, ...). The spec does not say which error a wrong one is; the
    // byte parses, so by the definitions of section 1.2 it is a Protocol Error.
    // 3.6.2.1: PUBREL's Reason Codes are 0x00 and 0x92 only; 0x87 Not authorized is PUBACK's.
    refused(
        &[0x62, 0x03, 0x00, 0x01, 0x87],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::PubRel,
            code: 0x87,
        },
        ReasonCode::ProtocolError,
    );
    // 0x03 is no Reason Code at all (table 2-6).
    refused(
        &[0x40, 0x03, 0x00, 0x01, 0x03],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::PubAck,
            code: 0x03,
        },
        ReasonCode::ProtocolError,
    );
    // 0x19 Re-authenticate belongs to AUTH, not DISCONNECT (3.14.2.1).
    refused(
        &[0xE0, 0x01, 0x19],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::Disconnect,
            code: 0x19,
        },
        ReasonCode::ProtocolError,
    );
    // 0x04 Disconnect with Will Message is not an AUTH code (3.15.2.1).
    refused(
        &[0xF0, 0x02, 0x04, 0x00],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::Auth,
            code: 0x04,
        },
        ReasonCode::ProtocolError,
    );
    // 0x92 Packet Identifier not found is PUBREL's and PUBCOMP's, not UNSUBACK's (3.11.3).
    refused(
        &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x92],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::UnsubAck,
            code: 0x92,
        },
        ReasonCode::ProtocolError,
    );
}

#[test]
fn retain_handling_3_is_a_protocol_error() {
    // 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
    refused(
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', 0b0011_0000],
        DecodeError::InvalidSubscriptionOptions {
            filter: filter("t"),
            byte: 0b0011_0000,
        },
        ReasonCode::ProtocolError,
    );
    // 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
    refused(
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', 0b0000_0011],
        DecodeError::InvalidSubscriptionOptions {
            filter: filter("t"),
            byte: 0b0000_0011,
        },
        ReasonCode::ProtocolError,
    );
}

#[test]
fn reserved_subscription_option_bits_are_malformed() {
    // MQTT-3.8.3-5: "The Server MUST treat a SUBSCRIBE packet as malformed if any of Reserved
    // bits in the Payload are non-zero" (bits 6 and 7 of the options).
    for options in [0b0100_0000, 0b1000_0001] {
        refused(
            &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', options],
            DecodeError::InvalidSubscriptionOptions {
                filter: filter("t"),
                byte: options,
            },
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn an_empty_topic_needs_a_topic_alias() {
    // 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no Topic
    // Alias."
    refused(
        &[0x30, 0x04, 0x00, 0x00, 0x00, b'x'],
        DecodeError::EmptyTopicWithoutAlias,
        ReasonCode::ProtocolError,
    );
    // Other properties do not stand in for the alias.
    refused(
        &[0x30, 0x05, 0x00, 0x00, 0x02, 0x01, 0x01],
        DecodeError::EmptyTopicWithoutAlias,
        ReasonCode::ProtocolError,
    );
}

#[test]
fn auth_is_a_reserved_type_in_311() {
    // MQTT 3.1.1 section 2.2.1: type 15 is reserved.
    for protocol in [Protocol::Mqtt311, Protocol::Mqtt31] {
        let error =
            Packet::read_in(protocol, &mut BytesMut::from(&[0xF0, 0x00][..]), 64).unwrap_err();
        assert_eq!(error, DecodeError::ReservedPacketType(15));
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
    }
    assert_eq!(
        Packet::read(&mut BytesMut::from(&[0xF0, 0x00][..]), 64),
        Err(DecodeError::ReservedPacketType(15))
    );
    // Type 0 stays reserved in MQTT 5.
    refused(
        &[0x00, 0x00],
        DecodeError::ReservedPacketType(0),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn v5_parts_do_not_encode_as_311() {
    let mut reason = Properties::new();
    reason.set_reason_string(Some(s("why")));
    let mut puback_rc = PubAck::new(id(1));
    puback_rc.reason_code = ReasonCode::NoMatchingSubscribers;
    let mut disconnect_rc = Disconnect::new();
    disconnect_rc.reason_code = ReasonCode::ServerShuttingDown;
    let mut alias = Properties::new();
    alias.topic_alias = NonZeroU16::new(1);
    let mut connect = Connect::new(s("c"));
    connect.properties.session_expiry_interval = Some(10);
    let mut tagged = Properties::new();
    user(&mut tagged, "k", "v");
    let cases = [
        (
            Packet::PubAck(PubAck::new(id(1)).with_properties(reason.clone())),
            PacketType::PubAck,
        ),
        (Packet::PubAck(puback_rc), PacketType::PubAck),
        (
            Packet::PubComp(PubComp::new(id(1)).with_properties(reason.clone())),
            PacketType::PubComp,
        ),
        (
            Packet::Publish(Publish::new(name("t"), Bytes::new()).with_properties(alias)),
            PacketType::Publish,
        ),
        (
            Packet::Subscribe(
                Subscribe::new(id(1), filter("t"), QoS::AtMostOnce).with_properties(tagged),
            ),
            PacketType::Subscribe,
        ),
        (
            Packet::SubAck(
                SubAck::new(id(1), vec![SubscribeReturnCode::Failure])
                    .with_properties(reason.clone()),
            ),
            PacketType::SubAck,
        ),
        (
            Packet::ConnAck(
                ConnAck::new(ConnectReturnCode::Accepted).with_properties(reason.clone()),
            ),
            PacketType::ConnAck,
        ),
        (Packet::Disconnect(disconnect_rc), PacketType::Disconnect),
        (
            Packet::Disconnect(Disconnect::new().with_properties(reason.clone())),
            PacketType::Disconnect,
        ),
        (
            Packet::Auth(Auth::new(ReasonCode::Success)),
            PacketType::Auth,
        ),
        // A 3.1.1 CONNECT carrying properties.
        (Packet::Connect(Box::new(connect)), PacketType::Connect),
    ];
    for (packet, packet_type) in cases {
        let mut buf = BytesMut::new();
        let error = packet.encode(&mut buf).unwrap_err();
        assert!(
            matches!(error, EncodeError::NotInProtocol { packet_type: t, .. } if t == packet_type),
            "{packet:?}: {error:?}"
        );
        assert!(!error.to_string().is_empty());
        assert_eq!(
            packet.encode_in(Protocol::Mqtt311, &mut buf).unwrap_err(),
            error
        );
        assert!(buf.is_empty(), "{packet:?} wrote {buf:02x?} before failing");
        // The same packet is fine as MQTT 5 (a CONNECT encodes as its own protocol).
        if packet_type != PacketType::Connect {
            encode_v5(&packet);
        }
    }
}

#[test]
fn a_refusing_suback_encodes_0x80_in_311() {
    // 3.1.1 has one failure code; every MQTT 5 failure encodes as it.
    let suback = SubAck::new(
        id(1),
        vec![
            SubscribeReturnCode::Refused(ReasonCode::QuotaExceeded),
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
        ],
    );
    let mut buf = BytesMut::new();
    suback.encode(&mut buf).unwrap();
    assert_eq!(&buf[..], [0x90, 0x04, 0x00, 0x01, 0x80, 0x01]);
    // And in MQTT 5 it keeps its code, after an empty property section.
    assert_eq!(
        encode_v5(&Packet::SubAck(suback)),
        [0x90, 0x05, 0x00, 0x01, 0x00, 0x97, 0x01]
    );
}

#[test]
fn connack_refusals() {
    // MQTT-3.2.2-6: a CONNACK with a failure Reason Code has Session Present 0.
    refused(
        &[0x20, 0x03, 0x01, 0x87, 0x00],
        DecodeError::SessionPresentWithRefusal {
            code: ConnectReturnCode::NotAuthorized,
        },
        ReasonCode::ProtocolError,
    );
    // 0x04 Disconnect with Will Message is not a CONNACK code (3.2.2.2).
    refused(
        &[0x20, 0x03, 0x00, 0x04, 0x00],
        DecodeError::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code: 0x04,
        },
        ReasonCode::ProtocolError,
    );
}

#[test]
fn suback_codes_outside_its_table_are_refused() {
    // 3.9.3: 0x03 is no Reason Code, 0x11 is UNSUBACK's, 0x81 Malformed Packet a failure that
    // only CONNACK and DISCONNECT carry.
    for code in [0x03, 0x11, 0x81, 0x92] {
        refused(
            &[0x90, 0x04, 0x00, 0x01, 0x00, code],
            DecodeError::InvalidReasonCode {
                packet_type: PacketType::SubAck,
                code,
            },
            ReasonCode::ProtocolError,
        );
    }
}

#[test]
fn an_unsuback_needs_a_reason_code() {
    // 3.11.3: one Reason Code per topic filter of the UNSUBSCRIBE; there is at least one.
    refused(
        &[0xB0, 0x03, 0x00, 0x01, 0x00],
        DecodeError::NoReturnCodes {
            packet_type: PacketType::UnsubAck,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn property_value_refusals() {
    // 3.3.2.3.4: "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT
    // with Reason Code of 0x94 (Topic Alias invalid)".
    refused(
        &[0x30, 0x07, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00],
        DecodeError::Property(PropertyError::Zero {
            property: PropertyId::TopicAlias,
        }),
        ReasonCode::TopicAliasInvalid,
    );
    // 3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier has a value of 0."
    refused(
        &[
            0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b't', 0x00,
        ],
        DecodeError::Property(PropertyError::Zero {
            property: PropertyId::SubscriptionIdentifier,
        }),
        ReasonCode::ProtocolError,
    );
    // A Property Length past the end of the packet.
    refused(
        &[0x40, 0x04, 0x00, 0x01, 0x00, 0x05],
        DecodeError::Property(PropertyError::LengthPastEnd {
            length: 5,
            available: 0,
        }),
        ReasonCode::MalformedPacket,
    );
    // Topic Alias in the will properties (3.1.3.2 lists what they may hold).
    #[rustfmt::skip]
    let wire = [
        0x10, 0x17,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0b0000_0110,                              // will, clean start
        0x00, 0x3C, 0x00,
        0x00, 0x01, b'c',
        0x03, 0x23, 0x00, 0x01,                   // will properties: Topic Alias 1
        0x00, 0x01, b't',
        0x00, 0x00,
    ];
    refused(
        &wire,
        DecodeError::Property(PropertyError::NotAllowed {
            property: PropertyId::TopicAlias,
            context: PropertyContext::Will,
        }),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    // MQTT-3.8.3-4: "It is a Protocol Error to set the No Local bit to 1 on a Shared
    // Subscription."
    #[rustfmt::skip]
    let wire = [
        0x82, 0x10,
        0x00, 0x01, 0x00,
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b't',
        0b0000_0100,                              // No Local
    ];
    refused(
        &wire,
        DecodeError::NoLocalOnSharedSubscription {
            filter: filter("$share/g/t"),
        },
        ReasonCode::ProtocolError,
    );
}

#[test]
fn a_connect_is_read_by_its_own_level() {
    // A level-5 CONNECT read by a decoder still at its MQTT 3.1.1 default is an MQTT 5 CONNECT:
    // it is what tells a server the connection's protocol.
    #[rustfmt::skip]
    let v5 = [
        0x10, 0x10,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C,
        0x03, 0x21, 0x00, 0x05,                   // Receive Maximum 5
        0x00, 0x00,
    ];
    let Some(Packet::Connect(connect)) = Packet::read(&mut BytesMut::from(&v5[..]), 64).unwrap()
    else {
        panic!("expected a CONNECT");
    };
    assert_eq!(connect.protocol, Protocol::Mqtt5);
    assert_eq!(connect.properties.receive_maximum, NonZeroU16::new(5));
    // And a level-4 one read in MQTT 5 is an MQTT 3.1.1 CONNECT, without a property section.
    #[rustfmt::skip]
    let v311 = [
        0x10, 0x0C,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C,
        0x00, 0x00,
    ];
    check_remaining_length(&v311);
    let Some(Packet::Connect(connect)) = decode_v5(&v311).unwrap() else {
        panic!("expected a CONNECT");
    };
    assert_eq!(connect.protocol, Protocol::Mqtt311);
    assert!(connect.properties.is_empty());
}

#[test]
fn v5_forms_are_refused_in_311() {
    // An MQTT 3.1.1 DISCONNECT and PUBACK have no Reason Code.
    assert_eq!(
        Packet::read(&mut BytesMut::from(&[0xE0, 0x01, 0x04][..]), 64),
        Err(DecodeError::TrailingBytes {
            packet_type: PacketType::Disconnect,
            extra: 1
        })
    );
    assert_eq!(
        Packet::read(&mut BytesMut::from(&[0x40, 0x03, 0x00, 0x01, 0x10][..]), 64),
        Err(DecodeError::TrailingBytes {
            packet_type: PacketType::PubAck,
            extra: 1
        })
    );
}

#[test]
fn the_v5_encoder_refuses_what_the_decoder_would() {
    let v5 = |packet: &Packet| {
        let mut buf = BytesMut::new();
        let result = packet.encode_in(Protocol::Mqtt5, &mut buf);
        if result.is_err() {
            assert!(buf.is_empty(), "{packet:?} wrote {buf:02x?} before failing");
        }
        result
    };
    let mut pubrel = PubRel::new(id(1));
    pubrel.reason_code = ReasonCode::NotAuthorized;
    assert_eq!(
        v5(&Packet::PubRel(pubrel)),
        Err(EncodeError::InvalidReasonCode {
            packet_type: PacketType::PubRel,
            reason_code: ReasonCode::NotAuthorized,
        })
    );
    let mut disconnect = Disconnect::new();
    disconnect.reason_code = ReasonCode::ContinueAuthentication;
    assert_eq!(
        v5(&Packet::Disconnect(disconnect)),
        Err(EncodeError::InvalidReasonCode {
            packet_type: PacketType::Disconnect,
            reason_code: ReasonCode::ContinueAuthentication,
        })
    );
    assert_eq!(
        v5(&Packet::SubAck(SubAck::new(
            id(1),
            vec![SubscribeReturnCode::Refused(ReasonCode::GrantedQos1)]
        ))),
        Err(EncodeError::InvalidReasonCode {
            packet_type: PacketType::SubAck,
            reason_code: ReasonCode::GrantedQos1,
        })
    );
    assert!(
        v5(&Packet::SubAck(SubAck::new(
            id(1),
            vec![SubscribeReturnCode::Refused(ReasonCode::MalformedPacket)]
        )))
        .is_err()
    );
    let mut alias = Properties::new();
    alias.topic_alias = NonZeroU16::new(1);
    assert_eq!(
        v5(&Packet::PubAck(PubAck::new(id(1)).with_properties(alias))),
        Err(EncodeError::PropertyNotAllowed {
            property: PropertyId::TopicAlias,
            context: PropertyContext::PubAck,
        })
    );
    assert_eq!(
        v5(&Packet::UnsubAck(UnsubAck::new(id(1)))),
        Err(EncodeError::NoReturnCodes {
            packet_type: PacketType::UnsubAck,
        })
    );
    let mut connack = ConnAck::from_reason_code(ReasonCode::Banned);
    connack.session_present = true;
    assert!(matches!(
        v5(&Packet::ConnAck(connack)),
        Err(EncodeError::SessionPresentWithRefusal { .. })
    ));

    // A decoded PUBLISH whose empty topic loses its alias cannot be sent, in either protocol.
    let wire = [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, b'x'];
    let Some(Packet::Publish(mut publish)) = decode_v5(&wire).unwrap() else {
        panic!("expected a PUBLISH");
    };
    publish.set_properties(Properties::new());
    let publish = Packet::Publish(publish);
    assert_eq!(v5(&publish), Err(EncodeError::EmptyTopicWithoutAlias));
    assert!(publish.encode(&mut BytesMut::new()).is_err());
}

#[test]
fn v5_only_fields_do_not_encode_as_311() {
    let mut no_local = SubscribeFilter::new(filter("t"), QoS::AtLeastOnce);
    no_local.no_local = true;
    let mut handling = SubscribeFilter::new(filter("t"), QoS::AtLeastOnce);
    handling.retain_handling = RetainHandling::DoNotSend;
    for packet in [
        Packet::UnsubAck(UnsubAck::with_reason_codes(
            id(1),
            vec![ReasonCode::Success],
        )),
        Packet::Subscribe(Subscribe::with_filters(id(1), vec![no_local])),
        Packet::Subscribe(Subscribe::with_filters(id(1), vec![handling])),
    ] {
        let mut buf = BytesMut::new();
        let error = packet.encode(&mut buf).unwrap_err();
        assert!(
            matches!(error, EncodeError::NotInProtocol { .. }),
            "{packet:?}: {error:?}"
        );
        assert!(buf.is_empty());
        encode_v5(&packet);
    }
}

#[test]
fn property_lengths_of_two_bytes() {
    // A Property Length of 130 is the Variable Byte Integer 0x82 0x01 (1.5.5), and the remaining
    // length 135 is 0x87 0x01.
    let value = "v".repeat(124);
    let mut wire = vec![
        0x30, 0x87, 0x01, // PUBLISH; remaining length 135 = 3 + 2 + 130
        0x00, 0x01, b't', // topic
        0x82, 0x01, // property length 130 = 1 + (2 + 1) + (2 + 124)
        0x26, 0x00, 0x01, b'k', 0x00, 0x7C, // User Property k=, value of 124 bytes
    ];
    wire.extend_from_slice(value.as_bytes());
    assert_eq!(wire.len(), 3 + 135);
    let mut properties = Properties::new();
    user(&mut properties, "k", &value);
    check(
        &wire,
        Packet::Publish(Publish::new(name("t"), Bytes::new()).with_properties(properties)),
    );

    // A PUBACK whose Reason String of 200 bytes makes the Property Length 203 (0xCB 0x01) and the
    // remaining length 208 (0xD0 0x01).
    let reason = "r".repeat(200);
    let mut wire = vec![
        0x40, 0xD0, 0x01, // PUBACK; remaining length 208 = 2 + 1 + 2 + 203
        0x00, 0x05, // packet id 5
        0x97, // Quota exceeded
        0xCB, 0x01, // property length 203 = 1 + 2 + 200
        0x1F, 0x00, 0xC8, // Reason String of 200 bytes
    ];
    wire.extend_from_slice(reason.as_bytes());
    assert_eq!(wire.len(), 3 + 208);
    let mut properties = Properties::new();
    properties.set_reason_string(Some(s(&reason)));
    let mut puback = PubAck::new(id(5)).with_properties(properties);
    puback.reason_code = ReasonCode::QuotaExceeded;
    check(&wire, Packet::PubAck(puback));
}

#[test]
fn properties_in_any_order_decode_and_encode_in_identifier_order() {
    // 2.2.2.2 fixes no order; our encoder writes ascending identifiers.
    #[rustfmt::skip]
    let shuffled = [
        0xE0, 0x0B,                               // DISCONNECT; remaining length 11
        0x8B,                                     // Server shutting down
        0x09,                                     // property length 9
        0x1F, 0x00, 0x01, b'x',                   // Reason String
        0x11, 0x00, 0x00, 0x00, 0x0A,             // Session Expiry Interval 10
    ];
    #[rustfmt::skip]
    let sorted = [
        0xE0, 0x0B, 0x8B, 0x09,
        0x11, 0x00, 0x00, 0x00, 0x0A,
        0x1F, 0x00, 0x01, b'x',
    ];
    let mut properties = Properties::new();
    properties.session_expiry_interval = Some(10);
    properties.set_reason_string(Some(s("x")));
    let mut disconnect = Disconnect::new().with_properties(properties);
    disconnect.reason_code = ReasonCode::ServerShuttingDown;
    check_long_form(&shuffled, &sorted, Packet::Disconnect(disconnect));
}

#[test]
fn auth_with_a_reason_code_and_no_property_length_is_malformed() {
    // MQTT 5.0 section 3.15.2.1: only remaining length 0 leaves both out.
    refused(
        &[0xF0, 0x01, 0x18],
        DecodeError::Property(PropertyError::LengthTruncated),
        ReasonCode::MalformedPacket,
    );
}
