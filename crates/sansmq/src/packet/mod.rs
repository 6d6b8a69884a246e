//! The MQTT 3.1, 3.1.1 and 5.0 control packets and their codec.
//!
//! Decoding is two steps. [`FrameHeader::parse`] looks at buffered bytes and says whether a whole
//! frame is there, checking the packet type, its flags and the size limit from the fixed header
//! alone; then [`Packet::decode`] parses exactly that frame's body with nom's complete parsers.
//! [`PacketDecoder`] does both for a byte stream that arrives in pieces of any size.
//!
//! Every packet type has `encoded_len()` and `encode(&mut BytesMut)`, which validates the packet,
//! reserves exactly `encoded_len()` bytes and writes it in one pass.
//!
//! One set of types serves every protocol. A packet carries its MQTT 5 parts — [`Properties`] and a
//! [`ReasonCode`] — beside the fields all versions share, and the codec is told the [`Protocol`]:
//! [`Packet::decode_in`], [`PacketDecoder::with_protocol`] and `encode_in` on every type. The
//! functions without `_in` speak MQTT 3.1.1, so 3.1.1 code reads as it always did. An MQTT 3.1.1
//! packet has empty properties and success codes; encoding one that carries more as 3.1.1 fails
//! with [`EncodeError::NotInProtocol`] rather than dropping it. Packets other than CONNECT keep
//! their properties boxed behind `properties()` and `properties_mut()`, so a packet without any
//! is no bigger than its MQTT 3.1.1 form.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use sansmq::packet::{Packet, PacketDecoder, Publish, QoS};
//! use sansmq::TopicName;
//!
//! let publish = Publish::new(TopicName::try_from("a/b").unwrap(), Bytes::from_static(b"hi"));
//! let mut wire = BytesMut::new();
//! publish.encode(&mut wire).unwrap();
//! assert_eq!(wire.len(), publish.encoded_len());
//!
//! let mut decoder = PacketDecoder::new(1024);
//! for byte in wire.chunks(1) {
//!     decoder.extend_from_slice(byte);
//! }
//! assert_eq!(decoder.next_packet(), Ok(Some(Packet::Publish(publish))));
//! ```

mod ack;
mod auth;
mod connack;
mod connect;
mod decoder;
mod disconnect;
mod error;
mod frame;
mod properties;
mod publish;
mod reason_code;
mod suback;
mod subscribe;
mod unsubscribe;
mod wire;

use std::fmt;
use std::num::NonZeroU16;

use bytes::{BufMut, Bytes, BytesMut};

pub use ack::{PubAck, PubComp, PubRec, PubRel};
pub use auth::Auth;
pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, LastWill, Password, Protocol};
pub use decoder::PacketDecoder;
pub use disconnect::Disconnect;
pub use error::{DecodeError, EncodeError, PropertyError};
pub use frame::{FrameHeader, MAX_REMAINING_LENGTH};
pub use properties::{PayloadFormat, Properties, PropertyContext, PropertyId, SubscriptionId};
pub use publish::Publish;
pub use reason_code::ReasonCode;
pub use suback::{SubAck, SubscribeReturnCode};
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter};
pub use unsubscribe::{UnsubAck, Unsubscribe};

/// Quality of service of a message (MQTT 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// At least once: acknowledged with PUBACK, may be duplicated.
    AtLeastOnce = 1,
    /// Exactly once: PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for `0`, `1` or `2`.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QoS {}", *self as u8)
    }
}

