//! Fixtures for the sansmq benches: the same MQTT 3.1.1 packets built once for sansmq and once for
//! rumqttc's `mqttbytes::v4` codec, and the same MQTT 5 packets for sansmq and rumqttc's
//! `v5::mqttbytes` codec, so a bench can time both libraries on identical work.
//!
//! A comparison is only fair when both sides handle the same bytes. [`Pair::checked_wire`] proves
//! that before anything is timed: both libraries encode a pair to the same bytes, and each decodes
//! the other's bytes back to its own packet. The benches call it at start-up and panic on any
//! difference; the unit tests below call it too. For MQTT 5 the same holds byte for byte: both
//! libraries write PUBLISH properties in ascending identifier order (Topic Alias 0x23 before User
//! Property 0x26), so the fixtures need no looser comparison.
//!
//! ```
//! let publish = sansmq_benches::publish(16);
//! let wire = publish.into_packets().checked_wire();
//! assert_eq!(wire.len(), 2 + 2 + sansmq_benches::PUBLISH_TOPIC.len() + 2 + 16);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::num::NonZeroU16;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::QoS as RQoS;
use rumqttc::mqttbytes::v4 as r;
use rumqttc::v5::mqttbytes::QoS as R5QoS;
use rumqttc::v5::mqttbytes::v5 as r5;
use sansmq::packet::{self as s, PacketId, Protocol, QoS};
use sansmq::{MqttString, TopicFilter, TopicName};

/// Largest frame either decoder accepts in the benches: well above the biggest fixture.
pub const MAX_PACKET_SIZE: usize = 1 << 20;

/// The topic of the single-PUBLISH fixtures.
pub const PUBLISH_TOPIC: &str = "sensors/building-7/floor-3/temperature";

/// One packet in both libraries' types.
#[derive(Debug, Clone)]
pub struct Pair<S, R> {
    /// The packet as sansmq builds it.
    pub sansmq: S,
    /// The same packet as rumqttc builds it.
    pub rumqttc: R,
}

/// A packet of either library's `Packet` enum.
pub type PacketPair = Pair<s::Packet, r::Packet>;

/// An MQTT 5 packet of either library's `Packet` enum.
pub type V5PacketPair = Pair<s::Packet, r5::Packet>;

/// The Topic Alias of the MQTT 5 PUBLISH fixtures that carry one.
pub const TOPIC_ALIAS: u16 = 7;

/// The User Properties of [`V5Properties::TopicAliasAndUserProperties`]: a trace id, a unit and a
/// device, as a telemetry publisher might attach them.
pub const USER_PROPERTIES: [(&str, &str); 3] = [
    ("trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("unit", "celsius"),
    ("device", "building-7-floor-3-0042"),
];

/// The properties of an MQTT 5 PUBLISH fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V5Properties {
    /// An empty property section (one zero byte).
    None,
    /// A Topic Alias ([`TOPIC_ALIAS`]) beside the full topic, as the PUBLISH that sets the alias
    /// carries it.
    TopicAlias,
    /// The Topic Alias and the three [`USER_PROPERTIES`].
    TopicAliasAndUserProperties,
}

/// A PUBLISH at QoS 1 (packet id 42) to [`PUBLISH_TOPIC`] carrying `payload_len` bytes.
pub fn publish(payload_len: usize) -> Pair<s::Publish, r::Publish> {
    publish_with(
        PUBLISH_TOPIC,
        QoS::AtLeastOnce,
        42,
        payload(payload_len),
        false,
        false,
    )
}

/// A CONNECT as a device would send it: client id, keep-alive, user name and password, and a
/// retained QoS 1 will.
pub fn connect() -> Pair<s::Connect, r::Connect> {
    const CLIENT_ID: &str = "GID_sensors@@@building-7-floor-3-0042";
    const USERNAME: &str = "Signature|LTAI5tExampleAccessKey|mqtt-cn-0pp1ldu8o01";
    const PASSWORD: &str = "f2dPTr6dXxpMPQxzwQGqmu7oLz8=";
    const WILL_TOPIC: &str = "devices/building-7-floor-3-0042/status";
    const WILL_PAYLOAD: &[u8] = b"{\"online\":false}";
    const KEEP_ALIVE: u16 = 60;

    let mut sansmq = s::Connect::new(string(CLIENT_ID));
    sansmq.keep_alive = KEEP_ALIVE;
    sansmq.username = Some(string(USERNAME));
    sansmq.password = Some(s::Password::from(PASSWORD));
    sansmq.will = Some(s::LastWill {
        topic: topic(WILL_TOPIC),
        payload: Bytes::from_static(WILL_PAYLOAD),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    });

    let mut rumqttc = r::Connect::new(CLIENT_ID);
    rumqttc.keep_alive = KEEP_ALIVE;
    rumqttc.set_login(USERNAME, PASSWORD);
    rumqttc.last_will = Some(r::LastWill::new(
        WILL_TOPIC,
        WILL_PAYLOAD,
        RQoS::AtLeastOnce,
        true,
    ));
    Pair { sansmq, rumqttc }
}

