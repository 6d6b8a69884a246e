//! Seeded random sessions: several clients send well-formed packets in orders no polite client
//! would (acks for ids never used, colliding packet ids, takeovers mid-flight, QoS 2 releases
//! out of the blue, second CONNECTs, abrupt drops), in plain and ApsaraMQ mode; and MQTT 5
//! clients among MQTT 3.1.1 ones (session expiry, Receive Maximum and Maximum Packet Size, Topic
//! Aliases set, used and abused, subscription options and identifiers, message expiry,
//! DISCONNECT with a will or a new expiry). Decoding is fuzzed elsewhere; this reaches the
//! broker's session logic, which must neither panic nor stop serving.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{TestClient, connect_packet, filter, id, topic, will};
use sansmq::MqttString;
use sansmq::packet::{
    ConnectReturnCode, Disconnect, Packet, Password, Protocol, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, ReasonCode, RetainHandling, Subscribe, SubscribeFilter, SubscriptionId,
    Unsubscribe,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig, signature, start};

const INSTANCE: &str = "mqtt-cn-random";
const ACCESS_KEY: &str = "LTAIrandom";
const SECRET: &str = "random-secret";

const CLIENT_IDS: [&str; 4] = ["GID_r@@@a", "GID_r@@@b", "GID_r@@@c", "GID_r@@@a"];
const TOPICS: [&str; 5] = ["t/1", "t/2", "t/p2p/GID_r@@@b", "$SYS/x", "u"];
const FILTERS: [&str; 6] = ["t/#", "#", "+/+", "t/1", "$SYS/#", "t/p2p/+"];
const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// A client that writes whatever it is told and reads whatever comes, ignoring failures: the
/// broker may close it at any point, which is part of the game.
struct Rogue {
    stream: Option<TcpStream>,
    /// In ApsaraMQ mode: log in with a Signature, mostly right.
    signed: bool,
    /// Whether it may connect with MQTT 5 (half its connections then do).
    mqtt5: bool,
    /// What its current connection speaks.
    protocol: Protocol,
}

impl Rogue {
    fn new(signed: bool, mqtt5: bool) -> Self {
        Self {
            stream: None,
            signed,
            mqtt5,
            protocol: Protocol::Mqtt311,
        }
    }

    fn connect(&mut self, addr: SocketAddr, rng: &mut fastrand::Rng) {
        let Ok(stream) = TcpStream::connect(addr) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
        self.stream = Some(stream);
        let client_id = CLIENT_IDS[rng.usize(..CLIENT_IDS.len())];
        let mut connect = connect_packet(client_id, rng.bool(), [0, 1, 60][rng.usize(..3)]);
        if self.signed {
            let secret = if rng.u8(..8) == 0 { "wrong" } else { SECRET };
            let username = format!("Signature|{ACCESS_KEY}|{INSTANCE}");
            connect.username = Some(MqttString::try_from(username.as_str()).unwrap());
            connect.password = Some(Password(signature(secret, client_id).into()));
        }
        if rng.u8(..10) == 0 {
            connect.will = Some(will("t/will", b"gone", QOS[rng.usize(..3)], rng.bool()));
        }
        self.protocol = Protocol::Mqtt311;
        if self.mqtt5 && rng.bool() {
            connect.protocol = Protocol::Mqtt5;
            let p = &mut connect.properties;
            p.session_expiry_interval = [None, Some(0), Some(1), Some(u32::MAX)][rng.usize(..4)];
            p.receive_maximum = [None, NonZeroU16::new(1), NonZeroU16::new(3)][rng.usize(..3)];
            p.maximum_packet_size =
                [None, NonZeroU32::new(40), NonZeroU32::new(500)][rng.usize(..3)];
            if let Some(will) = &mut connect.will {
                will.properties.will_delay_interval = [None, Some(1)][rng.usize(..2)];
                will.properties.message_expiry_interval = [None, Some(1)][rng.usize(..2)];
            }
            self.protocol = Protocol::Mqtt5;
        }
        self.send(&connect.into());
    }

    fn send_raw(&mut self, wire: &[u8]) {
        if let Some(stream) = &mut self.stream {
            if stream.write_all(wire).is_err() {
                self.stream = None;
            }
        }
    }

    fn send(&mut self, packet: &Packet) {
        let mut wire = BytesMut::new();
        if packet.encode_in(self.protocol, &mut wire).is_err() {
            return;
        }
        self.send_raw(&wire);
    }

    /// Reads what is there, sometimes: a client that stops reading is part of the game too.
    fn drain(&mut self) {
        let Some(stream) = &mut self.stream else {
            return;
        };
        let mut buf = [0; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.stream = None;
                    return;
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return;
                }
                Err(_) => {
                    self.stream = None;
                    return;
                }
            }
        }
    }
}

