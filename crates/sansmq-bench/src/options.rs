//! [`Options`]: what a bench does, named after emqtt-bench's flags.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sansmq::packet::{Protocol, QoS};

use crate::template::Template;

/// Which kind of bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Connect the clients and keep them connected.
    Conn,
    /// Connect, then publish every `publish_interval` per client.
    Pub,
    /// Connect, subscribe, and measure what arrives.
    Sub,
    /// Each client subscribes to its own topic and publishes to it: latency within one process.
    PubSub,
}

impl Mode {
    /// Its name on the command line and in client ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Conn => "conn",
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::PubSub => "pubsub",
        }
    }

    /// Whether its clients publish.
    pub fn publishes(self) -> bool {
        matches!(self, Self::Pub | Self::PubSub)
    }

    /// Whether its clients subscribe.
    pub fn subscribes(self) -> bool {
        matches!(self, Self::Sub | Self::PubSub)
    }
}

/// A password, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// ApsaraMQ for MQTT logins: client `n` is `<group_id>@@@<prefix><n>` and signs its own
/// password with `auth` (Signature mode: HMAC-SHA1 of its client id).
#[derive(Debug, Clone)]
pub struct ApsaraMq {
    /// The Group ID (`GID_...`).
    pub group_id: String,
    /// The login mode and its keys.
    pub auth: sansmq_apsaramq::AuthMode,
}

/// What a bench does. [`Options::new`] gives emqtt-bench's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// conn, pub, sub or pubsub.
    pub mode: Mode,
    /// Broker host (`-h`).
    pub host: String,
    /// Broker port (`-p`).
    pub port: u16,
    /// Clients (`-c`).
    pub count: u32,
    /// The first client's sequence number `%i` (`-n`).
    pub start_number: u32,
    /// Between two connects (`-i`); zero connects them all at once.
    pub connect_interval: Duration,
    /// Between two messages of one client (`-I`); zero publishes as fast as the inflight window
    /// lets the messages go.
    pub publish_interval: Duration,
    /// The topic to publish to (pub, pubsub) or subscribe to (sub) (`-t`).
    pub topic: Option<Template>,
    /// Payload size, header included (`-s`).
    pub size: usize,
    /// Payload body after the header (`-m`).
    pub message: Option<Template>,
    /// QoS of messages and subscriptions (`-q`).
    pub qos: QoS,
    /// Messages in all (pub: published; sub: received) after which the bench ends (`-L`).
    pub limit: Option<u64>,
    /// Client id prefix (`--prefix`).
    pub prefix: String,
    /// Client ids `<prefix><n>` instead of `<prefix>_bench_<mode>_<n>_<run>` (`--shortids`).
    pub short_ids: bool,
    /// Keep-alive (`-k`).
    pub keep_alive: Duration,
    /// Clean session / Clean Start (`-C`).
    pub clean: bool,
    /// User name (`-u`).
    pub username: Option<String>,
    /// Password (`-P`).
    pub password: Option<Secret>,
    /// QoS 1/2 messages a client may have unacknowledged (`--inflight`).
    pub inflight: u16,
    /// A random wait from this range between a client's CONNACK and its first message
    /// (`--min-random-wait`, `--max-random-wait`).
    pub random_wait: (Duration, Duration),
    /// Event loops (`-j`), each on its own thread.
    pub threads: usize,
    /// MQTT version (`-V`).
    pub protocol: Protocol,
    /// MQTT 5 Session Expiry Interval in seconds (`-x`).
    pub session_expiry: Option<u32>,
    /// Source addresses, used round-robin (`--ifaddr`).
    pub ifaddrs: Vec<IpAddr>,
    /// Reconnect a lost connection (after 1 s, doubling up to 30 s).
    pub reconnect: bool,
    /// End the bench after this long.
    pub duration: Option<Duration>,
    /// ApsaraMQ logins instead of `username`/`password`.
    pub apsaramq: Option<ApsaraMq>,
    /// TLS (`--ssl`), verifying the server's certificate for `host`; needs the `rustls` feature.
    pub tls: Option<sansmq_driver::TlsOptions>,
    /// MQTT over WebSocket (`--ws`): the path of the upgrade request (`/mqtt` by default, as
    /// emqtt-bench's); under TLS when `tls` is set too (wss).
    pub websocket: Option<String>,
}