/// A SUBSCRIBE (packet id 7) to ten filters of mixed QoS, five of them with `+` or `#`.
pub fn subscribe() -> Pair<s::Subscribe, r::Subscribe> {
    const FILTERS: [(&str, u8); 10] = [
        ("sensors/building-7/+/temperature", 1),
        ("sensors/building-7/floor-3/#", 0),
        ("alerts/#", 2),
        ("devices/building-7-floor-3-0042/cmd", 1),
        ("config/+/+/threshold", 1),
        ("sensors/+/floor-1/humidity", 0),
        ("firmware/sensor-v2/update", 2),
        ("devices/building-7-floor-3-0042/inbox", 1),
        ("time/sync", 0),
        ("clients/+/status", 0),
    ];
    subscribe_with(7, &FILTERS)
}

impl Pair<s::Publish, r::Publish> {
    /// The pair as `Packet` enums.
    pub fn into_packets(self) -> PacketPair {
        Pair {
            sansmq: s::Packet::Publish(self.sansmq),
            rumqttc: r::Packet::Publish(self.rumqttc),
        }
    }
}

/// An MQTT 5 PUBLISH at QoS 1 (packet id 42) to [`PUBLISH_TOPIC`] carrying `payload_len` bytes and
/// `properties`.
///
/// The topic stays in the frames with a Topic Alias: sansmq's API builds only PUBLISH packets with
/// a topic (an empty one comes only from decoding), and it keeps the frames of the three property
/// cases apart by their properties alone.
pub fn publish_v5(payload_len: usize, properties: V5Properties) -> Pair<s::Publish, r5::Publish> {
    let mut sansmq = s::Publish::new(topic(PUBLISH_TOPIC), payload(payload_len));
    sansmq.qos = QoS::AtLeastOnce;
    sansmq.packet_id = PacketId::new(42);

    let mut rumqttc = r5::Publish::new(
        PUBLISH_TOPIC,
        R5QoS::AtLeastOnce,
        payload(payload_len),
        None,
    );
    rumqttc.pkid = 42;

    if properties != V5Properties::None {
        let ours = sansmq.properties_mut();
        ours.topic_alias = NonZeroU16::new(TOPIC_ALIAS);
        let mut theirs = r5::PublishProperties {
            topic_alias: Some(TOPIC_ALIAS),
            ..Default::default()
        };
        if properties == V5Properties::TopicAliasAndUserProperties {
            for (name, value) in USER_PROPERTIES {
                ours.push_user_property(string(name), string(value));
                theirs
                    .user_properties
                    .push((name.to_owned(), value.to_owned()));
            }
        }
        rumqttc.properties = Some(theirs);
    }
    Pair { sansmq, rumqttc }
}

impl Pair<s::Publish, r5::Publish> {
    /// The pair as `Packet` enums.
    pub fn into_packets(self) -> V5PacketPair {
        Pair {
            sansmq: s::Packet::Publish(self.sansmq),
            rumqttc: r5::Packet::Publish(self.rumqttc),
        }
    }
}

impl Pair<s::Connect, r::Connect> {
    /// The pair as `Packet` enums.
    pub fn into_packets(self) -> PacketPair {
        Pair {
            sansmq: s::Packet::Connect(Box::new(self.sansmq)),
            rumqttc: r::Packet::Connect(self.rumqttc),
        }
    }
}

impl Pair<s::Subscribe, r::Subscribe> {
    /// The pair as `Packet` enums.
    pub fn into_packets(self) -> PacketPair {
        Pair {
            sansmq: s::Packet::Subscribe(self.sansmq),
            rumqttc: r::Packet::Subscribe(self.rumqttc),
        }
    }
}

