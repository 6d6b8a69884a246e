//! Property tests of the MQTT 5 codec, for each of the 15 packet types with arbitrary properties
//! (any set table 2-4 allows in the packet) and arbitrary reason codes (any table 2-6 allows):
//! encode→decode gives the same packet, the decoder consumes exactly the frame, every strict
//! prefix is "need more", a stream cut anywhere decodes like the whole; arbitrary bytes never
//! panic the MQTT 5 decoder; and properties never encode as MQTT 3.1.1.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sansmq::packet::{
    Auth, ConnAck, Connect, Disconnect, EncodeError, LastWill, Packet, PacketDecoder, PacketId,
    Password, PayloadFormat, Properties, PropertyContext, PropertyId, Protocol, PubAck, PubComp,
    PubRec, PubRel, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscribeReturnCode, SubscriptionId, UnsubAck, Unsubscribe,
};
use sansmq::{MqttString, TopicFilter, TopicName};

const MAX: usize = 1 << 20;
const V5: Protocol = Protocol::Mqtt5;

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
    "[^\\x00]{0,16}".prop_map(|s| MqttString::try_from(s).unwrap())
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

fn binary() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Mostly small payloads, sometimes across the 1- and 2-byte remaining length boundaries.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(any::<u8>(), 16_330..16_400),
    ]
    .prop_map(Bytes::from)
}

/// Subscription Identifiers across the 1- to 4-byte Variable Byte Integer boundaries.
fn subscription_id() -> impl Strategy<Value = SubscriptionId> {
    prop_oneof![
        1u32..=127,
        128u32..=16_383,
        16_384u32..=2_097_151,
        2_097_152u32..=268_435_455,
    ]
    .prop_map(|v| SubscriptionId::new(v).unwrap())
}

/// The fixed-size properties (a candidate value for each; the context decides which stay).
#[derive(Debug, Clone)]
struct Scalars {
    payload_format_indicator: Option<PayloadFormat>,
    message_expiry_interval: Option<u32>,
    session_expiry_interval: Option<u32>,
    server_keep_alive: Option<u16>,
    request_problem_information: Option<bool>,
    will_delay_interval: Option<u32>,
    request_response_information: Option<bool>,
    receive_maximum: Option<NonZeroU16>,
    topic_alias_maximum: Option<u16>,
    topic_alias: Option<NonZeroU16>,
    maximum_qos: Option<QoS>,
    retain_available: Option<bool>,
    maximum_packet_size: Option<NonZeroU32>,
    wildcard_subscription_available: Option<bool>,
    subscription_identifier_available: Option<bool>,
    shared_subscription_available: Option<bool>,
}

fn scalars() -> impl Strategy<Value = Scalars> {
    use prop::option::of;
    let format = prop_oneof![Just(PayloadFormat::Unspecified), Just(PayloadFormat::Utf8)];
    let non_zero_u16 = || (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).unwrap());
    (
        (
            of(format),
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u16>()),
            of(any::<bool>()),
            of(any::<u32>()),
            of(any::<bool>()),
            of(non_zero_u16()),
        ),
        (
            of(any::<u16>()),
            of(non_zero_u16()),
            // Maximum QoS is 0 or 1 (3.2.2.3.4).
            of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
            of(any::<bool>()),
            of((1..=u32::MAX).prop_map(|v| NonZeroU32::new(v).unwrap())),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
        ),
    )
        .prop_map(|(a, b)| Scalars {
            payload_format_indicator: a.0,
            message_expiry_interval: a.1,
            session_expiry_interval: a.2,
            server_keep_alive: a.3,
            request_problem_information: a.4,
            will_delay_interval: a.5,
            request_response_information: a.6,
            receive_maximum: a.7,
            topic_alias_maximum: b.0,
            topic_alias: b.1,
            maximum_qos: b.2,
            retain_available: b.3,
            maximum_packet_size: b.4,
            wildcard_subscription_available: b.5,
            subscription_identifier_available: b.6,
            shared_subscription_available: b.7,
        })
}

/// The variable-length properties, and the repeatable ones.
#[derive(Debug, Clone)]
struct Variable {
    content_type: Option<MqttString>,
    response_topic: Option<TopicName>,
    correlation_data: Option<Bytes>,
    subscription_ids: Vec<SubscriptionId>,
    assigned_client_identifier: Option<MqttString>,
    authentication_method: Option<MqttString>,
    authentication_data: Option<Bytes>,
    response_information: Option<MqttString>,
    server_reference: Option<MqttString>,
    reason_string: Option<MqttString>,
    user_properties: Vec<(MqttString, MqttString)>,
}

