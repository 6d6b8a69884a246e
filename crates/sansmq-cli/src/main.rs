//! `sansmq`: publish and subscribe with mosquitto_pub / mosquitto_sub's flags and exit codes, run
//! Alibaba's ApsaraMQ quick-start, or start a local broker.
//!
//! This file holds the command line (clap) and what every command shares: logging for `-d`, and
//! turning an error into one line on stderr and an exit code.

#![forbid(unsafe_code)]
// The doc comments of the argument structs are the `--help` text, written as mosquitto writes
// its own (`<instance>`, `[:port]`): plain text for clap, not HTML or links for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod args;
mod broker_cmd;
mod connect;
mod demo;
mod exit;
mod format;
mod latency;
mod link;
mod output;
mod pub_cmd;
mod signals;
mod sub_cmd;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An MQTT 3.1.1 client (and a small broker) on the sansmq engine.
#[derive(Debug, Parser)]
#[command(name = "sansmq", version)]
struct Cli {
    /// Show debug messages (connections, packets) on stderr; `RUST_LOG` refines them.
    #[arg(short = 'd', long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish messages, as mosquitto_pub does (same flags, same exit codes).
    ///
    /// With -l, Ctrl-C or SIGTERM ends the input: the lines read are sent, then DISCONNECT (the
    /// will is not published) and exit code 0.
    #[command(name = "pub", disable_help_flag = true)]
    Pub(pub_cmd::PubArgs),
    /// Subscribe and print messages, as mosquitto_sub does (same flags, same exit codes).
    ///
    /// Ctrl-C or SIGTERM ends it as -C does: DISCONNECT (the will is not published), exit code 0.
    #[command(name = "sub", disable_help_flag = true)]
    Sub(sub_cmd::SubArgs),
    /// Alibaba's ApsaraMQ quick-start: a subscriber and a publisher exchange 10 messages and 10
    /// P2P messages; against an embedded local broker unless --broker is given.
    Demo(demo::DemoArgs),
    /// Run a local MQTT broker for development (plain, or in ApsaraMQ mode); not for production.
    Broker(broker_cmd::BrokerArgs),
}

fn main() -> ExitCode {
    exit::quiet_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return exit::usage(&error),
    };
    if cli.debug {
        init_debug_log();
    }
    let result = match cli.command {
        Command::Pub(args) => pub_cmd::run(&args),
        Command::Sub(args) => sub_cmd::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Broker(args) => broker_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report(&error),
    }
}

/// `-d`: everything at debug level to stderr, unless `RUST_LOG` says otherwise.
fn init_debug_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        // Catches clashing flags (`-h` host against help, `-V` protocol against version).
        Cli::command().debug_assert();
    }
}
