//! [`Backoff`]: exponential reconnect delays with jitter, per client (not a shared static, as Paho's is).

use std::time::Duration;

use crate::Error;

/// Delays that double from `min` to `max`; each is drawn from the upper half of the current step, so
/// clients that lost the same broker at once do not come back in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Delays from `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            step: min,
        }
    }

    /// The delay before the next attempt; the one after will be about twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = self.step.saturating_mul(2).min(self.max);
        let half = step / 2;
        half.saturating_add(half.mul_f64(fastrand::f64()))
    }

    /// The delay before reconnecting after `cause`: the longest one when the broker refused us
    /// (wrong credentials or a ban: retrying at full speed only adds load).
    pub fn delay_after(&mut self, cause: &Error) -> Duration {
        if matches!(cause, Error::Refused(_)) {
            self.jump_to_max();
        }
        self.next_delay()
    }

    /// Skips to the longest delay (the broker refused us: hammering it will not help).
    pub fn jump_to_max(&mut self) {
        self.step = self.max;
    }

    /// A connection succeeded: start again from `min`.
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_max() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay()).collect();
        for (delay, step) in delays.iter().zip([1, 2, 4, 8, 8, 8]) {
            let step = Duration::from_secs(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} for step {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
        backoff.jump_to_max();
        assert!(backoff.next_delay() >= Duration::from_secs(4));
    }

    #[test]
    fn duration_max_saturates_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            assert!(backoff.next_delay() >= Duration::MAX / 2);
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..80 {
            let _ = backoff.next_delay();
        }
    }
}
