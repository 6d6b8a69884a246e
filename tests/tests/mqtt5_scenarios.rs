//! MQTT 5.0 through every driver against mosquitto 2, each scenario written once as a function
//! generic over [`ScenarioClient`]: test names read `mio::properties_go_round`,
//! `tokio::properties_go_round`, and so on.
//!
//! - every PUBLISH property a client may send reaches a subscriber as sent, with the Subscription
//!   Identifier of the subscription it matched;
//! - the client's automatic Topic Aliases work against mosquitto's (at most 10 by default);
//! - a message the broker's ACL refuses fails with the broker's Reason Code (0x87);
//! - the Session Expiry Interval decides whether a reconnect finds the session, and a kept
//!   session (with the messages that came for it meanwhile) survives a broker restart;
//! - a publisher keeps within mosquitto's Receive Maximum (`max_inflight_messages`) and every
//!   message arrives;
//! - request/response: each request gets the answer with its own Correlation Data.
//!
//! mosquitto 2.0.11 sends no DISCONNECT of its own (it closes a taken-over session's connection
//! without one), so a server DISCONNECT's reason reaching the application is tested on the
//! supervisor (`sansmq-driver`), which every driver shares.

mod common;

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{PayloadFormat, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionId};
use sansmq::{MqttString, TopicFilter, TopicName};
use sansmq_driver::{ConnectOptions, Error, Mqtt5Options};
use sansmq_e2e::scenario::{PendingPublish, ScenarioClient, connected};
use sansmq_e2e::{Mosquitto, PATIENCE};

use common::options;

macro_rules! every_scenario {
    ($driver:ident: $client:ty) => {
        sansmq_e2e::scenario_tests!($driver: $client =>
            properties_go_round,
            topic_aliases_go_round,
            a_publish_the_acl_refuses_fails_with_not_authorized,
            session_expiry_decides_whether_a_reconnect_finds_the_session,
            a_kept_session_and_its_messages_survive_a_broker_restart,
            many_messages_go_through_a_receive_maximum_of_two,
            a_request_gets_its_response,
        );
    };
}

every_scenario!(mio: sansmq_e2e::scenario::MioClient);
every_scenario!(tokio: sansmq_e2e::scenario::TokioClient);
every_scenario!(futures: sansmq_e2e::scenario::FuturesClient);

fn v5(uri: &str, client_id: &str, mqtt5: Mqtt5Options) -> ConnectOptions {
    options(uri, client_id).mqtt5(mqtt5)
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).expect("valid string")
}

fn filter(f: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(TopicFilter::try_from(f).expect("valid filter"), qos)
}

fn with_subscription_id(id: u32) -> Properties {
    let mut properties = Properties::new();
    properties.push_subscription_identifier(SubscriptionId::new(id).expect("valid id"));
    properties
}

fn properties_go_round<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let subscriber: C = connected(v5(&broker.url(), "v5-sub", Mqtt5Options::new()));
    let granted = subscriber
        .subscribe_with_properties(
            &[filter("v5/props/#", QoS::AtLeastOnce)],
            with_subscription_id(7),
        )
        .unwrap();
    assert_eq!(granted, [QoS::AtLeastOnce]);

    let publisher: C = connected(v5(&broker.url(), "v5-pub", Mqtt5Options::new()));
    let mut sent = Properties::new();
    sent.push_user_property(string("trace"), string("1"));
    sent.push_user_property(string("trace"), string("2"));
    sent.push_user_property(string("unit"), string("°C"));
    sent.set_content_type(Some(string("text/plain")));
    sent.payload_format_indicator = Some(PayloadFormat::Utf8);
    sent.set_response_topic(Some(TopicName::try_from("v5/reply").expect("valid topic")));
    sent.set_correlation_data(Some(Bytes::from_static(b"\x00\x01\xFF")));
    sent.message_expiry_interval = Some(300);
    publisher
        .publish_with_properties(
            "v5/props/a",
            Bytes::from_static(b"21.5"),
            QoS::AtLeastOnce,
            sent,
        )
        .unwrap_or_else(|e| panic!("{}: publish: {e}", C::DRIVER));

    let message = subscriber
        .next_message(PATIENCE)
        .unwrap_or_else(|| panic!("{}: the message", C::DRIVER));
    assert_eq!(message.topic, "v5/props/a");
    assert_eq!(&message.payload[..], b"21.5");
    let got = &message.properties;
    let users: Vec<_> = got
        .user_properties()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        users,
        [("trace", "1"), ("trace", "2"), ("unit", "°C")],
        "{}",
        C::DRIVER
    );
    assert_eq!(
        got.content_type().map(MqttString::as_str),
        Some("text/plain")
    );
    assert_eq!(got.payload_format_indicator, Some(PayloadFormat::Utf8));
    assert_eq!(
        got.response_topic().as_ref().map(TopicName::as_str),
        Some("v5/reply")
    );
    assert_eq!(
        got.correlation_data().map(|d| &d[..]),
        Some(&b"\x00\x01\xFF"[..])
    );
    // What is left of the interval: at most what was sent, and not yet run out.
    let expiry = got.message_expiry_interval.expect("the interval left");
    assert!((1..=300).contains(&expiry), "{expiry}");
    let ids: Vec<u32> = got.subscription_identifiers().map(|id| id.get()).collect();
    assert_eq!(ids, [7], "{}: the subscription's identifier", C::DRIVER);
    assert_eq!(
        got.topic_alias, None,
        "an alias is the connection's business"
    );
}

