//! `sansmq demo`: Alibaba's ApsaraMQ quick-start (`MQ4IoTSendMessageToMQ4IoTUseSignatureMode`)
//! on sansmq. A subscriber and a publisher, callbacks registered before connecting, the
//! subscription made in `connect_complete`; 10 messages to `<parent>/testMq4Iot` and 10
//! point-to-point to `<parent>/p2p/<subscriber id>`, which arrive without a subscription. Then a
//! summary: what was sent and received, and round-trip latencies from a timestamp in each payload.
//!
//! Without `--broker` it runs against an embedded sansmq-broker in ApsaraMQ mode, with an
//! AccessKey made up for the run, so it works anywhere in a second. `--transport ws` has the
//! embedded broker listen for MQTT over WebSocket as well and the clients use it; it has no TLS,
//! so `ssl` and `wss` need `--broker`.
//!
//! `--mqtt5` speaks MQTT 5.0, as ApsaraMQ's Professional, Enterprise Platinum and Serverless
//! instances do: the same logins, and each message carries a Content Type and User Properties,
//! which the subscriber prints.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use sansmq::packet::QoS;
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCredentials, AuthMode, ClientId, Mqtt5Options, TopicRules,
    apsaramq_mqtt5_options, apsaramq_options, is_p2p_for,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig};
use sansmq_mio::{
    Callback, Client, ConnectOptions, DeliveryToken, Error, Message, MqttString, Properties,
};

use crate::args::parse_qos;
use crate::exit::Failure;
use crate::latency::Percentiles;

/// How long the subscriber may take to connect and subscribe.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// ApsaraMQ broker URI, e.g. tcp://<instance>.mqtt.aliyuncs.com:1883 (needs --instance; the
    /// AccessKey comes from MQTT_AK_ENV / MQTT_SK_ENV). Default: an embedded local broker.
    #[arg(long, value_name = "URI", requires = "instance")]
    broker: Option<String>,

    /// How the clients reach the broker: MQTT over TCP (1883), TLS (8883), WebSocket (80) or
    /// secure WebSocket (443). With --broker, the URI's scheme must agree [default: tcp].
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    transport: Option<DemoTransport>,

    /// ApsaraMQ instance id [default: mqtt-local-demo, for the embedded broker].
    #[arg(long, value_name = "ID")]
    instance: Option<String>,

    /// Group id of both clients (GID_ or GID- and letters, digits, '-', '_').
    #[arg(long, value_name = "GID", default_value = "GID_demo")]
    group: String,

    /// Parent topic (created in the ApsaraMQ console).
    #[arg(long = "parent-topic", value_name = "TOPIC", default_value = "demo")]
    parent_topic: String,

    /// QoS of the subscription and the messages.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "1")]
    qos: QoS,

    /// Messages of each kind (to the topic, and P2P).
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,

    /// Seconds to wait for the messages once they are sent.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    wait: u64,

    /// Speak MQTT 5.0 (ApsaraMQ's Professional, Enterprise Platinum and Serverless instances;
    /// the embedded broker speaks it too): the logins are unchanged, and each message carries a
    /// Content Type and User Properties, which the subscriber prints.
    #[arg(long)]
    mqtt5: bool,
}

impl DemoArgs {
    /// The preset's options for `client_id`, in MQTT 5.0 with `--mqtt5`.
    fn options(
        &self,
        uri: &str,
        client_id: &ClientId,
        auth: AuthMode,
    ) -> anyhow::Result<ConnectOptions> {
        if self.mqtt5 {
            let credentials = ApsaraMqCredentials::new(auth, client_id.clone());
            Ok(apsaramq_mqtt5_options(
                uri,
                &credentials,
                Mqtt5Options::new(),
            )?)
        } else {
            Ok(apsaramq_options(uri, client_id, auth)?)
        }
    }

    fn protocol(&self) -> &'static str {
        if self.mqtt5 { "MQTT 5.0" } else { "MQTT 3.1.1" }
    }
}

