//! The connection flags `pub` and `sub` share, named and meaning as in mosquitto_pub/sub, plus the
//! ApsaraMQ ones, and the parsers for their values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use sansmq::packet::{Protocol, QoS};
use sansmq_apsaramq::{Token, TokenType};
use sansmq_mio::{CipherList, DEFAULT_WEBSOCKET_PATH, SyncPolicy, TlsVersion};

/// Where to connect and as whom.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Print help (`-h` is the host, as in mosquitto) on stdout and exit with 1, as mosquitto does.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,

    /// Print the version on stdout and exit with 1, as mosquitto does (`-V` is the protocol).
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,

    /// Broker host [default: localhost, or the instance's endpoint with --apsaramq-instance].
    #[arg(short = 'h', long)]
    pub(crate) host: Option<String>,

    /// Broker port [default: 1883, 8883 with TLS].
    #[arg(short = 'p', long)]
    pub(crate) port: Option<u16>,

    /// mqtt(s)://[user[:password]@]host[:port]/topic: host, port, login and topic in one. Over
    /// WebSocket, ws(s)://[user[:password]@]host[:port]/<ws-path>/topic: the path begins with the
    /// WebSocket path (--ws-path, /mqtt by default) and the rest is the topic
    /// (ws://127.0.0.1:8080/mqtt/a/b: path /mqtt, topic a/b).
    #[arg(short = 'L', long = "url", value_name = "URL", conflicts_with_all = ["host", "port"])]
    pub(crate) url: Option<String>,

    /// MQTT over WebSocket to -h/-p [default port: 80, 443 with TLS flags (wss)].
    #[arg(long)]
    pub(crate) ws: bool,

    /// The WebSocket path of the upgrade request, with --ws or -L ws(s)://.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_WEBSOCKET_PATH)]
    pub(crate) ws_path: String,

    /// An extra header of the WebSocket upgrade request, 'Name: value' (some brokers take a
    /// login there); repeatable. Its value is never shown in messages.
    #[arg(long = "ws-header", value_name = "HEADER", value_parser = ws_header)]
    pub(crate) ws_headers: Vec<WsHeader>,

    /// Connect to the broker's Unix domain socket at PATH instead of over TCP (replaces -h/-p).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port", "url", "proxy", "bind_address"])]
    pub(crate) unix: Option<PathBuf>,

    /// Bind the outgoing socket to this local address (the interface connections leave from).
    #[arg(short = 'A', value_name = "ADDRESS")]
    pub(crate) bind_address: Option<String>,

    /// Connect through a proxy: socks5h://[user[:password]@]host[:port] (SOCKS5, as mosquitto),
    /// or http://[user[:password]@]host[:port] (an HTTP CONNECT proxy with Basic login: a sansmq
    /// extension, mosquitto has none); port 1080 by default; the proxy resolves the broker's name.
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,

    /// Without --proxy, take the proxy from the environment as curl does: https_proxy for TLS,
    /// http_proxy otherwise, then all_proxy; no_proxy lists the hosts to reach directly (a sansmq
    /// extension; never read without this flag).
    #[arg(long = "proxy-env", conflicts_with = "unix")]
    pub(crate) proxy_env: bool,

    /// Client id [default: sansmq-<pid>-<random>].
    #[arg(short = 'i', long = "id", conflicts_with = "id_prefix")]
    pub(crate) id: Option<String>,

    /// Client id prefix; the process id is appended.
    #[arg(short = 'I', long = "id-prefix")]
    pub(crate) id_prefix: Option<String>,

    /// User name.
    #[arg(short = 'u', long = "username")]
    pub(crate) username: Option<String>,

    /// Password (needs -u).
    #[arg(short = 'P', long = "pw", value_name = "PASSWORD")]
    pub(crate) password: Option<String>,

    /// Keep-alive interval in seconds, 0 to disable [default: 60, 90 with --apsaramq-instance].
    #[arg(short = 'k', long = "keepalive", value_name = "SECONDS")]
    pub(crate) keepalive: Option<u16>,

    /// Disable clean session: the broker keeps the session (needs -i).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub(crate) disable_clean_session: bool,

    /// MQTT version: mqttv5 (or 5), mqttv311 (or 311) or mqttv31 (or 31).
    #[arg(short = 'V', long = "protocol-version", value_name = "VERSION", value_parser = parse_protocol)]
    pub(crate) protocol: Option<Protocol>,

    /// Trust only the CA certificates in this PEM file (turns TLS on).
    #[arg(long, value_name = "FILE")]
    pub(crate) cafile: Option<PathBuf>,

    /// Trust only the CA certificates in the PEM files of this directory (turns TLS on).
    #[arg(long, value_name = "DIR", conflicts_with = "cafile")]
    pub(crate) capath: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS; needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,

    /// Password of an encrypted client key (PKCS#8 ENCRYPTED PRIVATE KEY); needs --key. A
    /// command line is visible to other users of the machine: prefer a key file only you can read.
    #[arg(long, value_name = "PASSWORD", requires = "key")]
    pub(crate) keypass: Option<String>,

    /// Offer this protocol by ALPN (e.g. x-amzn-mqtt-ca for AWS IoT on port 443); repeatable,
    /// in order of preference (turns TLS on).
    #[arg(long = "tls-alpn", visible_alias = "alpn", value_name = "PROTOCOL")]
    pub(crate) tls_alpn: Vec<String>,

    /// Trust the operating system's CA store (turns TLS on).
    #[arg(long)]
    pub(crate) tls_use_os_certs: bool,

    /// Refused: mosquitto's switch to skip the host name check. sansmq always checks that the
    /// broker's certificate names the host; use -h with a name the certificate holds.
    #[arg(long)]
    pub(crate) insecure: bool,

    /// The oldest TLS version to use: tlsv1.3 or tlsv1.2 [default: tlsv1.2]; tlsv1.1 means
    /// TLS 1.2 or newer (sansmq speaks no TLS 1.1).
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    pub(crate) tls_version: Option<TlsVersion>,

    /// The TLS 1.2 cipher suites to offer, OpenSSL names separated by ':'
    /// (ECDHE-RSA-AES128-GCM-SHA256...); TLS 1.3's suites are not affected, as in mosquitto.
    /// OpenSSL's keywords (HIGH, !aNULL) are refused: rustls's suites are named one by one.
    #[arg(long, value_name = "CIPHERS", value_parser = parse_ciphers)]
    pub(crate) ciphers: Option<CipherList>,

    /// The form of --key: pem (the only one; engine keys need OpenSSL, refused).
    #[arg(long, value_name = "FORM", requires = "key", value_parser = ["pem", "engine"])]
    pub(crate) keyform: Option<String>,

    /// Refused: OpenSSL engines (hardware keys) do not exist in rustls; use a PEM key, or
    /// the library's custom TLS configuration for a hardware key.
    #[arg(long, value_name = "ENGINE")]
    pub(crate) tls_engine: Option<String>,

    /// Refused, as --tls-engine.
    #[arg(long = "tls-engine-kpass-sha1", value_name = "SHA1")]
    pub(crate) tls_engine_kpass_sha1: Option<String>,

    /// Refused: TLS-PSK (pre-shared keys instead of certificates) is not offered by rustls; use
    /// certificates (--cafile, and --cert/--key for mutual TLS).
    #[arg(long, value_name = "HEX_KEY")]
    pub(crate) psk: Option<String>,

    /// Refused, as --psk.
    #[arg(long, value_name = "IDENTITY")]
    pub(crate) psk_identity: Option<String>,

    /// Topic of the will message.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) will_topic: Option<String>,

    /// Payload of the will message [default: empty].
    #[arg(long, value_name = "PAYLOAD", requires = "will_topic")]
    pub(crate) will_payload: Option<String>,

    /// QoS of the will message.
    #[arg(long, value_name = "QOS", requires = "will_topic", value_parser = parse_qos, default_value = "0")]
    pub(crate) will_qos: QoS,

    /// Retain the will message.
    #[arg(long, requires = "will_topic")]
    pub(crate) will_retain: bool,

    /// Most QoS 1/2 messages in flight, unacknowledged, at once [default: 20].
    #[arg(short = 'M', value_name = "MAX_INFLIGHT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) max_inflight: Option<u16>,

    /// Keep the session in this directory (a sansmq extension, as Paho's file persistence): the
    /// messages in flight and queued, QoS 2 state and subscriptions survive the process, and the
    /// next run with the same -i resumes them. Needs -c.
    #[arg(
        long = "session-dir",
        value_name = "DIR",
        requires = "disable_clean_session"
    )]
    pub(crate) session_dir: Option<PathBuf>,

    /// When --session-dir makes what it writes durable: "every" (fsync every change before
    /// acting on it: nothing is lost, QoS 2 stays exactly-once, even on a power loss), a number of
    /// milliseconds (fsync at most that often), or "never" (a killed process loses nothing, a
    /// machine that loses power may) [default: every].
    #[arg(long = "session-sync", value_name = "POLICY", requires = "session_dir", value_parser = parse_sync_policy)]
    pub(crate) session_sync: Option<SyncPolicy>,

    /// The largest packet taken from the broker or sent, in bytes [default: 268435460, MQTT's
    /// own limit, as mosquitto]. A bigger message ends the command with an error instead of a
    /// reconnect that would meet it again.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(2..=i64::from(MQTT_MAX_PACKET)))]
    pub(crate) max_packet_size: Option<u32>,

    /// Print no error messages; the exit code still says what happened.
    #[arg(long)]
    pub(crate) quiet: bool,

    /// Disable Nagle's algorithm. sansmq always does: accepted so that mosquitto's command lines
    /// run unchanged.
    #[arg(long)]
    pub(crate) nodelay: bool,

    /// Session expiry interval of MQTT 5 (0 to 4294967295, -1 or ∞ for none); with -V 5 and -c
    /// but no -x, the session never expires, as mosquitto's. MQTT 3.1.1 has none: checked, then
    /// ignored, as mosquitto does.
    #[arg(short = 'x', value_name = "SECONDS", value_parser = parse_session_expiry, allow_hyphen_values = true)]
    pub(crate) session_expiry: Option<u32>,

    /// An MQTT 5 property, as mosquitto takes it: -D COMMAND IDENTIFIER VALUE, or -D COMMAND
    /// user-property NAME VALUE; repeatable. COMMAND is connect, publish, subscribe,
    /// unsubscribe, disconnect or will; IDENTIFIER a property's name (content-type,
    /// correlation-data, message-expiry-interval, payload-format-indicator, response-topic,
    /// topic-alias, user-property, session-expiry-interval, receive-maximum,
    /// maximum-packet-size, topic-alias-maximum, request-problem-information,
    /// request-response-information, will-delay-interval, subscription-identifier,
    /// reason-string). -D makes the connection MQTT 5, unless a -V after it says otherwise
    /// (refused then: MQTT 3.1.1 has no properties).
    #[arg(short = 'D', long = "property", num_args = 3..=4, allow_negative_numbers = true,
          value_names = ["COMMAND", "IDENTIFIER", "VALUE"])]
    pub(crate) properties: Vec<String>,

    /// Each -D's words, in order (set from clap's occurrences: `properties` runs them together).
    #[arg(skip)]
    pub(crate) property_flags: Vec<Vec<String>>,

    /// Whether -V comes after the last -D on the command line (set from clap's indices).
    #[arg(skip)]
    pub(crate) version_after_property: bool,

    /// ApsaraMQ for MQTT instance id: log in with a Signature made from MQTT_AK_ENV and
    /// MQTT_SK_ENV (or with --token), and check ApsaraMQ's rules locally.
    #[arg(long = "apsaramq-instance", value_name = "INSTANCE_ID")]
    pub(crate) apsaramq_instance: Option<String>,

    /// ApsaraMQ Token login instead of a Signature: TYPE=TOKEN, TYPE one of R, W, RW;
    /// repeatable. The AccessKey id comes from MQTT_AK_ENV.
    #[arg(long = "token", value_name = "TYPE=TOKEN", requires = "apsaramq_instance", value_parser = parse_token)]
    pub(crate) tokens: Vec<Token>,
}

