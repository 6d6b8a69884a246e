//! `sansmq pub`: mosquitto_pub's flags, plus `--p2p` to send to one ApsaraMQ client.

use std::collections::VecDeque;
use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use sansmq::CommandError;
use sansmq::packet::QoS;
use sansmq_apsaramq::{ClientId, TopicRules};
use sansmq_mio::{Client, DeliveryToken};

use crate::args::{ConnectArgs, parse_qos};
use crate::connect::{self, Setup};
use crate::link::{self, LostCause, Watcher};
use crate::signals;

/// How long `pub` waits for its last acknowledgements when disconnecting.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `pub` waits for the broker to acknowledge a QoS 1/2 message.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a wait for an acknowledgement checks whether the connection was lost.
const ACK_POLL: Duration = Duration::from_millis(50);

/// QoS 1/2 messages `-l` keeps unacknowledged before it waits for the oldest.
const PENDING_LIMIT: usize = 256;

/// How often `-l` looks whether SIGINT or SIGTERM came while it waits for a line.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Lines of stdin read before they are published.
const STDIN_LINES_AHEAD: usize = 64;

/// With `-c`, the first and longest delays before reconnecting after a lost connection (as `sub`).
const RECONNECT_DELAYS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    /// Topic to publish to (or the topic of -L).
    #[arg(short = 't', long)]
    topic: Option<String>,

    #[command(flatten)]
    message: MessageSource,

    /// QoS of the messages.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    qos: QoS,

    /// Retain the message.
    #[arg(short = 'r', long)]
    retain: bool,

    /// Publish the message (-m, -f, -n or -s) this many times.
    #[arg(long, value_name = "COUNT", default_value = "1",
          value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,

    /// With --repeat, wait this many seconds (a decimal number) after each message is
    /// acknowledged (QoS 0: written) before publishing it again.
    #[arg(long, value_name = "SECONDS", value_parser = parse_delay, default_value = "0")]
    repeat_delay: Duration,

    /// Send point-to-point to this ApsaraMQ client id: to <parent>/p2p/<CLIENT_ID>, where parent
    /// is the first level of -t.
    #[arg(long, value_name = "CLIENT_ID")]
    p2p: Option<String>,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// Exactly one of the ways mosquitto_pub takes a message.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct MessageSource {
    /// The message (any bytes, as the shell passes them).
    #[arg(short = 'm', long = "message")]
    message: Option<std::ffi::OsString>,

    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,

    /// Send each line of stdin as a message (without its newline; empty lines are empty messages).
    #[arg(short = 'l', long = "stdin-line")]
    stdin_line: bool,

    /// Send a null (zero-length) message.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,

    /// Send all of stdin as one message.
    #[arg(short = 's', long = "stdin-file")]
    stdin_file: bool,
}

