//! PUBLISH (MQTT 3.3): an application message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::wire;
use super::{DecodeError, EncodeBody, EncodeError, PacketId, PacketType, QoS, impl_encode};
use crate::topic::TopicName;

/// An application message, sent by either side.
///
/// `topic` and `payload` of a decoded PUBLISH are slices of the received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Set when this may be a re-delivery of an earlier attempt (QoS 1 and 2 only; MQTT-3.3.1-2).
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Whether the server should keep the message for future subscribers.
    pub retain: bool,
    /// Where the message is published.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2 (MQTT-2.3.1-5).
    pub packet_id: Option<PacketId>,
    /// The application message; any bytes.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message, not retained.
    pub fn new(topic: TopicName, payload: Bytes) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            payload,
        }
    }

    /// Parses a PUBLISH body, taking it by value: the payload is the body itself, advanced past the
    /// variable header, and the topic one slice of it, so decoding costs one reference count.
    #[inline]
    pub(crate) fn decode(flags: u8, mut body: Bytes) -> Result<Self, DecodeError> {
        // Framing already refused QoS 3 and DUP at QoS 0 (MQTT-3.3.1-2, MQTT-3.3.1-4).
        let qos = QoS::from_u8((flags >> 1) & 0b11).unwrap_or(QoS::AtMostOnce);
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        // The hot path reads its two fields with `Buf` on the owned body rather than nom over a
        // borrowed slice: the topic becomes one split of the body and the payload the rest of it.
        let too_short = || DecodeError::BodyTooShort {
            packet_type: PacketType::Publish,
            remaining_length: body.len(),
        };
        let Some(&[hi, lo]) = body.first_chunk::<2>() else {
            return Err(too_short());
        };
        let topic_len = usize::from(u16::from_be_bytes([hi, lo]));
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        if body.len() < 2 + topic_len + id_len {
            return Err(too_short());
        }
        body.advance(2);
        let topic = TopicName::from_bytes(body.split_to(topic_len))
            .map_err(DecodeError::InvalidTopicName)?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            // Two bytes are there: checked with the topic length above.
            let id = PacketId::new(body.get_u16()).ok_or(DecodeError::ZeroPacketId {
                packet_type: PacketType::Publish,
            })?;
            Some(id)
        };
        Ok(Self {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            payload: body,
        })
    }
}

impl EncodeBody for Publish {
    const PACKET_TYPE: PacketType = PacketType::Publish;

    #[inline]
    fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    #[inline]
    fn remaining_len(&self) -> usize {
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        wire::prefixed_len(self.topic.as_bytes())
            .saturating_add(id_len)
            .saturating_add(self.payload.len())
    }

    #[inline]
    fn validate(&self) -> Result<(), EncodeError> {
        if (self.qos == QoS::AtMostOnce) != self.packet_id.is_none() {
            return Err(EncodeError::PacketIdMismatch { qos: self.qos }); // MQTT-2.3.1-5
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::DupAtQos0); // MQTT-3.3.1-2
        }
        Ok(())
    }

    #[inline]
    fn write_body(&self, buf: &mut BytesMut) {
        wire::put_prefixed(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        buf.put_slice(&self.payload);
    }
}

impl_encode!(Publish);
