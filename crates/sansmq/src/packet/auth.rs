//! AUTH (MQTT 5.0 section 3.15): a step of enhanced authentication, during CONNECT or to
//! re-authenticate later. MQTT 3.1.1 has no such packet.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketType, PropertyContext, Protocol, ReasonCode,
    check_reason_code, impl_encode, v5_only, wire,
};

/// One step of an enhanced authentication exchange: a Reason Code (0x00 Success, 0x18 Continue
/// authentication, 0x19 Re-authenticate) and properties, normally the Authentication Method and
/// Authentication Data.
///
/// A Success without properties is encoded with remaining length 0 (MQTT 5.0 section 3.15.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// The step.
    pub reason_code: ReasonCode,
    properties: HeldProperties,
}

impl Auth {
    /// An AUTH with `reason_code` and no properties.
    pub const fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: HeldProperties::EMPTY,
        }
    }

    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        const CONTEXT: PropertyContext = PropertyContext::Auth;
        wire::parse_body(PacketType::Auth, body, |input| {
            let mut packet = Self::new(ReasonCode::Success);
            if input.is_empty() {
                return Ok((input, packet));
            }
            let (input, reason_code) = wire::reason_code(PacketType::Auth, CONTEXT)(input)?;
            packet.reason_code = reason_code;
            // Unlike the acknowledgements and DISCONNECT, AUTH has no form with a Reason Code and
            // no Property Length (MQTT 5.0 section 3.15.2.1): the length must follow.
            let (input, properties) = wire::properties(body, CONTEXT)(input)?;
            packet.properties = properties;
            Ok((input, packet))
        })
    }
}

impl_properties!(Auth, PropertyContext::Auth);

impl EncodeBody for Auth {
    const PACKET_TYPE: PacketType = PacketType::Auth;

    fn remaining_len(&self, _protocol: Protocol) -> usize {
        if self.reason_code == ReasonCode::Success && self.properties.is_empty() {
            0
        } else {
            1usize.saturating_add(self.properties.encoded_len())
        }
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        v5_only(protocol, PacketType::Auth, "the packet", true)?;
        check_reason_code(PacketType::Auth, PropertyContext::Auth, self.reason_code)?;
        self.properties.validate(PropertyContext::Auth)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        if self.remaining_len(protocol) == 0 {
            return;
        }
        buf.put_u8(self.reason_code.to_u8());
        self.properties.write(buf);
    }
}

impl_encode!(Auth);
