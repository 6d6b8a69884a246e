//! [`Meter`]: one broker-wide total of bytes, shared by everything that holds some of them, against
//! a limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running total of bytes over many holders (connections' read buffers, sessions' queues),
/// checked against one limit for the whole broker.
///
/// Each holder keeps a clone, adds what it takes and gives it back when it lets go (its `Drop`
/// included), so the total is exact without the event loop summing over every holder. Only the
/// broker's thread touches it; the atomic is there because the broker's state is built on the
/// caller's thread and moved to its own.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    used: Arc<AtomicUsize>,
    /// 0 means no limit, as in mosquitto's configuration.
    limit: usize,
}

impl Meter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Bytes held now, over every holder.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether `bytes` more would stay within the limit.
    pub(crate) fn has_room_for(&self, bytes: usize) -> bool {
        self.limit == 0 || self.used().saturating_add(bytes) <= self.limit
    }

    pub(crate) fn add(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_add(bytes))
            });
    }

    pub(crate) fn sub(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Moves the total from `before` to `after` for one holder whose share changed.
    pub(crate) fn track(&self, before: usize, after: usize) {
        if after > before {
            self.add(after - before);
        } else {
            self.sub(before - after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_total_and_zero_means_no_limit() {
        let meter = Meter::new(10);
        let other = meter.clone();
        meter.add(6);
        other.track(0, 4);
        assert_eq!(meter.used(), 10);
        assert!(meter.has_room_for(0));
        assert!(!other.has_room_for(1));
        other.track(4, 1);
        assert_eq!((meter.used(), meter.has_room_for(3)), (7, true));
        meter.sub(100);
        assert_eq!(meter.used(), 0);
        let unlimited = Meter::new(0);
        unlimited.add(usize::MAX);
        assert!(unlimited.has_room_for(usize::MAX));
    }
}
