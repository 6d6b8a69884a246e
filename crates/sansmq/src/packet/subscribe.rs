//! SUBSCRIBE (MQTT 3.8): the client asks for messages matching topic filters.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, EncodeError, PacketId, PacketType, QoS, impl_encode, wire};
use crate::topic::TopicFilter;

/// One topic filter of a SUBSCRIBE and the maximum QoS asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: TopicFilter,
    /// The highest QoS the client wants messages at.
    pub qos: QoS,
}

/// A request for messages on one or more topic filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Identifier the SUBACK will carry.
    pub packet_id: PacketId,
    /// At least one filter (MQTT-3.8.3-3).
    pub filters: Vec<SubscribeFilter>,
}

impl Subscribe {
    /// A SUBSCRIBE to one filter.
    pub fn new(packet_id: PacketId, filter: TopicFilter, qos: QoS) -> Self {
        Self {
            packet_id,
            filters: vec![SubscribeFilter { filter, qos }],
        }
    }

    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::Subscribe, body, |input| {
            let (mut input, packet_id) = wire::packet_id(PacketType::Subscribe)(input)?;
            let mut filters = Vec::new();
            while !input.is_empty() {
                let (rest, filter) = wire::topic_filter(body)(input)?;
                let (rest, byte) = wire::u8(rest)?;
                // MQTT-3.8.3-4: reserved bits 7-2 must be 0 and QoS must be 0, 1 or 2.
                let Some(qos) = QoS::from_u8(byte) else {
                    return wire::fail(DecodeError::InvalidRequestedQos { filter, byte });
                };
                filters.push(SubscribeFilter { filter, qos });
                input = rest;
            }
            if filters.is_empty() {
                return wire::fail(DecodeError::NoTopicFilters {
                    packet_type: PacketType::Subscribe,
                }); // MQTT-3.8.3-3
            }
            Ok((input, Self { packet_id, filters }))
        })
    }
}

impl EncodeBody for Subscribe {
    const PACKET_TYPE: PacketType = PacketType::Subscribe;

    fn remaining_len(&self) -> usize {
        self.filters.iter().fold(2usize, |len, f| {
            len.saturating_add(wire::prefixed_len(f.filter.as_bytes()))
                .saturating_add(1)
        })
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            }); // MQTT-3.8.3-3
        }
        Ok(())
    }

    fn write_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        for f in &self.filters {
            wire::put_prefixed(buf, f.filter.as_bytes());
            buf.put_u8(f.qos as u8);
        }
    }
}

impl_encode!(Subscribe);
