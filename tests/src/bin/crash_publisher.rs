//! The publisher of the crash tests (`tests/crash_recovery.rs`, `cargo xtask crash`): publishes
//! numbered messages with a session store, telling on stdout what `publish` accepted, so a test
//! that kills it at random knows what must arrive.
//!
//! `crash-publisher URL CLIENT_ID SESSION_DIR QOS FIRST LAST [every|never|MILLIS]`
//!
//! Prints `try N` before publishing message N (payload: N in decimal, topic `crash/pub`), `ok N`
//! once `publish` returned `Ok` (the message is in the store), and `done` once every message,
//! restored ones included, is acknowledged and the client disconnected.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use sansmq_mio::{Client, ConnectOptions, DeliveryToken, QoS, SyncPolicy};

/// Messages published and not yet acknowledged before `publish` waits for the oldest.
const WINDOW: usize = 200;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash-publisher: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, client_id, dir, qos, first, last, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: crash-publisher URL CLIENT_ID SESSION_DIR QOS FIRST LAST [SYNC]".into(),
        );
    };
    let qos = match qos.as_str() {
        "1" => QoS::AtLeastOnce,
        "2" => QoS::ExactlyOnce,
        other => return Err(format!("QoS {other}: 1 or 2").into()),
    };
    let (first, last): (u64, u64) = (first.parse()?, last.parse()?);
    let policy = match rest.first().map(String::as_str) {
        None | Some("every") => SyncPolicy::EveryRecord,
        Some("never") => SyncPolicy::Never,
        Some(millis) => SyncPolicy::Every(Duration::from_millis(millis.parse()?)),
    };
    let options = ConnectOptions::new(url, client_id.clone())?
        .clean_session(false)
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500))
        .session_dir(dir, policy);
    let client = Client::new(options)?;
    client.connect()?;
    let mut out = std::io::stdout().lock();
    let mut tokens: VecDeque<DeliveryToken> = VecDeque::new();
    for n in first..=last {
        if tokens.len() >= WINDOW {
            if let Some(oldest) = tokens.pop_front() {
                oldest.wait()?;
            }
        }
        writeln!(out, "try {n}")?;
        out.flush()?;
        let token = client.publish("crash/pub", n.to_string(), qos, false)?;
        writeln!(out, "ok {n}")?;
        out.flush()?;
        tokens.push_back(token);
    }
    for token in tokens {
        token.wait()?;
    }
    // Waits for the messages a killed predecessor left in the store too.
    client.disconnect(Duration::from_secs(30))?;
    writeln!(out, "done")?;
    Ok(())
}
