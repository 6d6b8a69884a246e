//! `cargo xtask sim --seeds N [--start S] [--suite core|lifecycle|all]`: the deterministic
//! simulations over many seeds, in release mode: the client core against a model broker
//! (`crates/sansmq/tests/simulation`) and the connection supervisor's lifecycle against model
//! brokers behind several URIs (`crates/sansmq-driver/tests/lifecycle_simulation`).
//!
//! `cargo test` runs a few hundred seeds of each; this runs as many as asked. A failing seed
//! prints the command that replays it alone, with its trace.

use std::time::Instant;

use crate::cmd;

/// Which simulation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// The client core against a model broker.
    Core,
    /// The connection supervisor: reconnects, URIs, credentials, re-subscribe, completions.
    Lifecycle,
    /// Both, one after the other.
    All,
}

/// Flags of `cargo xtask sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replay this one seed with its trace instead.
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    seed: Option<u64>,
    /// Which simulation.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Shorthand for `--suite lifecycle`.
    #[arg(long, conflicts_with = "suite")]
    lifecycle: bool,
}

impl SimArgs {
    /// `seeds` seeds of `suite` from 0 (for CI).
    pub(crate) fn sweep(suite: Suite, seeds: u64) -> Self {
        Self {
            seeds,
            start: 0,
            seed: None,
            suite,
            lifecycle: false,
        }
    }
}

/// One simulation's test binary and the prefix of its environment variables.
struct Target {
    name: &'static str,
    package: &'static str,
    test: &'static str,
    env: &'static str,
}

const CORE: Target = Target {
    name: "core",
    package: "sansmq",
    test: "simulation",
    env: "SANSMQ_SIM",
};

const LIFECYCLE: Target = Target {
    name: "lifecycle",
    package: "sansmq-driver",
    test: "lifecycle_simulation",
    env: "SANSMQ_LIFECYCLE",
};

/// Runs the chosen simulations in release mode with the seed range in their environment.
pub(crate) fn run(args: &SimArgs) -> anyhow::Result<()> {
    let suite = if args.lifecycle {
        Suite::Lifecycle
    } else {
        args.suite
    };
    let targets: &[Target] = match suite {
        Suite::Core => &[CORE],
        Suite::Lifecycle => &[LIFECYCLE],
        Suite::All => &[CORE, LIFECYCLE],
    };
    for target in targets {
        run_one(target, args)?;
    }
    Ok(())
}

fn run_one(target: &Target, args: &SimArgs) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    let mut test = cmd::cargo(&root);
    test.args([
        "test",
        "--release",
        "-p",
        target.package,
        "--test",
        target.test,
        "--",
        "--nocapture",
    ]);
    match args.seed {
        Some(seed) => {
            test.env(format!("{}_SEED", target.env), seed.to_string());
        }
        None => {
            test.env(format!("{}_START", target.env), args.start.to_string())
                .env(format!("{}_SEEDS", target.env), args.seeds.to_string());
        }
    }
    let started = Instant::now();
    let result = cmd::run(&mut test);
    let what = match args.seed {
        Some(seed) => format!("seed {seed}"),
        None => format!("seeds {}..{}", args.start, args.start + args.seeds),
    };
    println!(
        "xtask sim ({}): {what} {} in {:.1}s (build included)",
        target.name,
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}
