//! [`ReadSize`]: how many bytes a driver asks the socket for, so that an idle connection holds a
//! small read buffer and a busy one reads in large chunks.

use bytes::BytesMut;

/// The size of the next read: it starts at [`ReadSize::MIN`], doubles (up to the driver's maximum)
/// after every read that filled all the room it was given, and halves after a read that used less
/// than a quarter of it, so a burst is read in few syscalls and the buffer shrinks back after it.
///
/// A driver reserves [`next`](Self::next) bytes before reading, reports each read with
/// [`record`](Self::record), and after reading lets [`shrink`](Self::shrink) give back a drained
/// buffer that a burst grew far beyond what the next read needs:
///
/// ```
/// use bytes::BytesMut;
/// use sansmq_driver::ReadSize;
///
/// let mut size = ReadSize::new(128 * 1024);
/// let mut buf = BytesMut::new();
/// // A burst: every read fills what it was given.
/// for _ in 0..8 {
///     buf.reserve(size.next());
///     let room = buf.capacity() - buf.len();
///     buf.resize(buf.len() + room, 0); // the socket filled it
///     size.record(room, room);
///     buf.clear(); // the decoder took every frame
/// }
/// assert_eq!(size.next(), 128 * 1024);
/// // Then quiet: a PINGRESP at a time.
/// for _ in 0..16 {
///     size.record(size.next(), 2);
/// }
/// assert_eq!(size.next(), ReadSize::MIN);
/// size.shrink(&mut buf); // gives the burst's memory back
/// assert_eq!(buf.capacity(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSize {
    next: usize,
    max: usize,
}

impl ReadSize {
    /// The first read's size, and the smallest: a connection that only sees PINGRESPs and acks
    /// never holds more.
    pub const MIN: usize = 512;

    /// Reads of at most `max` bytes (at least [`MIN`](Self::MIN)).
    pub fn new(max: usize) -> Self {
        Self {
            next: Self::MIN,
            max: max.max(Self::MIN),
        }
    }

    /// How many bytes to ask for next.
    pub fn next(&self) -> usize {
        self.next
    }

    /// A read that had room for `room` bytes returned `got`.
    pub fn record(&mut self, room: usize, got: usize) {
        if got >= room && room > 0 {
            self.next = self.next.saturating_mul(2).min(self.max);
        } else if got < self.next / 4 {
            self.next = (self.next / 2).max(Self::MIN);
        }
    }

    /// Drops `buf` if it is empty and holds far more room than the next read needs: the next
    /// read allocates [`next`](Self::next) bytes instead. A buffer holding part of a frame is
    /// kept.
    pub fn shrink(&self, buf: &mut BytesMut) {
        if buf.is_empty() && self.oversized(buf.capacity()) {
            *buf = BytesMut::new();
        }
    }

    fn oversized(&self, capacity: usize) -> bool {
        capacity > self.next.saturating_mul(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reads_double_up_to_the_maximum() {
        let mut size = ReadSize::new(8 * 1024);
        let mut seen = vec![size.next()];
        for _ in 0..5 {
            size.record(size.next(), size.next());
            seen.push(size.next());
        }
        assert_eq!(seen, [512, 1024, 2048, 4096, 8192, 8192]);
    }

    #[test]
    fn small_reads_halve_down_to_the_minimum_and_middling_ones_keep_the_size() {
        let mut size = ReadSize::new(64 * 1024);
        for _ in 0..8 {
            size.record(size.next(), size.next());
        }
        assert_eq!(size.next(), 64 * 1024);
        size.record(64 * 1024, 20 * 1024);
        assert_eq!(
            size.next(),
            64 * 1024,
            "a read using a third keeps the size"
        );
        size.record(64 * 1024, 100);
        assert_eq!(size.next(), 32 * 1024);
        for _ in 0..10 {
            size.record(size.next(), 100);
        }
        assert_eq!(size.next(), ReadSize::MIN);
    }

    #[test]
    fn a_read_with_no_room_or_a_tiny_maximum_changes_nothing_wrong() {
        let mut size = ReadSize::new(0);
        assert_eq!(size.next(), ReadSize::MIN);
        size.record(0, 0);
        assert_eq!(size.next(), ReadSize::MIN);
        size.record(ReadSize::MIN, ReadSize::MIN);
        assert_eq!(size.next(), ReadSize::MIN, "the maximum is at least MIN");
    }

    #[test]
    fn only_an_empty_buffer_well_beyond_the_next_read_is_dropped() {
        let size = ReadSize::new(128 * 1024);
        let mut small = BytesMut::with_capacity(4 * ReadSize::MIN);
        size.shrink(&mut small);
        assert_eq!(small.capacity(), 4 * ReadSize::MIN);
        let mut large = BytesMut::with_capacity(64 * 1024);
        large.extend_from_slice(&[0x30, 0x10]);
        size.shrink(&mut large);
        assert_eq!(large.len(), 2, "part of a frame is kept");
        large.clear();
        size.shrink(&mut large);
        assert_eq!(large.capacity(), 0);
    }
}
