//! The event loop: one thread owns the listener, every connection, every session and the retained
//! messages, so routing needs no lock and a message is handled start to finish before the next.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use sansmq::MqttString;
use sansmq::packet::{ConnAck, ConnectReturnCode, DecodeError, Disconnect, ReasonCode};

use crate::config::BrokerConfig;
use crate::connection::{Connection, Phase, ReadOutcome};
use crate::meter::Meter;
use crate::mqtt5::own_properties;
use crate::openapi_server::{HttpExchange, MAX_EXCHANGES, SeenNonces};
use crate::read_buffer::IncomingMeters;
use crate::retained::Retained;
use crate::session::{DropTotals, Message, QueueLimits, Session};
use crate::stats::{BrokerStats, ClientStats};
use crate::tokens::TokenRegistry;
use crate::topic_limits::TopicLimitError;
use crate::topic_tree::TopicTree;
use crate::transport::Transport;
use crate::websocket::WebSocketStream;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
pub(crate) const WS_LISTENER: Token = Token(2);
pub(crate) const OPENAPI_LISTENER: Token = Token(3);
const FIRST_CONNECTION: usize = 4;

/// Reads per connection per loop turn, so one busy client cannot starve the others.
const READS_PER_TURN: usize = 8;
/// How long a refused connection gets to flush its CONNACK.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How often accepting is retried while the process is out of file descriptors. Closing one of
/// our own connections retries at once; this catches descriptors freed elsewhere in the process.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What the [`Broker`](crate::Broker) handle asks of the loop.
#[derive(Debug)]
pub(crate) enum Command {
    Stats(SyncSender<BrokerStats>),
    Shutdown,
}

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The client sent DISCONNECT: the only graceful end, which discards the will.
    Disconnect,
    /// An MQTT 5 client sent DISCONNECT 0x04, Disconnect with Will Message: the will is
    /// published.
    DisconnectWithWill,
    PeerClosed,
    Io(io::Error),
    /// A protocol violation (MQTT-4.8.0-1).
    Protocol(String),
    /// A packet that could not be decoded (MQTT-4.8.0-1): MQTT 5's DISCONNECT says 0x81
    /// Malformed Packet, 0x82 Protocol Error or the property's own code (MQTT 5.0 section 4.13).
    Decode(DecodeError),
    /// An MQTT 5 rule broken, ending with a DISCONNECT carrying this Reason Code.
    Violation(ReasonCode, String),
    /// A rule of ApsaraMQ mode was broken.
    Policy(String),
    /// A PUBLISH to a topic over the configured depth or length.
    TopicLimit(TopicLimitError),
    KeepAliveExpired,
    ConnectTimeout,
    /// Another connection took over the client id (MQTT-3.1.4-2).
    TakenOver,
    /// The CONNECT was refused and the CONNACK flushed (or its time ran out).
    Refused,
    Shutdown,
}

impl CloseReason {
    /// Whether the will is published (MQTT-3.1.2-8): on every end but DISCONNECT, and not when
    /// the broker itself is stopping.
    fn publishes_will(&self) -> bool {
        !matches!(self, Self::Disconnect | Self::Shutdown)
    }

    /// The Reason Code of the DISCONNECT the broker sends an MQTT 5 client before closing
    /// (MQTT 5.0 section 4.13.2), if the connection ends on the broker's side.
    fn disconnect_code(&self) -> Option<ReasonCode> {
        Some(match self {
            Self::Protocol(_) => ReasonCode::ProtocolError,
            Self::Decode(error) => error.reason_code(),
            Self::Violation(code, _) => *code,
            Self::Policy(_) => ReasonCode::NotAuthorized,
            Self::TopicLimit(_) => ReasonCode::TopicNameInvalid,
            Self::KeepAliveExpired => ReasonCode::KeepAliveTimeout,
            Self::TakenOver => ReasonCode::SessionTakenOver,
            Self::Shutdown => ReasonCode::ServerShuttingDown,
            Self::Disconnect
            | Self::DisconnectWithWill
            | Self::PeerClosed
            | Self::Io(_)
            | Self::ConnectTimeout
            | Self::Refused => return None,
        })
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnect => f.write_str("client sent DISCONNECT"),
            Self::DisconnectWithWill => f.write_str("client sent DISCONNECT with Will Message"),
            Self::PeerClosed => f.write_str("client closed the connection"),
            Self::Io(e) => write!(f, "socket error: {e}"),
            Self::Protocol(why) => write!(f, "protocol error: {why}"),
            Self::Decode(error) => write!(f, "protocol error: {error}"),
            Self::Violation(code, why) => write!(f, "{why} ({code})"),
            Self::Policy(why) => write!(f, "ApsaraMQ rule: {why}"),
            Self::TopicLimit(error) => write!(f, "PUBLISH refused: {error}"),
            Self::KeepAliveExpired => f.write_str("nothing received for 1.5 x keep-alive"),
            Self::ConnectTimeout => f.write_str("no CONNECT in time"),
            Self::TakenOver => f.write_str("a new connection took over the client id"),
            Self::Refused => f.write_str("CONNECT refused"),
            Self::Shutdown => f.write_str("broker shutting down"),
        }
    }
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy)]
enum Listener {
    /// MQTT over TCP.
    Tcp,
    /// MQTT over WebSocket.
    WebSocket,
    /// ApsaraMQ mode's local OpenAPI (HTTP).
    OpenApi,
}

