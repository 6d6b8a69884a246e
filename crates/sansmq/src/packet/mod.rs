//! The MQTT 3.1/3.1.1 control packets and their codec.
//!
//! Decoding is two steps. [`FrameHeader::parse`] looks at buffered bytes and says whether a whole
//! frame is there, checking the packet type, its flags and the size limit from the fixed header
//! alone; then [`Packet::decode`] parses exactly that frame's body with nom's complete parsers.
//! [`PacketDecoder`] does both for a byte stream that arrives in pieces of any size.
//!
//! Every packet type has `encoded_len()` and `encode(&mut BytesMut)`, which validates the packet,
//! reserves exactly `encoded_len()` bytes and writes it in one pass.
//!
//! MQTT 5's parts are here too, for the packets to carry: [`Properties`] (with the
//! [`PropertyContext`] of the packet they belong to) and [`ReasonCode`].
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
mod connack;
mod connect;
mod decoder;
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

pub use ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, LastWill, Password, Protocol};
pub use decoder::PacketDecoder;
pub use error::{DecodeError, EncodeError, PropertyError};
pub use frame::{FrameHeader, MAX_REMAINING_LENGTH};
pub use properties::{PayloadFormat, Properties, PropertyContext, PropertyId, SubscriptionId};
pub use publish::Publish;
pub use reason_code::ReasonCode;
pub use suback::{SubAck, SubscribeReturnCode};
pub use subscribe::{Subscribe, SubscribeFilter};
pub use unsubscribe::Unsubscribe;

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
    /// Client is disconnecting.
    Disconnect = 14,
}

impl PacketType {
    /// The type in the upper four bits of a fixed header's first byte.
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
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An MQTT 3.1/3.1.1 control packet, in the order of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT, boxed: it is more than twice the size of any other packet and sent once per
    /// connection, so a `Packet` is the size of a PUBLISH (72 bytes, not 176) and moving one,
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
    Disconnect,
}

impl Packet {
    /// Parses one frame's body. `header` comes from [`FrameHeader::parse`] and `body` is exactly
    /// `header.remaining_len()` bytes; strings and payloads in the result are slices of `body`.
    #[inline]
    pub fn decode(header: &FrameHeader, body: Bytes) -> Result<Self, DecodeError> {
        let flags = header.flags();
        if header.packet_type() == PacketType::Publish {
            // The hot path, kept small so it inlines into the callers.
            return Publish::decode(flags, body).map(Self::Publish);
        }
        Ok(match header.packet_type() {
            PacketType::Connect => Self::Connect(Box::new(Connect::decode(&body)?)),
            PacketType::ConnAck => Self::ConnAck(ConnAck::decode(&body)?),
            PacketType::Publish => Self::Publish(Publish::decode(flags, body)?),
            PacketType::PubAck => Self::PubAck(PubAck::decode(&body)?),
            PacketType::PubRec => Self::PubRec(PubRec::decode(&body)?),
            PacketType::PubRel => Self::PubRel(PubRel::decode(&body)?),
            PacketType::PubComp => Self::PubComp(PubComp::decode(&body)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(&body)?),
            PacketType::SubAck => Self::SubAck(SubAck::decode(&body)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::decode(&body)?),
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::decode(&body)?),
            PacketType::PingReq => empty(PacketType::PingReq, &body, Self::PingReq)?,
            PacketType::PingResp => empty(PacketType::PingResp, &body, Self::PingResp)?,
            PacketType::Disconnect => empty(PacketType::Disconnect, &body, Self::Disconnect)?,
        })
    }

    /// Takes one whole packet off the front of `buf`, if one is there.
    ///
    /// Returns `Ok(None)` and leaves `buf` alone while the frame is incomplete. Each call parses the
    /// fixed header again (at most five bytes); [`PacketDecoder`] remembers it instead.
    #[inline]
    pub fn read(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Self>, DecodeError> {
        let Some(header) = FrameHeader::parse(buf, max_packet_size)? else {
            return Ok(None);
        };
        if buf.len() < header.frame_len() {
            return Ok(None);
        }
        let body = frame::split_body(buf, &header);
        Self::decode(&header, body).map(Some)
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
            Self::Disconnect => PacketType::Disconnect,
        }
    }

    /// The size of the encoded packet, fixed header included.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Connect(p) => p.encoded_len(),
            Self::ConnAck(p) => p.encoded_len(),
            Self::Publish(p) => p.encoded_len(),
            Self::PubAck(p) => p.encoded_len(),
            Self::PubRec(p) => p.encoded_len(),
            Self::PubRel(p) => p.encoded_len(),
            Self::PubComp(p) => p.encoded_len(),
            Self::Subscribe(p) => p.encoded_len(),
            Self::SubAck(p) => p.encoded_len(),
            Self::Unsubscribe(p) => p.encoded_len(),
            Self::UnsubAck(p) => p.encoded_len(),
            Self::PingReq | Self::PingResp | Self::Disconnect => 2,
        }
    }

    /// Appends the encoded packet to `buf`; see [`Publish::encode`].
    // Inlined across crates (a driver encodes through the enum): the match then jumps straight
    // into each type's encoder.
    #[inline]
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
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
            Self::PingReq | Self::PingResp | Self::Disconnect => {
                buf.reserve(2);
                buf.put_u8((self.packet_type() as u8) << 4);
                buf.put_u8(0);
                Ok(())
            }
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
    UnsubAck
);