/// A packet identifier: never zero (MQTT-2.3.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The smallest identifier, 1.
    pub const MIN: Self = Self(NonZeroU16::MIN);

    /// The identifier for `value`, or `None` for 0.
    pub const fn new(value: u16) -> Option<Self> {
        match NonZeroU16::new(value) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The identifier's value.
    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

impl From<NonZeroU16> for PacketId {
    fn from(id: NonZeroU16) -> Self {
        Self(id)
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The control packet types, numbered as in the fixed header (MQTT 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client request to connect to the server.
    Connect = 1,
    /// Connect acknowledgement.
    ConnAck = 2,
    /// Publish message.
    Publish = 3,
    /// Publish acknowledgement (QoS 1).
    PubAck = 4,
    /// Publish received (QoS 2, part 1).
    PubRec = 5,
    /// Publish release (QoS 2, part 2).
    PubRel = 6,
    /// Publish complete (QoS 2, part 3).
    PubComp = 7,
    /// Subscribe request.
    Subscribe = 8,
    /// Subscribe acknowledgement.
    SubAck = 9,
    /// Unsubscribe request.
    Unsubscribe = 10,
    /// Unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Ping request.
    PingReq = 12,
    /// Ping response.
    PingResp = 13,
    /// Client is disconnecting; in MQTT 5 either side, with a reason.
    Disconnect = 14,
    /// Authentication exchange (MQTT 5 only).
    Auth = 15,
}

impl PacketType {
    /// The type in the upper four bits of a fixed header's first byte. 15 is AUTH, which only
    /// MQTT 5 has; [`FrameHeader::parse_in`] refuses it in MQTT 3.1.1.
    pub const fn from_u8(value: u8) -> Result<Self, DecodeError> {
        Ok(match value {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            reserved => return Err(DecodeError::ReservedPacketType(reserved)),
        })
    }

    /// The fixed-header flags this type must carry; PUBLISH's vary (MQTT-2.2.2-1, MQTT-3.6.1-1,
    /// MQTT-3.8.1-1, MQTT-3.10.1-1).
    pub const fn required_flags(self) -> u8 {
        match self {
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => 0b0010,
            _ => 0,
        }
    }

    /// The spec's name, such as `PUBACK`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A control packet, in the order of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT, boxed: it is more than twice the size of any other packet and sent once per
    /// connection, so a `Packet` is the size of a PUBLISH (80 bytes, not 176) and moving one,
    /// as decoding does, costs that much less.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubAck),
    /// PUBREC.
    PubRec(PubRec),
    /// PUBREL.
    PubRel(PubRel),
    /// PUBCOMP.
    PubComp(PubComp),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

impl Packet {
    /// Parses one MQTT 3.1.1 frame's body; [`decode_in`](Self::decode_in) with
    /// [`Protocol::Mqtt311`].
    #[inline]
    pub fn decode(header: &FrameHeader, body: Bytes) -> Result<Self, DecodeError> {
        Self::decode_in(Protocol::Mqtt311, header, body)
    }

    /// Parses one frame's body as `protocol` defines it. `header` comes from
    /// [`FrameHeader::parse_in`] and `body` is exactly `header.remaining_len()` bytes; strings,
    /// payloads and properties in the result are slices of `body`.
    ///
    /// A CONNECT is parsed by the protocol its own level names, whatever `protocol` says: it is
    /// what tells a server which protocol the connection speaks.
    #[inline]
    pub fn decode_in(
        protocol: Protocol,
        header: &FrameHeader,
        body: Bytes,
    ) -> Result<Self, DecodeError> {
        let flags = header.flags();
        if header.packet_type() == PacketType::Publish {
            // The hot path, kept small so it inlines into the callers.
            return Publish::decode(protocol, flags, body).map(Self::Publish);
        }
        let v5 = protocol.is_v5();
        Ok(match header.packet_type() {
            PacketType::Connect => Self::Connect(Connect::decode(&body)?),
            PacketType::ConnAck => Self::ConnAck(ConnAck::decode(v5, &body)?),
            PacketType::Publish => Self::Publish(Publish::decode(protocol, flags, body)?),
            PacketType::PubAck => Self::PubAck(PubAck::decode(v5, &body)?),
            PacketType::PubRec => Self::PubRec(PubRec::decode(v5, &body)?),
            PacketType::PubRel => Self::PubRel(PubRel::decode(v5, &body)?),
            PacketType::PubComp => Self::PubComp(PubComp::decode(v5, &body)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(v5, &body)?),
            PacketType::SubAck => Self::SubAck(SubAck::decode(v5, &body)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::decode(v5, &body)?),
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::decode(v5, &body)?),
            PacketType::PingReq => empty(PacketType::PingReq, &body, Self::PingReq)?,
            PacketType::PingResp => empty(PacketType::PingResp, &body, Self::PingResp)?,
            PacketType::Disconnect => Self::Disconnect(Disconnect::decode(v5, &body)?),
            PacketType::Auth if v5 => Self::Auth(Auth::decode(&body)?),
            PacketType::Auth => return Err(DecodeError::ReservedPacketType(15)),
        })
    }

    /// Takes one whole packet off the front of `buf`, if one is there.
    ///
    /// Returns `Ok(None)` and leaves `buf` alone while the frame is incomplete. Each call parses the
    /// fixed header again (at most five bytes); [`PacketDecoder`] remembers it instead.
    #[inline]
    pub fn read(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Self>, DecodeError> {
        Self::read_in(Protocol::Mqtt311, buf, max_packet_size)
    }

    /// [`read`](Self::read) for `protocol`.
    #[inline]
    pub fn read_in(
        protocol: Protocol,
        buf: &mut BytesMut,
        max_packet_size: usize,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(header) = FrameHeader::parse_in(protocol, buf, max_packet_size)? else {
            return Ok(None);
        };
        if buf.len() < header.frame_len() {
            return Ok(None);
        }
        let body = frame::split_body(buf, &header);
        Self::decode_some(protocol, &header, body)
    }

    /// [`decode_in`](Self::decode_in) wrapped in `Some`, as a read loop returns it; a PUBLISH is
    /// built in place (see [`Publish::decode_into`]).
    #[inline]
    pub(crate) fn decode_some(
        protocol: Protocol,
        header: &FrameHeader,
        body: Bytes,
    ) -> Result<Option<Self>, DecodeError> {
        if header.packet_type() == PacketType::Publish {
            return Publish::decode_into(protocol, header.flags(), body, |publish| {
                Some(Self::Publish(publish))
            });
        }
        Self::decode_in(protocol, header, body).map(Some)
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// The size of the packet encoded as MQTT 3.1.1, fixed header included.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        self.encoded_len_in(Protocol::Mqtt311)
    }

    /// The size of the packet encoded for `protocol`, fixed header included.
    #[inline]
    pub fn encoded_len_in(&self, protocol: Protocol) -> usize {
        match self {
            Self::Connect(p) => p.encoded_len(),
            Self::ConnAck(p) => p.encoded_len_in(protocol),
            Self::Publish(p) => p.encoded_len_in(protocol),
            Self::PubAck(p) => p.encoded_len_in(protocol),
            Self::PubRec(p) => p.encoded_len_in(protocol),
            Self::PubRel(p) => p.encoded_len_in(protocol),
            Self::PubComp(p) => p.encoded_len_in(protocol),
            Self::Subscribe(p) => p.encoded_len_in(protocol),
            Self::SubAck(p) => p.encoded_len_in(protocol),
            Self::Unsubscribe(p) => p.encoded_len_in(protocol),
            Self::UnsubAck(p) => p.encoded_len_in(protocol),
            Self::PingReq | Self::PingResp => 2,
            Self::Disconnect(p) => p.encoded_len_in(protocol),
            Self::Auth(p) => p.encoded_len_in(protocol),
        }
    }

    /// Appends the packet encoded as MQTT 3.1.1 to `buf`; see [`Publish::encode`].
    #[inline]
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // A match of its own rather than `encode_in(Mqtt311)`: each type's `encode` is compiled
        // for the constant protocol, whether or not the compiler inlines `encode_in` here.
        match self {
            Self::Connect(p) => p.encode(buf),
            Self::ConnAck(p) => p.encode(buf),
            Self::Publish(p) => p.encode(buf),
            Self::PubAck(p) => p.encode(buf),
            Self::PubRec(p) => p.encode(buf),
            Self::PubRel(p) => p.encode(buf),
            Self::PubComp(p) => p.encode(buf),
            Self::Subscribe(p) => p.encode(buf),
            Self::SubAck(p) => p.encode(buf),
            Self::Unsubscribe(p) => p.encode(buf),
            Self::UnsubAck(p) => p.encode(buf),
            Self::PingReq | Self::PingResp => {
                buf.reserve(2);
                buf.put_u8((self.packet_type() as u8) << 4);
                buf.put_u8(0);
                Ok(())
            }
            Self::Disconnect(p) => p.encode(buf),
            Self::Auth(p) => p.encode(buf),
        }
    }

    /// Appends the packet encoded for `protocol` to `buf`; see [`Publish::encode_in`]. A CONNECT
    /// names its protocol itself and is always encoded as its [`Connect::protocol`] says.
    // Inlined across crates (a driver encodes through the enum): the match then jumps straight
    // into each type's encoder.
    #[inline]
    pub fn encode_in(&self, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::Connect(p) => p.encode(buf),
            Self::ConnAck(p) => p.encode_in(protocol, buf),
            Self::Publish(p) => p.encode_in(protocol, buf),
            Self::PubAck(p) => p.encode_in(protocol, buf),
            Self::PubRec(p) => p.encode_in(protocol, buf),
            Self::PubRel(p) => p.encode_in(protocol, buf),
            Self::PubComp(p) => p.encode_in(protocol, buf),
            Self::Subscribe(p) => p.encode_in(protocol, buf),
            Self::SubAck(p) => p.encode_in(protocol, buf),
            Self::Unsubscribe(p) => p.encode_in(protocol, buf),
            Self::UnsubAck(p) => p.encode_in(protocol, buf),
            Self::PingReq | Self::PingResp => {
                buf.reserve(2);
                buf.put_u8((self.packet_type() as u8) << 4);
                buf.put_u8(0);
                Ok(())
            }
            Self::Disconnect(p) => p.encode_in(protocol, buf),
            Self::Auth(p) => p.encode_in(protocol, buf),
        }
    }
}

macro_rules! packet_from {
    ($($variant:ident),*) => {
        $(
            impl From<$variant> for Packet {
                fn from(packet: $variant) -> Self {
                    Self::$variant(packet)
                }
            }
        )*
    };
}

impl From<Connect> for Packet {
    fn from(packet: Connect) -> Self {
        Self::Connect(Box::new(packet))
    }
}

packet_from!(
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth
);

/// PINGREQ and PINGRESP (and an MQTT 3.1.1 DISCONNECT) have neither variable header nor payload.
fn empty(packet_type: PacketType, body: &[u8], packet: Packet) -> Result<Packet, DecodeError> {
    if body.is_empty() {
        Ok(packet)
    } else {
        Err(DecodeError::TrailingBytes {
            packet_type,
            extra: body.len(),
        })
    }
}

/// What a packet type supplies to the shared encoder: its header flags, body length, validation and
/// body writer.
///
/// Each takes the protocol: MQTT 5 adds properties and Reason Codes. The 3.1.1 encoders pass a
/// constant, so after inlining the MQTT 5 branches cost them nothing.
pub(crate) trait EncodeBody {
    /// The packet type.
    const PACKET_TYPE: PacketType;

    /// The low four bits of the fixed header.
    fn flags(&self) -> u8 {
        Self::PACKET_TYPE.required_flags()
    }

    /// Length of variable header and payload.
    fn remaining_len(&self, protocol: Protocol) -> usize;

    /// Rules the type system does not already guarantee.
    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError>;

    /// Writes variable header and payload; `buf` has room for them.
    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut);

    /// [`validate`](Self::validate), then [`remaining_len`](Self::remaining_len): what encoding
    /// asks first. A packet with a list to go through may do both in one pass.
    ///
    /// Always inlined: as one more call level in `encode_packet`, `#[inline]` left the MQTT 5
    /// PUBLISH and acknowledgement encoders out of line (the engine's MQTT 5 QoS 2 loops took
    /// 2-3% more instructions).
    #[inline(always)]
    fn checked_remaining_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        self.validate(protocol)?;
        Ok(self.remaining_len(protocol))
    }
}

