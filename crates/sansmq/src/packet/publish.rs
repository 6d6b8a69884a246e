//! PUBLISH (MQTT 3.3): an application message.

use std::fmt;
use std::num::NonZeroU16;

use bytes::{Buf as _, BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, NO_PROPERTIES};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketId, PacketType, Properties, PropertyContext,
    Protocol, QoS, impl_encode, v5_only,
};
use super::{frame, wire};
use crate::topic::{self, TopicName};

/// An application message, sent by either side.
///
/// A decoded PUBLISH keeps its frame as one buffer, with topic and payload as ranges of it:
/// decoding shares the received bytes once and copies nothing. [`topic`](Self::topic) and
/// [`payload`](Self::payload) borrow them; [`topic_name`](Self::topic_name),
/// [`payload_bytes`](Self::payload_bytes) and [`into_parts`](Self::into_parts) hand out shared
/// handles. Two messages are equal when their flags, packet id, topic, properties and payload
/// are, however they are stored.
///
/// In MQTT 5 a PUBLISH also carries [`properties`](Self::properties) (Message Expiry Interval,
/// Topic Alias, Response Topic, Correlation Data, User Properties, Subscription Identifiers, …),
/// decoded as views into the frame. Its topic may be empty when a Topic Alias stands for it; the
/// session replaces the alias by the topic before the message reaches the application.
///
/// ```
/// use bytes::Bytes;
/// use sansmq::TopicName;
/// use sansmq::packet::{PacketId, Publish, QoS};
///
/// let mut publish = Publish::new(TopicName::try_from("a/b").unwrap(), Bytes::from_static(b"hi"));
/// publish.qos = QoS::AtLeastOnce;
/// publish.packet_id = PacketId::new(7);
/// assert_eq!(publish.topic(), "a/b");
/// assert_eq!(publish.payload(), b"hi");
/// ```
#[derive(Clone)]
pub struct Publish {
    /// Set when this may be a re-delivery of an earlier attempt (QoS 1 and 2 only; MQTT-3.3.1-2).
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Whether the server should keep the message for future subscribers.
    pub retain: bool,
    /// Present exactly when `qos` is 1 or 2 (MQTT-2.3.1-5).
    pub packet_id: Option<PacketId>,
    content: Content,
}

/// Where a PUBLISH's topic, payload and properties live.
///
/// The properties live in here rather than in a field of their own so that a `Publish`, and with
/// it a [`Packet`](super::Packet), stays 72 bytes: eight more cost MQTT 3.1.1 decoding about 15%, as
/// every decoded packet is moved and dropped through that size. Two variants, not three: the tag
/// then fits in the one spare value `Parts` has (a null pointer in a `Bytes`), so the enum is no
/// larger than `Parts`.
#[derive(Clone)]
enum Content {
    /// Built by the application without properties: a topic and a payload of their own.
    Parts { topic: TopicName, payload: Bytes },
    /// Decoded, or built with properties.
    Held(Held),
}

/// A message that is more than bare application parts.
#[derive(Clone)]
enum Held {
    /// Decoded: the frame's body, from the topic's length prefix on. The topic (already checked)
    /// is `body[2..topic_end]` and the payload `body[payload_start..]`; a frame is at most
    /// 268,435,460 bytes, so both fit in a `u32`. MQTT 5 properties are decoded and boxed.
    Frame {
        body: Bytes,
        topic_end: u32,
        payload_start: u32,
        properties: HeldProperties,
    },
    /// Built by the application with properties, boxed together: such a message allocates once
    /// for them, as a decoded one does.
    Built(Box<Built>),
}

/// An application-built message that has properties.
#[derive(Clone)]
struct Built {
    topic: TopicName,
    payload: Bytes,
    properties: Properties,
}

impl Content {
    /// Topic and payload of the application's own, with `properties`.
    fn built(topic: TopicName, payload: Bytes, properties: Properties) -> Self {
        if properties.is_empty() {
            Self::Parts { topic, payload }
        } else {
            Self::Held(Held::Built(Box::new(Built {
                topic,
                payload,
                properties,
            })))
        }
    }

