//! [`Inner`]: the core, the transport and what callers wait for, behind the client's one lock. Both
//! the IO thread and application threads work on it, so a publish writes straight to the socket
//! without handing off to another thread.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Registry, Token, Waker};
use rustls::ClientConfig;
use sansmq::Event;
use sansmq::TopicFilter;
use sansmq::client::DisconnectReason;
use sansmq::packet::{PacketId, QoS, SubscribeFilter};
use sansmq_driver::diagnosis;
use sansmq_driver::resubscription::{Join, Resubscription, granted_qos};
use sansmq_driver::{Backoff, Closing, ConnectOptions, Diagnostics, Operation, ServerRotation};

mod close;
mod open;

use crate::callback::{self, CallbackEvent, Dispatch};
use crate::completion::Completion;
use crate::transport::{ReadOutcome, Transport};
use crate::{DeliveryToken, Error, Message, ServerUri};
use open::Opening;

/// The mio token of the broker connection.
pub(crate) const SOCKET: Token = Token(1);

/// Bytes read per socket read, and about as many per turn of the IO loop.
const READ_BUFFER: usize = 64 * 1024;
/// Bytes read at most, despite held callbacks, when a timer is due: enough to reach a PINGRESP
/// behind a backlog, bounded so a flood cannot grow the held callbacks without limit.
const DUE_READ_BUDGET: usize = 1024 * 1024;

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Not connected and not trying.
    Idle,
    /// DNS, TCP, TLS and CONNACK under way; the core's CONNACK timer (started with CONNECT)
    /// bounds it: the connect timeout.
    Connecting,
    /// CONNACK accepted.
    Connected,
    /// Lost; the next automatic attempt is due then.
    Reconnecting { at: Instant },
    /// `close` was called.
    Closed,
}

/// An open socket to one broker.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) transport: Transport,
    pub(crate) uri: ServerUri,
    /// A requested disconnect is ending this connection.
    pub(crate) closing: Option<Closing>,
}

/// Everything behind the client's lock.
pub(crate) struct Inner {
    pub(crate) core: sansmq::Client,
    /// Explains closes by the broker (a forbidden topic, a duplicate client id).
    pub(crate) diagnostics: Diagnostics,
    pub(crate) options: ConnectOptions,
    pub(crate) link: Link,
    pub(crate) connection: Option<Connection>,
    opening: Option<Opening>,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    registry: Registry,
    /// Wakes the IO thread (from a DNS thread).
    waker: Arc<Waker>,
    /// The application's `connect` call, waiting for the first CONNACK or the final failure.
    pub(crate) connect_waiter: Option<Completion<Result<bool, Error>>>,
    pub(crate) subscribe_waiters: HashMap<PacketId, Completion<Result<Vec<QoS>, Error>>>,
    /// Subscribes that joined the SUBSCRIBE restoring the session's subscriptions.
    pub(crate) restore: Resubscription<Completion<Result<Vec<QoS>, Error>>>,
    pub(crate) unsubscribe_waiters: HashMap<PacketId, Completion<Result<(), Error>>>,
    pub(crate) disconnect_waiter: Option<Completion<Result<(), Error>>>,
    pub(crate) deliveries: HashMap<PacketId, DeliveryToken>,
    /// To the callback thread; dropped at close so that thread ends.
    callbacks: Option<SyncSender<CallbackEvent>>,
    /// Who receives messages; read here for the receiver-only fast path.
    dispatch: Arc<Mutex<Dispatch>>,
    /// Messages handed to the callback thread and not yet delivered by it (shared count, see
    /// `deliver_message`).
    pub(crate) messages_with_callbacks: usize,
    /// Callback work the bounded queue did not take yet; reading pauses until it drains.
    pub(crate) held_callbacks: VecDeque<CallbackEvent>,
    backoff: Backoff,
    /// Which server URI the next attempt uses, and the tries left in the application's `connect`.
    servers: ServerRotation,
    ever_connected: bool,
    pub(crate) last_error: Option<Error>,
    read_buf: Box<[u8]>,
    /// The socket may hold unread bytes: reading stopped at its budget or for held callbacks.
    pub(crate) read_more: bool,
    /// The callback thread is blocked in a call on this client (a token's `wait`, `subscribe`):
    /// reading must not pause for callbacks then, or what it waits for is never read.
    pub(crate) callback_blocked: bool,
    /// Broker sessions started (CONNACKs with `session_present = 0`): tags each message, so an
    /// ack meant for an earlier session is refused ([`Message`]'s `session`).
    pub(crate) session: u64,
}

