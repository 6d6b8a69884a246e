//! [`Report`]: what a bench measured, as text, JSON and a per-second CSV series; and
//! [`Second`], one line of the live output.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::{Counters, Latencies, Percentiles};
use crate::usage::Usage;

/// One second of a bench: the live line, and a row of the CSV series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    /// Seconds since the start.
    pub elapsed: u64,
    /// Clients in the bench.
    pub clients: u64,
    /// Totals since the start, at the end of this second.
    pub totals: Counters,
    /// What happened in this second.
    pub counts: Counters,
    /// End-to-end latency percentiles of this second (µs).
    pub e2e: Percentiles,
    /// Publish → ack latency percentiles of this second (µs).
    pub ack: Percentiles,
}

impl Second {
    /// The CSV header line.
    pub const CSV_HEADER: &'static str = "elapsed_s,connected,conn_per_s,pub_per_s,recv_per_s,acks_per_s,errors,\
e2e_p50_us,e2e_p99_us,ack_p50_us,ack_p99_us";

    /// This second as a CSV line.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            self.elapsed,
            self.totals.open(),
            self.counts.connected,
            self.counts.published,
            self.counts.received,
            self.counts.acked,
            self.totals.errors(),
            self.e2e.p50,
            self.e2e.p99,
            self.ack.p50,
            self.ack.p99,
        )
    }

    /// The live line: connected, rates, errors, latency; a progress bar while connecting.
    pub fn line(&self) -> String {
        let open = self.totals.open();
        let mut line = format!("{:>4}s conn {open}/{}", self.elapsed, self.clients);
        if self.totals.connected < self.clients {
            let done = (self.totals.connected + self.totals.connect_errors).min(self.clients);
            let width = 20;
            let filled = usize::try_from(done * width / self.clients.max(1)).unwrap_or(0);
            let _ = write!(
                line,
                " [{}{}]",
                "#".repeat(filled),
                ".".repeat(usize::try_from(width).unwrap_or(0).saturating_sub(filled))
            );
        }
        let c = &self.counts;
        let _ = write!(
            line,
            " +{}/s pub {}/s recv {}/s acks {}/s err {}",
            c.connected,
            c.published,
            c.received,
            c.acked,
            self.totals.errors()
        );
        let (name, p) = if self.e2e.count > 0 {
            ("e2e", self.e2e)
        } else {
            ("ack", self.ack)
        };
        if p.count > 0 {
            let _ = write!(line, " {name} p50 {} p99 {}", micros(p.p50), micros(p.p99));
        }
        line
    }
}

/// A latency for people: µs, ms or s.
fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// The moment every client was connected (and subscribed): what had happened by then, so that a
/// harness can tell the cost of connecting from the cost of the messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ready {
    /// Since the start.
    pub elapsed: Duration,
    /// Totals by then.
    pub counters: Counters,
    /// This process's CPU time and memory then.
    pub usage: Option<Usage>,
}

/// What a whole bench measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// conn, pub, sub or pubsub.
    pub mode: &'static str,
    /// Clients in the bench.
    pub clients: u64,
    /// From the start to the last client done.
    pub duration: Duration,
    /// Totals.
    pub counters: Counters,
    /// Every latency measured.
    pub latencies: Latencies,
    /// Messages missing below each publisher's highest sequence number, over all subscribers.
    pub lost: u64,
    /// (subscriber, publisher) pairs heard from.
    pub streams: u64,
    /// Why connections failed, with how often, most frequent first.
    pub causes: Vec<(String, u64)>,
    /// One row per second.
    pub series: Vec<Second>,
    /// When every client was connected (and subscribed), if they ever were.
    pub ready: Option<Ready>,
    /// This process's CPU time and memory at the end.
    pub usage: Option<Usage>,
}

