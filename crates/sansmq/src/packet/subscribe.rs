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

    /// Parses a SUBSCRIBE body. Brokers decode one per client and subscription change, so the loop
    /// reads the slices directly rather than through nom, and sizes the filter list once.
    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let too_short = || DecodeError::BodyTooShort {
            packet_type: PacketType::Subscribe,
            remaining_length: body.len(),
        };
        let Some((&id, mut rest)) = body.split_first_chunk::<2>() else {
            return Err(too_short());
        };
        let packet_id = PacketId::new(u16::from_be_bytes(id)).ok_or(DecodeError::ZeroPacketId {
            packet_type: PacketType::Subscribe,
        })?;
        let mut filters = Vec::with_capacity(count_filters(rest));
        while let Some((&len, after_len)) = rest.split_first_chunk::<2>() {
            let Some((raw, after)) =
                after_len.split_at_checked(usize::from(u16::from_be_bytes(len)))
            else {
                return Err(too_short());
            };
            let filter = TopicFilter::from_bytes(body.slice_ref(raw))
                .map_err(DecodeError::InvalidTopicFilter)?;
            let Some((&byte, after)) = after.split_first() else {
                return Err(too_short());
            };
            // MQTT-3.8.3-4: reserved bits 7-2 must be 0 and QoS must be 0, 1 or 2.
            let Some(qos) = QoS::from_u8(byte) else {
                return Err(DecodeError::InvalidRequestedQos { filter, byte });
            };
            filters.push(SubscribeFilter { filter, qos });
            rest = after;
        }
        if !rest.is_empty() {
            return Err(too_short()); // one byte: a length prefix cut short
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            }); // MQTT-3.8.3-3
        }
        Ok(Self { packet_id, filters })
    }
}

/// How many filters a SUBSCRIBE's payload holds, counted by their length prefixes (each followed by
/// the filter and a QoS byte); a truncated last one counts too, and decoding then refuses it.
fn count_filters(mut rest: &[u8]) -> usize {
    let mut count = 0;
    while let Some((&len, after_len)) = rest.split_first_chunk::<2>() {
        count += 1;
        let skip = usize::from(u16::from_be_bytes(len)) + 1;
        rest = after_len.get(skip..).unwrap_or_default();
    }
    count
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
