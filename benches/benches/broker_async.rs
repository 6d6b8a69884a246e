//! Async broker bench: one publisher to one subscriber through a private mosquitto, sansmq-tokio's
//! `Client` side by side with rumqttc's `AsyncClient`, in the same run, on the same broker and the
//! same tokio runtime (two worker threads).
//!
//! Run with `cargo bench -p sansmq-benches --bench broker_async`. The method is `broker.rs`'s: a
//! fresh mosquitto per case (QoS 0/1/2 × 100 B and 1 KiB; `max_queued_messages 0`, packet logging
//! off), a warm-up of both libraries, then `BROKER_BENCH_ROUNDS` runs of each, alternating which
//! goes first. A run connects a subscriber and a publisher (not measured), then measures from the
//! first publish until the subscriber has every message and every publish is acknowledged:
//!
//! - **messages/s**: messages over wall time;
//! - **client CPU µs per message**: `getrusage(RUSAGE_SELF)` user + system time over the same
//!   interval (both clients of a run live in this process), divided by the messages.
//!
//! Each library is used the way its documentation suggests for throughput. sansmq: `publish_later`
//! for every message, then await the handles (its bounded command channel and offline queue are
//! the backpressure). rumqttc: `AsyncClient::publish(..).await` for every message (its bounded
//! request channel is the backpressure), with a task polling each `EventLoop` and counting
//! PUBACK/PUBCOMP and incoming PUBLISHes. Both get window 20 (mosquitto's QoS 2 limit) and a
//! queue of 100 behind it.
//!
//! A third client runs beside them, **bare** (`bare_client`): sansmq's codec in a read-write loop
//! per connection, two tasks on the same runtime, with no session, channels or timers. It is
//! what the socket pattern alone costs, the floor under both libraries; the table gives its CPU
//! per message as a ratio to rumqttc's too.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that every case works:
//! 200 messages, one round.
//!
//! Environment (all optional): `BROKER_BENCH_MESSAGES` (default 20000 for QoS 0/1, 10000 for
//! QoS 2), `BROKER_BENCH_ROUNDS` (2), `BROKER_BENCH_CASES` (e.g. `qos1/100B,qos2/1KiB`),
//! `BROKER_BENCH_TIMEOUT_SECS` (60), `BROKER_BENCH_LIBS` (comma-separated among `sansmq`,
//! `rumqttc` and `bare`, all three by default; one alone for profiling it, no ratios then).

mod bare_client;
mod broker_cases;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bare_client::Side;
use bytes::{Bytes, BytesMut};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike as _;
use sansmq_e2e::Mosquitto;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use broker_cases::{Case, cases, env, rumqttc_qos, wanted_cases};
use sansmq_tokio::{Client, ConnectOptions};

const WINDOW: u16 = 20;
const QUEUE: usize = 100;
/// What the bare client reserves for a read.
const READ_SIZE: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    Sansmq,
    Rumqttc,
    Bare,
}

impl Lib {
    /// Its name in `BROKER_BENCH_LIBS`.
    fn key(self) -> &'static str {
        match self {
            Self::Sansmq => "sansmq",
            Self::Rumqttc => "rumqttc",
            Self::Bare => "bare",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sansmq => "sansmq-tokio",
            Self::Rumqttc => "rumqttc",
            Self::Bare => "bare",
        }
    }
}

/// Wall time and CPU time of this process over one run.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    messages: u64,
    wall: Duration,
    cpu_us: i64,
    sys_us: i64,
}

impl Sample {
    fn add(&mut self, other: &Self) {
        self.messages += other.messages;
        self.wall += other.wall;
        self.cpu_us += other.cpu_us;
        self.sys_us += other.sys_us;
    }

    fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }

    fn cpu_per_message(&self) -> f64 {
        self.cpu_us as f64 / self.messages as f64
    }
}

/// Measures `work` (which must return the messages it moved).
async fn measured<F>(work: F) -> Result<Sample, String>
where
    F: Future<Output = Result<usize, String>>,
{
    let usage = || getrusage(UsageWho::RUSAGE_SELF).expect("getrusage(RUSAGE_SELF)");
    let before = usage();
    let start = Instant::now();
    let messages = work.await?;
    let wall = start.elapsed();
    let after = usage();
    let user = after.user_time().num_microseconds() - before.user_time().num_microseconds();
    let sys = after.system_time().num_microseconds() - before.system_time().num_microseconds();
    Ok(Sample {
        messages: messages as u64,
        wall,
        cpu_us: user + sys,
        sys_us: sys,
    })
}

// ---------------------------------------------------------------------------------------------
// sansmq-tokio

