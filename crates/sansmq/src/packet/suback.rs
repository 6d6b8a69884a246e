//! SUBACK (MQTT 3.9): the server's answer to SUBSCRIBE, one return code per filter.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketId, PacketType, PropertyContext, Protocol, QoS,
    ReasonCode, check_reason_code, impl_encode, wire,
};

/// What the server granted for one filter of a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Subscribed, with this maximum QoS (which may be lower than requested).
    Success(QoS),
    /// 0x80: the subscription was refused (MQTT 5: Unspecified error).
    Failure,
    /// MQTT 5: the subscription was refused for this reason, a failure code other than 0x80
    /// (such as 0x87 Not authorized or 0xA2 Wildcard Subscriptions not supported). Encoded as
    /// MQTT 3.1.1 it becomes 0x80, the only refusal 3.1.1 has.
    Refused(ReasonCode),
}

impl SubscribeReturnCode {
    /// The MQTT 3.1.1 code for a byte: 0x00, 0x01, 0x02 or 0x80 (MQTT-3.9.3-2).
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0x80 => Some(Self::Failure),
            _ => match QoS::from_u8(byte) {
                Some(qos) => Some(Self::Success(qos)),
                None => None,
            },
        }
    }

    /// The code for an MQTT 5 SUBACK Reason Code; `None` for one SUBACK cannot carry.
    pub const fn from_reason_code(code: ReasonCode) -> Option<Self> {
        if !code.is_valid_in(PropertyContext::SubAck) {
            return None;
        }
        Some(match code {
            ReasonCode::Success => Self::Success(QoS::AtMostOnce),
            ReasonCode::GrantedQos1 => Self::Success(QoS::AtLeastOnce),
            ReasonCode::GrantedQos2 => Self::Success(QoS::ExactlyOnce),
            ReasonCode::UnspecifiedError => Self::Failure,
            refusal => Self::Refused(refusal),
        })
    }

    /// The MQTT 5 Reason Code.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            Self::Success(QoS::AtMostOnce) => ReasonCode::GRANTED_QOS_0,
            Self::Success(QoS::AtLeastOnce) => ReasonCode::GrantedQos1,
            Self::Success(QoS::ExactlyOnce) => ReasonCode::GrantedQos2,
            Self::Failure => ReasonCode::UnspecifiedError,
            Self::Refused(code) => code,
        }
    }

    /// The byte on the wire in MQTT 5; [`to_u8_in`](Self::to_u8_in) for either protocol.
    pub const fn to_u8(self) -> u8 {
        self.reason_code().to_u8()
    }

    /// The byte on the wire in `protocol`: every refusal is 0x80 in MQTT 3.1.1.
    pub const fn to_u8_in(self, protocol: Protocol) -> u8 {
        match self {
            Self::Refused(_) if !protocol.is_v5() => 0x80,
            code => code.to_u8(),
        }
    }

    /// Whether the subscription was refused.
    pub const fn is_failure(self) -> bool {
        !matches!(self, Self::Success(_))
    }
}

/// The server's answer to SUBSCRIBE; in MQTT 5 with properties (Reason String, User Properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// One code per filter, in the SUBSCRIBE's order (MQTT-3.8.4-5).
    pub return_codes: Vec<SubscribeReturnCode>,
    properties: HeldProperties,
}

impl SubAck {
    /// The answer for `packet_id`, without properties.
    pub const fn new(packet_id: PacketId, return_codes: Vec<SubscribeReturnCode>) -> Self {
        Self {
            packet_id,
            return_codes,
            properties: HeldProperties::EMPTY,
        }
    }

    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::SubAck, body, |input| {
            let (mut input, packet_id) = wire::packet_id(PacketType::SubAck)(input)?;
            let mut properties = HeldProperties::EMPTY;
            if v5 {
                (input, properties) = wire::properties(body, PropertyContext::SubAck)(input)?;
            }
            if input.is_empty() {
                return wire::fail(DecodeError::NoReturnCodes {
                    packet_type: PacketType::SubAck,
                });
            }
            let mut return_codes = Vec::with_capacity(input.len());
            for &byte in input {
                let code = if v5 {
                    ReasonCode::from_u8(byte).and_then(SubscribeReturnCode::from_reason_code)
                } else {
                    SubscribeReturnCode::from_u8(byte)
                };
                match code {
                    Some(code) => return_codes.push(code),
                    None if v5 => {
                        return wire::fail(DecodeError::InvalidReasonCode {
                            packet_type: PacketType::SubAck,
                            code: byte,
                        });
                    }
                    None => return wire::fail(DecodeError::InvalidSubackReturnCode(byte)),
                }
            }
            Ok((
                &[][..],
                Self {
                    packet_id,
                    return_codes,
                    properties,
                },
            ))
        })
    }
}

impl_properties!(SubAck, PropertyContext::SubAck);

impl EncodeBody for SubAck {
    const PACKET_TYPE: PacketType = PacketType::SubAck;

    fn remaining_len(&self, protocol: Protocol) -> usize {
        let header = if protocol.is_v5() {
            2usize.saturating_add(self.properties.encoded_len())
        } else {
            2
        };
        header.saturating_add(self.return_codes.len())
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if self.return_codes.is_empty() {
            return Err(EncodeError::NoReturnCodes {
                packet_type: PacketType::SubAck,
            });
        }
        super::v5_only(
            protocol,
            PacketType::SubAck,
            "properties",
            !self.properties.is_empty(),
        )?;
        for code in &self.return_codes {
            if let SubscribeReturnCode::Refused(reason) = code {
                if !reason.is_error() {
                    return Err(EncodeError::InvalidReasonCode {
                        packet_type: PacketType::SubAck,
                        reason_code: *reason,
                    });
                }
                check_reason_code(PacketType::SubAck, PropertyContext::SubAck, *reason)?;
            }
        }
        self.properties.validate(PropertyContext::SubAck)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if protocol.is_v5() {
            self.properties.write(buf);
        }
        for code in &self.return_codes {
            buf.put_u8(code.to_u8_in(protocol));
        }
    }
}

impl_encode!(SubAck);