fn variable() -> impl Strategy<Value = Variable> {
    use prop::option::of;
    (
        (
            of(mqtt_string()),
            of(topic_name()),
            of(binary()),
            prop::collection::vec(subscription_id(), 0..4),
            of(mqtt_string()),
            of(mqtt_string()),
        ),
        (
            of(binary()),
            of(mqtt_string()),
            of(mqtt_string()),
            of(mqtt_string()),
            // Names may repeat: pick them from a small set.
            prop::collection::vec(
                (
                    prop_oneof![Just("k"), Just("n"), Just("")]
                        .prop_map(|n| MqttString::try_from(n).unwrap()),
                    mqtt_string(),
                ),
                0..4,
            ),
        ),
    )
        .prop_map(|(a, b)| Variable {
            content_type: a.0,
            response_topic: a.1,
            correlation_data: a.2,
            subscription_ids: a.3,
            assigned_client_identifier: a.4,
            authentication_method: a.5,
            authentication_data: b.0,
            response_information: b.1,
            server_reference: b.2,
            reason_string: b.3,
            user_properties: b.4,
        })
}

/// Arbitrary properties valid in `context`: of the candidates, those table 2-4 allows there
/// (asked of [`PropertyId::is_allowed_in`]), at most one Subscription Identifier outside
/// PUBLISH, and Authentication Data in CONNECT only with an Authentication Method
/// (3.1.2.11.10). Often empty, which is the common case and the short forms' trigger.
fn properties(context: PropertyContext) -> BoxedStrategy<Properties> {
    let some = (scalars(), variable()).prop_map(move |(sc, var)| {
        let allowed = |id: PropertyId| id.is_allowed_in(context);
        fn keep<T>(allowed: bool, value: Option<T>) -> Option<T> {
            value.filter(|_| allowed)
        }
        use PropertyId as P;
        let mut p = Properties::new();
        p.payload_format_indicator = keep(
            allowed(P::PayloadFormatIndicator),
            sc.payload_format_indicator,
        );
        p.message_expiry_interval = keep(
            allowed(P::MessageExpiryInterval),
            sc.message_expiry_interval,
        );
        p.session_expiry_interval = keep(
            allowed(P::SessionExpiryInterval),
            sc.session_expiry_interval,
        );
        p.server_keep_alive = keep(allowed(P::ServerKeepAlive), sc.server_keep_alive);
        p.request_problem_information = keep(
            allowed(P::RequestProblemInformation),
            sc.request_problem_information,
        );
        p.will_delay_interval = keep(allowed(P::WillDelayInterval), sc.will_delay_interval);
        p.request_response_information = keep(
            allowed(P::RequestResponseInformation),
            sc.request_response_information,
        );
        p.receive_maximum = keep(allowed(P::ReceiveMaximum), sc.receive_maximum);
        p.topic_alias_maximum = keep(allowed(P::TopicAliasMaximum), sc.topic_alias_maximum);
        p.topic_alias = keep(allowed(P::TopicAlias), sc.topic_alias);
        p.maximum_qos = keep(allowed(P::MaximumQos), sc.maximum_qos);
        p.retain_available = keep(allowed(P::RetainAvailable), sc.retain_available);
        p.maximum_packet_size = keep(allowed(P::MaximumPacketSize), sc.maximum_packet_size);
        p.wildcard_subscription_available = keep(
            allowed(P::WildcardSubscriptionAvailable),
            sc.wildcard_subscription_available,
        );
        p.subscription_identifier_available = keep(
            allowed(P::SubscriptionIdentifierAvailable),
            sc.subscription_identifier_available,
        );
        p.shared_subscription_available = keep(
            allowed(P::SharedSubscriptionAvailable),
            sc.shared_subscription_available,
        );

        p.set_content_type(keep(allowed(P::ContentType), var.content_type));
        p.set_response_topic(keep(allowed(P::ResponseTopic), var.response_topic));
        p.set_correlation_data(keep(allowed(P::CorrelationData), var.correlation_data));
        if allowed(P::SubscriptionIdentifier) {
            let many = P::SubscriptionIdentifier.is_repeatable_in(context);
            for id in var
                .subscription_ids
                .into_iter()
                .take(if many { 4 } else { 1 })
            {
                p.push_subscription_identifier(id);
            }
        }
        p.set_assigned_client_identifier(keep(
            allowed(P::AssignedClientIdentifier),
            var.assigned_client_identifier,
        ));
        let method = keep(allowed(P::AuthenticationMethod), var.authentication_method);
        let data = keep(allowed(P::AuthenticationData), var.authentication_data);
        // 3.1.2.11.10: no Authentication Data without an Authentication Method in CONNECT.
        let data = data.filter(|_| context != PropertyContext::Connect || method.is_some());
        p.set_authentication_method(method);
        p.set_authentication_data(data);
        p.set_response_information(keep(
            allowed(P::ResponseInformation),
            var.response_information,
        ));
        p.set_server_reference(keep(allowed(P::ServerReference), var.server_reference));
        p.set_reason_string(keep(allowed(P::ReasonString), var.reason_string));
        for (name, value) in var.user_properties {
            p.push_user_property(name, value);
        }
        p
    });
    prop_oneof![1 => Just(Properties::new()), 3 => some].boxed()
}

