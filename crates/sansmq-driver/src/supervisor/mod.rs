//! [`Supervisor`]: a connection's whole life as a sans-IO state machine, so that a driver only
//! moves bytes, opens and closes transports, and reads a clock.
//!
//! The core ([`sansmq::Client`]) runs one connection's protocol. The supervisor owns it and adds
//! what happens between connections, which every driver needs alike: trying each server URI in
//! turn, asking the credentials provider before every attempt, reconnecting after a jittered
//! [`Backoff`], re-subscribing per the [`ResubscribePolicy`](crate::ResubscribePolicy), answering
//! each request exactly once ([`Completed`]), ending a requested disconnect so that the broker
//! reads the DISCONNECT ([`Closing`]), and explaining a broker's close ([`Diagnostics`]). It has
//! no threads, no runtime, no clock and no socket; the deterministic simulation drives it like
//! any driver does.
//!
//! It has the core's shape: commands, `handle_*` inputs that take `now`, and `poll_*` outputs to
//! drain after every input.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};
//! use sansmq_driver::ConnectOptions;
//!
//! #[derive(Debug)]
//! struct Waiters;
//! impl Requests for Waiters {
//!     type Connect = &'static str;
//!     type Publish = &'static str;
//!     type Subscribe = &'static str;
//!     type Unsubscribe = &'static str;
//!     type Disconnect = &'static str;
//!     type Request = &'static str;
//! }
//!
//! # fn main() -> Result<(), sansmq_driver::Error> {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "device-1")?;
//! let mut supervisor = Supervisor::<Waiters>::new(options)?;
//! let now = Instant::now();
//! supervisor.connect(now, "the application's connect").map_err(|r| r.error)?;
//!
//! // The driver opens what it is asked to...
//! let Some(Action::Open { uri }) = supervisor.poll_action() else { unreachable!() };
//! assert_eq!(uri.to_string(), "tcp://127.0.0.1:1883");
//! supervisor.handle_opened(now);
//!
//! // ...writes what there is to write (here CONNECT)...
//! let connect = supervisor.poll_transmit().map(<[u8]>::len).unwrap_or(0);
//! supervisor.handle_transmitted(now, connect);
//!
//! // ...and feeds what it reads: here the broker's CONNACK.
//! supervisor.handle_received(now, &[0x20, 0x02, 0x00, 0x00]);
//! while let Some(event) = supervisor.poll_event() {
//!     match event {
//!         // The application's `connect` gets its answer...
//!         Event::Completed(Completed::Connect(waiter, result)) => {
//!             assert_eq!(waiter, "the application's connect");
//!             assert!(!result?, "a new session");
//!         }
//!         // ...and the application hears about the connection.
//!         Event::Connected { reconnect, .. } => assert!(!reconnect),
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A driver's loop, whatever its runtime (see the driver authors' guide in the crate docs):
//!
//! 1. after every input, drain [`poll_action`](Supervisor::poll_action) (open, shut down the
//!    write side, close), [`poll_transmit`](Supervisor::poll_transmit) into the transport
//!    (reporting [`handle_transmitted`](Supervisor::handle_transmitted)), and
//!    [`poll_event`](Supervisor::poll_event) to the application;
//! 2. read from the transport while [`wants_read`](Supervisor::wants_read) says so, into
//!    [`read_buffer`](Supervisor::read_buffer) then [`handle_read`](Supervisor::handle_read);
//!    report the end of stream or a failure with [`handle_closed`](Supervisor::handle_closed);
//! 3. sleep until [`poll_timeout`](Supervisor::poll_timeout), then
//!    [`handle_timeout`](Supervisor::handle_timeout).

mod by_packet_id;
mod lifecycle;
mod output;
mod requests;
mod responses;
mod waiters;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::packet::{Disconnect, PacketId, Properties, QoS, SubscribeFilter};
use sansmq::{CommandError, TopicFilter, TopicName};

use crate::resubscription::{Join, granted_qos};
use crate::session_store::Persistence;
use crate::{AckKey, ServerUri};
use crate::{Backoff, Closing, ConnectOptions, Diagnostics, Error, Operation, ServerRotation};