impl PacketPair {
    /// The packet's bytes, after checking that both libraries encode it to the same bytes and that
    /// each decodes the other's bytes, whole, back to its own packet.
    ///
    /// # Panics
    ///
    /// On any difference, naming the packet.
    pub fn checked_wire(&self) -> Bytes {
        let mut ours = BytesMut::new();
        self.sansmq
            .encode(&mut ours)
            .unwrap_or_else(|e| panic!("sansmq cannot encode {:?}: {e}", self.sansmq));
        assert_eq!(ours.len(), self.sansmq.encoded_len(), "{:?}", self.sansmq);

        let mut theirs = BytesMut::new();
        self.rumqttc
            .write(&mut theirs, MAX_PACKET_SIZE)
            .unwrap_or_else(|e| panic!("rumqttc cannot encode {:?}: {e}", self.rumqttc));
        assert_eq!(
            ours, theirs,
            "sansmq and rumqttc encode {:?} differently",
            self.sansmq
        );

        let mut buf = theirs;
        let decoded = s::Packet::read(&mut buf, MAX_PACKET_SIZE);
        assert_eq!(
            decoded,
            Ok(Some(self.sansmq.clone())),
            "sansmq decoding rumqttc's bytes"
        );
        assert!(buf.is_empty(), "sansmq left {} bytes", buf.len());

        let wire = ours.freeze();
        let mut buf = BytesMut::from(&wire[..]);
        let decoded = r::Packet::read(&mut buf, MAX_PACKET_SIZE)
            .unwrap_or_else(|e| panic!("rumqttc cannot decode {:?}: {e}", self.sansmq));
        assert_eq!(decoded, self.rumqttc, "rumqttc decoding sansmq's bytes");
        assert!(buf.is_empty(), "rumqttc left {} bytes", buf.len());
        wire
    }
}

impl V5PacketPair {
    /// The packet's MQTT 5 bytes, after the checks of [`PacketPair::checked_wire`]: both libraries
    /// encode it to the same bytes (sansmq with `encode_in(Protocol::Mqtt5, ..)`), and each
    /// decodes the other's bytes, whole, back to its own packet (sansmq with
    /// `Packet::read_in(Protocol::Mqtt5, ..)`).
    ///
    /// # Panics
    ///
    /// On any difference, naming the packet.
    pub fn checked_wire(&self) -> Bytes {
        let mut ours = BytesMut::new();
        self.sansmq
            .encode_in(Protocol::Mqtt5, &mut ours)
            .unwrap_or_else(|e| panic!("sansmq cannot encode {:?} as MQTT 5: {e}", self.sansmq));
        assert_eq!(
            ours.len(),
            self.sansmq.encoded_len_in(Protocol::Mqtt5),
            "{:?}",
            self.sansmq
        );

        let mut theirs = BytesMut::new();
        self.rumqttc
            .write(&mut theirs, Some(V5_MAX_PACKET_SIZE))
            .unwrap_or_else(|e| panic!("rumqttc cannot encode {:?}: {e}", self.rumqttc));
        assert_eq!(
            ours, theirs,
            "sansmq and rumqttc encode {:?} differently as MQTT 5",
            self.sansmq
        );

        let mut buf = theirs;
        let decoded = s::Packet::read_in(Protocol::Mqtt5, &mut buf, MAX_PACKET_SIZE);
        assert_eq!(
            decoded,
            Ok(Some(self.sansmq.clone())),
            "sansmq decoding rumqttc's MQTT 5 bytes"
        );
        assert!(buf.is_empty(), "sansmq left {} bytes", buf.len());

        let wire = ours.freeze();
        let mut buf = BytesMut::from(&wire[..]);
        let decoded = r5::Packet::read(&mut buf, Some(V5_MAX_PACKET_SIZE))
            .unwrap_or_else(|e| panic!("rumqttc cannot decode {:?}: {e}", self.sansmq));
        assert_eq!(
            decoded, self.rumqttc,
            "rumqttc decoding sansmq's MQTT 5 bytes"
        );
        assert!(buf.is_empty(), "rumqttc left {} bytes", buf.len());
        wire
    }
}

/// [`MAX_PACKET_SIZE`] as rumqttc's MQTT 5 codec takes it.
pub const V5_MAX_PACKET_SIZE: u32 = MAX_PACKET_SIZE as u32;

/// The bytes of `packets` back to back, each checked with [`Pair::checked_wire`].
pub fn checked_stream(packets: &[PacketPair]) -> Bytes {
    let mut stream = BytesMut::new();
    for packet in packets {
        stream.extend_from_slice(&packet.checked_wire());
    }
    stream.freeze()
}

