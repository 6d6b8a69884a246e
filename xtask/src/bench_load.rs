//! `cargo xtask bench-load`: `sansmq bench` (release build) against mosquitto and against our own
//! broker, for 1k and 10k connections: messages per second, generator and broker CPU per
//! message, and RSS per connection, printed as a Markdown table for the README.
//!
//! An xtask rather than a criterion bench: what is measured is two separate processes (the
//! released `sansmq` binary people run, and a broker), their CPU time and memory read from
//! `/proc`, not a function timed in a loop.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use sansmq_bench::Usage;
use sansmq_e2e::Mosquitto;
use serde_json::Value;

use crate::cmd;

/// Options of `cargo xtask bench-load`.
#[derive(Debug, Args)]
pub(crate) struct BenchLoadArgs {
    /// Connection counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    counts: Vec<u32>,
    /// QoS levels of the publish runs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    qos: Vec<u8>,
    /// Messages per publish run.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Brokers: mosquitto, sansmq (our own sansmq-broker), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "mosquitto,sansmq")]
    brokers: Vec<String>,
    /// Event loops of the generator (`sansmq bench -j`).
    #[arg(short = 'j', long, default_value_t = 1)]
    jobs: u16,
}

/// A broker under test, stopped when dropped.
enum Broker {
    Mosquitto(Box<Mosquitto>),
    Sansmq { child: Child, port: u16 },
}

