//! Property tests of the codec, for each of the 14 packet types: encode→decode gives the same
//! packet, the decoder consumes exactly the frame, every strict prefix of a frame is "need more",
//! a stream cut anywhere decodes like the whole; and arbitrary bytes never panic the decoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, LastWill, Packet, PacketDecoder, PacketId,
    Password, Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck, Subscribe,
    SubscribeFilter, SubscribeReturnCode, UnsubAck, Unsubscribe,
};
use sansmq::{MqttString, TopicFilter, TopicName};

const MAX: usize = 1 << 20;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| PacketId::new(v).unwrap())
}

fn mqtt_string() -> impl Strategy<Value = MqttString> {
    "[^\\x00]{0,24}".prop_map(|s| MqttString::try_from(s).unwrap())
}

fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _$é€-]{0,6}"
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(level(), 1..5)
        .prop_filter("non-empty", |levels| levels.iter().any(|l| !l.is_empty()))
        .prop_map(|levels| TopicName::try_from(levels.join("/")).unwrap())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![3 => level(), 1 => Just("+".to_string())];
    (prop::collection::vec(level, 1..5), any::<bool>())
        .prop_filter("non-empty", |(levels, hash)| {
            *hash || levels.iter().any(|l| !l.is_empty())
        })
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            TopicFilter::try_from(levels.join("/")).unwrap()
        })
}

/// Mostly small payloads, sometimes across the 1- and 2-byte remaining length boundaries.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(any::<u8>(), 16_370..16_400),
    ]
    .prop_map(Bytes::from)
}

fn binary() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn connect() -> impl Strategy<Value = Packet> {
    let will =
        (topic_name(), binary(), qos(), any::<bool>()).prop_map(|(topic, payload, qos, retain)| {
            LastWill {
                topic,
                payload,
                qos,
                retain,
                properties: Default::default(),
            }
        });
    let credentials = prop_oneof![
        Just((None, None)),
        mqtt_string().prop_map(|u| (Some(u), None)),
        (mqtt_string(), binary()).prop_map(|(u, p)| (Some(u), Some(Password(p)))),
    ];
    (
        prop_oneof![Just(Protocol::Mqtt311), Just(Protocol::Mqtt31)],
        any::<u16>(),
        any::<bool>(),
        mqtt_string(),
        prop::option::of(will),
        credentials,
    )
        .prop_map(
            |(protocol, keep_alive, clean_session, client_id, will, (username, password))| {
                Packet::Connect(Box::new(Connect {
                    protocol,
                    keep_alive,
                    clean_session,
                    client_id,
                    will,
                    username,
                    password,
                    properties: Default::default(),
                }))
            },
        )
}

fn connack() -> impl Strategy<Value = Packet> {
    prop_oneof![
        any::<bool>().prop_map(|session_present| ConnAck::new(ConnectReturnCode::Accepted)
            .with_session_present(session_present)),
        (1u8..=5).prop_map(|c| ConnAck::new(ConnectReturnCode::from_u8(c).unwrap())),
    ]
    .prop_map(Packet::ConnAck)
}

fn publish() -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        payload(),
    )
        .prop_map(|(qos, dup, retain, topic, id, payload)| {
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish({
                let mut publish = Publish::new(topic, payload);
                publish.qos = qos;
                publish.packet_id = (!qos0).then_some(id);
                publish.dup = dup && !qos0;
                publish.retain = retain;
                publish
            })
        })
}

fn subscribe() -> impl Strategy<Value = Packet> {
    let filter =
        (topic_filter(), qos()).prop_map(|(filter, qos)| SubscribeFilter::new(filter, qos));
    (packet_id(), prop::collection::vec(filter, 1..8)).prop_map(|(packet_id, filters)| {
        Packet::Subscribe(Subscribe::with_filters(packet_id, filters))
    })
}

fn suback() -> impl Strategy<Value = Packet> {
    let code = prop_oneof![
        qos().prop_map(SubscribeReturnCode::Success),
        Just(SubscribeReturnCode::Failure)
    ];
    (packet_id(), prop::collection::vec(code, 1..8))
        .prop_map(|(packet_id, return_codes)| Packet::SubAck(SubAck::new(packet_id, return_codes)))
}

fn unsubscribe() -> impl Strategy<Value = Packet> {
    (packet_id(), prop::collection::vec(topic_filter(), 1..8))
        .prop_map(|(packet_id, filters)| Packet::Unsubscribe(Unsubscribe::new(packet_id, filters)))
}

