//! Framing: how long is the next packet, and is all of it here? Kept apart from parsing so that a
//! growing buffer is never parsed from the start again.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{DecodeError, PacketType, Protocol};

/// The largest remaining length four bytes can encode (MQTT 2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// A parsed fixed header: type, flags and the length of the frame it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    packet_type: PacketType,
    flags: u8,
    header_len: u8,
    remaining_len: u32,
}

impl FrameHeader {
    /// Reads the fixed header at the start of `buf`.
    ///
    /// - `Ok(None)`: more bytes are needed to know the frame's length.
    /// - `Ok(Some(header))`: a frame of [`frame_len`](Self::frame_len) bytes starts here, whether or
    ///   not all of it is buffered yet.
    /// - `Err`: the stream is broken: a reserved type, wrong flags, a remaining length longer than
    ///   four bytes, or a frame bigger than `max_packet_size` (whole frame, header included). All of
    ///   these are known before the body arrives, so an oversized body is never buffered.
    ///
    /// This is MQTT 3.1.1's framing, which refuses type 15; [`parse_in`](Self::parse_in) takes the
    /// protocol.
    #[inline]
    pub fn parse(buf: &[u8], max_packet_size: usize) -> Result<Option<Self>, DecodeError> {
        Self::parse_in(Protocol::Mqtt311, buf, max_packet_size)
    }

    /// [`parse`](Self::parse) for `protocol`: MQTT 5 has a sixteenth packet type, AUTH.
    #[inline]
    pub fn parse_in(
        protocol: Protocol,
        buf: &[u8],
        max_packet_size: usize,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = PacketType::from_u8(first >> 4)?;
        if packet_type == PacketType::Auth && !protocol.is_v5() {
            return Err(DecodeError::ReservedPacketType(15));
        }
        let flags = first & 0x0F;
        check_flags(packet_type, flags)?;

        let Some((remaining_len, len_len)) = read_var_int(buf.get(1..).unwrap_or_default())
            .map_err(|MalformedVarInt| DecodeError::MalformedRemainingLength)?
        else {
            return Ok(None);
        };
        let header = Self {
            packet_type,
            flags,
            // At most 5: one type byte and at most four length bytes.
            header_len: len_len as u8 + 1,
            remaining_len,
        };
        let size = header.frame_len();
        if size > max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: max_packet_size,
            });
        }
        Ok(Some(header))
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// The low four bits of the first byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Size of the fixed header: 2 to 5 bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.header_len)
    }

    /// Size of variable header and payload.
    pub fn remaining_len(&self) -> usize {
        self.remaining_len as usize
    }

    /// Size of the whole frame.
    pub fn frame_len(&self) -> usize {
        self.header_len() + self.remaining_len()
    }
}

/// Flags are checked at framing so a bad packet is refused before its body is buffered.
fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    if packet_type == PacketType::Publish {
        let qos = (flags >> 1) & 0b11;
        if qos == 3 {
            return Err(DecodeError::PublishQos3); // MQTT-3.3.1-4
        }
        if qos == 0 && flags & 0b1000 != 0 {
            return Err(DecodeError::DupAtQos0); // MQTT-3.3.1-2
        }
        return Ok(());
    }
    if flags != packet_type.required_flags() {
        return Err(DecodeError::InvalidFlags { packet_type, flags }); // MQTT-2.2.2-2
    }
    Ok(())
}

/// Splits a whole frame off `buf` and returns its body.
#[inline]
pub(crate) fn split_body(buf: &mut BytesMut, header: &FrameHeader) -> Bytes {
    // Frozen first: advancing a `Bytes` is two field updates, a `BytesMut` a call.
    let mut frame = buf.split_to(header.frame_len()).freeze();
    frame.advance(header.header_len());
    frame
}

/// A Variable Byte Integer has its continuation bit set in all four bytes it may take (MQTT 1.5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MalformedVarInt;

