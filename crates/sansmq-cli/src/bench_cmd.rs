//! `sansmq bench conn|pub|sub|pubsub`: an MQTT load generator with emqtt-bench's flags, on the
//! sansmq-bench crate (thousands of sessions per event loop).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Args, Subcommand};
use sansmq::packet::{Protocol, QoS};
use sansmq_apsaramq::{AccessKey, AuthMode, Endpoint};
use sansmq_bench::{ApsaraMq, Mode, Options, Report, Secret, Template};
use sansmq_mio::{TlsOptions, TrustRoots};

use crate::args::parse_qos;
use crate::signals;

/// Which bench.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    mode: BenchMode,
}

#[derive(Debug, Subcommand)]
enum BenchMode {
    /// Connect -c clients (every -i ms) and keep them connected.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Conn(BenchOpts),
    /// Connect -c clients, each publishing to -t every -I ms (-L messages in all).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Pub(BenchOpts),
    /// Connect -c clients subscribed to -t; measure latency, loss, duplicates and order of what
    /// `sansmq bench pub` sends (-L: stop after receiving that many).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Sub(BenchOpts),
    /// Each client subscribes to its own -t and publishes to it: latency within one process.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Pubsub(BenchOpts),
}

/// emqtt-bench's options.
#[derive(Debug, Args)]
struct BenchOpts {
    /// Print help (`-h` is the host, as in emqtt-bench).
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,

    /// Broker host [default: localhost, or the instance's endpoint with --apsaramq-instance].
    #[arg(short = 'h', long)]
    host: Option<String>,

    /// Broker port [default: 1883, 8883 with --ssl].
    #[arg(short = 'p', long)]
    port: Option<u16>,

    /// Number of clients.
    #[arg(short = 'c', long, default_value = "200")]
    count: u32,

    /// Milliseconds between two connects (0: all at once).
    #[arg(short = 'i', long, value_name = "MS", default_value = "10")]
    interval: u64,

    /// Milliseconds between two messages of one client (0: as fast as --inflight lets them go).
    #[arg(
        short = 'I',
        long = "interval_of_msg",
        value_name = "MS",
        default_value = "1000"
    )]
    interval_of_msg: u64,

    /// Topic template: %i the client's sequence number, %c its client id, %u its user name,
    /// %rand_N a random number from 1 to N (drawn for every message).
    #[arg(short = 't', long)]
    topic: Option<String>,

    /// Payload size in bytes; every payload starts with a 28-byte header (publisher, sequence
    /// number, send time), so it is never smaller.
    #[arg(short = 's', long, default_value = "256")]
    size: usize,

    /// Payload text after the header (a template, as -t), instead of zero padding up to -s.
    #[arg(short = 'm', long)]
    message: Option<String>,

    /// QoS of messages and subscriptions.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    qos: QoS,

    /// pub, pubsub: messages to publish in all; sub: stop after receiving this many.
    #[arg(short = 'L', long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,

    /// The first client's sequence number (%i).
    #[arg(short = 'n', long, default_value = "0")]
    startnumber: u32,

    /// Client id prefix.
    #[arg(long, default_value = "sansmq")]
    prefix: String,

    /// Client ids <prefix><n> instead of <prefix>_bench_<mode>_<n>_<run>.
    #[arg(long)]
    shortids: bool,

    /// Keep-alive in seconds.
    #[arg(short = 'k', long, default_value = "300")]
    keepalive: u64,

    /// Clean session (MQTT 5: Clean Start).
    #[arg(short = 'C', long, default_value_t = true, action = ArgAction::Set)]
    clean: bool,

    /// User name (a template: %i, %c).
    #[arg(short = 'u', long)]
    username: Option<String>,

    /// Password.
    #[arg(short = 'P', long)]
    password: Option<String>,

    /// QoS 1/2 messages a client may have unacknowledged.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u16).range(1..))]
    inflight: u16,

    /// Least milliseconds a client waits between its CONNACK and its first message (random).
    #[arg(long = "min-random-wait", value_name = "MS", default_value = "0")]
    min_random_wait: u64,

    /// Most milliseconds a client waits between its CONNACK and its first message (random).
    #[arg(long = "max-random-wait", value_name = "MS", default_value = "0")]
    max_random_wait: u64,

    /// Event loops (threads) [default: one per core].
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,

    /// MQTT version: 3 (3.1), 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "version", value_name = "3|4|5", value_parser = parse_version,
          default_value = "4")]
    protocol: Protocol,

    /// MQTT 5 Session Expiry Interval in seconds (needs -V 5).
    #[arg(short = 'x', long = "session-expiry", value_name = "SECONDS")]
    session_expiry: Option<u32>,

    /// Source addresses to connect from, round-robin (each gives 64k ports): a,b,c.
    #[arg(long, value_delimiter = ',')]
    ifaddr: Vec<IpAddr>,

    /// Reconnect a lost connection (after 1 s, doubling up to 30 s, with jitter).
    #[arg(long)]
    reconnect: bool,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,

    /// Print the summary as JSON on stdout (latencies in microseconds).
    #[arg(long)]
    json: bool,

    /// Write the per-second series as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,

    /// TLS, verifying the broker's certificate for -h (Mozilla's roots unless --cacertfile).
    #[arg(short = 'S', long)]
    ssl: bool,

    /// With --ssl: trust only the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE", requires = "ssl")]
    cacertfile: Option<PathBuf>,

    /// With --ssl: the client certificate chain (PEM), for brokers that ask for one.
    #[arg(long, value_name = "FILE", requires_all = ["ssl", "keyfile"])]
    certfile: Option<PathBuf>,

    /// With --ssl: the client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["ssl", "certfile"])]
    keyfile: Option<PathBuf>,

    /// MQTT over WebSocket (subprotocol mqtt; with --ssl, wss) [port default: 8083, 8084 with
    /// --ssl; ApsaraMQ's 80 and 443 with --apsaramq-instance].
    #[arg(long)]
    ws: bool,

    /// With --ws: the path of the WebSocket upgrade request.
    #[arg(
        long = "ws-path",
        value_name = "PATH",
        default_value = "/mqtt",
        requires = "ws"
    )]
    ws_path: String,

    /// Write a self-contained HTML page to FILE: the summary, and charts of messages per second
    /// and latency over the run.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// ApsaraMQ for MQTT instance: client n is <group-id>@@@<prefix><n> and logs in with a
    /// Signature of its own client id (needs --group-id, --access-key, --secret-key).
    #[arg(long = "apsaramq-instance", value_name = "ID", requires_all = ["group_id", "access_key", "secret_key"])]
    apsaramq_instance: Option<String>,

    /// ApsaraMQ Group ID (GID_...), with --apsaramq-instance.
    #[arg(long = "group-id", value_name = "GID")]
    group_id: Option<String>,

    /// ApsaraMQ AccessKey ID, with --apsaramq-instance.
    #[arg(long = "access-key", value_name = "ID", env = "MQTT_AK_ENV")]
    access_key: Option<String>,

    /// ApsaraMQ AccessKey secret, with --apsaramq-instance (prefer the environment: a command
    /// line is visible to other users of the machine).
    #[arg(
        long = "secret-key",
        value_name = "SECRET",
        env = "MQTT_SK_ENV",
        hide_env_values = true
    )]
    secret_key: Option<String>,
}

