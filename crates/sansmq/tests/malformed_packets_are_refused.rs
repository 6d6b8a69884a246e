//! Every rule the decoder enforces, each with the bytes that break it and the typed error it gives;
//! and the encoder refusing to produce what the decoder would refuse.

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, EncodeError, LastWill, Packet, PacketId,
    PacketType, Password, Publish, QoS, SubAck, Subscribe, Unsubscribe,
};
use sansmq::{MqttString, StringError, TopicError, TopicFilter, TopicName};

fn decode(wire: &[u8]) -> Result<Option<Packet>, DecodeError> {
    Packet::read(&mut BytesMut::from(wire), 1 << 20)
}

fn refused(wire: &[u8]) -> DecodeError {
    match decode(wire) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
        other => panic!("{wire:02x?} was accepted: {other:?}"),
    }
}

#[test]
fn reserved_packet_types() {
    assert_eq!(refused(&[0x00, 0x00]), DecodeError::ReservedPacketType(0));
    assert_eq!(refused(&[0xF0, 0x00]), DecodeError::ReservedPacketType(15));
}

#[test]
fn fixed_header_flags() {
    for (byte, packet_type) in [
        (0x11, PacketType::Connect),
        (0x28, PacketType::ConnAck),
        (0x42, PacketType::PubAck),
        (0x52, PacketType::PubRec),
        (0x60, PacketType::PubRel), // must be 0b0010 (MQTT-3.6.1-1)
        (0x72, PacketType::PubComp),
        (0x80, PacketType::Subscribe), // must be 0b0010 (MQTT-3.8.1-1)
        (0x92, PacketType::SubAck),
        (0xA0, PacketType::Unsubscribe), // must be 0b0010 (MQTT-3.10.1-1)
        (0xB1, PacketType::UnsubAck),
        (0xC4, PacketType::PingReq),
        (0xD8, PacketType::PingResp),
        (0xE2, PacketType::Disconnect),
    ] {
        assert_eq!(
            refused(&[byte, 0x00]),
            DecodeError::InvalidFlags {
                packet_type,
                flags: byte & 0x0F
            }
        );
    }
}

#[test]
fn publish_qos3_and_dup_at_qos0() {
    assert_eq!(
        refused(&[0x36, 0x03, 0x00, 0x01, b'a']),
        DecodeError::PublishQos3
    );
    assert_eq!(
        refused(&[0x38, 0x03, 0x00, 0x01, b'a']),
        DecodeError::DupAtQos0
    );
}

#[test]
fn zero_packet_ids() {
    for (wire, packet_type) in [
        (
            &[0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00][..],
            PacketType::Publish,
        ),
        (&[0x40, 0x02, 0x00, 0x00], PacketType::PubAck),
        (&[0x50, 0x02, 0x00, 0x00], PacketType::PubRec),
        (&[0x62, 0x02, 0x00, 0x00], PacketType::PubRel),
        (&[0x70, 0x02, 0x00, 0x00], PacketType::PubComp),
        (
            &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00],
            PacketType::Subscribe,
        ),
        (&[0x90, 0x03, 0x00, 0x00, 0x00], PacketType::SubAck),
        (
            &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'],
            PacketType::Unsubscribe,
        ),
        (&[0xB0, 0x02, 0x00, 0x00], PacketType::UnsubAck),
    ] {
        assert_eq!(refused(wire), DecodeError::ZeroPacketId { packet_type });
    }
}

#[test]
fn remaining_length_over_four_bytes() {
    assert_eq!(
        refused(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01]),
        DecodeError::MalformedRemainingLength
    );
}

#[test]
fn body_shorter_than_its_fields() {
    assert_eq!(
        refused(&[0x40, 0x01, 0x00]),
        DecodeError::BodyTooShort {
            packet_type: PacketType::PubAck,
            remaining_length: 1
        }
    );
    // Topic length says 5, the body has 2.
    assert_eq!(
        refused(&[0x30, 0x04, 0x00, 0x05, b'a', b'b']),
        DecodeError::BodyTooShort {
            packet_type: PacketType::Publish,
            remaining_length: 4
        }
    );
    assert_eq!(
        refused(&[0x20, 0x01, 0x00]),
        DecodeError::BodyTooShort {
            packet_type: PacketType::ConnAck,
            remaining_length: 1
        }
    );
}

#[test]
fn body_longer_than_its_fields() {
    assert_eq!(
        refused(&[0x40, 0x03, 0x00, 0x01, 0x00]),
        DecodeError::TrailingBytes {
            packet_type: PacketType::PubAck,
            extra: 1
        }
    );
    assert_eq!(
        refused(&[0xC0, 0x01, 0x00]),
        DecodeError::TrailingBytes {
            packet_type: PacketType::PingReq,
            extra: 1
        }
    );
    assert_eq!(
        refused(&[0x20, 0x03, 0x00, 0x00, 0x00]),
        DecodeError::TrailingBytes {
            packet_type: PacketType::ConnAck,
            extra: 1
        }
    );
}