fn topic_aliases_go_round<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let subscriber: C = connected(v5(&broker.url(), "alias-sub", Mqtt5Options::new()));
    subscriber
        .subscribe_with_properties(&[filter("alias/#", QoS::AtLeastOnce)], Properties::new())
        .unwrap();
    // mosquitto takes 10 aliases; 12 topics over 36 messages make the client reuse, replace and
    // send topics in full.
    let publisher: C = connected(v5(&broker.url(), "alias-pub", Mqtt5Options::new()));
    let topics: Vec<String> = (0..12).map(|i| format!("alias/sensor-{i}")).collect();
    for round in 0..3 {
        for topic in &topics {
            let payload = Bytes::from(format!("{round}"));
            publisher
                .publish_with_properties(topic, payload, QoS::AtLeastOnce, Properties::new())
                .unwrap_or_else(|e| panic!("{}: publish to {topic}: {e}", C::DRIVER));
        }
    }
    for round in 0..3 {
        for topic in &topics {
            let message = subscriber
                .next_message(PATIENCE)
                .unwrap_or_else(|| panic!("{}: {topic} in round {round}", C::DRIVER));
            assert_eq!(
                (message.topic.as_str(), &message.payload[..]),
                (topic.as_str(), format!("{round}").as_bytes())
            );
        }
    }
}

fn a_publish_the_acl_refuses_fails_with_not_authorized<C: ScenarioClient>() {
    let mut acl = tempfile::NamedTempFile::new().expect("ACL file");
    writeln!(acl, "topic readwrite allowed/#").expect("ACL written");
    // mosquitto 2.0.11 closes the connection after a denied PUBLISH when its queue is unbounded
    // (`max_queued_messages 0`, the harness's default), so this one has a bound.
    let broker = Mosquitto::builder()
        .max_queued_messages(100)
        .config_line(format!("acl_file {}", acl.path().display()))
        .start();
    let client: C = connected(v5(&broker.url(), "acl", Mqtt5Options::new()));
    client
        .publish_with_properties(
            "allowed/x",
            Bytes::from_static(b"ok"),
            QoS::AtLeastOnce,
            Properties::new(),
        )
        .unwrap_or_else(|e| panic!("{}: an allowed topic: {e}", C::DRIVER));
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let refused = client.publish_with_properties(
            "forbidden/x",
            Bytes::from_static(b"no"),
            qos,
            Properties::new(),
        );
        match refused {
            Err(Error::PublishRefused(reason)) => {
                assert_eq!(
                    reason.reason_code,
                    ReasonCode::NotAuthorized,
                    "{}",
                    C::DRIVER
                )
            }
            other => panic!(
                "{}: {qos:?} expected PublishRefused, got {other:?}",
                C::DRIVER
            ),
        }
    }
    assert!(
        client.is_connected(),
        "a refused message leaves the connection up"
    );
}

fn session_expiry_decides_whether_a_reconnect_finds_the_session<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let kept = || {
        v5(
            &broker.url(),
            "kept",
            Mqtt5Options::new().session_expiry(Duration::from_secs(60)),
        )
        .clean_session(false)
    };
    let first: C = connected(kept());
    first.disconnect(Duration::ZERO).unwrap();
    drop(first);
    let second = C::new(kept()).unwrap();
    assert!(
        second.connect().unwrap(),
        "{}: the session was kept",
        C::DRIVER
    );
    second.disconnect(Duration::ZERO).unwrap();

    // Clean Start off but no expiry interval: the session ended with the connection.
    let gone = || {
        v5(
            &broker.url(),
            "gone",
            Mqtt5Options::new().session_expiry(Duration::ZERO),
        )
        .clean_session(false)
    };
    let first: C = connected(gone());
    first.disconnect(Duration::ZERO).unwrap();
    drop(first);
    let second = C::new(gone()).unwrap();
    assert!(
        !second.connect().unwrap(),
        "{}: the session expired",
        C::DRIVER
    );
}