/// Refuses an MQTT 5 part (`present`) in a packet encoded for MQTT 3.1.1.
#[inline]
pub(crate) fn v5_only(
    protocol: Protocol,
    packet_type: PacketType,
    part: &'static str,
    present: bool,
) -> Result<(), EncodeError> {
    if present && !protocol.is_v5() {
        return Err(EncodeError::NotInProtocol {
            packet_type,
            part,
            protocol,
        });
    }
    Ok(())
}

/// Refuses a Reason Code that `packet_type` (with properties in `context`) cannot carry
/// (MQTT 5.0 section 2.4).
pub(crate) fn check_reason_code(
    packet_type: PacketType,
    context: PropertyContext,
    reason_code: ReasonCode,
) -> Result<(), EncodeError> {
    if reason_code.is_valid_in(context) {
        Ok(())
    } else {
        Err(EncodeError::InvalidReasonCode {
            packet_type,
            reason_code,
        })
    }
}

/// Validates, reserves exactly the packet's size and writes it.
///
/// Always inlined, so that `encode` (MQTT 3.1.1, a constant) folds away the MQTT 5 branches.
#[inline(always)]
pub(crate) fn encode_packet<P: EncodeBody>(
    packet: &P,
    protocol: Protocol,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining_len = packet.checked_remaining_len(protocol)?;
    if remaining_len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge {
            size: frame::frame_len(remaining_len),
            max: frame::frame_len(MAX_REMAINING_LENGTH),
        });
    }
    buf.reserve(frame::frame_len(remaining_len));
    buf.put_u8(((P::PACKET_TYPE as u8) << 4) | packet.flags());
    frame::put_var_int(buf, remaining_len);
    packet.write_body(protocol, buf);
    Ok(())
}