/// Reads a Variable Byte Integer (MQTT 1.5.5: the remaining length, a property length, a property
/// identifier or a Subscription Identifier) at the start of `buf`: its value and how many bytes it
/// took, or `Ok(None)` when `buf` ends before its last byte.
///
/// Like the spec's decoding algorithm, it accepts a value written in more bytes than needed
/// (MQTT-1.5.5-1 binds the sender).
#[inline]
pub(crate) fn read_var_int(buf: &[u8]) -> Result<Option<(u32, usize)>, MalformedVarInt> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        return Err(MalformedVarInt);
    }
    Ok(None)
}

/// How many bytes the Variable Byte Integer `value` takes on the wire.
pub(crate) const fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Frame size for a body of `remaining_len` bytes.
pub(crate) const fn frame_len(remaining_len: usize) -> usize {
    1 + var_int_len(remaining_len) + remaining_len
}

/// Writes `value` (at most [`MAX_REMAINING_LENGTH`]) as a Variable Byte Integer.
#[inline]
pub(crate) fn put_var_int(buf: &mut BytesMut, mut value: usize) {
    loop {
        // Masked to seven bits, so it fits.
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            buf.put_u8(byte);
            return;
        }
        buf.put_u8(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<FrameHeader>, DecodeError> {
        FrameHeader::parse(bytes, usize::MAX)
    }

    #[test]
    fn remaining_length_boundaries_round_trip() {
        for (len, wire) in [
            (0, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX_REMAINING_LENGTH, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut buf = BytesMut::new();
            put_var_int(&mut buf, len);
            assert_eq!(&buf[..], wire, "encoding {len}");
            assert_eq!(var_int_len(len), wire.len());
            let mut frame = vec![0x30];
            frame.extend_from_slice(wire);
            let header = parse(&frame).unwrap().unwrap();
            assert_eq!(header.remaining_len(), len);
            assert_eq!(header.header_len(), 1 + wire.len());
        }
    }

    #[test]
    fn variable_byte_integers_say_need_more_until_their_last_byte() {
        assert_eq!(read_var_int(&[]), Ok(None));
        assert_eq!(read_var_int(&[0x80, 0x80, 0x80]), Ok(None));
        assert_eq!(
            read_var_int(&[0x80, 0x80, 0x80, 0x80]),
            Err(MalformedVarInt)
        );
        assert_eq!(read_var_int(&[0x05, 0xFF]), Ok(Some((5, 1))));
        // Longer than needed is read as the spec's algorithm reads it.
        assert_eq!(read_var_int(&[0x81, 0x00]), Ok(Some((1, 2))));
    }

    #[test]
    fn needs_more_until_the_length_ends() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[0x30]), Ok(None));
        assert_eq!(parse(&[0x30, 0x80]), Ok(None));
        assert_eq!(parse(&[0x30, 0x80, 0x80, 0x80]), Ok(None));
    }

    #[test]
    fn five_length_bytes_are_malformed() {
        assert_eq!(
            parse(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(DecodeError::MalformedRemainingLength)
        );
        assert_eq!(
            parse(&[0x30, 0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::MalformedRemainingLength)
        );
    }

    #[test]
    fn oversized_frame_is_refused_from_the_header_alone() {
        // 0x30 0x80 0x01: a PUBLISH announcing 128 body bytes, none of which are here.
        assert_eq!(
            FrameHeader::parse(&[0x30, 0x80, 0x01], 130),
            Err(DecodeError::PacketTooLarge {
                size: 131,
                max: 130
            })
        );
        assert!(
            FrameHeader::parse(&[0x30, 0x80, 0x01], 131)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn reserved_types_and_bad_flags_are_refused_from_the_first_byte() {
        assert_eq!(parse(&[0x00]), Err(DecodeError::ReservedPacketType(0)));
        assert_eq!(parse(&[0xF0]), Err(DecodeError::ReservedPacketType(15)));
        assert_eq!(
            parse(&[0x60]),
            Err(DecodeError::InvalidFlags {
                packet_type: PacketType::PubRel,
                flags: 0
            })
        );
        assert_eq!(
            parse(&[0x41]),
            Err(DecodeError::InvalidFlags {
                packet_type: PacketType::PubAck,
                flags: 1
            })
        );
        assert_eq!(parse(&[0x36]), Err(DecodeError::PublishQos3));
        assert_eq!(parse(&[0x38]), Err(DecodeError::DupAtQos0));
    }
}
