//! `sansmq broker`: the local development broker (sansmq-broker), plain or in ApsaraMQ mode.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use sansmq_broker::{ApsaraMqMode, BrokerConfig};

#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// Address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1883")]
    bind: SocketAddr,

    /// Also serve MQTT over WebSocket on ADDR (ws://ADDR/, any path, subprotocol mqtt); port 0
    /// picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR")]
    ws_bind: Option<SocketAddr>,

    /// Behave like ApsaraMQ for MQTT instance INSTANCE: check Signature, DeviceCredential and
    /// Token logins, client ids and limits, route P2P topics, re-deliver unacknowledged QoS 1
    /// messages, and issue tokens over a local OpenAPI. With no --access-key or --keys, an
    /// AccessKey is generated; how to log in is printed either way.
    #[arg(long, value_name = "INSTANCE")]
    apsaramq: Option<String>,

    /// An AccessKey that may log in and call the OpenAPI (ApsaraMQ mode); repeatable. Prefer
    /// --keys: a command line is visible to other users of the machine.
    #[arg(long = "access-key", value_name = "ID:SECRET", requires = "apsaramq", value_parser = parse_key)]
    access_keys: Vec<(String, String)>,

    /// A file of AccessKeys (ApsaraMQ mode): one ID:SECRET per line; blank lines and lines
    /// starting with '#' are ignored.
    #[arg(long, value_name = "FILE", requires = "apsaramq")]
    keys: Option<PathBuf>,

    /// Where the local OpenAPI (ApplyToken, QueryToken, RevokeToken; ApsaraMQ mode) listens;
    /// port 0 picks a free one (the URL is printed).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        requires = "apsaramq"
    )]
    openapi_bind: SocketAddr,

    /// Seconds a connected client may leave a QoS 1 message unacknowledged before it is sent
    /// again (ApsaraMQ mode, as the service does); 0 turns re-delivery off.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        requires = "apsaramq"
    )]
    redelivery_interval: f64,

    /// Seconds before a token expires that $SYS/tokenExpireNotice is sent (ApsaraMQ mode).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300.0,
        requires = "apsaramq"
    )]
    token_expire_notice: f64,

    #[command(flatten)]
    limits: BrokerLimits,
}

/// The broker's limits, named after mosquitto.conf's where it has one; 0 means no limit. Each
/// one left out keeps `BrokerConfig`'s default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits (0 = no limit)")]
struct BrokerLimits {
    /// Largest packet a client may send, in bytes [default: 1 MiB].
    #[arg(long, value_name = "BYTES")]
    max_packet_size: Option<usize>,
    /// Bytes of big packets (over 16 KiB) received at once over all clients; a big packet
    /// waits until it fits [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    max_incoming_bytes: Option<usize>,
    /// Sessions (connected and offline persistent ones); a CONNECT for a new one past it gets
    /// CONNACK 0x03, server unavailable [default: 100000].
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,
    /// Outgoing QoS 1/2 messages awaiting a client's acknowledgement [default: 20].
    #[arg(long, value_name = "N")]
    max_inflight_messages: Option<usize>,
    /// QoS 1/2 messages queued per session; past it new ones are dropped, counted and logged
    /// [default: 0, no limit].
    #[arg(long, value_name = "N")]
    max_queued_messages: Option<usize>,
    /// Bytes queued per session; past it new QoS 1/2 messages are dropped, counted and logged
    /// [default: 0, no limit].
    #[arg(long, value_name = "BYTES")]
    max_queued_bytes: Option<usize>,
    /// Bytes queued over all sessions; past it new QoS 1/2 messages are dropped, counted and
    /// logged [default: 256 MiB].
    #[arg(long, value_name = "BYTES")]
    max_total_queued_bytes: Option<usize>,
    /// Bytes waiting to be written to one client before its QoS 0 messages are dropped and
    /// QoS 1/2 ones queued [default: 256 KiB].
    #[arg(long, value_name = "BYTES")]
    max_outgoing_bytes: Option<usize>,
    /// Subscriptions per session [default: 1000].
    #[arg(long, value_name = "N")]
    max_subscriptions: Option<usize>,
    /// Topics holding a retained message; a new one past it is not retained [default: 10000].
    #[arg(long, value_name = "N")]
    max_retained_messages: Option<usize>,
    /// Bytes of retained messages; one past it is not retained [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    max_retained_bytes: Option<usize>,
    /// Levels a topic or topic filter may have: a PUBLISH over it closes its connection, a
    /// SUBSCRIBE filter over it gets the failure code 0x80; 0 leaves MQTT's 65535-byte bound
    /// [default: 128].
    #[arg(long, value_name = "N")]
    max_topic_levels: Option<usize>,
    /// Bytes of a topic or topic filter, refused like --max-topic-levels [default: 4096].
    #[arg(long, value_name = "BYTES")]
    max_topic_length: Option<usize>,
    /// Seconds a new connection may take to send its CONNECT before it is closed; 0 waits for
    /// ever [default: 10].
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// MQTT 5: the Receive Maximum announced, how many incoming QoS 2 messages a client may
    /// have awaiting PUBREL; more ends its connection with 0x93 [default: 65535].
    #[arg(long, value_name = "N")]
    receive_maximum: Option<u16>,
    /// MQTT 5: the Topic Alias Maximum announced, how many Topic Aliases a client may set; 0
    /// refuses them [default: 10].
    #[arg(long, value_name = "N")]
    topic_alias_maximum: Option<u16>,
    /// MQTT 5: the longest keep-alive granted, told to a client asking for more (or none) as
    /// its Server Keep Alive; 0 grants any [default: 0; 480 in --apsaramq mode].
    #[arg(long, value_name = "SECS")]
    max_keep_alive: Option<u16>,
}