async fn sansmq_run(
    broker: &Mosquitto,
    case: &Case,
    tag: &str,
    n: usize,
    limit: Duration,
) -> Result<Sample, String> {
    let options = |role: &str| -> Result<ConnectOptions, String> {
        Ok(ConnectOptions::new(&broker.url(), format!("{tag}-{role}"))
            .map_err(|e| e.to_string())?
            .max_inflight(WINDOW)
            .offline_queue(QUEUE))
    };
    let topic = format!("bench/{tag}");
    let (subscriber, mut events) = Client::new(options("sub")?).map_err(|e| e.to_string())?;
    subscriber.connect().await.map_err(|e| e.to_string())?;
    subscriber
        .subscribe(&[(topic.as_str(), case.qos)])
        .await
        .map_err(|e| e.to_string())?;
    let (publisher, _publisher_events) = Client::new(options("pub")?).map_err(|e| e.to_string())?;
    publisher.connect().await.map_err(|e| e.to_string())?;
    let payload = Bytes::from(case.payload_bytes());
    let qos = case.qos;
    let expected_len = case.payload;

    let sample = measured(async {
        let receiving = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match events.next_message().await {
                    Some(m) if m.payload.len() == expected_len => got += 1,
                    Some(m) => return Err(format!("a payload of {} bytes", m.payload.len())),
                    None => break,
                }
            }
            Ok(got)
        });
        let publishing = {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let mut handles = VecDeque::with_capacity(n);
                for _ in 0..n {
                    let handle = publisher
                        .publish_later(&topic, payload.clone(), qos, false)
                        .await
                        .map_err(|e| format!("publish: {e}"))?;
                    handles.push_back(handle);
                }
                for handle in handles {
                    handle.await.map_err(|e| format!("delivery: {e}"))?;
                }
                Ok::<_, String>(())
            })
        };
        let both = async {
            publishing.await.map_err(|e| e.to_string())??;
            receiving.await.map_err(|e| e.to_string())?
        };
        tokio::time::timeout(limit, both)
            .await
            .map_err(|_| "timed out".to_owned())?
    })
    .await;
    let _ = publisher.disconnect(Duration::from_secs(5)).await;
    let _ = subscriber.disconnect(Duration::from_secs(5)).await;
    let sample = sample?;
    if (sample.messages as usize) < n {
        return Err(format!("received {} of {n}", sample.messages));
    }
    Ok(sample)
}

// ---------------------------------------------------------------------------------------------
// rumqttc

fn rumqttc_options(broker: &Mosquitto, id: String) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", broker.port());
    options
        .set_keep_alive(Duration::from_secs(60))
        .set_inflight(WINDOW)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_request_channel_capacity(QUEUE);
    options
}

/// Said once by a rumqttc driving task: ready (CONNACK / SUBACK) or done (`n` counted).
type Signal = tokio::sync::oneshot::Receiver<Result<(), String>>;

/// Polls an event loop, counting events `counted` picks; says on `ready` at `ready_on` and on
/// `done` once `n` were counted.
fn rumqttc_drive(
    mut eventloop: rumqttc::EventLoop,
    ready_on: fn(&rumqttc::Event) -> bool,
    counted: impl Fn(&rumqttc::Event) -> bool + Send + 'static,
    n: usize,
) -> (Signal, Signal, tokio::task::JoinHandle<()>) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut done_tx = Some(done_tx).filter(|_| n > 0);
        let mut count = 0;
        loop {
            match eventloop.poll().await {
                Ok(event) => {
                    if ready_on(&event)
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(Ok(()));
                    }
                    if counted(&event) {
                        count += 1;
                        if count == n
                            && let Some(tx) = done_tx.take()
                        {
                            let _ = tx.send(Ok(()));
                        }
                    }
                    if matches!(
                        event,
                        rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)
                    ) {
                        return;
                    }
                }
                Err(e) => {
                    for tx in [ready_tx.take(), done_tx.take()].into_iter().flatten() {
                        let _ = tx.send(Err(e.to_string()));
                    }
                    return;
                }
            }
        }
    });
    (ready_rx, done_rx, task)
}

