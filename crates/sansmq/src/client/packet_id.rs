//! [`PacketIds`]: one allocator for PUBLISH, SUBSCRIBE and UNSUBSCRIBE identifiers, with a real free
//! set so an identifier in use is never handed out again (MQTT-2.3.1-2).

use super::id_set::IdSet;
use crate::packet::PacketId;

/// The set of packet identifiers in use, and a cursor that hands out the next free one.
///
/// Allocation scans forward from the last identifier given out, so identifiers cycle through the whole
/// range before one is reused; freeing is O(1). The set is an [`IdSet`]: an idle session holds no
/// memory for it, one with a window of messages in flight a page or two.
#[derive(Clone)]
pub(crate) struct PacketIds {
    used: IdSet,
    last: u16,
}

impl std::fmt::Debug for PacketIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketIds")
            .field("in_use", &self.used.len())
            .field("last", &self.last)
            .finish()
    }
}

impl PacketIds {
    pub(crate) fn new() -> Self {
        Self {
            used: IdSet::default(),
            last: 0,
        }
    }

    /// How many identifiers are in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.used.len()
    }

    /// Whether `id` is in use.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: PacketId) -> bool {
        self.used.contains(id)
    }

    /// The next free identifier after the last one handed out, or `None` when all 65,535 are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.used.len() >= usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = self.last;
        loop {
            candidate = candidate.wrapping_add(1);
            let Some(id) = PacketId::new(candidate) else {
                continue; // 0 is never an identifier
            };
            if self.used.insert(id) {
                self.last = candidate;
                return Some(id);
            }
        }
    }

    /// Marks `id` as in use (when restoring a session); false if it already was.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        self.used.insert(id)
    }

    /// Returns `id` to the free set; false if it was not in use.
    pub(crate) fn free(&mut self, id: PacketId) -> bool {
        self.used.remove(id)
    }
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

    #[test]
    fn pages_are_held_only_while_an_identifier_in_them_is_in_use() {
        let held = |ids: &PacketIds| ids.used.pages_held();
        let mut ids = PacketIds::new();
        assert_eq!(held(&ids), 0, "an idle session holds no page");
        // A window of 20 in-flight identifiers cycling through the whole range.
        let mut window = std::collections::VecDeque::new();
        for _ in 0..70_000 {
            window.push_back(ids.allocate().unwrap());
            if window.len() > 20 {
                assert!(ids.free(window.pop_front().unwrap()));
            }
            assert!(held(&ids) <= 2, "{} pages held", held(&ids));
        }
        for id in window.drain(..) {
            assert!(ids.free(id));
        }
        assert_eq!((held(&ids), ids.in_use()), (0, 0));
        // Freeing what is not in use is refused, even in a page not held.
        assert!(!ids.free(PacketId::new(40_000).unwrap()));
        assert!(ids.insert(PacketId::new(65_535).unwrap()));
        assert!(!ids.insert(PacketId::new(65_535).unwrap()));
        assert!(ids.contains(PacketId::new(65_535).unwrap()));
        assert_eq!(held(&ids), 1);
    }
}