impl BrokerLimits {
    /// `config` with the limits given on the command line.
    fn apply(&self, config: BrokerConfig) -> BrokerConfig {
        let pick = |given: Option<usize>, default: usize| given.unwrap_or(default);
        BrokerConfig {
            max_packet_size: pick(self.max_packet_size, config.max_packet_size),
            max_incoming_bytes: pick(self.max_incoming_bytes, config.max_incoming_bytes),
            max_sessions: pick(self.max_sessions, config.max_sessions),
            max_inflight: pick(self.max_inflight_messages, config.max_inflight),
            max_queued_messages: pick(self.max_queued_messages, config.max_queued_messages),
            max_queued_bytes: pick(self.max_queued_bytes, config.max_queued_bytes),
            max_total_queued_bytes: pick(
                self.max_total_queued_bytes,
                config.max_total_queued_bytes,
            ),
            max_outgoing_bytes: pick(self.max_outgoing_bytes, config.max_outgoing_bytes),
            max_subscriptions: pick(self.max_subscriptions, config.max_subscriptions),
            max_retained_messages: pick(self.max_retained_messages, config.max_retained_messages),
            max_retained_bytes: pick(self.max_retained_bytes, config.max_retained_bytes),
            max_topic_levels: pick(self.max_topic_levels, config.max_topic_levels),
            max_topic_length: pick(self.max_topic_length, config.max_topic_length),
            connect_timeout: self
                .connect_timeout
                .map_or(config.connect_timeout, Duration::from_secs),
            receive_maximum: self.receive_maximum.unwrap_or(config.receive_maximum),
            topic_alias_maximum: self
                .topic_alias_maximum
                .unwrap_or(config.topic_alias_maximum),
            max_keep_alive: self.max_keep_alive.unwrap_or(config.max_keep_alive),
            ..config
        }
    }
}

pub(crate) fn run(args: &BrokerArgs) -> anyhow::Result<()> {
    let apsaramq = match &args.apsaramq {
        Some(instance) => Some(apsaramq_mode(args, instance)?),
        None => None,
    };
    let description = match &apsaramq {
        Some((mode, keys)) => format!(
            "ApsaraMQ mode, instance {}, {} AccessKey(s)",
            mode.instance_id(),
            keys.count()
        ),
        None => "plain MQTT 3.1.1 and 5.0, anyone may connect".to_owned(),
    };
    let (mode, keys) = apsaramq.unzip();
    let config = args.limits.apply(BrokerConfig {
        bind: args.bind,
        ws_bind: args.ws_bind,
        apsaramq: mode,
        ..BrokerConfig::default()
    });
    let broker = sansmq_broker::start(config).with_context(|| {
        let ws = args
            .ws_bind
            .map(|addr| format!(" and {addr} (--ws-bind)"))
            .unwrap_or_default();
        let openapi = keys
            .as_ref()
            .map(|_| format!(" and {} (--openapi-bind)", args.openapi_bind))
            .unwrap_or_default();
        format!(
            "starting the broker on {} (--bind){ws}{openapi}; is another broker using that port?",
            args.bind
        )
    })?;
    let websocket = broker
        .ws_local_addr()
        .map(|addr| format!(" and ws://{addr}/"))
        .unwrap_or_default();
    // Tests and scripts read the address from this line (with --bind 127.0.0.1:0): the first
    // word after "listening on" is the TCP address; "ws://" starts the WebSocket one.
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "sansmq broker listening on {}{websocket} ({description}); for development only, stop it \
         with Ctrl-C",
        broker.local_addr()
    )?;
    if let Some(keys) = &keys {
        write!(stdout, "{}", login_help(&broker, args, keys))?;
    }
    stdout.flush()?;
    drop(stdout);
    broker.wait();
    bail!("the broker stopped unexpectedly; -d shows why")
}

