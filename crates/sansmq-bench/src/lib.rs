//! # sansmq-bench: an MQTT load generator on the sansmq engine
//!
//! `sansmq bench conn|pub|sub|pubsub` (the `sansmq` command) drives thousands of MQTT sessions
//! from one process with emqtt-bench's options. Each session is a [`sansmq::Client`], the sans-IO
//! core, with a non-blocking socket; a few event loops (one per core by default) own them all, so
//! a client costs a socket, a session and a small read buffer, not a thread or a task.
//!
//! ## Run loop
//!
//! Every event loop repeats, for all of its clients at once:
//!
//! 1. wait on one `mio::Poll` for readiness, no longer than the earliest deadline of its shared
//!    timer heap (connect schedule, publish schedule, each session's `poll_timeout`);
//! 2. read what a ready socket has into the session's buffer (`Client::read_buffer`, sized by
//!    the drivers' `ReadSize`: 512 bytes when idle, up to 64 KiB in a burst), then
//!    `handle_read` (over WebSocket, the frame headers are squeezed out of the new bytes
//!    first); call `handle_timeout` for the sessions whose deadline came;
//! 3. drain `poll_event`: subscribe after `Connected`, time `Published` against the publish
//!    time, check a `Message`'s [`Header`] (latency, loss, duplicates, order per publisher);
//! 4. publish the messages that are due, write `poll_transmit` as far as the socket takes it and
//!    report it with `handle_transmitted`, and arm the session's new `poll_timeout`.
//!
//! Once a second each loop sends what it counted and measured ([`Tick`]) to [`run`], which
//! prints the live line and builds the [`Report`] (text, JSON, CSV, an HTML page with charts).
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use sansmq::packet::QoS;
//! use sansmq_bench::{Mode, Options, Template, run};
//!
//! // `sansmq bench sub -c 10 -t bench/# -q 1 -L 1000000` in code.
//! let mut options = Options::new(Mode::Sub);
//! options.count = 10;
//! options.topic = Some(Template::parse("bench/#")?);
//! options.qos = QoS::AtLeastOnce;
//! options.limit = Some(1_000_000);
//! options.duration = Some(Duration::from_secs(60));
//! let stop = Arc::new(AtomicBool::new(false)); // set it from a signal handler
//! let report = run(&options, stop, &mut std::io::stderr())?;
//! println!("{}", report.text());
//! # Ok::<(), sansmq_bench::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod error;
mod event_loop;
mod header;
mod html;
mod options;
mod report;
mod run;
mod sequence;
mod socket;
mod stats;
mod template;
mod timers;
mod tls;
mod usage;
mod websocket;

pub use error::Error;
pub use header::{Header, MAGIC, wall_clock_ns};
pub use options::{ApsaraMq, Mode, Options, Secret};
pub use report::{Ready, Report, Second};
pub use run::run;
pub use sequence::{Arrival, Sequences};
pub use stats::{Counters, Latencies, Percentiles, Tick};
pub use template::{Template, TemplateVars};
pub use usage::Usage;

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
