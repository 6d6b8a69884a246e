//! Idle-memory bench: what one idle connected client costs, sansmq beside rumqttc, in one run.
//!
//! Run with `cargo bench -p sansmq-benches --bench idle_memory`. It starts a private mosquitto,
//! then for each library runs a child process (this binary again, with `IDLE_BENCH_CHILD` set) that
//! connects `IDLE_BENCH_CLIENTS` clients (default 500) the way the library's documentation does,
//! waits until every one has its CONNACK, lets them sit idle for `IDLE_BENCH_SETTLE_MS` (default
//! 1,500 ms), and reports, divided by the number of clients:
//!
//! - **RSS**: the growth of the process's resident set (`/proc/self/statm`) from just before the
//!   first client is made (the runtime, if any, already running) to the end of the idle period;
//! - **heap**: the bytes held on the heap, counted by a counting global allocator over the same
//!   interval (what is reserved, whether or not the kernel has backed it with pages yet);
//! - **threads**: the growth of the process's thread count (`/proc/self/status`).
//!
//! A process per library and round keeps one library's freed memory from lowering the next one's
//! count. Rounds alternate the order of the libraries. The four libraries:
//!
//! | name | how a client is made | threads it needs |
//! | --- | --- | --- |
//! | `sansmq-tokio` | `sansmq_tokio::Client::new` + `connect`, events drained by a task | none of its own |
//! | `rumqttc-async` | `rumqttc::AsyncClient::new`, a task polling each `EventLoop` | none of its own |
//! | `sansmq-mio` | `sansmq_mio::Client::new` + `connect` (blocking) | its IO thread |
//! | `rumqttc-blocking` | `rumqttc::Client::new`, a thread iterating each `Connection` | the iterating thread |
//!
//! The async libraries share one multi-threaded tokio runtime with two workers, made before the
//! baseline is taken. Keep-alive is 60 s for all, so no client sends anything while measured.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that every library works:
//! 5 clients, one round, no settle time.
//!
//! Environment (all optional): `IDLE_BENCH_CLIENTS` (500), `IDLE_BENCH_ROUNDS` (2),
//! `IDLE_BENCH_SETTLE_MS` (1500), `IDLE_BENCH_LIBS` (comma-separated names from the table).

use std::fmt::Write as _;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sansmq_e2e::Mosquitto;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The libraries measured, in table order.
const LIBS: [&str; 4] = [
    "sansmq-tokio",
    "rumqttc-async",
    "sansmq-mio",
    "rumqttc-blocking",
];

/// How long a client may take to connect before the run fails.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// What one child reports, per client.
#[derive(Debug, Clone, Copy, Default)]
struct PerClient {
    rss_bytes: f64,
    heap_bytes: f64,
    threads: f64,
}

impl PerClient {
    fn add(&mut self, other: Self) {
        self.rss_bytes += other.rss_bytes;
        self.heap_bytes += other.heap_bytes;
        self.threads += other.threads;
    }

    fn scaled(self, by: f64) -> Self {
        Self {
            rss_bytes: self.rss_bytes / by,
            heap_bytes: self.heap_bytes / by,
            threads: self.threads / by,
        }
    }

    fn to_line(self) -> String {
        format!(
            "IDLE_RESULT {} {} {}",
            self.rss_bytes, self.heap_bytes, self.threads
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix("IDLE_RESULT ")?.split(' ');
        let mut next = || fields.next()?.parse::<f64>().ok();
        Some(Self {
            rss_bytes: next()?,
            heap_bytes: next()?,
            threads: next()?,
        })
    }
}

/// The process's resident set and thread count now.
fn process_usage() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let resident_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a resident page count");
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a thread count");
    (resident_pages * page, threads)
}