fn any_packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        connect(),
        connack(),
        publish(),
        packet_id().prop_map(|id| Packet::PubAck(PubAck::new(id))),
        packet_id().prop_map(|id| Packet::PubRec(PubRec::new(id))),
        packet_id().prop_map(|id| Packet::PubRel(PubRel::new(id))),
        packet_id().prop_map(|id| Packet::PubComp(PubComp::new(id))),
        subscribe(),
        suback(),
        unsubscribe(),
        packet_id().prop_map(|id| Packet::UnsubAck(UnsubAck::new(id))),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect(Disconnect::new())),
    ]
}

/// Everything a single packet must satisfy.
fn check_packet(packet: &Packet) -> Result<(), TestCaseError> {
    let mut wire = BytesMut::new();
    packet.encode(&mut wire).unwrap();
    prop_assert_eq!(wire.len(), packet.encoded_len());

    // encode → decode gives the same packet, consuming exactly the frame.
    let mut buf = wire.clone();
    buf.extend_from_slice(b"\xC0\x00next");
    let decoded = Packet::read(&mut buf, MAX).unwrap();
    prop_assert_eq!(decoded.as_ref(), Some(packet));
    prop_assert_eq!(&buf[..], &b"\xC0\x00next"[..]);

    // Every strict prefix is "need more", and leaves the buffer alone.
    for len in 0..wire.len() {
        let mut prefix = BytesMut::from(&wire[..len]);
        prop_assert_eq!(
            Packet::read(&mut prefix, MAX),
            Ok(None),
            "prefix of {} bytes",
            len
        );
        prop_assert_eq!(prefix.len(), len);
    }
    Ok(())
}

macro_rules! per_type {
    ($($name:ident => $strategy:expr),* $(,)?) => {
        proptest! {
            $(
                #[test]
                fn $name(packet in $strategy) {
                    check_packet(&packet)?;
                }
            )*
        }
    };
}

per_type! {
    connect_round_trips => connect(),
    connack_round_trips => connack(),
    publish_round_trips => publish(),
    puback_round_trips => packet_id().prop_map(|id| Packet::PubAck(PubAck::new(id))),
    pubrec_round_trips => packet_id().prop_map(|id| Packet::PubRec(PubRec::new(id))),
    pubrel_round_trips => packet_id().prop_map(|id| Packet::PubRel(PubRel::new(id))),
    pubcomp_round_trips => packet_id().prop_map(|id| Packet::PubComp(PubComp::new(id))),
    subscribe_round_trips => subscribe(),
    suback_round_trips => suback(),
    unsubscribe_round_trips => unsubscribe(),
    unsuback_round_trips => packet_id().prop_map(|id| Packet::UnsubAck(UnsubAck::new(id))),
    pingreq_round_trips => Just(Packet::PingReq),
    pingresp_round_trips => Just(Packet::PingResp),
    disconnect_round_trips => Just(Packet::Disconnect(Disconnect::new())),
}

proptest! {
    /// A stream of packets cut at arbitrary points gives the same packets as the whole stream.
    #[test]
    fn a_stream_cut_anywhere_decodes_like_the_whole(
        packets in prop::collection::vec(any_packet(), 1..12),
        cuts in prop::collection::vec(1usize..64, 0..64),
    ) {
        let mut wire = BytesMut::new();
        for p in &packets {
            p.encode(&mut wire).unwrap();
        }
        let mut decoder = PacketDecoder::new(MAX);
        let mut decoded = Vec::new();
        let mut rest = &wire[..];
        let mut cuts = cuts.into_iter().chain(std::iter::repeat(1));
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(cuts.next().unwrap().min(rest.len()));
            rest = tail;
            decoder.extend_from_slice(chunk);
            while let Some(p) = decoder.next_packet().unwrap() {
                decoded.push(p);
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert_eq!(decoder.buffered_len(), 0);
    }

    /// Arbitrary bytes never panic the decoder; they decode, need more, or fail with an error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = Packet::read(&mut buf, 4096) {}
        let mut decoder = PacketDecoder::new(4096);
        for chunk in bytes.chunks(7) {
            decoder.extend_from_slice(chunk);
            while let Ok(Some(_)) = decoder.next_packet() {}
        }
    }

    /// Arbitrary bytes after a valid fixed header (the decoder's most exposed path) never panic.
    #[test]
    fn arbitrary_bodies_never_panic(first in 0x10u8..0xF0, body in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut wire = vec![first, body.len() as u8];
        wire.extend_from_slice(&body);
        let _ = Packet::read(&mut BytesMut::from(&wire[..]), MAX);
    }
}
