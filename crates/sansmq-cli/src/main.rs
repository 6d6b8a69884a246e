//! `sansmq`: publish and subscribe with mosquitto_pub / mosquitto_sub's flags and exit codes, run
//! Alibaba's ApsaraMQ quick-start, start a local broker, manage ApsaraMQ tokens, or load-test a
//! broker (`bench`).
//!
//! This file holds the command line (clap) and what every command shares: logging for `-d`, and
//! turning an error into one line on stderr and an exit code.

#![forbid(unsafe_code)]
// The doc comments of the argument structs are the `--help` text, written as mosquitto writes
// its own (`<instance>`, `[:port]`): plain text for clap, not HTML or links for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod args;
mod bench_cmd;
mod broker_cmd;
mod connect;
mod demo;
mod exit;
mod format;
mod latency;
mod link;
mod output;
mod properties;
mod pub_cmd;
mod rr_cmd;
mod signals;
mod sub_cmd;
mod token_cmd;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// An MQTT 3.1.1 client (and a small broker) on the sansmq engine.
#[derive(Debug, Parser)]
#[command(name = "sansmq", version)]
struct Cli {
    /// Show debug messages (connections, packets): on stdout for pub and sub, as mosquitto_pub
    /// and mosquitto_sub print theirs, else on stderr. `RUST_LOG` refines them; set without -d,
    /// it logs on stderr.
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
    #[command(
        name = "pub",
        version,
        disable_help_flag = true,
        disable_version_flag = true
    )]
    Pub(pub_cmd::PubArgs),
    /// Subscribe and print messages, as mosquitto_sub does (same flags, same exit codes).
    ///
    /// Ctrl-C or SIGTERM ends it as -C does: DISCONNECT (the will is not published), exit code 0.
    #[command(
        name = "sub",
        version,
        disable_help_flag = true,
        disable_version_flag = true
    )]
    Sub(sub_cmd::SubArgs),
    /// Send an MQTT 5 request and print its response, as mosquitto_rr does (same flags, same
    /// exit codes): subscribe to -e, publish -m to -t with -e as its Response Topic, print the
    /// first message on -e.
    #[command(
        name = "rr",
        version,
        disable_help_flag = true,
        disable_version_flag = true
    )]
    Rr(rr_cmd::RrArgs),
    /// Alibaba's ApsaraMQ quick-start: a subscriber and a publisher exchange 10 messages and 10
    /// P2P messages; against an embedded local broker unless --broker is given.
    Demo(demo::DemoArgs),
    /// Run a local MQTT broker for development (plain, or in ApsaraMQ mode); not for production.
    Broker(broker_cmd::BrokerArgs),
    /// ApsaraMQ tokens for Token-mode logins: apply for one, query or revoke it, over Alibaba
    /// Cloud's OpenAPI (--region) or the local broker's (--endpoint).
    Token(token_cmd::TokenArgs),
    /// An MQTT load generator with emqtt-bench's flags: conn, pub, sub or pubsub with thousands
    /// of clients per core; latency percentiles, loss and duplicates in the summary.
    Bench(bench_cmd::BenchArgs),
}

fn main() -> ExitCode {
    exit::quiet_panics();
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(error) => return exit::usage(&error, mosquitto_command().is_some()),
    };
    if cli.debug || std::env::var_os("RUST_LOG").is_some() {
        init_debug_log(cli.debug && cli.command.is_mosquitto_like());
    }
    let quiet = cli.command.is_quiet();
    let result = match cli.command {
        Command::Pub(args) => pub_cmd::run(&args),
        Command::Sub(args) => sub_cmd::run(&args),
        Command::Rr(args) => rr_cmd::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Broker(args) => broker_cmd::run(&args),
        Command::Token(args) => token_cmd::run(&args),
        Command::Bench(args) => bench_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report(&error, quiet),
    }
}

/// The command line, and where -V and -D stand on it: mosquitto reads them in order, so a -V
/// after the last -D decides the protocol, and a -D after -V makes it MQTT 5.
fn parse_command_line() -> Result<Cli, clap::Error> {
    let mut matches = Cli::command().try_get_matches()?;
    let (version_after_property, property_flags) = match matches.subcommand() {
        Some((_, sub)) if sub.ids().any(|id| id == "properties") => {
            let last = |id: &str| {
                sub.ids()
                    .any(|known| known == id)
                    .then(|| sub.indices_of(id))
                    .flatten()
                    .and_then(Iterator::max)
            };
            let order =
                matches!((last("protocol"), last("properties")), (Some(v), Some(d)) if v > d);
            let flags = sub
                .get_occurrences::<String>("properties")
                .map(|occurrences| occurrences.map(|words| words.cloned().collect()).collect())
                .unwrap_or_default();
            (order, flags)
        }
        _ => (false, Vec::new()),
    };
    let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
    if let Some(connect) = cli.command.connect_args_mut() {
        connect.version_after_property = version_after_property;
        connect.property_flags = property_flags;
    }
    Ok(cli)
}

impl Command {
    /// The connection flags of `pub` and `sub`.
    fn connect_args_mut(&mut self) -> Option<&mut args::ConnectArgs> {
        match self {
            Self::Pub(args) => Some(&mut args.connect),
            Self::Sub(args) => Some(&mut args.connect),
            Self::Rr(args) => Some(&mut args.connect),
            Self::Demo(_) | Self::Broker(_) | Self::Token(_) | Self::Bench(_) => None,
        }
    }

    /// `pub` and `sub`, which behave as mosquitto_pub and mosquitto_sub where a script notices.
    fn is_mosquitto_like(&self) -> bool {
        matches!(self, Self::Pub(_) | Self::Sub(_) | Self::Rr(_))
    }

    /// `--quiet`: no error line, only the exit code.
    fn is_quiet(&self) -> bool {
        match self {
            Self::Pub(args) => args.connect.quiet,
            Self::Sub(args) => args.connect.quiet,
            Self::Rr(args) => args.connect.quiet,
            Self::Demo(_) | Self::Broker(_) | Self::Token(_) | Self::Bench(_) => false,
        }
    }
}

/// `pub` or `sub` when the command line names one (after global flags such as `-d`), even if
/// clap refused the rest of it.
fn mosquitto_command() -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .filter(|command| ["pub", "sub", "rr"].contains(&command.as_str()))
}

/// `-d` or `RUST_LOG`: everything at debug level, unless `RUST_LOG` says otherwise; on stdout
/// for `pub -d` and `sub -d` (where mosquitto_pub and mosquitto_sub print theirs), else on
/// stderr.
fn init_debug_log(on_stdout: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    // tungstenite traces the whole WebSocket upgrade request, --ws-header values (tokens) included;
    // ureq (`sansmq token`) the whole OpenAPI request, its token and signature included.
    let filter = [
        "tungstenite::handshake::client=debug",
        "ureq=debug",
        "ureq_proto=debug",
    ]
    .into_iter()
    .fold(filter, |filter, directive| match directive.parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if on_stdout {
        builder
            .with_writer(|| StdoutIgnoringErrors)
            .with_ansi(std::io::stdout().is_terminal())
            .init();
    } else {
        builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}

/// stdout for `-d` logs: a reader that went away (`| head`) ends the command elsewhere, and a
/// log line that cannot be written is no reason to complain on stderr.
struct StdoutIgnoringErrors;

impl std::io::Write for StdoutIgnoringErrors {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stdout().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stdout().flush();
        Ok(())
    }
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
