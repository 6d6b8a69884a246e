//! [`Report::html`]: a self-contained HTML page with the summary and two SVG charts drawn with
//! plotters: messages per second and latency (p50, p99) over the run.

use plotters::prelude::*;

use crate::Error;
use crate::report::{Report, Second};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;

/// One line of a chart: its name, colour and value per second.
struct Series<'a> {
    name: &'a str,
    color: RGBColor,
    value: fn(&Second) -> f64,
}

impl Report {
    /// The report as one HTML page: the text summary, then throughput and latency over time as
    /// inline SVG (no scripts, no external files).
    pub fn html(&self) -> Result<String, Error> {
        let throughput = chart(
            &self.series,
            "messages per second",
            "msg/s",
            &[
                Series {
                    name: "published",
                    color: RGBColor(31, 119, 180),
                    value: |s| s.counts.published as f64,
                },
                Series {
                    name: "received",
                    color: RGBColor(44, 160, 44),
                    value: |s| s.counts.received as f64,
                },
                Series {
                    name: "acknowledged",
                    color: RGBColor(255, 127, 14),
                    value: |s| s.counts.acked as f64,
                },
                Series {
                    name: "connected",
                    color: RGBColor(148, 103, 189),
                    value: |s| s.counts.connected as f64,
                },
            ],
        )?;
        let e2e = self.series.iter().any(|s| s.e2e.count > 0);
        let latency = if e2e {
            chart(
                &self.series,
                "publish → receive latency",
                "ms",
                &[
                    Series {
                        name: "p50",
                        color: RGBColor(31, 119, 180),
                        value: |s| s.e2e.p50 as f64 / 1e3,
                    },
                    Series {
                        name: "p99",
                        color: RGBColor(214, 39, 40),
                        value: |s| s.e2e.p99 as f64 / 1e3,
                    },
                ],
            )?
        } else {
            chart(
                &self.series,
                "publish → ack latency",
                "ms",
                &[
                    Series {
                        name: "p50",
                        color: RGBColor(31, 119, 180),
                        value: |s| s.ack.p50 as f64 / 1e3,
                    },
                    Series {
                        name: "p99",
                        color: RGBColor(214, 39, 40),
                        value: |s| s.ack.p99 as f64 / 1e3,
                    },
                ],
            )?
        };
        Ok(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>sansmq bench {mode}</title>\
             <style>body{{font-family:sans-serif;margin:2em;max-width:{WIDTH}px}}\
             pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head><body>\n\
             <h1>sansmq bench {mode}</h1>\n<pre>{summary}</pre>\n\
             <h2>Throughput</h2>\n{throughput}\n<h2>Latency</h2>\n{latency}\n</body></html>\n",
            mode = self.mode,
            summary = escape(&self.text()),
        ))
    }
}

/// An SVG line chart of `lines` over the seconds of `series`.
fn chart(
    series: &[Second],
    title: &str,
    unit: &str,
    lines: &[Series<'_>],
) -> Result<String, Error> {
    let failed = |e: &dyn std::fmt::Display| Error::Report(format!("drawing {title}: {e}"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let seconds = series.last().map_or(1, |s| s.elapsed.max(1));
        let top = series
            .iter()
            .flat_map(|s| lines.iter().map(move |l| (l.value)(s)))
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0u64..seconds, 0.0..top)
            .map_err(|e| failed(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(unit)
            .draw()
            .map_err(|e| failed(&e))?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    series.iter().map(|s| (s.elapsed, (line.value)(s))),
                    color.stroke_width(2),
                ))
                .map_err(|e| failed(&e))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| failed(&e))?;
        root.present().map_err(|e| failed(&e))?;
    }
    Ok(svg)
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Counters, Latencies, Percentiles};

    #[test]
    fn the_page_holds_the_summary_and_two_charts_and_nothing_external() {
        let series: Vec<Second> = (1..=5)
            .map(|elapsed| Second {
                elapsed,
                clients: 10,
                counts: Counters {
                    published: 100 * elapsed,
                    received: 90 * elapsed,
                    ..Counters::default()
                },
                e2e: Percentiles {
                    count: 10,
                    p50: 1500,
                    p99: 4000,
                    ..Percentiles::default()
                },
                ..Second::default()
            })
            .collect();
        let report = Report {
            mode: "pubsub",
            clients: 10,
            duration: Duration::from_secs(5),
            counters: Counters::default(),
            latencies: Latencies::default(),
            lost: 0,
            streams: 0,
            causes: vec![("a <b> & c".into(), 1)],
            series,
            ready: None,
            usage: None,
        };
        let html = report.html().unwrap();
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        assert!(html.contains("publish → receive latency"));
        assert!(html.contains("a &lt;b&gt; &amp; c"));
        assert!(!html.contains("<script") && !html.contains("src="));
    }

    #[test]
    fn an_empty_run_still_draws() {
        let report = Report {
            mode: "conn",
            clients: 1,
            duration: Duration::ZERO,
            counters: Counters::default(),
            latencies: Latencies::default(),
            lost: 0,
            streams: 0,
            causes: Vec::new(),
            series: Vec::new(),
            ready: None,
            usage: None,
        };
        assert!(report.html().unwrap().contains("publish → ack latency"));
    }
}
