//! [`UnwrittenAcks`]: where the driver stands in the connection's outgoing byte stream, and the
//! PUBREC, PUBREL and PUBCOMP packets encoded into the transmit buffer that it has not taken yet.
//!
//! A peer that repeats a packet (PUBREL, a re-sent QoS 2 PUBLISH, PUBREC) while the client cannot
//! write gets one answer per identifier, not one per repeat: the answer still waiting in the buffer
//! answers the repeat too. The transmit buffer is coalesced bytes, so each answer is remembered by
//! the stream offset just past it; [`transmitted`](UnwrittenAcks::transmitted) forgets the answers
//! the driver has taken.

use std::collections::VecDeque;

use super::id_set::IdSet;
use crate::packet::PacketId;

/// The acknowledgements that are tracked, one identifier set each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the packets they stand for
pub(crate) enum AckKind {
    /// Answers the broker's QoS 2 PUBLISH.
    PubRec = 0,
    /// Answers the broker's PUBREC for our QoS 2 PUBLISH.
    PubRel = 1,
    /// Answers the broker's PUBREL.
    PubComp = 2,
}

/// The encoded size of PUBREC, PUBREL and PUBCOMP: fixed header and packet identifier.
pub(crate) const ACK_LEN: usize = 4;

/// Unwritten acknowledgements of the current connection, in stream order.
#[derive(Debug, Default)]
pub(crate) struct UnwrittenAcks {
    /// Bytes of this connection's stream the driver has taken.
    taken: u64,
    /// Each unwritten acknowledgement with the stream offset just past it; at most one entry per
    /// kind and identifier.
    pending: VecDeque<(u64, AckKind, PacketId)>,
    /// The identifiers in `pending` per [`AckKind`], for an O(1) lookup however many wait. Sets
    /// hold memory only while acknowledgements wait, so a client that never sees QoS 2 pays
    /// nothing.
    ids: [IdSet; 3],
}

impl UnwrittenAcks {
    /// A new connection: a new stream, nothing written or pending.
    pub(crate) fn reset(&mut self) {
        for (_, kind, id) in std::mem::take(&mut self.pending) {
            self.clear(kind, id);
        }
        self.taken = 0;
    }

    /// The stream offset just past a buffer of `buffered` bytes not yet taken.
    pub(crate) fn stream_end(&self, buffered: usize) -> u64 {
        self.taken.saturating_add(buffered as u64)
    }

    /// Whether the stream up to `end` has been taken by the driver.
    pub(crate) fn is_written(&self, end: u64) -> bool {
        end <= self.taken
    }

    /// Whether an acknowledgement of `kind` for `id` waits in the transmit buffer.
    pub(crate) fn contains(&self, kind: AckKind, id: PacketId) -> bool {
        self.ids
            .get(kind as usize)
            .is_some_and(|ids| ids.contains(id))
    }

    /// Records an acknowledgement of `kind` for `id` about to be encoded into a transmit buffer
    /// of `buffered` bytes; false, recording nothing, if one is pending already.
    pub(crate) fn insert(&mut self, kind: AckKind, id: PacketId, buffered: usize) -> bool {
        let end = self.stream_end(buffered + ACK_LEN);
        let Some(ids) = self.ids.get_mut(kind as usize) else {
            return true; // cannot happen: there is a set per kind
        };
        if !ids.insert(id) {
            return false;
        }
        self.pending.push_back((end, kind, id));
        true
    }

    /// Records an acknowledgement that goes out whether or not one is pending (it answers a new
    /// message): the identifier stays pending until the later one is taken.
    pub(crate) fn insert_always(&mut self, kind: AckKind, id: PacketId, buffered: usize) {
        if !self.insert(kind, id, buffered) {
            // Rare: keep one entry per kind and identifier, the later one.
            self.pending.retain(|&(_, k, i)| (k, i) != (kind, id));
            self.pending
                .push_back((self.stream_end(buffered + ACK_LEN), kind, id));
        }
    }

    /// The driver took `n` more bytes.
    pub(crate) fn transmitted(&mut self, n: usize) {
        self.taken = self.taken.saturating_add(n as u64);
        while let Some(&(end, kind, id)) = self.pending.front() {
            if end > self.taken {
                break;
            }
            self.pending.pop_front();
            self.clear(kind, id);
        }
    }

    fn clear(&mut self, kind: AckKind, id: PacketId) {
        if let Some(ids) = self.ids.get_mut(kind as usize) {
            ids.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    #[test]
    fn an_ack_is_pending_until_its_last_byte_is_taken() {
        let mut acks = UnwrittenAcks::default();
        assert!(acks.insert(AckKind::PubComp, id(7), 0));
        assert!(!acks.insert(AckKind::PubComp, id(7), 4), "one per id");
        assert!(acks.insert(AckKind::PubRec, id(7), 4));
        assert!(acks.contains(AckKind::PubComp, id(7)));
        assert!(!acks.contains(AckKind::PubRel, id(7)));
        acks.transmitted(3);
        assert!(acks.contains(AckKind::PubComp, id(7)), "one byte left");
        acks.transmitted(1);
        assert!(!acks.contains(AckKind::PubComp, id(7)));
        assert!(acks.contains(AckKind::PubRec, id(7)));
        acks.reset();
        assert!(!acks.contains(AckKind::PubRec, id(7)));
        assert!(acks.is_written(0) && !acks.is_written(1));
    }

    #[test]
    fn a_second_ack_for_one_id_keeps_it_pending_until_the_later_one_is_taken() {
        let mut acks = UnwrittenAcks::default();
        acks.insert_always(AckKind::PubRec, id(1), 0);
        acks.insert_always(AckKind::PubRec, id(1), 4);
        acks.transmitted(4);
        assert!(acks.contains(AckKind::PubRec, id(1)));
        acks.transmitted(4);
        assert!(!acks.contains(AckKind::PubRec, id(1)));
    }
}