pub(crate) fn run(args: &PubArgs) -> anyhow::Result<()> {
    let setup = connect::setup(&args.connect, "pub")?;
    let topic = topic(args, &setup)?;
    connect::check_apsaramq_qos(&setup, args.qos)?;
    if setup.apsaramq {
        sansmq_apsaramq::check_retain(args.retain)?;
    }
    // Read a single message before connecting, so a missing file fails without a connection.
    let single = match &args.message {
        MessageSource {
            message: Some(m), ..
        } => Some(m.clone().into_encoded_bytes()),
        MessageSource { file: Some(f), .. } => {
            Some(std::fs::read(f).with_context(|| format!("-f: reading {}", f.display()))?)
        }
        MessageSource {
            stdin_file: true, ..
        } => {
            let mut all = Vec::new();
            std::io::stdin()
                .read_to_end(&mut all)
                .context("-s: reading stdin")?;
            if all.is_empty() {
                // As mosquitto_pub: an empty stdin is more likely a broken pipe than a message.
                bail!("-s: stdin is empty; give -n to publish an empty message");
            }
            Some(all)
        }
        MessageSource {
            null_message: true, ..
        } => Some(Vec::new()),
        _ => None,
    };
    let lines = single.is_none();
    let mut publisher = Publisher::connect(&setup, args, topic, lines)?;
    match single {
        Some(payload) => {
            let payload = Bytes::from(payload);
            for round in 1..=args.repeat {
                publisher.publish(payload.clone())?;
                if round < args.repeat {
                    // As mosquitto_pub: the next one leaves a delay after this one is done.
                    publisher.settle()?;
                    thread::sleep(args.repeat_delay);
                }
            }
        }
        None => {
            // Ctrl-C or SIGTERM ends the input as its end does: what was read is sent, and
            // DISCONNECT keeps the will from being published.
            let stop = signals::stop_flag()?;
            let lines = stdin_lines();
            while !stop.load(Ordering::Relaxed) {
                match lines.recv_timeout(SIGNAL_POLL) {
                    Ok(line) => publisher.publish(line.context("-l: reading stdin")?.into())?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
    }
    publisher.finish()
}

/// `--repeat-delay`: seconds, fractions allowed, not negative.
fn parse_delay(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("{value:?} is not a number of seconds (0 or more, e.g. 0.5)"))
}

/// Stdin's lines, read on a thread of their own: a blocked read would not see a signal. The
/// channel holds few lines, so that stdin is not read far ahead of what is published.
fn stdin_lines() -> Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(STDIN_LINES_AHEAD);
    thread::spawn(move || {
        for line in std::io::stdin().lock().split(b'\n') {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `-t`, `-L`'s topic, or with `--p2p` the P2P topic under the first level of either.
fn topic(args: &PubArgs, setup: &Setup) -> anyhow::Result<String> {
    let Some(topic) = args.topic.clone().or_else(|| setup.url_topic.clone()) else {
        bail!("no topic: give -t TOPIC (or -L mqtt://host/TOPIC)");
    };
    let Some(target) = &args.p2p else {
        if setup.apsaramq {
            TopicRules::default()
                .check_name(&topic)
                .with_context(|| format!("-t {topic:?}"))?;
        }
        return Ok(topic);
    };
    let target = ClientId::parse(target).context("--p2p")?;
    let parent = topic.split('/').next().unwrap_or_default();
    Ok(sansmq_apsaramq::p2p_topic(parent, &target)
        .context("--p2p")?
        .to_string())
}

/// A connected client publishing to one topic.
struct Publisher<'a> {
    client: Client,
    lost: LostCause,
    setup: &'a Setup,
    topic: String,
    qos: QoS,
    retain: bool,
    /// Reconnect after a lost connection and go on (`-c`: the broker keeps the session), instead
    /// of failing.
    reconnect: bool,
    /// The messages are stdin's lines (`-l`): a failure says which lines were not sent.
    lines: bool,
    /// Messages handed to the client so far: the number of the current line with `-l`.
    published: u64,
    /// Whether the broker acknowledged a message: then a close is no refusal of the topic.
    any_acknowledged: bool,
    /// Messages not yet acknowledged (QoS 0: not yet written), with their message (line)
    /// numbers, oldest first.
    pending: VecDeque<(u64, DeliveryToken)>,
}

impl<'a> Publisher<'a> {
    fn connect(
        setup: &'a Setup,
        args: &PubArgs,
        topic: String,
        lines: bool,
    ) -> anyhow::Result<Self> {
        let reconnect = !setup.clean_session;
        let options = if reconnect {
            setup
                .options
                .clone()
                .automatic_reconnect(RECONNECT_DELAYS.0, RECONNECT_DELAYS.1)
        } else {
            setup.options.clone()
        };
        let client = Client::new(options)?;
        let lost = LostCause::default();
        let announce = Arc::new(AtomicBool::new(false));
        client.set_callback(Watcher {
            lost: lost.clone(),
            uri: setup.uri.clone(),
            announce: Arc::clone(&announce),
        });
        connect::connect(&client, setup)?;
        // Reconnecting by itself, pub would otherwise go quiet while the broker is away.
        announce.store(reconnect, Ordering::Relaxed);
        Ok(Self {
            client,
            lost,
            setup,
            topic,
            qos: args.qos,
            retain: args.retain,
            reconnect,
            lines,
            published: 0,
            any_acknowledged: false,
            pending: VecDeque::new(),
        })
    }

    fn publish(&mut self, payload: Bytes) -> anyhow::Result<()> {
        if self.setup.apsaramq {
            sansmq_apsaramq::check_payload(payload.len())?;
        }
        self.published += 1;
        tracing::debug!(
            "sending PUBLISH (q{}, r{}, {:?}, ... ({} bytes))",
            self.qos as u8,
            u8::from(self.retain),
            self.topic,
            payload.len()
        );
        let token = self.hand_over(&payload)?;
        self.pending.push_back((self.published, token));
        if self.pending.len() >= PENDING_LIMIT {
            self.acknowledged_oldest()?;
        }
        Ok(())
    }

    /// Waits until every message handed over is done: acknowledged, or at QoS 0 written.
    fn settle(&mut self) -> anyhow::Result<()> {
        while !self.pending.is_empty() {
            self.acknowledged_oldest()?;
        }
        Ok(())
    }

    /// Gives the message to the client, waiting while its queue is full (a slow broker, or one
    /// being reconnected to with `-c`).
    fn hand_over(&self, payload: &Bytes) -> anyhow::Result<DeliveryToken> {
        let mut started = Instant::now();
        loop {
            self.check_link(&mut started)?;
            let properties = &self.setup.properties.publish;
            let handed = if properties.is_empty() {
                self.client
                    .publish(&self.topic, payload.clone(), self.qos, self.retain)
            } else {
                self.client.publish_with_properties(
                    &self.topic,
                    payload.clone(),
                    self.qos,
                    self.retain,
                    properties.clone(),
                )
            };
            match handed {
                Ok(token) => return Ok(token),
                Err(sansmq_mio::Error::Command(CommandError::QueueFull { .. })) => {
                    thread::sleep(ACK_POLL);
                }
                Err(error) => {
                    let context = format!("publishing to {:?}", self.topic);
                    return Err(anyhow::Error::from(error).context(context));
                }
            }
        }
    }

    /// Waits for the broker's acknowledgement of the oldest pending message; fails at once if the
    /// connection is lost meanwhile, unless `-c` reconnects.
    fn acknowledged_oldest(&mut self) -> anyhow::Result<()> {
        let Some((_, token)) = self.pending.front() else {
            return Ok(());
        };
        let token = token.clone();
        let mut started = Instant::now();
        loop {
            match token.wait_timeout(ACK_POLL) {
                Ok(()) => break,
                Err(sansmq_mio::Error::Timeout(_)) => {}
                Err(error) => {
                    // A lost connection says best what became of the message.
                    self.check_link(&mut started)?;
                    if self.qos == QoS::AtMostOnce && self.reconnect {
                        // QoS 0 promises nothing: a message a lost connection took with it is
                        // gone, as with mosquitto_pub, and `-c` goes on.
                        tracing::debug!(%error, "a QoS 0 message was not sent");
                        break;
                    }
                    let context = format!("publishing to {:?}", self.topic);
                    return Err(anyhow::Error::from(error).context(context));
                }
            }
            self.check_link(&mut started)?;
        }
        self.pending.pop_front();
        self.any_acknowledged |= self.qos != QoS::AtMostOnce;
        Ok(())
    }

    /// Fails when the connection was lost (without `-c`), or when the broker has not answered
    /// for [`ACK_TIMEOUT`] since `started` while connected. While `-c` reconnects, `started`
    /// moves on: only a broker that is there and silent times out.
    fn check_link(&self, started: &mut Instant) -> anyhow::Result<()> {
        if !self.reconnect {
            if let Some(cause) = self.lost.get() {
                return Err(self.lost_error(&cause));
            }
        } else if !self.client.is_connected() {
            *started = Instant::now();
        }
        if started.elapsed() >= ACK_TIMEOUT {
            bail!(
                "publishing to {:?}: no acknowledgement from {} within {} s",
                self.topic,
                self.setup.uri,
                ACK_TIMEOUT.as_secs()
            );
        }
        Ok(())
    }

    /// The connection was lost (`cause`) and will not be made again: what was not sent.
    fn lost_error(&self, cause: &sansmq_mio::Error) -> anyhow::Error {
        let context = format!("publishing to {:?}", self.topic);
        if !self.lines || (!self.any_acknowledged && self.published <= 1) {
            // The broker closed the connection on the first message: perhaps a refusal.
            return link::closed_after("publish", self.setup, cause).context(context);
        }
        // The oldest message without an acknowledgement, or the one being published.
        let first = self
            .pending
            .front()
            .map_or(self.published, |&(line, _)| line);
        let done = first.saturating_sub(1);
        let before = match (done, self.qos) {
            (0, _) => String::new(),
            (_, QoS::AtMostOnce) => format!(
                "; lines 1 to {done} were written to the connection (QoS 0: nothing says they \
                 arrived)"
            ),
            (_, _) => format!("; the broker acknowledged lines 1 to {done}"),
        };
        let status = if self.qos == QoS::AtMostOnce {
            "sent"
        } else {
            "acknowledged"
        };
        anyhow::anyhow!(
            "the connection to {} was lost after {} lines of stdin were read: {cause}; lines \
             {first} and after were not {status}{before}; send them again (`tail -n +{first}`), \
             or give -c -i ID to reconnect and go on",
            self.setup.uri,
            self.published
        )
        .context(context)
    }

    /// Waits for every acknowledgement, then disconnects.
    fn finish(mut self) -> anyhow::Result<()> {
        self.settle()?;
        connect::disconnect(&self.client, self.setup, DISCONNECT_TIMEOUT)
            .context("disconnecting")?;
        self.client.close();
        Ok(())
    }
}