async fn rumqttc_run(
    broker: &Mosquitto,
    case: &Case,
    tag: &str,
    n: usize,
    limit: Duration,
) -> Result<Sample, String> {
    let topic = format!("bench/{tag}");
    let qos = rumqttc_qos(case.qos);
    let expected_len = case.payload;
    let flatten =
        |r: Result<Result<(), String>, _>| r.map_err(|_| "event loop ended".to_owned())?;

    let (subscriber, sub_loop) =
        rumqttc::AsyncClient::new(rumqttc_options(broker, format!("{tag}-sub")), QUEUE);
    let (sub_ready, sub_done, sub_task) = rumqttc_drive(
        sub_loop,
        |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))),
        move |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) if p.payload.len() == expected_len),
        n,
    );
    subscriber
        .subscribe(topic.as_str(), qos)
        .await
        .map_err(|e| e.to_string())?;
    flatten(sub_ready.await)?;
    let (publisher, pub_loop) =
        rumqttc::AsyncClient::new(rumqttc_options(broker, format!("{tag}-pub")), QUEUE);
    let acked = if qos == rumqttc::QoS::AtMostOnce {
        0
    } else {
        n
    };
    let (pub_ready, pub_done, pub_task) = rumqttc_drive(
        pub_loop,
        |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))),
        |e| {
            matches!(
                e,
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_) | rumqttc::Packet::PubComp(_))
            )
        },
        acked,
    );
    flatten(pub_ready.await)?;
    let payload = case.payload_bytes();

    let sample = measured(async {
        let publishing = {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    publisher
                        .publish(topic.as_str(), qos, false, payload.clone())
                        .await
                        .map_err(|e| format!("publish: {e}"))?;
                }
                Ok::<_, String>(())
            })
        };
        let all = async {
            publishing.await.map_err(|e| e.to_string())??;
            flatten(sub_done.await)?;
            if acked > 0 {
                flatten(pub_done.await)?;
            }
            Ok(n)
        };
        tokio::time::timeout(limit, all)
            .await
            .map_err(|_| "timed out".to_owned())?
    })
    .await;
    let _ = publisher.disconnect().await;
    let _ = subscriber.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), pub_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sub_task).await;
    sample
}

// ---------------------------------------------------------------------------------------------
// bare: sansmq's codec and a socket loop, no client library (see `bare_client`)

/// A connection of the bare client: the stream, what was read and not yet decoded, and what
/// waits to be written.
struct BareConnection {
    stream: tokio::net::TcpStream,
    input: BytesMut,
    output: BytesMut,
}

impl BareConnection {
    /// Connects as `client_id` and waits for CONNACK.
    async fn open(broker: &Mosquitto, client_id: &str) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", broker.port()))
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut connection = Self {
            stream,
            input: BytesMut::with_capacity(READ_SIZE),
            output: BytesMut::new(),
        };
        bare_client::connect_packet(client_id, &mut connection.output)?;
        connection.until_accepted().await?;
        Ok(connection)
    }

    /// Writes what waits, then reads until CONNACK or SUBACK accepts.
    async fn until_accepted(&mut self) -> Result<(), String> {
        self.write().await?;
        loop {
            while let Some(packet) = bare_client::next_packet(&mut self.input)? {
                if bare_client::accepted(&packet)? {
                    return Ok(());
                }
            }
            self.read().await?;
        }
    }

    async fn read(&mut self) -> Result<(), String> {
        self.input.reserve(READ_SIZE);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Err("the broker closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn write(&mut self) -> Result<(), String> {
        if !self.output.is_empty() {
            self.stream
                .write_all(&self.output)
                .await
                .map_err(|e| e.to_string())?;
            self.output.clear();
        }
        Ok(())
    }

    /// Runs `side` (publisher or subscriber) until it is done: decode what was read, let it
    /// answer, write the answers in one go, read again.
    async fn run(&mut self, side: &mut impl Side) -> Result<(), String> {
        loop {
            side.fill(&mut self.output)?;
            self.write().await?;
            if side.is_done() {
                return Ok(());
            }
            if side.waits_for_broker() {
                self.read().await?;
                while let Some(packet) = bare_client::next_packet(&mut self.input)? {
                    side.on_packet(packet, &mut self.output)?;
                }
            }
        }
    }
}