pub use output::{Action, Event};
pub use requests::{Completed, Rejected, Requests};
use waiters::Waiters;

/// Where the client stands between connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Not connected and not trying: before `connect`, after `disconnect`, or given up.
    Idle,
    /// A transport is being opened, then CONNACK awaited (the core's CONNACK timer bounds both).
    Connecting,
    /// CONNACK accepted.
    Connected,
    /// Lost; the next automatic attempt is due then.
    Reconnecting { at: Instant },
    /// [`Supervisor::shut_down`]: it never connects again.
    ShutDown,
}

/// The transport the driver holds, as far as the supervisor knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    None,
    /// [`Action::Open`] was given; no answer yet.
    Opening(ServerUri),
    Open(ServerUri),
    /// A requested disconnect is ending it (see [`Closing`]).
    Closing(ServerUri, Closing),
}

/// One client's connections, from `connect` to `shut_down`. `R` names the driver's waiters.
pub struct Supervisor<R: Requests> {
    core: sansmq::Client,
    options: Arc<ConnectOptions>,
    link: Link,
    transport: Transport,
    backoff: Backoff,
    /// Which server URI the next attempt uses, and the tries left in the application's `connect`.
    servers: ServerRotation,
    /// Explains closes by the broker (a forbidden topic, a duplicate client id).
    diagnostics: Diagnostics,
    waiters: Waiters<R>,
    actions: VecDeque<Action>,
    events: VecDeque<Event<R>>,
    ever_connected: bool,
    /// The transport's own account of its failure, for the core's `Disconnected` that follows;
    /// boxed, as it is rare and every client carries the field.
    transport_error: Option<Box<Error>>,
    /// Broker sessions started (CONNACKs with `session_present = 0`): tags each message, so an
    /// acknowledgement meant for an earlier session is refused ([`AckKey`]).
    session: u64,
    /// Bytes of the transmit buffer written on the current connection.
    written: u64,
    /// An automatic attempt found no credentials, and no later one had them yet
    /// ([`Event::WaitingForCredentials`] is reported once per outage).
    waiting_for_credentials: bool,
    /// The session store ([`ConnectOptions::session_dir`]), while it works.
    store: Option<Persistence>,
}

impl<R: Requests> fmt::Debug for Supervisor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("client_id", &self.options.client_id())
            .field("link", &self.link)
            .field("transport", &self.transport)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Reconnect delays when the options ask for none: a requested `connect` still tries every URI.
