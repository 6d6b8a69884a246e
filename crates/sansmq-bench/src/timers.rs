//! [`Timers`]: one heap of deadlines for all the connections of an event loop, instead of a
//! timer per connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// Open the connection (its turn in the connect schedule, or a reconnect after backoff).
    Connect,
    /// The session's own deadline (`Client::poll_timeout`: keep-alive, CONNACK...).
    Session,
    /// The connection's next message.
    Publish,
}

/// Deadlines of (connection index, kind), earliest first.
///
/// A session's deadline moves at every packet it sends (keep-alive counts from the last one), so
/// [`arm_session`](Self::arm_session) adds an entry only when the new deadline is earlier than the
/// one already waiting; when that entry comes due, the connection looks at its real deadline and
/// arms it again. Each connection thus has one or two entries at a time, however often it sends.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, Kind)>>,
}

impl Timers {
    /// Adds a deadline.
    pub(crate) fn push(&mut self, at: Instant, conn: u32, kind: Kind) {
        self.heap.push(Reverse((at, conn, kind)));
    }

    /// Arms a session deadline `at` for `conn`, whose earliest waiting one is `*armed`.
    pub(crate) fn arm_session(
        &mut self,
        conn: u32,
        armed: &mut Option<Instant>,
        at: Option<Instant>,
    ) {
        if let Some(at) = at {
            if armed.is_none_or(|a| at < a) {
                *armed = Some(at);
                self.push(at, conn, Kind::Session);
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the earliest deadline if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32, Kind)> {
        if self.next()? <= now {
            self.heap.pop().map(|Reverse(entry)| entry)
        } else {
            None
        }
    }

    /// How many deadlines wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn deadlines_come_earliest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.push(t0 + Duration::from_secs(2), 1, Kind::Publish);
        timers.push(t0 + Duration::from_secs(1), 2, Kind::Connect);
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(now).map(|e| e.1), Some(2));
        assert_eq!(timers.pop_due(now).map(|e| e.1), Some(1));
        assert_eq!(timers.pop_due(now), None);
    }

    #[test]
    fn a_later_session_deadline_adds_no_entry() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut armed = None;
        for s in 10..1000 {
            timers.arm_session(0, &mut armed, Some(t0 + Duration::from_secs(s)));
        }
        assert_eq!(timers.len(), 1);
        timers.arm_session(0, &mut armed, Some(t0 + Duration::from_secs(5)));
        assert_eq!(timers.len(), 2);
        assert_eq!(armed, Some(t0 + Duration::from_secs(5)));
        timers.arm_session(0, &mut armed, None);
        assert_eq!(timers.len(), 2);
    }
}