/// The Reason Codes table 2-6 allows in `context`.
fn reason_code(context: PropertyContext) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|code| code.is_valid_in(context))
        .collect();
    assert!(!codes.is_empty(), "{context}");
    // Success half the time: it is what the short forms hinge on.
    prop_oneof![1 => Just(ReasonCode::Success), 1 => prop::sample::select(codes)]
}

fn connect() -> impl Strategy<Value = Packet> {
    let will = (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        properties(PropertyContext::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    let credentials = prop_oneof![
        Just((None, None)),
        mqtt_string().prop_map(|u| (Some(u), None)),
        (mqtt_string(), binary()).prop_map(|(u, p)| (Some(u), Some(Password(p)))),
    ];
    (
        any::<u16>(),
        any::<bool>(),
        mqtt_string(),
        prop::option::of(will),
        credentials,
        properties(PropertyContext::Connect),
    )
        .prop_map(
            |(keep_alive, clean_session, client_id, will, (username, password), properties)| {
                let mut connect = Connect::new(client_id);
                connect.protocol = Protocol::Mqtt5;
                connect.keep_alive = keep_alive;
                connect.clean_session = clean_session;
                connect.will = will;
                connect.username = username;
                connect.password = password;
                connect.properties = properties;
                Packet::Connect(Box::new(connect))
            },
        )
}

fn connack() -> impl Strategy<Value = Packet> {
    (
        reason_code(PropertyContext::ConnAck),
        any::<bool>(),
        properties(PropertyContext::ConnAck),
    )
        .prop_map(|(code, session_present, properties)| {
            let mut connack = ConnAck::from_reason_code(code).with_properties(properties);
            // MQTT-3.2.2-6: no session with a failure.
            connack.session_present = session_present && !code.is_error();
            Packet::ConnAck(connack)
        })
}

fn publish() -> impl Strategy<Value = Packet> {
    (
        (qos(), any::<bool>(), any::<bool>()),
        topic_name(),
        packet_id(),
        payload(),
        properties(PropertyContext::Publish),
    )
        .prop_map(|((qos, dup, retain), topic, id, payload, properties)| {
            let qos0 = qos == QoS::AtMostOnce;
            let mut publish = Publish::new(topic, payload).with_properties(properties);
            publish.qos = qos;
            publish.packet_id = (!qos0).then_some(id);
            publish.dup = dup && !qos0;
            publish.retain = retain;
            Packet::Publish(publish)
        })
}

macro_rules! ack {
    ($name:ident, $type:ident, $context:expr) => {
        fn $name() -> impl Strategy<Value = Packet> {
            (packet_id(), reason_code($context), properties($context)).prop_map(
                |(id, reason_code, properties)| {
                    let mut ack = $type::new(id).with_properties(properties);
                    ack.reason_code = reason_code;
                    Packet::$type(ack)
                },
            )
        }
    };
}

ack!(puback, PubAck, PropertyContext::PubAck);
ack!(pubrec, PubRec, PropertyContext::PubRec);
ack!(pubrel, PubRel, PropertyContext::PubRel);
ack!(pubcomp, PubComp, PropertyContext::PubComp);

fn retain_handling() -> impl Strategy<Value = RetainHandling> {
    prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendAtNewSubscribe),
        Just(RetainHandling::DoNotSend),
    ]
}

fn subscribe() -> impl Strategy<Value = Packet> {
    let filter = (
        topic_filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling(),
    )
        .prop_map(
            |(filter, qos, no_local, retain_as_published, retain_handling)| {
                let mut filter = SubscribeFilter::new(filter, qos);
                filter.no_local = no_local;
                filter.retain_as_published = retain_as_published;
                filter.retain_handling = retain_handling;
                filter
            },
        );
    (
        packet_id(),
        prop::collection::vec(filter, 1..8),
        properties(PropertyContext::Subscribe),
    )
        .prop_map(|(id, filters, properties)| {
            Packet::Subscribe(Subscribe::with_filters(id, filters).with_properties(properties))
        })
}

