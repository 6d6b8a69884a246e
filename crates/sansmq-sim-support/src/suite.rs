//! A simulation's seeds as its test runs them: a sweep of a range over every core, or the
//! replay of one seed with its scenario and trace.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::panic_capture::{self, Quiet};

/// What one seed counted (by the name it is reported under); a sweep adds them up.
pub type Stats = BTreeMap<&'static str, u64>;

/// A sweep stops after this many failures.
const MAX_FAILURES: usize = 10;

/// The world of one seed, as a [`Suite`] drives it.
pub trait SeedWorld {
    /// Builds the world of `seed`; with `trace`, it records a trace of what happens.
    fn new(seed: u64, trace: bool) -> Self;
    /// Runs the seed to its end; `Err` says which guarantee broke.
    fn run(&mut self) -> Result<(), String>;
    /// What the run counted.
    fn stats(&self) -> &Stats;
    /// What a replay prints when the seed fails: the scenario the seed drew, and the trace
    /// recorded with `trace` (empty without it).
    fn replay_report(&self) -> (&dyn Debug, &[String]);
}

/// One simulation's seeds: the environment variables that choose them and the command that
/// replays one.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// Names the simulation in the summary line of a sweep.
    pub name: &'static str,
    /// The prefix of the environment variables: `{env}_SEED` replays one seed (`{env}_TRACE`
    /// prints its trace even when it passes); `{env}_START` and `{env}_SEEDS` choose the range
    /// of a sweep.
    pub env: &'static str,
    /// How many seeds a sweep runs when `{env}_SEEDS` is not set.
    pub default_seeds: u64,
    /// The `cargo test` command that runs the simulation; `{env}_SEED=<seed>` before it
    /// replays one seed.
    pub command: &'static str,
    /// Counters a sweep reports as the most one seed counted rather than as a sum, as
    /// `(reported as, counted as)`.
    pub maxima: &'static [(&'static str, &'static str)],
}

impl Suite {
    /// The test's body: replays `{env}_SEED` when it is set, sweeps the range otherwise.
    ///
    /// # Panics
    ///
    /// When a seed fails (naming the command that replays it) or a variable is not a number.
    pub fn run<W: SeedWorld>(&self) {
        match self.env_u64("SEED") {
            Some(seed) => self.replay::<W>(seed),
            None => self.sweep::<W>(
                self.env_u64("START").unwrap_or(0),
                self.env_u64("SEEDS").unwrap_or(self.default_seeds),
            ),
        }
    }