fn parse_version(value: &str) -> Result<Protocol, String> {
    match value {
        "3" => Ok(Protocol::Mqtt31),
        "4" => Ok(Protocol::Mqtt311),
        "5" => Ok(Protocol::Mqtt5),
        other => Err(format!("MQTT version {other:?} must be 3, 4 or 5")),
    }
}

impl BenchOpts {
    fn options(&self, mode: Mode) -> anyhow::Result<Options> {
        let template = |s: &Option<String>| s.as_deref().map(Template::parse).transpose();
        let mut options = Options::new(mode);
        options.host = match (&self.host, &self.apsaramq_instance) {
            (Some(host), _) => host.clone(),
            (None, Some(instance)) => Endpoint::public(instance)?.host().to_owned(),
            (None, None) => "localhost".to_owned(),
        };
        if let (Some(instance), Some(group_id), Some(id), Some(secret)) = (
            &self.apsaramq_instance,
            &self.group_id,
            &self.access_key,
            &self.secret_key,
        ) {
            options.apsaramq = Some(ApsaraMq {
                group_id: group_id.clone(),
                auth: AuthMode::signature(
                    AccessKey::new(id.clone(), secret.clone()),
                    instance.clone(),
                ),
            });
        }
        // EMQX's listeners: 1883 mqtt, 8883 mqtts, 8083 ws, 8084 wss; ApsaraMQ's WebSocket
        // ones are 80 and 443.
        let apsaramq = self.apsaramq_instance.is_some();
        options.port = self.port.unwrap_or(match (self.ssl, self.ws) {
            (false, false) => 1883,
            (true, false) => 8883,
            (false, true) if apsaramq => sansmq_apsaramq::endpoint::WS_PORT,
            (true, true) if apsaramq => sansmq_apsaramq::endpoint::WSS_PORT,
            (false, true) => 8083,
            (true, true) => 8084,
        });
        if self.ws {
            options.websocket = Some(self.ws_path.clone());
        }
        if self.ssl {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.cacertfile {
                tls = tls.roots(TrustRoots::CaFile(ca.clone()));
            }
            if let (Some(cert), Some(key)) = (&self.certfile, &self.keyfile) {
                tls = tls.client_auth(cert.clone(), key.clone());
            }
            options.tls = Some(tls);
        }
        options.count = self.count;
        options.start_number = self.startnumber;
        options.connect_interval = Duration::from_millis(self.interval);
        options.publish_interval = Duration::from_millis(self.interval_of_msg);
        options.topic = template(&self.topic)?;
        options.size = self.size;
        options.message = template(&self.message)?;
        options.qos = self.qos;
        options.limit = self.limit;
        options.prefix.clone_from(&self.prefix);
        options.short_ids = self.shortids;
        options.keep_alive = Duration::from_secs(self.keepalive);
        options.clean = self.clean;
        options.username.clone_from(&self.username);
        options.password = self.password.clone().map(Secret);
        options.inflight = self.inflight;
        options.random_wait = (
            Duration::from_millis(self.min_random_wait),
            Duration::from_millis(self.max_random_wait),
        );
        if let Some(jobs) = self.jobs {
            options.threads = usize::from(jobs);
        }
        options.protocol = self.protocol;
        options.session_expiry = self.session_expiry;
        options.ifaddrs.clone_from(&self.ifaddr);
        options.reconnect = self.reconnect;
        options.duration = self.duration.map(Duration::from_secs);
        options.validate()?;
        Ok(options)
    }
}