impl Inner {
    pub(crate) fn new(
        options: ConnectOptions,
        registry: Registry,
        waker: Arc<Waker>,
        callbacks: SyncSender<CallbackEvent>,
        dispatch: Arc<Mutex<Dispatch>>,
    ) -> Result<Self, Error> {
        let config = options.core_config()?;
        let tls = if options.uses_tls() {
            Some(sansmq_driver::tls::client_config(options.tls_options())?)
        } else {
            None
        };
        let (min_delay, max_delay) = options
            .reconnect_delays()
            .unwrap_or((Duration::from_secs(1), Duration::from_secs(60)));
        let backoff = Backoff::new(min_delay, max_delay);
        Ok(Self {
            diagnostics: Diagnostics::new(options.client_id()),
            core: sansmq::Client::new(config),
            options,
            link: Link::Idle,
            connection: None,
            opening: None,
            tls,
            registry,
            waker,
            connect_waiter: None,
            subscribe_waiters: HashMap::new(),
            restore: Resubscription::default(),
            unsubscribe_waiters: HashMap::new(),
            disconnect_waiter: None,
            deliveries: HashMap::new(),
            callbacks: Some(callbacks),
            dispatch,
            messages_with_callbacks: 0,
            held_callbacks: VecDeque::new(),
            backoff,
            servers: ServerRotation::default(),
            ever_connected: false,
            last_error: None,
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            read_more: false,
            callback_blocked: false,
            session: 0,
        })
    }

    /// The application's `connect`: one attempt per server URI, in order.
    pub(crate) fn start_connect(&mut self, now: Instant, waiter: Completion<Result<bool, Error>>) {
        self.connect_waiter = Some(waiter);
        self.servers.start(self.options.servers());
        self.attempt(now);
    }

    /// Opens a connection to the next server URI and queues CONNECT.
    pub(crate) fn attempt(&mut self, now: Instant) {
        let Some(uri) = self.servers.next(self.options.servers()).cloned() else {
            return;
        };
        if self.is_closing() {
            self.finish_close(now);
        }
        self.link = Link::Connecting;
        if let Err(error) = self.open(now, &uri) {
            // Nothing reached the core: handle the failure here rather than through its events.
            self.drop_socket();
            self.after_failure(now, error);
            return;
        }
        self.advance_opening(now);
    }

    /// An attempt failed before CONNACK: try the next URI within `connect`, report the failure to
    /// it, or schedule an automatic reconnect.
    fn after_failure(&mut self, now: Instant, error: Error) {
        let error = self.diagnostics.on_connect_failed(error);
        tracing::debug!(%error, "connection attempt failed");
        if self.connect_waiter.is_some() {
            if self.servers.tries_left() {
                self.attempt(now);
                return;
            }
            if let Some(waiter) = self.connect_waiter.take() {
                waiter.complete(Err(error.clone()));
            }
            self.link = Link::Idle;
        } else {
            self.schedule_reconnect(now, &error);
        }
        self.last_error = Some(error);
    }

    fn schedule_reconnect(&mut self, now: Instant, cause: &Error) {
        if self.options.reconnect_delays().is_none() || self.link == Link::Closed {
            self.link = Link::Idle;
            self.fail_waiters(cause);
            return;
        }
        let delay = self.backoff.delay_after(cause);
        tracing::info!(?delay, %cause, "reconnecting later");
        self.link = Link::Reconnecting {
            at: sansmq_driver::deadline_after(now, delay),
        };
    }

    /// Requests that will not be answered on any connection.
    fn fail_waiters(&mut self, cause: &Error) {
        for (_, w) in self.subscribe_waiters.drain() {
            w.complete(Err(cause.clone()));
        }
        for w in self.restore.drain() {
            w.complete(Err(cause.clone()));
        }
        for (_, w) in self.unsubscribe_waiters.drain() {
            w.complete(Err(cause.clone()));
        }
    }

    /// Deregisters and closes the socket. The core is told separately (`handle_closed`), so its
    /// `Disconnected` event stays the one place a connection's end is handled.
    pub(crate) fn drop_socket(&mut self) {
        self.read_more = false;
        if let Some(Opening::Dialing(mut dialer)) = self.opening.take() {
            dialer.abandon(&self.registry);
        }
        if let Some(mut connection) = self.connection.take() {
            let _ = self.registry.deregister(connection.transport.socket());
            let _ = connection
                .transport
                .socket()
                .shutdown(std::net::Shutdown::Both);
        }
    }

