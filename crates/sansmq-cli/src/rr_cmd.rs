//! `sansmq rr`: mosquitto_rr's request/response. It subscribes to the response topic (`-e`),
//! publishes the request to `-t` with that Response Topic (MQTT 5, the default), prints the first
//! message that comes back on it as `sub` prints messages (`-v`, `-F`, `-N`), and exits 0; or
//! exits 27 when `-W` seconds pass without one.
//!
//! As mosquitto_rr, it takes the first message on the response topic, whoever sent it: the
//! Correlation Data is the user's to set (`-D publish correlation-data ...`), not matched.
//! (sansmq-mio's `Client::request` numbers its requests and matches the responses; `rr` keeps
//! mosquitto_rr's simpler contract, which responders written for it rely on.)

use std::io::{self, Read as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use sansmq::packet::{Protocol, QoS, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};
use sansmq_mio::Client;

use crate::args::{ConnectArgs, parse_qos};
use crate::connect;
use crate::exit::{Failure, NOT_CONNECTED, TIMED_OUT};
use crate::output::{Format, Printed};

/// Messages the client may hold for `rr` before it stops reading.
const RECEIVE_QUEUE: usize = 64;

/// How often the wait for the response looks at the deadline.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub(crate) struct RrArgs {
    /// Topic the request is published to (or the topic of -L).
    #[arg(short = 't', long)]
    topic: Option<String>,

    /// The response topic: subscribed to before the request is sent, and sent with it as its
    /// Response Topic (MQTT 5).
    #[arg(short = 'e', value_name = "TOPIC")]
    response_topic: Option<String>,

    #[command(flatten)]
    message: Request,

    /// QoS of the request and of the subscription to the response topic.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    qos: QoS,

    /// Give up after SECONDS without a response (counted from the start) and exit with 27.
    #[arg(short = 'W', long = "timeout", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,

    /// Print the response's topic before its payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// Do not add a newline after the response.
    #[arg(short = 'N')]
    no_newline: bool,

    /// Do not take a retained message on the response topic for the response (mosquitto_rr
    /// accepts -R and prints it anyway).
    #[arg(short = 'R')]
    no_retained: bool,

    /// Print the response as FORMAT says, as `sub -F` does (MQTT 5 properties included).
    #[arg(short = 'F', value_name = "FORMAT", value_parser = |f: &str| crate::format::parse(f, false),
          allow_hyphen_values = true, overrides_with = "format")]
    format: Option<crate::format::Template>,

    /// Print %j and %J's JSON over several indented lines.
    #[arg(long)]
    pretty: bool,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// One of the ways mosquitto_rr takes the request (as mosquitto_rr, no `-l`).
#[derive(Debug, Args)]
#[group(multiple = false)]
struct Request {
    /// The request (any bytes, as the shell passes them).
    #[arg(short = 'm', long = "message")]
    message: Option<std::ffi::OsString>,

    /// Send the contents of a file as the request.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,

    /// Send a null (zero-length) request.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,

    /// Send all of stdin as the request.
    #[arg(short = 's', long = "stdin-file")]
    stdin_file: bool,
}

