//! [`deadline_after`]: `now + duration` for durations that come from users, without the panic.

use std::time::{Duration, Instant};

/// `now + after`, or an instant so far ahead that it never comes when `after` is too long for the
/// platform's clock: a user's `Duration::MAX` (a timeout, a time-to-wait, a reconnect delay) means
/// "no limit", not "overflow when adding duration to instant".
#[must_use]
pub fn deadline_after(now: Instant, after: Duration) -> Instant {
    let mut after = after;
    loop {
        if let Some(deadline) = now.checked_add(after) {
            return deadline;
        }
        // Halving reaches a representable offset within 64 steps; zero always is one.
        after /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_ordinary_durations_exactly() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(deadline_after(now, Duration::ZERO), now);
    }

    #[test]
    fn saturates_far_in_the_future_instead_of_panicking() {
        let now = Instant::now();
        let far = deadline_after(now, Duration::MAX);
        // At least a century away: never reached by a running process.
        assert!(far >= now + Duration::from_secs(100 * 365 * 24 * 3600));
        for secs in [u64::MAX / 2, u64::MAX / 3, 1 << 62, 1 << 40] {
            assert!(deadline_after(now, Duration::from_secs(secs)) > now);
        }
    }
}