    /// The properties, `None` when the message has none (a cheaper test than `is_empty`).
    #[inline]
    fn properties(&self) -> Option<&Properties> {
        match self {
            Self::Parts { .. } => None,
            Self::Held(Held::Built(built)) => Some(&built.properties),
            Self::Held(Held::Frame { properties, .. }) => properties.as_boxed(),
        }
    }

    /// The properties, to change: application-built parts move into a box with an empty set.
    fn properties_mut(&mut self) -> &mut Properties {
        match self {
            Self::Held(Held::Built(built)) => &mut built.properties,
            Self::Held(Held::Frame { properties, .. }) => properties.get_mut(),
            Self::Parts { topic, payload } => {
                // The empty name is a placeholder, replaced at once.
                let topic = std::mem::replace(topic, TopicName::from_checked(Bytes::new()));
                let payload = std::mem::take(payload);
                *self = Self::Held(Held::Built(Box::new(Built {
                    topic,
                    payload,
                    properties: Properties::new(),
                })));
                self.properties_mut()
            }
        }
    }
}

impl Publish {
    /// A QoS 0 message, not retained.
    pub fn new(topic: TopicName, payload: Bytes) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            packet_id: None,
            content: Content::Parts { topic, payload },
        }
    }

    /// Where the message is published.
    pub fn topic(&self) -> &str {
        match &self.content {
            Content::Parts { topic, .. } => topic.as_str(),
            Content::Held(Held::Built(built)) => built.topic.as_str(),
            // Checked as a topic name when decoded, so this cannot fail; `unsafe` is forbidden in
            // this crate, so the UTF-8 check is repeated rather than skipped, as `MqttString` does.
            Content::Held(Held::Frame { .. }) => {
                std::str::from_utf8(self.topic_bytes()).unwrap_or_default()
            }
        }
    }

    /// The topic's encoded bytes (no length prefix); cheaper than `topic().as_bytes()`, which
    /// checks the UTF-8 again.
    pub fn topic_bytes(&self) -> &[u8] {
        match &self.content {
            Content::Parts { topic, .. } => topic.as_bytes(),
            Content::Held(Held::Built(built)) => built.topic.as_bytes(),
            Content::Held(Held::Frame {
                body, topic_end, ..
            }) => body.get(2..*topic_end as usize).unwrap_or_default(),
        }
    }

    /// The topic as a [`TopicName`] that shares the received bytes.
    pub fn topic_name(&self) -> TopicName {
        match &self.content {
            Content::Parts { topic, .. } => topic.clone(),
            Content::Held(Held::Built(built)) => built.topic.clone(),
            Content::Held(Held::Frame {
                body, topic_end, ..
            }) => TopicName::from_checked(body.slice(2..*topic_end as usize)),
        }
    }

    /// The application message; any bytes.
    pub fn payload(&self) -> &[u8] {
        match &self.content {
            Content::Parts { payload, .. } => payload,
            Content::Held(Held::Built(built)) => &built.payload,
            Content::Held(Held::Frame {
                body,
                payload_start,
                ..
            }) => body.get(*payload_start as usize..).unwrap_or_default(),
        }
    }

    /// The payload as [`Bytes`] that share the received bytes.
    pub fn payload_bytes(&self) -> Bytes {
        match &self.content {
            Content::Parts { payload, .. } => payload.clone(),
            Content::Held(Held::Built(built)) => built.payload.clone(),
            Content::Held(Held::Frame {
                body,
                payload_start,
                ..
            }) => body.slice(*payload_start as usize..),
        }
    }

    /// Topic and payload, sharing the received bytes.
    pub fn into_parts(self) -> (TopicName, Bytes) {
        match self.content {
            Content::Parts { topic, payload } => (topic, payload),
            Content::Held(Held::Built(built)) => (built.topic, built.payload),
            Content::Held(Held::Frame {
                mut body,
                topic_end,
                payload_start,
                ..
            }) => {
                // The body becomes the topic: one share of the frame for the payload, where two
                // slices and dropping the body would take two and release one.
                let payload = body.split_off(payload_start as usize);
                body.truncate(topic_end as usize);
                body.advance(2);
                (TopicName::from_checked(body), payload)
            }
        }
    }

    /// Replaces the topic.
    pub fn set_topic(&mut self, topic: TopicName) {
        match &mut self.content {
            Content::Parts { topic: own, .. } => *own = topic,
            Content::Held(Held::Built(built)) => built.topic = topic,
            Content::Held(Held::Frame { .. }) => {
                let payload = self.payload_bytes();
                let properties = self.take_properties();
                self.content = Content::built(topic, payload, properties);
            }
        }
    }

    /// Replaces the payload.
    pub fn set_payload(&mut self, payload: Bytes) {
        match &mut self.content {
            Content::Parts { payload: own, .. } => *own = payload,
            Content::Held(Held::Built(built)) => built.payload = payload,
            Content::Held(Held::Frame { .. }) => {
                let topic = self.topic_name();
                let properties = self.take_properties();
                self.content = Content::built(topic, payload, properties);
            }
        }
    }

    /// The message's MQTT 5 properties; empty for MQTT 3.1.1.
    #[inline]
    pub fn properties(&self) -> &Properties {
        self.content.properties().unwrap_or(&NO_PROPERTIES)
    }

    /// The properties, to change; an MQTT 3.1.1 message must leave them empty.
    pub fn properties_mut(&mut self) -> &mut Properties {
        self.content.properties_mut()
    }

    /// Replaces the properties.
    pub fn set_properties(&mut self, properties: Properties) {
        match &mut self.content {
            Content::Held(Held::Frame {
                properties: own, ..
            }) => *own = HeldProperties::new(properties),
            Content::Held(Held::Built(built)) if !properties.is_empty() => {
                built.properties = properties
            }
            Content::Parts { .. } | Content::Held(Held::Built(_)) => {
                let (topic, payload) = (self.topic_name(), self.payload_bytes());
                self.content = Content::built(topic, payload, properties);
            }
        }
    }

    /// The message with `properties`.
    #[must_use]
    pub fn with_properties(mut self, properties: Properties) -> Self {
        self.set_properties(properties);
        self
    }

    /// Takes the properties out, boxed, leaving none; `None` when there are none (every MQTT 3.1.1
    /// message). Cheaper than [`take_properties`](Self::take_properties) for a received message:
    /// the set it holds stays in its box, and no empty set is built.
    pub fn take_boxed_properties(&mut self) -> Option<Box<Properties>> {
        match &mut self.content {
            Content::Parts { .. } => None,
            Content::Held(Held::Frame { properties, .. }) => properties.take_boxed(),
            Content::Held(Held::Built(_)) => Some(self.take_properties())
                .filter(|properties| !properties.is_empty())
                .map(Box::new),
        }
    }

    /// Takes the properties out, leaving none.
    pub fn take_properties(&mut self) -> Properties {
        match &mut self.content {
            Content::Parts { .. } => Properties::new(),
            Content::Held(Held::Frame { properties, .. }) => properties.take(),
            Content::Held(Held::Built(built)) => {
                let properties = std::mem::take(&mut built.properties);
                let (topic, payload) = (self.topic_name(), self.payload_bytes());
                self.content = Content::Parts { topic, payload };
                properties
            }
        }
    }

    /// The context a PUBLISH's properties are checked in.
    pub const PROPERTY_CONTEXT: PropertyContext = PropertyContext::Publish;

    /// Parses a PUBLISH body, taking it by value and keeping it whole: the topic and the payload
    /// are ranges of it, so decoding takes no reference count of its own.
    #[inline]
    pub(crate) fn decode(protocol: Protocol, flags: u8, body: Bytes) -> Result<Self, DecodeError> {
        Self::decode_into(protocol, flags, body, |publish| publish)
    }

    /// [`decode`](Self::decode), handing the message to `wrap` as it is built: a read loop wraps
    /// it in `Some(Packet::Publish(..))`, and building it in place spares a copy whose loads
    /// straddle the separate stores of its flags and packet identifier (a store-forwarding stall
    /// that cost the engine's receive path about 7%).
    #[inline(always)]
    pub(crate) fn decode_into<T>(
        protocol: Protocol,
        flags: u8,
        body: Bytes,
        wrap: impl FnOnce(Self) -> T,
    ) -> Result<T, DecodeError> {
        // Framing already refused QoS 3 and DUP at QoS 0 (MQTT-3.3.1-2, MQTT-3.3.1-4).
        let qos = QoS::from_u8((flags >> 1) & 0b11).unwrap_or(QoS::AtMostOnce);
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        let too_short = || DecodeError::BodyTooShort {
            packet_type: PacketType::Publish,
            remaining_length: body.len(),
        };
        let Some((&len, rest)) = body.split_first_chunk::<2>() else {
            return Err(too_short());
        };
        let topic_len = usize::from(u16::from_be_bytes(len));
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        if rest.len() < topic_len + id_len {
            return Err(too_short());
        }
        let Some((topic, rest)) = rest.split_at_checked(topic_len) else {
            return Err(too_short());
        };
        // MQTT 5: an empty topic stands for a Topic Alias, checked with the properties below.
        if !(protocol.is_v5() && topic.is_empty()) {
            topic::check_topic_name(topic).map_err(DecodeError::InvalidTopicName)?;
        }
        // At most 65,537.
        let topic_end = 2 + u32::from(u16::from_be_bytes(len));
        let (packet_id, payload_start) = if qos == QoS::AtMostOnce {
            (None, topic_end)
        } else {
            // Two bytes are there: checked with the topic length above.
            let Some(&id) = rest.first_chunk::<2>() else {
                return Err(too_short());
            };
            // Not `ok_or`: the error built up front has drop glue (some variants hold `Bytes`),
            // and the compiler called it out of line on every decoded message.
            let Some(id) = PacketId::new(u16::from_be_bytes(id)) else {
                return Err(DecodeError::ZeroPacketId {
                    packet_type: PacketType::Publish,
                });
            };
            (Some(id), topic_end + 2)
        };
        if protocol.is_v5() {
            return Self::decode_v5(dup, qos, retain, packet_id, body, topic_end, payload_start)
                .map(wrap);
        }
        Ok(wrap(Self {
            dup,
            qos,
            retain,
            packet_id,
            content: Content::Held(Held::Frame {
                body,
                topic_end,
                payload_start,
                properties: HeldProperties::EMPTY,
            }),
        }))
    }

    /// The rest of an MQTT 5 PUBLISH: the properties between the packet identifier and the
    /// payload. Kept out of line so the MQTT 3.1.1 path stays small.
    #[inline(never)]
    fn decode_v5(
        dup: bool,
        qos: QoS,
        retain: bool,
        packet_id: Option<PacketId>,
        body: Bytes,
        topic_end: u32,
        properties_start: u32,
    ) -> Result<Self, DecodeError> {
        let section = body.get(properties_start as usize..).unwrap_or_default();
        let (payload, properties) = wire::properties_at(&body, PropertyContext::Publish, section)?;
        if topic_end == 2 && properties.get().topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias); // MQTT 5.0 section 3.3.2.1
        }
        // Framing bounds a body to 268,435,455 bytes; a longer one handed to `decode_in` is
        // refused as the frame it would be.
        let payload_start =
            u32::try_from(body.len() - payload.len()).map_err(|_| DecodeError::PacketTooLarge {
                size: frame::frame_len(body.len()),
                max: frame::frame_len(frame::MAX_REMAINING_LENGTH),
            })?;
        Ok(Self {
            dup,
            qos,
            retain,
            packet_id,
            content: Content::Held(Held::Frame {
                body,
                topic_end,
                payload_start,
                properties,
            }),
        })
    }
}