/// An MQTT 5.0 message's properties: what it is, and which kind and run it belongs to.
fn message_properties(kind: &str, run_id: u32) -> anyhow::Result<Properties> {
    let string = |s: &str| MqttString::try_from(s).context("a property");
    let mut properties = Properties::new();
    properties.set_content_type(Some(string("text/plain; charset=utf-8")?));
    properties.push_user_property(string("kind")?, string(kind)?);
    properties.push_user_property(string("run")?, string(&run_id.to_string())?);
    Ok(properties)
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let run_id = std::process::id();
    let (uri, instance, key, local) = match &args.broker {
        Some(uri) => {
            if let Some(transport) = args.transport {
                transport.check_scheme(uri)?;
            }
            let instance = args.instance.clone().unwrap_or_default();
            let key = AccessKey::from_env().context("--broker")?;
            (uri.clone(), instance, key, None)
        }
        None => {
            let instance = args
                .instance
                .clone()
                .unwrap_or_else(|| "mqtt-local-demo".to_owned());
            let transport = args.transport.unwrap_or_default();
            let (id, secret) = made_up_access_key();
            let mode = ApsaraMqMode::new(&instance).access_key(&id, &secret);
            let broker = sansmq_broker::start(BrokerConfig {
                ws_bind: transport.embedded_ws_bind()?,
                apsaramq: Some(mode),
                ..BrokerConfig::default()
            })
            .context("starting the embedded broker on 127.0.0.1")?;
            let uri = transport.embedded_uri(&broker)?;
            (uri, instance, AccessKey::new(id, secret), Some(broker))
        }
    };
    let where_ = if local.is_some() {
        "an embedded local broker in ApsaraMQ mode, with an AccessKey made up for this run"
    } else {
        "ApsaraMQ, with the AccessKey from MQTT_AK_ENV / MQTT_SK_ENV"
    };
    println!(
        "ApsaraMQ quick-start demo: {} (instance {instance}, {}), {where_}",
        sansmq_mio::redact_uri(&uri),
        args.protocol()
    );

    let sub_id = ClientId::new(&args.group, &format!("demo-sub-{run_id}"))?;
    let pub_id = ClientId::new(&args.group, &format!("demo-pub-{run_id}"))?;
    let rules = TopicRules::default();
    let topic = rules.name(&args.parent_topic, "testMq4Iot")?.to_string();
    let p2p_topic = rules.p2p_topic(&args.parent_topic, &sub_id)?.to_string();
    let auth = || AuthMode::signature(key.clone(), &instance);

    // The subscriber: callbacks first, then connect; it subscribes in connect_complete.
    let (events_tx, events) = mpsc::channel();
    let subscriber = Closing(Client::new(args.options(&uri, &sub_id, auth())?)?);
    subscriber.0.set_callback(SubscriberCallback {
        client: subscriber.0.clone(),
        id: sub_id.clone(),
        parent: args.parent_topic.clone(),
        topic: topic.clone(),
        qos: args.qos,
        run_id,
        epoch,
        events: events_tx,
    });
    subscriber
        .0
        .connect()
        .with_context(|| format!("the subscriber {sub_id} connecting to {uri}"))?;
    wait_subscribed(&events)?;

    let publisher = Closing(Client::new(args.options(&uri, &pub_id, auth())?)?);
    publisher.0.set_callback(PublisherCallback);
    publisher
        .0
        .connect()
        .with_context(|| format!("the publisher {pub_id} connecting to {uri}"))?;

    let mut tokens = Vec::new();
    for seq in 0..args.count {
        for (target, kind) in [(&topic, "pub sub"), (&p2p_topic, "p2p")] {
            let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let body = format!("hello mq4Iot {kind} msg {seq} run={run_id} t={nanos}");
            println!("[publisher] send msg: {body} -> {target}");
            let sent = if args.mqtt5 {
                let properties = message_properties(kind, run_id)?;
                publisher
                    .0
                    .publish_with_properties(target, body, args.qos, false, properties)
            } else {
                publisher.0.publish(target, body, args.qos, false)
            };
            let token = sent.with_context(|| format!("publishing to {target}"))?;
            tokens.push(token);
        }
    }
    for token in &tokens {
        token
            .wait()
            .context("waiting for the broker's acknowledgement")?;
    }

    let expected = args.count;
    let tally = collect(&events, expected, Duration::from_secs(args.wait));
    let _ = publisher.0.disconnect(Duration::from_secs(2));
    let _ = subscriber.0.disconnect(Duration::from_secs(2));
    summarize(args, &topic, &p2p_topic, tally)
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum DemoTransport {
    /// MQTT over TCP.
    #[default]
    Tcp,
    /// MQTT over TLS.
    Ssl,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl DemoTransport {
    /// The URI scheme, as `sansmq_apsaramq::Endpoint` writes it.
    fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Ssl => "ssl",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Where the embedded broker listens for WebSocket clients: a free loopback port for `ws`.
    /// `ssl` and `wss` are refused here, before a broker is started: it has no TLS.
    fn embedded_ws_bind(self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        match self {
            Self::Tcp => Ok(None),
            Self::Ws => Ok(Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))),
            Self::Ssl | Self::Wss => bail!(
                "--transport {}: the embedded broker has no TLS; give --broker {}://<instance \
                 endpoint>:{} --instance ID to run the demo against ApsaraMQ",
                self.scheme(),
                self.scheme(),
                if self == Self::Ssl {
                    "8883"
                } else {
                    "443/mqtt"
                },
            ),
        }
    }

    /// The URI the demo's clients use on the embedded `broker`.
    fn embedded_uri(self, broker: &Broker) -> anyhow::Result<String> {
        match (self, broker.ws_local_addr()) {
            (Self::Ws, Some(addr)) => Ok(format!("ws://{addr}/mqtt")),
            (Self::Tcp, _) => Ok(format!("tcp://{}", broker.local_addr())),
            _ => bail!(
                "--transport {}: the embedded broker has no such listener",
                self.scheme()
            ),
        }
    }

    /// Refuses a `--broker` URI of another transport: both were given and they disagree. A URI
    /// that does not parse is left for the client to explain.
    fn check_scheme(self, uri: &str) -> anyhow::Result<()> {
        let Ok(parsed) = uri.parse::<sansmq_mio::ServerUri>() else {
            return Ok(());
        };
        let wanted = match self {
            Self::Tcp => (false, false),
            Self::Ssl => (true, false),
            Self::Ws => (false, true),
            Self::Wss => (true, true),
        };
        if (parsed.tls, parsed.websocket_path.is_some()) == wanted {
            return Ok(());
        }
        bail!(
            "--transport {} but --broker {} is not a {}:// URI; the URI alone decides, so give \
             one or make them agree",
            self.scheme(),
            sansmq_mio::redact_uri(uri),
            self.scheme()
        )
    }
}

