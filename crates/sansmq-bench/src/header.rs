//! [`Header`]: what every message a bench publisher sends starts with, so that a subscriber (in
//! this process or another) measures latency, loss, duplicates and reordering per publisher.

use bytes::{BufMut as _, Bytes, BytesMut};

/// A payload header: magic, run, publisher, sequence number, send time. Big-endian, 28 bytes.
///
/// ```text
/// 0..4   b"SMQB"
/// 4..8   run: a random number per `sansmq bench` process (two runs may use the same -n)
/// 8..12  publisher: the client's sequence number (%i)
/// 12..20 sequence: 0, 1, 2... per publisher
/// 20..28 sent: wall-clock nanoseconds since the Unix epoch, so processes agree on it
/// ```
///
/// ```
/// use sansmq_bench::Header;
///
/// let header = Header { run: 7, publisher: 3, sequence: 41, sent_ns: 1_700_000_000_000_000_000 };
/// let payload = header.payload(64, b"");
/// assert_eq!(payload.len(), 64);
/// assert_eq!(Header::parse(&payload), Some(header));
/// assert_eq!(Header::parse(b"not from a bench"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The publishing process's run id.
    pub run: u32,
    /// The publishing client's sequence number.
    pub publisher: u32,
    /// The message's number from that publisher, from 0.
    pub sequence: u64,
    /// When it was published: wall-clock nanoseconds since the Unix epoch.
    pub sent_ns: u64,
}

/// The first bytes of every bench payload.
pub const MAGIC: [u8; 4] = *b"SMQB";

impl Header {
    /// Its encoded length; a smaller `-s` still sends this much.
    pub const LEN: usize = 28;

    /// A payload of `size` bytes (at least [`LEN`](Self::LEN)): this header, then `body`, then
    /// zeros up to `size`.
    pub fn payload(&self, size: usize, body: &[u8]) -> Bytes {
        let len = size.max(Self::LEN + body.len());
        let mut out = BytesMut::with_capacity(len);
        out.put_slice(&MAGIC);
        out.put_u32(self.run);
        out.put_u32(self.publisher);
        out.put_u64(self.sequence);
        out.put_u64(self.sent_ns);
        out.put_slice(body);
        out.resize(len, 0);
        out.freeze()
    }

    /// The header at the start of `payload`, or `None` when it is not a bench message.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = payload.get(..Self::LEN)?.try_into().ok()?;
        let (magic, rest) = bytes.split_at(4);
        if magic != MAGIC {
            return None;
        }
        let (run, rest) = rest.split_at(4);
        let (publisher, rest) = rest.split_at(4);
        let (sequence, sent) = rest.split_at(8);
        Some(Self {
            run: u32::from_be_bytes(run.try_into().ok()?),
            publisher: u32::from_be_bytes(publisher.try_into().ok()?),
            sequence: u64::from_be_bytes(sequence.try_into().ok()?),
            sent_ns: u64::from_be_bytes(sent.try_into().ok()?),
        })
    }
}

/// Wall-clock nanoseconds since the Unix epoch (0 for a clock set before it).
pub fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        run: 0xdead_beef,
        publisher: 99,
        sequence: u64::MAX - 1,
        sent_ns: 123_456_789,
    };

    #[test]
    fn a_small_size_still_carries_the_whole_header_and_the_body() {
        let payload = HEADER.payload(0, b"hello");
        assert_eq!(payload.len(), Header::LEN + 5);
        assert_eq!(&payload[Header::LEN..], b"hello");
        assert_eq!(Header::parse(&payload), Some(HEADER));
    }

    #[test]
    fn padding_is_zeros_up_to_the_size() {
        let payload = HEADER.payload(100, b"x");
        assert_eq!(payload.len(), 100);
        assert!(payload[Header::LEN + 1..].iter().all(|b| *b == 0));
    }

    #[test]
    fn foreign_or_short_payloads_are_not_headers() {
        let payload = HEADER.payload(28, b"");
        for cut in 0..Header::LEN {
            assert_eq!(Header::parse(&payload[..cut]), None);
        }
        let mut wrong = payload.to_vec();
        wrong[0] = b'X';
        assert_eq!(Header::parse(&wrong), None);
    }

    #[test]
    fn the_wall_clock_is_after_2020() {
        assert!(wall_clock_ns() > 1_577_836_800_000_000_000);
    }
}