/// The AccessKeys of ApsaraMQ mode: the ones given, or one generated.
#[derive(Debug)]
enum AccessKeys {
    Given(Vec<String>),
    Generated { id: String, secret: String },
}

impl AccessKeys {
    fn count(&self) -> usize {
        match self {
            Self::Given(ids) => ids.len(),
            Self::Generated { .. } => 1,
        }
    }

    /// The id to show in the login help.
    fn first_id(&self) -> &str {
        match self {
            Self::Given(ids) => ids.first().map_or("<AccessKey id>", String::as_str),
            Self::Generated { id, .. } => id,
        }
    }
}

/// ApsaraMQ mode for `instance` from the command line.
fn apsaramq_mode(args: &BrokerArgs, instance: &str) -> anyhow::Result<(ApsaraMqMode, AccessKeys)> {
    let mut pairs = args.access_keys.clone();
    if let Some(file) = &args.keys {
        pairs.extend(read_keys(file)?);
    }
    let keys = if pairs.is_empty() {
        let (id, secret) = generate_access_key()?;
        pairs.push((id.clone(), secret.clone()));
        AccessKeys::Generated { id, secret }
    } else {
        AccessKeys::Given(pairs.iter().map(|(id, _)| id.clone()).collect())
    };
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .with_context(|| format!("{flag} {value}: not a number of seconds"))
    };
    let mode = pairs
        .into_iter()
        .fold(ApsaraMqMode::new(instance), |mode, (id, secret)| {
            mode.access_key(id, secret)
        })
        .openapi_bind(args.openapi_bind)
        .redelivery_interval(seconds(args.redelivery_interval, "--redelivery-interval")?)
        .token_expire_notice(seconds(args.token_expire_notice, "--token-expire-notice")?);
    Ok((mode, keys))
}

/// An AccessKey pair shaped like Alibaba Cloud's: `LTAI` and 20 characters, a 30-character
/// secret.
fn generate_access_key() -> anyhow::Result<(String, String)> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; 50];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("no randomness for an AccessKey: {e}"))?;
    let mut chars = random.iter().map(|byte| {
        // 62 letters and digits; the slight bias of `% 62` does not matter for a local key.
        char::from(
            ALPHABET
                .get(usize::from(*byte) % ALPHABET.len())
                .copied()
                .unwrap_or(b'A'),
        )
    });
    let id: String = "LTAI".chars().chain(chars.by_ref().take(20)).collect();
    let secret: String = chars.take(30).collect();
    Ok((id, secret))
}