/// The largest MQTT packet: a fixed header of 5 bytes and 268,435,455 bytes of remaining length.
pub(crate) const MQTT_MAX_PACKET: u32 = 268_435_460;

/// `0`, `1` or `2`.
/// A `--ws-header` as given, `Name: value`; `Debug` shows the name only (the value may be a
/// token). Checked when the options are built, so that no parse error quotes it.
#[derive(Clone)]
pub(crate) struct WsHeader(pub(crate) String);

impl WsHeader {
    /// The name and the value, trimmed; `None` without a ':'.
    pub(crate) fn split(&self) -> Option<(&str, &str)> {
        self.0
            .split_once(':')
            .map(|(name, value)| (name.trim(), value.trim()))
    }
}

impl std::fmt::Debug for WsHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.split().map_or("(no ':')", |(name, _)| name);
        write!(f, "WsHeader({name:?}: ***)")
    }
}

fn ws_header(value: &str) -> Result<WsHeader, std::convert::Infallible> {
    Ok(WsHeader(value.to_owned()))
}

pub(crate) fn parse_qos(value: &str) -> Result<QoS, String> {
    value
        .parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("QoS {value:?} must be 0, 1 or 2"))
}

/// mosquitto's spellings of the protocol versions sansmq speaks.
fn parse_sync_policy(value: &str) -> Result<SyncPolicy, String> {
    match value {
        "every" => Ok(SyncPolicy::EveryRecord),
        "never" => Ok(SyncPolicy::Never),
        millis => match millis.parse::<u64>() {
            Ok(0) => Ok(SyncPolicy::EveryRecord),
            Ok(ms) => Ok(SyncPolicy::Every(Duration::from_millis(ms))),
            Err(_) => Err(format!(
                "{value:?}: give \"every\", \"never\" or a number of milliseconds"
            )),
        },
    }
}

