//! `cargo xtask ci`: the full CI pipeline, each step a child `cargo` run from the workspace root.
//!
//! Steps, in order, failing fast: fmt, clippy, feature sets, package, test, the token_mode example
//! against `sansmq broker --apsaramq`, lifecycle simulation, doc, fuzz smoke. The last line printed
//! is always `xtask ci: <passed> passed, <failed> failed`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::sim::{SimArgs, Suite};
use crate::{cmd, example, sim, tools};

/// Feature sets users may pick beside the defaults (which the clippy and test steps cover), each
/// linted with `-D warnings`: as fast as `cargo check`, and an import a `cfg` leaves unused fails.
/// `sansmq-apsaramq` builds without its default features (the broker uses its signature code
/// without either client) and with only the OpenAPI client; the drivers build without TLS
/// (`rustls`), and with TLS and one root store or none. Packages named together get the same
/// flags, each the features of those it has.
const FEATURE_SETS: [&[&str]; 6] = [
    &["-p", "sansmq-apsaramq", "--no-default-features"],
    &[
        "-p",
        "sansmq-apsaramq",
        "--no-default-features",
        "--features",
        "openapi",
    ],
    &[
        "-p",
        "sansmq-driver",
        "-p",
        "sansmq-mio",
        "-p",
        "sansmq-tokio",
        "-p",
        "sansmq-cli",
        "--no-default-features",
    ],
    &[
        "-p",
        "sansmq-driver",
        "--no-default-features",
        "--features",
        "rustls",
    ],
    &[
        "-p",
        "sansmq-driver",
        "-p",
        "sansmq-mio",
        "-p",
        "sansmq-tokio",
        "--no-default-features",
        "--features",
        "webpki-roots",
    ],
    &[
        "-p",
        "sansmq-driver",
        "-p",
        "sansmq-mio",
        "-p",
        "sansmq-tokio",
        "--no-default-features",
        "--features",
        "native-roots",
    ],
];

/// The tests that only a build without some feature compiles: the driver's without TLS (a TLS URI
/// refused by name) and with only the system store (Mozilla's roots refused, the system store the
/// default), and both clients refusing a TLS URI as they are made.
const FEATURE_SET_TESTS: [&[&str]; 3] = [
    &["-p", "sansmq-driver", "--no-default-features", "--lib"],
    &[
        "-p",
        "sansmq-driver",
        "--no-default-features",
        "--features",
        "native-roots",
        "--lib",
    ],
    &[
        "-p",
        "sansmq-mio",
        "-p",
        "sansmq-tokio",
        "--no-default-features",
        "--test",
        "tls_not_built",
    ],
];

/// The crates published to crates.io (every member without `publish = false`). The package step
/// builds each from the sources `cargo package` puts in it, so a file left out of a package, or
/// one outside its crate, fails here rather than at `cargo publish`.
const PUBLISHED_CRATES: [&str; 10] = [
    "sansmq",
    "sansmq-driver",
    "sansmq-mio",
    "sansmq-tokio",
    "sansmq-futures",
    "sansmq-apsaramq",
    "sansmq-broker",
    "sansmq-cli",
    "sansmq-store",
    "sansmq-bench",
];

/// Removes the sources cargo extracted from the local registry of an earlier `cargo package`.
///
/// Verifying a package builds its sibling crates from a registry under `target/package`, whose
/// extracted sources cargo keeps in `$CARGO_HOME/registry/src/-<hash>/` and never extracts again
/// for the same name and version: a second run on the same machine, after an API change, would
/// verify against the first run's sources and fail. Only our own crates' directories in those
/// local-registry folders (named with a leading `-`) are removed; crates.io's are not touched.
fn forget_packaged_sources() -> anyhow::Result<()> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cargo"),
            None => return Ok(()),
        },
    };
    let Ok(registries) = std::fs::read_dir(home.join("registry").join("src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for source in std::fs::read_dir(registry.path())?.flatten() {
            let name = source.file_name().to_string_lossy().into_owned();
            let ours = PUBLISHED_CRATES.iter().any(|krate| {
                name.strip_prefix(krate)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                std::fs::remove_dir_all(source.path())
                    .with_context(|| format!("removing {}", source.path().display()))?;
            }
        }
    }
    Ok(())
}

