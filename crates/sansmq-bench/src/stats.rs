//! What the event loops count and measure: [`Counters`], [`Latencies`] (HdrHistograms in
//! microseconds), and the [`Tick`] each loop sends once a second with what happened since its
//! last one.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Event counts. In a [`Tick`], what happened since the loop's previous one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// TCP connects started.
    pub connect_attempts: u64,
    /// Connections the broker accepted (CONNACK).
    pub connected: u64,
    /// Connections that failed before their CONNACK (refused, reset, timed out, rejected).
    pub connect_errors: u64,
    /// Connections lost after their CONNACK without us asking.
    pub disconnects: u64,
    /// Connections we closed with DISCONNECT.
    pub closed: u64,
    /// SUBACKs that granted the subscription.
    pub subscribed: u64,
    /// Subscriptions the broker refused.
    pub subscribe_errors: u64,
    /// Messages published (handed to the session).
    pub published: u64,
    /// QoS 1/2 messages the broker acknowledged (PUBACK / PUBCOMP).
    pub acked: u64,
    /// QoS 1/2 messages the broker refused (MQTT 5) or that were given up unsent.
    pub refused: u64,
    /// Publishes skipped because the session's queue was full: the broker did not keep up.
    pub backpressure: u64,
    /// Messages received with a bench header.
    pub received: u64,
    /// Of those, how many a subscriber had already received from the same publisher.
    pub duplicates: u64,
    /// Of those, how many arrived after a later one from the same publisher.
    pub reordered: u64,
    /// Messages received without a bench header (not from `sansmq bench`).
    pub foreign: u64,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        self.connect_attempts += other.connect_attempts;
        self.connected += other.connected;
        self.connect_errors += other.connect_errors;
        self.disconnects += other.disconnects;
        self.closed += other.closed;
        self.subscribed += other.subscribed;
        self.subscribe_errors += other.subscribe_errors;
        self.published += other.published;
        self.acked += other.acked;
        self.refused += other.refused;
        self.backpressure += other.backpressure;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.foreign += other.foreign;
    }

    /// Failures: connects that failed, connections lost, subscriptions and messages refused.
    pub fn errors(&self) -> u64 {
        self.connect_errors + self.disconnects + self.subscribe_errors + self.refused
    }

    /// Connections open now, from totals since the start.
    pub fn open(&self) -> u64 {
        self.connected
            .saturating_sub(self.disconnects + self.closed)
    }
}

/// The latencies the bench measures, in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// TCP connect started → CONNACK.
    pub connect: Histogram<u64>,
    /// `publish` → PUBACK (QoS 1) or PUBCOMP (QoS 2).
    pub ack: Histogram<u64>,
    /// Send time in the header → received by a subscriber (wall clocks of both processes).
    pub e2e: Histogram<u64>,
}

/// The highest latency recorded: an hour; longer ones count as an hour.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to an hour: constant, valid bounds, so this cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            connect: histogram(),
            ack: histogram(),
            e2e: histogram(),
        }
    }
}

impl Latencies {
    /// Records `latency` in `which`, capped at an hour (and at least 1 µs).
    pub fn record(which: &mut Histogram<u64>, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        which.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail; saturate if it ever did.
        for (mine, theirs) in [
            (&mut self.connect, &other.connect),
            (&mut self.ack, &other.ack),
            (&mut self.e2e, &other.e2e),
        ] {
            if mine.add(theirs).is_err() {
                for v in theirs.iter_recorded() {
                    mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
    }

    /// Empties every histogram, keeping their memory.
    pub fn reset(&mut self) {
        self.connect.reset();
        self.ack.reset();
        self.e2e.reset();
    }
}

/// Percentiles of one latency, in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// How many were measured.
    pub count: u64,
    /// The mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// What one event loop reports, once a second and when it ends.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// Counts since the loop's previous tick.
    pub counters: Counters,
    /// Latencies measured since the previous tick.
    pub latencies: Latencies,
    /// In the loop's last tick: messages missing below each publisher's highest sequence number,
    /// over all its subscribers.
    pub lost: u64,
    /// In the loop's last tick: (subscriber, publisher) pairs heard from.
    pub streams: u64,
    /// Why connections failed since the previous tick, with how often.
    pub causes: Vec<(String, u64)>,
    /// Whether this is the loop's last tick.
    pub last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_microseconds_clamped_into_range() {
        let mut l = Latencies::default();
        Latencies::record(&mut l.ack, Duration::from_millis(2));
        Latencies::record(&mut l.ack, Duration::ZERO);
        Latencies::record(&mut l.ack, Duration::from_secs(10 * 3600));
        let p = Percentiles::of(&l.ack);
        assert_eq!(p.count, 3);
        assert!(l.ack.equivalent(p.p50, 2000), "{p:?}");
        assert_eq!(l.ack.min(), 1);
        assert!(l.ack.equivalent(p.max, MAX_MICROS), "{p:?}");
    }

    #[test]
    fn ticks_add_up_and_errors_and_open_connections_follow() {
        let mut total = Latencies::default();
        let mut one = Latencies::default();
        Latencies::record(&mut one.e2e, Duration::from_micros(500));
        total.add(&one);
        total.add(&one);
        assert_eq!(total.e2e.len(), 2);
        one.reset();
        assert!(one.e2e.is_empty());

        let mut c = Counters {
            connected: 10,
            connect_errors: 2,
            ..Counters::default()
        };
        c.add(&Counters {
            disconnects: 1,
            closed: 3,
            refused: 1,
            ..Counters::default()
        });
        assert_eq!(c.errors(), 4);
        assert_eq!(c.open(), 6);
    }

    #[test]
    fn no_measurement_gives_zero_percentiles() {
        assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
    }
}
