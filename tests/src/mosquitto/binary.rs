//! Where the mosquitto programs are.

use std::env;
use std::path::{Path, PathBuf};

const INSTALL_HINT: &str =
    "run `cargo xtask ci` (it installs it) or `apt-get install -y mosquitto`";

/// The `mosquitto` broker: on `PATH`, else `/usr/sbin/mosquitto` (Debian installs it there, and
/// `/usr/sbin` is often missing from a non-root `PATH`).
///
/// # Panics
///
/// With one line saying how to install it, if it is nowhere.
pub(crate) fn mosquitto() -> PathBuf {
    find("mosquitto", "/usr/sbin/mosquitto")
        .unwrap_or_else(|| panic!("mosquitto not found: {INSTALL_HINT}"))
}

/// `mosquitto_passwd`, which makes password files: on `PATH`, else `/usr/bin/mosquitto_passwd`.
///
/// # Panics
///
/// With one line saying how to install it, if it is nowhere.
pub(crate) fn mosquitto_passwd() -> PathBuf {
    find("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
        .unwrap_or_else(|| panic!("mosquitto_passwd not found: {INSTALL_HINT}"))
}

fn find(name: &str, fallback: &str) -> Option<PathBuf> {
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join(name))
        .chain([PathBuf::from(fallback)])
        .find(|path| is_file(path))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file())
}
