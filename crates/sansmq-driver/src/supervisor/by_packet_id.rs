//! [`ByPacketId`]: a map keyed by packet identifier, hashed by one multiplication.
//!
//! The supervisor looks up a waiter by packet identifier for every acknowledgement it reads.
//! `HashMap`'s default hasher (SipHash, keyed against hash flooding) cost about 250 instructions
//! per QoS 1 message there. Flooding is no threat here: the keys are identifiers this client
//! allocated, and an acknowledgement for an unknown identifier misses the map without growing it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sansmq::packet::PacketId;

/// Waiters by the packet identifier their acknowledgement will carry.
pub(super) type ByPacketId<V> = HashMap<PacketId, V, BuildHasherDefault<PacketIdHasher>>;

/// Hashes a packet identifier (a `u16`) by Fibonacci hashing: multiplied by 2⁶⁴/φ, so that
/// consecutive identifiers differ in the high bits the table uses to tell entries apart as well as
/// in the low bits it uses to place them. A multiplication carries low bits upwards only, so
/// identifiers a power of two apart would share their low bits; the core allocates them one after
/// another.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PacketIdHasher(u64);

/// ⌊2⁶⁴ / φ⌋, odd, so that the multiplication loses nothing.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for PacketIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(GOLDEN);
    }

    /// Any other input (a `PacketId` only writes its `u16`), a byte at a time.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(GOLDEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    fn hash(id: u16) -> u64 {
        let id = PacketId::new(id).expect("non-zero");
        BuildHasherDefault::<PacketIdHasher>::default().hash_one(id)
    }

    #[test]
    fn identifiers_take_distinct_places_and_use_every_tag() {
        let mut high = std::collections::HashSet::new();
        let mut low = std::collections::HashSet::new();
        for id in 1..=u16::MAX {
            let h = hash(id);
            // The table places an entry by the low bits and tells entries apart by the top 7.
            high.insert(h >> 57);
            low.insert(h & 0xFFFF);
        }
        assert_eq!(high.len(), 128, "all 128 tags are used");
        assert_eq!(
            low.len(),
            usize::from(u16::MAX),
            "no two identifiers share a place"
        );
    }

    #[test]
    fn a_window_of_identifiers_maps_and_unmaps() {
        let mut map: ByPacketId<u16> = ByPacketId::default();
        for round in 0..200u16 {
            for id in round * 300 + 1..=round * 300 + 20 {
                map.insert(PacketId::new(id).expect("non-zero"), id);
            }
            for id in round * 300 + 1..=round * 300 + 20 {
                assert_eq!(map.remove(&PacketId::new(id).expect("non-zero")), Some(id));
            }
            assert!(map.is_empty());
        }
    }
}