/// Gives a packet type the public `encoded_len` and `encode` over its [`EncodeBody`].
macro_rules! impl_encode {
    ($ty:ty) => {
        impl $ty {
            /// The size of the packet encoded as MQTT 3.1.1, fixed header included: what
            /// [`encode`](Self::encode) appends.
            #[inline]
            pub fn encoded_len(&self) -> usize {
                self.encoded_len_in($crate::packet::Protocol::Mqtt311)
            }

            /// Validates the packet and appends it to `buf` as MQTT 3.1.1, reserving exactly
            /// [`encoded_len`](Self::encoded_len) bytes first. On error nothing is written.
            ///
            /// Not a call of `encode_in`, which the compiler may keep out of line with the
            /// protocol a run-time value: this is compiled for MQTT 3.1.1 alone.
            #[inline]
            pub fn encode(
                &self,
                buf: &mut ::bytes::BytesMut,
            ) -> Result<(), $crate::packet::EncodeError> {
                $crate::packet::encode_packet(self, $crate::packet::Protocol::Mqtt311, buf)
            }

            /// The size of the packet encoded for `protocol`, fixed header included: what
            /// [`encode_in`](Self::encode_in) appends.
            #[inline]
            pub fn encoded_len_in(&self, protocol: $crate::packet::Protocol) -> usize {
                $crate::packet::frame::frame_len(
                    <Self as $crate::packet::EncodeBody>::remaining_len(self, protocol),
                )
            }

            /// Validates the packet for `protocol` and appends it to `buf`, reserving exactly
            /// [`encoded_len_in`](Self::encoded_len_in) bytes first. On error nothing is written.
            #[inline]
            pub fn encode_in(
                &self,
                protocol: $crate::packet::Protocol,
                buf: &mut ::bytes::BytesMut,
            ) -> Result<(), $crate::packet::EncodeError> {
                $crate::packet::encode_packet(self, protocol, buf)
            }
        }
    };
}
pub(crate) use impl_encode;

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoding moves a `Packet` (and a `Result<Option<Packet>, _>`) a few times per frame: with
    /// CONNECT boxed they are the size of a PUBLISH, less than half of an unboxed CONNECT. A
    /// PUBLISH keeps its properties inside its content to stay at 72 bytes, the size it had
    /// before MQTT 5 (80 cost MQTT 3.1.1 decoding about 15%).
    #[test]
    fn a_packet_is_the_size_of_a_publish() {
        use std::mem::size_of;
        assert_eq!(size_of::<Publish>(), 72);
        assert_eq!(size_of::<Packet>(), size_of::<Publish>());
        assert_eq!(
            size_of::<Result<Option<Packet>, DecodeError>>(),
            size_of::<Publish>()
        );
        assert!(size_of::<Connect>() > 2 * size_of::<Publish>());
    }
}
