//! `sansmq sub`: mosquitto_sub's flags, plus `--json`.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use sansmq::packet::QoS;
use sansmq_apsaramq::{ClientId, TopicRules};
use sansmq_mio::{Client, Diagnosis};

use crate::args::{ConnectArgs, parse_qos};
use crate::connect;
use crate::exit::{Failure, TIMED_OUT};
use crate::link::{self, LostCause, Watcher};
use crate::output::{Format, Printed};
use crate::signals;

/// Messages received but not printed yet before reading from the broker pauses. None of them is
/// acknowledged before it is printed, so the broker's window of unacknowledged messages (20 for
/// a default mosquitto) bounds it first.
const RECEIVE_QUEUE: usize = 1024;

/// How often the wait for messages looks whether SUBACK came.
const SUBACK_POLL: Duration = Duration::from_millis(20);

/// How often the wait for messages looks whether SIGINT or SIGTERM came.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The first and longest delays before reconnecting after a lost connection.
const RECONNECT_DELAYS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// Topic filter to subscribe to; repeatable.
    #[arg(short = 't', long = "topic", value_name = "FILTER")]
    topics: Vec<String>,

    /// QoS of the subscriptions.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    qos: QoS,

    /// Disconnect and exit after COUNT messages.
    #[arg(short = 'C', long = "count", value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Stop after SECONDS (counted from the connection) and exit with 27.
    #[arg(short = 'W', long = "timeout", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,

    /// Print the topic before the payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// Do not add a newline after the payload.
    #[arg(short = 'N')]
    no_newline: bool,

    /// Print one JSON object per line: topic, payload (with its encoding: utf8, or base64 when
    /// not UTF-8), qos, retain, and p2p (whether it was sent point-to-point to this client).
    #[arg(long, conflicts_with_all = ["verbose", "no_newline"])]
    json: bool,

    /// Print each message as FORMAT says, as mosquitto_sub does (see mosquitto_sub(1)): %t topic,
    /// %p payload, %x/%X payload in hex, %l length, %q QoS, %r retain, %m message id, %I/%U
    /// time, %j/%J JSON; flags, width and precision as in %-10t, %08l, %.5t; @H, @M... strftime
    /// letters for the local time, @N nanoseconds; \n \t \e \0 escapes. Ends each message
    /// with a newline unless -N; -v has no effect then.
    #[arg(short = 'F', value_name = "FORMAT", value_parser = |f: &str| crate::format::parse(f, false),
          conflicts_with = "json", allow_hyphen_values = true, overrides_with = "format")]
    format: Option<crate::format::Template>,

    /// Print %j and %J's JSON over several indented lines.
    #[arg(long)]
    pretty: bool,

    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) fn run(args: &SubArgs) -> anyhow::Result<()> {
    let mut setup = connect::setup(&args.connect, "sub")?;
    let mut filters = args.topics.clone();
    filters.extend(setup.url_topic.clone());
    if filters.is_empty() {
        bail!("no topic: give -t FILTER (repeatable) or -L mqtt://host/FILTER");
    }
    connect::check_apsaramq_qos(&setup, args.qos)?;
    if setup.apsaramq {
        for filter in &filters {
            TopicRules::default()
                .check_filter(filter)
                .with_context(|| format!("-t {filter:?}"))?;
        }
    }
    let format = if let Some(template) = &args.format {
        Format::Template(template.clone().pretty(args.pretty))
    } else if args.json {
        Format::Json {
            client_id: ClientId::parse(&setup.client_id).ok(),
        }
    } else if args.verbose {
        Format::Verbose
    } else {
        Format::Payload
    };

    // Like mosquitto_sub, stay subscribed across a lost connection.
    setup.options = setup
        .options
        .clone()
        .automatic_reconnect(RECONNECT_DELAYS.0, RECONNECT_DELAYS.1);
    let client = Client::new(setup.options.clone())?;
    // Acknowledge a QoS 1/2 message only once it is on stdout: killed before that, the broker
    // delivers it again (to a persistent session, `-c`) instead of it being lost.
    client.set_manual_acks(true);
    let messages = client.messages(RECEIVE_QUEUE);
    let lost = LostCause::default();
    let announce = Arc::new(AtomicBool::new(false));
    client.set_callback(Watcher {
        lost: lost.clone(),
        uri: setup.uri.clone(),
        announce: Arc::clone(&announce),
    });
    connect::connect(&client, &setup)?;
    // From here on, Ctrl-C and SIGTERM end the command as -C does: DISCONNECT, so the broker
    // does not publish the will, and exit 0. mosquitto_sub does the same once connected; before,
    // the signal kills the command.
    let stop = signals::stop_flag()?;
    // A timeout too far ahead for the clock is no timeout at all.
    let deadline = args
        .timeout
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));

    let mut subscribing = Some(subscribe(&client, &filters, args.qos));
    let mut received = 0_u64;
    let mut stdout = io::stdout().lock();
    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            tracing::debug!("stopping on a signal");
            break Ok(());
        }
        if let Some(result) = subscribing.as_ref().and_then(|s| s.try_recv().ok()) {
            subscribing = None;
            match result {
                Ok(granted) => {
                    tracing::debug!(?granted, "received SUBACK");
                    announce.store(true, Ordering::Relaxed);
                }
                Err(error) => {
                    // The subscribe failed with the loss itself, or timed out after it; a
                    // verdict that the broker is down explains the loss best.
                    let error = match (lost.get(), &error) {
                        (_, sansmq_mio::Error::ClosedByBroker(Diagnosis::BrokerDown { .. })) => {
                            link::closed_after("subscribe", &setup, &error)
                        }
                        (Some(cause), _) => link::closed_after("subscribe", &setup, &cause),
                        (None, _) => error.into(),
                    };
                    let context = format!("subscribing to {filters:?} at {}", setup.uri);
                    break Err(error.context(context));
                }
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // While SUBACK is awaited, look at it between messages.
        let poll = if subscribing.is_some() {
            SUBACK_POLL
        } else {
            SIGNAL_POLL
        };
        let left = left.map_or(poll, |left| left.min(poll));
        let next = messages.recv_timeout(left);
        let message = match next {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break Err(timed_out(args, received));
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(anyhow::anyhow!("the client stopped receiving messages"));
            }
        };
        tracing::debug!(
            "received PUBLISH (d{}, q{}, r{}, {:?}, ... ({} bytes))",
            u8::from(message.duplicate),
            message.qos as u8,
            u8::from(message.retained),
            message.topic.as_str(),
            message.payload.len()
        );
        let printed = Printed {
            topic: message.topic.as_str(),
            payload: &message.payload,
            qos: message.qos,
            retain: message.retained,
            id: message.id,
        };
        // `write` flushes: the message is out of this process before the broker forgets it.
        match format.write(&mut stdout, &printed, !args.no_newline) {
            Ok(()) => {
                if let Err(error) = client.ack(&message) {
                    // The broker forgot the session meanwhile (`session_present = 0`): nothing is
                    // left to acknowledge.
                    tracing::debug!(%error, "not acknowledged");
                }
            }
            // The reader went away (`| head`): stop quietly, as a filter should.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(anyhow::Error::from(e).context("writing to stdout")),
        }
        received += 1;
        if args.count.is_some_and(|count| received >= count) {
            break Ok(());
        }
    };
    let _ = stdout.flush();
    drop(stdout);
    // The messages are printed: a failing DISCONNECT changes nothing for the user.
    let _ = client.disconnect(Duration::from_secs(1));
    client.close();
    outcome
}