#[test]
fn strings_must_be_utf8_without_nul() {
    // MQTT-1.5.3-1: ill-formed UTF-8 in a topic name.
    assert_eq!(
        refused(&[0x30, 0x04, 0x00, 0x02, b'a', 0xC0]),
        DecodeError::InvalidTopicName(TopicError::String {
            topic: "a\u{FFFD}".into(),
            error: StringError::InvalidUtf8 { valid_up_to: 1 }
        })
    );
    // MQTT-1.5.3-2: U+0000 in a client id.
    #[rustfmt::skip]
    let connect = [
        0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00,
        0x00, 0x02, b'a', 0x00,
    ];
    assert_eq!(
        refused(&connect),
        DecodeError::InvalidString {
            field: "client identifier",
            error: StringError::NullCharacter { position: 1 }
        }
    );
}

#[test]
fn wildcards_in_topic_names() {
    let error = refused(&[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+']);
    assert_eq!(
        error,
        DecodeError::InvalidTopicName(TopicError::WildcardInName {
            topic: "a/+".into(),
            position: 2
        })
    );
    assert!(error.to_string().contains("\"a/+\""), "{error}");
    assert_eq!(
        refused(&[0x30, 0x02, 0x00, 0x00]),
        DecodeError::InvalidTopicName(TopicError::Empty)
    );
}

#[test]
fn malformed_topic_filters() {
    let error = refused(&[
        0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
    ]);
    assert_eq!(
        error,
        DecodeError::InvalidTopicFilter(TopicError::MisplacedMultiLevelWildcard {
            filter: "a/#/b".into()
        })
    );
    assert!(
        error
            .to_string()
            .contains("topic filter \"a/#/b\": '#' must be the last level")
    );
    assert_eq!(
        refused(&[0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'a', b'+']),
        DecodeError::InvalidTopicFilter(TopicError::MisplacedSingleLevelWildcard {
            filter: "a+".into()
        })
    );
}

#[test]
fn subscribe_and_unsubscribe_need_a_filter() {
    assert_eq!(
        refused(&[0x82, 0x02, 0x00, 0x01]),
        DecodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe
        }
    );
    assert_eq!(
        refused(&[0xA2, 0x02, 0x00, 0x01]),
        DecodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe
        }
    );
}

#[test]
fn subscribe_requested_qos() {
    for byte in [0x03, 0x04, 0x81] {
        assert_eq!(
            refused(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', byte]),
            DecodeError::InvalidRequestedQos {
                filter: TopicFilter::try_from("a").unwrap(),
                byte
            }
        );
    }
    // The QoS byte itself missing.
    assert_eq!(
        refused(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a']),
        DecodeError::BodyTooShort {
            packet_type: PacketType::Subscribe,
            remaining_length: 5
        }
    );
    // A filter longer than what is left, and a second length prefix cut to one byte.
    for wire in [
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x03, b'a', 0x00][..],
        &[0x82, 0x07, 0x00, 0x01, 0x00, 0x01, b'a', 0x00, 0x00],
    ] {
        assert_eq!(
            refused(wire),
            DecodeError::BodyTooShort {
                packet_type: PacketType::Subscribe,
                remaining_length: wire.len() - 2
            }
        );
    }
}

fn connect_with(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0x00, 0x00, 0x00, 0x01, b'c']);
    body.extend_from_slice(rest);
    let mut wire = vec![0x10, body.len() as u8];
    wire.extend_from_slice(&body);
    wire
}

#[test]
fn connect_flags() {
    assert_eq!(
        refused(&connect_with(b"MQTT", 4, 0x03, &[])),
        DecodeError::ConnectReservedFlag
    );
    for flags in [0x08, 0x10, 0x20, 0x1C] {
        // will QoS 1, 2 or retain without the will flag; will QoS 3 with it
        assert_eq!(
            refused(&connect_with(b"MQTT", 4, flags, &[])),
            DecodeError::InvalidWillFlags { flags }
        );
    }
    assert_eq!(
        refused(&connect_with(b"MQTT", 4, 0x40, &[0x00, 0x01, b'p'])),
        DecodeError::PasswordWithoutUsername
    );
}

#[test]
fn connect_protocol() {
    assert_eq!(
        refused(&connect_with(b"MQTX", 4, 0x02, &[])),
        DecodeError::UnknownProtocolName(Bytes::from_static(b"MQTX"))
    );
    assert_eq!(
        refused(&connect_with(b"MQTT", 6, 0x02, &[])),
        DecodeError::UnsupportedProtocolLevel {
            name: Bytes::from_static(b"MQTT"),
            level: 6
        }
    );
    assert_eq!(
        refused(&connect_with(b"MQIsdp", 4, 0x02, &[])),
        DecodeError::UnsupportedProtocolLevel {
            name: Bytes::from_static(b"MQIsdp"),
            level: 4
        }
    );
}

