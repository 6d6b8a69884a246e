//! The supervisor on an MQTT 5 connection: the options reach CONNECT, the broker's Reason Codes
//! complete requests with errors that say what it said, and a message keeps its properties.

use sansmq::MqttString;
use sansmq::packet::{Properties, ReasonCode};

use super::*;
use crate::Mqtt5Options;

/// CONNACK, MQTT 5: session not present, Success, no properties.
const CONNACK_V5: [u8; 5] = [0x20, 0x03, 0x00, 0x00, 0x00];

fn v5_options() -> ConnectOptions {
    let v5 = Mqtt5Options::new()
        .receive_maximum(10)
        .user_property("fleet", "north")
        .expect("valid property");
    options(&["tcp://a:1883"]).mqtt5(v5)
}

/// A supervisor connected over MQTT 5 (waiter 1), its events drained; returns the CONNECT sent.
fn connected_v5(now: Instant) -> (Sup, Vec<u8>) {
    let mut sup = Sup::new(v5_options()).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    let connect = write_all(&mut sup, now);
    sup.handle_received(now, &CONNACK_V5);
    assert!(
        events(&mut sup)
            .iter()
            .any(|e| matches!(e, Event::Completed(Completed::Connect(1, Ok(false))))),
        "connected"
    );
    (sup, connect)
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).expect("valid string")
}

#[test]
fn connect_speaks_mqtt_5_with_the_options_properties() {
    let (_, connect) = connected_v5(Instant::now());
    // Fixed header (2), protocol name (6), then the level.
    assert_eq!(connect[8], 5, "protocol level 5");
    // Receive Maximum 10 (0x21) and the User Property (0x26) are in the properties.
    let has = |needle: &[u8]| connect.windows(needle.len()).any(|w| w == needle);
    assert!(has(&[0x21, 0x00, 0x0A]), "{connect:02x?}");
    assert!(has(b"\x26\x00\x05fleet\x00\x05north"), "{connect:02x?}");
}

#[test]
fn a_publish_the_broker_refuses_fails_with_its_reason_code_and_string() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    let mut properties = Properties::new();
    properties.push_user_property(string("k"), string("v"));
    let id = sup
        .publish_with_properties(
            now,
            topic("t"),
            QoS::AtLeastOnce,
            false,
            Bytes::from_static(b"x"),
            properties,
            9,
        )
        .expect("accepted")
        .expect("QoS 1 has an identifier");
    let publish = write_all(&mut sup, now);
    assert!(
        publish.windows(6).any(|w| w == b"\x26\x00\x01k\x00\x01"),
        "the User Property is sent: {publish:02x?}"
    );
    // PUBACK: the identifier, 0x87 Not authorized, Reason String "nope".
    let [hi, lo] = id.get().to_be_bytes();
    sup.handle_received(
        now,
        &[
            0x40, 0x0B, hi, lo, 0x87, 0x07, 0x1F, 0x00, 0x04, b'n', b'o', b'p', b'e',
        ],
    );
    let seen = events(&mut sup);
    let refused = seen.iter().find_map(|e| match e {
        Event::Completed(Completed::Publish(9, QoS::AtLeastOnce, Err(error))) => Some(error),
        _ => None,
    });
    match refused {
        Some(Error::PublishRefused(reason)) => {
            assert_eq!(reason.reason_code, ReasonCode::NotAuthorized);
            assert_eq!(reason.reason_string().map(MqttString::as_str), Some("nope"));
            let shown = Error::PublishRefused(reason.clone()).to_string();
            assert!(shown.contains("nope"), "{shown}");
        }
        other => panic!("expected PublishRefused, got {other:?} in {seen:?}"),
    }
}

#[test]
fn a_message_keeps_its_properties_and_subscription_identifiers() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    // PUBLISH QoS 0 to "t": Subscription Identifier 7, User Property k=v, payload "x".
    sup.handle_received(
        now,
        &[
            0x30, 0x0E, 0x00, 0x01, b't', 0x09, 0x0B, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01,
            b'v', b'x',
        ],
    );
    let seen = events(&mut sup);
    let Some(Event::Message(message)) = seen.first() else {
        panic!("expected a message, got {seen:?}");
    };
    assert_eq!(&*message.payload, b"x");
    let ids: Vec<u32> = message
        .subscription_identifiers()
        .map(|id| id.get())
        .collect();
    assert_eq!(ids, [7]);
    let users: Vec<_> = message
        .properties()
        .user_properties()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(users, [("k", "v")]);
}