/// Sends SUBSCRIBE and waits for SUBACK on a thread of its own, returning what it got. Messages
/// are printed meanwhile: a persistent session's backlog (`-c`) arrives before the SUBACK, and
/// waiting for it first filled the receive queue, which stopped reading, so the SUBACK was never
/// read.
fn subscribe(
    client: &Client,
    filters: &[String],
    qos: QoS,
) -> Receiver<Result<Vec<QoS>, sansmq_mio::Error>> {
    let (tx, rx) = mpsc::channel();
    let client = client.clone();
    let filters = filters.to_vec();
    tracing::debug!(?filters, qos = qos as u8, "sending SUBSCRIBE");
    thread::spawn(move || {
        let subscriptions: Vec<(&str, QoS)> = filters.iter().map(|f| (f.as_str(), qos)).collect();
        let _ = tx.send(client.subscribe(&subscriptions));
    });
    rx
}

fn timed_out(args: &SubArgs, received: u64) -> anyhow::Error {
    let seconds = args.timeout.unwrap_or_default();
    let message = match args.count {
        Some(count) => {
            format!("timed out after {seconds} s (-W) with {received} of {count} messages (-C)")
        }
        None => format!("timed out after {seconds} s (-W), {received} messages received"),
    };
    Failure::error(TIMED_OUT, message)
}
