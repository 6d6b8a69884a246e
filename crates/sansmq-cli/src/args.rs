//! The connection flags `pub` and `sub` share, named and meaning as in mosquitto_pub/sub, plus the
//! ApsaraMQ ones, and the parsers for their values.

use std::path::PathBuf;

use clap::{ArgAction, Args};
use sansmq::packet::{Protocol, QoS};
use sansmq_apsaramq::{Token, TokenType};

/// Where to connect and as whom.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Print help (`-h` is the host, as in mosquitto).
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,

    /// Broker host [default: localhost, or the instance's endpoint with --apsaramq-instance].
    #[arg(short = 'h', long)]
    pub(crate) host: Option<String>,

    /// Broker port [default: 1883, 8883 with TLS].
    #[arg(short = 'p', long)]
    pub(crate) port: Option<u16>,

    /// mqtt(s)://[user[:password]@]host[:port]/topic: host, port, login and topic in one.
    #[arg(short = 'L', long = "url", value_name = "URL", conflicts_with_all = ["host", "port"])]
    pub(crate) url: Option<String>,

    /// Connect to the broker's Unix domain socket at PATH instead of over TCP (replaces -h/-p).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port", "url", "proxy", "bind_address"])]
    pub(crate) unix: Option<PathBuf>,

    /// Bind the outgoing socket to this local address (the interface connections leave from).
    #[arg(short = 'A', value_name = "ADDRESS")]
    pub(crate) bind_address: Option<String>,

    /// Connect through a SOCKS5 proxy: socks5h://[user[:password]@]host[:port] (port 1080 by
    /// default); the proxy resolves the broker's name.
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,

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

    /// MQTT version: mqttv311 (or 311) or mqttv31 (or 31).
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

    /// ApsaraMQ for MQTT instance id: log in with a Signature made from MQTT_AK_ENV and
    /// MQTT_SK_ENV (or with --token), and check ApsaraMQ's rules locally.
    #[arg(long = "apsaramq-instance", value_name = "INSTANCE_ID")]
    pub(crate) apsaramq_instance: Option<String>,

    /// ApsaraMQ Token login instead of a Signature: TYPE=TOKEN, TYPE one of R, W, RW;
    /// repeatable. The AccessKey id comes from MQTT_AK_ENV.
    #[arg(long = "token", value_name = "TYPE=TOKEN", requires = "apsaramq_instance", value_parser = parse_token)]
    pub(crate) tokens: Vec<Token>,
}

/// `0`, `1` or `2`.
pub(crate) fn parse_qos(value: &str) -> Result<QoS, String> {
    value
        .parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("QoS {value:?} must be 0, 1 or 2"))
}

/// mosquitto's spellings of the protocol versions sansmq speaks.
fn parse_protocol(value: &str) -> Result<Protocol, String> {
    match value {
        "mqttv311" | "311" => Ok(Protocol::Mqtt311),
        "mqttv31" | "31" => Ok(Protocol::Mqtt31),
        "mqttv5" | "5" => Err("MQTT 5 is not supported; use mqttv311 or mqttv31".into()),
        other => Err(format!(
            "unknown protocol version {other:?}; use mqttv311 or mqttv31"
        )),
    }
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
    fn qos_takes_0_to_2_only() {
        assert_eq!(parse_qos("2"), Ok(QoS::ExactlyOnce));
        assert!(parse_qos("3").unwrap_err().contains("0, 1 or 2"));
        assert!(parse_qos("one").is_err());
    }

    #[test]
    fn protocol_takes_mosquittos_spellings_and_refuses_v5() {
        assert_eq!(parse_protocol("mqttv31"), Ok(Protocol::Mqtt31));
        assert_eq!(parse_protocol("311"), Ok(Protocol::Mqtt311));
        assert!(
            parse_protocol("mqttv5")
                .unwrap_err()
                .contains("not supported")
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
