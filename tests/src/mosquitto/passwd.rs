//! Password files made with `mosquitto_passwd -b`, so the hashes are whatever mosquitto expects.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::binary;

/// Writes a password file at `path` holding `users` (name, password).
///
/// User names may contain anything but `:` (the file's separator), including the `|` of
/// ApsaraMQ-style names such as `Signature|AccessKey|InstanceId`.
///
/// # Panics
///
/// If a name contains `:`, or `mosquitto_passwd` is missing or fails.
pub(crate) fn write(path: &Path, users: &[(String, String)]) {
    // `-b` adds to an existing file; an empty one is a valid start.
    fs::write(path, "").unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let tool = binary::mosquitto_passwd();
    for (user, password) in users {
        assert!(
            !user.contains(':'),
            "user name {user:?}: mosquitto password files cannot hold a ':' in a user name"
        );
        let output = Command::new(&tool)
            .arg("-b")
            .arg(path)
            .arg(user)
            .arg(password)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
        assert!(
            output.status.success(),
            "mosquitto_passwd -b for user {user:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
