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
/// Limits come per connection or session, so one client cannot take everything, and broker-wide,
/// so many clients together cannot either (see the crate docs for what happens at each limit).
/// As in mosquitto's configuration, **0 means no limit** for every one of them.
///
/// The defaults suit what this broker is for, tests and demos: nothing is lost to a per-session
/// message count (a test that publishes faster than its subscriber reads must not see gaps that
/// look like a client bug), while the broker-wide byte limits keep its memory to a few hundred
/// MiB whatever clients do.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to listen. Default `127.0.0.1:0`: loopback, on a port the OS picks.
    pub bind: SocketAddr,
    /// Where to listen for MQTT over WebSocket as well, if anywhere. Default `None`.
    ///
    /// The listener upgrades any path, answers with the `mqtt` subprotocol (or `mqttv3.1`, for
    /// old MQTT 3.1 clients) and refuses with 400 a client that offers subprotocols but neither;
    /// then MQTT goes in binary frames with any boundaries. Its connections are the same as TCP
    /// ones: the same limits, sessions, stats and ApsaraMQ mode. A frame over
    /// [`max_packet_size`](Self::max_packet_size) closes the connection from its header, before
    /// its payload is buffered, and a message as soon as its fragments add up to more. Unlike over TCP, one frame is buffered whole before the broker
    /// reads it, so each WebSocket connection may hold up to twice `max_packet_size` (a message
    /// arriving in fragments, and its next frame) outside
    /// [`max_incoming_bytes`](Self::max_incoming_bytes).
    pub ws_bind: Option<SocketAddr>,
    /// The largest control packet a client may send, whole frame included. It is checked from the
    /// fixed header, before the body is buffered; a bigger packet closes that connection.
    /// Default 1 MiB (mosquitto's `max_packet_size`).
    pub max_packet_size: usize,
    /// Bytes of big packets (over 16 KiB) the broker receives at once, over all connections. A
    /// read buffer grows with what arrived, never with the length a fixed header announces, and
    /// at most to that length. A big packet is read only once its whole announced length fits in
    /// what this limit has left (or no other big packet is arriving, so that one bigger than the
    /// limit still gets through, alone); until then its client is not read from and TCP holds
    /// the rest back. Packets up to 16 KiB are always read, so a client that sends small packets
    /// is never held up by others' big ones: the read buffers' memory
    /// ([`BrokerStats::incoming_bytes`](crate::BrokerStats::incoming_bytes)) stays under this
    /// limit (or [`max_packet_size`](Self::max_packet_size) if larger) plus 64 KiB per
    /// connection. Default 64 MiB.
    pub max_incoming_bytes: usize,
    /// How many sessions the broker holds: connected clients and persistent sessions of offline
    /// ones. A CONNECT that would create one more is refused with CONNACK `0x03` (server
    /// unavailable); resuming or taking over an existing session is always allowed.
    /// Default 100 000.
    pub max_sessions: usize,
    /// How many outgoing QoS 1/2 messages may wait for a client's acknowledgement at once.
    /// Default 20, like mosquitto's `max_inflight_messages`.
    pub max_inflight: usize,
    /// How many QoS 1/2 messages one session may hold that are not yet sent: while its client is
    /// offline (persistent session), and while the connection's outgoing buffer is full or its
    /// inflight window is used up. Past it new messages are dropped, counted in
    /// [`ClientStats::dropped`](crate::ClientStats::dropped) and logged. Retained messages sent
    /// for a new subscription do not count. Default 0 (no limit; mosquitto's
    /// `max_queued_messages` defaults to 1000, which loses messages as soon as a subscriber
    /// falls 1000 behind).
    pub max_queued_messages: usize,
    /// Bytes one session may hold in queued and inflight messages (topic, payload and about 80
    /// bytes of bookkeeping each); past it new QoS 1/2 messages are dropped like at
    /// `max_queued_messages`. Default 0 (no limit, like mosquitto's `max_queued_bytes`).
    pub max_queued_bytes: usize,
    /// Bytes all sessions together may hold in queued and inflight messages, counted as for
    /// `max_queued_bytes` (a payload queued for many sessions counts once in each). Past it new
    /// QoS 1/2 messages are dropped, counted and logged; a message that goes out at once to a
    /// client keeping up (empty queue, open inflight window) is counted but never refused, so
    /// such clients are served even while offline sessions fill the queues. Default 256 MiB.
    pub max_total_queued_bytes: usize,
    /// Bytes of encoded packets a connection may have waiting for the socket before the broker
    /// stops adding messages to it (QoS 0 messages are then dropped, QoS 1/2 ones queued in the
    /// session) and stops reading from that client. Default 256 KiB. One message is always let
    /// through into an empty buffer, whatever its size.
    pub max_outgoing_bytes: usize,
    /// How many subscriptions one session may hold; a SUBSCRIBE for a new filter past it gets
    /// the failure return code `0x80` for that filter. Default 1000.
    pub max_subscriptions: usize,
    /// How many topics may hold a retained message; a message for a new topic past it is not
    /// retained (but is still delivered to current subscribers). Default 10 000.
    pub max_retained_messages: usize,
    /// Bytes all retained messages may take (topic twice, payload and about 80 bytes of
    /// bookkeeping each); a message past it is not retained, like at `max_retained_messages`,
    /// and if it was to replace a topic's retained message, that one is cleared. Default 64 MiB.
    pub max_retained_bytes: usize,
    /// The most levels (`/`-separated parts) a topic or topic filter may have: a PUBLISH over it
    /// closes its connection, a SUBSCRIBE filter over it gets the failure return code `0x80`, a
    /// CONNECT whose will topic is over it is refused with `0x05`. Bounds the subscription
    /// index's depth and the work of matching one topic. Default 128, as EMQX; 0 leaves only
    /// MQTT's bound (a 65 535-byte topic has at most 65 536 levels).
    pub max_topic_levels: usize,
    /// The longest topic or topic filter in bytes, refused like [`max_topic_levels`]. Default
    /// 4096; 0 leaves only MQTT's bound, 65 535.
    ///
    /// [`max_topic_levels`]: Self::max_topic_levels
    pub max_topic_length: usize,
    /// How long a new connection may take to send its CONNECT before it is closed; zero is no
    /// timeout (a connection may then wait for ever, holding a descriptor and a little memory).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// MQTT 5: the Receive Maximum announced to clients, how many incoming QoS 2 messages may
    /// await their PUBREL at once (QoS 1 ones are acknowledged as they arrive). A client that
    /// sends more is disconnected with Reason Code 0x93. Default 65 535, MQTT's largest, which
    /// CONNACK then leaves out; 0 is taken as 65 535.
    pub receive_maximum: u16,
    /// MQTT 5: the Topic Alias Maximum announced to clients, how many Topic Aliases each may
    /// set on its PUBLISHes (an alias above it closes the connection with 0x94). Default 10, as
    /// mosquitto's `max_topic_alias`; 0 refuses aliases.
    pub topic_alias_maximum: u16,
    /// MQTT 5: the longest keep-alive granted, in seconds; a client asking for more (or for
    /// none) is told this one in CONNACK's Server Keep Alive. 0 (the default) grants what the
    /// client asks. ApsaraMQ mode caps it at 480 s (8 minutes) whatever this says. MQTT 3.1.1
    /// clients, which cannot be told, keep their own.
    pub max_keep_alive: u16,
    /// Behave like Alibaba Cloud ApsaraMQ for MQTT: check credentials, client ids and limits, and
    /// route P2P topics. `None` (the default) is a plain MQTT 3.1.1 and 5.0 broker that lets
    /// anyone in.
    pub apsaramq: Option<ApsaraMqMode>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ws_bind: None,
            max_packet_size: 1024 * 1024,
            max_incoming_bytes: 64 * 1024 * 1024,
            max_sessions: 100_000,
            max_inflight: 20,
            max_queued_messages: 0,
            max_queued_bytes: 0,
            max_total_queued_bytes: 256 * 1024 * 1024,
            max_outgoing_bytes: 256 * 1024,
            max_subscriptions: 1000,
            max_retained_messages: 10_000,
            max_retained_bytes: 64 * 1024 * 1024,
            max_topic_levels: 128,
            max_topic_length: 4096,
            connect_timeout: Duration::from_secs(10),
            receive_maximum: u16::MAX,
            topic_alias_maximum: 10,
            max_keep_alive: 0,
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