/// `count` packets as a client session might see them, drawn from a fixed seed: about two thirds
/// PUBLISH (QoS 0, 1 and 2, payloads of 0 B to 16 KiB, some retained or DUP), then the QoS 1 and 2
/// acknowledgements, PINGREQ/PINGRESP, and a few SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.
pub fn mixed_stream(count: usize) -> Vec<PacketPair> {
    const TOPICS: [&str; 6] = [
        PUBLISH_TOPIC,
        "sensors/building-7/floor-1/humidity",
        "devices/building-7-floor-3-0042/cmd",
        "alerts/fire",
        "telemetry/fleet/truck-0815/gps",
        "a/b",
    ];
    const SIZES: [usize; 12] = [0, 16, 16, 16, 32, 64, 64, 128, 256, 1024, 1024, 4096];
    const FILTERS: [(&str, u8); 4] = [
        ("sensors/+/+/temperature", 1),
        ("alerts/#", 2),
        ("devices/building-7-floor-3-0042/#", 1),
        ("time/sync", 0),
    ];

    let mut rng = XorShift(0x5EED_0F5A_4531_1A5E_u64);
    let mut next_id: u16 = 0;
    let mut id = move || {
        next_id = next_id.checked_add(1).unwrap_or(1);
        next_id
    };
    (0..count)
        .map(|_| {
            let roll = rng.below(100);
            match roll {
                0..=64 => {
                    let qos = match rng.below(5) {
                        0 | 1 => QoS::AtMostOnce,
                        2 | 3 => QoS::AtLeastOnce,
                        _ => QoS::ExactlyOnce,
                    };
                    let size = if rng.below(50) == 0 {
                        16 * 1024
                    } else {
                        pick(&mut rng, &SIZES)
                    };
                    let packet_id = if qos == QoS::AtMostOnce { 0 } else { id() };
                    let dup = qos != QoS::AtMostOnce && rng.below(10) == 0;
                    let retain = rng.below(20) == 0;
                    let topic = pick(&mut rng, &TOPICS);
                    publish_with(topic, qos, packet_id, payload(size), dup, retain).into_packets()
                }
                65..=74 => ack(
                    id(),
                    |i| s::Packet::PubAck(s::PubAck::new(i)),
                    |i| r::Packet::PubAck(r::PubAck::new(i)),
                ),
                75..=79 => ack(
                    id(),
                    |i| s::Packet::PubRec(s::PubRec::new(i)),
                    |i| r::Packet::PubRec(r::PubRec::new(i)),
                ),
                80..=84 => ack(
                    id(),
                    |i| s::Packet::PubRel(s::PubRel::new(i)),
                    |i| r::Packet::PubRel(r::PubRel::new(i)),
                ),
                85..=89 => ack(
                    id(),
                    |i| s::Packet::PubComp(s::PubComp::new(i)),
                    |i| r::Packet::PubComp(r::PubComp::new(i)),
                ),
                90..=92 => Pair {
                    sansmq: s::Packet::PingReq,
                    rumqttc: r::Packet::PingReq,
                },
                93..=94 => Pair {
                    sansmq: s::Packet::PingResp,
                    rumqttc: r::Packet::PingResp,
                },
                95..=96 => {
                    let n = 1 + rng.below(FILTERS.len() as u64) as usize;
                    subscribe_with(id(), &FILTERS[..n]).into_packets()
                }
                97 => suback(id()),
                98 => unsubscribe(id(), &["alerts/#", "time/sync"]),
                _ => ack(
                    id(),
                    |i| s::Packet::UnsubAck(s::UnsubAck::new(i)),
                    |i| r::Packet::UnsubAck(r::UnsubAck::new(i)),
                ),
            }
        })
        .collect()
}

fn publish_with(
    topic_name: &str,
    qos: QoS,
    packet_id: u16,
    payload: Bytes,
    dup: bool,
    retain: bool,
) -> Pair<s::Publish, r::Publish> {
    let mut sansmq = s::Publish::new(topic(topic_name), payload.clone());
    sansmq.qos = qos;
    sansmq.packet_id = PacketId::new(packet_id);
    sansmq.dup = dup;
    sansmq.retain = retain;

    let mut rumqttc = r::Publish::from_bytes(topic_name, rqos(qos), payload);
    rumqttc.pkid = packet_id;
    rumqttc.dup = dup;
    rumqttc.retain = retain;
    Pair { sansmq, rumqttc }
}

fn subscribe_with(packet_id: u16, filters: &[(&str, u8)]) -> Pair<s::Subscribe, r::Subscribe> {
    let sansmq = s::Subscribe::with_filters(
        nonzero(packet_id),
        filters
            .iter()
            .map(|&(f, q)| s::SubscribeFilter::new(filter(f), qos(q)))
            .collect(),
    );
    let mut rumqttc = r::Subscribe::new_many(
        filters
            .iter()
            .map(|&(f, q)| r::SubscribeFilter::new(f.to_owned(), rqos(qos(q)))),
    );
    rumqttc.pkid = packet_id;
    Pair { sansmq, rumqttc }
}