/// The broker's whole state, owned by the event loop thread.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) config: BrokerConfig,
    pub(crate) poll: Poll,
    listener: TcpListener,
    /// The WebSocket listener, if the broker has one.
    ws_listener: Option<TcpListener>,
    /// The local OpenAPI's listener, if the broker has one (ApsaraMQ mode).
    openapi_listener: Option<TcpListener>,
    /// The OpenAPI's HTTP exchanges in progress.
    pub(crate) http: HashMap<Token, HttpExchange>,
    /// The OpenAPI's signature nonces seen lately.
    pub(crate) nonces: SeenNonces,
    commands: Receiver<Command>,
    pub(crate) conns: HashMap<Token, Connection>,
    pub(crate) sessions: HashMap<String, Session>,
    /// Every session's subscriptions, by client id: what routing looks messages up in. Kept in
    /// step with `Session::subscriptions` (see `Server::remove_session`).
    pub(crate) subscriptions: TopicTree<String>,
    pub(crate) retained: Retained,
    /// The connections' read buffers, and their big packets against `max_incoming_bytes`.
    incoming: IncomingMeters,
    /// What each new session may queue, with the broker-wide queued bytes.
    pub(crate) queue_limits: QueueLimits,
    /// Messages dropped over every session, past and present.
    pub(crate) drops: DropTotals,
    /// CONNECTs refused because `max_sessions` was reached.
    pub(crate) sessions_refused: u64,
    next_token: usize,
    next_client_number: u64,
    /// Set when `accept` failed for want of a resource (file descriptors, memory) with
    /// connections possibly still waiting in the listen backlog. The listener is edge-triggered:
    /// it fires again only for a *new* connection, so until the backlog is drained the loop
    /// retries `accept` itself (see [`Server::accept`]).
    accept_stalled: bool,
    /// When ApsaraMQ mode's redelivery timer next ticks (see `Server::redeliver`).
    pub(crate) next_redelivery: Instant,
    /// The tokens this broker issued (ApsaraMQ mode).
    pub(crate) tokens: TokenRegistry,
    /// When ApsaraMQ mode next looks at the tokens clients hold (see `Server::watch_tokens`).
    pub(crate) next_token_watch: Instant,
    /// The earliest `Session::expires_at` of the offline MQTT 5 sessions, if any.
    pub(crate) session_expiry_due: Option<Instant>,
    /// MQTT 5 wills waiting for their Will Delay Interval.
    delayed_wills: Vec<DelayedWill>,
}

/// An MQTT 5 will published at `at` unless its client comes back first (MQTT-3.1.3-9).
#[derive(Debug)]
struct DelayedWill {
    client_id: String,
    at: Instant,
    message: Message,
}