impl PartialEq for Publish {
    fn eq(&self, other: &Self) -> bool {
        self.dup == other.dup
            && self.qos == other.qos
            && self.retain == other.retain
            && self.packet_id == other.packet_id
            && self.topic_bytes() == other.topic_bytes()
            && self.payload() == other.payload()
            && self.properties() == other.properties()
    }
}

impl Eq for Publish {}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic())
            .field("packet_id", &self.packet_id)
            .field("properties", self.properties())
            .field("payload", &self.payload_bytes())
            .finish()
    }
}

impl EncodeBody for Publish {
    const PACKET_TYPE: PacketType = PacketType::Publish;

    #[inline]
    fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    #[inline]
    fn remaining_len(&self, protocol: Protocol) -> usize {
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        let (topic, payload) = self.topic_and_payload();
        let len = wire::prefixed_len(topic)
            .saturating_add(id_len)
            .saturating_add(payload.len());
        if protocol.is_v5() {
            len.saturating_add(self.content.properties().map_or(1, Properties::encoded_len))
        } else {
            len
        }
    }

    #[inline]
    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if (self.qos == QoS::AtMostOnce) != self.packet_id.is_none() {
            return Err(EncodeError::PacketIdMismatch { qos: self.qos }); // MQTT-2.3.1-5
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::DupAtQos0); // MQTT-3.3.1-2
        }
        if protocol.is_v5() {
            self.validate_v5()
        } else if let Content::Held(held) = &self.content {
            // Application parts have neither properties nor an empty topic: one test for both.
            Self::validate_held_v3(protocol, held)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        let (topic, payload) = self.topic_and_payload();
        wire::put_prefixed(buf, topic);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if protocol.is_v5() {
            match self.content.properties() {
                None => buf.put_u8(0),
                Some(properties) => properties.write(buf),
            }
        }
        buf.put_slice(payload);
    }
}

