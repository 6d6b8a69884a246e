//! A small MQTT 3.1/3.1.1/5.0 broker built on the sansmq codec, with an ApsaraMQ mode.
//!
//! It exists for development: sansmq's tests, the `sansmq demo` and trying a client out locally,
//! with no cloud account and nothing to install. **It is not a production broker**: sessions and
//! retained messages live in memory only, there is no TLS, no bridging, no ACL file.
//! For production use [mosquitto](https://mosquitto.org/), [EMQX](https://www.emqx.io/) or the
//! managed service itself.
//!
//! # Starting one in-process
//!
//! [`start`] binds, spawns the broker's thread and returns once it is listening; dropping the
//! [`Broker`] (or [`Broker::shutdown`]) stops it.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//!
//! use bytes::BytesMut;
//! use sansmq::MqttString;
//! use sansmq::packet::{ConnAck, Connect, ConnectReturnCode, Packet};
//! use sansmq_broker::{BrokerConfig, start};
//!
//! let broker = start(BrokerConfig::default())?; // 127.0.0.1, a free port
//! let mut socket = TcpStream::connect(broker.local_addr())?;
//!
//! let mut wire = BytesMut::new();
//! Connect::new(MqttString::try_from("doc-client").unwrap()).encode(&mut wire).unwrap();
//! socket.write_all(&wire)?;
//!
//! let mut connack = [0u8; 4];
//! socket.read_exact(&mut connack)?;
//! let mut read = BytesMut::from(&connack[..]);
//! let expected = ConnAck::new(ConnectReturnCode::Accepted).with_session_present(false);
//! assert_eq!(Packet::read(&mut read, 1024).unwrap(), Some(Packet::ConnAck(expected)));
//!
//! broker.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What it does
//!
//! - MQTT 3.1 (`MQIsdp`) and 3.1.1 clients; QoS 0, 1 and 2 both ways. An incoming QoS 2 message is
//!   delivered once however often it is resent before its PUBREL; outgoing messages go at the lower
//!   of the published and the subscribed QoS.
//! - Clean and persistent sessions, in memory. A persistent session keeps its subscriptions and
//!   queues QoS 1/2 messages while its client is offline; unacknowledged messages are sent again,
//!   with DUP, in their original order when the client comes back. CONNACK's session-present flag
//!   says whether a session was resumed.
//! - MQTT 5 clients beside them, each sent every packet in its own protocol: a message keeps its
//!   properties (User Properties, Content Type, Payload Format Indicator, Response Topic,
//!   Correlation Data, Message Expiry Interval as what is left of it) for MQTT 5 subscribers and
//!   loses them for MQTT 3.1.1 ones. CONNACK says what the broker allows (Receive Maximum,
//!   Maximum Packet Size, Topic Alias Maximum, Server Keep Alive when [`BrokerConfig::max_keep_alive`]
//!   caps the keep-alive, Assigned Client Identifier for an empty client id, Shared Subscription
//!   Available 0: a `$share/` filter is refused with 0x9E). Session Expiry Interval (from CONNECT,
//!   changed by DISCONNECT) and Clean Start; Topic Aliases from the client up to
//!   [`BrokerConfig::topic_alias_maximum`] (the broker sends none); No Local, Retain As
//!   Published, Retain Handling and Subscription Identifiers; an expired queued message is not
//!   sent; the client's Receive Maximum and Maximum Packet Size are honoured (a message too big
//!   for a client is dropped for it), and [`BrokerConfig::receive_maximum`] enforced with 0x93.
//!   A refused PUBLISH, SUBSCRIBE filter or UNSUBSCRIBE filter gets its Reason Code (0x90, 0x8F,
//!   0x97, 0x9E, 0x11) where MQTT 3.1.1 closes the connection or answers 0x80, and a QoS 1/2
//!   message that reaches no session is answered 0x10 No matching subscribers; the broker's own
//!   DISCONNECT says why it closes (0x81, 0x82, 0x8D, 0x8E, 0x93, 0x94...). Enhanced
//!   authentication (AUTH) is not offered: a CONNECT with an Authentication Method gets 0x8C.
//!   A will waits for its Will Delay Interval or the end of its session, whichever is first, and
//!   is not sent if its client comes back in time.
//! - `+` and `#` wildcards (not matching `$` topics at the first level), retained messages (an empty
//!   payload clears one), will messages (published when a connection ends any way but DISCONNECT,
//!   including when a new connection takes over its client id).
//! - Keep-alive: a client silent for 1.5 × its keep-alive is disconnected. A client that sends an
//!   empty client id with clean session gets a generated one; with clean session 0, CONNACK `0x02`.
//! - A second connection with a connected client id closes the first one.
//! - MQTT over WebSocket beside TCP ([`BrokerConfig::ws_bind`]): any path, the `mqtt`
//!   subprotocol, packets in binary frames with any boundaries; the same sessions, limits and
//!   ApsaraMQ mode as over TCP.
//! - [ApsaraMQ mode](ApsaraMqMode): Signature / Token / DeviceCredential logins, client id rules, P2P
//!   routing, and refusing what the cloud service does not support; tokens issued over a local
//!   OpenAPI ([`ApsaraMqMode::openapi_bind`]) with their resources, actions and expiry,
//!   `$SYS/tokenExpireNotice` and `$SYS/tokenInvalidNotice`, `$SYS/uploadToken`, and periodic
//!   re-delivery of unacknowledged QoS 1 messages ([`ApsaraMqMode::redelivery_interval`]).
//!   MQTT 5 clients get ApsaraMQ's MQTT 5 limits: keep-alive at most 8 minutes (Server Keep
//!   Alive), Retain Available 0 (a retained PUBLISH is answered with DISCONNECT 0x9A), no
//!   shared subscriptions (0x9E), no wills (CONNACK 0x87 Not authorized, as MQTT 3.1.1 gets
//!   0x05, or 0x9A for a retained will), Subscription Identifiers 1 to 268,435,455 (MQTT's
//!   range, checked by the codec); a PUBLISH or a filter a token does not grant is refused with
//!   0x87 in its PUBACK, PUBREC or SUBACK, and other broken rules close the connection with a
//!   DISCONNECT naming them.
//!
//! # Bounded memory
//!
//! Every buffer has a limit ([`BrokerConfig`]; as in mosquitto, 0 means none), per client so
//! that no client can take everything, and broker-wide so that many clients together cannot
//! either. A client that stops reading never slows the others down. What happens at each limit:
//!
//! - **Incoming packets.** One larger than [`BrokerConfig::max_packet_size`] is refused from its
//!   fixed header, before its body is buffered, and closes that connection. A read buffer grows
//!   with the bytes that arrived, never with the length a header announces. Packets over 16 KiB
//!   are read only once their whole length fits in [`BrokerConfig::max_incoming_bytes`] (or no
//!   other big packet is arriving); until then TCP holds them back. Smaller packets always flow.
//!   Over WebSocket, a frame or message longer than `max_packet_size` is refused from its
//!   header; a shorter one is buffered whole by the WebSocket layer before the broker reads it,
//!   so each WebSocket connection may hold up to twice `max_packet_size` (a message arriving in
//!   fragments, and its next frame) outside `max_incoming_bytes`.
//! - **Sessions.** Past [`BrokerConfig::max_sessions`] (connected and offline persistent ones),
//!   a CONNECT that would create a session gets CONNACK `0x03`, server unavailable.
//! - **Output.** Each connection's outgoing buffer stops taking messages at
//!   [`BrokerConfig::max_outgoing_bytes`]. Past it, QoS 0 messages for that client are
//!   **dropped** ([`ClientStats::dropped_qos0`]) and QoS 1/2 ones wait in the session queue; the
//!   client is also no longer read from until it catches up. This limit is per connection, so
//!   output memory is bounded by `max_outgoing_bytes` × the number of connections, not by a
//!   broker-wide total.
//! - **Queues.** A session queues QoS 1/2 messages while its client is offline or behind, within
//!   [`BrokerConfig::max_queued_messages`] and [`BrokerConfig::max_queued_bytes`] per session
//!   and [`BrokerConfig::max_total_queued_bytes`] over all sessions. Past one of them the
//!   **newest** messages are refused (the client gets a gap-free prefix). Such a message was
//!   acknowledged to its publisher, so each drop is counted ([`ClientStats::dropped`], and
//!   broker-wide, sessions that ended included, [`BrokerStats::dropped`]) and logged: a warning
//!   "outgoing messages are being dropped for client X (limit reached)" when drops begin, like
//!   mosquitto's, one when queueing resumes with how many were lost, and each one at debug.
//! - **Retained messages.** At most [`BrokerConfig::max_retained_messages`] topics and
//!   [`BrokerConfig::max_retained_bytes`]. A message past them is **refused** (not retained,
//!   still delivered, logged and counted in [`BrokerStats::retained_refused`]) rather than
//!   evicting another topic's message, which would silently change what that topic's
//!   subscribers get; a refused replacement clears the topic's older message. A new
//!   subscription gets **every** matching retained message: they are queued (outside
//!   `max_queued_messages`) and sent as flow control allows.
//! - A session holds at most [`BrokerConfig::max_subscriptions`] (a new filter past it gets the
//!   SUBACK failure code).
//! - Topics and filters have at most [`BrokerConfig::max_topic_levels`] levels and
//!   [`BrokerConfig::max_topic_length`] bytes. With these at 0, MQTT's 65 535 bytes still bound
//!   them, and the subscription index works level by level without recursion, so even the
//!   deepest filter cannot exhaust a thread's stack.
//! - **Connections.** There is no limit on their number (mosquitto's `max_connections` is not
//!   implemented) other than the process's file descriptors: past those, new connections wait in
//!   the kernel's backlog until one closes. A connection must send CONNECT within
//!   [`BrokerConfig::connect_timeout`] (0: no timeout).
//! - [`Broker::stats`] reports each of these numbers.
//!
//! Routing a message costs what its topic's levels and its matching subscriptions cost, however
//! many sessions there are: subscriptions are indexed in a [`TopicTree`].
//!
//! ## The default queue, and how to change it
//!
//! The defaults suit tests and demos: no per-session message limit
//! (`max_queued_messages` 0, where mosquitto has 1000), so a subscriber far behind a fast
//! publisher loses nothing, and 256 MiB of queued messages over all sessions, so memory stays
//! bounded whatever clients do. Raise `max_total_queued_bytes` (`sansmq broker
//! --max-total-queued-bytes`) for bigger backlogs; set `max_queued_messages` (`sansmq broker
//! --max-queued-messages 1000`) to behave like mosquitto and keep one slow or forgotten
//! persistent session from taking the whole budget.
//!
//! A malformed packet or a protocol violation closes just the connection that sent it
//! (MQTT-4.8.0-1); nothing received from the network can make the broker panic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod apsaramq;
mod auth;
mod config;
mod connection;
mod meter;
mod mqtt5;
mod openapi_server;
mod protocol;
mod read_buffer;
mod redelivery;
mod retained;
mod router;
mod server;
mod session;
mod stats;
mod token_watch;
mod tokens;
mod topic_limits;
mod topic_tree;
mod transport;
mod websocket;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Poll, Waker};