#[test]
fn connack_codes_and_flags() {
    assert_eq!(
        refused(&[0x20, 0x02, 0x00, 0x06]),
        DecodeError::UnknownConnectReturnCode(6)
    );
    assert_eq!(
        refused(&[0x20, 0x02, 0x01, 0x04]),
        DecodeError::SessionPresentWithRefusal {
            code: ConnectReturnCode::BadUserNameOrPassword
        }
    );
    assert_eq!(
        refused(&[0x20, 0x02, 0x02, 0x00]),
        DecodeError::ConnackReservedFlags { flags: 0x02 }
    );
}

#[test]
fn suback_return_codes() {
    assert_eq!(
        refused(&[0x90, 0x03, 0x00, 0x01, 0x03]),
        DecodeError::InvalidSubackReturnCode(3)
    );
    assert_eq!(
        refused(&[0x90, 0x02, 0x00, 0x01]),
        DecodeError::NoReturnCodes {
            packet_type: PacketType::SubAck
        }
    );
}

#[test]
fn oversized_packets() {
    let wire = [0x30, 0xFF, 0x7F]; // announces 16,383 bytes
    assert_eq!(
        Packet::read(&mut BytesMut::from(&wire[..]), 1000),
        Err(DecodeError::PacketTooLarge {
            size: 16_386,
            max: 1000
        })
    );
}

fn encode_error(packet: impl Into<Packet>) -> EncodeError {
    let packet = packet.into();
    let mut buf = BytesMut::from(&b"kept"[..]);
    let error = packet.encode(&mut buf).expect_err("must be refused");
    assert_eq!(&buf[..], b"kept", "nothing is written on error");
    error
}

fn topic(v: &str) -> TopicName {
    TopicName::try_from(v).unwrap()
}

#[test]
fn encoder_refuses_invalid_packets() {
    let mut publish = Publish::new(topic("t"), Bytes::new());
    publish.qos = QoS::AtLeastOnce;
    assert_eq!(
        encode_error(publish.clone()),
        EncodeError::PacketIdMismatch {
            qos: QoS::AtLeastOnce
        }
    );
    publish.qos = QoS::AtMostOnce;
    publish.dup = true;
    assert_eq!(encode_error(publish.clone()), EncodeError::DupAtQos0);
    publish.dup = false;
    publish.packet_id = PacketId::new(1);
    assert_eq!(
        encode_error(publish),
        EncodeError::PacketIdMismatch {
            qos: QoS::AtMostOnce
        }
    );

    let mut connect = Connect::new(MqttString::try_from("c").unwrap());
    connect.password = Some(Password::from("secret"));
    assert_eq!(
        encode_error(connect.clone()),
        EncodeError::PasswordWithoutUsername
    );
    connect.username = Some(MqttString::try_from("u").unwrap());
    connect.password = Some(Password(Bytes::from(vec![0; 65_536])));
    assert_eq!(
        encode_error(connect.clone()),
        EncodeError::FieldTooLong {
            field: "password",
            len: 65_536
        }
    );
    connect.password = None;
    connect.will = Some(LastWill {
        topic: topic("w"),
        payload: Bytes::from(vec![0; 70_000]),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    assert_eq!(
        encode_error(connect),
        EncodeError::FieldTooLong {
            field: "will payload",
            len: 70_000
        }
    );

    let id = PacketId::new(1).unwrap();
    assert_eq!(
        encode_error(Subscribe::with_filters(id, vec![])),
        EncodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe
        }
    );
    assert_eq!(
        encode_error(Unsubscribe::new(id, vec![])),
        EncodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe
        }
    );
    assert_eq!(
        encode_error(SubAck::new(id, vec![])),
        EncodeError::NoReturnCodes {
            packet_type: PacketType::SubAck
        }
    );
    assert_eq!(
        encode_error(ConnAck::new(ConnectReturnCode::ServerUnavailable).with_session_present(true)),
        EncodeError::SessionPresentWithRefusal {
            code: ConnectReturnCode::ServerUnavailable
        }
    );
}

#[test]
fn encoder_refuses_packets_over_the_protocol_limit() {
    // 268,435,455 is the largest remaining length; vec! of zeros is lazily mapped, so this is cheap.
    let payload = Bytes::from(vec![0u8; 268_435_455 - 2]); // one byte too many with the 3-byte topic
    let publish = Publish::new(topic("t"), payload);
    assert_eq!(
        encode_error(publish),
        EncodeError::PacketTooLarge {
            size: 268_435_461,
            max: 268_435_460
        }
    );
}

#[test]
fn strings_over_65535_bytes_cannot_be_made() {
    assert_eq!(
        MqttString::try_from("x".repeat(65_536)),
        Err(StringError::TooLong { len: 65_536 })
    );
    assert!(matches!(
        TopicName::try_from("x".repeat(65_536)),
        Err(TopicError::String {
            error: StringError::TooLong { len: 65_536 },
            ..
        })
    ));
}