pub(crate) fn run(args: &RrArgs) -> anyhow::Result<()> {
    let deadline = args
        .timeout
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    // mosquitto_rr speaks MQTT 5 unless told otherwise.
    let setup = connect::setup_as(&args.connect, "rr", Protocol::Mqtt5)?;
    let v5 = setup.protocol == Protocol::Mqtt5;
    let topic = args.topic.clone().or_else(|| setup.url_topic.clone());
    let (Some(topic), Some(response_topic)) = (topic, args.response_topic.clone()) else {
        bail!(
            "give the request topic (-t), the message (-m, -f, -n or -s) and the response topic (-e)"
        );
    };
    if args.message.is_missing() {
        bail!(
            "give the request topic (-t), the message (-m, -f, -n or -s) and the response topic (-e)"
        );
    }
    TopicName::try_from(topic.as_str()).with_context(|| format!("-t {topic:?}"))?;
    let response = TopicName::try_from(response_topic.as_str())
        .with_context(|| format!("-e {response_topic:?}: a response topic is a topic name"))?;
    let filter = TopicFilter::try_from(response_topic.as_str())
        .with_context(|| format!("-e {response_topic:?}"))?;
    connect::check_apsaramq_qos(&setup, args.qos)?;
    let mut properties = setup.properties.publish.clone();
    if properties.response_topic().is_some() {
        bail!("-D publish response-topic: rr sets the Response Topic from -e; drop the -D");
    }
    if v5 {
        properties.set_response_topic(Some(response));
    }
    let payload = Bytes::from(args.message.read()?);
    let format = if let Some(template) = &args.format {
        Format::Template {
            template: template.clone().pretty(args.pretty),
            quiet: args.connect.quiet,
        }
    } else if args.verbose {
        Format::Verbose
    } else {
        Format::Payload
    };

    let client = Client::new(setup.options.clone())?;
    let messages = client.messages(RECEIVE_QUEUE);
    let never = AtomicBool::new(false);
    connect::connect_until(&client, &setup, deadline, &never).map_err(|error| {
        match crate::exit::code(&error) == NOT_CONNECTED {
            // -W ran out before CONNACK: mosquitto_rr's alarm says "Timed out" then too.
            true => Failure::error(
                TIMED_OUT,
                format!(
                    "timed out after {} s (-W) before the broker answered CONNECT",
                    args.timeout.unwrap_or_default()
                ),
            ),
            false => error,
        }
    })?;
    let outcome = exchange(
        args, &client, &setup, filter, &topic, payload, properties, &messages, deadline, &format,
    );
    // The response is printed (or not coming): a failing DISCONNECT changes nothing.
    let _ = connect::disconnect(&client, &setup, Duration::from_secs(1));
    client.close();
    outcome
}

/// Subscribes to the response topic, sends the request and prints the first response.
#[allow(clippy::too_many_arguments)]
fn exchange(
    args: &RrArgs,
    client: &Client,
    setup: &connect::Setup,
    filter: TopicFilter,
    topic: &str,
    payload: Bytes,
    properties: sansmq::packet::Properties,
    messages: &sansmq_mio::Messages,
    deadline: Option<Instant>,
    format: &Format,
) -> anyhow::Result<()> {
    tracing::debug!(filter = filter.as_str(), "sending SUBSCRIBE");
    let subscription = [SubscribeFilter::new(filter, args.qos)];
    client
        .subscribe_with_properties(&subscription, setup.properties.subscribe.clone())
        .with_context(|| format!("subscribing to the response topic at {}", setup.uri))?;
    tracing::debug!(topic, "sending PUBLISH (the request)");
    client
        .publish_with_properties(topic, payload, args.qos, false, properties)
        .with_context(|| format!("publishing the request to {topic:?}"))?;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Err(Failure::error(
                TIMED_OUT,
                format!(
                    "timed out after {} s (-W) without a response on {:?}",
                    args.timeout.unwrap_or_default(),
                    args.response_topic.as_deref().unwrap_or_default()
                ),
            ));
        }
        let message = match messages.recv_timeout(left.map_or(POLL, |l| l.min(POLL))) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the client stopped receiving messages")
            }
        };
        if args.no_retained && message.retained {
            continue;
        }
        let printed = Printed {
            topic: message.topic.as_str(),
            payload: &message.payload,
            qos: message.qos,
            retain: message.retained,
            id: message.id,
            properties: message.properties(),
        };
        return match format.write(&mut io::stdout().lock(), &printed, !args.no_newline) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(anyhow::Error::from(e).context("writing to stdout")),
        }
        .and_then(|()| io::stdout().flush().context("writing to stdout"));
    }
}

impl Request {
    fn is_missing(&self) -> bool {
        self.message.is_none() && self.file.is_none() && !self.null_message && !self.stdin_file
    }

    /// The request's bytes, read before connecting so that a missing file fails at once.
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(message) = &self.message {
            return Ok(message.clone().into_encoded_bytes());
        }
        if let Some(file) = &self.file {
            return std::fs::read(file).with_context(|| format!("-f: reading {}", file.display()));
        }
        if self.stdin_file {
            let mut all = Vec::new();
            io::stdin()
                .read_to_end(&mut all)
                .context("-s: reading stdin")?;
            return Ok(all);
        }
        Ok(Vec::new())
    }
}