impl Options {
    /// emqtt-bench's defaults: 200 clients, 10 ms between connects, 1 s between messages,
    /// 256-byte payloads, QoS 0, keep-alive 300 s, clean sessions, one message in flight.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            host: "localhost".to_owned(),
            port: 1883,
            count: 200,
            start_number: 0,
            connect_interval: Duration::from_millis(10),
            publish_interval: Duration::from_secs(1),
            topic: None,
            size: 256,
            message: None,
            qos: QoS::AtMostOnce,
            limit: None,
            prefix: "sansmq".to_owned(),
            short_ids: false,
            keep_alive: Duration::from_secs(300),
            clean: true,
            username: None,
            password: None,
            inflight: 1,
            random_wait: (Duration::ZERO, Duration::ZERO),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            protocol: Protocol::Mqtt311,
            session_expiry: None,
            ifaddrs: Vec::new(),
            reconnect: false,
            duration: None,
            apsaramq: None,
            tls: None,
            websocket: None,
        }
    }

    /// Checks that the options fit together.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let fail = |m: &str| Err(crate::Error::Options(m.to_owned()));
        if (self.mode.publishes() || self.mode.subscribes()) && self.topic.is_none() {
            return fail("-t/--topic is required for pub, sub and pubsub");
        }
        if self.session_expiry.is_some() && self.protocol != Protocol::Mqtt5 {
            return fail("-x/--session-expiry needs MQTT 5 (-V 5)");
        }
        if self.password.is_some() && self.username.is_none() {
            return fail("-P/--password needs -u/--username (MQTT-3.1.2-22)");
        }
        if self.count == 0 {
            return fail("-c/--count must be at least 1");
        }
        if self.inflight == 0 {
            return fail("--inflight must be at least 1");
        }
        if self.random_wait.0 > self.random_wait.1 {
            return fail("--min-random-wait is above --max-random-wait");
        }
        if self.threads == 0 {
            return fail("-j must be at least 1");
        }
        if self.apsaramq.is_some() && (self.username.is_some() || self.password.is_some()) {
            return fail("ApsaraMQ logins make their own user names and passwords: drop -u/-P");
        }
        if self.size > sansmq::packet::MAX_REMAINING_LENGTH - 64 * 1024 {
            return fail("-s/--size is beyond what an MQTT packet can carry (256 MiB)");
        }
        if self
            .websocket
            .as_ref()
            .is_some_and(|path| !path.starts_with('/'))
        {
            return fail("--ws-path must start with '/'");
        }
        if self.limit == Some(0) {
            return fail("-L/--limit must be at least 1");
        }
        Ok(())
    }

    /// The addresses to connect to, resolved once.
    pub(crate) fn resolve(&self) -> Result<Vec<SocketAddr>, crate::Error> {
        use std::net::ToSocketAddrs as _;
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|source| crate::Error::Resolve {
                host: self.host.clone(),
                source,
            })?
            .collect();
        // With source addresses, only the broker's addresses of their family can be reached.
        let usable: Vec<SocketAddr> = addresses
            .iter()
            .copied()
            .filter(|a| self.ifaddrs.iter().all(|i| i.is_ipv4() == a.is_ipv4()))
            .collect();
        if usable.is_empty() {
            return Err(crate::Error::Resolve {
                host: self.host.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no address (of the --ifaddr family)",
                ),
            });
        }
        Ok(usable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        let mut o = Options::new(Mode::Conn);
        o.username = Some("u".into());
        o.password = Some(Secret("hunter2".into()));
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn options_that_do_not_fit_are_refused_by_name() {
        let mut o = Options::new(Mode::Pub);
        assert!(o.validate().unwrap_err().to_string().contains("-t/--topic"));
        o.topic = Some(Template::parse("t").unwrap());
        o.validate().unwrap();
        o.session_expiry = Some(60);
        assert!(o.validate().unwrap_err().to_string().contains("-V 5"));
        o.protocol = Protocol::Mqtt5;
        o.validate().unwrap();
        o.password = Some(Secret("p".into()));
        assert!(o.validate().unwrap_err().to_string().contains("-u"));
        assert!(Options::new(Mode::Conn).validate().is_ok());
    }

    #[test]
    fn loopback_resolves() {
        let mut o = Options::new(Mode::Conn);
        o.host = "127.0.0.1".into();
        assert_eq!(o.resolve().unwrap(), ["127.0.0.1:1883".parse().unwrap()]);
        o.ifaddrs = vec!["::1".parse().unwrap()];
        assert!(o.resolve().is_err());
    }
}