/// How to log in to the broker in ApsaraMQ mode, as shell lines the quick-start examples and
/// `sansmq token` read.
fn login_help(broker: &sansmq_broker::Broker, args: &BrokerArgs, keys: &AccessKeys) -> String {
    let instance = args.apsaramq.as_deref().unwrap_or_default();
    let secret = match keys {
        AccessKeys::Generated { secret, .. } => secret.as_str(),
        AccessKeys::Given(_) => "<its secret>",
    };
    let origin = match keys {
        AccessKeys::Generated { .. } => "a generated AccessKey (it lasts as long as this broker)",
        AccessKeys::Given(_) => "one of the AccessKeys given",
    };
    let openapi = broker.openapi_url().unwrap_or_default();
    let mut help = format!(
        "Log in with {origin}; the quick-start examples and `sansmq token` read these:\n\
         \x20 export MQTT_BROKER=tcp://{addr} MQTT_INSTANCE_ID={instance}\n\
         \x20 export MQTT_AK_ENV={id} MQTT_SK_ENV={secret}\n\
         \x20 export MQTT_OPENAPI_ENDPOINT={openapi}\n\
         Sample client id: GID_demo@@@device-1 (Signature login: user name \
         Signature|{id}|{instance}, password Base64(HMAC-SHA1(secret, client id))",
        addr = broker.local_addr(),
        id = keys.first_id(),
    );
    if let AccessKeys::Generated { secret, .. } = keys {
        let password = sansmq_broker::signature(secret, "GID_demo@@@device-1");
        help.push_str(&format!(" = {password}"));
    }
    help.push_str(&format!(
        ").\nTokens: TOKEN=$(sansmq token apply --instance {instance} --resource demo/# \
         --actions RW --expire-in 1h), then `sansmq pub|sub --apsaramq-instance {instance} \
         --token RW=$TOKEN ...` (user name Token|{id}|{instance}, password RW|<token>).\n",
        id = keys.first_id()
    ));
    help
}

/// `ID:SECRET`.
fn parse_key(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        // Never echo the value: it holds a secret.
        _ => Err("expected ID:SECRET, both non-empty".to_owned()),
    }
}

fn read_keys(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--keys: reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            parse_key(line).map_err(|why| anyhow::anyhow!("--keys {}:{n}: {why}", path.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        broker: BrokerArgs,
    }

    #[test]
    fn limit_flags_set_their_field_and_the_rest_keep_the_default() {
        let parsed = Command::try_parse_from([
            "broker",
            "--max-queued-messages",
            "1000",
            "--max-total-queued-bytes",
            "0",
            "--max-sessions",
            "5",
            "--max-inflight-messages",
            "7",
            "--max-retained-bytes",
            "4096",
            "--max-topic-levels",
            "0",
            "--max-topic-length",
            "65535",
            "--connect-timeout",
            "0",
        ])
        .unwrap();
        let config = parsed.broker.limits.apply(BrokerConfig::default());
        let default = BrokerConfig::default();
        assert_eq!(config.max_queued_messages, 1000);
        assert_eq!(config.max_total_queued_bytes, 0);
        assert_eq!(config.max_sessions, 5);
        assert_eq!(config.max_inflight, 7);
        assert_eq!(config.max_retained_bytes, 4096);
        assert_eq!(config.max_topic_levels, 0);
        assert_eq!(config.max_topic_length, 65_535);
        assert_eq!(config.connect_timeout, Duration::ZERO);
        assert_eq!(config.max_incoming_bytes, default.max_incoming_bytes);
        assert_eq!(config.max_retained_messages, default.max_retained_messages);
        let untouched = Command::try_parse_from(["broker"]).unwrap();
        let config = untouched.broker.limits.apply(BrokerConfig::default());
        assert_eq!(config.max_topic_levels, default.max_topic_levels);
        assert_eq!(config.max_topic_length, default.max_topic_length);
        assert_eq!(config.connect_timeout, default.connect_timeout);
        let timeout = Command::try_parse_from(["broker", "--connect-timeout", "3"]).unwrap();
        let config = timeout.broker.limits.apply(BrokerConfig::default());
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert!(Command::try_parse_from(["broker", "--max-sessions", "-1"]).is_err());
    }

    #[test]
    fn a_key_is_id_colon_secret_and_errors_hide_the_secret() {
        assert_eq!(
            parse_key("LTAI:s:e:c"),
            Ok(("LTAI".to_owned(), "s:e:c".to_owned()))
        );
        let error = parse_key("LTAIonlysecretish").unwrap_err();
        assert!(!error.contains("LTAIonlysecretish"), "{error}");
        assert!(parse_key(":secret").is_err());
        assert!(parse_key("id:").is_err());
    }

    #[test]
    fn key_files_skip_comments_and_name_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# demo keys\n\nid1:secret1\n  id2:secret2  \n").unwrap();
        assert_eq!(
            read_keys(&path).unwrap(),
            [
                ("id1".to_owned(), "secret1".to_owned()),
                ("id2".to_owned(), "secret2".to_owned())
            ]
        );
        std::fs::write(&path, "id1:secret1\nbroken\n").unwrap();
        let error = read_keys(&path).unwrap_err().to_string();
        assert!(error.contains(":2:"), "{error}");
    }
}