fn parse_protocol(value: &str) -> Result<Protocol, String> {
    match value {
        "mqttv311" | "311" => Ok(Protocol::Mqtt311),
        "mqttv31" | "31" => Ok(Protocol::Mqtt31),
        "mqttv5" | "5" => Ok(Protocol::Mqtt5),
        other => Err(format!(
            "unknown protocol version {other:?}; use mqttv5, mqttv311 or mqttv31"
        )),
    }
}

/// `-x`: seconds, or `-1` / `∞` for a session that does not expire (as mosquitto: decimal,
/// `0x` hexadecimal or `0` octal).
fn parse_session_expiry(value: &str) -> Result<u32, String> {
    if value == "∞" || value == "-1" {
        return Ok(u32::MAX);
    }
    let (digits, radix) = match value {
        v if v.starts_with("0x") || v.starts_with("0X") => (&v[2..], 16),
        v if v.len() > 1 && v.starts_with('0') => (&v[1..], 8),
        v => (v, 10),
    };
    let number = i64::from_str_radix(digits, radix)
        .map_err(|_| format!("session expiry interval {value:?} is not a number"))?;
    u32::try_from(number).map_err(|_| {
        format!("session expiry interval {value:?} is out of range (0 to 4294967295, or -1)")
    })
}

/// `--tls-version`: mosquitto's names.
fn parse_tls_version(value: &str) -> Result<TlsVersion, String> {
    TlsVersion::parse(value).map_err(|e| e.to_string())
}

