//! Tooling setup, idempotent: each `ensure_*` checks first and installs only what is missing.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::cmd;

/// Ensures everything `cargo +nightly fuzz` needs: the nightly toolchain, then cargo-fuzz.
pub(crate) fn ensure_fuzz_tooling() -> anyhow::Result<()> {
    ensure_nightly()?;
    ensure_cargo_fuzz()
}

/// Ensures a nightly toolchain is installed (`rustup toolchain install nightly --profile minimal` if not).
pub(crate) fn ensure_nightly() -> anyhow::Result<()> {
    let list = cmd::output(Command::new("rustup").args(["toolchain", "list"]))
        .context("cannot list rustup toolchains (is rustup installed?)")?;
    if list
        .lines()
        .any(|line| line.trim_start().starts_with("nightly"))
    {
        return Ok(());
    }
    println!("xtask: nightly toolchain missing, installing it");
    cmd::run(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
    ]))
}

/// Ensures cargo-fuzz is installed (`cargo install cargo-fuzz --locked` if `cargo +nightly fuzz` fails).
pub(crate) fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if cmd::succeeds(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        return Ok(());
    }
    println!("xtask: cargo-fuzz missing, installing it");
    cmd::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// Ensures a `mosquitto` broker binary is on `PATH`, for the end-to-end tests, the MQTT clients
/// sansmq-broker's interop tests drive (`mosquitto_pub`/`mosquitto_sub` and Python paho-mqtt), and
/// the system tools other tests run: `openssl` (encrypted client keys), `ip` and `unshare` (a
/// private network namespace where a host name resolves to two addresses).
///
/// If one is missing and we run as root, installs them with `apt-get`; otherwise fails with a hint.
pub(crate) fn ensure_mosquitto() -> anyhow::Result<()> {
    if mosquitto_on_path() && mqtt_clients_present() && system_tools_present() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "mosquitto, its clients, paho-mqtt, openssl, ip or unshare is missing and we are not root; install them \
             (`apt-get install mosquitto mosquitto-clients python3-paho-mqtt openssl iproute2 util-linux`)"
        );
    }
    println!(
        "xtask: mosquitto, its clients or a system tool the tests run is missing, installing them with apt-get"
    );
    cmd::run(Command::new("apt-get").arg("update"))?;
    cmd::run(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "mosquitto",
                "mosquitto-clients",
                "python3-paho-mqtt",
                "openssl",
                "iproute2",
                "util-linux",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if !mosquitto_on_path() {
        bail!("mosquitto was installed but is still not on PATH (Debian puts it in /usr/sbin)");
    }
    Ok(())
}

/// Whether `mosquitto -h` can be started. Its exit status is ignored: `-h` exits non-zero on some versions.
fn mosquitto_on_path() -> bool {
    let spawned = Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match spawned {
        Ok(_) => true,
        Err(err) if err.kind() == ErrorKind::NotFound => false,
        Err(_) => cmd::succeeds(Command::new("which").arg("mosquitto")),
    }
}

/// Whether `mosquitto_pub` starts and a Python 3 imports paho-mqtt (`python3` on `PATH`, or Debian's
/// own `/usr/bin/python3`, where the package installs it, when `PATH` has another one first).
fn mqtt_clients_present() -> bool {
    let paho = ["python3", "/usr/bin/python3"]
        .iter()
        .any(|python| cmd::succeeds(Command::new(python).args(["-c", "import paho.mqtt.client"])));
    // `--help` exits 1, so only whether it starts counts.
    let mosquitto_pub = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    paho && mosquitto_pub
}

/// Whether `openssl`, `ip` and `unshare` start (their exit status does not matter).
fn system_tools_present() -> bool {
    ["openssl", "ip", "unshare"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// Whether the current user is root (`id -u` prints 0).
fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}