#[test]
fn a_message_without_properties_has_an_empty_set() {
    let now = Instant::now();
    let mut sup = connected(now); // MQTT 3.1.1
    sup.handle_received(now, &[0x30, 0x04, 0x00, 0x01, b't', b'x']);
    let seen = events(&mut sup);
    let Some(Event::Message(message)) = seen.first() else {
        panic!("expected a message, got {seen:?}");
    };
    assert!(message.properties().is_empty());
    assert_eq!(message.subscription_identifiers().count(), 0);
}

#[test]
fn a_subscription_the_broker_refuses_names_its_reason_code() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    let mut properties = Properties::new();
    properties.push_subscription_identifier(sansmq::packet::SubscriptionId::new(3).expect("id"));
    let filter = SubscribeFilter::new(
        TopicFilter::try_from("a/#").expect("filter"),
        QoS::AtLeastOnce,
    );
    sup.subscribe_with_properties(now, vec![filter], properties, 4)
        .expect("accepted");
    let subscribe = write_all(&mut sup, now);
    assert!(
        subscribe.windows(3).any(|w| w == [0x02, 0x0B, 0x03]),
        "the Subscription Identifier is sent: {subscribe:02x?}"
    );
    let (hi, lo) = (subscribe[2], subscribe[3]);
    sup.handle_received(now, &[0x90, 0x04, hi, lo, 0x00, 0x87]);
    let seen = events(&mut sup);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Completed(Completed::Subscribe(4, Err(Error::SubscribeRefused { filter, reason_code })))
                if filter == "a/#" && *reason_code == ReasonCode::NotAuthorized
        )),
        "{seen:?}"
    );
}

#[test]
fn a_message_that_expires_in_the_offline_queue_fails_as_expired() {
    let now = Instant::now();
    let mut sup = Sup::new(v5_options()).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    let mut properties = Properties::new();
    properties.message_expiry_interval = Some(1);
    sup.publish_with_properties(
        now,
        topic("t"),
        QoS::AtLeastOnce,
        false,
        Bytes::from_static(b"x"),
        properties,
        5,
    )
    .expect("queued while connecting");
    // The transport opens two seconds later: the message's interval is over.
    let later = now + Duration::from_secs(2);
    sup.handle_opened(later);
    write_all(&mut sup, later);
    sup.handle_received(later, &CONNACK_V5);
    let sent = write_all(&mut sup, later);
    assert!(
        sent.is_empty(),
        "nothing is sent after CONNACK: {sent:02x?}"
    );
    let seen = events(&mut sup);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Completed(Completed::Publish(5, QoS::AtLeastOnce, Err(Error::Expired)))
        )),
        "{seen:?}"
    );
}

#[test]
fn properties_on_a_3_1_1_connection_are_refused() {
    let now = Instant::now();
    let mut sup = connected(now);
    let mut properties = Properties::new();
    properties.push_user_property(string("k"), string("v"));
    let refused = sup.publish_with_properties(
        now,
        topic("t"),
        QoS::AtMostOnce,
        false,
        Bytes::from_static(b"x"),
        properties,
        6,
    );
    assert!(
        matches!(refused, Err(Rejected { waiter: 6, .. })),
        "{refused:?}"
    );
}

#[test]
fn a_qos_2_publish_refused_at_pubrec_fails_without_a_pubrel() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    let id = sup
        .publish(
            now,
            topic("t"),
            QoS::ExactlyOnce,
            false,
            Bytes::from_static(b"x"),
            8,
        )
        .expect("accepted")
        .expect("QoS 2 has an identifier");
    write_all(&mut sup, now);
    // PUBREC with 0x87 Not authorized and no properties, as mosquitto sends it.
    let [hi, lo] = id.get().to_be_bytes();
    sup.handle_received(now, &[0x50, 0x03, hi, lo, 0x87]);
    assert!(
        write_all(&mut sup, now).is_empty(),
        "no PUBREL after a failed PUBREC"
    );
    let seen = events(&mut sup);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Completed(Completed::Publish(8, QoS::ExactlyOnce, Err(Error::PublishRefused(reason))))
                if reason.reason_code == ReasonCode::NotAuthorized
        )),
        "{seen:?}"
    );
}