impl Publish {
    /// [`encode`](Self::encode) as the client's send path wants it: out of line, so the caller
    /// stays small, and compiled for MQTT 3.1.1 alone, so none of the MQTT 5 branches remain.
    #[inline(never)]
    pub(crate) fn encode_mqtt311(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        super::encode_packet(self, Protocol::Mqtt311, buf)
    }

    /// The topic's encoded bytes and the payload, with one look at how the message is held.
    #[inline]
    fn topic_and_payload(&self) -> (&[u8], &[u8]) {
        match &self.content {
            Content::Parts { topic, payload } => (topic.as_bytes(), payload),
            Content::Held(Held::Built(built)) => (built.topic.as_bytes(), &built.payload),
            Content::Held(Held::Frame {
                body,
                topic_end,
                payload_start,
                ..
            }) => (
                body.get(2..*topic_end as usize).unwrap_or_default(),
                body.get(*payload_start as usize..).unwrap_or_default(),
            ),
        }
    }

    /// What MQTT 3.1.1 refuses of a message held as more than application parts: properties
    /// (MQTT 5 only), and the empty topic a decoded MQTT 5 PUBLISH with a Topic Alias has.
    fn validate_held_v3(protocol: Protocol, held: &Held) -> Result<(), EncodeError> {
        let (properties, topic_is_empty) = match held {
            Held::Built(built) => (Some(&built.properties), false),
            Held::Frame {
                properties,
                topic_end,
                ..
            } => (properties.as_boxed(), *topic_end == 2),
        };
        v5_only(
            protocol,
            PacketType::Publish,
            "properties",
            properties.is_some_and(|properties| !properties.is_empty()),
        )?;
        if topic_is_empty {
            return Err(EncodeError::EmptyTopicWithoutAlias); // MQTT-4.7.3-1
        }
        Ok(())
    }

