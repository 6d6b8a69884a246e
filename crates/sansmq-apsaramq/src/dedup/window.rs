//! [`Window`]: the keys seen lately, bounded by count and by age, each step O(1).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Key;

/// The keys first seen within the last `max_age`, at most `max_keys` of them.
///
/// `order` holds one entry per insertion, oldest first; `seen` maps each remembered key to the
/// insertion that remembers it and when. A forgotten key's entry stays in `order` until it is the
/// oldest (then it is dropped at once), so `order` bounds `seen`, and `max_keys` bounds `order`.
#[derive(Debug)]
pub(crate) struct Window {
    max_keys: usize,
    max_age: Duration,
    seen: HashMap<Key, Sighting>,
    order: VecDeque<Entry>,
    /// Number of the next insertion.
    next: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sighting {
    insertion: u64,
    at: Instant,
}

#[derive(Debug)]
struct Entry {
    key: Key,
    insertion: u64,
}

impl Window {
    pub(crate) fn new(max_keys: usize, max_age: Duration) -> Self {
        Self {
            max_keys,
            max_age,
            seen: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    pub(crate) fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Remembers `key` as seen at `now`; false if it already was within the window (its first
    /// sighting is kept: seeing it again does not make it live longer).
    pub(crate) fn insert(&mut self, now: Instant, key: &Key) -> bool {
        self.expire(now);
        if self.seen.contains_key(key) {
            return false;
        }
        if self.max_keys == 0 || self.max_age.is_zero() {
            return true; // a window that holds nothing: every key is new
        }
        // Room for one more, counting forgotten entries too (they still take memory).
        while self.order.len() >= self.max_keys {
            self.pop_oldest();
        }
        let insertion = self.next;
        self.next = self.next.wrapping_add(1);
        self.seen
            .insert(key.clone(), Sighting { insertion, at: now });
        self.order.push_back(Entry {
            key: key.clone(),
            insertion,
        });
        true
    }

    /// Whether `key` is remembered at `now`.
    pub(crate) fn contains(&self, now: Instant, key: &Key) -> bool {
        self.seen
            .get(key)
            .is_some_and(|sighting| !self.is_expired(now, sighting.at))
    }

    /// Forgets `key`; true if it was remembered.
    pub(crate) fn forget(&mut self, key: &Key) -> bool {
        self.seen.remove(key).is_some()
    }

    /// How many keys are remembered (some may be due to expire at the next insertion).
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    pub(crate) fn clear(&mut self) {
        self.seen.clear();
        self.order.clear();
    }

    /// Drops the oldest entries while they are expired or forgotten: amortised O(1) per
    /// insertion, as each entry is pushed and popped once.
    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            match self.sighting(oldest) {
                Some(sighting) if !self.is_expired(now, sighting.at) => return,
                _ => self.pop_oldest(),
            }
        }
    }

    /// When the key of `entry` was seen, if `entry` is what remembers it (not a forgotten key's).
    fn sighting(&self, entry: &Entry) -> Option<Sighting> {
        self.seen
            .get(&entry.key)
            .copied()
            .filter(|sighting| sighting.insertion == entry.insertion)
    }

    fn is_expired(&self, now: Instant, at: Instant) -> bool {
        // A `now` earlier than the sighting (a caller's clock mix-up) counts as age 0.
        now.saturating_duration_since(at) >= self.max_age
    }

    fn pop_oldest(&mut self) {
        if let Some(entry) = self.order.pop_front() {
            if self.sighting(&entry).is_some() {
                self.seen.remove(&entry.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(10);

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[test]
    fn a_key_is_new_once_within_the_window() {
        let mut window = Window::new(10, AGE);
        let now = Instant::now();
        assert!(window.insert(now, &key("a")));
        assert!(!window.insert(now, &key("a")));
        assert!(window.insert(now, &key("b")));
        assert_eq!(window.len(), 2);
    }

    #[test]
    fn the_oldest_key_leaves_past_max_keys_and_is_new_again() {
        let mut window = Window::new(3, AGE);
        let now = Instant::now();
        for k in ["a", "b", "c", "d"] {
            assert!(window.insert(now, &key(k)));
        }
        assert_eq!(window.len(), 3);
        assert!(!window.contains(now, &key("a")));
        for k in ["b", "c", "d"] {
            assert!(window.contains(now, &key(k)), "{k}");
        }
        assert!(window.insert(now, &key("a")), "forgotten, so new again");
        assert!(!window.contains(now, &key("b")), "and it pushed out b");
    }

    #[test]
    fn a_key_leaves_at_max_age_from_its_first_sighting() {
        let mut window = Window::new(10, AGE);
        let t0 = Instant::now();
        assert!(window.insert(t0, &key("a")));
        let almost = t0 + AGE - Duration::from_millis(1);
        assert!(!window.insert(almost, &key("a")), "still within the window");
        // Seeing it again did not extend its life.
        assert!(!window.contains(t0 + AGE, &key("a")));
        assert!(window.insert(t0 + AGE, &key("a")), "new again at max_age");
        assert!(!window.insert(t0 + AGE, &key("a")));
    }

    #[test]
    fn expired_keys_free_their_memory_at_the_next_insertion() {
        let mut window = Window::new(100, AGE);
        let t0 = Instant::now();
        for n in 0..50 {
            window.insert(t0, &key(&n.to_string()));
        }
        window.insert(t0 + AGE, &key("late"));
        assert_eq!(window.len(), 1);
        assert_eq!(window.order.len(), 1);
    }

    #[test]
    fn forgotten_keys_are_new_and_their_entries_count_toward_the_bound() {
        let mut window = Window::new(2, AGE);
        let now = Instant::now();
        assert!(window.insert(now, &key("a")));
        assert!(window.forget(&key("a")));
        assert!(!window.forget(&key("a")));
        assert!(window.insert(now, &key("a")), "new after forget");
        // Two entries for "a" (one forgotten): "b" pops the forgotten one, not the live "a".
        assert!(window.insert(now, &key("b")));
        assert!(window.contains(now, &key("a")));
        assert!(window.contains(now, &key("b")));
        assert!(window.order.len() <= 2);
    }

    #[test]
    fn an_empty_window_remembers_nothing() {
        let now = Instant::now();
        for mut window in [Window::new(0, AGE), Window::new(10, Duration::ZERO)] {
            assert!(window.insert(now, &key("a")));
            assert!(window.insert(now, &key("a")));
            assert_eq!(window.len(), 0);
        }
    }

    #[test]
    fn a_clock_going_backwards_does_not_panic_or_expire() {
        let mut window = Window::new(10, AGE);
        let t0 = Instant::now() + AGE;
        assert!(window.insert(t0, &key("a")));
        assert!(!window.insert(t0 - AGE, &key("a")));
        assert!(window.contains(t0 - AGE, &key("a")));
    }

    proptest::proptest! {
        /// Against a plain list of sightings (forgotten ones kept in place, as they take room
        /// until they are the oldest): the same answers, and never more than max_keys entries.
        #[test]
        fn agrees_with_a_model(
            max_keys in 1usize..8,
            steps in proptest::collection::vec(
                (0u8..12, 0u64..4, proptest::bool::weighted(0.1)),
                0..200,
            ),
        ) {
            let age = 5;
            let mut window = Window::new(max_keys, Duration::from_secs(age));
            // (key, first seen at, still remembered), oldest first.
            let mut model: Vec<(u8, u64, bool)> = Vec::new();
            let t0 = Instant::now();
            let mut clock = 0;
            for (k, advance, forget) in steps {
                clock += advance;
                let now = t0 + Duration::from_secs(clock);
                let the_key = key(&k.to_string());
                if forget {
                    let mut was = false;
                    for entry in model.iter_mut().filter(|e| e.0 == k && e.2) {
                        entry.2 = false;
                        was = true;
                    }
                    proptest::prop_assert_eq!(window.forget(&the_key), was);
                    continue;
                }
                while model.first().is_some_and(|e| !e.2 || clock - e.1 >= age) {
                    model.remove(0);
                }
                let expected_new = !model.iter().any(|e| e.0 == k && e.2);
                proptest::prop_assert_eq!(window.insert(now, &the_key), expected_new);
                if expected_new {
                    while model.len() >= max_keys {
                        model.remove(0);
                    }
                    model.push((k, clock, true));
                }
                proptest::prop_assert!(window.order.len() <= max_keys);
                proptest::prop_assert_eq!(window.len(), model.iter().filter(|e| e.2).count());
            }
        }
    }
}
