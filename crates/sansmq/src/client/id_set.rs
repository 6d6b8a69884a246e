//! [`IdSet`]: a set of packet identifiers with O(1) insert, remove and lookup, which holds memory
//! only for the part of the identifier range in use.

use crate::packet::PacketId;

/// Identifiers per page of the bitmap.
const PAGE_IDS: usize = 4096;
const PAGE_WORDS: usize = PAGE_IDS / 64;

/// A bitmap of the 65,535 packet identifiers in 16 pages of 4,096 (512 bytes each), each allocated
/// when an identifier in it is inserted and freed when its last one is removed. An empty set holds
/// no heap memory, and a window of in-flight identifiers cycling through the range holds one or
/// two pages instead of the whole 8 KiB map. The pages held are listed in order (a lookup scans
/// that short list), so the set itself is 40 bytes: a session has five of them.
///
/// The last page to empty is kept as a spare, and the list keeps its room, so a set that empties
/// and fills again (one message in flight at a time, or a window crossing into the next page)
/// allocates nothing once warm: 512 bytes held after use, none before.
#[derive(Clone, Default)]
pub(crate) struct IdSet {
    pages: Vec<Page>,
    len: usize,
    spare: Option<Box<[u64; PAGE_WORDS]>>,
}

/// One page of the bitmap: where it is in the range, and how many of its identifiers are in the
/// set.
#[derive(Clone)]
struct Page {
    index: usize,
    words: Box<[u64; PAGE_WORDS]>,
    len: u16,
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(PacketId::get))
            .finish()
    }
}

/// The page, the word in it and the bit in that word of `id`.
fn slot(id: PacketId) -> (usize, usize, u64) {
    let id = usize::from(id.get());
    (id / PAGE_IDS, id % PAGE_IDS / 64, 1u64 << (id % 64))
}

impl IdSet {
    /// How many identifiers are in the set.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: PacketId) -> bool {
        let (page, word, bit) = slot(id);
        let page = self.pages.iter().find(|p| p.index == page);
        page.and_then(|p| p.words.get(word))
            .is_some_and(|w| w & bit != 0)
    }

    /// Adds `id`; false if it was in the set already.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        let (page, word, bit) = slot(id);
        let at = match self.pages.binary_search_by_key(&page, |p| p.index) {
            Ok(at) => at,
            Err(at) => {
                let words = self
                    .spare
                    .take()
                    .unwrap_or_else(|| Box::new([0; PAGE_WORDS]));
                let new = Page {
                    index: page,
                    words,
                    len: 0,
                };
                self.pages.insert(at, new);
                at
            }
        };
        let Some(page) = self.pages.get_mut(at) else {
            return false; // cannot happen: `at` was found or made
        };
        match page.words.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                page.len += 1;
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes `id`; false if it was not in the set.
    pub(crate) fn remove(&mut self, id: PacketId) -> bool {
        let (page, word, bit) = slot(id);
        let Some(at) = self.pages.iter().position(|p| p.index == page) else {
            return false;
        };
        let Some(held) = self.pages.get_mut(at) else {
            return false;
        };
        match held.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                held.len -= 1;
                self.len -= 1;
                if held.len == 0 {
                    // All its words are zero again: ready for reuse.
                    let emptied = self.pages.remove(at);
                    self.spare.get_or_insert(emptied.words);
                }
                true
            }
            _ => false,
        }
    }

    /// Empties the set, giving its pages (the spare too) back.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The identifiers in the set, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.pages.iter().flat_map(|page| {
            let p = page.index;
            page.words.iter().enumerate().flat_map(move |(w, &word)| {
                (0..64u32)
                    .filter(move |bit| word & (1u64 << bit) != 0)
                    .filter_map(move |bit| {
                        let id = p * PAGE_IDS + w * 64 + bit as usize;
                        PacketId::new(u16::try_from(id).ok()?)
                    })
            })
        })
    }

    /// How many pages the set holds (for tests of its memory).
    #[cfg(test)]
    pub(crate) fn pages_held(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    #[test]
    fn insert_remove_and_contains_agree_with_a_reference_set() {
        let mut set = IdSet::default();
        let mut reference = std::collections::BTreeSet::new();
        let mut x: u32 = 12_345;
        for _ in 0..20_000 {
            // A small LCG: ids spread over the whole range, with repeats.
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let v = u16::try_from((x >> 8) % 65_535 + 1).unwrap();
            if x & 1 == 0 {
                assert_eq!(set.insert(id(v)), reference.insert(v));
            } else {
                assert_eq!(set.remove(id(v)), reference.remove(&v));
            }
            assert_eq!(set.len(), reference.len());
        }
        let listed: Vec<u16> = set.iter().map(PacketId::get).collect();
        assert_eq!(listed, reference.iter().copied().collect::<Vec<_>>());
        for v in [1, 4095, 4096, 4097, 65_535] {
            assert_eq!(set.contains(id(v)), reference.contains(&v));
        }
    }

    #[test]
    fn pages_are_held_only_while_an_identifier_in_them_is_in_the_set() {
        let mut set = IdSet::default();
        assert_eq!(set.pages_held(), 0);
        assert!(!set.remove(id(9)), "nothing to remove from a page not held");
        assert!(set.insert(id(1)) && set.insert(id(4095)) && set.insert(id(4096)));
        assert_eq!(set.pages_held(), 2, "4095 and 4096 sit in different pages");
        assert!(!set.insert(id(4096)));
        assert!(set.remove(id(4096)));
        assert_eq!(set.pages_held(), 1);
        assert!(set.insert(id(65_535)));
        set.clear();
        assert_eq!((set.pages_held(), set.len()), (0, 0));
        assert!(!set.contains(id(1)));
    }

    #[test]
    fn an_emptied_page_is_kept_as_the_spare_and_reused() {
        let mut set = IdSet::default();
        assert!(set.spare.is_none(), "nothing is held before use");
        assert!(set.insert(id(1)) && set.remove(id(1)));
        assert!(set.spare.is_some() && set.pages_held() == 0);
        // Another page of the range takes the spare instead of allocating.
        assert!(set.insert(id(50_000)));
        assert!(set.spare.is_none() && set.contains(id(50_000)) && !set.contains(id(1)));
        assert_eq!(set.iter().collect::<Vec<_>>(), [id(50_000)]);
        set.clear();
        assert!(set.spare.is_none() && set.pages_held() == 0);
    }
}