/// What the subscriber saw.
#[derive(Debug, Default)]
struct Tally {
    topic: HashSet<u32>,
    p2p: HashSet<u32>,
    duplicates: usize,
    latencies: Vec<Duration>,
}

/// Counts the messages of this run until all `expected` of each kind are in, or `wait` is over
/// (a `wait` beyond what the clock can count waits for them all).
fn collect(events: &Receiver<Event>, expected: u32, wait: Duration) -> Tally {
    let deadline = Instant::now().checked_add(wait);
    let mut tally = Tally::default();
    let all = usize::try_from(expected).unwrap_or(usize::MAX);
    while tally.topic.len() < all || tally.p2p.len() < all {
        let next = match deadline {
            Some(deadline) => {
                events.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let Ok(event) = next else {
            break;
        };
        if let Event::Received { p2p, seq, latency } = event {
            let fresh = if p2p {
                tally.p2p.insert(seq)
            } else {
                tally.topic.insert(seq)
            };
            if fresh {
                tally.latencies.push(latency);
            } else {
                // QoS 1 may deliver twice: the quick-start's handlers must be idempotent.
                tally.duplicates += 1;
            }
        }
    }
    tally
}

fn summarize(
    args: &DemoArgs,
    topic: &str,
    p2p_topic: &str,
    mut tally: Tally,
) -> anyhow::Result<()> {
    let count = args.count;
    let sent = count * 2;
    let received = tally.topic.len() + tally.p2p.len();
    println!("summary ({}):", args.protocol());
    println!(
        "  sent:         {sent} at QoS {} ({count} to {topic}, {count} P2P to {p2p_topic})",
        args.qos as u8
    );
    println!("  received:     {received} of {sent}");
    println!("  P2P received: {} of {count}", tally.p2p.len());
    println!("  duplicates:   {}", tally.duplicates);
    match Percentiles::of(&mut tally.latencies) {
        Some(p) => println!("  round trip:   {p}"),
        None => println!("  round trip:   no message came back"),
    }
    if received == usize::try_from(sent).unwrap_or(usize::MAX) {
        println!("every message sent was received");
        return Ok(());
    }
    Err(Failure::error(
        1,
        format!(
            "{} of {sent} messages sent were not received within {} s; -d shows the packets",
            usize::try_from(sent).unwrap_or(usize::MAX) - received,
            args.wait
        ),
    ))
}

fn wait_subscribed(events: &Receiver<Event>) -> anyhow::Result<()> {
    let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Subscribed(Ok(()))) => return Ok(()),
            Ok(Event::Subscribed(Err(why))) => bail!("the subscriber could not subscribe: {why}"),
            Ok(Event::Received { .. }) => {}
            Err(_) => bail!(
                "the subscriber did not subscribe within {} s",
                SUBSCRIBE_TIMEOUT.as_secs()
            ),
        }
    }
}