fn suback() -> impl Strategy<Value = Packet> {
    // The failures other than 0x80, which decodes as `Failure`.
    let refusals: Vec<ReasonCode> = (0x81..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|code| code.is_valid_in(PropertyContext::SubAck))
        .collect();
    let code = prop_oneof![
        qos().prop_map(SubscribeReturnCode::Success),
        Just(SubscribeReturnCode::Failure),
        prop::sample::select(refusals).prop_map(SubscribeReturnCode::Refused),
    ];
    (
        packet_id(),
        prop::collection::vec(code, 1..8),
        properties(PropertyContext::SubAck),
    )
        .prop_map(|(id, codes, properties)| {
            Packet::SubAck(SubAck::new(id, codes).with_properties(properties))
        })
}

fn unsubscribe() -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        prop::collection::vec(topic_filter(), 1..8),
        properties(PropertyContext::Unsubscribe),
    )
        .prop_map(|(id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe::new(id, filters).with_properties(properties))
        })
}

fn unsuback() -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        prop::collection::vec(reason_code(PropertyContext::UnsubAck), 1..8),
        properties(PropertyContext::UnsubAck),
    )
        .prop_map(|(id, codes, properties)| {
            Packet::UnsubAck(UnsubAck::with_reason_codes(id, codes).with_properties(properties))
        })
}

fn disconnect() -> impl Strategy<Value = Packet> {
    (
        reason_code(PropertyContext::Disconnect),
        properties(PropertyContext::Disconnect),
    )
        .prop_map(|(reason_code, properties)| {
            let mut disconnect = Disconnect::new().with_properties(properties);
            disconnect.reason_code = reason_code;
            Packet::Disconnect(disconnect)
        })
}

fn auth() -> impl Strategy<Value = Packet> {
    (
        reason_code(PropertyContext::Auth),
        properties(PropertyContext::Auth),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Auth(Auth::new(reason_code).with_properties(properties))
        })
}

fn any_packet() -> impl Strategy<Value = Packet> {
    // Boxed: unboxed, the union of fifteen strategies overflows the test thread's stack.
    prop_oneof![
        connect().boxed(),
        connack().boxed(),
        publish().boxed(),
        puback().boxed(),
        pubrec().boxed(),
        pubrel().boxed(),
        pubcomp().boxed(),
        subscribe().boxed(),
        suback().boxed(),
        unsubscribe().boxed(),
        unsuback().boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect().boxed(),
        auth().boxed(),
    ]
}