#[test]
fn after_a_refused_publish_the_next_one_goes_out() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    for (waiter, qos) in [(10, QoS::AtLeastOnce), (11, QoS::ExactlyOnce)] {
        let id = sup
            .publish(
                now,
                topic("t"),
                qos,
                false,
                Bytes::from_static(b"x"),
                waiter,
            )
            .expect("accepted")
            .expect("an identifier");
        let sent = write_all(&mut sup, now);
        assert_eq!(
            sent.first().map(|b| b >> 4),
            Some(3),
            "PUBLISH {qos:?} goes out: {sent:02x?}"
        );
        let [hi, lo] = id.get().to_be_bytes();
        let ack = if qos == QoS::AtLeastOnce { 0x40 } else { 0x50 };
        sup.handle_received(now, &[ack, 0x03, hi, lo, 0x87]);
        let seen = events(&mut sup);
        assert!(
            seen.iter().any(|e| matches!(
                e,
                Event::Completed(Completed::Publish(w, _, Err(Error::PublishRefused(_)))) if *w == waiter
            )),
            "{qos:?}: {seen:?}"
        );
    }
}

#[test]
fn a_server_disconnect_is_lost_with_its_reason_code_and_string() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    // DISCONNECT 0x8B Server shutting down, Reason String "bye".
    sup.handle_received(
        now,
        &[0xE0, 0x08, 0x8B, 0x06, 0x1F, 0x00, 0x03, b'b', b'y', b'e'],
    );
    let seen = events(&mut sup);
    let cause = seen.iter().find_map(|e| match e {
        Event::ConnectionLost { cause, .. } => Some(cause),
        _ => None,
    });
    match cause {
        Some(Error::ConnectionLost(sansmq::DisconnectReason::ServerDisconnected(reason))) => {
            assert_eq!(reason.reason_code, ReasonCode::ServerShuttingDown);
            assert_eq!(reason.reason_string().map(MqttString::as_str), Some("bye"));
        }
        other => panic!("expected the server's DISCONNECT, got {other:?} in {seen:?}"),
    }
    assert!(!sup.is_connected());
}

#[test]
fn the_wills_properties_reach_connect() {
    let now = Instant::now();
    let mut properties = Properties::new();
    properties.will_delay_interval = Some(30);
    let will = crate::Will {
        topic: "status/supervised".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties,
    };
    let mut sup = Sup::new(v5_options().will(will)).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    let connect = write_all(&mut sup, now);
    assert!(
        connect
            .windows(5)
            .any(|w| w == [0x18, 0x00, 0x00, 0x00, 30]),
        "Will Delay Interval 30 in the will properties: {connect:02x?}"
    );
}

/// The PUBLISH `wire` (QoS 0, properties before the payload) holds `needle`.
fn holds(wire: &[u8], needle: &[u8]) -> bool {
    wire.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_request_is_answered_by_the_response_with_its_correlation_data() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    sup.request(
        now,
        topic("svc/time"),
        QoS::AtMostOnce,
        Bytes::from_static(b"?"),
        Properties::new(),
        20,
    )
    .expect("accepted");
    let sent = write_all(&mut sup, now);
    // SUBSCRIBE to the default response topic, then the request with Response Topic (0x08) and
    // Correlation Data (0x09) 0 as eight bytes.
    assert!(holds(&sent, b"\x00\x14responses/supervised"), "{sent:02x?}");
    assert!(
        holds(&sent, b"\x08\x00\x14responses/supervised"),
        "{sent:02x?}"
    );
    assert!(
        holds(&sent, &[0x09, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
        "{sent:02x?}"
    );
    // A message on the response topic for another request goes to the application...
    let mut other = vec![0x30, 0x23, 0x00, 0x14];
    other.extend_from_slice(b"responses/supervised");
    other.extend_from_slice(&[0x0B, 0x09, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 7, b'x']);
    sup.handle_received(now, &other);
    assert!(matches!(events(&mut sup).as_slice(), [Event::Message(_)]));
    // ...and the one with this request's Correlation Data answers it.
    let mut answer = other.clone();
    let last_correlation_byte = answer.len() - 2;
    answer[last_correlation_byte] = 0;
    *answer.last_mut().expect("payload") = b'!';
    sup.handle_received(now, &answer);
    let seen = events(&mut sup);
    match seen.as_slice() {
        [Event::Completed(Completed::Request(20, Ok(message)))] => {
            assert_eq!(&message.payload[..], b"!");
        }
        other => panic!("expected the response, got {other:?}"),
    }
}

#[test]
fn a_request_without_a_response_times_out_after_time_to_wait() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    sup.request(
        now,
        topic("svc/time"),
        QoS::AtLeastOnce,
        Bytes::new(),
        Properties::new(),
        21,
    )
    .expect("accepted");
    write_all(&mut sup, now);
    let deadline = sup.poll_timeout().expect("a deadline");
    let later = now + sup.options().time_to_wait_limit();
    assert!(deadline <= later);
    sup.handle_timeout(later);
    let seen = events(&mut sup);
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Completed(Completed::Request(21, Err(Error::Timeout(_))))
        )),
        "{seen:?}"
    );
}

