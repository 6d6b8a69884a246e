//! [`ReadBuffer`]: what a connection has read and not yet handled, grown by what arrives, with
//! big packets admitted against a broker-wide limit.

use bytes::BytesMut;
use sansmq::packet::{DecodeError, FrameHeader, Packet, Protocol};

use crate::meter::Meter;

/// A packet up to this size (whole frame) is always read; a bigger one must be admitted first.
pub(crate) const SMALL_PACKET: usize = 16 * 1024;
/// A buffer this large that is mostly empty is given back to the allocator: a client that sent
/// one big packet must not keep its memory while it idles.
const SHRINK_ABOVE: usize = 64 * 1024;

/// The broker-wide accounts every read buffer shares.
#[derive(Debug, Clone)]
pub(crate) struct IncomingMeters {
    /// Memory the read buffers take (their capacity), for the stats.
    pub(crate) memory: Meter,
    /// Frame lengths of the big packets being received, against `max_incoming_bytes`.
    pub(crate) admitted: Meter,
}

impl IncomingMeters {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            memory: Meter::new(0),
            admitted: Meter::new(limit),
        }
    }
}

/// Bytes read from one connection and not yet returned as packets: at most one partial packet
/// once [`next_packet`](Self::next_packet) says it needs more.
///
/// It grows with what arrived, never with the length a fixed header announces, so a client that
/// announces a big packet and trickles it costs what it has sent so far, and never beyond the
/// frame it announced. A packet bigger than [`SMALL_PACKET`] is read only once it is
/// *admitted*: its whole length fits in what the broker-wide limit has left, or no other big
/// packet is being received (so one bigger than the limit still gets through, alone). Admitted
/// packets always have room to complete, so big packets cannot hold each other up for ever.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    bytes: BytesMut,
    /// The largest packet accepted, `usize::MAX` for no limit.
    max_packet_size: usize,
    meters: IncomingMeters,
    /// The length of the big frame being received, once admitted (0: none).
    admitted: usize,
}

impl ReadBuffer {
    /// An empty buffer refusing packets over `max_packet_size` bytes (0: no limit), counted in
    /// `meters`.
    pub(crate) fn new(max_packet_size: usize, meters: IncomingMeters) -> Self {
        Self {
            bytes: BytesMut::new(),
            max_packet_size: match max_packet_size {
                0 => usize::MAX,
                limit => limit,
            },
            meters,
            admitted: 0,
        }
    }

