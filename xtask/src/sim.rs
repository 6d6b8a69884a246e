//! `cargo xtask sim --seeds N [--start S] [--suite core|lifecycle|all] [--protocol 5|311|both]`:
//! the deterministic simulations over many seeds, in release mode: the client core against a
//! model broker (`crates/sansmq/tests/simulation`) and the connection supervisor's lifecycle
//! against model brokers behind several URIs (`crates/sansmq-driver/tests/lifecycle_simulation`).
//!
//! The core simulation's seeds are MQTT 3.1.1 or MQTT 5 sessions: `--protocol both` (the default,
//! as `cargo test`) makes every fourth seed MQTT 5, `--protocol 5` (or `--v5`) all of them,
//! `--protocol 311` none.
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

/// Which MQTT version the core simulation's seeds speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SimProtocol {
    /// MQTT 3.1.1 (and 3.1) sessions only.
    #[value(name = "311")]
    V311,
    /// MQTT 5 sessions only.
    #[value(name = "5")]
    V5,
    /// Every fourth seed MQTT 5, the others MQTT 3.1.1.
    Both,
}

impl SimProtocol {
    /// The value of `SANSMQ_SIM_PROTOCOL` the simulation reads.
    fn env_value(self) -> &'static str {
        match self {
            Self::V311 => "311",
            Self::V5 => "5",
            Self::Both => "both",
        }
    }
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
    /// Which MQTT version the core simulation's sessions speak.
    #[arg(long, value_enum, default_value_t = SimProtocol::Both)]
    protocol: SimProtocol,
    /// Shorthand for `--suite core --protocol 5`.
    #[arg(long, conflicts_with_all = ["protocol", "suite", "lifecycle"])]
    v5: bool,
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
            protocol: SimProtocol::Both,
            v5: false,
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
    } else if args.v5 {
        Suite::Core
    } else {
        args.suite
    };
    let protocol = if args.v5 {
        SimProtocol::V5
    } else {
        args.protocol
    };
    let targets: &[Target] = match suite {
        Suite::Core => &[CORE],
        Suite::Lifecycle => &[LIFECYCLE],
        Suite::All => &[CORE, LIFECYCLE],
    };
    for target in targets {
        run_one(target, args, protocol)?;
    }
    Ok(())
}

fn run_one(target: &Target, args: &SimArgs, protocol: SimProtocol) -> anyhow::Result<()> {
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
    if target.name == CORE.name {
        test.env(format!("{}_PROTOCOL", target.env), protocol.env_value());
    }
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
    let mut what = match args.seed {
        Some(seed) => format!("seed {seed}"),
        None => format!("seeds {}..{}", args.start, args.start + args.seeds),
    };
    if target.name == CORE.name {
        what.push_str(&format!(" (protocol {})", protocol.env_value()));
    }
    println!(
        "xtask sim ({}): {what} {} in {:.1}s (build included)",
        target.name,
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}
