//! `cargo xtask crash`: the session-store crash tests at full scale, in release mode: a publisher
//! (`tests/tests/crash_recovery.rs`) and `sansmq sub --session-dir`
//! (`crates/sansmq-cli/tests/session_dir.rs`) killed with `SIGKILL` at random moments while
//! 10,000 numbered QoS 1 and QoS 2 messages go through mosquitto. CI runs the same tests scaled
//! down.

use clap::Args;

use crate::{cmd, tools};

/// Arguments of `cargo xtask crash`.
#[derive(Debug, Args)]
pub(crate) struct CrashArgs {
    /// Messages per test.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Kills per test (at least 20 makes the bar).
    #[arg(long, default_value_t = 40)]
    kills: u64,
}

/// Runs both crash tests with `args`' scale, printing what each run saw.
pub(crate) fn run(args: &CrashArgs) -> anyhow::Result<()> {
    tools::ensure_mosquitto()?;
    let root = cmd::workspace_root()?;
    for (package, test) in [
        ("sansmq-e2e", "crash_recovery"),
        ("sansmq-cli", "session_dir"),
    ] {
        let mut command = cmd::cargo(&root);
        command
            .args(["test", "--release", "-p", package, "--test", test])
            .args(["--", "--nocapture", "--test-threads", "1"])
            .env("SANSMQ_CRASH_MESSAGES", args.messages.to_string())
            .env("SANSMQ_CRASH_KILLS", args.kills.to_string());
        cmd::run(&mut command)?;
    }
    Ok(())
}