#[test]
fn a_request_needs_mqtt_5() {
    let now = Instant::now();
    let mut sup = connected(now);
    let refused = sup.request(
        now,
        topic("svc/time"),
        QoS::AtMostOnce,
        Bytes::new(),
        Properties::new(),
        22,
    );
    assert!(
        matches!(
            refused,
            Err(Rejected {
                error: Error::Unsupported { .. },
                waiter: 22
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn the_broker_rules_bind_a_request_as_they_bind_a_publish() {
    /// Refuses publishing to `svc/forbidden` and subscribing to `responses/#`.
    struct Rules;
    impl crate::BrokerRules for Rules {
        fn check_publish(&self, publish: &crate::OutgoingPublish<'_>) -> Result<(), String> {
            match publish.topic {
                "svc/forbidden" => Err("no".into()),
                _ => Ok(()),
            }
        }
        fn check_subscribe(&self, filter: &str, _: QoS, _: bool) -> Result<(), String> {
            match filter.starts_with("responses/") {
                true => Err("no responses here".into()),
                false => Ok(()),
            }
        }
    }
    let now = Instant::now();
    let mut sup = Sup::new(v5_options().broker_rules(Rules)).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    write_all(&mut sup, now);
    sup.handle_received(now, &CONNACK_V5);
    events(&mut sup);
    for (to, waiter) in [("svc/forbidden", 30), ("svc/time", 31)] {
        let refused = sup.request(
            now,
            topic(to),
            QoS::AtMostOnce,
            Bytes::new(),
            Properties::new(),
            waiter,
        );
        assert!(
            matches!(&refused, Err(Rejected { error: Error::NotAllowed(_), waiter: w }) if *w == waiter),
            "{to}: {refused:?}"
        );
    }
    assert!(write_all(&mut sup, now).is_empty(), "nothing was sent");
}

/// A toy challenge and response: the answer to challenge `x` is `x:pw`, and the server's final
/// word must be `ok`.
#[derive(Debug, Default)]
struct Toy;

impl sansmq::client::Authenticator for Toy {
    fn method(&self) -> &str {
        "TOY"
    }

    fn start(&mut self) -> Result<Option<Bytes>, sansmq::client::AuthError> {
        Ok(Some(Bytes::from_static(b"hello")))
    }

    fn respond(
        &mut self,
        challenge: Option<&Bytes>,
    ) -> Result<Option<Bytes>, sansmq::client::AuthError> {
        let mut answer = challenge.map(|c| c.to_vec()).unwrap_or_default();
        answer.extend_from_slice(b":pw");
        Ok(Some(Bytes::from(answer)))
    }

    fn finish(&mut self, data: Option<&Bytes>) -> Result<(), sansmq::client::AuthError> {
        match data {
            Some(data) if &data[..] == b"ok" => Ok(()),
            other => Err(sansmq::client::AuthError(format!("server proof {other:?}"))),
        }
    }
}

/// `packet` as the server sends it on an MQTT 5 connection.
fn from_server(packet: sansmq::packet::Packet) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    packet
        .encode_in(sansmq::packet::Protocol::Mqtt5, &mut buf)
        .expect("encodable");
    buf.to_vec()
}

fn auth_properties(data: &'static [u8]) -> Properties {
    let mut properties = Properties::new();
    properties.set_authentication_method(Some(string("TOY")));
    properties.set_authentication_data(Some(Bytes::from_static(data)));
    properties
}

#[test]
fn the_options_authenticator_answers_the_servers_challenges_at_connect_and_after() {
    let now = Instant::now();
    let v5 = Mqtt5Options::new().authenticator(|| Toy);
    assert!(format!("{v5:?}").contains("TOY"), "{v5:?}");
    let mut sup = Sup::new(options(&["tcp://a:1883"]).mqtt5(v5)).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    let connect = write_all(&mut sup, now);
    // Authentication Method (0x15) and Data (0x16) in CONNECT.
    assert!(holds(&connect, b"\x15\x00\x03TOY"), "{connect:02x?}");
    assert!(holds(&connect, b"\x16\x00\x05hello"), "{connect:02x?}");

    let challenge = sansmq::packet::Auth::new(ReasonCode::ContinueAuthentication)
        .with_properties(auth_properties(b"nonce"));
    sup.handle_received(now, &from_server(sansmq::packet::Packet::Auth(challenge)));
    let answer = write_all(&mut sup, now);
    assert_eq!(answer[0], 0xF0, "AUTH: {answer:02x?}");
    assert!(holds(&answer, b"\x16\x00\x08nonce:pw"), "{answer:02x?}");

    let connack = sansmq::packet::ConnAck::from_reason_code(ReasonCode::Success)
        .with_properties(auth_properties(b"ok"));
    sup.handle_received(now, &from_server(sansmq::packet::Packet::ConnAck(connack)));
    assert!(
        events(&mut sup)
            .iter()
            .any(|e| matches!(e, Event::Completed(Completed::Connect(1, Ok(false))))),
        "connected"
    );

    // Re-authentication: AUTH 0x19 with the first data again.
    sup.reauthenticate(now).expect("started");
    let again = write_all(&mut sup, now);
    assert_eq!(&again[..1], &[0xF0], "{again:02x?}");
    assert!(holds(&again, &[0x19]), "Reason Code 0x19: {again:02x?}");
    assert!(holds(&again, b"\x16\x00\x05hello"), "{again:02x?}");
    let success =
        sansmq::packet::Auth::new(ReasonCode::Success).with_properties(auth_properties(b"ok"));
    sup.handle_received(now, &from_server(sansmq::packet::Packet::Auth(success)));
    assert!(
        sup.is_connected(),
        "still connected after re-authenticating"
    );
}

#[test]
fn a_server_whose_proof_is_wrong_is_not_trusted() {
    let now = Instant::now();
    let v5 = Mqtt5Options::new().authenticator(|| Toy);
    let mut sup = Sup::new(options(&["tcp://a:1883"]).mqtt5(v5)).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    write_all(&mut sup, now);
    let connack = sansmq::packet::ConnAck::from_reason_code(ReasonCode::Success)
        .with_properties(auth_properties(b"forged"));
    sup.handle_received(now, &from_server(sansmq::packet::Packet::ConnAck(connack)));
    assert!(!sup.is_connected());
    assert!(
        !events(&mut sup)
            .iter()
            .any(|e| matches!(e, Event::Completed(Completed::Connect(1, Ok(_))))),
        "a forged proof does not connect"
    );
}

#[test]
fn reauthenticate_needs_an_authenticator() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    assert!(sup.reauthenticate(now).is_err());
}

/// The SUBSCRIBEs in MQTT 5 `bytes`, as (filters, Subscription Identifier).
fn v5_subscribes(bytes: &[u8]) -> Vec<(Vec<String>, Option<u32>)> {
    let mut decoder =
        sansmq::packet::PacketDecoder::with_protocol(1 << 20, sansmq::packet::Protocol::Mqtt5);
    decoder.extend_from_slice(bytes);
    std::iter::from_fn(|| decoder.next_packet().expect("valid packets"))
        .filter_map(|packet| match packet {
            sansmq::packet::Packet::Subscribe(s) => Some((
                s.filters.iter().map(|f| f.filter.to_string()).collect(),
                s.properties()
                    .subscription_identifiers()
                    .next()
                    .map(|id| id.get()),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_plain_subscribe_does_not_join_a_restore_that_asks_for_a_former_identifier() {
    let now = Instant::now();
    let (mut sup, _) = connected_v5(now);
    let filter = || {
        vec![SubscribeFilter::new(
            TopicFilter::try_from("t/#").expect("filter"),
            QoS::AtLeastOnce,
        )]
    };
    let mut properties = Properties::new();
    properties.push_subscription_identifier(sansmq::packet::SubscriptionId::new(7).expect("not 0"));
    sup.subscribe_with_properties(now, filter(), properties, 2)
        .expect("subscribe accepted");
    write_all(&mut sup, now);
    // SUBACK, MQTT 5: packet id 1, no properties, QoS 1 granted.
    sup.handle_received(now, &[0x90, 0x04, 0x00, 0x01, 0x00, 0x01]);
    events(&mut sup);

    // A reconnect without the session: the restore asks for t/# with identifier 7 again.
    sup.handle_closed(now, None);
    events(&mut sup);
    let at = sup.poll_timeout().expect("reconnect scheduled");
    reconnect(&mut sup, at, &CONNACK_V5);
    events(&mut sup);
    let restored = v5_subscribes(&write_all(&mut sup, at));
    assert_eq!(restored, [(vec!["t/#".to_owned()], Some(7))]);

    // The application subscribes again without an identifier: its own SUBSCRIBE replaces it.
    sup.subscribe(at, filter(), 3).expect("subscribe accepted");
    let own = v5_subscribes(&write_all(&mut sup, at));
    assert_eq!(own, [(vec!["t/#".to_owned()], None)]);
}