    /// One seed, with its scenario and trace printed on failure (or always with `{env}_TRACE`).
    ///
    /// # Panics
    ///
    /// When the seed fails.
    pub fn replay<W: SeedWorld>(&self, seed: u64) {
        let always = std::env::var_os(format!("{}_TRACE", self.env)).is_some();
        let (result, world) = run_seed::<W>(seed, true);
        if result.is_err() || always {
            if let Some(world) = &world {
                let (scenario, trace) = world.replay_report();
                println!("seed {seed} scenario: {scenario:#?}");
                for line in trace {
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
    ///
    /// # Panics
    ///
    /// When a seed fails; the first of them is named with its replay command.
    pub fn sweep<W: SeedWorld>(&self, start: u64, count: u64) {
        let began = Instant::now();
        let next = AtomicU64::new(start);
        let end = start + count;
        let stop = AtomicBool::new(false);
        let failures = Mutex::new(Vec::<(u64, String)>::new());
        let totals = Mutex::new(Stats::new());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

        let quiet = Quiet::install();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut mine = Stats::new();
                    while !stop.load(Ordering::Relaxed) {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= end {
                            break;
                        }
                        match run_seed::<W>(seed, false).0 {
                            Ok(stats) => self.add_seed(&mut mine, stats),
                            Err(e) => {
                                let mut f = failures.lock().unwrap();
                                f.push((seed, e));
                                if f.len() >= MAX_FAILURES {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    self.merge(&mut totals.lock().unwrap(), mine);
                });
            }
        });
        drop(quiet);

        let elapsed = began.elapsed().as_secs_f64();
        let mut failures = failures.into_inner().unwrap();
        failures.sort();
        let totals = totals.into_inner().unwrap();
        println!(
            "{}: seeds {start}..{end} on {threads} threads in {elapsed:.1}s, {} failed",
            self.name,
            failures.len()
        );
        for (k, v) in &totals {
            println!("  {k:<40} {v:>12}");
        }
        if let Some((seed, e)) = failures.first() {
            for (seed, e) in &failures {
                eprintln!(
                    "seed {seed} failed: {e}\n  replay: {}",
                    self.replay_command(*seed)
                );
            }
            panic!(
                "{} seed(s) failed; first: seed {seed}: {e}\nreplay it with:\n  {}",
                failures.len(),
                self.replay_command(*seed)
            );
        }
    }

    /// The command that replays `seed` alone.
    pub fn replay_command(&self, seed: u64) -> String {
        format!("{}_SEED={seed} {}", self.env, self.command)
    }

    /// Adds one passed seed's counters to a thread's.
    fn add_seed(&self, mine: &mut Stats, seed: Stats) {
        for &(most, counted) in self.maxima {
            let value = seed.get(counted).copied().unwrap_or(0);
            let max = mine.entry(most).or_default();
            *max = (*max).max(value);
        }
        for (k, v) in seed {
            *mine.entry(k).or_default() += v;
        }
    }

    /// Adds a thread's counters to the sweep's.
    fn merge(&self, totals: &mut Stats, mine: Stats) {
        for (k, v) in mine {
            let total = totals.entry(k).or_default();
            if self.maxima.iter().any(|&(most, _)| most == k) {
                *total = (*total).max(v);
            } else {
                *total += v;
            }
        }
    }

    fn env_u64(&self, suffix: &str) -> Option<u64> {
        let name = format!("{}_{suffix}", self.env);
        let value = std::env::var(&name).ok()?;
        Some(
            value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        )
    }
}

/// Runs one seed; a panic (in the code under test or the simulation) is a failure too.
fn run_seed<W: SeedWorld>(seed: u64, trace: bool) -> (Result<Stats, String>, Option<W>) {
    let outcome = panic_capture::catch(|| {
        let mut world = W::new(seed, trace);
        let result = world.run();
        (result, world)
    });
    match outcome {
        Ok((Ok(()), world)) => (Ok(world.stats().clone()), Some(world)),
        Ok((Err(e), world)) => (Err(e), Some(world)),
        Err(panicked) => (Err(panicked), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed `n` counts `n` steps; seed 7 breaks a guarantee and seed 9 panics.
    struct Counting {
        seed: u64,
        stats: Stats,
    }

    impl SeedWorld for Counting {
        fn new(seed: u64, _trace: bool) -> Self {
            Self {
                seed,
                stats: Stats::new(),
            }
        }

        fn run(&mut self) -> Result<(), String> {
            match self.seed {
                7 => Err("seven broke".into()),
                9 => panic!("nine panicked"),
                n => {
                    self.stats.insert("steps", n);
                    self.stats.insert("seeds", 1);
                    Ok(())
                }
            }
        }

        fn stats(&self) -> &Stats {
            &self.stats
        }

        fn replay_report(&self) -> (&dyn Debug, &[String]) {
            (&self.seed, &[])
        }
    }

    const SUITE: Suite = Suite {
        name: "counting",
        env: "SANSMQ_SIM_SUPPORT_TEST",
        default_seeds: 5,
        command: "cargo test -p sansmq-sim-support",
        maxima: &[("steps, most in one seed", "steps")],
    };

    /// The panic hook is the process's: sweeps in parallel tests would swap it under each other.
    static ONE_SWEEP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn failure_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let _one = ONE_SWEEP_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let payload = std::panic::catch_unwind(f).expect_err("the sweep should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn a_sweep_sums_counters_and_keeps_the_maxima_as_the_most_of_one_seed() {
        let mut totals = Stats::new();
        for thread in [[1, 4], [5, 2]] {
            let mut mine = Stats::new();
            for seed in thread {
                let mut world = Counting::new(seed, false);
                world.run().unwrap();
                SUITE.add_seed(&mut mine, world.stats);
            }
            SUITE.merge(&mut totals, mine);
        }
        assert_eq!(totals["steps"], 12);
        assert_eq!(totals["seeds"], 4);
        assert_eq!(totals["steps, most in one seed"], 5);
    }

    #[test]
    fn a_sweep_fails_naming_the_first_failed_seed_and_its_replay_command() {
        let message = failure_of(|| SUITE.sweep::<Counting>(0, 12));
        assert!(
            message.starts_with("2 seed(s) failed; first: seed 7: seven broke"),
            "{message}"
        );
        assert!(
            message.ends_with("SANSMQ_SIM_SUPPORT_TEST_SEED=7 cargo test -p sansmq-sim-support"),
            "{message}"
        );
    }

    #[test]
    fn a_panicking_seed_fails_with_the_panic_message_and_place() {
        let (result, world) = run_seed::<Counting>(9, false);
        assert!(world.is_none());
        let message = result.expect_err("seed 9 panics");
        assert!(message.starts_with("panicked: "), "{message}");

        let message = failure_of(|| SUITE.sweep::<Counting>(8, 2));
        assert!(
            message.contains("seed 9: panicked: nine panicked at ") && message.contains("suite.rs"),
            "{message}"
        );
    }

    #[test]
    fn a_sweep_of_passing_seeds_passes() {
        let _one = ONE_SWEEP_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        SUITE.sweep::<Counting>(0, 7);
    }
}