/// How CI's debug builds differ from a developer's: no incremental state (CI builds once, and
/// `target/debug/incremental` held 4 GiB) and no debug information, the standard library's
/// stripped too (a panic still names its file and line, a backtrace its functions). A clean run's
/// `target/` held 16 GiB with the dev profile's full debug information and 5.9 GiB with line
/// tables only; a CI machine's free disk may be less than either, and one run failed when it
/// filled in the test step's build.
const CI_CARGO_ENV: &[(&str, &str)] = &[
    ("CARGO_INCREMENTAL", "0"),
    ("CARGO_PROFILE_DEV_DEBUG", "0"),
    ("CARGO_PROFILE_DEV_STRIP", "debuginfo"),
];

/// Seeds of the lifecycle simulation CI runs in release mode (about 2 s on 2 cores, 4 s of CPU,
/// build excluded); `cargo xtask sim` runs 100,000 on demand (about 23 s).
const LIFECYCLE_SEEDS: u64 = 10_000;

/// Flags of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
pub(crate) struct CiArgs {
    /// Skip the fuzz smoke step (which needs nightly and cargo-fuzz).
    #[arg(long)]
    skip_fuzz: bool,
    /// How long to run each fuzz target after replaying its corpus, in seconds.
    #[arg(long, default_value_t = 30)]
    fuzz_seconds: u64,
}

/// One CI step: a name for the header and the summary, and what it runs.
struct Step<'a> {
    /// Short name, e.g. `clippy`.
    name: &'static str,
    /// Runs the step; an error means the step failed.
    run: Box<dyn Fn() -> anyhow::Result<()> + 'a>,
}