/// From the subscriber's callbacks to the demo.
#[derive(Debug)]
enum Event {
    Subscribed(Result<(), String>),
    Received {
        p2p: bool,
        seq: u32,
        latency: Duration,
    },
}

/// The subscriber's `MqttCallbackExtended`.
struct SubscriberCallback {
    client: Client,
    id: ClientId,
    parent: String,
    topic: String,
    qos: QoS,
    run_id: u32,
    epoch: Instant,
    events: Sender<Event>,
}

impl Callback for SubscriberCallback {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        println!("[subscriber] connect complete: {server_uri} (reconnect: {reconnect})");
        // As the quick-start: subscribe on every connection.
        let result = self
            .client
            .subscribe(&[(self.topic.as_str(), self.qos)])
            .map(|granted| {
                println!(
                    "[subscriber] subscribed to {} (granted {granted:?})",
                    self.topic
                );
            })
            .map_err(|e| e.to_string());
        let _ = self.events.send(Event::Subscribed(result));
    }

    fn connection_lost(&self, cause: &Error) {
        println!("[subscriber] connection lost: {cause}");
    }

    fn message_arrived(&self, topic: &str, message: &Message) {
        let body = String::from_utf8_lossy(&message.payload);
        println!("[subscriber] receive msg from topic {topic}: {body}");
        let properties = message.properties();
        if let Some(content_type) = properties.content_type() {
            println!("[subscriber]   content type: {content_type}");
        }
        for (name, value) in properties.user_properties() {
            println!("[subscriber]   user property: {name}={value}");
        }
        let Some((seq, sent_at)) = parse_body(&body, self.run_id) else {
            return; // not from this run
        };
        let latency = self.epoch.elapsed().saturating_sub(sent_at);
        let p2p = is_p2p_for(topic, &self.parent, &self.id);
        let _ = self.events.send(Event::Received { p2p, seq, latency });
    }
}

/// The publisher's callback: reports acknowledgements, as the quick-start's deliveryComplete.
struct PublisherCallback;

impl Callback for PublisherCallback {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        println!("[publisher] connect complete: {server_uri} (reconnect: {reconnect})");
    }

    fn connection_lost(&self, cause: &Error) {
        println!("[publisher] connection lost: {cause}");
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        if let Some(id) = token.message_id() {
            println!("[publisher] send msg succeed: message id {id}");
        }
    }
}