async fn bare_run(
    broker: &Mosquitto,
    case: &Case,
    tag: &str,
    n: usize,
    limit: Duration,
) -> Result<Sample, String> {
    let topic = format!("bench/{tag}");
    let mut subscriber = BareConnection::open(broker, &format!("{tag}-sub")).await?;
    bare_client::subscribe_packet(&topic, case.qos, &mut subscriber.output)?;
    subscriber.until_accepted().await?;
    let mut publisher = BareConnection::open(broker, &format!("{tag}-pub")).await?;
    let payload = Bytes::from(case.payload_bytes());
    let mut publishing =
        bare_client::Publisher::new(&topic, payload, case.qos, n, usize::from(WINDOW))?;
    let mut receiving = bare_client::Subscriber::new(n, case.payload);
    measured(async {
        let receiver = tokio::spawn(async move {
            subscriber.run(&mut receiving).await?;
            Ok::<_, String>(receiving.received())
        });
        let both = async {
            publisher.run(&mut publishing).await?;
            receiver.await.map_err(|e| e.to_string())?
        };
        tokio::time::timeout(limit, both)
            .await
            .map_err(|_| "timed out".to_owned())?
    })
    .await
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let messages: Option<usize> = env("BROKER_BENCH_MESSAGES").or(smoke.then_some(200));
    let rounds = if smoke {
        1
    } else {
        env("BROKER_BENCH_ROUNDS").unwrap_or(2).max(1)
    };
    let limit = Duration::from_secs(env("BROKER_BENCH_TIMEOUT_SECS").unwrap_or(60));
    let cases = cases(messages, wanted_cases().as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "async broker bench: mosquitto per case, window {WINDOW}, queue {QUEUE}, {rounds} round(s) per library"
    );
    let mut rows = Vec::new();
    let mut run_id = 0usize;
    for (case_index, case) in cases.iter().enumerate() {
        let broker = Mosquitto::builder().log_types(["error", "warning"]).start();
        let mut totals = [Sample::default(), Sample::default(), Sample::default()];
        let mut failures = [0usize, 0usize, 0usize];
        let mut run = |lib: Lib, n: usize| {
            run_id += 1;
            let tag = format!("a{}-{run_id}", std::process::id());
            runtime.block_on(async {
                match lib {
                    Lib::Sansmq => sansmq_run(&broker, case, &tag, n, limit).await,
                    Lib::Rumqttc => rumqttc_run(&broker, case, &tag, n, limit).await,
                    Lib::Bare => bare_run(&broker, case, &tag, n, limit).await,
                }
            })
        };
        let warm = (case.messages / 10).max(200);
        let libs = wanted_libs();
        for &lib in &libs {
            if let Err(e) = run(lib, warm) {
                println!("  {} {} warm-up failed: {e}", case.name, lib.name());
            }
        }
        for round in 0..rounds {
            let order = if (case_index + round) % 2 == 0 {
                [Lib::Sansmq, Lib::Rumqttc, Lib::Bare]
            } else {
                [Lib::Bare, Lib::Rumqttc, Lib::Sansmq]
            };
            for lib in order.into_iter().filter(|lib| libs.contains(lib)) {
                let i = lib as usize;
                match run(lib, case.messages) {
                    Ok(sample) => {
                        println!(
                            "  {:<10} {:<13} round {}: {:>9.0} msg/s, {:>6.2} µs CPU/msg (sys {:.2})",
                            case.name,
                            lib.name(),
                            round + 1,
                            sample.rate(),
                            sample.cpu_per_message(),
                            sample.sys_us as f64 / sample.messages as f64,
                        );
                        totals[i].add(&sample);
                    }
                    Err(e) => {
                        println!(
                            "  {:<10} {:<13} round {}: FAILED: {e}",
                            case.name,
                            lib.name(),
                            round + 1
                        );
                        failures[i] += 1;
                    }
                }
            }
        }
        rows.push((case.name.clone(), totals, failures));
    }
    println!("\n{}", table(&rows));
}

/// The bench's table: each library's throughput and CPU per message, and the ratios to rumqttc's.
fn table(rows: &[(String, [Sample; 3], [usize; 3])]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | sansmq-tokio msg/s | rumqttc AsyncClient msg/s | throughput ratio | sansmq-tokio CPU µs/msg | rumqttc CPU µs/msg | CPU ratio | bare CPU µs/msg | bare ÷ rumqttc |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, [s, r, b], failures) in rows {
        if failures.iter().any(|f| *f > 0) || s.messages == 0 || r.messages == 0 {
            let _ = writeln!(
                table,
                "| {name} | failed runs: {failures:?} | | | | | | | |"
            );
            continue;
        }
        let bare = if b.messages == 0 {
            " | |".to_owned()
        } else {
            format!(
                " {:.2} | {:.2}x |",
                b.cpu_per_message(),
                b.cpu_per_message() / r.cpu_per_message()
            )
        };
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.2}x |{bare}",
            s.rate(),
            r.rate(),
            s.rate() / r.rate(),
            s.cpu_per_message(),
            r.cpu_per_message(),
            s.cpu_per_message() / r.cpu_per_message(),
        );
    }
    table
}

/// The libraries `BROKER_BENCH_LIBS` names (comma-separated; all three by default).
fn wanted_libs() -> Vec<Lib> {
    let all = [Lib::Sansmq, Lib::Rumqttc, Lib::Bare];
    match std::env::var("BROKER_BENCH_LIBS") {
        Err(_) => all.to_vec(),
        Ok(names) => names
            .split(',')
            .map(|name| {
                let name = name.trim();
                all.into_iter()
                    .find(|lib| lib.key() == name)
                    .unwrap_or_else(|| {
                        panic!("BROKER_BENCH_LIBS: {name:?} is not sansmq, rumqttc or bare")
                    })
            })
            .collect(),
    }
}