    /// Appends what the socket gave. While a frame's length is known the buffer grows at most
    /// to hold that frame (plus what arrived past it), not by doubling beyond it.
    pub(crate) fn extend(&mut self, arrived: &[u8]) {
        let before = self.bytes.capacity();
        let needed = self.bytes.len().saturating_add(arrived.len());
        if needed > before {
            let doubled = needed.max(self.bytes.len().saturating_mul(2));
            let target = match self.frame_len() {
                Some(frame) => doubled.min(frame.max(needed)),
                None => doubled,
            };
            let mut grown = BytesMut::with_capacity(target);
            grown.extend_from_slice(&self.bytes);
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(arrived);
        self.meters.memory.track(before, self.bytes.capacity());
    }

    /// Whether a big packet waits to be admitted, with no room for it yet.
    pub(crate) fn held_back(&self) -> bool {
        self.unadmitted_frame()
            .is_some_and(|frame| !self.has_room_for(frame))
    }

    /// Admits the big packet at the front if there is room for it: call before reading more of
    /// it, after [`held_back`](Self::held_back) said `false`.
    pub(crate) fn admit(&mut self) {
        if let Some(frame) = self.unadmitted_frame() {
            if self.has_room_for(frame) {
                self.meters.admitted.add(frame);
                self.admitted = frame;
            }
        }
    }

    /// The next whole packet in `protocol`, `Ok(None)` if more bytes are needed, or why the
    /// stream is broken.
    /// A packet over the size limit is refused from its fixed header, before its body arrives.
    /// Payloads are slices of the buffer.
    ///
    /// Call it until it returns `Ok(None)`, dropping each packet before the next call: once
    /// every whole packet is out, the buffer lets go of the memory they used.
    pub(crate) fn next_packet(
        &mut self,
        protocol: Protocol,
    ) -> Result<Option<Packet>, DecodeError> {
        let before = self.bytes.capacity();
        let packet = if protocol.is_v5() {
            Packet::read_in(protocol, &mut self.bytes, self.max_packet_size)
        } else {
            Packet::read(&mut self.bytes, self.max_packet_size)
        };
        if matches!(packet, Ok(Some(_))) {
            self.release_admission();
        }
        if matches!(packet, Ok(None)) {
            if self.bytes.is_empty() {
                // Packets were split off the front of the allocation; with none left, a fresh
                // buffer for the next read costs less than keeping it.
                self.bytes = BytesMut::new();
            } else if self.bytes.capacity() > SHRINK_ABOVE
                && self.bytes.len() <= self.bytes.capacity() / 4
            {
                self.bytes = BytesMut::from(&self.bytes[..]);
            }
        }
        self.meters.memory.track(before, self.bytes.capacity());
        packet
    }

    /// The length of the big frame at the front if it is not admitted yet.
    fn unadmitted_frame(&self) -> Option<usize> {
        let frame = self.frame_len()?;
        (frame > SMALL_PACKET && self.admitted == 0).then_some(frame)
    }

    fn has_room_for(&self, frame: usize) -> bool {
        let admissions = &self.meters.admitted;
        admissions.has_room_for(frame) || admissions.used() == 0
    }

    /// The length of the frame at the front, once its fixed header is here.
    fn frame_len(&self) -> Option<usize> {
        FrameHeader::parse(&self.bytes, self.max_packet_size)
            .ok()
            .flatten()
            .map(|header| header.frame_len())
    }

    fn release_admission(&mut self) {
        self.meters.admitted.sub(self.admitted);
        self.admitted = 0;
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        self.release_admission();
        self.meters.memory.sub(self.bytes.capacity());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed header of a PUBLISH with a remaining length of `remaining` (< 2 MiB) and topic
    /// `t`: a frame of `remaining + 4` bytes.
    fn publish_head(remaining: usize) -> Vec<u8> {
        let low = (remaining & 0x7F) as u8 | 0x80;
        let mid = ((remaining >> 7) & 0x7F) as u8 | 0x80;
        let high = (remaining >> 14) as u8;
        vec![0x30, low, mid, high, 0, 1, b't']
    }

    #[test]
    fn grows_with_what_arrived_not_with_what_was_announced() {
        let meters = IncomingMeters::new(0);
        let mut buffer = ReadBuffer::new(2 * 1024 * 1024, meters.clone());
        buffer.extend(&publish_head(1024 * 1024));
        buffer.extend(&[7; 10]);
        assert!(!buffer.held_back());
        buffer.admit();
        assert_eq!(buffer.next_packet(Protocol::Mqtt311), Ok(None));
        assert_eq!(buffer.bytes.len(), 17);
        let memory = meters.memory.used();
        assert!(memory < 4096, "{memory} bytes for 17 received");
        assert_eq!(meters.admitted.used(), 1024 * 1024 + 4);
        // Growing toward the frame never goes past it.
        for _ in 0..64 {
            buffer.extend(&[7; 16 * 1024]);
        }
        assert!(buffer.bytes.capacity() <= 1024 * 1024 + 4 + 16 * 1024);
        drop(buffer);
        assert_eq!((meters.memory.used(), meters.admitted.used()), (0, 0));
    }

    #[test]
    fn a_big_packet_waits_for_room_unless_it_is_the_only_one() {
        let meters = IncomingMeters::new(100 * 1024);
        let mut first = ReadBuffer::new(0, meters.clone());
        let mut second = ReadBuffer::new(0, meters.clone());
        let mut small = ReadBuffer::new(0, meters.clone());
        first.extend(&publish_head(200 * 1024)); // over the limit, but alone: admitted
        assert!(!first.held_back());
        first.admit();
        second.extend(&publish_head(20 * 1024));
        assert!(second.held_back());
        second.admit();
        assert_eq!(second.admitted, 0);
        small.extend(&publish_head(1000));
        assert!(!small.held_back());
        drop(first);
        assert!(!second.held_back());
        second.admit();
        assert_eq!(meters.admitted.used(), 20 * 1024 + 4);
    }

    #[test]
    fn gives_memory_and_admission_back_after_a_big_packet() {
        let meters = IncomingMeters::new(0);
        let mut buffer = ReadBuffer::new(0, meters.clone());
        let mut publish = publish_head(64 * 1024 + 3);
        publish.resize(64 * 1024 + 7, 9);
        publish.extend_from_slice(&[0xC0, 0x00]); // PINGREQ
        buffer.extend(&publish[..100]);
        buffer.admit();
        assert_eq!(meters.admitted.used(), 64 * 1024 + 7);
        buffer.extend(&publish[100..]);
        assert!(matches!(
            buffer.next_packet(Protocol::Mqtt311),
            Ok(Some(Packet::Publish(_)))
        ));
        assert_eq!(
            buffer.next_packet(Protocol::Mqtt311),
            Ok(Some(Packet::PingReq))
        );
        assert_eq!(buffer.next_packet(Protocol::Mqtt311), Ok(None));
        assert_eq!((buffer.bytes.capacity(), meters.memory.used()), (0, 0));
        assert_eq!(meters.admitted.used(), 0);
    }

    #[test]
    fn refuses_an_oversized_packet_from_its_header() {
        let mut buffer = ReadBuffer::new(100, IncomingMeters::new(0));
        buffer.extend(&[0x30, 0xE8, 0x07]);
        assert!(matches!(
            buffer.next_packet(Protocol::Mqtt311),
            Err(DecodeError::PacketTooLarge { .. })
        ));
    }
}
