//! Deterministic simulation of the connection lifecycle: the sans-IO [`Supervisor`] driven as a
//! driver drives it, against model brokers behind several server URIs, on a virtual clock, with
//! seeded faults — DNS and connect failures per URI, black-holed attempts, refused CONNACKs (bad
//! credentials, server unavailable), transports cut at any point, brokers that go silent, lost
//! sessions, a credentials provider whose tokens are rotated, handed out stale or invalidated —
//! and the application's commands at random times. Every seed checks the guarantees of
//! `invariants.rs` and the driver's own checks in `world.rs`: backoff bounds, URI rotation,
//! token invalidation, re-subscription exactly once per reconnect, every waiter answered
//! exactly once, QoS 1/2 delivery to the broker, acknowledgements of received messages only
//! within their broker session, a silent broker given up in time, bounded queues, no panic.
//! `storm.rs` checks
//! that 1,000 clients losing one broker at once do not come back in lock step.
//!
//! - `cargo test -p sansmq-driver --test lifecycle_simulation`: seeds 0..200
//!   (`SANSMQ_LIFECYCLE_START`, `SANSMQ_LIFECYCLE_SEEDS` change the range; `cargo xtask sim
//!   --lifecycle --seeds N` runs many in release).
//! - `SANSMQ_LIFECYCLE_SEED=1234 cargo test -p sansmq-driver --test lifecycle_simulation --
//!   --nocapture`: replays one seed and prints its scenario and trace if it fails
//!   (`SANSMQ_LIFECYCLE_TRACE=1`: always).
//!
//! [`Supervisor`]: sansmq_driver::Supervisor

mod broker;
mod invariants;
mod rng;
mod scenario;
mod storm;
mod world;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use world::{Stats, World};

/// Seeds `cargo test` runs by default.
const DEFAULT_SEEDS: u64 = 200;
/// A sweep stops after this many failures.
const MAX_FAILURES: usize = 10;
/// A sweep also runs the retry-storm check for one seed in this many.
const STORM_EVERY: u64 = 1_000;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn replay_command(seed: u64) -> String {
    format!(
        "SANSMQ_LIFECYCLE_SEED={seed} cargo test -p sansmq-driver --test lifecycle_simulation \
         -- --nocapture"
    )
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs one seed; a panic (in the supervisor or the simulation) is a failure too.
fn run_seed(seed: u64, trace: bool) -> (Result<Stats, String>, Option<World>) {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut world = World::new(seed, trace);
        let result = world.run();
        if result.is_ok() && seed % STORM_EVERY == 0 {
            if let Err(e) = storm::check(seed) {
                return (Err(e), world);
            }
            world.stats.insert("retry storms checked", 1);
        }
        (result, world)
    }));
    match result {
        Ok((Ok(()), world)) => (Ok(world.stats.clone()), Some(world)),
        Ok((Err(e), world)) => (Err(e), Some(world)),
        Err(_) => {
            let message = PANIC_MESSAGE
                .with(|m| m.borrow_mut().take())
                .unwrap_or_else(|| "a panic".into());
            (Err(format!("panicked: {message}")), None)
        }
    }
}

#[allow(clippy::disallowed_methods)] // wall time of the run, for the report
fn wall_clock() -> Instant {
    Instant::now()
}

#[test]
fn lifecycle_simulation() {
    match env_u64("SANSMQ_LIFECYCLE_SEED") {
        Some(seed) => replay(seed),
        None => sweep(
            env_u64("SANSMQ_LIFECYCLE_START").unwrap_or(0),
            env_u64("SANSMQ_LIFECYCLE_SEEDS").unwrap_or(DEFAULT_SEEDS),
        ),
    }
}

#[test]
fn a_thousand_clients_losing_one_broker_do_not_reconnect_in_lock_step() {
    for seed in 0..3 {
        let most = storm::check(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        println!(
            "storm seed {seed}: at most {most} of {} attempts in 100 ms",
            storm::CLIENTS
        );
    }
}

/// One seed, with its scenario and trace printed on failure (or always with the TRACE variable).
fn replay(seed: u64) {
    let always = std::env::var_os("SANSMQ_LIFECYCLE_TRACE").is_some();
    let (result, world) = run_seed(seed, true);
    if result.is_err() || always {
        if let Some(world) = &world {
            println!("seed {seed} scenario: {:#?}", world.sc);
            for line in world.trace.iter().flatten() {
                println!("{line}");
            }
        }
    }
    match result {
        Ok(stats) => println!("seed {seed} passed: {stats:?}"),
        Err(e) => panic!("seed {seed} failed: {e}"),
    }
}

/// Seeds `start..start + count` on every core; failures name the command that replays them.
fn sweep(start: u64, count: u64) {
    let began = wall_clock();
    let next = AtomicU64::new(start);
    let end = start + count;
    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<(u64, String)>::new());
    let totals = Mutex::new(Stats::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Panics are caught and reported per seed: keep the default hook from printing each one.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{payload}{location}")));
    }));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = Stats::new();
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    match run_seed(seed, false).0 {
                        Ok(stats) => {
                            for (k, v) in stats {
                                *mine.entry(k).or_default() += v;
                            }
                        }
                        Err(e) => {
                            let mut f = failures.lock().unwrap();
                            f.push((seed, e));
                            if f.len() >= MAX_FAILURES {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                let mut totals = totals.lock().unwrap();
                for (k, v) in mine {
                    *totals.entry(k).or_default() += v;
                }
            });
        }
    });
    panic::set_hook(default_hook);

    let elapsed = began.elapsed().as_secs_f64();
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    let totals = totals.into_inner().unwrap();
    println!(
        "lifecycle simulation: seeds {start}..{end} on {threads} threads in {elapsed:.1}s, {} failed",
        failures.len()
    );
    for (k, v) in &totals {
        println!("  {k:<40} {v:>12}");
    }
    if !failures.is_empty() {
        for (seed, e) in &failures {
            eprintln!(
                "seed {seed} failed: {e}\n  replay: {}",
                replay_command(*seed)
            );
        }
        let (seed, e) = &failures[0];
        panic!(
            "{} seed(s) failed; first: seed {seed}: {e}\nreplay it with:\n  {}",
            failures.len(),
            replay_command(*seed)
        );
    }
}
