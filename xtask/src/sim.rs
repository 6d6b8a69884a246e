//! `cargo xtask sim --seeds N [--start S]`: the deterministic simulation of the client
//! (`crates/sansmq/tests/simulation`) over many seeds, in release mode.
//!
//! `cargo test` runs 1,000 seeds; this runs as many as asked. A failing seed prints the command
//! that replays it alone, with its trace.

use std::time::Instant;

use crate::cmd;

/// Flags of `cargo xtask sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replay this one seed with its trace instead (same as `SANSMQ_SIM_SEED`).
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    seed: Option<u64>,
}

/// Runs the simulation test binary in release mode with the seed range in its environment.
pub(crate) fn run(args: &SimArgs) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    let mut test = cmd::cargo(&root);
    test.args([
        "test",
        "--release",
        "-p",
        "sansmq",
        "--test",
        "simulation",
        "--",
        "--nocapture",
    ]);
    match args.seed {
        Some(seed) => {
            test.env("SANSMQ_SIM_SEED", seed.to_string());
        }
        None => {
            test.env("SANSMQ_SIM_START", args.start.to_string())
                .env("SANSMQ_SIM_SEEDS", args.seeds.to_string());
        }
    }
    let started = Instant::now();
    let result = cmd::run(&mut test);
    let what = match args.seed {
        Some(seed) => format!("seed {seed}"),
        None => format!("seeds {}..{}", args.start, args.start + args.seeds),
    };
    println!(
        "xtask sim: {what} {} in {:.1}s (build included)",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}