const DEFAULT_DELAYS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl<R: Requests> Supervisor<R> {
    /// A supervisor for `options`, not connected. Fails on options the core cannot use (an
    /// invalid client id or will topic). A driver whose handles check the broker rules too can
    /// share one `Arc<ConnectOptions>` with it instead of holding a second copy.
    ///
    /// With a session store ([`ConnectOptions::session_dir`]) it opens the store and restores the
    /// session kept there, which the first connect resumes; it fails with
    /// [`Error::SessionStore`] if the store cannot be opened or read.
    pub fn new(options: impl Into<Arc<ConnectOptions>>) -> Result<Self, Error> {
        let options = options.into();
        options.check_transport()?;
        let config = options.core_config()?;
        let (mut core, store) = match options.session_store_options() {
            None => (sansmq::Client::new(config), None),
            Some(store) => {
                let (store, session) = store.open(options.client_id())?;
                if !session.inflight.is_empty() || !session.queued.is_empty() {
                    tracing::info!(
                        inflight = session.inflight.len(),
                        queued = session.queued.len(),
                        "session restored from the store"
                    );
                }
                (sansmq::Client::with_session(config, session)?, Some(store))
            }
        };
        if let Some(authenticator) = options
            .mqtt5_options()
            .and_then(|v5| v5.make_authenticator())
        {
            core.set_authenticator(authenticator);
        }
        let (min, max) = options.reconnect_delays().unwrap_or(DEFAULT_DELAYS);
        Ok(Self {
            diagnostics: Diagnostics::new(options.client_id()),
            core,
            options,
            link: Link::Idle,
            transport: Transport::None,
            backoff: Backoff::new(min, max),
            servers: ServerRotation::default(),
            waiters: Waiters::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            ever_connected: false,
            transport_error: None,
            session: 0,
            written: 0,
            waiting_for_credentials: false,
            store,
        })
    }

    /// Draws the reconnect jitter from a generator seeded with `seed` (for simulations and
    /// reproducible tests); by default each supervisor has its own random seed.
    #[must_use]
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.backoff = self.backoff.with_seed(seed);
        self
    }

    // ---- queries ----

    /// The options it was made with.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// The protocol engine, for what it tells (queue lengths, subscriptions, configuration).
    pub fn core(&self) -> &sansmq::Client {
        &self.core
    }

    /// Whether CONNACK accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.link == Link::Connected
    }

    /// The server of the transport open or being opened.
    pub fn server(&self) -> Option<&ServerUri> {
        match &self.transport {
            Transport::None => None,
            Transport::Opening(uri) | Transport::Open(uri) | Transport::Closing(uri, _) => {
                Some(uri)
            }
        }
    }

    /// Whether the application awaits something only the broker can answer (a publish's
    /// acknowledgement, a SUBACK, CONNACK): a driver that pauses reading while the application
    /// is behind on its messages must read on then, or wait forever.
    pub fn awaits_broker(&self) -> bool {
        self.waiters.await_broker()
    }

    /// Whether the core's queue of messages waiting for the window is at its limit: a driver with
    /// a command channel may stop taking publishes until acknowledgements make room, rather than
    /// fail them with [`CommandError::QueueFull`].
    pub fn is_queue_full(&self) -> bool {
        let max = self.core.config().max_queued;
        self.link == Link::Connected && max > 0 && self.core.queued_len() >= max
    }

    // ---- commands ----

    /// The application's `connect`: one attempt per server URI, in order; the waiter gets the
    /// first CONNACK's session-present flag or the last attempt's failure.
    pub fn connect(
        &mut self,
        now: Instant,
        waiter: R::Connect,
    ) -> Result<(), Rejected<R::Connect>> {
        match self.link {
            Link::Connected | Link::Connecting => {
                return Err(Rejected::new(CommandError::AlreadyConnected, waiter));
            }
            Link::ShutDown => return Err(Rejected::new(Error::Closed, waiter)),
            Link::Idle | Link::Reconnecting { .. } => {}
        }
        if matches!(self.transport, Transport::Closing(..)) {
            self.finish_close(now);
        }
        self.waiters.connect = Some(waiter);
        self.servers.start(self.options.servers());
        self.attempt(now);
        self.process(now);
        Ok(())
    }

    /// Publishes a message: QoS 0 completes once written, QoS 1 at PUBACK, QoS 2 at PUBCOMP.
    /// While disconnected it waits in the offline queue. Returns the packet identifier of a QoS
    /// 1/2 message.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        waiter: R::Publish,
    ) -> Result<Option<PacketId>, Rejected<R::Publish>> {
        self.publish_inner(now, topic, qos, retain, payload, None, waiter)
    }

    /// [`publish`](Self::publish) with MQTT 5 properties: Message Expiry Interval, Payload Format
    /// Indicator, Content Type, Response Topic, Correlation Data, User Properties (see
    /// [`sansmq::Client::publish_with`]). A message the broker refuses with a Reason Code fails
    /// with [`Error::PublishRefused`]; one that expires in the offline queue with
    /// [`Error::Expired`]. Refused on an MQTT 3.1.1 connection unless `properties` is empty.
    #[allow(clippy::too_many_arguments)] // `publish`'s arguments and the properties
    pub fn publish_with_properties(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        properties: Properties,
        waiter: R::Publish,
    ) -> Result<Option<PacketId>, Rejected<R::Publish>> {
        let properties = Some(properties).filter(|p| !p.is_empty());
        self.publish_inner(now, topic, qos, retain, payload, properties, waiter)
    }

    #[allow(clippy::too_many_arguments)] // the private core of both publishes
    fn publish_inner(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        properties: Option<Properties>,
        waiter: R::Publish,
    ) -> Result<Option<PacketId>, Rejected<R::Publish>> {
        if self.link == Link::ShutDown {
            return Err(Rejected::new(Error::Closed, waiter));
        }
        if let Err(error) = self
            .options
            .check_publish_rules(&topic, payload.len(), qos, retain)
        {
            return Err(Rejected::new(error, waiter));
        }
        // The topic goes to the core; it is kept for the diagnostics only at its first use in
        // this connection (cloning it would allocate: a name copied from a `&str` is not shared).
        let first_use = self
            .diagnostics
            .is_first_use(topic.as_bytes())
            .then(|| topic.clone());
        let queued = self.core.queued_len();
        let published = match properties {
            None => self.core.publish(now, topic, qos, retain, payload),
            Some(properties) => self
                .core
                .publish_with(now, topic, qos, retain, payload, properties),
        };
        let id = match published {
            Ok(id) => id,
            Err(error) => return Err(Rejected::new(error, waiter)),
        };
        // `Ok` only once the message is in the store.
        if let Err(error) = self.persist(now) {
            return Err(Rejected::new(error, waiter));
        }
        if let Some(topic) = first_use {
            self.diagnostics
                .on_sent(now, Operation::Publish, &topic, id);
        }
        match id {
            Some(id) => {
                self.waiters.publishes.insert(id, (qos, waiter));
            }
            None => {
                // Encoded at once (not queued): it ends where the transmit buffer ends now.
                let end = (self.core.queued_len() == queued)
                    .then(|| {
                        self.poll_transmit()
                            .map(|bytes| self.written + bytes.len() as u64)
                    })
                    .flatten();
                self.waiters.await_written(end, waiter);
            }
        }
        self.process(now);
        Ok(id)
    }

    /// MQTT 5 request/response (MQTT 5.0 section 4.10), as mosquitto_rr does: publishes `payload`
    /// to `topic` with a Response Topic and Correlation Data, and answers `waiter` with the
    /// message a responder publishes back with the same Correlation Data, or
    /// [`Error::Timeout`] after the options' time-to-wait. `properties` may add User Properties,
    /// a Content Type and so on; its Response Topic and Correlation Data are set here.
    ///
    /// The response topic is [`Mqtt5Options::response_topic`](crate::Mqtt5Options::response_topic),
    /// by default `responses/<client id>`; the first request subscribes to it (QoS 1), and it
    /// stays subscribed. A message on it that answers no waiting request reaches the application
    /// as any message does. Refused on an MQTT 3.1.1 connection.
    #[allow(clippy::too_many_arguments)] // `publish_with_properties`'s arguments
    pub fn request(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        mut properties: Properties,
        waiter: R::Request,
    ) -> Result<(), Rejected<R::Request>> {
        if let Err(error) = self.accepts_requests() {
            return Err(Rejected::new(error, waiter));
        }
        let Some(mqtt5) = self.options.mqtt5_options() else {
            let error = Error::Unsupported {
                option: "request",
                reason: "request/response needs MQTT 5 (ConnectOptions::mqtt5)".into(),
            };
            return Err(Rejected::new(error, waiter));
        };
        // The broker's rules bind a request as they bind any publish and subscribe.
        if let Err(error) = self
            .options
            .check_publish_rules(&topic, payload.len(), qos, false)
        {
            return Err(Rejected::new(error, waiter));
        }
        let response_topic = match self.waiters.responses.topic() {
            Some(subscribed) => subscribed.clone(),
            None => {
                let default = format!("responses/{}", self.options.client_id());
                let name = mqtt5.response_topic_name().unwrap_or(&default);
                let rules = self
                    .options
                    .check_subscribe_rules([(name, QoS::AtLeastOnce)]);
                if let Err(error) = rules {
                    return Err(Rejected::new(error, waiter));
                }
                let response_topic = match TopicName::try_from(name) {
                    Ok(topic) => topic,
                    Err(error) => return Err(Rejected::new(error, waiter)),
                };
                let filter = match TopicFilter::try_from(name) {
                    Ok(filter) => filter,
                    Err(error) => return Err(Rejected::new(error, waiter)),
                };
                let filters = vec![SubscribeFilter::new(filter, QoS::AtLeastOnce)];
                if let Err(error) = self.core.subscribe(now, filters) {
                    return Err(Rejected::new(error, waiter));
                }
                self.waiters.responses.subscribed(response_topic.clone());
                response_topic
            }
        };
        let (number, correlation) = self.waiters.responses.next_correlation();
        properties.set_response_topic(Some(response_topic));
        properties.set_correlation_data(Some(correlation));
        let id = match self
            .core
            .publish_with(now, topic, qos, false, payload, properties)
        {
            Ok(id) => id,
            Err(error) => return Err(Rejected::new(error, waiter)),
        };
        if let Err(error) = self.persist(now) {
            return Err(Rejected::new(error, waiter));
        }
        let deadline = crate::deadline_after(now, self.options.time_to_wait_limit());
        self.waiters.responses.insert(number, id, deadline, waiter);
        self.process(now);
        Ok(())
    }

    /// Publishes a QoS 1 message that nothing published later overtakes (see
    /// [`sansmq::Client::publish_barrier`]); it completes at its PUBACK.
    pub fn publish_barrier(
        &mut self,
        now: Instant,
        topic: TopicName,
        payload: Bytes,
        waiter: R::Publish,
    ) -> Result<PacketId, Rejected<R::Publish>> {
        if self.link == Link::ShutDown {
            return Err(Rejected::new(Error::Closed, waiter));
        }
        match self.core.publish_barrier(now, topic, payload) {
            Ok(id) => {
                if let Err(error) = self.persist(now) {
                    return Err(Rejected::new(error, waiter));
                }
                self.waiters
                    .publishes
                    .insert(id, (QoS::AtLeastOnce, waiter));
                self.process(now);
                Ok(id)
            }
            Err(error) => Err(Rejected::new(error, waiter)),
        }
    }

    /// Subscribes to `filters` (already checked against the broker's rules,
    /// [`ConnectOptions::subscribe_filters`]). Joins the SUBSCRIBE restoring the session when that
    /// asks for these filters already (see [`Resubscription`](crate::resubscription::Resubscription)),
    /// else sends one. Refused with [`CommandError::NotConnected`] unless connected or
    /// reconnecting.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        waiter: R::Subscribe,
    ) -> Result<(), Rejected<R::Subscribe>> {
        self.subscribe_with_properties(now, filters, Properties::new(), waiter)
    }

    /// [`subscribe`](Self::subscribe) with MQTT 5 properties: a Subscription Identifier (the
    /// messages it matches carry it, [`Message::subscription_identifiers`](crate::Message)),
    /// User Properties. Each filter's MQTT 5 options (No Local, Retain As Published, Retain
    /// Handling) are in its [`SubscribeFilter`]. Refused on an MQTT 3.1.1 connection unless
    /// `properties` is empty.
    pub fn subscribe_with_properties(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        waiter: R::Subscribe,
    ) -> Result<(), Rejected<R::Subscribe>> {
        if let Err(error) = self.accepts_requests() {
            return Err(Rejected::new(error, waiter));
        }
        // A restoring SUBSCRIBE carries no properties of this call's: one with a Subscription
        // Identifier or User Properties goes out on its own, and so does one without for a
        // filter the restore asks for with its former identifier (a new SUBSCRIBE replaces it).
        let no_identifier = filters
            .iter()
            .all(|f| self.core.subscription_identifier(&f.filter).is_none());
        let join = if properties.is_empty() && no_identifier {
            self.waiters.restore.join(&filters, waiter)
        } else {
            Join::Send(waiter)
        };
        let waiter = match join {
            Join::Send(waiter) => waiter,
            Join::Joined => return Ok(()),
            Join::Granted { waiter, results } => {
                self.complete(Completed::Subscribe(waiter, granted_qos(results)));
                return Ok(());
            }
        };
        let requested: Vec<TopicFilter> = filters.iter().map(|f| f.filter.clone()).collect();
        match self.core.subscribe_with(now, filters, properties) {
            Ok(id) => {
                for filter in &requested {
                    self.diagnostics
                        .on_sent(now, Operation::Subscribe, filter, Some(id));
                }
                self.waiters.subscribes.insert(id, waiter);
                self.process(now);
                Ok(())
            }
            Err(error) => Err(Rejected::new(error, waiter)),
        }
    }

    /// Unsubscribes from `filters`; refused with [`CommandError::NotConnected`] unless connected
    /// or reconnecting.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
        waiter: R::Unsubscribe,
    ) -> Result<(), Rejected<R::Unsubscribe>> {
        self.unsubscribe_with_properties(now, filters, Properties::new(), waiter)
    }

    /// [`unsubscribe`](Self::unsubscribe) with MQTT 5 properties (User Properties).
    pub fn unsubscribe_with_properties(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
        properties: Properties,
        waiter: R::Unsubscribe,
    ) -> Result<(), Rejected<R::Unsubscribe>> {
        if let Err(error) = self.accepts_requests() {
            return Err(Rejected::new(error, waiter));
        }
        self.waiters.restore.on_unsubscribe(&filters);
        match self.core.unsubscribe_with(now, filters, properties) {
            Ok(id) => {
                self.waiters.unsubscribes.insert(id, waiter);
                self.process(now);
                Ok(())
            }
            Err(error) => Err(Rejected::new(error, waiter)),
        }
    }

    /// The application is done with a received QoS 1/2 message: its PUBACK / PUBREC goes out
    /// (in order, MQTT-4.6.0-2). Refused for a message of a session the broker has forgotten.
    pub fn ack(&mut self, now: Instant, key: AckKey) -> Result<(), Error> {
        if !key.is_of_session(self.session) {
            return Err(CommandError::UnknownAck(key.id).into());
        }
        self.core.ack(now, key.id)?;
        // A QoS 2 identifier held now must be in the store before its PUBREC goes out.
        self.persist(now)
    }

    /// MQTT 5: starts a re-authentication on the open connection with the options' authenticator
    /// ([`Mqtt5Options::authenticator`](crate::Mqtt5Options::authenticator)). Messages keep
    /// flowing meanwhile; a server that refuses it ends the connection with its Reason Code.
    pub fn reauthenticate(&mut self, now: Instant) -> Result<(), Error> {
        self.core.reauthenticate(now)?;
        self.process(now);
        Ok(())
    }

    /// Disconnects: waits up to `drain` for unacknowledged QoS 1/2 messages, sends DISCONNECT and
    /// closes once the broker has read it ([`Closing`]), so the will is not published. Automatic
    /// reconnect stops until the next `connect`. Not connected, it just stops trying. During a
    /// requested close, the waiter is answered with the close's end.
    pub fn disconnect(&mut self, now: Instant, drain: Duration, waiter: R::Disconnect) {
        self.disconnect_with(now, drain, Disconnect::new(), waiter);
    }

    /// [`disconnect`](Self::disconnect) with an MQTT 5 DISCONNECT of the application's own (a
    /// Reason Code, a Session Expiry Interval, a Reason String, User Properties), as
    /// [`sansmq::Client::disconnect_with`] takes it.
    pub fn disconnect_with(
        &mut self,
        now: Instant,
        drain: Duration,
        disconnect: Disconnect,
        waiter: R::Disconnect,
    ) {
        self.servers.stop();
        // A requested close under way (draining or closing): this one ends with it.
        let draining = self.link == Link::Connected && !self.waiters.disconnect.is_empty();
        if draining || matches!(self.transport, Transport::Closing(..)) {
            self.waiters.disconnect.push(waiter);
            return;
        }
        self.waiters.disconnect.push(waiter);
        if self.link == Link::Connected && self.core.disconnect_with(now, drain, disconnect).is_ok()
        {
            self.process(now);
            return;
        }
        // Opening a transport, awaiting CONNACK or waiting to reconnect: just stop.
        self.drop_transport(now);
        if self.link != Link::ShutDown {
            self.link = Link::Idle;
        }
        if let Some(connect) = self.waiters.connect.take() {
            self.complete(Completed::Connect(connect, Err(Error::Closed)));
        }
        self.process(now);
        for waiter in std::mem::take(&mut self.waiters.disconnect) {
            self.complete(Completed::Disconnect(waiter, Ok(())));
        }
    }

    /// The client ends for good (its last handle was dropped, or `close` was called): the
    /// transport closes and every waiter gets [`Error::Closed`].
    pub fn shut_down(&mut self, now: Instant) {
        self.servers.stop();
        self.link = Link::ShutDown;
        self.drop_transport(now);
        while self.core.poll_event().is_some() {}
        let mut events = std::mem::take(&mut self.events);
        self.waiters.fail_all(&Error::Closed, &mut events);
        for waiter in self.waiters.disconnect.drain(..) {
            events.push_back(Event::Completed(Completed::Disconnect(waiter, Ok(()))));
        }
        self.events = events;
    }

    // ---- inputs ----

    /// The transport [`Action::Open`] asked for is open: CONNECT goes out next.
    pub fn handle_opened(&mut self, now: Instant) {
        if let Transport::Opening(uri) = &self.transport {
            tracing::debug!(%uri, "transport open");
            self.transport = Transport::Open(uri.clone());
            self.written = 0;
        }
        self.process(now);
    }

    /// The transport [`Action::Open`] asked for could not be opened (DNS, TCP, TLS): `error`
    /// says why, and the next URI or a later attempt follows.
    pub fn handle_open_failed(&mut self, now: Instant, error: Error) {
        if matches!(self.transport, Transport::Opening(_)) {
            self.transport_ended(now, Some(error));
        }
    }

    /// The buffer to read into; call [`handle_read`](Self::handle_read) after appending to it.
    /// Reading into it directly saves a copy (the payloads of messages are slices of it).
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.core.read_buffer()
    }

    /// Bytes were appended to [`read_buffer`](Self::read_buffer).
    pub fn handle_read(&mut self, now: Instant) {
        match self.transport {
            Transport::Open(_) => self.core.handle_read(now),
            // A requested close discards what still arrives (MQTT-3.14.4-1: nothing more is
            // processed after DISCONNECT); nothing else is connected to read from.
            _ => self.core.read_buffer().clear(),
        }
        self.process(now);
    }

    /// Bytes read from the transport, cut anywhere (a copying alternative to
    /// [`read_buffer`](Self::read_buffer)).
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        self.core.read_buffer().extend_from_slice(bytes);
        self.handle_read(now);
    }

    /// The first `n` bytes of [`poll_transmit`](Self::poll_transmit) were written.
    pub fn handle_transmitted(&mut self, now: Instant, n: usize) {
        if n == 0 || self.poll_transmit().is_none() {
            return;
        }
        self.core.handle_transmitted(now, n);
        self.written += n as u64;
        self.process(now);
    }

    /// The transport ended: the broker's end of stream (`None`) or a failure. Not needed after
    /// [`Action::Close`]; ignored while a new transport is being opened (a late report of the
    /// previous one's end must not fail the new attempt).
    pub fn handle_closed(&mut self, now: Instant, error: Option<Error>) {
        match self.transport {
            Transport::None => {}
            // The broker went first, or closed after reading our DISCONNECT: the close is over.
            Transport::Closing(..) => {
                self.transport = Transport::None;
                self.finish_close(now);
                self.process(now);
            }
            // The end of an earlier transport, reported late: the one being opened answers
            // through `handle_opened` or `handle_open_failed`.
            Transport::Opening(_) => {}
            Transport::Open(_) => self.transport_ended(now, error),
        }
    }

    /// The time [`poll_timeout`](Self::poll_timeout) gave has come (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.poll_timeout().is_some_and(|at| now >= at) {
            self.core.handle_timeout(now);
        }
        if let Some(store) = &mut self.store {
            if store.sync_deadline().is_some_and(|at| now >= at) {
                if let Err(error) = store.sync() {
                    self.store_failed(now, error);
                    return;
                }
            }
        }
        if let Link::Reconnecting { at } = self.link {
            if now >= at {
                self.attempt(now);
            }
        }
        if let Transport::Closing(_, closing) = &self.transport {
            if closing.is_expired(now) {
                self.finish_close(now);
            }
        }
        for waiter in self.waiters.responses.expired(now) {
            let timeout = Error::Timeout(self.options.time_to_wait_limit());
            self.complete(Completed::Request(waiter, Err(timeout)));
        }
        self.process(now);
    }

    // ---- outputs ----

    /// The next thing only the driver can do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Bytes to write to the open transport; report what was written with
    /// [`handle_transmitted`](Self::handle_transmitted). Nothing while no transport is open.
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        match &self.transport {
            Transport::Open(_) | Transport::Closing(..) => self.core.poll_transmit(),
            Transport::None | Transport::Opening(_) => None,
        }
    }

    /// What happened, for the application.
    pub fn poll_event(&mut self) -> Option<Event<R>> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) at the latest: the core's timers
    /// (CONNACK, keep-alive), the next reconnect, the end of a requested close.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reconnect = match self.link {
            Link::Reconnecting { at } => Some(at),
            _ => None,
        };
        let closing = match &self.transport {
            Transport::Closing(_, closing) => Some(closing.deadline()),
            _ => None,
        };
        let store = self.store.as_ref().and_then(Persistence::sync_deadline);
        let request = self.waiters.responses.deadline();
        [self.core.poll_timeout(), reconnect, closing, store, request]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether to read from the transport now. Not while the acknowledgements queued for the
    /// broker fill the transmit buffer ([`sansmq::Client::wants_read`]): a broker that sends and
    /// never reads would grow it without limit; TCP slows the broker down instead, and writing
    /// resumes reading. Always during a requested close, to see the broker's end of stream.
    pub fn wants_read(&self) -> bool {
        match self.transport {
            Transport::Open(_) => self.core.wants_read(),
            Transport::Closing(_, closing) => closing.is_draining(),
            Transport::None | Transport::Opening(_) => false,
        }
    }

    // ---- helpers ----

    /// Subscribes and unsubscribes need a connection now or soon.
    fn accepts_requests(&self) -> Result<(), Error> {
        match self.link {
            Link::Idle => Err(CommandError::NotConnected.into()),
            Link::ShutDown => Err(Error::Closed),
            Link::Connecting | Link::Connected | Link::Reconnecting { .. } => Ok(()),
        }
    }

    fn complete(&mut self, completed: Completed<R>) {
        self.events.push_back(Event::Completed(completed));
    }

    /// Hands the core's session records to the store, syncing when one must be durable before
    /// the driver acts. A store that fails stops the client ([`store_failed`](Self::store_failed))
    /// and the error is returned.
    pub(super) fn persist(&mut self, now: Instant) -> Result<(), Error> {
        let Some(store) = &mut self.store else {
            return Ok(());
        };
        match store.record(&mut self.core) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.store_failed(now, error)),
        }
    }

    /// The store failed: what it should have kept may not be kept, so nothing more may be
    /// acknowledged to anyone. The client stops as at [`shut_down`](Self::shut_down), every
    /// waiter fails with the store's error, and the application hears it as the connection's
    /// loss, with no reconnect.
    fn store_failed(&mut self, now: Instant, error: sansmq_store::StoreError) -> Error {
        let error = Error::from(error);
        tracing::error!(%error, "the session store failed: the client stops");
        self.store = None;
        self.servers.stop();
        self.link = Link::ShutDown;
        self.drop_transport(now);
        while self.core.poll_event().is_some() {}
        while self.core.poll_session_record().is_some() {}
        let mut events = std::mem::take(&mut self.events);
        self.waiters.fail_all(&error, &mut events);
        for waiter in self.waiters.disconnect.drain(..) {
            events.push_back(Event::Completed(Completed::Disconnect(waiter, Ok(()))));
        }
        events.push_back(Event::ConnectionLost {
            cause: error.clone(),
            reconnect_at: None,
        });
        self.events = events;
        error
    }

    /// Completes the QoS 0 messages written by now and moves a requested close on.
    fn after_writes(&mut self, now: Instant) {
        if self.waiters.awaits_writes() {
            let open = matches!(self.transport, Transport::Open(_) | Transport::Closing(..));
            let all = open && self.core.poll_transmit().is_none() && self.core.queued_len() == 0;
            let mut events = std::mem::take(&mut self.events);
            self.waiters
                .complete_written(self.written, all, &mut events);
            self.events = events;
        }
        if let Transport::Closing(_, closing) = &mut self.transport {
            if self.core.poll_transmit().is_none() && closing.handle_flushed(now) {
                self.actions.push_back(Action::ShutdownWrite);
            }
        }
    }
}

#[cfg(test)]
mod tests;