fn random_packet(rng: &mut fastrand::Rng) -> Packet {
    let packet_id = id(rng.u16(1..=4));
    match rng.u8(..10) {
        0..=3 => {
            let qos = QOS[rng.usize(..3)];
            let payload_len = [0, 1, 100, 2000][rng.usize(..4)];
            let mut publish = Publish::new(
                topic(TOPICS[rng.usize(..TOPICS.len())]),
                Bytes::from(vec![b'x'; payload_len]),
            );
            publish.qos = qos;
            publish.retain = rng.u8(..4) == 0;
            publish.dup = qos != QoS::AtMostOnce && rng.bool();
            publish.packet_id = (qos != QoS::AtMostOnce).then_some(packet_id);
            publish.into()
        }
        4 => PubAck::new(packet_id).into(),
        5 => PubRec::new(packet_id).into(),
        6 => PubRel::new(packet_id).into(),
        7 => PubComp::new(packet_id).into(),
        8 => Subscribe::with_filters(
            packet_id,
            (0..rng.usize(1..3))
                .map(|_| {
                    SubscribeFilter::new(
                        filter(FILTERS[rng.usize(..FILTERS.len())]),
                        QOS[rng.usize(..3)],
                    )
                })
                .collect(),
        )
        .into(),
        _ => {
            if rng.bool() {
                Unsubscribe::new(packet_id, vec![filter(FILTERS[rng.usize(..FILTERS.len())])])
                    .into()
            } else {
                Packet::PingReq
            }
        }
    }
}

/// MQTT 5 parts added to a random packet: properties, options, Reason Codes.
fn mqtt5_packet(rng: &mut fastrand::Rng, packet: Packet) -> Packet {
    match packet {
        Packet::Publish(mut publish) => {
            let p = publish.properties_mut();
            p.message_expiry_interval = [None, Some(0), Some(1), Some(60)][rng.usize(..4)];
            // Aliases 1 to 12, over the broker's 10 now and then.
            p.topic_alias = [None, NonZeroU16::new(rng.u16(1..=12))][rng.usize(..2)];
            if rng.bool() {
                p.push_user_property(
                    MqttString::try_from("k").unwrap(),
                    MqttString::try_from("v").unwrap(),
                );
                p.set_correlation_data(Some(Bytes::from_static(b"c")));
                p.set_response_topic(Some(topic("t/reply")));
            }
            publish.into()
        }
        Packet::Subscribe(mut subscribe) => {
            for f in &mut subscribe.filters {
                f.no_local = rng.bool();
                f.retain_as_published = rng.bool();
                f.retain_handling = [
                    RetainHandling::SendAtSubscribe,
                    RetainHandling::SendAtNewSubscribe,
                    RetainHandling::DoNotSend,
                ][rng.usize(..3)];
            }
            if rng.bool() {
                let id = SubscriptionId::new(rng.u32(1..=3)).unwrap();
                subscribe.properties_mut().push_subscription_identifier(id);
            }
            subscribe.into()
        }
        Packet::PubRec(_) if rng.bool() => {
            PubRec::with_reason_code(id(rng.u16(1..=4)), ReasonCode::QuotaExceeded).into()
        }
        other => other,
    }
}

/// Plays `steps` random moves of four rogues against `broker`, signed in ApsaraMQ mode, with
/// MQTT 5 connections among them if `mqtt5`.
fn play(broker: &Broker, seed: u64, steps: usize, signed: bool) {
    play_with(broker, seed, steps, signed, false);
}

fn play_with(broker: &Broker, seed: u64, steps: usize, signed: bool, mqtt5: bool) {
    let addr = broker.local_addr();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rogues: Vec<Rogue> = (0..4).map(|_| Rogue::new(signed, mqtt5)).collect();
    for _ in 0..steps {
        let rogue = &mut rogues[rng.usize(..4)];
        match rng.u8(..20) {
            0 => rogue.connect(addr, &mut rng),
            // An abrupt drop: the will (if any) fires, a kept session keeps its queue.
            1 => rogue.stream = None,
            2 => rogue.send(&Packet::Disconnect(Disconnect::new())),
            // MQTT-3.1.0-2: a second CONNECT closes the connection.
            3 => rogue.send(&connect_packet("GID_r@@@z", true, 60).into()),
            _ => {
                if rogue.stream.is_none() {
                    rogue.connect(addr, &mut rng);
                }
                let packet = random_packet(&mut rng);
                if rogue.protocol.is_v5() {
                    match (rng.u8(..6), mqtt5_packet(&mut rng, packet)) {
                        // A PUBLISH by an alias alone: known to the broker or not.
                        (0, Packet::Publish(publish)) => {
                            let mut wire = BytesMut::new();
                            let alias = NonZeroU16::new(rng.u16(1..=3)).unwrap();
                            if publish.encode_aliased(alias, false, &mut wire).is_ok() {
                                rogue.send_raw(&wire);
                            }
                        }
                        (1, _) => {
                            let code = [ReasonCode::DisconnectWithWillMessage, ReasonCode::Success]
                                [rng.usize(..2)];
                            let mut disconnect = Disconnect::with_reason_code(code);
                            disconnect.properties_mut().session_expiry_interval =
                                [None, Some(0), Some(5)][rng.usize(..3)];
                            rogue.send(&disconnect.into());
                        }
                        (_, packet) => rogue.send(&packet),
                    }
                } else {
                    rogue.send(&packet);
                }
            }
        }
        if rng.bool() {
            rogue.drain();
        }
    }
}

