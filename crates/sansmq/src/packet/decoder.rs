//! [`PacketDecoder`]: packets out of a byte stream that arrives in pieces of any size.

use bytes::BytesMut;

use super::frame::{self, FrameHeader};
use super::{DecodeError, Packet, Protocol};

/// Turns a byte stream into packets, however the stream is cut.
///
/// Feed it what the transport read ([`extend_from_slice`](Self::extend_from_slice), or read straight
/// into [`buffer_mut`](Self::buffer_mut)), then call [`next_packet`](Self::next_packet) until it
/// returns `Ok(None)`. The fixed header of an incomplete frame is parsed once and remembered, and the
/// body is only parsed when all of it is here, so a frame that trickles in one byte at a time costs
/// no more than one that arrives whole. Payloads of the packets it returns are slices of its buffer.
///
/// A frame bigger than the maximum packet size is refused as soon as its fixed header is read, and
/// the buffer never grows past one frame of that size plus what a single read adds.
#[derive(Debug)]
pub struct PacketDecoder {
    buffer: BytesMut,
    /// The header of a frame whose body is still arriving.
    pending: Option<FrameHeader>,
    max_packet_size: usize,
    protocol: Protocol,
    /// Once the stream is broken, every later call reports the same error.
    failed: Option<DecodeError>,
}

impl PacketDecoder {
    /// An MQTT 3.1.1 decoder refusing frames bigger than `max_packet_size` bytes (fixed header
    /// included).
    pub fn new(max_packet_size: usize) -> Self {
        Self::with_protocol(max_packet_size, Protocol::Mqtt311)
    }

    /// A decoder for `protocol` refusing frames bigger than `max_packet_size` bytes.
    pub fn with_protocol(max_packet_size: usize, protocol: Protocol) -> Self {
        Self {
            buffer: BytesMut::new(),
            pending: None,
            max_packet_size,
            protocol,
            failed: None,
        }
    }

    /// The protocol packets are decoded as.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Decodes the packets after the next one as `protocol`: a server learns it from CONNECT.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// The largest frame accepted.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Appends bytes read from the transport.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The buffer itself, for drivers that read into it directly.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Bytes buffered and not yet returned as packets.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole packet, `Ok(None)` if more bytes are needed, or the error that broke the stream.
    ///
    /// After an error the stream cannot be resynchronised; the same error is returned from then on,
    /// and the connection should be closed.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<Packet>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_next();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn decode_next(&mut self) -> Result<Option<Packet>, DecodeError> {
        let header = match self.pending {
            Some(header) => header,
            None => match FrameHeader::parse_in(self.protocol, &self.buffer, self.max_packet_size)?
            {
                Some(header) => header,
                None => return Ok(None),
            },
        };
        let frame_len = header.frame_len();
        if self.buffer.len() < frame_len {
            self.pending = Some(header);
            // The size was checked against the limit: make room for the rest of the frame once.
            self.buffer.reserve(frame_len - self.buffer.len());
            return Ok(None);
        }
        self.pending = None;
        let body = frame::split_body(&mut self.buffer, &header);
        Packet::decode_some(self.protocol, &header, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{PacketType, PubAck};

    #[test]
    fn remembers_an_error() {
        let mut decoder = PacketDecoder::new(16);
        decoder.extend_from_slice(&[0xF0]);
        assert_eq!(
            decoder.next_packet(),
            Err(DecodeError::ReservedPacketType(15))
        );
        decoder.extend_from_slice(&[0xC0, 0x00]);
        assert_eq!(
            decoder.next_packet(),
            Err(DecodeError::ReservedPacketType(15))
        );
    }

    #[test]
    fn refuses_an_oversized_frame_before_its_body() {
        let mut decoder = PacketDecoder::new(100);
        decoder.extend_from_slice(&[0x30, 0xE8, 0x07]); // PUBLISH of 1000 bytes announced
        assert_eq!(
            decoder.next_packet(),
            Err(DecodeError::PacketTooLarge {
                size: 1003,
                max: 100
            })
        );
    }

    #[test]
    fn yields_packets_back_to_back() {
        let mut decoder = PacketDecoder::new(16);
        decoder.extend_from_slice(&[0x40, 0x02, 0x00, 0x07, 0xD0, 0x00, 0x40]);
        let expected = PubAck::new(crate::packet::PacketId::new(7).unwrap());
        assert_eq!(decoder.next_packet(), Ok(Some(Packet::PubAck(expected))));
        assert_eq!(decoder.next_packet(), Ok(Some(Packet::PingResp)));
        assert_eq!(decoder.next_packet(), Ok(None));
        decoder.extend_from_slice(&[0x02]);
        assert_eq!(decoder.next_packet(), Ok(None));
        assert_eq!(decoder.buffered_len(), 2);
        decoder.extend_from_slice(&[0x00]);
        assert_eq!(decoder.next_packet(), Ok(None));
        decoder.extend_from_slice(&[0x09]);
        assert_eq!(
            decoder.next_packet().map(|p| p.map(|p| p.packet_type())),
            Ok(Some(PacketType::PubAck))
        );
    }
}
