//! UNSUBSCRIBE (MQTT 3.10): the client cancels subscriptions; UNSUBACK (MQTT 3.11): the server's
//! answer, in MQTT 5 with a Reason Code per filter.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketId, PacketType, PropertyContext, Protocol,
    ReasonCode, check_reason_code, impl_encode, v5_only, wire,
};
use crate::topic::TopicFilter;

/// A request to cancel one or more subscriptions; in MQTT 5 with properties (User Properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier the UNSUBACK will carry.
    pub packet_id: PacketId,
    /// At least one filter (MQTT-3.10.3-2).
    pub filters: Vec<TopicFilter>,
    properties: HeldProperties,
}

impl Unsubscribe {
    /// A request to cancel `filters`, without properties.
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Self {
        Self {
            packet_id,
            filters,
            properties: HeldProperties::EMPTY,
        }
    }

    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::Unsubscribe, body, |input| {
            let (mut input, packet_id) = wire::packet_id(PacketType::Unsubscribe)(input)?;
            let mut properties = HeldProperties::EMPTY;
            if v5 {
                (input, properties) = wire::properties(body, PropertyContext::Unsubscribe)(input)?;
            }
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
            Ok((
                input,
                Self {
                    packet_id,
                    filters,
                    properties,
                },
            ))
        })
    }
}

impl_properties!(Unsubscribe, PropertyContext::Unsubscribe);

impl EncodeBody for Unsubscribe {
    const PACKET_TYPE: PacketType = PacketType::Unsubscribe;

    fn remaining_len(&self, protocol: Protocol) -> usize {
        let header = if protocol.is_v5() {
            2usize.saturating_add(self.properties.encoded_len())
        } else {
            2
        };
        self.filters.iter().fold(header, |len, f| {
            len.saturating_add(wire::prefixed_len(f.as_bytes()))
        })
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            }); // MQTT-3.10.3-2
        }
        v5_only(
            protocol,
            PacketType::Unsubscribe,
            "properties",
            !self.properties.is_empty(),
        )?;
        self.properties.validate(PropertyContext::Unsubscribe)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if protocol.is_v5() {
            self.properties.write(buf);
        }
        for filter in &self.filters {
            wire::put_prefixed(buf, filter.as_bytes());
        }
    }
}

impl_encode!(Unsubscribe);

/// Acknowledges an UNSUBSCRIBE. In MQTT 5 it carries one Reason Code per filter, in the
/// UNSUBSCRIBE's order (0x00 Success, 0x11 No subscription existed, or an error), and properties;
/// in MQTT 3.1.1 only the identifier, and `reason_codes` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// MQTT 5: one per filter (MQTT-3.11.3-1); MQTT 3.1.1: none.
    pub reason_codes: Vec<ReasonCode>,
    properties: HeldProperties,
}

impl UnsubAck {
    /// The MQTT 3.1.1 answer for `packet_id`.
    pub const fn new(packet_id: PacketId) -> Self {
        Self::with_reason_codes(packet_id, Vec::new())
    }

    /// The MQTT 5 answer for `packet_id`, one code per filter.
    pub const fn with_reason_codes(packet_id: PacketId, reason_codes: Vec<ReasonCode>) -> Self {
        Self {
            packet_id,
            reason_codes,
            properties: HeldProperties::EMPTY,
        }
    }

    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        const CONTEXT: PropertyContext = PropertyContext::UnsubAck;
        wire::parse_body(PacketType::UnsubAck, body, |input| {
            let (mut input, packet_id) = wire::packet_id(PacketType::UnsubAck)(input)?;
            let mut packet = Self::new(packet_id);
            if !v5 {
                return Ok((input, packet));
            }
            (input, packet.properties) = wire::properties(body, CONTEXT)(input)?;
            if input.is_empty() {
                return wire::fail(DecodeError::NoReturnCodes {
                    packet_type: PacketType::UnsubAck,
                });
            }
            packet.reason_codes.reserve_exact(input.len());
            while !input.is_empty() {
                let (rest, code) = wire::reason_code(PacketType::UnsubAck, CONTEXT)(input)?;
                packet.reason_codes.push(code);
                input = rest;
            }
            Ok((input, packet))
        })
    }
}

impl_properties!(UnsubAck, PropertyContext::UnsubAck);

impl EncodeBody for UnsubAck {
    const PACKET_TYPE: PacketType = PacketType::UnsubAck;

    fn remaining_len(&self, protocol: Protocol) -> usize {
        if protocol.is_v5() {
            2usize
                .saturating_add(self.properties.encoded_len())
                .saturating_add(self.reason_codes.len())
        } else {
            2
        }
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        let codes = !self.reason_codes.is_empty();
        v5_only(protocol, PacketType::UnsubAck, "Reason Codes", codes)?;
        v5_only(
            protocol,
            PacketType::UnsubAck,
            "properties",
            !self.properties.is_empty(),
        )?;
        if !protocol.is_v5() {
            return Ok(());
        }
        if !codes {
            return Err(EncodeError::NoReturnCodes {
                packet_type: PacketType::UnsubAck,
            }); // MQTT-3.11.3-1
        }
        for &code in &self.reason_codes {
            check_reason_code(PacketType::UnsubAck, PropertyContext::UnsubAck, code)?;
        }
        self.properties.validate(PropertyContext::UnsubAck)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if protocol.is_v5() {
            self.properties.write(buf);
            for code in &self.reason_codes {
                buf.put_u8(code.to_u8());
            }
        }
    }
}

impl_encode!(UnsubAck);
