//! SUBACK (MQTT 3.9): the server's answer to SUBSCRIBE, one return code per filter.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, EncodeError, PacketId, PacketType, QoS, impl_encode, wire};

/// What the server granted for one filter of a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Subscribed, with this maximum QoS (which may be lower than requested).
    Success(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubscribeReturnCode {
    /// The code for a byte: 0x00, 0x01, 0x02 or 0x80 (MQTT-3.9.3-2).
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0x80 => Some(Self::Failure),
            _ => match QoS::from_u8(byte) {
                Some(qos) => Some(Self::Success(qos)),
                None => None,
            },
        }
    }

    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Success(qos) => qos as u8,
            Self::Failure => 0x80,
        }
    }
}

/// The server's answer to SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// One code per filter, in the SUBSCRIBE's order (MQTT-3.8.4-5).
    pub return_codes: Vec<SubscribeReturnCode>,
}

impl SubAck {
    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::SubAck, body, |input| {
            let (input, packet_id) = wire::packet_id(PacketType::SubAck)(input)?;
            if input.is_empty() {
                return wire::fail(DecodeError::NoReturnCodes);
            }
            let mut return_codes = Vec::with_capacity(input.len());
            for &byte in input {
                match SubscribeReturnCode::from_u8(byte) {
                    Some(code) => return_codes.push(code),
                    None => return wire::fail(DecodeError::InvalidSubackReturnCode(byte)),
                }
            }
            Ok((
                &[][..],
                Self {
                    packet_id,
                    return_codes,
                },
            ))
        })
    }
}

impl EncodeBody for SubAck {
    const PACKET_TYPE: PacketType = PacketType::SubAck;

    fn remaining_len(&self) -> usize {
        2usize.saturating_add(self.return_codes.len())
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.return_codes.is_empty() {
            return Err(EncodeError::NoReturnCodes);
        }
        Ok(())
    }

    fn write_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        for code in &self.return_codes {
            buf.put_u8(code.to_u8());
        }
    }
}

impl_encode!(SubAck);