/// Measures what making `n` connected clients with `connect_all` costs, after `settle` idle.
/// `connect_all` returns what keeps the clients alive.
fn measure<T>(n: usize, settle: Duration, connect_all: impl FnOnce() -> T) -> PerClient {
    let (rss_before, threads_before) = process_usage();
    let region = Region::new(GLOBAL);
    let clients = connect_all();
    thread::sleep(settle);
    let heap = region.change();
    let (rss_after, threads_after) = process_usage();
    let held =
        heap.bytes_allocated as f64 + heap.bytes_reallocated as f64 - heap.bytes_deallocated as f64;
    let per_client = PerClient {
        rss_bytes: rss_after as f64 - rss_before as f64,
        heap_bytes: held,
        threads: threads_after as f64 - threads_before as f64,
    }
    .scaled(n as f64);
    drop(clients);
    per_client
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn client_id(lib: &str, i: usize) -> String {
    format!("idle-{}-{lib}-{i}", std::process::id())
}

fn sansmq_tokio(url: &str, n: usize, settle: Duration) -> PerClient {
    let runtime = tokio_runtime();
    measure(n, settle, || {
        runtime.block_on(async {
            let mut clients = Vec::with_capacity(n);
            for i in 0..n {
                let options = sansmq_tokio::ConnectOptions::new(url, client_id("st", i))
                    .expect("options")
                    .keep_alive(KEEP_ALIVE);
                let (client, mut events) = sansmq_tokio::Client::new(options).expect("a client");
                tokio::time::timeout(CONNECT_LIMIT, client.connect())
                    .await
                    .expect("connected in time")
                    .expect("connected");
                // The application's event loop, as the crate's docs show it.
                tokio::spawn(async move { while events.recv().await.is_some() {} });
                clients.push(client);
            }
            clients
        })
    })
}

fn rumqttc_options(port: u16, id: String) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(KEEP_ALIVE);
    options
}

fn rumqttc_async(port: u16, n: usize, settle: Duration) -> PerClient {
    let runtime = tokio_runtime();
    measure(n, settle, || {
        runtime.block_on(async {
            let mut clients = Vec::with_capacity(n);
            for i in 0..n {
                let (client, mut eventloop) =
                    rumqttc::AsyncClient::new(rumqttc_options(port, client_id("ra", i)), 10);
                let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let mut connected_tx = Some(connected_tx);
                    while let Ok(event) = eventloop.poll().await {
                        if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))
                            && let Some(tx) = connected_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                });
                tokio::time::timeout(CONNECT_LIMIT, connected_rx)
                    .await
                    .expect("connected in time")
                    .expect("connected");
                clients.push(client);
            }
            clients
        })
    })
}

fn sansmq_mio(url: &str, n: usize, settle: Duration) -> PerClient {
    measure(n, settle, || {
        (0..n)
            .map(|i| {
                let options = sansmq_mio::ConnectOptions::new(url, client_id("sm", i))
                    .expect("options")
                    .keep_alive(KEEP_ALIVE);
                let client = sansmq_mio::Client::new(options).expect("a client");
                client.connect().expect("connected");
                client
            })
            .collect::<Vec<_>>()
    })
}