/// `--ciphers`: OpenSSL names of TLS 1.2 suites.
fn parse_ciphers(value: &str) -> Result<CipherList, String> {
    CipherList::parse(value).map_err(|e| e.to_string())
}

/// `TYPE=TOKEN`.
fn parse_token(value: &str) -> Result<Token, String> {
    let (kind, token) = value
        .split_once('=')
        .ok_or("expected TYPE=TOKEN, TYPE one of R, W, RW")?;
    let kind = match kind {
        "R" => TokenType::R,
        "W" => TokenType::W,
        "RW" => TokenType::RW,
        other => return Err(format!("token type {other:?} must be R, W or RW")),
    };
    Token::new(kind, token).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ws_header_shows_its_name_but_never_its_value() {
        let header = ws_header("Authorization: Bearer S3CRET").unwrap();
        assert_eq!(header.split(), Some(("Authorization", "Bearer S3CRET")));
        let shown = format!("{header:?}");
        assert!(
            shown.contains("Authorization") && !shown.contains("S3CRET"),
            "{shown}"
        );
    }

    #[test]
    fn qos_takes_0_to_2_only() {
        assert_eq!(parse_qos("2"), Ok(QoS::ExactlyOnce));
        assert!(parse_qos("3").unwrap_err().contains("0, 1 or 2"));
        assert!(parse_qos("one").is_err());
    }

    #[test]
    fn protocol_takes_mosquittos_spellings() {
        assert_eq!(parse_protocol("mqttv31"), Ok(Protocol::Mqtt31));
        assert_eq!(parse_protocol("311"), Ok(Protocol::Mqtt311));
        assert_eq!(parse_protocol("mqttv5"), Ok(Protocol::Mqtt5));
        assert_eq!(parse_protocol("5"), Ok(Protocol::Mqtt5));
        assert!(parse_protocol("6").unwrap_err().contains("mqttv5"));
    }

    #[test]
    fn session_expiry_takes_mosquittos_forms() {
        assert_eq!(parse_session_expiry("3600"), Ok(3600));
        assert_eq!(parse_session_expiry("0x10"), Ok(16));
        assert_eq!(parse_session_expiry("010"), Ok(8));
        assert_eq!(parse_session_expiry("0"), Ok(0));
        assert_eq!(parse_session_expiry("-1"), Ok(u32::MAX));
        assert_eq!(parse_session_expiry("∞"), Ok(u32::MAX));
        assert!(
            parse_session_expiry("-2")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_session_expiry("4294967296")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_session_expiry("1h")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn token_is_type_equals_value() {
        let token = parse_token("RW=abc").unwrap();
        assert_eq!(token.kind(), TokenType::RW);
        assert_eq!(token.value().expose(), "abc");
        assert!(parse_token("X=abc").unwrap_err().contains("R, W or RW"));
        assert!(parse_token("abc").unwrap_err().contains("TYPE=TOKEN"));
        // The value must not break the password's `|` separator.
        assert!(parse_token("R=a|b").is_err());
    }
}