pub use apsaramq::{ApsaraMqMode, TokenKind};
pub use config::BrokerConfig;
pub use stats::{BrokerStats, ClientStats};
pub use topic_tree::TopicTree;

use server::{Command, Server, WAKER};

/// The password an ApsaraMQ Signature or DeviceCredential login sends for `client_id`:
/// Base64(HMAC-SHA1(key = `secret`, message = the whole client id)). For tests and demos that
/// play the client side.
///
/// ```
/// assert_eq!(
///     sansmq_broker::signature("secretKey123", "GID_test@@@device-001"),
///     "WUp3wMiZLkLANz/so65nilEQlic="
/// );
/// ```
pub fn signature(secret: &str, client_id: &str) -> String {
    auth::sign(secret, client_id)
}

/// Starts a broker with `config` on a thread of its own, and returns once it is listening on
/// [`Broker::local_addr`]. Fails if the address cannot be bound.
pub fn start(config: BrokerConfig) -> io::Result<Broker> {
    let listener = mio::net::TcpListener::bind(config.bind)?;
    let local_addr = listener.local_addr()?;
    let ws_listener = config
        .ws_bind
        .map(mio::net::TcpListener::bind)
        .transpose()?;
    let ws_local_addr = ws_listener
        .as_ref()
        .map(mio::net::TcpListener::local_addr)
        .transpose()?;
    let openapi_listener = config
        .apsaramq
        .as_ref()
        .and_then(|mode| mode.openapi_bind)
        .map(mio::net::TcpListener::bind)
        .transpose()?;
    let openapi_local_addr = openapi_listener
        .as_ref()
        .map(mio::net::TcpListener::local_addr)
        .transpose()?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, receiver) = mpsc::channel();
    let apsaramq = config.apsaramq.is_some();
    let server = Server::new(
        config,
        poll,
        listener,
        ws_listener,
        openapi_listener,
        receiver,
    )?;
    let thread = std::thread::Builder::new()
        .name(format!("sansmq-broker {local_addr}"))
        .spawn(move || server.run())?;
    tracing::info!(%local_addr, ?ws_local_addr, ?openapi_local_addr, apsaramq, "broker listening");
    Ok(Broker {
        local_addr,
        ws_local_addr,
        openapi_local_addr,
        commands,
        waker,
        thread: Some(thread),
    })
}

