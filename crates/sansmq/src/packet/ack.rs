//! The packets that carry only a packet identifier: PUBACK (MQTT 3.4), PUBREC (3.5), PUBREL (3.6),
//! PUBCOMP (3.7) and UNSUBACK (3.11). They share one shape, so one macro defines them.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, PacketId, PacketType, impl_encode, wire};

macro_rules! id_only_packet {
    ($(#[$doc:meta])* $name:ident, $packet_type:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// The identifier of the packet this answers or continues.
            pub packet_id: PacketId,
        }

        impl $name {
            /// The packet for `packet_id`.
            pub const fn new(packet_id: PacketId) -> Self {
                Self { packet_id }
            }

            pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
                wire::parse_body($packet_type, body, |input| {
                    let (input, packet_id) = wire::packet_id($packet_type)(input)?;
                    Ok((input, Self { packet_id }))
                })
            }
        }

        impl EncodeBody for $name {
            const PACKET_TYPE: PacketType = $packet_type;

            #[inline]
            fn remaining_len(&self) -> usize {
                2
            }

            #[inline]
            fn write_body(&self, buf: &mut BytesMut) {
                buf.put_u16(self.packet_id.get());
            }
        }

        impl_encode!($name);
    };
}

id_only_packet!(
    /// Acknowledges a QoS 1 PUBLISH.
    PubAck,
    PacketType::PubAck
);
id_only_packet!(
    /// First answer to a QoS 2 PUBLISH: received.
    PubRec,
    PacketType::PubRec
);
id_only_packet!(
    /// Answer to PUBREC: release the QoS 2 message. Fixed-header flags 0b0010 (MQTT-3.6.1-1).
    PubRel,
    PacketType::PubRel
);
id_only_packet!(
    /// Answer to PUBREL: the QoS 2 exchange is complete.
    PubComp,
    PacketType::PubComp
);
id_only_packet!(
    /// Acknowledges an UNSUBSCRIBE.
    UnsubAck,
    PacketType::UnsubAck
);
