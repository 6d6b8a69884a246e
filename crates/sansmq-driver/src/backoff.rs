//! [`Backoff`]: exponential reconnect delays with jitter, per client (not a shared static, as Paho's is).

use std::time::Duration;

use sansmq::DisconnectReason;

use crate::Error;

/// Delays that double from `min` to `max`. Each is drawn at random from the current step to half as
/// much again (from three quarters of `max` to `max` once the steps reach it), so clients that lost
/// the same broker at once do not come back in lock-step, and no delay is shorter than `min` or
/// longer than `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    /// Draws the jitter; seeded at random unless [`with_seed`](Self::with_seed) says otherwise.
    rng: fastrand::Rng,
}

impl Backoff {
    /// Delays from `min`, doubling up to `max` (a `max` below `min` is taken as `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            step: min,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same delays, with the jitter drawn from a generator seeded with `seed`: reproducible,
    /// for simulations and tests.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The delay before the next attempt; the one after will be about twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        // The window starts at the step itself: drawing below it (as from the step's upper half)
        // made the first reconnect come after as little as half the configured minimum.
        let mut low = step;
        let high = step.saturating_add(step / 2).min(self.max);
        if high <= low {
            // At the cap the window ends at `max`; it still has width, so jitter remains.
            low = (self.max - self.max / 4).max(self.min);
        }
        let high = high.max(low);
        low + (high - low).mul_f64(self.rng.f64())
    }

    /// The delay before reconnecting after `cause`: the longest one when the broker refused us
    /// in its CONNACK (wrong credentials or a ban: retrying at full speed only adds load), with
    /// an MQTT 3.1.1 return code or an MQTT 5 Reason Code alike.
    pub fn delay_after(&mut self, cause: &Error) -> Duration {
        let refused = matches!(
            cause,
            Error::Refused(_) | Error::ConnectionLost(DisconnectReason::ConnectRefused(_))
        );
        if refused {
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

    /// The `n` first delays of a fresh backoff.
    fn delays(min: Duration, max: Duration, n: usize) -> Vec<Duration> {
        let mut backoff = Backoff::new(min, max);
        (0..n).map(|_| backoff.next_delay()).collect()
    }

    #[test]
    fn the_first_reconnect_waits_at_least_the_minimum() {
        let min = Duration::from_secs(1);
        for _ in 0..1_000 {
            let first = delays(min, Duration::from_secs(60), 1)[0];
            assert!(
                first >= min,
                "first delay {first:?} is below the minimum {min:?}"
            );
            assert!(first <= min + min / 2, "first delay {first:?}");
        }
    }

    #[test]
    fn doubles_with_jitter_and_stays_between_min_and_max() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        for _ in 0..200 {
            let delays = delays(min, max, 7);
            for (delay, (low, high)) in delays.iter().zip([
                (1.0, 1.5),
                (2.0, 3.0),
                (4.0, 6.0),
                (6.0, 8.0),
                (6.0, 8.0),
                (6.0, 8.0),
                (6.0, 8.0),
            ]) {
                let (low, high) = (Duration::from_secs_f64(low), Duration::from_secs_f64(high));
                assert!(
                    *delay >= low && *delay <= high,
                    "{delay:?} not in {low:?}..={high:?}: {delays:?}"
                );
            }
        }
    }

    #[test]
    fn delays_are_jittered_even_at_the_cap() {
        let firsts: std::collections::HashSet<_> = (0..50)
            .map(|_| delays(Duration::from_secs(1), Duration::from_secs(60), 1)[0])
            .collect();
        assert!(
            firsts.len() > 1,
            "the first delays are all equal: {firsts:?}"
        );
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        backoff.jump_to_max();
        let capped: std::collections::HashSet<_> = (0..50).map(|_| backoff.next_delay()).collect();
        assert!(
            capped.len() > 1,
            "the capped delays are all equal: {capped:?}"
        );
    }

    #[test]
    fn reset_starts_again_from_the_minimum_and_refusal_jumps_to_the_max() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        let mut backoff = Backoff::new(min, max);
        for _ in 0..5 {
            backoff.next_delay();
        }
        backoff.reset();
        let after_reset = backoff.next_delay();
        assert!(
            after_reset >= min && after_reset <= min + min / 2,
            "{after_reset:?}"
        );
        let refused = backoff.delay_after(&Error::Refused(
            sansmq::packet::ConnectReturnCode::NotAuthorized,
        ));
        assert!(
            refused >= Duration::from_secs(6) && refused <= max,
            "{refused:?}"
        );
    }

    #[test]
    fn an_mqtt_5_connack_refusal_jumps_to_the_max_too() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        let mut backoff = Backoff::new(min, max);
        let reason = sansmq::client::ServerReason {
            reason_code: sansmq::packet::ReasonCode::BadUserNameOrPassword,
            properties: Box::default(),
        };
        let refused = backoff.delay_after(&Error::ConnectionLost(
            DisconnectReason::ConnectRefused(reason),
        ));
        assert!(
            refused >= Duration::from_secs(6) && refused <= max,
            "{refused:?}"
        );
        // A connection lost otherwise starts from the minimum.
        backoff.reset();
        let lost = backoff.delay_after(&Error::ConnectionLost(DisconnectReason::TransportClosed));
        assert!(lost <= min + min / 2, "{lost:?}");
    }

    #[test]
    fn huge_and_inverted_limits_neither_panic_nor_break_the_bounds() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..200 {
            backoff.next_delay();
        }
        let mut inverted = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(inverted.next_delay(), Duration::from_secs(5));
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_delay(), Duration::ZERO);
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
