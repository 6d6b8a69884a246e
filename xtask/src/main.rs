//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci`: the full CI pipeline (fmt, clippy, feature sets, package, tests, the
//!   token_mode example, lifecycle simulation, docs, fuzz smoke).
//! - `cargo xtask fuzz <target> [--seconds N]`: run one fuzz target for a while.
//! - `cargo xtask bench [-- ARGS]`: run the codec benches, passing ARGS to criterion.
//! - `cargo xtask sim --seeds N [--start S] [--suite core|lifecycle|all] [--protocol 5|311|both]`:
//!   run the simulations (the client core, the connection lifecycle, or both) over N seeds in
//!   release mode; `--v5` runs the core's seeds as MQTT 5 sessions only.
//! - `cargo xtask crash [--messages N] [--kills K]`: the session-store crash tests at full scale
//!   (10,000 messages, 40 kills per test) in release mode.
//! - `cargo xtask bench-load [--counts 1000,10000] [--qos 0,1,2]`: `sansmq bench` (release)
//!   against mosquitto and sansmq-broker: msgs/s, generator and broker CPU per message, RSS per
//!   connection, as the README's table.
//! - `cargo xtask demo [-- ARGS]`: the ApsaraMQ quick-start demo (`sansmq demo`), in release mode.
//!
//! The alias lives in `.cargo/config.toml`.

mod bench_load;
mod ci;
mod cmd;
mod crash;
mod example;
mod sim;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "sansmq project automation",
    version
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The xtask subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the full CI pipeline: fmt, clippy, feature sets, package, test, the token_mode example,
    /// lifecycle simulation, doc, fuzz smoke.
    Ci(ci::CiArgs),
    /// Run one fuzz target (nightly + cargo-fuzz, installed if missing).
    Fuzz {
        /// Fuzz target name, as listed by `cargo +nightly fuzz list` in fuzz/.
        target: String,
        /// How long to fuzz, in seconds.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
    },
    /// Run the codec benches (`cargo bench -p sansmq-benches --bench codec`).
    Bench {
        /// Extra arguments passed to the bench binary (criterion), e.g. `-- --save-baseline main`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the deterministic simulations (core, lifecycle or both) over many seeds (release mode).
    Sim(sim::SimArgs),
    /// Run the session-store crash tests at full scale (release mode): a publisher and `sansmq
    /// sub --session-dir` killed with SIGKILL at random moments, at QoS 1 and QoS 2.
    Crash(crash::CrashArgs),
    /// Run `sansmq bench` (release) against mosquitto and our broker at 1k and 10k connections:
    /// msgs/s, generator and broker CPU per message, RSS per connection (a Markdown table).
    BenchLoad(bench_load::BenchLoadArgs),
    /// Run the ApsaraMQ quick-start demo (`sansmq demo`, release mode) on the embedded broker, or
    /// with ARGS such as `--broker URL --instance ID`.
    Demo {
        /// Arguments for `sansmq demo`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Ci(args) => ci::run(&args),
        Command::Fuzz { target, seconds } => report(fuzz(&target, seconds)),
        Command::Bench { args } => report(bench(&args)),
        Command::Sim(args) => report(sim::run(&args)),
        Command::Crash(args) => report(crash::run(&args)),
        Command::Demo { args } => report(demo(&args)),
        Command::BenchLoad(args) => report(bench_load::run(&args)),
    }
}

/// Turns a command's result into the exit code, printing an error as one line.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask fuzz`: ensure nightly and cargo-fuzz, then run `target` for `seconds`.
fn fuzz(target: &str, seconds: u64) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    cmd::check_fuzz_dir(&root)?;
    tools::ensure_fuzz_tooling()?;
    cmd::run(&mut cmd::fuzz_run_for(&root, target, seconds))
}

/// `cargo xtask demo`: `cargo run --release -p sansmq-cli -- demo ARGS`.
fn demo(args: &[String]) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    let mut demo = cmd::cargo(&root);
    demo.args(["run", "--release", "-p", "sansmq-cli", "--", "demo"])
        .args(args);
    cmd::run(&mut demo)
}

/// `cargo xtask bench`: run the codec benches, forwarding `args` to the bench binary.
fn bench(args: &[String]) -> anyhow::Result<()> {
    let root = cmd::workspace_root()?;
    let mut bench = cmd::cargo(&root);
    bench.args(["bench", "-p", "sansmq-benches", "--bench", "codec"]);
    if !args.is_empty() {
        bench.arg("--").args(args);
    }
    cmd::run(&mut bench)
}
