//! [`ConnectOptions`]: what Paho calls `MqttConnectOptions`, with durations as durations.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::QoS;

use sansmq::packet::{LastWill, Password, SubscribeFilter};
use sansmq::{MqttString, TopicFilter, TopicName};

use crate::rules::{BrokerRules, OutgoingPublish};
use crate::session_store::SessionStoreOptions;
use crate::tls::ClientConfig;
use crate::{Error, ProxyOptions, ServerUri, TlsOptions};

/// A user name and password for CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password; any bytes. Never shown by `Debug`.
    pub password: Option<Bytes>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where credentials come from: called before **every** connect and reconnect, so signatures and
/// tokens can change (ApsaraMQ signs the client id; tokens are refreshed).
pub trait CredentialsProvider: Send + Sync {
    /// The credentials for the next CONNECT; an error stops this connection attempt.
    fn credentials(&self) -> Result<Credentials, String>;
}

impl<F> CredentialsProvider for F
where
    F: Fn() -> Result<Credentials, String> + Send + Sync,
{
    fn credentials(&self) -> Result<Credentials, String> {
        self()
    }
}

/// The message the broker publishes if the client vanishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic name.
    pub topic: String,
    /// Message.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retained.
    pub retain: bool,
    /// MQTT 5 will properties: Will Delay Interval, Message Expiry Interval, Content Type,
    /// Response Topic, Correlation Data, User Properties. Must stay empty on an MQTT 3.1.1
    /// connection (connecting fails otherwise).
    pub properties: sansmq::packet::Properties,
}

/// What to do about subscriptions after a reconnect.
///
/// Subscribing in `connect_complete` on every connection (Paho's pattern) works with any policy:
/// a subscribe for filters the client is restoring joins that SUBSCRIBE instead of sending its own
/// (see [`resubscription`](crate::resubscription)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResubscribePolicy {
    /// Subscribe again when the broker lost the session (`session_present = 0`).
    #[default]
    WhenSessionLost,
    /// Subscribe again after every reconnect.
    Always,
    /// Never; do it yourself in `connect_complete`.
    Never,
}

impl ResubscribePolicy {
    /// Whether to subscribe again after a reconnect whose CONNACK said `session_present`.
    pub fn resubscribes(self, session_present: bool) -> bool {
        match self {
            Self::Always => true,
            Self::WhenSessionLost => !session_present,
            Self::Never => false,
        }
    }
}