/// Runs the bench, prints the summary (text or `--json`) on stdout and writes `--csv` and
/// `--report`. Fails
/// (exit code 1) when any connect, connection, subscription or message failed.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (mode, opts) = match &args.mode {
        BenchMode::Conn(o) => (Mode::Conn, o),
        BenchMode::Pub(o) => (Mode::Pub, o),
        BenchMode::Sub(o) => (Mode::Sub, o),
        BenchMode::Pubsub(o) => (Mode::PubSub, o),
    };
    let options = opts.options(mode)?;
    // Check the CSV file can be written before a long run, not after.
    let csv = opts
        .csv
        .as_ref()
        .map(|path| File::create(path).with_context(|| format!("creating {}", path.display())))
        .transpose()?;
    let html = opts
        .report
        .as_ref()
        .map(|path| File::create(path).with_context(|| format!("creating {}", path.display())))
        .transpose()?;
    let stop = signals::stop_flag()?;
    let report = sansmq_bench::run(&options, stop, &mut std::io::stderr())?;
    print_report(&report, opts.json)?;
    if let (Some(file), Some(path)) = (csv, &opts.csv) {
        let mut out = BufWriter::new(file);
        report
            .write_csv(&mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(mut file), Some(path)) = (html, &opts.report) {
        let page = report.html()?;
        file.write_all(page.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let errors = report.counters.errors();
    if errors > 0 {
        let causes: Vec<String> = report
            .causes
            .iter()
            .take(3)
            .map(|(cause, n)| format!("{n} × {cause}"))
            .collect();
        bail!("{errors} errors during the bench: {}", causes.join("; "));
    }
    Ok(())
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", report.json())?;
    } else {
        write!(out, "{}", report.text())?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct Cli {
        #[command(flatten)]
        opts: BenchOpts,
    }

    fn options(args: &[&str]) -> Options {
        let cli = Cli::try_parse_from([&["bench"], args].concat()).unwrap();
        cli.opts.options(Mode::Conn).unwrap()
    }

    #[test]
    fn the_port_follows_the_transport_and_the_broker() {
        let apsaramq = [
            "--apsaramq-instance",
            "mqtt-cn-test",
            "--group-id",
            "GID_t",
            "--access-key",
            "k",
            "--secret-key",
            "s",
        ];
        for (args, port, path) in [
            (&[][..], 1883, None),
            (&["--ssl"][..], 8883, None),
            (&["--ws"][..], 8083, Some("/mqtt")),
            (
                &["--ws", "--ssl", "--ws-path", "/gw"][..],
                8084,
                Some("/gw"),
            ),
            (&["--ws", "-p", "9001"][..], 9001, Some("/mqtt")),
            (&[&apsaramq[..], &["--ws"]].concat()[..], 80, Some("/mqtt")),
            (
                &[&apsaramq[..], &["--ws", "--ssl"]].concat()[..],
                443,
                Some("/mqtt"),
            ),
        ] {
            let options = options(args);
            assert_eq!(options.port, port, "{args:?}");
            assert_eq!(options.websocket.as_deref(), path, "{args:?}");
            assert_eq!(options.tls.is_some(), args.contains(&"--ssl"), "{args:?}");
        }
    }
}