/// A running broker. Dropping it stops the broker, closing every connection.
#[derive(Debug)]
pub struct Broker {
    local_addr: SocketAddr,
    ws_local_addr: Option<SocketAddr>,
    openapi_local_addr: Option<SocketAddr>,
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Broker {
    /// The address the broker listens on (with the port the OS picked if the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the WebSocket listener, if [`BrokerConfig::ws_bind`] asked for one (with
    /// the port the OS picked if the configured one was 0). Clients connect to
    /// `ws://<this address>/<any path>`.
    pub fn ws_local_addr(&self) -> Option<SocketAddr> {
        self.ws_local_addr
    }

    /// The address of ApsaraMQ mode's local OpenAPI, if
    /// [`ApsaraMqMode::openapi_bind`] asked for one (with the port the OS picked if the
    /// configured one was 0).
    pub fn openapi_local_addr(&self) -> Option<SocketAddr> {
        self.openapi_local_addr
    }

    /// The endpoint URL of the local OpenAPI (`http://127.0.0.1:PORT/`), for an OpenAPI client
    /// such as `sansmq_apsaramq::openapi::OpenApiClient` or `sansmq token --endpoint`.
    pub fn openapi_url(&self) -> Option<String> {
        self.openapi_local_addr
            .map(|addr| format!("http://{addr}/"))
    }

    /// A snapshot of the broker's connections, sessions and buffers. Empty if the broker has
    /// stopped (or does not answer within 5 s).
    pub fn stats(&self) -> BrokerStats {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.send(Command::Stats(reply)).is_err() {
            return BrokerStats::default();
        }
        answer
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default()
    }

    /// Stops the broker: closes every connection (without publishing wills) and waits for its
    /// thread to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Blocks until the broker stops, which it only does on its own if its event loop fails
    /// (a command-line `broker` runs this way until it is killed).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn send(&self, command: Command) -> io::Result<()> {
        self.commands
            .send(command)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "broker stopped"))?;
        self.waker.wake()
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.send(Command::Shutdown);
            if thread.join().is_err() {
                tracing::error!("broker thread panicked");
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
