//! `sansmq sub`: mosquitto_sub's flags, plus `--json`.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use sansmq::TopicFilter;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq_apsaramq::{ClientId, TopicRules};
use sansmq_mio::{Client, Diagnosis};

use crate::args::{ConnectArgs, MQTT_MAX_PACKET, parse_qos};
use crate::connect;
use crate::exit::{Failure, TIMED_OUT};
use crate::link::{self, LostCause, Watcher};
use crate::output::{Format, Printed};
use crate::signals;

/// Messages received but not printed yet before reading from the broker pauses. None of them is
/// acknowledged before it is printed, so the broker's window of unacknowledged messages (20 for
/// a default mosquitto) bounds it first.
const RECEIVE_QUEUE: usize = 1024;

/// How long `sub` waits, when it ends, for the broker to acknowledge --remove-retained's messages.
const REMOVALS_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// not UTF-8), qos, retain, p2p (whether it was sent point-to-point to this client), and an
    /// MQTT 5 message's properties (mosquitto's names, as in -F %j).
    #[arg(long, conflicts_with_all = ["verbose", "no_newline"])]
    json: bool,

    /// Do not print stale messages (those with retain set).
    #[arg(short = 'R', conflicts_with = "retained_only")]
    no_retained: bool,

    /// Do not print messages whose topic matches this filter; repeatable.
    #[arg(short = 'T', long = "filter-out", value_name = "FILTER")]
    filter_out: Vec<String>,

    /// Unsubscribe from this filter once connected (to end a subscription a kept session, -c,
    /// still has); repeatable.
    #[arg(short = 'U', long = "unsubscribe", value_name = "FILTER")]
    unsubscribe: Vec<String>,

    /// Exit once the broker has acknowledged the subscriptions (and -U's unsubscriptions).
    #[arg(short = 'E')]
    exit_after_subscribe: bool,

    /// Only handle retained messages; exit at the first message that is not retained (which is
    /// left unacknowledged, for a kept session to receive again).
    #[arg(long)]
    retained_only: bool,

    /// Clear every retained message received: publish an empty retained message to its topic.
    /// -T keeps the topics it filters out from being cleared.
    #[arg(long)]
    remove_retained: bool,

    /// Print only this percentage of the messages (0.1 to 100), picked at random; the others
    /// still count for -C.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percentage)]
    random_filter: Option<f64>,

    /// Print each message as FORMAT says, as mosquitto_sub does (see mosquitto_sub(1)): %t topic,
    /// %p payload, %x/%X payload in hex, %l length, %q QoS, %r retain, %m message id, %I/%U
    /// time, %j/%J JSON (with the MQTT 5 properties); MQTT 5's %A topic alias, %C content type,
    /// %D correlation data, %E message expiry interval, %F payload format indicator, %P user
    /// properties, %R response topic, %S subscription identifier; flags, width and precision as
    /// in %-10t, %08l, %.5t; @H, @M... strftime
    /// letters for the local time, @N nanoseconds; \n \t \e \0 escapes. Ends each message
    /// with a newline unless -N; -v has no effect then.
    #[arg(short = 'F', value_name = "FORMAT", value_parser = |f: &str| crate::format::parse(f, false),
          conflicts_with = "json", allow_hyphen_values = true, overrides_with = "format")]
    format: Option<crate::format::Template>,

    /// Print %j and %J's JSON over several indented lines.
    #[arg(long)]
    pretty: bool,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