/// Connection settings. Start from [`ConnectOptions::new`] and chain the setters.
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) server_uris: Vec<ServerUri>,
    pub(crate) client_id: String,
    pub(crate) clean_session: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) credentials: Option<Arc<dyn CredentialsProvider>>,
    /// Boxed, as `mqtt5` and `proxy` are: most clients have none, and every client keeps its
    /// options for its whole life.
    pub(crate) will: Option<Box<Will>>,
    pub(crate) time_to_wait: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_inflight: u16,
    pub(crate) offline_queue: usize,
    pub(crate) max_packet_size: usize,
    pub(crate) automatic_reconnect: bool,
    pub(crate) reconnect_delay: (Duration, Duration),
    pub(crate) resubscribe: ResubscribePolicy,
    pub(crate) tls: TlsOptions,
    pub(crate) protocol: sansmq::packet::Protocol,
    pub(crate) mqtt5: Option<Box<crate::Mqtt5Options>>,
    pub(crate) rules: Option<Arc<dyn BrokerRules>>,
    pub(crate) bind_address: Option<IpAddr>,
    pub(crate) proxy: Option<Box<ProxyOptions>>,
    pub(crate) websocket_headers: Vec<(String, String)>,
    pub(crate) session_store: Option<SessionStoreOptions>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("server_uris", &self.server_uris)
            .field("client_id", &self.client_id)
            .field("clean_session", &self.clean_session)
            .field("keep_alive", &self.keep_alive)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<provider>"),
            )
            .field("will", &self.will)
            .field("time_to_wait", &self.time_to_wait)
            .field("connect_timeout", &self.connect_timeout)
            .field("automatic_reconnect", &self.automatic_reconnect)
            .field("broker_rules", &self.rules.as_ref().map(|_| "<rules>"))
            .field("bind_address", &self.bind_address)
            .field("proxy", &self.proxy)
            .field(
                "websocket_headers",
                // Values may carry a token (brokers that authenticate the upgrade request).
                &self
                    .websocket_headers
                    .iter()
                    .map(|(name, _)| format!("{name}: ***"))
                    .collect::<Vec<_>>(),
            )
            .field("session_store", &self.session_store)
            .field("protocol", &self.protocol)
            .field("mqtt5", &self.mqtt5)
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Options for one broker (`tcp://host:1883`, `ssl://host:8883`, `mqtt://`, `mqtts://`,
    /// `unix:///path/to/socket`) and a client id. Defaults: clean session, keep-alive 60 s,
    /// time-to-wait 30 s, connect timeout 30 s, window 20, offline queue 1,000 messages, packets
    /// up to 1 MiB both ways, no automatic reconnect (delays 1 s to 60 s with jitter once
    /// enabled), re-subscribe when the session was lost, the default TLS roots
    /// ([`TrustRoots`](crate::TrustRoots): Mozilla's with the default features), no bind
    /// address, no proxy.
    pub fn new(server_uri: &str, client_id: impl Into<String>) -> Result<Self, Error> {
        Ok(Self {
            server_uris: vec![server_uri.parse()?],
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: Duration::from_secs(60),
            credentials: None,
            will: None,
            time_to_wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            max_inflight: sansmq::client::DEFAULT_MAX_INFLIGHT,
            offline_queue: 1000,
            max_packet_size: sansmq::client::DEFAULT_MAX_PACKET_SIZE,
            automatic_reconnect: false,
            reconnect_delay: (Duration::from_secs(1), Duration::from_secs(60)),
            resubscribe: ResubscribePolicy::WhenSessionLost,
            tls: TlsOptions::default(),
            protocol: sansmq::packet::Protocol::Mqtt311,
            mqtt5: None,
            rules: None,
            bind_address: None,
            proxy: None,
            websocket_headers: Vec::new(),
            session_store: None,
        })
    }

    /// Several brokers, tried in order on every (re)connect, as Paho's `serverURIs`.
    pub fn server_uris(mut self, uris: &[&str]) -> Result<Self, Error> {
        let parsed = uris
            .iter()
            .map(|u| u.parse())
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err(Error::InvalidUri {
                uri: String::new(),
                reason: "at least one server URI is needed".into(),
            });
        }
        self.server_uris = parsed;
        Ok(self)
    }

    /// Keep the session (subscriptions, queued QoS 1/2 messages) across connections: `false`.
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// Keep-alive interval; zero disables. PINGREQ goes out after an interval without sending,
    /// and PINGRESP is due half an interval later, so a dead link is noticed within 1.5x the
    /// interval (`connection_lost` with `KeepAliveTimeout`).
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// A fixed user name and password.
    pub fn credentials(self, username: impl Into<String>, password: impl Into<Bytes>) -> Self {
        let credentials = Credentials {
            username: username.into(),
            password: Some(password.into()),
        };
        self.credentials_provider(move || Ok(credentials.clone()))
    }

    /// Credentials computed before every connect and reconnect.
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// The will message.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(Box::new(will));
        self
    }

    /// How long blocking calls (`subscribe`, `unsubscribe`, token waits without a timeout) wait for
    /// the broker; Paho's `setTimeToWait`.
    pub fn time_to_wait(mut self, wait: Duration) -> Self {
        self.time_to_wait = wait;
        self
    }

    /// How long `connect` waits for TCP, TLS and CONNACK together.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The window of unacknowledged QoS 1/2 messages (Paho's `maxInflight`).
    pub fn max_inflight(mut self, window: u16) -> Self {
        self.max_inflight = window;
        self
    }

    /// Messages held while disconnected or behind the window; past it `publish` fails.
    pub fn offline_queue(mut self, messages: usize) -> Self {
        self.offline_queue = messages;
        self
    }

    /// Keeps the session in a [`FileStore`](sansmq_store::FileStore) under `dir`, in a directory of
    /// its own per client identifier, as Paho's file persistence does: messages `publish`
    /// accepted, QoS 2 exchanges, the offline queue and the granted subscriptions survive the
    /// process, and the next client made with the same identifier resumes them at its first
    /// connect (PUBLISH again with DUP=1, PUBREL again).
    ///
    /// `policy` says what survives a power loss too: with
    /// [`SyncPolicy::EveryRecord`](sansmq_store::SyncPolicy::EveryRecord), `publish` returns only
    /// once its message is on disk, and QoS 2 stays exactly-once across a crash of the machine.
    ///
    /// The client opens the store when it is made, and fails to be made if it cannot: a session
    /// held by another client (of this process or another), a log that is damaged. A store that
    /// fails while the client runs (a full disk) stops the client: `publish` fails, and the
    /// connection is closed with [`Error::SessionStore`].
    ///
    /// Use it with `clean_session(false)`: with a clean session the broker forgets what it held
    /// at every connect, and a resumed client can only send its own messages again.
    ///
    /// The store is written by the thread or task that runs the client: an async client's task
    /// blocks on the write (and under `EveryRecord` on the `fsync`) before it goes on, as a
    /// blocking client's caller does. Give a tokio client a multi-thread runtime, or a batched
    /// policy, when that matters.
    pub fn session_dir(
        mut self,
        dir: impl Into<PathBuf>,
        policy: sansmq_store::SyncPolicy,
    ) -> Self {
        self.session_store = Some(SessionStoreOptions::dir(dir.into(), policy));
        self
    }

    /// Keeps the session in the store `open` returns for the client identifier: a database, a
    /// key-value store (see [`SessionStore`](sansmq_store::SessionStore) for what it must do).
    /// Otherwise as [`session_dir`](Self::session_dir).
    pub fn session_store<F>(mut self, open: F) -> Self
    where
        F: Fn(&str) -> Result<Box<dyn sansmq_store::SessionStore + Send>, sansmq_store::StoreError>
            + Send
            + Sync
            + 'static,
    {
        self.session_store = Some(SessionStoreOptions::custom(open));
        self
    }

    /// Whether the session store keeps the offline queue too (default: yes): messages `publish`
    /// accepted while disconnected or behind the window. Without, such a message is stored only
    /// once it goes out, so one store write is saved per queued message, and the messages
    /// waiting when the process ends are lost with it (Paho's `MqttClientPersistence` keeps only
    /// messages sent). No effect without a store.
    pub fn persist_offline_queue(mut self, persist: bool) -> Self {
        if let Some(store) = &mut self.session_store {
            store.queue = persist;
        }
        self
    }

    /// The session store, if one was set.
    pub fn session_store_options(&self) -> Option<&SessionStoreOptions> {
        self.session_store.as_ref()
    }

    /// The largest packet, both ways: accepted from the broker, and accepted by `publish` (a
    /// bigger message fails up front with `PacketTooLarge`). Default 1 MiB, headers included, so a
    /// payload of exactly 1 MiB needs a little more.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Reconnect by itself after a lost connection, waiting between `min` and `max` (doubling, with
    /// jitter) between attempts.
    pub fn automatic_reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.automatic_reconnect = true;
        self.reconnect_delay = (min, max.max(min));
        self
    }

    /// Subscriptions after a reconnect.
    pub fn resubscribe(mut self, policy: ResubscribePolicy) -> Self {
        self.resubscribe = policy;
        self
    }

    /// TLS settings for `ssl://` URIs.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Binds the outgoing socket to this local address before connecting (mosquitto's `-A`): the
    /// connection leaves from that interface. Only the broker's addresses of the same family
    /// (IPv4 or IPv6) are tried. With a [`proxy`](Self::proxy), it is the socket to the proxy
    /// that is bound. Not for `unix://` URIs.
    pub fn bind_address(mut self, local: IpAddr) -> Self {
        self.bind_address = Some(local);
        self
    }

    /// Reaches the broker through this proxy (mosquitto's `--proxy`): the client connects to the
    /// proxy, which connects to the broker's host name (resolving it itself), and TLS and MQTT run
    /// over that connection with the broker's host name as the TLS server name. Not for `unix://`
    /// URIs.
    pub fn proxy(mut self, proxy: ProxyOptions) -> Self {
        self.proxy = Some(Box::new(proxy));
        self
    }

    /// Opts in to the proxy the environment names (`https_proxy` for TLS URIs, `http_proxy` for
    /// plain ones, `all_proxy`, with `no_proxy` exemptions; see [`ProxyOptions::from_env`]) for
    /// the first server URI; no proxy when none is named. A proxy set with
    /// [`proxy`](Self::proxy) stays. Never read unless called.
    pub fn proxy_from_env(self) -> Result<Self, Error> {
        self.proxy_from_env_with(|name| std::env::var(name).ok())
    }

    /// [`proxy_from_env`](Self::proxy_from_env) with the variables from `lookup`.
    pub fn proxy_from_env_with(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        if self.proxy.is_none() {
            if let Some(uri) = self.server_uris.first() {
                self.proxy = ProxyOptions::from_env_with(uri, lookup)?.map(Box::new);
            }
        }
        Ok(self)
    }

    /// Adds a header to the WebSocket upgrade request of `ws://` and `wss://` URIs (some brokers
    /// authenticate it: `Authorization`, a token, a cookie). `Debug` shows the name, never the
    /// value. Headers the WebSocket handshake itself sets (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) are refused by the driver when it connects. tungstenite logs the whole
    /// upgrade request at trace level (target `tungstenite::handshake::client`, `log` crate): keep
    /// that target at debug or above where logs are kept.
    pub fn websocket_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.websocket_headers.push((name.into(), value.into()));
        self
    }

    /// The extra headers of the WebSocket upgrade request, in the order given.
    pub fn websocket_headers(&self) -> &[(String, String)] {
        &self.websocket_headers
    }

    /// Checks that the transport options fit together: a Unix socket takes neither a bind
    /// address nor a proxy. [`Supervisor::new`](crate::Supervisor::new) calls it.
    pub fn check_transport(&self) -> Result<(), Error> {
        let Some(unix) = self
            .server_uris
            .iter()
            .find(|uri| uri.unix_socket.is_some())
        else {
            return Ok(());
        };
        let clash = match (&self.bind_address, &self.proxy) {
            (Some(_), _) => "ConnectOptions::bind_address",
            (None, Some(_)) => "ConnectOptions::proxy",
            (None, None) => return Ok(()),
        };
        Err(Error::Unsupported {
            option: clash,
            reason: format!(
                "{unix} is a Unix socket, which is neither bound to an IP address nor proxied"
            ),
        })
    }

    /// The first `ws://` or `wss://` server URI, if any: a driver without a WebSocket transport
    /// refuses it rather than speak raw MQTT to a WebSocket endpoint.
    pub fn websocket_uri(&self) -> Option<&ServerUri> {
        self.server_uris
            .iter()
            .find(|uri| uri.websocket_path.is_some())
    }

    /// The local address the socket is bound to, if any.
    pub fn local_address(&self) -> Option<IpAddr> {
        self.bind_address
    }

    /// The proxy, if any.
    pub fn proxy_options(&self) -> Option<&ProxyOptions> {
        self.proxy.as_deref()
    }

    /// Speak MQTT 3.1 (`MQIsdp`) instead of 3.1.1.
    pub fn mqtt_v31(mut self) -> Self {
        self.protocol = sansmq::packet::Protocol::Mqtt31;
        self.mqtt5 = None;
        self
    }

    /// Speak MQTT 5.0 instead of 3.1.1, with `options` for what only MQTT 5 has (session expiry,
    /// Receive Maximum, Topic Aliases, User Properties). MQTT 3.1.1 stays the default: every
    /// broker speaks it, and ApsaraMQ's Basic and Standard instances speak nothing newer.
    pub fn mqtt5(mut self, options: crate::Mqtt5Options) -> Self {
        self.protocol = sansmq::packet::Protocol::Mqtt5;
        self.mqtt5 = Some(Box::new(options));
        self
    }

    /// The MQTT 5.0 settings, when the connection speaks MQTT 5.0.
    pub fn mqtt5_options(&self) -> Option<&crate::Mqtt5Options> {
        self.mqtt5.as_deref()
    }

    /// A broker's own limits (ApsaraMQ: no will, no retain, 64 KiB payloads...), checked before
    /// anything is sent: a breach fails the call with [`Error::NotAllowed`].
    pub fn broker_rules(mut self, rules: impl BrokerRules + 'static) -> Self {
        self.rules = Some(Arc::new(rules));
        self
    }

    /// Checks the will and session settings against the broker rules, if any.
    pub fn check_connect_rules(&self) -> Result<(), Error> {
        match &self.rules {
            Some(rules) => rules
                .check_connect(self.will.as_deref(), self.session_ends_with_connection())
                .map_err(Error::NotAllowed),
            None => Ok(()),
        }
    }

    /// Checks a PUBLISH against the broker rules, if any.
    ///
    /// `topic` is read only when there are rules: a [`TopicName`](sansmq::TopicName) is not
    /// turned into a `str` (a UTF-8 check) on every publish without them.
    pub fn check_publish_rules(
        &self,
        topic: &(impl AsRef<str> + ?Sized),
        payload_len: usize,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        match &self.rules {
            Some(rules) => rules
                .check_publish(&OutgoingPublish {
                    topic: topic.as_ref(),
                    payload_len,
                    qos,
                    retain,
                    clean_session: self.session_ends_with_connection(),
                })
                .map_err(Error::NotAllowed),
            None => Ok(()),
        }
    }

    /// Checks a SUBSCRIBE's filters against the broker rules, if any.
    pub fn check_subscribe_rules<'a>(
        &self,
        filters: impl IntoIterator<Item = (&'a str, QoS)>,
    ) -> Result<(), Error> {
        let Some(rules) = &self.rules else {
            return Ok(());
        };
        for (filter, qos) in filters {
            rules
                .check_subscribe(filter, qos, self.session_ends_with_connection())
                .map_err(Error::NotAllowed)?;
        }
        Ok(())
    }

    /// A SUBSCRIBE's filters, checked against MQTT's rules (`+` and `#` placement) and the broker
    /// rules; what a client's `subscribe` hands to the core.
    pub fn subscribe_filters(
        &self,
        filters: &[(&str, QoS)],
    ) -> Result<Vec<SubscribeFilter>, Error> {
        self.check_subscribe_rules(filters.iter().copied())?;
        filters
            .iter()
            .map(|&(filter, qos)| Ok(SubscribeFilter::new(TopicFilter::try_from(filter)?, qos)))
            .collect()
    }

    /// The configured client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The brokers, in the order they are tried.
    pub fn servers(&self) -> &[ServerUri] {
        &self.server_uris
    }

    /// Whether the session is clean.
    pub fn is_clean_session(&self) -> bool {
        self.clean_session
    }

    /// Whether the session ends with the connection, as the broker rules see it: a clean session
    /// in MQTT 3.1.1; in MQTT 5.0 a Session Expiry Interval of 0, whatever Clean Start says
    /// (MQTT 5.0 section 3.1.2.11.2), and with none set, a clean session (see
    /// [`Mqtt5Options::session_expiry`](crate::Mqtt5Options::session_expiry)).
    pub fn session_ends_with_connection(&self) -> bool {
        match self
            .mqtt5
            .as_ref()
            .and_then(|v5| v5.session_expiry_interval())
        {
            Some(expiry) => expiry == 0,
            None => self.clean_session,
        }
    }

    /// The keep-alive interval.
    pub fn keep_alive_interval(&self) -> Duration {
        self.keep_alive
    }

    /// The will message, if any.
    pub fn will_message(&self) -> Option<&Will> {
        self.will.as_deref()
    }

    /// How long blocking calls wait for the broker.
    pub fn time_to_wait_limit(&self) -> Duration {
        self.time_to_wait
    }

    /// How long a connection attempt may take.
    pub fn connect_timeout_limit(&self) -> Duration {
        self.connect_timeout
    }

    /// The largest packet, both ways.
    pub fn max_packet_size_limit(&self) -> usize {
        self.max_packet_size
    }

    /// The reconnect delays `(min, max)` when automatic reconnect is on, `None` when it is off.
    pub fn reconnect_delays(&self) -> Option<(Duration, Duration)> {
        self.automatic_reconnect.then_some(self.reconnect_delay)
    }

    /// The re-subscribe policy.
    pub fn resubscribe_policy(&self) -> ResubscribePolicy {
        self.resubscribe
    }

    /// The TLS settings.
    pub fn tls_options(&self) -> &TlsOptions {
        &self.tls
    }

    /// The MQTT version spoken.
    pub fn protocol(&self) -> sansmq::packet::Protocol {
        self.protocol
    }

    /// Whether any server URI asks for TLS.
    pub fn uses_tls(&self) -> bool {
        self.server_uris.iter().any(|uri| uri.tls)
    }

    /// The TLS configuration of the server URIs that ask for TLS (`ssl://`, `mqtts://`,
    /// `wss://`), built from the [`tls_options`](Self::tls_options) (`tls::client_config`, rustls
    /// with ring); `None` when no URI does. A client calls it as it is made, so that what cannot
    /// work fails before anything is opened: a CA file that does not load, or, with
    /// [`Error::FeatureNotBuilt`], TLS in a build without the `rustls` feature (naming the URI) or
    /// roots whose feature the build leaves out.
    pub fn tls_config(&self) -> Result<Option<Arc<ClientConfig>>, Error> {
        match self.server_uris.iter().find(|uri| uri.tls) {
            None => Ok(None),
            #[cfg(feature = "rustls")]
            Some(_) => crate::tls::client_config(&self.tls).map(Some),
            #[cfg(not(feature = "rustls"))]
            Some(uri) => Err(Error::FeatureNotBuilt {
                what: format!("TLS to {uri}"),
                feature: "rustls",
            }),
        }
    }

    /// The core's configuration for these options, without credentials (see
    /// [`apply_credentials`](Self::apply_credentials), called before every connect). Acks are
    /// manual: a driver acknowledges a message once the application has it.
    pub fn core_config(&self) -> Result<sansmq::Config, Error> {
        let client_id =
            MqttString::try_from(self.client_id.as_str()).map_err(|e| Error::InvalidString {
                field: "client id",
                reason: e.to_string(),
            })?;
        let mut config = sansmq::Config::new(client_id);
        config.clean_session = self.clean_session;
        config.keep_alive = self.keep_alive;
        // PINGRESP is due half an interval after PINGREQ, which goes out at most one interval after
        // the last packet sent: a dead link is noticed within 1.5x the keep-alive, as a broker
        // notices a dead client (MQTT-3.1.2-24). The core's fixed 10 s default made it K + 10 s.
        config.ping_timeout = self.keep_alive / 2;
        config.protocol = self.protocol;
        if let Some(mqtt5) = &self.mqtt5 {
            mqtt5.apply(&mut config);
        }
        config.max_inflight = self.max_inflight;
        config.max_queued = self.offline_queue;
        config.max_packet_size = self.max_packet_size;
        // The option is the limit both ways: without this, `publish` refused anything over the
        // core's default 1 MiB whatever the option said, so a 1 MiB payload could not be sent.
        config.max_outgoing_packet_size = self.max_packet_size;
        config.connack_timeout = self.connect_timeout;
        config.manual_acks = true;
        if let Some(store) = &self.session_store {
            config.session_recording = store.recording();
        }
        // The core restores the subscriptions at CONNACK, ahead of the messages queued while
        // disconnected; the supervisor learns of it from `Event::Resubscribing`.
        config.restore_subscriptions = match self.resubscribe_policy() {
            ResubscribePolicy::WhenSessionLost => {
                sansmq::client::RestoreSubscriptions::WhenSessionLost
            }
            ResubscribePolicy::Always => sansmq::client::RestoreSubscriptions::Always,
            ResubscribePolicy::Never => sansmq::client::RestoreSubscriptions::Never,
        };
        if let Some(will) = &self.will {
            config.will = Some(LastWill {
                topic: TopicName::try_from(will.topic.as_str())?,
                payload: will.payload.clone(),
                qos: will.qos,
                retain: will.retain,
                properties: will.properties.clone(),
            });
        }
        Ok(config)
    }

    /// Asks the credentials provider (if any) for this connection's user name and password and
    /// puts them into `config`. Call it before every connect: signatures and tokens change.
    pub fn apply_credentials(&self, config: &mut sansmq::Config) -> Result<(), Error> {
        let Some(provider) = &self.credentials else {
            return Ok(());
        };
        let credentials = provider
            .credentials()
            .map_err(|reason| Error::InvalidString {
                field: "credentials",
                reason,
            })?;
        let username =
            MqttString::try_from(credentials.username).map_err(|e| Error::InvalidString {
                field: "user name",
                reason: e.to_string(),
            })?;
        config.username = Some(username);
        config.password = credentials.password.map(Password);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests whose waiters are nothing: only `Supervisor::new` is called.
    struct NoWaiters;

    impl crate::supervisor::Requests for NoWaiters {
        type Connect = ();
        type Publish = ();
        type Subscribe = ();
        type Unsubscribe = ();
        type Disconnect = ();
        type Request = ();
    }

    #[test]
    fn a_unix_socket_refuses_a_bind_address_or_a_proxy_naming_the_option() {
        let unix = || ConnectOptions::new("unix:///tmp/broker.sock", "c").unwrap();
        assert!(unix().check_transport().is_ok());
        let bound = unix().bind_address("127.0.0.1".parse().unwrap());
        let proxied = unix().proxy(ProxyOptions::socks5h("proxy", 1080));
        for (options, option) in [
            (bound, "ConnectOptions::bind_address"),
            (proxied, "ConnectOptions::proxy"),
        ] {
            let Err(error) = crate::Supervisor::<NoWaiters>::new(options) else {
                panic!("{option} was accepted");
            };
            assert!(
                matches!(&error, Error::Unsupported { option: o, .. } if *o == option),
                "{error:?}"
            );
            assert!(
                error.to_string().contains("unix:///tmp/broker.sock"),
                "{error}"
            );
        }
        let tcp = ConnectOptions::new("tcp://h:1883", "c")
            .unwrap()
            .bind_address("127.0.0.1".parse().unwrap())
            .proxy(ProxyOptions::socks5h("proxy", 1080));
        assert!(tcp.check_transport().is_ok());
    }

    /// Without the `rustls` feature, every TLS URI is refused as the client is made, naming the
    /// URI and the feature; plain TCP and WebSocket URIs need no TLS configuration.
    #[cfg(not(feature = "rustls"))]
    #[test]
    fn without_the_rustls_feature_a_tls_uri_is_refused_naming_it_and_the_feature() {
        for (uri, shown) in [
            ("ssl://broker:8883", "TLS to ssl://broker:8883"),
            ("mqtts://broker", "TLS to ssl://broker:8883"),
            (
                "wss://broker/mqtt?token=S3CRET",
                "TLS to wss://broker:443/mqtt?***",
            ),
        ] {
            let options = ConnectOptions::new("tcp://plain:1883", "c")
                .unwrap()
                .server_uris(&["tcp://plain:1883", uri])
                .unwrap();
            let error = options.tls_config().unwrap_err();
            match &error {
                Error::FeatureNotBuilt { what, feature } => {
                    assert_eq!((what.as_str(), *feature), (shown, "rustls"));
                }
                other => panic!("{uri}: expected FeatureNotBuilt, got {other:?}"),
            }
            let message = error.to_string();
            assert!(
                message.contains("cargo feature `rustls`") && !message.contains("S3CRET"),
                "{message}"
            );
        }
        for uri in [
            "tcp://broker",
            "ws://broker/mqtt",
            "unix:///tmp/broker.sock",
        ] {
            let options = ConnectOptions::new(uri, "c").unwrap();
            assert!(options.tls_config().unwrap().is_none(), "{uri}");
        }
    }

    /// The default build makes the TLS configuration from the default roots, Mozilla's.
    #[cfg(feature = "webpki-roots")]
    #[test]
    fn a_tls_uri_gets_a_configuration_and_a_plain_one_none() {
        let tls = ConnectOptions::new("mqtts://broker", "c").unwrap();
        assert_eq!(tls.tls_options().trust_roots(), &crate::TrustRoots::WebPki);
        assert!(tls.tls_config().unwrap().is_some());
        let plain = ConnectOptions::new("tcp://broker", "c").unwrap();
        assert!(plain.tls_config().unwrap().is_none());
    }

    /// Roots whose feature the build leaves out are refused by name, before anything is opened.
    #[cfg(all(
        feature = "rustls",
        not(all(feature = "webpki-roots", feature = "native-roots"))
    ))]
    #[test]
    fn roots_left_out_of_the_build_are_refused_naming_their_feature() {
        use crate::TrustRoots;
        let mut left_out = Vec::new();
        if !cfg!(feature = "webpki-roots") {
            left_out.push((TrustRoots::WebPki, "webpki-roots", "TrustRoots::WebPki"));
        }
        if !cfg!(feature = "native-roots") {
            left_out.push((TrustRoots::System, "native-roots", "TrustRoots::System"));
        }
        assert!(!left_out.is_empty());
        for (roots, name, shown) in left_out {
            let options = ConnectOptions::new("ssl://broker:8883", "c")
                .unwrap()
                .tls(TlsOptions::new().roots(roots));
            match options.tls_config() {
                Err(Error::FeatureNotBuilt { what, feature }) => {
                    assert_eq!(feature, name);
                    assert!(what.contains(shown), "{what}");
                }
                other => panic!("{shown}: expected FeatureNotBuilt, got {other:?}"),
            }
        }
    }

    /// Built with the system store but not Mozilla's roots, the system store is the default.
    #[cfg(all(feature = "native-roots", not(feature = "webpki-roots")))]
    #[test]
    fn without_mozillas_roots_the_system_store_is_the_default() {
        assert_eq!(TlsOptions::new().trust_roots(), &crate::TrustRoots::System);
    }

    #[test]
    fn debug_shows_the_proxy_and_bind_address_but_never_the_proxy_password() {
        let proxy: ProxyOptions = "socks5h://alice:S3CRET@proxy:1081".parse().unwrap();
        let options = ConnectOptions::new("tcp://h:1883", "c")
            .unwrap()
            .bind_address("192.0.2.7".parse().unwrap())
            .proxy(proxy);
        let debug = format!("{options:?}");
        assert!(!debug.contains("S3CRET"), "{debug}");
        for shown in ["192.0.2.7", "alice", "proxy", "1081"] {
            assert!(debug.contains(shown), "{shown}: {debug}");
        }
    }

    #[test]
    fn debug_names_websocket_headers_but_never_shows_their_values() {
        let options = ConnectOptions::new("wss://h/mqtt", "c")
            .unwrap()
            .websocket_header("Authorization", "Bearer S3CRET");
        assert_eq!(
            options.websocket_headers(),
            [("Authorization".to_owned(), "Bearer S3CRET".to_owned())]
        );
        let debug = format!("{options:?}");
        assert!(!debug.contains("S3CRET"), "{debug}");
        assert!(debug.contains("Authorization: ***"), "{debug}");
        assert_eq!(options.websocket_uri().map(|u| u.port), Some(443));
    }
}
