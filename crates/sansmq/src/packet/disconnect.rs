//! DISCONNECT (MQTT 3.14; MQTT 5.0 section 3.14): the end of a connection, said by the client
//! and, in MQTT 5, by the server, with a reason.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketType, PropertyContext, Protocol, ReasonCode,
    check_reason_code, impl_encode, v5_only, wire,
};

/// The last packet of a connection.
///
/// In MQTT 3.1.1 it is empty and only the client sends it. In MQTT 5 either side may, with a
/// Reason Code (0x00 Normal disconnection, 0x04 Disconnect with Will Message, or an error) and
/// properties (Session Expiry Interval, Reason String, Server Reference, User Properties). A
/// normal DISCONNECT without properties is encoded with remaining length 0, and one with a Reason
/// Code but no properties in one byte (MQTT 5.0 section 3.14.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends; [`ReasonCode::NORMAL_DISCONNECTION`] in MQTT 3.1.1.
    pub reason_code: ReasonCode,
    properties: HeldProperties,
}

impl Disconnect {
    /// A normal disconnection, without properties.
    pub const fn new() -> Self {
        Self {
            reason_code: ReasonCode::NORMAL_DISCONNECTION,
            properties: HeldProperties::EMPTY,
        }
    }

    /// A disconnection for `reason_code` (MQTT 5).
    pub const fn with_reason_code(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: HeldProperties::EMPTY,
        }
    }

    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        const CONTEXT: PropertyContext = PropertyContext::Disconnect;
        wire::parse_body(PacketType::Disconnect, body, |input| {
            let mut packet = Self::new();
            if !v5 || input.is_empty() {
                return Ok((input, packet));
            }
            let (input, reason_code) = wire::reason_code(PacketType::Disconnect, CONTEXT)(input)?;
            packet.reason_code = reason_code;
            if input.is_empty() {
                return Ok((input, packet));
            }
            let (input, properties) = wire::properties(body, CONTEXT)(input)?;
            packet.properties = properties;
            Ok((input, packet))
        })
    }
}

impl_properties!(Disconnect, PropertyContext::Disconnect);

impl EncodeBody for Disconnect {
    const PACKET_TYPE: PacketType = PacketType::Disconnect;

    fn remaining_len(&self, protocol: Protocol) -> usize {
        if !protocol.is_v5() {
            0
        } else if !self.properties.is_empty() {
            1usize.saturating_add(self.properties.encoded_len())
        } else if self.reason_code != ReasonCode::NORMAL_DISCONNECTION {
            1
        } else {
            0
        }
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        let reason = self.reason_code != ReasonCode::NORMAL_DISCONNECTION;
        v5_only(protocol, PacketType::Disconnect, "a Reason Code", reason)?;
        v5_only(
            protocol,
            PacketType::Disconnect,
            "properties",
            !self.properties.is_empty(),
        )?;
        check_reason_code(
            PacketType::Disconnect,
            PropertyContext::Disconnect,
            self.reason_code,
        )?;
        self.properties.validate(PropertyContext::Disconnect)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        if self.remaining_len(protocol) == 0 {
            return;
        }
        buf.put_u8(self.reason_code.to_u8());
        if !self.properties.is_empty() {
            self.properties.write(buf);
        }
    }
}

impl_encode!(Disconnect);