pub(crate) fn run(args: &SubArgs) -> anyhow::Result<()> {
    // -W counts from the start, connecting included: a broker that never answers CONNECT must
    // not outlast it.
    let deadline = args
        .timeout
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    // Ctrl-C and SIGTERM end the command as -C does once connected: DISCONNECT, so the broker
    // does not publish the will, and exit 0. Before that they end it with 255, as they end
    // mosquitto_sub.
    let stop = signals::stop_flag()?;
    let mut setup = connect::setup(&args.connect, "sub")?;
    let mut filters = args.topics.clone();
    filters.extend(setup.url_topic.clone());
    if filters.is_empty() {
        bail!("no topic: give -t FILTER (repeatable) or -L mqtt://host/FILTER");
    }
    let filter_out = parse_filters(&args.filter_out, "-T")?;
    parse_filters(&args.unsubscribe, "-U")?;
    connect::check_apsaramq_qos(&setup, args.qos)?;
    if setup.apsaramq {
        for filter in &filters {
            TopicRules::default()
                .check_filter(filter)
                .with_context(|| format!("-t {filter:?}"))?;
        }
    }
    let format = if let Some(template) = &args.format {
        Format::Template {
            template: template.clone().pretty(args.pretty),
            quiet: args.connect.quiet,
        }
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
    connect::connect_until(&client, &setup, deadline, &stop)?;

    let mut subscribing = Some(subscribe(
        &client,
        &filters,
        args.qos,
        &args.unsubscribe,
        setup.properties.subscribe.clone(),
        setup.properties.unsubscribe.clone(),
    ));
    let mut received = 0_u64;
    let mut rng = fastrand::Rng::new();
    // Empty retained messages published by --remove-retained, not yet acknowledged.
    let mut removals = Vec::new();
    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            tracing::debug!("stopping on a signal");
            break Ok(());
        }
        if let Some(error) = lost.get().as_ref().and_then(too_large) {
            // Reconnecting would only meet the same message again.
            break Err(error);
        }
        if let Some(result) = subscribing.as_ref().and_then(|s| s.try_recv().ok()) {
            subscribing = None;
            match result {
                Ok(granted) => {
                    tracing::debug!(?granted, "received SUBACK");
                    announce.store(true, Ordering::Relaxed);
                    if args.exit_after_subscribe {
                        break Ok(());
                    }
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
        if args.retained_only && !message.retained {
            // The first live message ends --retained-only. It is not acknowledged: a kept
            // session (-c) receives it again.
            break Ok(());
        }
        let skipped = (args.no_retained && message.retained)
            || filter_out.iter().any(|f| f.matches(&message.topic));
        if skipped {
            acknowledge(&client, &message);
            continue;
        }
        if args.remove_retained && message.retained {
            match client.publish(message.topic.as_str(), Bytes::new(), QoS::AtLeastOnce, true) {
                Ok(token) => removals.push(token),
                Err(error) => {
                    let context = format!("clearing the retained message of {}", message.topic);
                    break Err(anyhow::Error::from(error).context(context));
                }
            }
        }
        if let Some(percent) = args.random_filter {
            if !keeps(&mut rng, percent) {
                // Dropped by chance, as mosquitto_sub drops it: acknowledged, and counted.
                acknowledge(&client, &message);
                received += 1;
                if args.count.is_some_and(|count| received >= count) {
                    break Ok(());
                }
                continue;
            }
        }
        let printed = Printed {
            topic: message.topic.as_str(),
            payload: &message.payload,
            qos: message.qos,
            retain: message.retained,
            id: message.id,
            properties: message.properties(),
        };
        // `write` flushes: the message is out of this process before the broker forgets it.
        // stdout is locked per message: `-d` logs go there too, from the client's thread.
        match format.write(&mut io::stdout().lock(), &printed, !args.no_newline) {
            Ok(()) => acknowledge(&client, &message),
            // The reader went away (`| head`): stop quietly, as a filter should.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(anyhow::Error::from(e).context("writing to stdout")),
        }
        received += 1;
        if args.count.is_some_and(|count| received >= count) {
            break Ok(());
        }
    };
    let _ = io::stdout().flush();
    // The messages are printed: a failing DISCONNECT changes nothing for the user. It waits for
    // the acknowledgements of --remove-retained's messages.
    let drain = if removals.is_empty() {
        Duration::from_secs(1)
    } else {
        REMOVALS_TIMEOUT
    };
    let waited = connect::disconnect(&client, &setup, drain);
    client.close();
    let unacknowledged = removals
        .iter()
        .filter(|token| token.wait_timeout(Duration::ZERO).is_err())
        .count();
    match (outcome, unacknowledged) {
        (Ok(()), 0) => Ok(()),
        (Ok(()), n) => Err(anyhow::anyhow!(
            "--remove-retained: the broker did not acknowledge {n} of {} clearing messages ({})",
            removals.len(),
            waited
                .err()
                .map_or_else(|| "no answer".to_owned(), |e| e.to_string())
        )),
        (Err(error), _) => Err(error),
    }
}

/// `--random-filter`: 0.1 to 100.
fn parse_percentage(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|p| (0.1..=100.0).contains(p))
        .ok_or_else(|| format!("{value:?} is not a percentage from 0.1 to 100"))
}

/// Whether `--random-filter` keeps a message: with `percent` % probability.
fn keeps(rng: &mut fastrand::Rng, percent: f64) -> bool {
    rng.f64() * 100.0 < percent
}

/// Acknowledges a message that is printed or deliberately skipped.
fn acknowledge(client: &Client, message: &sansmq_mio::Message) {
    if let Err(error) = client.ack(message) {
        // The broker forgot the session meanwhile (`session_present = 0`): nothing is left to
        // acknowledge.
        tracing::debug!(%error, "not acknowledged");
    }
}

/// -T and -U's filters, checked before connecting (as mosquitto does).
fn parse_filters(filters: &[String], flag: &str) -> anyhow::Result<Vec<TopicFilter>> {
    filters
        .iter()
        .map(|f| TopicFilter::try_from(f.as_str()).with_context(|| format!("{flag} {f:?}")))
        .collect()
}

/// A connection lost to a message over the size limit, as the error that ends `sub`.
fn too_large(cause: &sansmq_mio::Error) -> Option<anyhow::Error> {
    let (size, max) = link::packet_too_large(cause)?;
    Some(anyhow::anyhow!(
        "the broker sent a packet of {size} bytes, over the limit of {max} bytes; give a larger \
         --max-packet-size (at most {MQTT_MAX_PACKET}) to receive it"
    ))
}

/// Sends SUBSCRIBE and waits for SUBACK on a thread of its own, returning what it got. Messages
/// are printed meanwhile: a persistent session's backlog (`-c`) arrives before the SUBACK, and
/// waiting for it first filled the receive queue, which stopped reading, so the SUBACK was never
/// read.
///
/// Then it unsubscribes from `unsubscribe` (-U), as mosquitto_sub does right after subscribing.
fn subscribe(
    client: &Client,
    filters: &[String],
    qos: QoS,
    unsubscribe: &[String],
    properties: Properties,
    unsubscribe_properties: Properties,
) -> Receiver<Result<Vec<QoS>, sansmq_mio::Error>> {
    let (tx, rx) = mpsc::channel();
    let client = client.clone();
    let filters = filters.to_vec();
    let unsubscribe = unsubscribe.to_vec();
    tracing::debug!(?filters, qos = qos as u8, "sending SUBSCRIBE");
    thread::spawn(move || {
        let mut result = if properties.is_empty() {
            let subscriptions: Vec<(&str, QoS)> =
                filters.iter().map(|f| (f.as_str(), qos)).collect();
            client.subscribe(&subscriptions)
        } else {
            // -D subscribe: a Subscription Identifier or User Properties (MQTT 5).
            filters
                .iter()
                .map(|f| TopicFilter::try_from(f.as_str()).map(|f| SubscribeFilter::new(f, qos)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(sansmq_mio::Error::from)
                .and_then(|filters| client.subscribe_with_properties(&filters, properties))
        };
        if result.is_ok() && !unsubscribe.is_empty() {
            tracing::debug!(filters = ?unsubscribe, "sending UNSUBSCRIBE");
            let unsubscribing: Vec<&str> = unsubscribe.iter().map(String::as_str).collect();
            if let Err(error) =
                client.unsubscribe_with_properties(&unsubscribing, unsubscribe_properties)
            {
                result = Err(error);
            }
        }
        let _ = tx.send(result);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_filter_keeps_about_its_percentage() {
        let mut rng = fastrand::Rng::new();
        let kept = (0..100_000).filter(|_| keeps(&mut rng, 25.0)).count();
        assert!((23_000..27_000).contains(&kept), "{kept}");
        assert!((0..1000).all(|_| keeps(&mut rng, 100.0)));
        assert!(parse_percentage("0.05").unwrap_err().contains("0.1 to 100"));
        assert_eq!(parse_percentage("50"), Ok(50.0));
    }
}
