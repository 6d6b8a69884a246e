//! Running child processes: build a `cargo` command, run it, and turn failure into one clear error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, bail};

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{} has no parent directory", manifest_dir.display()))
}

/// Environment variables every later [`cargo`] command gets, set once by [`use_cargo_env`].
static CARGO_ENV: OnceLock<&'static [(&'static str, &'static str)]> = OnceLock::new();

/// Gives every `cargo` command made from now on these variables, each unless the user's
/// environment already sets it (so a person can still ask for other settings).
pub(crate) fn use_cargo_env(vars: &'static [(&'static str, &'static str)]) {
    // A second call keeps the first settings: one command sets them once, before any cargo run.
    let _ = CARGO_ENV.set(vars);
}

/// A `cargo` command (the rustup proxy from `PATH`, so `+nightly` works) run from `dir`.
pub(crate) fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir);
    for (name, value) in CARGO_ENV.get().copied().unwrap_or_default() {
        if std::env::var_os(name).is_none() {
            cmd.env(name, value);
        }
    }
    cmd
}

/// Checks that `<root>/fuzz` holds the cargo-fuzz crate, so a missing one is one clear error.
pub(crate) fn check_fuzz_dir(root: &Path) -> anyhow::Result<()> {
    let manifest = root.join("fuzz").join("Cargo.toml");
    if !manifest.is_file() {
        bail!("no fuzz crate: {} does not exist", manifest.display());
    }
    Ok(())
}

/// A `cargo +nightly fuzz ...` command run inside `<root>/fuzz`.
pub(crate) fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = cargo(&root.join("fuzz"));
    cmd.args(["+nightly", "fuzz"]);
    cmd
}

/// `cargo +nightly fuzz run <target> -- -max_total_time=<seconds> -dict=mqtt.dict`.
pub(crate) fn fuzz_run_for(root: &Path, target: &str, seconds: u64) -> Command {
    let mut cmd = cargo_fuzz(root);
    cmd.args(["run", target, "--"]);
    cmd.arg(format!("-max_total_time={seconds}"));
    // The fuzzer runs in fuzz/ (see `cargo_fuzz`), where the dictionary lives.
    cmd.arg("-dict=mqtt.dict");
    cmd
}

/// The command line of `cmd` as a shell would show it (program and arguments, no environment).
pub(crate) fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with inherited stdio; fails if it cannot start or exits unsuccessfully.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        match status.code() {
            Some(code) => bail!("`{line}` exited with status {code}"),
            None => bail!("`{line}` was terminated by a signal"),
        }
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails if it cannot start or exits unsuccessfully.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = display(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("`{line}` failed ({}): {}", out.status, last.trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Whether `cmd` can be started and exits successfully (its output is discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|out| out.status.success())
}