fn a_kept_session_and_its_messages_survive_a_broker_restart<C: ScenarioClient>() {
    let broker = Mosquitto::builder().persistence(true).start();
    let kept = || {
        v5(
            &broker.url(),
            "durable",
            Mqtt5Options::new().session_expiry(Duration::from_secs(300)),
        )
        .clean_session(false)
    };
    let subscriber: C = connected(kept());
    subscriber
        .subscribe_with_properties(&[filter("durable/#", QoS::AtLeastOnce)], Properties::new())
        .unwrap();
    subscriber.disconnect(Duration::ZERO).unwrap();
    drop(subscriber);
    // A message for the absent subscriber, kept by the broker for its session.
    let publisher: C = connected(v5(&broker.url(), "durable-pub", Mqtt5Options::new()));
    publisher
        .publish_with_properties(
            "durable/a",
            Bytes::from_static(b"kept"),
            QoS::AtLeastOnce,
            Properties::new(),
        )
        .unwrap();
    publisher.disconnect(Duration::ZERO).unwrap();
    broker.restart(); // a clean stop saves the database

    let subscriber = C::new(kept()).unwrap();
    assert!(
        subscriber.connect().unwrap(),
        "{}: the session survived the restart",
        C::DRIVER
    );
    let message = subscriber
        .next_message(PATIENCE)
        .unwrap_or_else(|| panic!("{}: the message kept for the session", C::DRIVER));
    assert_eq!(
        (message.topic.as_str(), &message.payload[..]),
        ("durable/a", &b"kept"[..])
    );
}

fn many_messages_go_through_a_receive_maximum_of_two<C: ScenarioClient>() {
    // mosquitto announces max_inflight_messages as its Receive Maximum; a client that sends more
    // unacknowledged QoS 1/2 messages breaks MQTT-3.3.4-7, and mosquitto disconnects it.
    let broker = Mosquitto::builder().max_inflight_messages(2).start();
    let subscriber: C = connected(v5(&broker.url(), "window-sub", Mqtt5Options::new()));
    subscriber
        .subscribe_with_properties(&[filter("window/#", QoS::ExactlyOnce)], Properties::new())
        .unwrap();
    let publisher: C = connected(v5(&broker.url(), "window-pub", Mqtt5Options::new()));
    let pending: Vec<_> = (0..50u32)
        .map(|i| {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            publisher
                .start_publish("window/n", Bytes::from(i.to_string()), qos, false)
                .unwrap()
        })
        .collect();
    for (i, publish) in pending.into_iter().enumerate() {
        publish
            .wait(PATIENCE)
            .unwrap_or_else(|e| panic!("{}: message {i}: {e}", C::DRIVER));
    }
    // Order holds per QoS only (MQTT 4.6), and QoS 1 may come twice: count what arrived.
    let mut arrived = std::collections::BTreeSet::new();
    while arrived.len() < 50 {
        let message = subscriber
            .next_message(PATIENCE)
            .unwrap_or_else(|| panic!("{}: {} of 50 arrived", C::DRIVER, arrived.len()));
        let n: u32 = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("a number");
        arrived.insert(n);
    }
    assert_eq!(arrived, (0..50).collect(), "{}", C::DRIVER);
    assert!(
        publisher.is_connected(),
        "{}: mosquitto kept the publisher",
        C::DRIVER
    );
}

fn a_request_gets_its_response<C: ScenarioClient>() {
    let broker = Mosquitto::start();
    let responder: C = connected(v5(&broker.url(), "responder", Mqtt5Options::new()));
    responder
        .subscribe_with_properties(&[filter("svc/echo", QoS::AtLeastOnce)], Properties::new())
        .unwrap();
    let requester: C = connected(v5(&broker.url(), "requester", Mqtt5Options::new()));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Answers three requests: the payload doubled, to the Response Topic, with the
            // request's Correlation Data.
            for _ in 0..3 {
                let request = responder.next_message(PATIENCE).expect("a request");
                let to = request
                    .properties
                    .response_topic()
                    .expect("a response topic");
                let mut answer = Properties::new();
                answer.set_correlation_data(request.properties.correlation_data().cloned());
                let payload = Bytes::from([&request.payload[..], &request.payload[..]].concat());
                responder
                    .publish_with_properties(to.as_str(), payload, QoS::AtLeastOnce, answer)
                    .expect("the response");
            }
        });
        for word in ["tick", "tock", "done"] {
            let response = requester
                .request("svc/echo", Bytes::from(word), QoS::AtLeastOnce)
                .unwrap_or_else(|e| panic!("{}: request {word}: {e}", C::DRIVER));
            assert_eq!(
                response.payload,
                format!("{word}{word}").as_bytes(),
                "{}",
                C::DRIVER
            );
            assert_eq!(response.topic, "responses/requester");
        }
    });
}