impl Report {
    fn rate(&self, n: u64) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "sansmq bench {}: {} clients, {:.1} s",
            self.mode,
            self.clients,
            self.duration.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  connections  {} connected, {} connect errors, {} lost, {} closed",
            c.connected, c.connect_errors, c.disconnects, c.closed
        );
        if c.subscribed + c.subscribe_errors > 0 {
            let _ = writeln!(
                out,
                "  subscribed   {} ({} refused)",
                c.subscribed, c.subscribe_errors
            );
        }
        if c.published > 0 || c.backpressure > 0 {
            let _ = writeln!(
                out,
                "  published    {} ({:.0} msg/s), {} acked, {} refused, {} skipped (queue full)",
                c.published,
                self.rate(c.published),
                c.acked,
                c.refused,
                c.backpressure
            );
        }
        if c.received > 0 || self.streams > 0 {
            let _ = writeln!(
                out,
                "  received     {} ({:.0} msg/s), {} lost, {} duplicates, {} reordered, from {} publisher streams",
                c.received,
                self.rate(c.received),
                self.lost,
                c.duplicates,
                c.reordered,
                self.streams
            );
        }
        if c.foreign > 0 {
            let _ = writeln!(
                out,
                "  foreign      {} messages without a bench header",
                c.foreign
            );
        }
        for (cause, n) in &self.causes {
            let _ = writeln!(out, "  error        {n} × {cause}");
        }
        let mut header = false;
        for (name, histogram) in self.histograms() {
            let p = Percentiles::of(histogram);
            if p.count == 0 {
                continue;
            }
            if !header {
                header = true;
                let _ = writeln!(
                    out,
                    "  latency        count      mean       p50       p90       p99     p99.9       max"
                );
            }
            let _ = writeln!(
                out,
                "  {name:<12} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                p.count,
                micros(p.mean as u64),
                micros(p.p50),
                micros(p.p90),
                micros(p.p99),
                micros(p.p999),
                micros(p.max)
            );
        }
        out
    }

    fn histograms(&self) -> [(&'static str, &hdrhistogram::Histogram<u64>); 3] {
        [
            ("connect", &self.latencies.connect),
            ("pub→ack", &self.latencies.ack),
            ("pub→recv", &self.latencies.e2e),
        ]
    }

    /// The summary as JSON; latencies in microseconds.
    pub fn json(&self) -> Value {
        let c = &self.counters;
        let latency = |h: &hdrhistogram::Histogram<u64>| {
            let p = Percentiles::of(h);
            json!({
                "count": p.count, "mean_us": p.mean, "p50_us": p.p50, "p90_us": p.p90,
                "p99_us": p.p99, "p99_9_us": p.p999, "max_us": p.max,
            })
        };
        let usage = |u: Option<Usage>| {
            u.map_or(
                Value::Null,
                |u| json!({"cpu_s": u.cpu.as_secs_f64(), "rss_bytes": u.rss}),
            )
        };
        let ready = self.ready.map_or(Value::Null, |r| {
            json!({
                "elapsed_s": r.elapsed.as_secs_f64(),
                "connected": r.counters.connected,
                "published": r.counters.published,
                "received": r.counters.received,
                "usage": usage(r.usage),
            })
        });
        json!({
            "mode": self.mode,
            "ready": ready,
            "usage": usage(self.usage),
            "clients": self.clients,
            "duration_s": self.duration.as_secs_f64(),
            "connect_attempts": c.connect_attempts,
            "connected": c.connected,
            "connect_errors": c.connect_errors,
            "disconnects": c.disconnects,
            "closed": c.closed,
            "subscribed": c.subscribed,
            "subscribe_errors": c.subscribe_errors,
            "published": c.published,
            "publish_rate": self.rate(c.published),
            "acked": c.acked,
            "refused": c.refused,
            "backpressure": c.backpressure,
            "received": c.received,
            "receive_rate": self.rate(c.received),
            "lost": self.lost,
            "duplicates": c.duplicates,
            "reordered": c.reordered,
            "foreign": c.foreign,
            "streams": self.streams,
            "errors": c.errors(),
            "error_causes": self.causes.iter().map(|(cause, n)| json!({"cause": cause, "count": n})).collect::<Vec<_>>(),
            "latency": {
                "connect": latency(&self.latencies.connect),
                "publish_to_ack": latency(&self.latencies.ack),
                "publish_to_receive": latency(&self.latencies.e2e),
            },
        })
    }

    /// The per-second series as CSV.
    pub fn write_csv(&self, out: &mut impl io::Write) -> io::Result<()> {
        writeln!(out, "{}", Second::CSV_HEADER)?;
        for second in &self.series {
            writeln!(out, "{}", second.csv())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut latencies = Latencies::default();
        Latencies::record(&mut latencies.e2e, Duration::from_micros(1500));
        Latencies::record(&mut latencies.connect, Duration::from_micros(300));
        Report {
            mode: "sub",
            clients: 10,
            duration: Duration::from_secs(2),
            counters: Counters {
                connected: 10,
                received: 100,
                duplicates: 1,
                ..Counters::default()
            },
            latencies,
            lost: 3,
            streams: 20,
            causes: vec![("connect failed: refused".into(), 2)],
            series: vec![Second {
                elapsed: 1,
                clients: 10,
                ..Second::default()
            }],
            ready: Some(Ready {
                elapsed: Duration::from_millis(1500),
                counters: Counters::default(),
                usage: Some(Usage {
                    cpu: Duration::from_millis(20),
                    rss: 4096,
                }),
            }),
            usage: None,
        }
    }

    #[test]
    fn json_has_the_counts_and_every_percentile() {
        let v = report().json();
        assert_eq!(v["received"], 100);
        assert_eq!(v["lost"], 3);
        assert_eq!(v["duplicates"], 1);
        assert_eq!(v["receive_rate"], 50.0);
        let e2e = &v["latency"]["publish_to_receive"];
        for key in ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"] {
            assert!(e2e[key].as_u64().unwrap() >= 1499, "{key}: {e2e}");
        }
        assert_eq!(v["latency"]["publish_to_ack"]["count"], 0);
        assert_eq!(v["error_causes"][0]["count"], 2);
        assert_eq!(v["ready"]["usage"]["rss_bytes"], 4096);
        assert_eq!(v["ready"]["elapsed_s"], 1.5);
        assert!(v["usage"].is_null());
    }

    #[test]
    fn text_shows_latencies_measured_and_errors() {
        let text = report().text();
        assert!(text.contains("pub→recv"), "{text}");
        assert!(!text.contains("pub→ack"), "{text}");
        assert!(text.contains("1.5ms"), "{text}");
        assert!(text.contains("2 × connect failed: refused"), "{text}");
    }

    #[test]
    fn csv_has_a_header_and_a_row_per_second() {
        let mut out = Vec::new();
        report().write_csv(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    }

    #[test]
    fn the_live_line_shows_progress_while_connecting() {
        let second = Second {
            elapsed: 3,
            clients: 100,
            totals: Counters {
                connected: 50,
                ..Counters::default()
            },
            ..Second::default()
        };
        let line = second.line();
        assert!(
            line.contains("conn 50/100 [##########..........]"),
            "{line}"
        );
        assert!(micros(2_500_000).ends_with('s'));
    }
}