fn rumqttc_blocking(port: u16, n: usize, settle: Duration) -> PerClient {
    measure(n, settle, || {
        (0..n)
            .map(|i| {
                let (client, mut connection) =
                    rumqttc::Client::new(rumqttc_options(port, client_id("rb", i)), 10);
                let (connected_tx, connected_rx) = mpsc::channel();
                // rumqttc's blocking client needs a thread iterating its connection.
                thread::spawn(move || {
                    for event in connection.iter() {
                        match event {
                            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                                let _ = connected_tx.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                connected_rx
                    .recv_timeout(CONNECT_LIMIT)
                    .expect("connected in time");
                client
            })
            .collect::<Vec<_>>()
    })
}

/// The child: measures `lib` and prints its result line.
fn child(lib: &str) {
    let port: u16 = std::env::var("IDLE_BENCH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("IDLE_BENCH_PORT");
    let n: usize = env_or("IDLE_BENCH_CLIENTS", 500);
    let settle = Duration::from_millis(env_or("IDLE_BENCH_SETTLE_MS", 1500));
    let url = format!("tcp://127.0.0.1:{port}");
    let result = match lib {
        "sansmq-tokio" => sansmq_tokio(&url, n, settle),
        "rumqttc-async" => rumqttc_async(port, n, settle),
        "sansmq-mio" => sansmq_mio(&url, n, settle),
        "rumqttc-blocking" => rumqttc_blocking(port, n, settle),
        other => panic!("unknown library {other}"),
    };
    println!("{}", result.to_line());
    // Exit without tearing the clients down one by one: nothing more is measured.
    std::process::exit(0);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn run_child(lib: &str, port: u16, clients: usize, settle_ms: u64) -> Result<PerClient, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .env("IDLE_BENCH_CHILD", lib)
        .env("IDLE_BENCH_PORT", port.to_string())
        .env("IDLE_BENCH_CLIENTS", clients.to_string())
        .env("IDLE_BENCH_SETTLE_MS", settle_ms.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(PerClient::from_line)
        .ok_or_else(|| {
            format!(
                "no result ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

fn main() {
    if let Ok(lib) = std::env::var("IDLE_BENCH_CHILD") {
        return child(&lib);
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let clients = if smoke {
        5
    } else {
        env_or("IDLE_BENCH_CLIENTS", 500)
    };
    let rounds = if smoke {
        1
    } else {
        env_or("IDLE_BENCH_ROUNDS", 2usize).max(1)
    };
    let settle_ms = if smoke {
        0
    } else {
        env_or("IDLE_BENCH_SETTLE_MS", 1500u64)
    };
    let wanted: Vec<&str> = match std::env::var("IDLE_BENCH_LIBS") {
        Ok(list) => LIBS
            .into_iter()
            .filter(|lib| list.split(',').any(|w| w.trim() == *lib))
            .collect(),
        Err(_) => LIBS.to_vec(),
    };
    let broker = Mosquitto::builder().log_types(["error", "warning"]).start();
    println!(
        "idle-memory bench: {clients} idle clients per library and round, {rounds} round(s), {settle_ms} ms idle"
    );
    let started = Instant::now();
    let mut totals = vec![(PerClient::default(), 0usize); LIBS.len()];
    for round in 0..rounds {
        let mut order = wanted.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for lib in order {
            match run_child(lib, broker.port(), clients, settle_ms) {
                Ok(result) => {
                    println!(
                        "  {lib:<17} round {}: {:>7.1} KiB RSS, {:>7.1} KiB heap, {:.2} threads per client",
                        round + 1,
                        result.rss_bytes / 1024.0,
                        result.heap_bytes / 1024.0,
                        result.threads
                    );
                    let slot = LIBS.iter().position(|l| *l == lib).unwrap_or(0);
                    totals[slot].0.add(result);
                    totals[slot].1 += 1;
                }
                Err(e) => panic!("{lib} round {}: {e}", round + 1),
            }
        }
    }
    let mean = |lib: &str| {
        let slot = LIBS.iter().position(|l| *l == lib)?;
        let (sum, runs) = totals[slot];
        (runs > 0).then(|| sum.scaled(runs as f64))
    };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| client | RSS KiB/client | heap KiB/client | threads/client | RSS ratio | heap ratio |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|");
    for (lib, peer) in [
        ("sansmq-tokio", "rumqttc-async"),
        ("rumqttc-async", ""),
        ("sansmq-mio", "rumqttc-blocking"),
        ("rumqttc-blocking", ""),
    ] {
        let Some(m) = mean(lib) else { continue };
        let (rss_ratio, heap_ratio) = match mean(peer) {
            Some(p) => (
                format!("{:.2}x {peer}", m.rss_bytes / p.rss_bytes),
                format!("{:.2}x", m.heap_bytes / p.heap_bytes),
            ),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            table,
            "| {lib} | {:.1} | {:.1} | {:.2} | {rss_ratio} | {heap_ratio} |",
            m.rss_bytes / 1024.0,
            m.heap_bytes / 1024.0,
            m.threads,
        );
    }
    println!("\n{table}");
    println!("({:.1} s)", started.elapsed().as_secs_f64());
}
