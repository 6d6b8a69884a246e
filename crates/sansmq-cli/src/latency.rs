//! Round-trip latency percentiles for the demo's summary.

use std::fmt;
use std::time::Duration;

/// p50, p90, p99 and the maximum of a set of latencies (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Percentiles {
    pub(crate) p50: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (sorted in place); `None` without samples.
    pub(crate) fn of(samples: &mut [Duration]) -> Option<Self> {
        samples.sort_unstable();
        let max = *samples.last()?;
        let rank = |percent: usize| {
            // Nearest rank: the smallest sample with at least `percent`% of samples at or below it.
            let index = (percent * samples.len()).div_ceil(100).saturating_sub(1);
            samples.get(index).copied().unwrap_or(max)
        };
        Some(Self {
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max,
        })
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        // 1..=100 ms, shuffled: the p-th percentile is p ms.
        let mut samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max),
            (ms(50), ms(90), ms(99), ms(100))
        );
    }

    #[test]
    fn few_samples_and_none() {
        let mut one = [ms(7)];
        let p = Percentiles::of(&mut one).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (ms(7), ms(7), ms(7)));
        let mut ten: Vec<Duration> = (1..=10).map(ms).collect();
        let p = Percentiles::of(&mut ten).unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (ms(5), ms(9), ms(10)));
        assert_eq!(Percentiles::of(&mut []), None);
    }

    #[test]
    fn shown_in_milliseconds() {
        let mut samples = [Duration::from_micros(1500)];
        let shown = Percentiles::of(&mut samples).unwrap().to_string();
        assert_eq!(shown, "p50 1.50 ms, p90 1.50 ms, p99 1.50 ms, max 1.50 ms");
    }
}
