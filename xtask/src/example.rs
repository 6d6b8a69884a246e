//! The `token_mode` example as README tells users to run it: `sansmq broker --apsaramq` in the
//! background, its printed `export` lines as the environment, then
//! `cargo run -p sansmq-apsaramq --example token_mode`, which must run the whole flow and exit 0.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::cmd;

/// Lines `sansmq broker --apsaramq` prints before (and including) its `export` lines.
const BROKER_HEADER_LINES: usize = 5;

/// Kills the broker however the step ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the example against a local broker in ApsaraMQ mode.
pub(crate) fn token_mode(root: &Path) -> anyhow::Result<()> {
    cmd::run(cmd::cargo(root).args([
        "build",
        "-q",
        "-p",
        "sansmq-cli",
        "-p",
        "sansmq-apsaramq",
        "--example",
        "token_mode",
    ]))?;
    let sansmq = root.join("target").join("debug").join("sansmq");
    let mut broker = Background(
        Command::new(&sansmq)
            .args([
                "broker",
                "--bind",
                "127.0.0.1:0",
                "--apsaramq",
                "mqtt-cn-local",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", sansmq.display()))?,
    );
    let stdout = broker.0.stdout.take().context("the broker's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut environment = Vec::new();
    for _ in 0..BROKER_HEADER_LINES {
        let line = lines
            .next()
            .context("the broker stopped before printing its login")??;
        println!("{line}");
        if let Some(exports) = line.trim().strip_prefix("export ") {
            for assignment in exports.split_whitespace() {
                let (name, value) = assignment
                    .split_once('=')
                    .with_context(|| format!("not NAME=VALUE: {assignment}"))?;
                environment.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    if !environment
        .iter()
        .any(|(name, _)| name == "MQTT_OPENAPI_ENDPOINT")
    {
        bail!("the broker printed no MQTT_OPENAPI_ENDPOINT");
    }
    let mut example = cmd::cargo(root);
    example
        .args([
            "run",
            "-q",
            "-p",
            "sansmq-apsaramq",
            "--example",
            "token_mode",
        ])
        .envs(environment);
    let output = cmd::output(&mut example)?;
    print!("{output}");
    if !output.contains("processed 10 of 10 messages once each; 10 re-deliveries") {
        bail!("token_mode did not process each message once through the re-deliveries");
    }
    Ok(())
}
