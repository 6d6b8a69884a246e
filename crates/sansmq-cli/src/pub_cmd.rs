//! `sansmq pub`: mosquitto_pub's flags, plus `--p2p` to send to one ApsaraMQ client.

use std::collections::VecDeque;
use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use sansmq::packet::QoS;
use sansmq_apsaramq::{ClientId, TopicRules};
use sansmq_mio::{Client, DeliveryToken};

use crate::args::{ConnectArgs, parse_qos};
use crate::connect::{self, Setup};
use crate::link::{self, LostCause, Watcher};

/// How long `pub` waits for its last acknowledgements when disconnecting.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `pub` waits for the broker to acknowledge a QoS 1/2 message.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a wait for an acknowledgement checks whether the connection was lost.
const ACK_POLL: Duration = Duration::from_millis(50);

/// QoS 1/2 messages `-l` keeps unacknowledged before it waits for the oldest.
const PENDING_LIMIT: usize = 256;

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

    /// Send point-to-point to this ApsaraMQ client id: to <parent>/p2p/<CLIENT_ID>, where parent
    /// is the first level of -t.
    #[arg(long, value_name = "CLIENT_ID")]
    p2p: Option<String>,

    #[command(flatten)]
    connect: ConnectArgs,
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
            Some(all)
        }
        MessageSource {
            null_message: true, ..
        } => Some(Vec::new()),
        _ => None,
    };
    let mut publisher = Publisher::connect(&setup, args, topic)?;
    match single {
        Some(payload) => publisher.publish(payload)?,
        None => {
            for line in std::io::stdin().lock().split(b'\n') {
                publisher.publish(line.context("-l: reading stdin")?)?;
            }
        }
    }
    publisher.finish()
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
    /// QoS 1/2 messages not yet acknowledged, oldest first.
    pending: VecDeque<DeliveryToken>,
}

impl<'a> Publisher<'a> {
    fn connect(setup: &'a Setup, args: &PubArgs, topic: String) -> anyhow::Result<Self> {
        let client = Client::new(setup.options.clone())?;
        let lost = LostCause::default();
        client.set_callback(Watcher {
            lost: lost.clone(),
            uri: setup.uri.clone(),
            announce: Arc::default(),
        });
        connect::connect(&client, setup)?;
        Ok(Self {
            client,
            lost,
            setup,
            topic,
            qos: args.qos,
            retain: args.retain,
            pending: VecDeque::new(),
        })
    }

    fn publish(&mut self, payload: Vec<u8>) -> anyhow::Result<()> {
        if self.setup.apsaramq {
            sansmq_apsaramq::check_payload(payload.len())?;
        }
        tracing::debug!(
            "sending PUBLISH (q{}, r{}, {:?}, ... ({} bytes))",
            self.qos as u8,
            u8::from(self.retain),
            self.topic,
            payload.len()
        );
        let token = self
            .client
            .publish(&self.topic, payload, self.qos, self.retain)
            .with_context(|| format!("publishing to {:?}", self.topic))?;
        if self.qos != QoS::AtMostOnce {
            self.pending.push_back(token);
            if self.pending.len() >= PENDING_LIMIT {
                if let Some(oldest) = self.pending.pop_front() {
                    self.acknowledged(&oldest)?;
                }
            }
        }
        Ok(())
    }

    /// Waits for the broker's acknowledgement of `token`; fails at once if the broker closes the
    /// connection meanwhile.
    fn acknowledged(&self, token: &DeliveryToken) -> anyhow::Result<()> {
        let started = Instant::now();
        let context = || format!("publishing to {:?}", self.topic);
        loop {
            match token.wait_timeout(ACK_POLL) {
                Ok(()) => return Ok(()),
                Err(sansmq_mio::Error::Timeout(_)) => {}
                Err(error) => return Err(anyhow::Error::from(error).context(context())),
            }
            if let Some(cause) = self.lost.get() {
                return Err(link::closed_after("publish", self.setup, &cause).context(context()));
            }
            if started.elapsed() >= ACK_TIMEOUT {
                bail!(
                    "{}: no acknowledgement from {} within {} s",
                    context(),
                    self.setup.uri,
                    ACK_TIMEOUT.as_secs()
                );
            }
        }
    }

    /// Waits for every acknowledgement, then disconnects.
    fn finish(self) -> anyhow::Result<()> {
        for token in &self.pending {
            self.acknowledged(token)?;
        }
        self.client
            .disconnect(DISCONNECT_TIMEOUT)
            .context("disconnecting")?;
        self.client.close();
        Ok(())
    }
}
