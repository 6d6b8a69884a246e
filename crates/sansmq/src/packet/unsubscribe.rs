//! UNSUBSCRIBE (MQTT 3.10): the client cancels subscriptions.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, EncodeError, PacketId, PacketType, impl_encode, wire};
use crate::topic::TopicFilter;

/// A request to cancel one or more subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier the UNSUBACK will carry.
    pub packet_id: PacketId,
    /// At least one filter (MQTT-3.10.3-2).
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::Unsubscribe, body, |input| {
            let (mut input, packet_id) = wire::packet_id(PacketType::Unsubscribe)(input)?;
            let mut filters = Vec::new();
            while !input.is_empty() {
                let (rest, filter) = wire::topic_filter(body)(input)?;
                filters.push(filter);
                input = rest;
            }
            if filters.is_empty() {
                return wire::fail(DecodeError::NoTopicFilters {
                    packet_type: PacketType::Unsubscribe,
                }); // MQTT-3.10.3-2
            }
            Ok((input, Self { packet_id, filters }))
        })
    }
}

impl EncodeBody for Unsubscribe {
    const PACKET_TYPE: PacketType = PacketType::Unsubscribe;

    fn remaining_len(&self) -> usize {
        self.filters.iter().fold(2usize, |len, f| {
            len.saturating_add(wire::prefixed_len(f.as_bytes()))
        })
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            }); // MQTT-3.10.3-2
        }
        Ok(())
    }

    fn write_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        for filter in &self.filters {
            wire::put_prefixed(buf, filter.as_bytes());
        }
    }
}

impl_encode!(Unsubscribe);