impl Server {
    pub(crate) fn new(
        config: BrokerConfig,
        poll: Poll,
        mut listener: TcpListener,
        mut ws_listener: Option<TcpListener>,
        mut openapi_listener: Option<TcpListener>,
        commands: Receiver<Command>,
    ) -> io::Result<Self> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(ws_listener) = &mut ws_listener {
            poll.registry()
                .register(ws_listener, WS_LISTENER, Interest::READABLE)?;
        }
        if let Some(openapi_listener) = &mut openapi_listener {
            poll.registry()
                .register(openapi_listener, OPENAPI_LISTENER, Interest::READABLE)?;
        }
        let retained = Retained::new(config.max_retained_messages, config.max_retained_bytes);
        let incoming = IncomingMeters::new(config.max_incoming_bytes);
        let queue_limits = QueueLimits {
            max_messages: config.max_queued_messages,
            max_bytes: config.max_queued_bytes,
            total: Meter::new(config.max_total_queued_bytes),
        };
        Ok(Self {
            config,
            poll,
            listener,
            ws_listener,
            openapi_listener,
            http: HashMap::new(),
            nonces: SeenNonces::default(),
            commands,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            subscriptions: TopicTree::new(),
            retained,
            incoming,
            queue_limits,
            drops: DropTotals::default(),
            sessions_refused: 0,
            next_token: FIRST_CONNECTION,
            next_client_number: 0,
            accept_stalled: false,
            next_redelivery: Instant::now(),
            tokens: TokenRegistry::default(),
            next_token_watch: Instant::now(),
            session_expiry_due: None,
            delayed_wills: Vec::new(),
        })
    }

    /// Runs until [`Command::Shutdown`] (or the handle is dropped) or `poll` fails.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if self.has_pending_reads() {
                Some(Duration::ZERO)
            } else {
                let until_deadline = self
                    .next_deadline()
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                match (until_deadline, self.accept_stalled) {
                    (Some(timeout), true) => Some(timeout.min(ACCEPT_RETRY)),
                    (None, true) => Some(ACCEPT_RETRY),
                    (timeout, false) => timeout,
                }
            };
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "poll failed; broker stops");
                return self.stop();
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(Listener::Tcp),
                    WS_LISTENER => self.accept(Listener::WebSocket),
                    OPENAPI_LISTENER => self.accept(Listener::OpenApi),
                    WAKER => {
                        if !self.handle_commands() {
                            return self.stop();
                        }
                    }
                    token if self.http.contains_key(&token) => {
                        self.serve_http(token, Instant::now());
                    }
                    token => {
                        if let Some(conn) = self.conns.get_mut(&token) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            if event.is_read_closed() || event.is_error() {
                                conn.peer_closed = true;
                            }
                            if event.is_writable() || event.is_write_closed() {
                                conn.writable = true;
                            }
                        }
                    }
                }
            }
            self.service(Instant::now());
            if self.accept_stalled {
                // Connections may have closed this turn, freeing descriptors for the backlogs.
                self.accept(Listener::Tcp);
                self.accept(Listener::WebSocket);
                self.accept(Listener::OpenApi);
            }
        }
    }

    /// Answers the handle's commands; `false` means stop.
    fn handle_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Stats(reply)) => {
                    let _ = reply.try_send(self.stats());
                }
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn stop(mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close(token, CloseReason::Shutdown);
        }
        tracing::info!("broker stopped");
    }

    /// Accepts every connection waiting in `which` listener's backlog.
    ///
    /// Out of file descriptors (`EMFILE`, `ENFILE`) or kernel memory, `accept` fails and the
    /// waiting connections stay queued; since the listener is edge-triggered, no new event comes
    /// for them. So the failure marks the accept path stalled and the loop calls this again
    /// after every turn (a closed connection frees a descriptor) and at least every
    /// [`ACCEPT_RETRY`], until the backlog is empty. The waiting clients are then served as soon
    /// as a descriptor frees up, rather than never.
    ///
    /// Many servers instead keep a reserve descriptor to accept-and-close one connection at a
    /// time when out of descriptors, turning a waiting client into a refused one. This broker
    /// lets clients wait: they connected, the kernel completed their handshake, and their
    /// CONNECT (or their own timeout) decides what happens once there is room.
    fn accept(&mut self, which: Listener) {
        loop {
            let listener = match which {
                Listener::Tcp => &self.listener,
                Listener::WebSocket => match &self.ws_listener {
                    Some(listener) => listener,
                    None => return,
                },
                Listener::OpenApi => match &self.openapi_listener {
                    Some(listener) => listener,
                    None => return,
                },
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let token = Token(self.next_token);
                    self.next_token = self.next_token.wrapping_add(1).max(FIRST_CONNECTION);
                    if let Listener::OpenApi = which {
                        if self.http.len() >= MAX_EXCHANGES {
                            tracing::warn!(%peer, "OpenAPI busy: connection closed");
                            continue;
                        }
                        let mut exchange = HttpExchange::new(stream, Instant::now());
                        if let Err(error) = self.poll.registry().register(
                            exchange.stream_mut(),
                            token,
                            Interest::READABLE,
                        ) {
                            tracing::warn!(%peer, %error, "cannot register OpenAPI connection");
                            continue;
                        }
                        self.http.insert(token, exchange);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    if let Err(error) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!(%peer, %error, "cannot register connection");
                        continue;
                    }
                    let now = Instant::now();
                    // 0 is no timeout; others are clamped so that none can overflow `Instant`.
                    let deadline = Some(self.config.connect_timeout)
                        .filter(|timeout| !timeout.is_zero())
                        .map(|timeout| now + timeout.min(Duration::from_secs(86_400)));
                    let transport = match which {
                        Listener::Tcp | Listener::OpenApi => Transport::Tcp(stream),
                        Listener::WebSocket => Transport::WebSocket(WebSocketStream::accept(
                            stream,
                            self.config.max_packet_size,
                        )),
                    };
                    let conn = Connection::new(
                        transport,
                        peer,
                        self.config.max_packet_size,
                        self.incoming.clone(),
                        self.config.max_outgoing_bytes,
                        deadline,
                        now,
                    );
                    tracing::debug!(%peer, ?token, ?which, "accepted");
                    self.conns.insert(token, conn);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if self.accept_stalled {
                        tracing::info!("accepting connections again");
                    }
                    self.accept_stalled = false;
                    return;
                }
                // A connection reset while it waited in the backlog: on to the next one.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(error) => {
                    // Out of descriptors or memory: retried by the loop, see above.
                    if !self.accept_stalled {
                        tracing::warn!(%error, "accept failed; retrying as connections close");
                    }
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }

    /// Reads, writes and checks timers on every connection that needs it.
    fn service(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for &token in &tokens {
            self.read_from(token, now);
        }
        self.redeliver(now);
        self.watch_tokens(now);
        self.expire_sessions(now);
        self.send_delayed_wills(now);
        self.expire_http(now);
        for &token in &tokens {
            self.flush(token);
        }
        for &token in &tokens {
            let Some(conn) = self.conns.get(&token) else {
                continue;
            };
            let expired = conn.deadline().is_some_and(|deadline| deadline <= now);
            let reason = match &conn.phase {
                Phase::Closing { .. } if !conn.has_output() || expired => CloseReason::Refused,
                Phase::AwaitingConnect { .. } if expired => CloseReason::ConnectTimeout,
                Phase::Connected(_) if expired => CloseReason::KeepAliveExpired,
                _ => continue,
            };
            self.close(token, reason);
        }
    }

    fn has_pending_reads(&self) -> bool {
        self.conns.values().any(|c| c.readable && c.wants_read())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let connections = self.conns.values().filter_map(Connection::deadline).min();
        connections
            .into_iter()
            .chain(self.redelivery_deadline())
            .chain(self.token_watch_deadline())
            .chain(self.session_expiry_due)
            .chain(self.delayed_wills.iter().map(|w| w.at).min())
            .chain(self.http.values().map(HttpExchange::deadline))
            .min()
    }

    fn read_from(&mut self, token: Token, now: Instant) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if conn.peer_closed && conn.held_back() {
                // Its partial packet can never complete: free its buffer now rather than when
                // the limit lets it be read again.
                return self.close(token, CloseReason::PeerClosed);
            }
            if !conn.readable || !conn.wants_read() {
                return;
            }
            match conn.read_chunk() {
                ReadOutcome::Data => self.handle_input(token, now),
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Closed => return self.close(token, CloseReason::PeerClosed),
                ReadOutcome::Failed(error) => return self.close(token, CloseReason::Io(error)),
                ReadOutcome::Refused(why) => return self.close(token, CloseReason::Protocol(why)),
            }
        }
    }

    /// Handles every whole packet buffered for `token`.
    fn handle_input(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if matches!(conn.phase, Phase::Closing { .. }) {
                return;
            }
            match conn.next_packet() {
                Ok(Some(packet)) => {
                    conn.last_received = now;
                    self.handle_packet(token, packet, now);
                }
                Ok(None) => return,
                Err(DecodeError::UnsupportedProtocolLevel { level, .. })
                    if matches!(conn.phase, Phase::AwaitingConnect { .. }) =>
                {
                    // MQTT-3.1.2-2: answer CONNACK 0x01, then disconnect.
                    tracing::info!(peer = %conn.peer, level, "unsupported protocol level");
                    return self.refuse(token, ConnectReturnCode::UnacceptableProtocolVersion, now);
                }
                Err(error) => {
                    // MQTT-4.8.0-1: a malformed packet closes the connection, and only it.
                    return self.close(token, CloseReason::Decode(error));
                }
            }
        }
    }

    /// Writes what the socket takes; when that makes room, sends more of the session's queue.
    pub(crate) fn flush(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if let Err(error) = conn.flush() {
                return self.close(token, CloseReason::Io(error));
            }
            if !conn.writable || !conn.has_room() {
                return;
            }
            let before = conn.buffered_out();
            self.pump(token);
            if self.conns.get(&token).map(Connection::buffered_out) == Some(before) {
                return;
            }
        }
    }

    /// Sends a refusing CONNACK (session present 0, MQTT-3.2.2-4) and closes the connection once
    /// it is written (MQTT-3.2.2-5).
    pub(crate) fn refuse(&mut self, token: Token, code: ConnectReturnCode, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        tracing::info!(peer = %conn.peer, %code, "CONNECT refused");
        conn.send(ConnAck::new(code));
        conn.phase = Phase::Closing {
            deadline: now + CLOSE_LINGER,
        };
    }

    /// Closes `token`'s connection: detaches its session (dropping a clean one, MQTT-3.1.2-6) and
    /// publishes its will unless it ended with DISCONNECT (MQTT-3.1.2-8, MQTT-3.1.2-10).
    pub(crate) fn close(&mut self, token: Token, reason: CloseReason) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        if let (true, Phase::Connected(_), Some(code)) =
            (conn.protocol.is_v5(), &conn.phase, reason.disconnect_code())
        {
            // MQTT 5.0 section 4.13.2: say why before closing (never before CONNACK, which
            // carries its own Reason Code). The Reason String is left out if it were too long.
            let mut disconnect = Disconnect::with_reason_code(code);
            if let Ok(why) = MqttString::try_from(reason.to_string().as_str()) {
                disconnect.properties_mut().set_reason_string(Some(why));
            }
            if disconnect.encoded_len_in(conn.protocol) > conn.max_packet_size {
                disconnect = Disconnect::with_reason_code(code); // MQTT-3.1.2-25
            }
            conn.send(disconnect);
        }
        let _ = conn.flush(); // best effort: a refusing CONNACK, the last acks, a DISCONNECT
        conn.end(
            self.poll.registry(),
            matches!(reason, CloseReason::Shutdown),
        );
        let peer = conn.peer;
        let Phase::Connected(client) = conn.phase else {
            tracing::debug!(%peer, %reason, "connection closed");
            return;
        };
        tracing::info!(%peer, client_id = %client.client_id, %reason, "connection closed");
        // How long the session outlives this connection (`None`: for ever).
        let mut session_left = None;
        if let Some(session) = self.sessions.get_mut(&client.client_id) {
            if session.connection == Some(token) {
                session.connection = None;
                if session.clean {
                    self.remove_session(&client.client_id);
                    session_left = Some(Duration::ZERO);
                } else if let Some(expiry) = session.expiry {
                    // MQTT-3.1.2-23: an MQTT 5 session is kept for its Session Expiry Interval
                    // (one past what a clock can count never expires).
                    if let Some(at) = Instant::now().checked_add(expiry) {
                        session.expires_at = Some(at);
                        self.session_expiry_due =
                            Some(self.session_expiry_due.map_or(at, |d| d.min(at)));
                    }
                    session_left = Some(expiry);
                }
            }
        }
        if let (Some(will), true) = (client.will, reason.publishes_will()) {
            let now = Instant::now();
            // MQTT 5.0 section 3.1.3.2.2: the will waits for its Will Delay Interval or the end
            // of the session, whichever comes first.
            let delay = will
                .properties
                .will_delay_interval
                .map_or(Duration::ZERO, |secs| Duration::from_secs(u64::from(secs)));
            let delay = session_left.map_or(delay, |left| delay.min(left));
            let mut message = Message::new(will.topic, will.payload, will.qos, will.retain);
            let mut properties = will.properties;
            properties.will_delay_interval = None; // the will's, not its message's
            own_properties(&mut message, properties, now);
            match now.checked_add(delay).filter(|_| !delay.is_zero()) {
                Some(at) => {
                    tracing::debug!(client_id = %client.client_id, ?delay, "will delayed");
                    self.delayed_wills.push(DelayedWill {
                        client_id: client.client_id,
                        at,
                        message,
                    });
                }
                None => {
                    tracing::debug!(client_id = %client.client_id, topic = %message.topic, "publishing will");
                    self.route_from(message, Some(&client.client_id));
                }
            }
        }
    }

    /// Publishes the delayed wills whose time has come.
    fn send_delayed_wills(&mut self, now: Instant) {
        if !self.delayed_wills.iter().any(|w| w.at <= now) {
            return;
        }
        let (due, waiting) = std::mem::take(&mut self.delayed_wills)
            .into_iter()
            .partition(|w| w.at <= now);
        self.delayed_wills = waiting;
        for will in due {
            tracing::debug!(client_id = %will.client_id, topic = %will.message.topic, "publishing delayed will");
            self.route_from(will.message, Some(&will.client_id));
        }
    }

    /// A new connection for `client_id`: its delayed will is not sent (MQTT-3.1.3-9), unless
    /// Clean Start ends the session it belonged to, which sends it now.
    pub(crate) fn take_delayed_will(&mut self, client_id: &str, clean_start: bool) {
        if self.delayed_wills.is_empty() {
            return;
        }
        let (mine, others) = std::mem::take(&mut self.delayed_wills)
            .into_iter()
            .partition(|w| w.client_id == client_id);
        self.delayed_wills = others;
        if clean_start {
            for will in mine {
                self.route_from(will.message, Some(&will.client_id));
            }
        }
    }

    /// Discards the offline MQTT 5 sessions whose Session Expiry Interval has passed
    /// (MQTT-3.1.2-23), and finds when the next one expires.
    fn expire_sessions(&mut self, now: Instant) {
        if self.session_expiry_due.is_none_or(|due| due > now) {
            return;
        }
        let expired: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.connection.is_none() && s.expires_at.is_some_and(|at| at <= now))
            .map(|s| s.client_id.clone())
            .collect();
        for client_id in expired {
            tracing::info!(client_id, "session expired");
            self.remove_session(&client_id);
        }
        self.session_expiry_due = self
            .sessions
            .values()
            .filter(|s| s.connection.is_none())
            .filter_map(|s| s.expires_at)
            .min();
    }

    /// A client id for a client that sent an empty one (MQTT-3.1.3-6).
    pub(crate) fn generate_client_id(&mut self) -> String {
        loop {
            self.next_client_number = self.next_client_number.wrapping_add(1);
            let id = format!("sansmq-broker-{}", self.next_client_number);
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn stats(&self) -> BrokerStats {
        let mut clients: Vec<ClientStats> = self
            .sessions
            .iter()
            .map(|(client_id, session)| {
                let conn = session.connection.and_then(|t| self.conns.get(&t));
                ClientStats {
                    client_id: client_id.clone(),
                    connected: conn.is_some(),
                    outgoing_bytes: conn.map_or(0, Connection::buffered_out),
                    queued_messages: session.queued_len(),
                    inflight_messages: session.inflight.len(),
                    held_bytes: session.held_bytes(),
                    subscriptions: session.subscriptions.len(),
                    dropped: session.dropped,
                    dropped_qos0: session.dropped_qos0,
                }
            })
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        BrokerStats {
            connections: self.conns.len(),
            sessions: self.sessions.len(),
            retained_messages: self.retained.len(),
            retained_bytes: self.retained.bytes(),
            retained_refused: self.retained.refused(),
            incoming_bytes: self.incoming.memory.used(),
            outgoing_bytes: self.conns.values().map(Connection::buffered_out).sum(),
            queued_messages: clients.iter().map(|c| c.queued_messages).sum(),
            held_bytes: self.queue_limits.total.used(),
            dropped: self.drops.acknowledged(),
            dropped_qos0: self.drops.qos0(),
            sessions_refused: self.sessions_refused,
            clients,
        }
    }
}