    /// The application's `subscribe`: joins the SUBSCRIBE restoring the session when that asks for
    /// these filters already (see [`Resubscription`]), else sends one. `waiter` gets the granted
    /// QoS per filter.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        waiter: Completion<Result<Vec<QoS>, Error>>,
    ) -> Result<(), Error> {
        let waiter = match self.restore.join(&filters, waiter) {
            Join::Send(waiter) => waiter,
            Join::Joined => return Ok(()),
            Join::Granted { waiter, results } => {
                waiter.complete(granted_qos(results));
                return Ok(());
            }
        };
        let requested: Vec<TopicFilter> = filters.iter().map(|f| f.filter.clone()).collect();
        let id = self.core.subscribe(now, filters)?;
        for filter in &requested {
            self.diagnostics
                .on_sent(now, Operation::Subscribe, filter, Some(id));
        }
        self.subscribe_waiters.insert(id, waiter);
        // The caller's `wait` wakes the IO thread anyway.
        let _ = self.flush_from_caller(now);
        Ok(())
    }

    /// The socket reported writable: write what waits.
    pub(crate) fn on_writable(&mut self, now: Instant) {
        self.flush(now);
        self.advance_close(now);
    }

    /// Reads what the broker sent, unless callbacks are backed up.
    ///
    /// At most about one buffer per call: the IO loop then hands the messages to the callback
    /// thread and lets go of the lock before reading on (`read_more`). Reading until the socket
    /// would block starved the callback thread's acks and application publishes of the lock
    /// while a broker streamed a backlog (mosquitto sends a reconnecting persistent client's
    /// whole queue without waiting for acks), and queued that whole backlog for callbacks
    /// regardless of the bounded queue.
    ///
    /// Held callbacks pause reading (backpressure), except while the callback thread waits on
    /// this client (it would wait forever) and when a timer is due: an unread PINGRESP must not
    /// end a healthy connection because a callback is slow (`Callback`'s promise).
    pub(crate) fn on_readable(&mut self, now: Instant) {
        if self.connection.is_none() {
            self.read_more = false;
            return;
        }
        if self.is_closing() {
            self.advance_close(now);
            return;
        }
        if !self.can_read(now) {
            self.read_more = true;
            return;
        }
        let budget = if self.held_callbacks.is_empty() || self.callback_blocked {
            self.read_buf.len()
        } else {
            DUE_READ_BUDGET
        };
        let Some(connection) = &mut self.connection else {
            return;
        };
        let outcome =
            connection
                .transport
                .read_into(&mut self.core, now, &mut self.read_buf, budget);
        self.read_more = matches!(outcome, Ok(ReadOutcome::More));
        match outcome {
            Ok(ReadOutcome::Drained | ReadOutcome::More) => {}
            Ok(ReadOutcome::Closed) => self.transport_failed(now, None),
            Err(e) => self.transport_failed(now, Some(e)),
        }
    }

    /// Whether reading may go on now (see [`on_readable`](Self::on_readable)). Never while the
    /// acknowledgements queued for the broker fill the transmit buffer
    /// ([`sansmq::Client::wants_read`]): a broker that sends and never reads would grow it without
    /// limit; TCP slows the broker down instead, and writing resumes reading.
    pub(crate) fn can_read(&self, now: Instant) -> bool {
        self.core.wants_read()
            && (self.held_callbacks.is_empty()
                || self.callback_blocked
                || self.core.poll_timeout().is_some_and(|t| now >= t))
    }

    /// The socket failed or closed: the core turns it into `Disconnected`, handled in
    /// `on_disconnected` with `error` as the precise cause.
    pub(crate) fn transport_failed(&mut self, now: Instant, error: Option<Error>) {
        if let Some(e) = &error {
            tracing::debug!(%e, "transport failed");
        }
        if self.is_closing() {
            // The broker went first: the close is over.
            self.finish_close(now);
            return;
        }
        self.last_error = error;
        self.drop_socket();
        self.core.handle_closed(now);
        // The read buffer is empty now but keeps the capacity a flood gave it: give it back.
        *self.core.read_buffer() = bytes::BytesMut::new();
    }

    /// Writes what the core has queued, as far as the socket takes it.
    pub(crate) fn flush(&mut self, now: Instant) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let mut failure = None;
        while let Some(bytes) = self.core.poll_transmit() {
            match connection.transport.write(bytes) {
                Ok(0) => break,
                Ok(n) => self.core.handle_transmitted(now, n),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            if let Err(e) = connection.transport.flush_tls() {
                failure = Some(e);
            }
        }
        if let Some(e) = failure {
            self.transport_failed(now, Some(e));
        }
    }

    /// [`flush`](Self::flush) for application threads (publish, ack, subscribe): returns whether
    /// the write found the connection broken, in which case the caller must wake the IO thread.
    ///
    /// A write that fails here closes the socket and leaves the core's `Disconnected` event
    /// queued, while the IO thread sleeps without a deadline (the socket is deregistered, the core
    /// has no timer while disconnected). Before this, nothing handled that event: no
    /// `connection_lost`, no reconnect, and every later publish queued until `QueueFull`.
    pub(crate) fn flush_from_caller(&mut self, now: Instant) -> bool {
        let had_connection = self.connection.is_some();
        self.flush(now);
        if had_connection && self.connection.is_none() {
            self.process_events(now);
            return true;
        }
        false
    }

    /// Timers: the core's (keep-alive, CONNACK), the connect deadline, the reconnect time.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.core.poll_timeout().is_some_and(|t| now >= t) {
            self.core.handle_timeout(now);
        }
        if let Link::Reconnecting { at } = self.link {
            if now >= at {
                self.attempt(now);
            }
        }
        self.advance_close(now);
    }

    /// When the IO thread must wake up at the latest.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Reconnecting { at } => Some(at),
            _ => None,
        };
        let closing = self
            .connection
            .as_ref()
            .and_then(|c| c.closing.as_ref())
            .map(Closing::deadline);
        let dial = match &self.opening {
            Some(Opening::Dialing(dialer)) => dialer.poll_timeout(),
            _ => None,
        };
        [self.core.poll_timeout(), link, closing, dial]
            .into_iter()
            .flatten()
            .min()
    }

    /// Turns the core's events into completed waits, callbacks and reconnects, then writes what
    /// they queued.
    pub(crate) fn process_events(&mut self, now: Instant) {
        loop {
            self.handle_events(now);
            let had_connection = self.connection.is_some();
            self.flush(now);
            // A write that fails closes the connection and queues `Disconnected`: handle it now.
            // Left for later, nobody did: the IO thread slept with no deadline (socket
            // deregistered, no core timer while disconnected) and the client never reconnected.
            if !(had_connection && self.connection.is_none()) {
                break;
            }
        }
    }

    fn handle_events(&mut self, now: Instant) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Connected { session_present } => {
                    // The core voided the acks it held: the broker forgot those messages.
                    self.session += u64::from(!session_present);
                    self.on_connected(now, session_present);
                }
                Event::Message(publish) => self.deliver_message(now, publish.into()),
                Event::Published { packet_id, .. } => {
                    self.diagnostics.on_acknowledged(packet_id);
                    if let Some(token) = self.deliveries.remove(&packet_id) {
                        token.complete(Ok(()));
                        if callback::lock(&self.dispatch).callback.is_some() {
                            self.callback(CallbackEvent::DeliveryComplete(token));
                        }
                    }
                }
                Event::Dropped { packet_id } => {
                    if let Some(token) = self.deliveries.remove(&packet_id) {
                        token.complete(Err(Error::ConnectionLost(
                            DisconnectReason::TransportClosed,
                        )));
                    }
                }
                Event::Subscribed { packet_id, results } => {
                    self.diagnostics.on_acknowledged(packet_id);
                    for (waiter, own) in self.restore.on_subscribed(packet_id, &results) {
                        waiter.complete(granted_qos(own));
                    }
                    if let Some(waiter) = self.subscribe_waiters.remove(&packet_id) {
                        waiter.complete(granted_qos(results));
                    }
                }
                Event::Unsubscribed { packet_id } => {
                    if let Some(waiter) = self.unsubscribe_waiters.remove(&packet_id) {
                        waiter.complete(Ok(()));
                    }
                }
                Event::Disconnected { reason } => self.on_disconnected(now, reason),
                _ => {}
            }
        }
    }

    fn on_connected(&mut self, now: Instant, session_present: bool) {
        self.link = Link::Connected;
        if let Some(diagnosis) = self.diagnostics.on_connected(now) {
            tracing::warn!(%diagnosis, "the broker is up: the previous connection's reset was probably its answer");
        }
        self.backoff.reset();
        let uri = self
            .connection
            .as_ref()
            .map(|c| c.uri.to_string())
            .unwrap_or_default();
        tracing::info!(%uri, session_present, "connected");
        if let Some(waiter) = self.connect_waiter.take() {
            waiter.complete(Ok(session_present));
        }
        let resubscribe = self
            .options
            .resubscribe_policy()
            .resubscribes(session_present);
        self.restore.on_connected();
        if resubscribe && self.ever_connected {
            if let Ok(Some(id)) = self.core.resubscribe(now) {
                let filters = self.core.subscriptions().map(|(filter, _)| &**filter);
                self.diagnostics.on_resubscribed(now, id, filters);
                self.restore.on_restore(id, self.core.subscriptions());
            }
        }
        let reconnect = self.ever_connected;
        self.ever_connected = true;
        self.callback(CallbackEvent::ConnectComplete { reconnect, uri });
    }

    fn on_disconnected(&mut self, now: Instant, reason: DisconnectReason) {
        if reason == DisconnectReason::Requested {
            self.link = Link::Idle;
            self.start_close(now);
            return;
        }
        let broke_protocol = diagnosis::broke_protocol(&reason);
        let error = self.diagnostics.on_disconnected(
            now,
            reason,
            self.last_error.take(),
            self.link == Link::Connected,
            self.options.connect_timeout_limit(),
        );
        self.drop_socket();
        match self.link {
            Link::Connecting => self.after_failure(now, error),
            Link::Connected => {
                tracing::warn!(%error, "connection lost");
                if broke_protocol {
                    // Report the broker's fault now rather than re-send the requests to it.
                    self.fail_waiters(&error);
                }
                self.callback(CallbackEvent::ConnectionLost(error.clone()));
                self.schedule_reconnect(now, &error);
                self.last_error = Some(error);
            }
            _ => {}
        }
    }

    /// Hands a message to the application. When only a `messages()` receiver listens, the IO
    /// thread puts it there itself and acknowledges it at once (unless the application does,
    /// `set_manual_acks`), so the ack leaves in the same write as the others of this read and no
    /// thread hand-off is paid per message. Otherwise, or while earlier messages are still with
    /// the callback thread (order), the callback thread delivers.
    fn deliver_message(&mut self, now: Instant, mut message: Message) {
        message.session = self.session;
        if self.held_callbacks.is_empty() && self.messages_with_callbacks == 0 {
            let (direct, manual_acks) = {
                let dispatch = callback::lock(&self.dispatch);
                let direct = if dispatch.callback.is_none() && dispatch.handlers.is_empty() {
                    dispatch.receiver.clone()
                } else {
                    None
                };
                (direct, dispatch.manual_acks)
            };
            if let Some(receiver) = direct {
                let id = message.id;
                match receiver.try_send(message) {
                    Ok(()) => {
                        if let (Some(id), false) = (id, manual_acks) {
                            let _ = self.core.ack(now, id);
                        }
                        return;
                    }
                    Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) => {
                        self.messages_with_callbacks += 1;
                        self.callback(CallbackEvent::MessageArrived(message));
                        return;
                    }
                }
            }
        }
        self.messages_with_callbacks += 1;
        self.callback(CallbackEvent::MessageArrived(message));
    }

    fn callback(&mut self, event: CallbackEvent) {
        let Some(callbacks) = &self.callbacks else {
            return;
        };
        if !self.held_callbacks.is_empty() {
            self.held_callbacks.push_back(event);
            return;
        }
        if let Err(TrySendError::Full(event)) = callbacks.try_send(event) {
            self.held_callbacks.push_back(event);
        }
    }

    /// The client is closing: the callback thread ends once it has run what it was given.
    pub(crate) fn shut_down(&mut self) {
        self.drop_socket();
        self.link = Link::Closed;
        self.callbacks = None;
        self.held_callbacks.clear();
        if let Some(waiter) = self.disconnect_waiter.take() {
            waiter.complete(Ok(()));
        }
        let closed = Error::Closed;
        self.fail_waiters(&closed);
        if let Some(waiter) = self.connect_waiter.take() {
            waiter.complete(Err(closed.clone()));
        }
        for (_, token) in self.deliveries.drain() {
            token.complete(Err(closed.clone()));
        }
    }

    /// Moves held callback work to the callback thread; true when reading may resume.
    pub(crate) fn release_callbacks(&mut self) -> bool {
        let Some(callbacks) = &self.callbacks else {
            return true;
        };
        while let Some(event) = self.held_callbacks.pop_front() {
            match callbacks.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.held_callbacks.push_front(event);
                    return false;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.held_callbacks.clear();
                }
            }
        }
        true
    }

    /// How long to wait before retrying held callbacks.
    pub(crate) fn callback_retry(&self) -> Option<Duration> {
        (!self.held_callbacks.is_empty()).then_some(Duration::from_millis(5))
    }
}
