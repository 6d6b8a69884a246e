//! What a broker is started with: [`BrokerConfig`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::ApsaraMqMode;

/// How to run a broker; start one with [`start`](crate::start).
///
/// Every field is public and [`Default`] gives a broker for local tests, so set what you need and
/// take the rest from the default:
///
/// ```
/// use sansmq_broker::{ApsaraMqMode, BrokerConfig};
///
/// let config = BrokerConfig {
///     apsaramq: Some(ApsaraMqMode::new("mqtt-local-demo").access_key("LTAI-demo", "demo-secret")),
///     ..Default::default()
/// };
/// assert_eq!(config.bind.port(), 0); // any free port; read it back with `Broker::local_addr`
/// ```
///
/// All limits are per client connection or session, so one client can never make the broker use
/// memory without bound (see the crate docs for what happens when a limit is reached).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to listen. Default `127.0.0.1:0`: loopback, on a port the OS picks.
    pub bind: SocketAddr,
    /// The largest control packet a client may send, whole frame included. It is checked from the
    /// fixed header, before the body is buffered; a bigger packet closes that connection.
    /// Default 1 MiB.
    pub max_packet_size: usize,
    /// How many outgoing QoS 1/2 messages may wait for a client's acknowledgement at once.
    /// Default 20, like mosquitto's `max_inflight_messages`.
    pub max_inflight: usize,
    /// How many QoS 1/2 messages a session may hold that are not yet sent: while its client is
    /// offline (persistent session), and while the connection's outgoing buffer is full or its
    /// inflight window is used up. Past it new messages are dropped (counted in
    /// [`ClientStats::dropped`](crate::ClientStats::dropped)). Default 1000.
    pub max_queued_messages: usize,
    /// Bytes of encoded packets a connection may have waiting for the socket before the broker
    /// stops adding messages to it (QoS 0 messages are then dropped, QoS 1/2 ones queued in the
    /// session) and stops reading from that client. Default 256 KiB. One message is always let
    /// through into an empty buffer, whatever its size.
    pub max_outgoing_bytes: usize,
    /// How many subscriptions one session may hold; a SUBSCRIBE for a new filter past it gets
    /// the failure return code `0x80` for that filter. Default 1000.
    pub max_subscriptions: usize,
    /// How many topics may hold a retained message; a new one past it is not retained (but is
    /// still delivered). Default 10 000.
    pub max_retained_messages: usize,
    /// The most levels (`/`-separated parts) a topic or topic filter may have: a PUBLISH over it
    /// closes its connection, a SUBSCRIBE filter over it gets the failure return code `0x80`, a
    /// CONNECT whose will topic is over it is refused with `0x05`. Bounds the subscription
    /// index's depth and the work of matching one topic. Default 128, as EMQX.
    pub max_topic_levels: usize,
    /// The longest topic or topic filter in bytes, refused like [`max_topic_levels`]. Default
    /// 4096 (MQTT allows 65 535).
    ///
    /// [`max_topic_levels`]: Self::max_topic_levels
    pub max_topic_length: usize,
    /// How long a new connection may take to send its CONNECT before it is closed. Default 10 s.
    pub connect_timeout: Duration,
    /// Behave like Alibaba Cloud ApsaraMQ for MQTT: check credentials, client ids and limits, and
    /// route P2P topics. `None` (the default) is a plain MQTT 3.1.1 broker that lets anyone in.
    pub apsaramq: Option<ApsaraMqMode>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_packet_size: 1024 * 1024,
            max_inflight: 20,
            max_queued_messages: 1000,
            max_outgoing_bytes: 256 * 1024,
            max_subscriptions: 1000,
            max_retained_messages: 10_000,
            max_topic_levels: 128,
            max_topic_length: 4096,
            connect_timeout: Duration::from_secs(10),
            apsaramq: None,
        }
    }
}

impl BrokerConfig {
    /// The default configuration listening on `bind`.
    pub fn with_bind(bind: SocketAddr) -> Self {
        Self {
            bind,
            ..Self::default()
        }
    }
}
