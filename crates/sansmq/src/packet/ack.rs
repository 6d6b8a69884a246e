//! The acknowledgements of a PUBLISH: PUBACK (MQTT 3.4), PUBREC (3.5), PUBREL (3.6) and PUBCOMP
//! (3.7). They share one shape — a packet identifier, and in MQTT 5 a Reason Code and properties —
//! so one macro defines them.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketId, PacketType, PropertyContext, Protocol,
    ReasonCode, check_reason_code, impl_encode, v5_only, wire,
};

macro_rules! publish_ack {
    ($(#[$doc:meta])* $name:ident, $packet_type:expr, $context:expr) => {
        $(#[$doc])*
        ///
        /// In MQTT 5 it also carries a Reason Code and properties (a Reason String, User
        /// Properties). On the wire both may be left out: two bytes mean Success and no properties,
        /// three a Reason Code and no properties (MQTT 5.0 section 3.4.2.1). Encoding picks the
        /// shortest form; decoding accepts all three.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The identifier of the packet this answers or continues.
            pub packet_id: PacketId,
            /// The outcome; [`ReasonCode::Success`] unless MQTT 5 says otherwise.
            pub reason_code: ReasonCode,
            properties: HeldProperties,
        }

        impl $name {
            /// The packet for `packet_id`, with Success and no properties.
            pub const fn new(packet_id: PacketId) -> Self {
                Self {
                    packet_id,
                    reason_code: ReasonCode::Success,
                    properties: HeldProperties::EMPTY,
                }
            }

            /// The packet for `packet_id` with `reason_code` (MQTT 5).
            pub const fn with_reason_code(packet_id: PacketId, reason_code: ReasonCode) -> Self {
                Self {
                    packet_id,
                    reason_code,
                    properties: HeldProperties::EMPTY,
                }
            }

            #[inline]
            pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
                if let [hi, lo] = body[..] {
                    // A packet identifier alone: all of a valid MQTT 3.1.1 body, and MQTT 5's
                    // shortest form. Read straight, as this is every acknowledgement's path.
                    return match PacketId::new(u16::from_be_bytes([hi, lo])) {
                        Some(packet_id) => Ok(Self::new(packet_id)),
                        None => Err(DecodeError::ZeroPacketId {
                            packet_type: $packet_type,
                        }),
                    };
                }
                Self::decode_other(v5, body)
            }

            /// [`decode`](Self::decode) of a body that is not two bytes: an MQTT 5 Reason Code
            /// and properties, or an error.
            #[inline(never)]
            fn decode_other(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
                wire::parse_body($packet_type, body, |input| {
                    let (input, packet_id) = wire::packet_id($packet_type)(input)?;
                    let mut packet = Self::new(packet_id);
                    if !v5 || input.is_empty() {
                        return Ok((input, packet));
                    }
                    let (input, reason_code) = wire::reason_code($packet_type, $context)(input)?;
                    packet.reason_code = reason_code;
                    if input.is_empty() {
                        return Ok((input, packet));
                    }
                    let (input, properties) = wire::properties(body, $context)(input)?;
                    packet.properties = properties;
                    Ok((input, packet))
                })
            }
        }

        impl_properties!($name, $context);

        impl EncodeBody for $name {
            const PACKET_TYPE: PacketType = $packet_type;

            #[inline]
            fn remaining_len(&self, protocol: Protocol) -> usize {
                if !protocol.is_v5() || self.properties.is_empty() {
                    if self.reason_code == ReasonCode::Success { 2 } else { 3 }
                } else {
                    3usize.saturating_add(self.properties.encoded_len())
                }
            }

            #[inline]
            fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
                let reason = self.reason_code != ReasonCode::Success;
                v5_only(protocol, $packet_type, "a Reason Code", reason)?;
                v5_only(protocol, $packet_type, "properties", !self.properties.is_empty())?;
                if !protocol.is_v5() {
                    return Ok(()); // Success and no properties: nothing more to check
                }
                check_reason_code($packet_type, $context, self.reason_code)?;
                self.properties.validate($context)
            }

            #[inline]
            fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
                buf.put_u16(self.packet_id.get());
                if !protocol.is_v5() {
                    return;
                }
                if self.properties.is_empty() {
                    if self.reason_code != ReasonCode::Success {
                        buf.put_u8(self.reason_code.to_u8());
                    }
                } else {
                    buf.put_u8(self.reason_code.to_u8());
                    self.properties.write(buf);
                }
            }
        }

        impl_encode!($name);
    };
}

publish_ack!(
    /// Acknowledges a QoS 1 PUBLISH.
    PubAck,
    PacketType::PubAck,
    PropertyContext::PubAck
);
publish_ack!(
    /// First answer to a QoS 2 PUBLISH: received.
    PubRec,
    PacketType::PubRec,
    PropertyContext::PubRec
);
publish_ack!(
    /// Answer to PUBREC: release the QoS 2 message. Fixed-header flags 0b0010 (MQTT-3.6.1-1).
    PubRel,
    PacketType::PubRel,
    PropertyContext::PubRel
);
publish_ack!(
    /// Answer to PUBREL: the QoS 2 exchange is complete.
    PubComp,
    PacketType::PubComp,
    PropertyContext::PubComp
);
