//! [`Closing`]: how a requested disconnect ends the connection, so that the broker reads the
//! DISCONNECT and discards the will.
//!
//! Writing DISCONNECT and closing the socket at once is not enough. When the broker still has
//! messages on the way to the client, the client's socket holds unread bytes at `close`, and Linux
//! then answers with a reset instead of a FIN: the broker's kernel drops what it had not yet read —
//! the DISCONNECT — and the broker sees a connection that failed, so it publishes the will
//! (MQTT-3.1.2-8). A normal exit fired the will 10 times out of 10 that way. So a driver:
//!
//! 1. writes everything queued, DISCONNECT last ([`Closing::handle_flushed`] once it is out);
//! 2. shuts down its write side (TLS `close_notify`, then a FIN): the broker reads the DISCONNECT,
//!    then end of stream, and closes its side (MQTT-3.14.4-1: after DISCONNECT the client closes
//!    the connection and sends nothing more);
//! 3. reads and discards what still arrives until the broker's end of stream;
//! 4. closes the socket — at the end of stream, on an error, or at [`Closing::deadline`].
//!
//! Both phases are bounded: [`FLUSH_LIMIT`] for writing (a broker that stopped reading), then
//! [`LINGER`] for the broker to close (one that keeps the connection open after DISCONNECT).

use std::time::{Duration, Instant};

use crate::deadline_after;

/// How long writing what is queued before and including DISCONNECT may take.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// How long to wait for the broker's end of stream once our write side is shut: a broker closes
/// at once after DISCONNECT, one round trip away; a second covers any WAN.
pub const LINGER: Duration = Duration::from_secs(1);

/// The longest a requested close may take, from DISCONNECT queued to socket closed.
pub const CLOSE_LIMIT: Duration = FLUSH_LIMIT.saturating_add(LINGER);

/// A requested close in progress: the phase it is in and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    draining: bool,
    deadline: Instant,
}

impl Closing {
    /// DISCONNECT was queued at `now`: write it out.
    pub fn new(now: Instant) -> Self {
        Self {
            draining: false,
            deadline: deadline_after(now, FLUSH_LIMIT),
        }
    }

    /// Everything queued, DISCONNECT included, has been written: returns `true` the first time,
    /// when the driver must shut down its write side and start discarding what it reads.
    pub fn handle_flushed(&mut self, now: Instant) -> bool {
        if self.draining {
            return false;
        }
        self.draining = true;
        self.deadline = deadline_after(now, LINGER);
        true
    }

    /// Whether the write side is shut and reads are being discarded until end of stream.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// When to close the socket even though the close has not completed.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed at `now`: close the socket.
    #[must_use]
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushing_then_lingering_each_have_their_own_bound() {
        let start = Instant::now();
        let mut closing = Closing::new(start);
        assert!(!closing.is_draining());
        assert_eq!(closing.deadline(), start + FLUSH_LIMIT);
        assert!(!closing.is_expired(start + FLUSH_LIMIT - Duration::from_millis(1)));
        assert!(closing.is_expired(start + FLUSH_LIMIT));

        let flushed = start + Duration::from_millis(300);
        assert!(closing.handle_flushed(flushed), "shut the write side once");
        assert!(closing.is_draining());
        assert_eq!(closing.deadline(), flushed + LINGER);
        assert!(!closing.handle_flushed(flushed + Duration::from_millis(10)));
        assert_eq!(closing.deadline(), flushed + LINGER, "not extended");
        assert!(closing.deadline() <= start + CLOSE_LIMIT);
    }
}