/// Closes a client when the demo ends, however it ends (callbacks hold clones of it).
struct Closing(Client);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// `hello mq4Iot <kind> msg <seq> run=<run> t=<nanos>` of run `run_id`: the sequence number and
/// the send time since the demo's start.
fn parse_body(body: &str, run_id: u32) -> Option<(u32, Duration)> {
    let mut words = body.rsplit(' ');
    let nanos = words.next()?.strip_prefix("t=")?.parse::<u64>().ok()?;
    let run = words.next()?.strip_prefix("run=")?.parse::<u32>().ok()?;
    let seq = words.next()?.parse::<u32>().ok()?;
    (run == run_id).then_some((seq, Duration::from_nanos(nanos)))
}

/// An AccessKey for the embedded broker: random, and it never leaves the process.
fn made_up_access_key() -> (String, String) {
    let random = || RandomState::new().hash_one(Instant::now());
    (
        format!("LTAI-local-{:08x}", random() & 0xffff_ffff),
        format!("{:016x}{:016x}", random(), random()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_gives_its_sequence_and_send_time_for_this_run_only() {
        let body = "hello mq4Iot p2p msg 7 run=42 t=1500";
        assert_eq!(parse_body(body, 42), Some((7, Duration::from_nanos(1500))));
        assert_eq!(parse_body(body, 43), None);
        assert_eq!(parse_body("hello from someone else", 42), None);
        assert_eq!(parse_body("", 42), None);
    }

    #[test]
    fn the_embedded_broker_serves_tcp_and_ws_and_refuses_tls_transports_by_name() {
        assert_eq!(DemoTransport::Tcp.embedded_ws_bind().unwrap(), None);
        let bind = DemoTransport::Ws.embedded_ws_bind().unwrap().unwrap();
        assert!(bind.ip().is_loopback() && bind.port() == 0, "{bind}");
        for transport in [DemoTransport::Ssl, DemoTransport::Wss] {
            let error = transport.embedded_ws_bind().unwrap_err().to_string();
            assert!(error.contains("no TLS"), "{error}");
            assert!(error.contains("--broker"), "{error}");
        }
        let broker = sansmq_broker::start(BrokerConfig {
            ws_bind: DemoTransport::Ws.embedded_ws_bind().unwrap(),
            ..BrokerConfig::default()
        })
        .unwrap();
        let ws = DemoTransport::Ws.embedded_uri(&broker).unwrap();
        let ws_addr = broker.ws_local_addr().unwrap();
        assert_eq!(ws, format!("ws://{ws_addr}/mqtt"));
        let tcp = DemoTransport::Tcp.embedded_uri(&broker).unwrap();
        assert_eq!(tcp, format!("tcp://{}", broker.local_addr()));
        let parsed: sansmq_mio::ServerUri = ws.parse().unwrap();
        assert_eq!(parsed.websocket_path.as_deref(), Some("/mqtt"));
    }

    #[test]
    fn a_broker_uri_must_agree_with_an_explicit_transport() {
        let wss = "wss://mqtt-cn-x.mqtt.aliyuncs.com:443/mqtt";
        assert!(DemoTransport::Wss.check_scheme(wss).is_ok());
        assert!(DemoTransport::Ws.check_scheme("ws://h:80/mqtt").is_ok());
        assert!(DemoTransport::Ssl.check_scheme("ssl://h:8883").is_ok());
        assert!(DemoTransport::Tcp.check_scheme("tcp://h:1883").is_ok());
        assert!(DemoTransport::Ssl.check_scheme("mqtts://h:8883").is_ok());
        let error = DemoTransport::Ws.check_scheme(wss).unwrap_err().to_string();
        assert!(error.contains("--transport ws"), "{error}");
        assert!(DemoTransport::Tcp.check_scheme("ws://h/mqtt").is_err());
    }

    #[test]
    fn made_up_keys_differ() {
        let (id1, secret1) = made_up_access_key();
        let (id2, secret2) = made_up_access_key();
        assert!(id1.starts_with("LTAI-local-"));
        assert_eq!(secret1.len(), 32);
        assert!(secret1 != secret2 || id1 != id2);
    }
}