/// Runs the pipeline and reports: a header per step, one line naming a failed step, then the summary.
pub(crate) fn run(args: &CiArgs) -> ExitCode {
    let root = match cmd::workspace_root() {
        Ok(root) => root,
        Err(err) => {
            eprintln!("xtask ci: error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    cmd::use_cargo_env(CI_CARGO_ENV);
    let steps = steps(&root, args);
    let total = steps.len();
    let mut passed = 0;
    let mut failed = 0;
    for (index, step) in steps.iter().enumerate() {
        println!("\n==> [{}/{total}] {}", index + 1, step.name);
        let start = Instant::now();
        match (step.run)() {
            Ok(()) => {
                passed += 1;
                println!(
                    "--> {} passed in {:.1}s{}",
                    step.name,
                    start.elapsed().as_secs_f64(),
                    disk_report(&root)
                );
            }
            Err(err) => {
                failed += 1;
                eprintln!(
                    "xtask ci: step {}/{total} `{}` failed: {err:#}",
                    index + 1,
                    step.name
                );
                break;
            }
        }
    }
    if args.skip_fuzz {
        println!("xtask ci: fuzz smoke skipped (--skip-fuzz)");
    }
    println!("xtask ci: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `; target/ holds X, Y free on its disk`, from `du` and `df`, or nothing where they fail: a
/// run that fills the disk shows which step grew it.
fn disk_report(root: &Path) -> String {
    let target = root.join("target");
    let used = cmd::output(std::process::Command::new("du").arg("-sh").arg(&target));
    let free = cmd::output(
        std::process::Command::new("df")
            .args(["-h", "--output=avail"])
            .arg(root),
    );
    match (used, free) {
        (Ok(used), Ok(free)) => {
            let used = used.split_whitespace().next().unwrap_or("?");
            let free = free.lines().nth(1).map(str::trim).unwrap_or("?");
            format!("; target/ holds {used}, {free} free on its disk")
        }
        _ => String::new(),
    }
}

/// The pipeline's steps, in order.
fn steps<'a>(root: &'a Path, args: &'a CiArgs) -> Vec<Step<'a>> {
    let mut steps = vec![
        Step {
            name: "fmt",
            run: Box::new(|| cmd::run(cmd::cargo(root).args(["fmt", "--all", "--", "--check"]))),
        },
        Step {
            name: "clippy",
            run: Box::new(|| {
                cmd::run(cmd::cargo(root).args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        },
        Step {
            name: "feature sets",
            run: Box::new(|| {
                for flags in FEATURE_SETS {
                    cmd::run(
                        cmd::cargo(root)
                            .arg("clippy")
                            .args(flags)
                            .args(["--", "-D", "warnings"]),
                    )?;
                }
                for flags in FEATURE_SET_TESTS {
                    cmd::run(cmd::cargo(root).arg("test").args(flags))?;
                }
                Ok(())
            }),
        },
        Step {
            name: "package",
            run: Box::new(|| {
                // --allow-dirty: CI runs in a work tree, committed or not; cargo packages the
                // crates together, so each depends on the others' packaged sources.
                forget_packaged_sources()?;
                let mut command = cmd::cargo(root);
                command.args(["package", "--allow-dirty"]);
                for krate in PUBLISHED_CRATES {
                    command.args(["-p", krate]);
                }
                cmd::run(&mut command)
            }),
        },
        Step {
            name: "test",
            run: Box::new(|| {
                // The end-to-end tests start mosquitto themselves; a failed install is reported here
                // and again by each test that needs the binary.
                if let Err(err) = tools::ensure_mosquitto() {
                    eprintln!("xtask ci: warning: {err:#}; continuing without mosquitto");
                }
                cmd::run(cmd::cargo(root).args(["test", "--workspace"]))
            }),
        },
        Step {
            name: "token_mode example",
            run: Box::new(|| example::token_mode(root)),
        },
        Step {
            name: "lifecycle simulation",
            run: Box::new(|| sim::run(&SimArgs::sweep(Suite::Lifecycle, LIFECYCLE_SEEDS))),
        },
        Step {
            name: "doc",
            run: Box::new(|| {
                cmd::run(
                    cmd::cargo(root)
                        .args(["doc", "--workspace", "--no-deps"])
                        .env("RUSTDOCFLAGS", "-D warnings"),
                )
            }),
        },
    ];
    if !args.skip_fuzz {
        steps.push(Step {
            name: "fuzz smoke",
            run: Box::new(|| fuzz_smoke(root, args.fuzz_seconds)),
        });
    }
    steps
}

/// For every fuzz target: build it, replay its committed corpus, then fuzz it for `seconds`.
fn fuzz_smoke(root: &Path, seconds: u64) -> anyhow::Result<()> {
    cmd::check_fuzz_dir(root)?;
    tools::ensure_fuzz_tooling()?;
    let list =
        cmd::output(cmd::cargo_fuzz(root).arg("list")).context("cannot list fuzz targets")?;
    let targets: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if targets.is_empty() {
        bail!("`cargo +nightly fuzz list` in fuzz/ found no targets");
    }
    println!("fuzz targets: {}", targets.join(", "));
    for target in targets {
        println!("\n--- fuzz target `{target}`: build, replay corpus, run {seconds}s");
        cmd::run(cmd::cargo_fuzz(root).args(["build", target]))?;
        // With no corpus argument cargo-fuzz uses fuzz/corpus/<target>; `-runs=0` only replays it.
        cmd::run(cmd::cargo_fuzz(root).args(["run", target, "--", "-runs=0"]))?;
        // A fixed seed keeps CI reproducible (the same inputs for the same code and corpus);
        // `cargo xtask fuzz` explores with fresh seeds.
        cmd::run(cmd::fuzz_run_for(root, target, seconds).arg("-seed=1"))?;
    }
    Ok(())
}