    /// Whether the topic is empty: only a decoded MQTT 5 PUBLISH whose Topic Alias stands for it
    /// (a [`TopicName`] never is).
    #[inline]
    fn topic_is_empty(&self) -> bool {
        matches!(
            self.content,
            Content::Held(Held::Frame { topic_end: 2, .. })
        )
    }

    /// Appends the message as an MQTT 5 PUBLISH that uses Topic Alias `alias`: with the topic
    /// when `with_topic` (the alias is being set, or set again), without it otherwise (the server
    /// knows the alias already). The message's own properties must not hold a Topic Alias; the
    /// alias is written ahead of them (the order of properties on the wire is free).
    ///
    /// A session assigns aliases per connection, so a message it keeps for a re-send keeps its
    /// topic and gets an alias only as it is encoded.
    pub fn encode_aliased(
        &self,
        alias: NonZeroU16,
        with_topic: bool,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        <Self as EncodeBody>::validate(self, Protocol::Mqtt5)?;
        if self.properties().topic_alias.is_some() {
            return Err(EncodeError::PropertyRepeated {
                property: crate::packet::PropertyId::TopicAlias,
                context: PropertyContext::Publish,
            });
        }
        let topic: &[u8] = if with_topic { self.topic_bytes() } else { &[] };
        let properties_len = self.properties().properties_len().saturating_add(3);
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        let remaining_len = wire::prefixed_len(topic)
            .saturating_add(id_len)
            .saturating_add(frame::var_int_len(properties_len))
            .saturating_add(properties_len)
            .saturating_add(self.payload().len());
        if remaining_len > frame::MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge {
                size: frame::frame_len(remaining_len),
                max: frame::frame_len(frame::MAX_REMAINING_LENGTH),
            });
        }
        buf.reserve(frame::frame_len(remaining_len));
        buf.put_u8(((PacketType::Publish as u8) << 4) | <Self as EncodeBody>::flags(self));
        frame::put_var_int(buf, remaining_len);
        wire::put_prefixed(buf, topic);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        frame::put_var_int(buf, properties_len);
        buf.put_u8(crate::packet::PropertyId::TopicAlias as u8);
        buf.put_u16(alias.get());
        self.properties().write_properties(buf);
        buf.put_slice(self.payload());
        Ok(())
    }

    /// The size [`encode_aliased`](Self::encode_aliased) appends.
    pub fn encoded_len_aliased(&self, with_topic: bool) -> usize {
        let topic_len = if with_topic {
            self.topic_bytes().len()
        } else {
            0
        };
        let properties_len = self.properties().properties_len().saturating_add(3);
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        frame::frame_len(
            (2 + topic_len)
                .saturating_add(id_len)
                .saturating_add(frame::var_int_len(properties_len))
                .saturating_add(properties_len)
                .saturating_add(self.payload().len()),
        )
    }

    #[inline(never)]
    fn validate_v5(&self) -> Result<(), EncodeError> {
        if self.topic_is_empty() && self.properties().topic_alias.is_none() {
            return Err(EncodeError::EmptyTopicWithoutAlias); // MQTT 5.0 section 3.3.2.1
        }
        self.content.properties().map_or(Ok(()), |properties| {
            properties.validate_in_packet(PropertyContext::Publish)
        })
    }
}