/// A clean-session CONNECT with a right Signature login.
fn signed_login(client_id: &str) -> sansmq::packet::Connect {
    let mut login = connect_packet(client_id, true, 60);
    let username = format!("Signature|{ACCESS_KEY}|{INSTANCE}");
    login.username = Some(MqttString::try_from(username.as_str()).unwrap());
    login.password = Some(Password(signature(SECRET, client_id).into()));
    login
}

/// Pub/sub still works between two fresh, polite clients.
fn still_serves(broker: &Broker, tag: &str) {
    let addr = broker.local_addr();
    let (mut subscriber, _) = TestClient::connect(addr, &format!("GID_h@@@{tag}-sub"), true);
    subscriber.subscribe("health", QoS::AtLeastOnce);
    let (mut publisher, _) = TestClient::connect(addr, &format!("GID_h@@@{tag}-pub"), true);
    publisher.publish("health", b"ok", QoS::AtLeastOnce);
    assert_eq!(&subscriber.expect_publish().payload(), b"ok");
}

#[test]
fn random_sessions_never_stop_the_broker() {
    let broker = start(BrokerConfig::default()).unwrap();
    for seed in 0..30 {
        play(&broker, seed, 150, false);
        still_serves(&broker, &format!("plain-{seed}"));
    }
}

#[test]
fn random_sessions_never_stop_the_broker_in_apsaramq_mode() {
    // Retained messages, wills and QoS 2 on kept sessions close connections here; one in eight
    // logins has a wrong signature.
    let mode = ApsaraMqMode::new(INSTANCE).access_key(ACCESS_KEY, SECRET);
    let broker = start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .unwrap();
    for seed in 100..120 {
        play(&broker, seed, 150, true);
        let client_id = format!("GID_h@@@sub-{seed}");
        let (mut subscriber, connack) =
            TestClient::connect_with(broker.local_addr(), signed_login(&client_id));
        assert_eq!(connack.code, ConnectReturnCode::Accepted, "seed {seed}");
        // A P2P message still finds its target, without a subscription.
        let (mut publisher, connack) =
            TestClient::connect_with(broker.local_addr(), signed_login("GID_h@@@pub"));
        assert_eq!(connack.code, ConnectReturnCode::Accepted, "seed {seed}");
        publisher.publish(&format!("t/p2p/{client_id}"), b"p2p", QoS::AtLeastOnce);
        assert_eq!(
            &subscriber.expect_publish().payload(),
            b"p2p",
            "seed {seed}"
        );
    }
}

#[test]
fn random_mqtt5_and_mqtt311_sessions_never_stop_the_broker() {
    let broker = start(BrokerConfig {
        receive_maximum: 2,
        ..BrokerConfig::default()
    })
    .unwrap();
    for seed in 200..230 {
        play_with(&broker, seed, 150, false, true);
        still_serves(&broker, &format!("v5-{seed}"));
    }
}

#[test]
fn random_mqtt5_and_mqtt311_sessions_never_stop_the_broker_in_apsaramq_mode() {
    let mode = ApsaraMqMode::new(INSTANCE).access_key(ACCESS_KEY, SECRET);
    let broker = start(BrokerConfig {
        apsaramq: Some(mode),
        ..BrokerConfig::default()
    })
    .unwrap();
    for seed in 300..320 {
        play_with(&broker, seed, 150, true, true);
        let client_id = format!("GID_h@@@v5-{seed}");
        let (mut subscriber, connack) =
            TestClient::connect_with(broker.local_addr(), signed_login(&client_id));
        assert_eq!(connack.code, ConnectReturnCode::Accepted, "seed {seed}");
        let (mut publisher, _) =
            TestClient::connect_with(broker.local_addr(), signed_login("GID_h@@@v5-pub"));
        publisher.publish(&format!("t/p2p/{client_id}"), b"p2p", QoS::AtLeastOnce);
        assert_eq!(
            &subscriber.expect_publish().payload(),
            b"p2p",
            "seed {seed}"
        );
    }
}
