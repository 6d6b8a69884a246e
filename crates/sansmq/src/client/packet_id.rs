//! [`PacketIds`]: one allocator for PUBLISH, SUBSCRIBE and UNSUBSCRIBE identifiers, with a real free
//! set so an identifier in use is never handed out again (MQTT-2.3.1-2).

use crate::packet::PacketId;

const WORDS: usize = 65_536 / 64;

/// The set of packet identifiers in use, and a cursor that hands out the next free one.
///
/// Allocation scans forward from the last identifier given out, so identifiers cycle through the whole
/// range before one is reused; freeing is O(1). The set is a fixed 8 KiB bitmap: no allocation per
/// identifier.
#[derive(Clone)]
pub(crate) struct PacketIds {
    used: Box<[u64; WORDS]>,
    in_use: usize,
    last: u16,
}

impl std::fmt::Debug for PacketIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketIds")
            .field("in_use", &self.in_use)
            .field("last", &self.last)
            .finish()
    }
}

impl PacketIds {
    pub(crate) fn new() -> Self {
        Self {
            used: Box::new([0; WORDS]),
            in_use: 0,
            last: 0,
        }
    }

    /// How many identifiers are in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Whether `id` is in use.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: PacketId) -> bool {
        let (word, bit) = slot(id.get());
        self.used.get(word).is_some_and(|w| w & bit != 0)
    }

    /// The next free identifier after the last one handed out, or `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use >= usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = self.last;
        loop {
            candidate = candidate.wrapping_add(1);
            let Some(id) = PacketId::new(candidate) else {
                continue; // 0 is never an identifier
            };
            if self.insert(id) {
                self.last = candidate;
                return Some(id);
            }
        }
    }

    /// Marks `id` as in use (when restoring a session); false if it already was.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        let (word, bit) = slot(id.get());
        match self.used.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                self.in_use += 1;
                true
            }
            _ => false,
        }
    }

    /// Returns `id` to the free set; false if it was not in use.
    pub(crate) fn free(&mut self, id: PacketId) -> bool {
        let (word, bit) = slot(id.get());
        match self.used.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.in_use -= 1;
                true
            }
            _ => false,
        }
    }
}

fn slot(id: u16) -> (usize, u64) {
    (usize::from(id / 64), 1u64 << (id % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_use_are_never_reused() {
        let mut ids = PacketIds::new();
        let first = ids.allocate().unwrap();
        assert_eq!(first.get(), 1);
        // Cycle through the whole range: 1 stays in use and is skipped.
        let mut last = first;
        for _ in 0..70_000 {
            let id = ids.allocate().unwrap();
            assert_ne!(id, first);
            assert!(ids.free(id));
            last = id;
        }
        assert_ne!(last, first);
        assert!(ids.contains(first));
        assert_eq!(ids.in_use(), 1);
    }

    #[test]
    fn exhaustion_is_reported_and_freeing_recovers() {
        let mut ids = PacketIds::new();
        for _ in 0..u16::MAX {
            ids.allocate().unwrap();
        }
        assert_eq!(ids.allocate(), None);
        let id = PacketId::new(777).unwrap();
        assert!(ids.free(id));
        assert!(!ids.free(id));
        assert_eq!(ids.allocate(), Some(id));
    }
}
