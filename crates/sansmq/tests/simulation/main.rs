//! Deterministic simulation: the client core against a model broker built on our codec, on a
//! virtual clock, over a seeded network that cuts connections anywhere (mid-packet too, both
//! ways), delays traffic, restarts the broker with or without the session, and restarts the
//! application from its session snapshot. Every seed checks the guarantees in `invariants.rs`.
//!
//! - `cargo test -p sansmq --test simulation`: seeds 0..1000 (`SANSMQ_SIM_START`,
//!   `SANSMQ_SIM_SEEDS` change the range; `cargo xtask sim --seeds N` runs many in release).
//! - `SANSMQ_SIM_SEED=1234 cargo test -p sansmq --test simulation -- --nocapture`: replays one
//!   seed and prints its scenario and trace if it fails (`SANSMQ_SIM_TRACE=1`: always).

mod ack_order;
mod invariants;
mod link;
mod model_broker;
mod rng;
mod scenario;
mod world;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use world::{Stats, World};

/// Seeds `cargo test` runs by default.
const DEFAULT_SEEDS: u64 = 1000;
/// A sweep stops after this many failures.
const MAX_FAILURES: usize = 10;

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
    format!("SANSMQ_SIM_SEED={seed} cargo test -p sansmq --test simulation -- --nocapture")
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs one seed; a panic (in the client or the test) is a failure too.
fn run_seed(seed: u64, trace: bool) -> (Result<Stats, String>, Option<World>) {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut world = World::new(seed, trace);
        let result = world.run();
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
fn simulation() {
    match env_u64("SANSMQ_SIM_SEED") {
        Some(seed) => replay(seed),
        None => sweep(
            env_u64("SANSMQ_SIM_START").unwrap_or(0),
            env_u64("SANSMQ_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS),
        ),
    }
}

/// One seed, with its scenario and trace printed on failure (or always with SANSMQ_SIM_TRACE).
fn replay(seed: u64) {
    let always = std::env::var_os("SANSMQ_SIM_TRACE").is_some();
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
                            let steps = stats.get("steps").copied().unwrap_or(0);
                            let max = mine.entry("steps, most in one seed").or_default();
                            *max = (*max).max(steps);
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
                    let total = totals.entry(k).or_default();
                    if k == "steps, most in one seed" {
                        *total = (*total).max(v);
                    } else {
                        *total += v;
                    }
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
        "simulation: seeds {start}..{end} on {threads} threads in {elapsed:.1}s, {} failed",
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