fn ack(
    packet_id: u16,
    sansmq: impl FnOnce(PacketId) -> s::Packet,
    rumqttc: impl FnOnce(u16) -> r::Packet,
) -> PacketPair {
    Pair {
        sansmq: sansmq(nonzero(packet_id)),
        rumqttc: rumqttc(packet_id),
    }
}

fn suback(packet_id: u16) -> PacketPair {
    use r::SubscribeReasonCode as R;
    use s::SubscribeReturnCode as S;
    Pair {
        sansmq: s::Packet::SubAck(s::SubAck::new(
            nonzero(packet_id),
            vec![
                S::Success(QoS::AtLeastOnce),
                S::Failure,
                S::Success(QoS::ExactlyOnce),
            ],
        )),
        rumqttc: r::Packet::SubAck(r::SubAck::new(
            packet_id,
            vec![
                R::Success(RQoS::AtLeastOnce),
                R::Failure,
                R::Success(RQoS::ExactlyOnce),
            ],
        )),
    }
}

fn unsubscribe(packet_id: u16, filters: &[&str]) -> PacketPair {
    Pair {
        sansmq: s::Packet::Unsubscribe(s::Unsubscribe::new(
            nonzero(packet_id),
            filters.iter().map(|f| filter(f)).collect(),
        )),
        rumqttc: r::Packet::Unsubscribe(r::Unsubscribe {
            pkid: packet_id,
            topics: filters.iter().map(|f| (*f).to_owned()).collect(),
        }),
    }
}

/// `len` bytes that are not all alike.
fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn string(s: &str) -> MqttString {
    MqttString::try_from(s).unwrap_or_else(|e| panic!("fixture string {s:?}: {e}"))
}

fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap_or_else(|e| panic!("fixture topic {s:?}: {e}"))
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap_or_else(|e| panic!("fixture filter {s:?}: {e}"))
}

fn nonzero(id: u16) -> PacketId {
    PacketId::new(id).unwrap_or_else(|| panic!("fixture packet id 0"))
}

fn qos(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or_else(|| panic!("fixture QoS {q}"))
}

fn rqos(q: QoS) -> RQoS {
    match q {
        QoS::AtMostOnce => RQoS::AtMostOnce,
        QoS::AtLeastOnce => RQoS::AtLeastOnce,
        QoS::ExactlyOnce => RQoS::ExactlyOnce,
    }
}

fn pick<T: Copy>(rng: &mut XorShift, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// xorshift64*: a fixed stream of numbers, so every run and both libraries see the same packets.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_fixtures_are_interchangeable() {
        for len in [0, 16, 1024, 64 * 1024] {
            publish(len).into_packets().checked_wire();
        }
        connect().into_packets().checked_wire();
        subscribe().into_packets().checked_wire();
    }

    #[test]
    fn v5_publish_fixtures_are_interchangeable() {
        for len in [0, 16, 1024] {
            let plain = publish_v5(len, V5Properties::None)
                .into_packets()
                .checked_wire();
            // MQTT 5 adds only the Property Length (one zero byte) to the 3.1.1 frame.
            assert_eq!(
                plain.len(),
                publish(len).into_packets().checked_wire().len() + 1
            );

            let alias = publish_v5(len, V5Properties::TopicAlias)
                .into_packets()
                .checked_wire();
            assert_eq!(
                alias.len(),
                plain.len() + 3,
                "Topic Alias: id and two bytes"
            );

            let users = publish_v5(len, V5Properties::TopicAliasAndUserProperties)
                .into_packets()
                .checked_wire();
            let user_len: usize = USER_PROPERTIES
                .iter()
                .map(|(name, value)| 1 + 2 + name.len() + 2 + value.len())
                .sum();
            // The Remaining Length may take one byte more.
            let grown = users.len() - alias.len();
            assert!(
                (user_len..=user_len + 1).contains(&grown),
                "{grown} bytes more"
            );
        }
    }

    #[test]
    fn mixed_stream_is_interchangeable_and_mostly_publish() {
        let packets = mixed_stream(1000);
        let wire = checked_stream(&packets);
        let publishes = packets
            .iter()
            .filter(|p| matches!(p.sansmq, s::Packet::Publish(_)))
            .count();
        assert!((550..800).contains(&publishes), "{publishes} PUBLISH");
        assert!(wire.len() > 100_000, "{} bytes", wire.len());
    }
}
