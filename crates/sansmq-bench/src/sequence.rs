//! [`Sequences`]: what one subscriber has received from each publisher, to count duplicates,
//! reordering and (at the end) loss: the gaps below the highest sequence number seen.

use std::collections::{BTreeSet, HashMap};

/// What a message was, compared with the ones before it from the same publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next one, or one past a gap.
    InOrder,
    /// Below the highest seen so far, and new.
    Reordered,
    /// Seen before.
    Duplicate,
}

/// One publisher's messages as one subscriber saw them: every number below `low` has arrived,
/// and `above` holds those above it that arrived early. With in-order delivery `above` stays
/// empty, so a publisher costs a few words however many messages it sends.
#[derive(Debug, Default, Clone)]
struct Track {
    low: u64,
    above: BTreeSet<u64>,
    highest: Option<u64>,
    received: u64,
}

impl Track {
    fn record(&mut self, sequence: u64) -> Arrival {
        if sequence < self.low || self.above.contains(&sequence) {
            return Arrival::Duplicate;
        }
        self.received += 1;
        let reordered = self.highest.is_some_and(|h| sequence < h);
        self.highest = Some(self.highest.map_or(sequence, |h| h.max(sequence)));
        if sequence == self.low {
            self.low += 1;
            while self.above.remove(&self.low) {
                self.low += 1;
            }
        } else {
            self.above.insert(sequence);
        }
        if reordered {
            Arrival::Reordered
        } else {
            Arrival::InOrder
        }
    }

    /// Numbers below the highest seen that never arrived.
    fn lost(&self) -> u64 {
        self.highest
            .map_or(0, |h| (h + 1).saturating_sub(self.received))
    }
}

/// Per publisher (its run and sequence number) tracks for one subscriber.
#[derive(Debug, Default, Clone)]
pub struct Sequences {
    tracks: HashMap<(u32, u32), Track>,
}

impl Sequences {
    /// Records message `sequence` from `publisher` of run `run`.
    pub fn record(&mut self, run: u32, publisher: u32, sequence: u64) -> Arrival {
        self.tracks
            .entry((run, publisher))
            .or_default()
            .record(sequence)
    }

    /// Messages missing below each publisher's highest sequence number, summed.
    pub fn lost(&self) -> u64 {
        self.tracks.values().map(Track::lost).sum()
    }

    /// How many publishers were heard from.
    pub fn publishers(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_messages_lose_nothing_and_keep_no_set() {
        let mut s = Sequences::default();
        for n in 0..1000 {
            assert_eq!(s.record(1, 1, n), Arrival::InOrder);
        }
        assert_eq!(s.lost(), 0);
        assert!(s.tracks.values().all(|t| t.above.is_empty()));
    }

    #[test]
    fn gaps_are_loss_until_filled_and_late_ones_are_reordered() {
        let mut s = Sequences::default();
        assert_eq!(s.record(1, 1, 0), Arrival::InOrder);
        assert_eq!(s.record(1, 1, 3), Arrival::InOrder);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.record(1, 1, 1), Arrival::Reordered);
        assert_eq!(s.lost(), 1);
        assert_eq!(s.record(1, 1, 2), Arrival::Reordered);
        assert_eq!(s.lost(), 0);
        assert!(s.tracks[&(1, 1)].above.is_empty());
        assert_eq!(s.tracks[&(1, 1)].low, 4);
    }

    #[test]
    fn duplicates_are_counted_below_and_above_the_contiguous_prefix() {
        let mut s = Sequences::default();
        s.record(1, 1, 0);
        s.record(1, 1, 5);
        assert_eq!(s.record(1, 1, 0), Arrival::Duplicate);
        assert_eq!(s.record(1, 1, 5), Arrival::Duplicate);
        assert_eq!(s.lost(), 4);
    }

    #[test]
    fn publishers_and_runs_are_tracked_apart() {
        let mut s = Sequences::default();
        s.record(1, 1, 0);
        assert_eq!(s.record(1, 2, 0), Arrival::InOrder);
        assert_eq!(s.record(2, 1, 0), Arrival::InOrder);
        assert_eq!(s.publishers(), 3);
        assert_eq!(s.record(2, 1, 2), Arrival::InOrder);
        assert_eq!(s.lost(), 1);
    }
}