/// Everything a single MQTT 5 packet must satisfy.
fn check_packet(packet: &Packet) -> Result<(), TestCaseError> {
    let mut wire = BytesMut::new();
    packet.encode_in(V5, &mut wire).unwrap();
    prop_assert_eq!(wire.len(), packet.encoded_len_in(V5));

    // encode → decode gives the same packet, consuming exactly the frame.
    let mut buf = wire.clone();
    buf.extend_from_slice(b"\xC0\x00next");
    let decoded = Packet::read_in(V5, &mut buf, MAX).unwrap();
    prop_assert_eq!(decoded.as_ref(), Some(packet));
    prop_assert_eq!(&buf[..], &b"\xC0\x00next"[..]);

    // Every strict prefix is "need more", and leaves the buffer alone.
    for len in 0..wire.len() {
        let mut prefix = BytesMut::from(&wire[..len]);
        prop_assert_eq!(
            Packet::read_in(V5, &mut prefix, MAX),
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
    puback_round_trips => puback(),
    pubrec_round_trips => pubrec(),
    pubrel_round_trips => pubrel(),
    pubcomp_round_trips => pubcomp(),
    subscribe_round_trips => subscribe(),
    suback_round_trips => suback(),
    unsubscribe_round_trips => unsubscribe(),
    unsuback_round_trips => unsuback(),
    pingreq_round_trips => Just(Packet::PingReq),
    pingresp_round_trips => Just(Packet::PingResp),
    disconnect_round_trips => disconnect(),
    auth_round_trips => auth(),
}

/// The properties a packet carries, for the packets that carry a set.
fn properties_of(packet: &Packet) -> Option<&Properties> {
    Some(match packet {
        Packet::Connect(connect) => &connect.properties,
        Packet::ConnAck(p) => p.properties(),
        Packet::Publish(p) => p.properties(),
        Packet::PubAck(p) => p.properties(),
        Packet::PubRec(p) => p.properties(),
        Packet::PubRel(p) => p.properties(),
        Packet::PubComp(p) => p.properties(),
        Packet::Subscribe(p) => p.properties(),
        Packet::SubAck(p) => p.properties(),
        Packet::Unsubscribe(p) => p.properties(),
        Packet::UnsubAck(p) => p.properties(),
        Packet::Disconnect(p) => p.properties(),
        Packet::Auth(p) => p.properties(),
        _ => return None,
    })
}

proptest! {
    /// A stream of MQTT 5 packets cut at arbitrary points gives the same packets as the whole
    /// stream.
    #[test]
    fn a_stream_cut_anywhere_decodes_like_the_whole(
        packets in prop::collection::vec(any_packet(), 1..12),
        cuts in prop::collection::vec(1usize..64, 0..64),
    ) {
        let mut wire = BytesMut::new();
        for p in &packets {
            p.encode_in(V5, &mut wire).unwrap();
        }
        let mut decoder = PacketDecoder::with_protocol(MAX, V5);
        prop_assert_eq!(decoder.protocol(), V5);
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

    /// A decoder switched to MQTT 5 after its first packet (a client learns the version from
    /// its CONNECT) decodes the rest as MQTT 5.
    #[test]
    fn set_protocol_switches_the_decoder(packets in prop::collection::vec(any_packet(), 1..6)) {
        let mut wire = BytesMut::new();
        Packet::PingResp.encode(&mut wire).unwrap();
        for p in &packets {
            p.encode_in(V5, &mut wire).unwrap();
        }
        let mut decoder = PacketDecoder::new(MAX);
        prop_assert_eq!(decoder.protocol(), Protocol::Mqtt311);
        decoder.extend_from_slice(&wire);
        prop_assert_eq!(decoder.next_packet(), Ok(Some(Packet::PingResp)));
        decoder.set_protocol(V5);
        let mut decoded = Vec::new();
        while let Some(p) = decoder.next_packet().unwrap() {
            decoded.push(p);
        }
        prop_assert_eq!(decoded, packets);
    }

    /// A packet with properties never encodes as MQTT 3.1.1, and writes nothing trying.
    #[test]
    fn properties_never_encode_as_311(packet in any_packet()) {
        let Some(properties) = properties_of(&packet) else { return Ok(()) };
        // A CONNECT encodes as its own protocol, here MQTT 5.
        if properties.is_empty() || matches!(packet, Packet::Connect(_)) {
            return Ok(());
        }
        let mut buf = BytesMut::new();
        let refused = matches!(
            packet.encode_in(Protocol::Mqtt311, &mut buf),
            Err(EncodeError::NotInProtocol { .. })
        );
        prop_assert!(refused);
        prop_assert!(buf.is_empty());
    }

    /// Arbitrary bytes never panic the MQTT 5 decoder; they decode, need more, or fail with an
    /// error that has a Reason Code.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            match Packet::read_in(V5, &mut buf, 4096) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(e.reason_code().is_error());
                    break;
                }
            }
        }
        let mut decoder = PacketDecoder::with_protocol(4096, V5);
        for chunk in bytes.chunks(7) {
            decoder.extend_from_slice(chunk);
            while let Ok(Some(_)) = decoder.next_packet() {}
        }
    }

    /// Arbitrary bodies after a valid fixed header never panic, for every type including AUTH.
    #[test]
    fn arbitrary_bodies_never_panic(first in 0x10u8..=0xFF, body in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut wire = vec![first, body.len() as u8];
        wire.extend_from_slice(&body);
        let _ = Packet::read_in(V5, &mut BytesMut::from(&wire[..]), MAX);
    }

    /// A property section prefixed to arbitrary acknowledgement bytes: the decoder either
    /// refuses or gives back a packet that encodes to a frame it decodes the same way.
    #[test]
    fn whatever_decodes_re_encodes(first in prop::sample::select(vec![0x40u8, 0x50, 0x62, 0x70, 0xB0, 0xE0, 0xF0]), body in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut wire = vec![first, body.len() as u8];
        wire.extend_from_slice(&body);
        if let Ok(Some(packet)) = Packet::read_in(V5, &mut BytesMut::from(&wire[..]), MAX) {
            let mut again = BytesMut::new();
            packet.encode_in(V5, &mut again).unwrap();
            prop_assert_eq!(Packet::read_in(V5, &mut again, MAX), Ok(Some(packet)));
        }
    }
}