impl Broker {
    fn start(kind: &str, sansmq: &Path) -> anyhow::Result<Self> {
        match kind {
            "mosquitto" => Ok(Self::Mosquitto(Box::new(
                Mosquitto::builder()
                    .max_queued_messages(0)
                    .config_line("max_connections -1")
                    .start(),
            ))),
            "sansmq" => {
                let mut child = Command::new(sansmq)
                    .args(["broker", "--bind", "127.0.0.1:0"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting sansmq broker")?;
                let stdout = child.stdout.take().context("piped stdout")?;
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                let port = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|port| port.parse().ok())
                    .with_context(|| format!("no address in {line:?}"))?;
                Ok(Self::Sansmq { child, port })
            }
            other => bail!("unknown broker {other:?}: use mosquitto or sansmq"),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Self::Mosquitto(m) => m.port(),
            Self::Sansmq { port, .. } => *port,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Mosquitto(m) => m.pid(),
            Self::Sansmq { child, .. } => Some(child.id()),
        }
    }

    fn usage(&self) -> Option<Usage> {
        Usage::of(self.pid()?)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Self::Sansmq { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One `sansmq bench` run: its JSON report and the broker's usage at the start, when the bench
/// said "ready", and after it ended.
struct Run {
    report: Value,
    broker_start: Usage,
    broker_ready: Option<Usage>,
    broker_end: Usage,
}

fn run_bench(sansmq: &Path, broker: &Broker, args: &[String]) -> anyhow::Result<Run> {
    let broker_start = broker.usage().context("reading the broker's /proc")?;
    let mut child = Command::new(sansmq)
        .arg("bench")
        .args(args)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting sansmq bench")?;
    let stderr = BufReader::new(child.stderr.take().context("piped stderr")?);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = String::new();
    let mut out = child.stdout.take().context("piped stdout")?;
    let reader = thread::spawn(move || out.read_to_string(&mut stdout).map(|_| stdout));
    let mut broker_ready = None;
    let mut lines = Vec::new();
    for line in rx.iter() {
        if broker_ready.is_none() && line.starts_with("ready:") {
            broker_ready = broker.usage();
        }
        lines.push(line);
    }
    let status = child.wait()?;
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("stdout reader panicked"))??;
    // Let the broker finish with the DISCONNECTs before reading its CPU time.
    thread::sleep(Duration::from_millis(200));
    let broker_end = broker.usage().context("reading the broker's /proc")?;
    let report: Value = serde_json::from_str(&stdout).with_context(|| {
        format!(
            "sansmq bench {args:?} ({status}) printed no report; stderr:\n{}",
            lines.join("\n")
        )
    })?;
    if !status.success() {
        eprintln!(
            "warning: sansmq bench {args:?}: {status}: {}",
            lines.last().map_or("", String::as_str)
        );
    }
    Ok(Run {
        report,
        broker_start,
        broker_ready,
        broker_end,
    })
}

fn f64_at(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, key| &v[*key])
        .as_f64()
        .unwrap_or(0.0)
}

/// `cargo xtask bench-load`.
pub(crate) fn run(args: &BenchLoadArgs) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    cmd::run(cmd::cargo(&root).args(["build", "--release", "-p", "sansmq-cli"]))?;
    let sansmq: PathBuf = root.join("target").join("release").join("sansmq");
    raise_open_files();
    let date = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()?
            .stdout,
    )?;
    println!(
        "\n`cargo xtask bench-load` on {} ({} cores), {} messages per publish run, -j {}:\n",
        date.trim(),
        thread::available_parallelism().map_or(1, usize::from),
        args.messages,
        args.jobs
    );
    println!(
        "| broker | conns | run | msgs/s | generator CPU/msg | broker CPU/msg | ratio | generator RSS/conn | broker RSS/conn |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    let jobs = args.jobs.to_string();
    for kind in &args.brokers {
        let broker = Broker::start(kind, &sansmq)?;
        // The generator's fixed memory (threads, histograms, the binary): 10 clients.
        let base = run_bench(
            &sansmq,
            &broker,
            &strings(&[
                "conn",
                "-c",
                "10",
                "-i",
                "0",
                "--duration",
                "2",
                "-j",
                &jobs,
            ]),
        )?;
        let base_rss = f64_at(&base.report, &["ready", "usage", "rss_bytes"]);
        for &count in &args.counts {
            let n = count.to_string();
            let settle = (3 + count / 2000).to_string();
            let conn = run_bench(
                &sansmq,
                &broker,
                &strings(&[
                    "conn",
                    "-c",
                    &n,
                    "-i",
                    "0",
                    "--duration",
                    &settle,
                    "-j",
                    &jobs,
                ]),
            )?;
            let rss = f64_at(&conn.report, &["ready", "usage", "rss_bytes"]);
            let per_conn = (rss - base_rss) / f64::from(count.saturating_sub(10).max(1)) / 1024.0;
            let broker_per_conn = conn.broker_ready.map_or(f64::NAN, |r| {
                (r.rss as f64 - conn.broker_start.rss as f64) / f64::from(count) / 1024.0
            });
            let connected = f64_at(&conn.report, &["connected"]);
            println!(
                "| {kind} | {count} | conn (idle, {connected} connected) | | | | | {per_conn:.1} KiB | {broker_per_conn:.1} KiB |"
            );
            for &qos in &args.qos {
                // Publishing starts once every client is connected, so the connects' cost stays
                // out of the per-message numbers (they are counted from "ready" on anyway).
                let wait = (3000 + count).to_string();
                let limit = args.messages.to_string();
                let q = qos.to_string();
                let run = run_bench(
                    &sansmq,
                    &broker,
                    &strings(&[
                        "pub",
                        "-c",
                        &n,
                        "-i",
                        "0",
                        "-I",
                        "0",
                        "-q",
                        &q,
                        "--inflight",
                        "10",
                        "-t",
                        "bench/%i",
                        "-s",
                        "64",
                        "-L",
                        &limit,
                        "--min-random-wait",
                        &wait,
                        "--max-random-wait",
                        &wait,
                        "-j",
                        &jobs,
                    ]),
                )?;
                print_pub_row(kind, count, qos, &run);
            }
        }
    }
    Ok(())
}

fn print_pub_row(kind: &str, count: u32, qos: u8, run: &Run) {
    let r = &run.report;
    if r["ready"].is_null() || run.broker_ready.is_none() {
        // Publishing ended before every client was connected: no clean window to measure.
        println!(
            "| {kind} | {count} | pub QoS {qos} (not every client connected in time) | n/a | | | | | |"
        );
        return;
    }
    let published = f64_at(r, &["published"]) - f64_at(r, &["ready", "published"]);
    let seconds = f64_at(r, &["duration_s"]) - f64_at(r, &["ready", "elapsed_s"]);
    let generator = f64_at(r, &["usage", "cpu_s"]) - f64_at(r, &["ready", "usage", "cpu_s"]);
    let broker = run.broker_ready.map_or(f64::NAN, |ready| {
        (run.broker_end.cpu.saturating_sub(ready.cpu)).as_secs_f64()
    });
    let per = |cpu: f64| cpu / published.max(1.0) * 1e6;
    let errors = f64_at(r, &["errors"]);
    let note = if errors > 0.0 {
        format!(" ({errors} errors)")
    } else {
        String::new()
    };
    println!(
        "| {kind} | {count} | pub QoS {qos}{note} | {:.0} | {:.2} µs | {:.2} µs | {:.2} | | |",
        published / seconds.max(1e-9),
        per(generator),
        per(broker),
        generator / broker,
    );
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Raises this process's open-file limit to the hard one; the broker and the bench inherit it.
fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}
