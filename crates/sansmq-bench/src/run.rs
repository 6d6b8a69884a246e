//! [`run`]: starts the event loops, prints the live line every second, and gathers their ticks
//! into a [`Report`].

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::packet::Password;

use crate::Error;
use crate::event_loop::{EventLoop, Shared};
use crate::options::Options;
use crate::report::{Ready, Report, Second};
use crate::stats::{Counters, Latencies, Percentiles, Tick};
use crate::usage::Usage;

/// How long after a second's end `run` waits for the loops' ticks of it.
const TICK_SLACK: Duration = Duration::from_millis(50);

/// Runs the bench `options` describe until it is done (`-L` reached, every client gone) or
/// `stop` is set (Ctrl-C, SIGTERM), writing a live line each second to `live`. Every open
/// connection is ended with DISCONNECT before it returns.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::sync::atomic::AtomicBool;
/// use sansmq_bench::{Mode, Options, Template, run};
///
/// let mut options = Options::new(Mode::Pub);
/// options.count = 100;
/// options.topic = Some(Template::parse("bench/%i").unwrap());
/// options.limit = Some(10_000);
/// let report = run(&options, Arc::new(AtomicBool::new(false)), &mut std::io::stderr()).unwrap();
/// println!("{}", report.text());
/// ```
pub fn run(
    options: &Options,
    stop: Arc<AtomicBool>,
    live: &mut dyn Write,
) -> Result<Report, Error> {
    options.validate()?;
    let addresses = options.resolve()?;
    let needed = u64::from(options.count) + 64;
    if let Some(limit) = crate::socket::raise_open_files() {
        if limit < needed {
            let _ = writeln!(
                live,
                "warning: {} clients need about {needed} open files, the limit is {limit} (ulimit -n)",
                options.count
            );
        }
    }
    let tls = options
        .tls
        .as_ref()
        .map(|tls| crate::tls::Tls::new(tls, &options.host))
        .transpose()?;
    let loops = options.threads.min(options.count as usize).max(1);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        options: options.clone(),
        addresses,
        run: fastrand::u32(..),
        stop: Arc::clone(&stop),
        issued: AtomicU64::new(0),
        received: AtomicU64::new(0),
        start,
        password: options
            .password
            .as_ref()
            .map(|p| Password(Bytes::from(p.0.clone().into_bytes()))),
        tls,
    });
    let (tx, rx) = mpsc::channel();
    let mut event_loops = Vec::with_capacity(loops);
    for index in 0..loops {
        event_loops.push(EventLoop::new(
            Arc::clone(&shared),
            index,
            loops,
            tx.clone(),
        )?);
    }
    drop(tx);
    let mut handles = Vec::with_capacity(loops);
    for (index, event_loop) in event_loops.into_iter().enumerate() {
        let handle = thread::Builder::new()
            .name(format!("bench-loop-{index}"))
            .spawn(move || event_loop.run())
            .map_err(Error::EventLoop)?;
        handles.push(handle);
    }

    let clients = u64::from(options.count);
    let mut gather = Gather::new(clients);
    let mut finished = 0;
    // Each second closes a little after the loops' ticks for it were sent.
    let mut next_second = start + Duration::from_secs(1) + TICK_SLACK;
    let mut ready = None;
    while finished < loops {
        let now = Instant::now();
        if options.duration.is_some_and(|d| now >= start + d) {
            stop.store(true, Ordering::Relaxed);
        }
        match rx.recv_timeout(next_second.saturating_duration_since(now)) {
            Ok(tick) => {
                finished += usize::from(tick.last);
                gather.add(tick);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if ready.is_none() && gather.ready(options) {
            ready = Some(Ready {
                elapsed: start.elapsed(),
                counters: gather.totals,
                usage: Usage::current(),
            });
            let _ = writeln!(live, "{}", gather.ready_line(options));
        }
        if Instant::now() >= next_second {
            let elapsed = (next_second - TICK_SLACK).duration_since(start).as_secs();
            next_second += Duration::from_secs(1);
            let second = gather.roll(elapsed);
            let _ = writeln!(live, "{}", second.line());
        }
    }
    for handle in handles {
        // A loop that panicked has already reported what it could; its clients count as gone.
        let _ = handle.join();
    }
    let elapsed = start.elapsed();
    let last = gather.roll(elapsed.as_secs() + 1);
    if last.counts != Counters::default() {
        let _ = writeln!(live, "{}", last.line());
    }
    let mut report = gather.report(options.mode.name(), elapsed);
    report.ready = ready;
    report.usage = Usage::current();
    Ok(report)
}

/// The ticks of every loop, summed per second and in all.
#[derive(Debug)]
struct Gather {
    clients: u64,
    totals: Counters,
    latencies: Latencies,
    second: Counters,
    second_latencies: Latencies,
    lost: u64,
    streams: u64,
    causes: Vec<(String, u64)>,
    series: Vec<Second>,
}

impl Gather {
    fn new(clients: u64) -> Self {
        Self {
            clients,
            totals: Counters::default(),
            latencies: Latencies::default(),
            second: Counters::default(),
            second_latencies: Latencies::default(),
            lost: 0,
            streams: 0,
            causes: Vec::new(),
            series: Vec::new(),
        }
    }

    fn add(&mut self, tick: Tick) {
        self.totals.add(&tick.counters);
        self.second.add(&tick.counters);
        self.latencies.add(&tick.latencies);
        self.second_latencies.add(&tick.latencies);
        self.lost += tick.lost;
        self.streams += tick.streams;
        for (cause, n) in tick.causes {
            match self.causes.iter_mut().find(|(c, _)| *c == cause) {
                Some((_, total)) => *total += n,
                None => self.causes.push((cause, n)),
            }
        }
    }

    /// Every client connected (and subscribed, for sub and pubsub).
    fn ready(&self, options: &Options) -> bool {
        self.totals.open() >= self.clients
            && (!options.mode.subscribes() || self.totals.subscribed >= self.clients)
    }

    fn ready_line(&self, options: &Options) -> String {
        if options.mode.subscribes() {
            format!(
                "ready: {} connected, {} subscribed",
                self.totals.open(),
                self.totals.subscribed
            )
        } else {
            format!("ready: {} connected", self.totals.open())
        }
    }

    /// Closes the current second.
    fn roll(&mut self, elapsed: u64) -> Second {
        let second = Second {
            elapsed,
            clients: self.clients,
            totals: self.totals,
            counts: std::mem::take(&mut self.second),
            e2e: Percentiles::of(&self.second_latencies.e2e),
            ack: Percentiles::of(&self.second_latencies.ack),
        };
        self.second_latencies.reset();
        self.series.push(second.clone());
        second
    }

    fn report(mut self, mode: &'static str, duration: Duration) -> Report {
        self.causes
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Report {
            mode,
            clients: self.clients,
            duration,
            counters: self.totals,
            latencies: self.latencies,
            lost: self.lost,
            streams: self.streams,
            causes: self.causes,
            series: self.series,
            ready: None,
            usage: None,
        }
    }
}