impl_encode!(Publish);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;

    #[test]
    fn a_decoded_publish_equals_the_one_encoded_and_shares_its_frame() {
        let mut sent = Publish::new(
            TopicName::try_from("a/b").unwrap(),
            Bytes::from_static(b"payload"),
        );
        sent.qos = QoS::ExactlyOnce;
        sent.packet_id = PacketId::new(9);
        sent.retain = true;
        let mut wire = BytesMut::new();
        sent.encode(&mut wire).unwrap();
        let Ok(Some(Packet::Publish(received))) = Packet::read(&mut wire, 1024) else {
            panic!("not decoded");
        };
        assert_eq!(received, sent);
        assert_eq!(received.topic(), "a/b");
        assert_eq!(received.payload(), b"payload");
        let (topic, payload) = received.clone().into_parts();
        assert_eq!(topic.as_str(), "a/b");
        assert_eq!(payload, Bytes::from_static(b"payload"));
        assert_eq!(received.topic_name(), topic);
        assert_eq!(received.payload_bytes(), payload);
        // Encoding the decoded message gives the same frame back.
        let mut again = BytesMut::new();
        received.encode(&mut again).unwrap();
        let mut expected = BytesMut::new();
        sent.encode(&mut expected).unwrap();
        assert_eq!(again, expected);
    }

    #[test]
    fn set_topic_and_payload_replace_them() {
        let mut wire = BytesMut::new();
        Publish::new(TopicName::try_from("a").unwrap(), Bytes::from_static(b"x"))
            .encode(&mut wire)
            .unwrap();
        let Ok(Some(Packet::Publish(mut publish))) = Packet::read(&mut wire, 1024) else {
            panic!("not decoded");
        };
        publish.set_payload(Bytes::from_static(b"yz"));
        assert_eq!((publish.topic(), publish.payload()), ("a", &b"yz"[..]));
        publish.set_topic(TopicName::try_from("c/d").unwrap());
        assert_eq!((publish.topic(), publish.payload()), ("c/d", &b"yz"[..]));
    }

    #[test]
    fn properties_stay_with_the_message_however_it_is_stored() {
        use crate::string::MqttString;
        let topic = TopicName::try_from("a").unwrap();
        let mut built = Publish::new(topic.clone(), Bytes::from_static(b"x"));
        assert!(built.properties().is_empty());
        built.properties_mut().message_expiry_interval = Some(5);
        built.properties_mut().push_user_property(
            MqttString::try_from("k").unwrap(),
            MqttString::try_from("1").unwrap(),
        );
        assert_eq!(built.properties().message_expiry_interval, Some(5));
        assert_eq!((built.topic(), built.payload()), ("a", &b"x"[..]));

        // Decoded as MQTT 5, then changed: the properties follow the topic and payload.
        let mut wire = BytesMut::new();
        built.encode_in(Protocol::Mqtt5, &mut wire).unwrap();
        let Ok(Some(Packet::Publish(mut decoded))) =
            Packet::read_in(Protocol::Mqtt5, &mut wire, 1024)
        else {
            panic!("not decoded");
        };
        assert_eq!(decoded, built);
        decoded.set_topic(TopicName::try_from("b").unwrap());
        decoded.set_payload(Bytes::from_static(b"yz"));
        assert_eq!(decoded.properties(), built.properties());
        assert_eq!((decoded.topic(), decoded.payload()), ("b", &b"yz"[..]));

        // Taking them leaves a message without any; setting an empty set is the same.
        let taken = built.take_properties();
        assert_eq!(taken.message_expiry_interval, Some(5));
        assert!(built.properties().is_empty());
        assert_eq!((built.topic(), built.payload()), ("a", &b"x"[..]));
        built.set_properties(taken.clone());
        assert_eq!(built.properties(), &taken);
        built.set_properties(Properties::new());
        assert!(built.properties().is_empty());
        assert!(matches!(built.content, Content::Parts { .. }));
        let mut wire = BytesMut::new();
        built.encode(&mut wire).unwrap();
    }

    #[test]
    fn boxed_properties_are_taken_whole_and_none_is_none() {
        let mut properties = Properties::new();
        properties.message_expiry_interval = Some(5);
        let topic = TopicName::try_from("a").unwrap();

        // Received with properties: the box comes out, and the message keeps topic and payload.
        let mut wire = BytesMut::new();
        Publish::new(topic.clone(), Bytes::from_static(b"x"))
            .with_properties(properties.clone())
            .encode_in(Protocol::Mqtt5, &mut wire)
            .unwrap();
        let Ok(Some(Packet::Publish(mut received))) =
            Packet::read_in(Protocol::Mqtt5, &mut wire, 1024)
        else {
            panic!("not decoded");
        };
        assert_eq!(
            received.take_boxed_properties().as_deref(),
            Some(&properties)
        );
        assert!(received.properties().is_empty());
        assert_eq!(received.take_boxed_properties(), None);
        assert_eq!((received.topic(), received.payload()), ("a", &b"x"[..]));
        // Its parts skip the properties between topic and payload.
        let (topic_name, payload) = received.into_parts();
        assert_eq!((topic_name.as_str(), &payload[..]), ("a", &b"x"[..]));

        // Received without any (MQTT 3.1.1), built with them, built without.
        let mut wire = BytesMut::new();
        Publish::new(topic.clone(), Bytes::from_static(b"x"))
            .encode(&mut wire)
            .unwrap();
        let Ok(Some(Packet::Publish(mut plain))) = Packet::read(&mut wire, 1024) else {
            panic!("not decoded");
        };
        assert_eq!(plain.take_boxed_properties(), None);
        let mut built = Publish::new(topic.clone(), Bytes::from_static(b"x"))
            .with_properties(properties.clone());
        assert_eq!(built.take_boxed_properties().as_deref(), Some(&properties));
        assert!(built.properties().is_empty());
        assert_eq!(
            Publish::new(topic, Bytes::from_static(b"x")).take_boxed_properties(),
            None
        );
    }
}
