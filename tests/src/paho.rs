//! Python's paho-mqtt (Debian's `python3-paho-mqtt`) as an independent MQTT peer: a client
//! written by others, to check our transports and broker against.

use std::process::{Command, Output, Stdio};

/// A Python 3 that can import paho-mqtt: `python3` on PATH, else Debian's `/usr/bin/python3` (the
/// package installs there, which a pyenv `python3` on PATH does not see).
///
/// # Panics
///
/// When neither can: `cargo xtask ci` installs `python3-paho-mqtt`.
pub fn python_with_paho() -> &'static str {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!("no python3 can import paho.mqtt.client: install python3-paho-mqtt");
}

/// Runs `script` (Python source) with `args` as `sys.argv[1:]`, to the end.
///
/// # Panics
///
/// When Python cannot be started.
pub fn run_paho(script: &str, args: &[&str]) -> Output {
    Command::new(python_with_paho())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}