/// PINGREQ, PINGRESP and DISCONNECT have neither variable header nor payload.
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
pub(crate) trait EncodeBody {
    /// The packet type.
    const PACKET_TYPE: PacketType;

    /// The low four bits of the fixed header.
    fn flags(&self) -> u8 {
        Self::PACKET_TYPE.required_flags()
    }

    /// Length of variable header and payload.
    fn remaining_len(&self) -> usize;

    /// Rules the type system does not already guarantee.
    fn validate(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    /// Writes variable header and payload; `buf` has room for them.
    fn write_body(&self, buf: &mut BytesMut);
}

/// Validates, reserves exactly the packet's size and writes it.
#[inline]
pub(crate) fn encode_packet<P: EncodeBody>(
    packet: &P,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    packet.validate()?;
    let remaining_len = packet.remaining_len();
    if remaining_len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge {
            size: frame::frame_len(remaining_len),
            max: frame::frame_len(MAX_REMAINING_LENGTH),
        });
    }
    buf.reserve(frame::frame_len(remaining_len));
    buf.put_u8(((P::PACKET_TYPE as u8) << 4) | packet.flags());
    frame::put_var_int(buf, remaining_len);
    packet.write_body(buf);
    Ok(())
}

/// Gives a packet type the public `encoded_len` and `encode` over its [`EncodeBody`].
macro_rules! impl_encode {
    ($ty:ty) => {
        impl $ty {
            /// The size of the encoded packet, fixed header included: what [`encode`](Self::encode)
            /// appends.
            #[inline]
            pub fn encoded_len(&self) -> usize {
                $crate::packet::frame::frame_len(
                    <Self as $crate::packet::EncodeBody>::remaining_len(self),
                )
            }

            /// Validates the packet and appends it to `buf`, reserving exactly
            /// [`encoded_len`](Self::encoded_len) bytes first. On error nothing is written.
            #[inline]
            pub fn encode(
                &self,
                buf: &mut ::bytes::BytesMut,
            ) -> Result<(), $crate::packet::EncodeError> {
                $crate::packet::encode_packet(self, buf)
            }
        }
    };
}
pub(crate) use impl_encode;

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoding moves a `Packet` (and a `Result<Option<Packet>, _>`) a few times per frame: with
    /// CONNECT boxed they are the size of a PUBLISH, less than half of an unboxed CONNECT.
    #[test]
    fn a_packet_is_the_size_of_a_publish() {
        use std::mem::size_of;
        assert_eq!(size_of::<Packet>(), size_of::<Publish>());
        assert_eq!(
            size_of::<Result<Option<Packet>, DecodeError>>(),
            size_of::<Publish>()
        );
        assert!(size_of::<Connect>() > 2 * size_of::<Publish>());
    }
}
