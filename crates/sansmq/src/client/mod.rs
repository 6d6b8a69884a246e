//! The client session: a state machine that turns commands, received bytes and the current time
//! into bytes to send, [`Event`]s and the next deadline.
//!
//! See the crate root for the run loop a driver implements around [`Client`].

mod authenticator;
mod config;
mod error;
mod event;
mod id_set;
mod incoming;
mod negotiated;
mod outgoing;
mod packet_id;
mod receive;
mod session_log;
mod snapshot;
mod subscriptions;
mod topic_alias;
mod unwritten_acks;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

pub use authenticator::{AuthError, Authenticator};
pub use config::{
    Config, DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PACKET_SIZE, DEFAULT_OUTGOING_TOPIC_ALIASES,
    RestoreSubscriptions, SessionRecording, UnackedPolicy,
};
pub use error::CommandError;
pub use event::{DisconnectReason, Event, ProtocolViolation, ServerReason, SubscribeRefused};
pub use negotiated::Negotiated;
pub use session_log::{ReplayError, SessionRecord};
pub use snapshot::{InflightMessage, SessionSnapshot};

use crate::packet::{
    Connect, Disconnect, EncodeBody, EncodeError, Packet, PacketDecoder, PacketId, Properties,
    Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, Subscribe, SubscribeFilter,
    Unsubscribe,
};
use crate::string::MqttString;
use crate::topic::{TopicFilter, TopicName};
use incoming::Incoming;
use outgoing::{Inflight, Outgoing, Queued, Stage};
use packet_id::PacketIds;
use subscriptions::Subscriptions;
use topic_alias::{InboundAliases, OutboundAliases};
use unwritten_acks::{AckKind, UnwrittenAcks};

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No connection; `connect` opens one. The session is kept.
    Disconnected,
    /// CONNECT sent, CONNACK awaited.
    AwaitingConnAck,
    /// CONNACK accepted.
    Connected,
    /// `disconnect` with a drain time: waiting for inflight messages before DISCONNECT.
    Draining,
}

/// Where the keep-alive exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    /// No PINGREQ outstanding.
    Idle,
    /// PINGREQ encoded, not yet taken by the driver; `end` is the stream offset just past it. The
    /// broker cannot answer what it has not received, so PINGRESP is not awaited yet (a transmit
    /// buffer that does not drain is caught by the stall check instead).
    Unwritten { end: u64 },
    /// PINGREQ written; PINGRESP is due by then (`None`: the ping timeout is too long to expire).
    Awaiting(Option<Instant>),
}

/// An AUTH with `reason_code`, the authenticator's method and `data`.
fn auth_packet(
    authenticator: &dyn Authenticator,
    reason_code: crate::packet::ReasonCode,
    data: Option<Bytes>,
) -> crate::packet::Auth {
    let mut properties = Properties::new();
    properties.set_authentication_method(MqttString::try_from(authenticator.method()).ok());
    properties.set_authentication_data(data);
    crate::packet::Auth::new(reason_code).with_properties(properties)
}

/// MQTT 5: when `publish`'s Message Expiry Interval, counted from `now`, ends.
fn expiry_deadline(now: Instant, publish: &Publish) -> Option<Instant> {
    let secs = publish.properties().message_expiry_interval?;
    deadline(now, Duration::from_secs(secs.into()))
}

/// `now + duration`, or `None` (no deadline) when that is beyond what [`Instant`] can hold: a
/// user's `Duration::MAX` means "never", not a panic.
fn deadline(now: Instant, duration: Duration) -> Option<Instant> {
    now.checked_add(duration)
}

/// An MQTT 3.1, 3.1.1 or 5 client session without IO.
///
/// The driver owns the transport and the clock. After every input (a command, bytes read, a
/// timeout, the transport closing, bytes written) it drains the outputs:
/// [`poll_transmit`](Self::poll_transmit) for bytes to write, [`poll_event`](Self::poll_event) for
/// [`Event`]s, and [`poll_timeout`](Self::poll_timeout) for when to call
/// [`handle_timeout`](Self::handle_timeout) next.
///
/// The session (unacknowledged QoS 1/2 messages, the queue, incoming QoS 2 state, subscriptions)
/// outlives a connection: after [`Event::Disconnected`], call [`connect`](Self::connect) again on a
/// new transport and it resumes.
#[derive(Debug)]
pub struct Client {
    config: Config,
    state: State,
    decoder: PacketDecoder,
    transmit: BytesMut,
    events: VecDeque<Event>,
    ids: PacketIds,
    outgoing: Outgoing,
    incoming: Incoming,
    subscriptions: Subscriptions,
    connack_deadline: Option<Instant>,
    /// When the last packet was put into the transmit buffer (for keep-alive).
    last_sent: Option<Instant>,
    ping: Ping,
    /// Since when the bytes in the transmit buffer have waited with none taken: set when the
    /// buffer goes from empty to not, and whenever the driver takes some.
    stall_from: Option<Instant>,
    /// The stream offsets of unwritten PUBREC/PUBREL/PUBCOMP, so repeats queue nothing more.
    acks: UnwrittenAcks,
    /// `disconnect` gives up waiting for inflight messages then.
    drain_deadline: Option<Instant>,
    /// Changes of the session not yet taken by the driver ([`Config::session_recording`]).
    records: VecDeque<SessionRecord>,
    /// How many messages at the front of the queue the records hold (all of them, unless
    /// [`SessionRecording::ExceptQueue`] left some out).
    recorded_queued: usize,
    /// What the last CONNACK settled (MQTT 5); our own settings before one.
    negotiated: Negotiated,
    /// MQTT 5: the client identifier a server assigned, used for later connections while the
    /// configured one is empty.
    assigned_client_id: Option<MqttString>,
    /// MQTT 5: the server's Topic Aliases on this connection.
    aliases_in: InboundAliases,
    /// MQTT 5: our Topic Aliases on this connection.
    aliases_out: OutboundAliases,
    /// MQTT 5: the enhanced authentication method, if the application set one.
    authenticator: Option<Box<dyn Authenticator>>,
    /// MQTT 5: a re-authentication is under way.
    reauthenticating: bool,
    /// The DISCONNECT a requested disconnect ends with (`disconnect_with`).
    disconnect_packet: Option<Disconnect>,
}

impl Client {
    /// A disconnected client with an empty session.
    pub fn new(config: Config) -> Self {
        let decoder = PacketDecoder::with_protocol(config.max_packet_size, config.protocol);
        let negotiated = Negotiated::unrestricted(&config);
        Self {
            config,
            state: State::Disconnected,
            decoder,
            transmit: BytesMut::new(),
            events: VecDeque::new(),
            ids: PacketIds::new(),
            outgoing: Outgoing::default(),
            incoming: Incoming::default(),
            subscriptions: Subscriptions::default(),
            connack_deadline: None,
            last_sent: None,
            ping: Ping::Idle,
            stall_from: None,
            acks: UnwrittenAcks::default(),
            drain_deadline: None,
            records: VecDeque::new(),
            recorded_queued: 0,
            negotiated,
            assigned_client_id: None,
            aliases_in: InboundAliases::default(),
            aliases_out: OutboundAliases::default(),
            authenticator: None,
            reauthenticating: false,
            disconnect_packet: None,
        }
    }

    /// MQTT 5: authenticates with `authenticator`'s method (enhanced authentication, MQTT 5.0
    /// section 4.12) from the next [`connect`](Self::connect) on: its method and first data go in
    /// CONNECT, and the client answers the server's AUTH challenges with it.
    pub fn set_authenticator(&mut self, authenticator: impl Authenticator + 'static) {
        self.authenticator = Some(Box::new(authenticator));
    }

    /// MQTT 5: starts a re-authentication on the open connection (MQTT 5.0 section 4.12.1) with
    /// the authenticator's method; [`Event::Reauthenticated`] reports its success, and a server
    /// that refuses it ends the connection with DISCONNECT. Messages keep flowing meanwhile.
    pub fn reauthenticate(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.state != State::Connected {
            return Err(CommandError::NotConnected);
        }
        let Some(authenticator) = self.authenticator.as_mut() else {
            return Err(CommandError::InvalidConfig(
                "reauthenticate needs an authenticator (set_authenticator) and MQTT 5",
            ));
        };
        if !self.config.protocol.is_v5() {
            return Err(CommandError::InvalidConfig(
                "reauthenticate needs an authenticator (set_authenticator) and MQTT 5",
            ));
        }
        let data = authenticator
            .start()
            .map_err(CommandError::Authentication)?;
        let auth = auth_packet(
            authenticator.as_ref(),
            crate::packet::ReasonCode::ReAuthenticate,
            data,
        );
        self.reauthenticating = true;
        self.send(now, &Packet::Auth(auth));
        Ok(())
    }

    /// What the server's CONNACK settled for the current (or last) connection: in MQTT 5 its
    /// limits, capabilities and the identifier it assigned; see [`Negotiated`].
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the configuration; it takes effect at the next [`connect`](Self::connect) (so a
    /// driver can put fresh credentials in before every reconnect).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Whether CONNACK accepted the current connection (and `disconnect` was not asked for).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// QoS 1/2 messages sent and not yet acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.outgoing.inflight.len()
    }

    /// Messages waiting to be sent.
    pub fn queued_len(&self) -> usize {
        self.outgoing.queued.len()
    }

    /// The subscriptions the broker granted, with their QoS; for subscribing again after a
    /// reconnect without a session (see [`resubscribe`](Self::resubscribe)).
    pub fn subscriptions(&self) -> impl Iterator<Item = (&TopicFilter, QoS)> {
        self.subscriptions.active.iter().map(|(f, s)| (f, s.qos))
    }

    /// MQTT 5: the Subscription Identifier the granted `filter` was last subscribed with, which
    /// a restore asks for again.
    pub fn subscription_identifier(
        &self,
        filter: &TopicFilter,
    ) -> Option<crate::packet::SubscriptionId> {
        self.subscriptions.identifiers.get(filter).copied()
    }

    // ---- commands ----

    /// Starts a connection: queues CONNECT and starts the CONNACK timer. The driver has just opened
    /// a transport; drain [`poll_transmit`](Self::poll_transmit) into it.
    ///
    /// Credentials and other settings are read from [`config`](Self::config) now, so they may change
    /// between connections.
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.state != State::Disconnected {
            return Err(CommandError::AlreadyConnected);
        }
        let keep_alive = self.validate_config()?;
        let mut client_id = self.config.client_id.clone();
        if client_id.as_str().is_empty() {
            // MQTT 5: the identifier the server assigned names the session it may keep.
            if let Some(assigned) = &self.assigned_client_id {
                client_id = assigned.clone();
            }
        }
        let mut properties = self.connect_properties();
        if let Some(authenticator) = self
            .authenticator
            .as_mut()
            .filter(|_| self.config.protocol.is_v5())
        {
            let data = authenticator
                .start()
                .map_err(CommandError::Authentication)?;
            let method = MqttString::try_from(authenticator.method()).map_err(|_| {
                CommandError::InvalidConfig("the authentication method is not an MQTT string")
            })?;
            properties.set_authentication_method(Some(method));
            properties.set_authentication_data(data);
        }
        self.reauthenticating = false;
        let connect = Connect {
            protocol: self.config.protocol,
            keep_alive,
            clean_session: self.config.clean_session,
            client_id,
            will: self.config.will.clone(),
            username: self.config.username.clone(),
            password: self.config.password.clone(),
            properties,
        };
        let mut transmit = BytesMut::with_capacity(connect.encoded_len());
        connect.encode(&mut transmit)?;
        self.transmit = transmit;
        self.acks.reset();
        self.decoder =
            PacketDecoder::with_protocol(self.config.max_packet_size, self.config.protocol);
        self.negotiated = Negotiated::unrestricted(&self.config);
        self.aliases_in.reset(self.config.topic_alias_maximum);
        self.aliases_out.reset(0);
        self.state = State::AwaitingConnAck;
        self.connack_deadline = deadline(now, self.config.connack_timeout);
        self.last_sent = Some(now);
        self.stall_from = Some(now);
        self.ping = Ping::Idle;
        self.drain_deadline = None;
        Ok(())
    }

    /// The CONNECT's MQTT 5 properties: the configured ones, with the limits the session
    /// enforces put in from their own settings.
    fn connect_properties(&self) -> Properties {
        if !self.protocol().is_v5() {
            return Properties::new();
        }
        let mut properties = self.config.connect_properties.clone();
        properties.session_expiry_interval =
            Some(self.config.effective_session_expiry()).filter(|&secs| secs != 0);
        properties.receive_maximum = self.config.receive_maximum;
        properties.maximum_packet_size = u32::try_from(self.config.max_packet_size)
            .ok()
            .and_then(std::num::NonZeroU32::new);
        properties.topic_alias_maximum =
            Some(self.config.topic_alias_maximum).filter(|&max| max != 0);
        properties
    }

    /// The protocol the session speaks.
    fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    fn validate_config(&self) -> Result<u16, CommandError> {
        let Some(keep_alive) = self.config.keep_alive_secs() else {
            return Err(CommandError::InvalidConfig(
                "keep_alive is over 65,535 seconds, the most CONNECT can carry",
            ));
        };
        if self.config.max_inflight == 0 {
            return Err(CommandError::InvalidConfig(
                "max_inflight is 0: no QoS 1/2 message could ever be sent",
            ));
        }
        if self.config.max_transmit_buffer == 0 {
            return Err(CommandError::InvalidConfig(
                "max_transmit_buffer is 0: no QoS 0 message could ever be sent",
            ));
        }
        if self.protocol().is_v5() {
            self.config
                .connect_properties
                .validate(crate::packet::PropertyContext::Connect)?;
        } else if !self.config.connect_properties.is_empty() {
            return Err(CommandError::InvalidConfig(
                "connect_properties are MQTT 5; MQTT 3.1.1 has no properties",
            ));
        }
        if self.config.password.is_some()
            && self.config.username.is_none()
            && !self.protocol().is_v5()
        {
            return Err(CommandError::InvalidConfig(
                "a password needs a user name (MQTT-3.1.2-22)",
            ));
        }
        Ok(keep_alive)
    }

    /// Publishes a message. Returns the packet identifier of a QoS 1/2 message, which
    /// [`Event::Published`] will carry once the broker has it.
    ///
    /// The message goes out at once when connected and the window has room; otherwise it waits in
    /// the queue (also while disconnected: it goes out after the next CONNACK). Errors leave the
    /// session unchanged: [`CommandError::QueueFull`] is backpressure,
    /// [`CommandError::Encode`] a message over
    /// [`max_outgoing_packet_size`](Config::max_outgoing_packet_size).
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<Option<PacketId>, CommandError> {
        self.enqueue(now, topic, qos, retain, payload.into(), None, false)
    }

    /// [`publish`](Self::publish) with MQTT 5 properties: Message Expiry Interval, Payload Format
    /// Indicator, Content Type, Response Topic, Correlation Data, User Properties.
    ///
    /// The client sets Topic Aliases itself ([`Config::outgoing_topic_aliases`]), so one in
    /// `properties` is ignored; Subscription Identifiers are refused (a client must not send them,
    /// MQTT-3.3.4-6). MQTT 3.1.1 refuses any property.
    pub fn publish_with(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
        properties: Properties,
    ) -> Result<Option<PacketId>, CommandError> {
        let properties = Some(properties);
        self.enqueue(now, topic, qos, retain, payload.into(), properties, false)
    }

    /// Publishes a QoS 1 message that acts as a barrier: it goes out after everything published
    /// before it, and no PUBLISH, SUBSCRIBE or UNSUBSCRIBE goes out after it until its PUBACK
    /// arrives (they wait in the queue; acknowledgements and pings still flow). ApsaraMQ requires
    /// this for a token refresh on `$SYS/uploadToken`.
    ///
    /// The barrier holds across reconnects while the message is unacknowledged. It is not part of
    /// a [`snapshot`](Self::snapshot): a restored session sends the message as an ordinary one.
    pub fn publish_barrier(
        &mut self,
        now: Instant,
        topic: TopicName,
        payload: impl Into<Bytes>,
    ) -> Result<PacketId, CommandError> {
        let id = self.enqueue(
            now,
            topic,
            QoS::AtLeastOnce,
            false,
            payload.into(),
            None,
            true,
        )?;
        id.ok_or(CommandError::PacketIdsExhausted)
    }

    #[allow(clippy::too_many_arguments)] // the private core of `publish` and its variants
    #[inline]
    fn enqueue(
        &mut self,
        now: Instant,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        properties: Option<Properties>,
        barrier: bool,
    ) -> Result<Option<PacketId>, CommandError> {
        if self.state == State::Draining {
            return Err(CommandError::NotConnected);
        }
        let mut publish = Publish::new(topic, payload);
        publish.qos = qos;
        publish.retain = retain;
        // A stand-in until the real identifier is allocated, so the size counts it.
        publish.packet_id = (qos != QoS::AtMostOnce).then_some(PacketId::MIN);
        let has_properties = properties.is_some();
        if has_properties || self.config.protocol.is_v5() {
            self.check_publish_terms(&mut publish, properties)?;
            self.check_size(publish.encoded_len_in(self.protocol()))?;
        } else {
            // MQTT 3.1.1 and no properties: no server terms to check.
            self.check_size(publish.encoded_len())?;
        }
        // Only a Message Expiry Interval among the properties sets one.
        let expires = if has_properties {
            expiry_deadline(now, &publish)
        } else {
            None
        };
        let can_send_now = self.state == State::Connected
            && self.outgoing.queued.is_empty()
            && self.outgoing.active_barrier.is_none()
            && self.has_room_for(qos);
        if !can_send_now && self.outgoing.queued.len() >= self.config.max_queued {
            return Err(CommandError::QueueFull {
                max_queued: self.config.max_queued,
            });
        }
        if qos != QoS::AtMostOnce {
            publish.packet_id = Some(
                self.ids
                    .allocate()
                    .ok_or(CommandError::PacketIdsExhausted)?,
            );
        }
        let packet_id = publish.packet_id;
        if let Some(id) = packet_id.filter(|_| barrier) {
            self.outgoing.barriers.insert(id);
        }
        if can_send_now {
            // The queue is empty: nothing recorded waits before it. A QoS 0 message leaves the
            // session as it enters it, so it is not recorded at all.
            if self.is_recording() && qos != QoS::AtMostOnce {
                self.records
                    .push_back(SessionRecord::Accepted(publish.clone()));
                self.records.push_back(SessionRecord::Sent);
            }
            self.send_publish(now, publish, expires);
        } else {
            self.outgoing.queued.push_back(Queued { publish, expires });
            if self.config.session_recording == SessionRecording::All {
                self.record_queue();
            }
        }
        Ok(packet_id)
    }

    /// Subscribes to `filters`; returns the identifier [`Event::Subscribed`] will carry.
    ///
    /// Before CONNACK (or while disconnected) the request is kept and sent right after the next
    /// CONNACK, so a driver may subscribe as soon as it has called [`connect`](Self::connect).
    /// Fails with [`CommandError::NotConnected`] only during a graceful disconnect.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
    ) -> Result<PacketId, CommandError> {
        self.subscribe_with(now, filters, Properties::new())
    }

    /// [`subscribe`](Self::subscribe) with MQTT 5 properties: a Subscription Identifier, User
    /// Properties. The filters' MQTT 5 options (No Local, Retain As Published, Retain Handling)
    /// are in each [`SubscribeFilter`]. Refused up front when the server's CONNACK said it does
    /// not support wildcards, Subscription Identifiers or Shared Subscriptions.
    pub fn subscribe_with(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<PacketId, CommandError> {
        if self.state == State::Draining {
            return Err(CommandError::NotConnected);
        }
        // PacketId::MIN is a stand-in until allocated below.
        let mut subscribe =
            Subscribe::with_filters(PacketId::MIN, filters).with_properties(properties);
        EncodeBody::validate(&subscribe, self.protocol())?;
        self.check_subscribe_terms(&subscribe)?;
        self.check_size(subscribe.encoded_len_in(self.protocol()))?;
        subscribe.packet_id = self
            .ids
            .allocate()
            .ok_or(CommandError::PacketIdsExhausted)?;
        if self.state == State::Connected && self.outgoing.active_barrier.is_none() {
            self.send(now, &Packet::Subscribe(subscribe.clone()));
        } else if self.state == State::Connected {
            self.subscriptions.held.push(subscribe.packet_id); // sent when the barrier lifts
        } // otherwise `resume` sends it after CONNACK
        let packet_id = subscribe.packet_id;
        self.subscriptions.pending_subscribe.push(subscribe);
        Ok(packet_id)
    }

    /// Subscribes again to every filter the broker granted before, for a reconnect with
    /// `session_present = 0`: in one SUBSCRIBE (MQTT 5: one per Subscription Identifier, each
    /// filter with the options and identifier it was granted with). Returns the first
    /// SUBSCRIBE's identifier, `Ok(None)` if there is nothing to subscribe to.
    pub fn resubscribe(&mut self, now: Instant) -> Result<Option<PacketId>, CommandError> {
        let mut first = None;
        for (filters, properties) in self.subscriptions.to_subscribe_again(|_| true) {
            let id = self.subscribe_with(now, filters, properties)?;
            first.get_or_insert(id);
        }
        Ok(first)
    }

    /// At CONNACK, per [`Config::restore_subscriptions`]: queues one SUBSCRIBE (MQTT 5: one per
    /// Subscription Identifier) for the granted filters that no unanswered SUBSCRIBE asks for
    /// (those go out again anyway), before `resume` releases the queue, and announces each with
    /// [`Event::Resubscribing`].
    fn restore_subscriptions(&mut self, now: Instant, session_present: bool) {
        let restore = match self.config.restore_subscriptions {
            RestoreSubscriptions::Never => false,
            RestoreSubscriptions::WhenSessionLost => !session_present,
            RestoreSubscriptions::Always => true,
        };
        if !restore {
            return;
        }
        // What the pending SUBSCRIBEs ask for already, save those this CONNACK's Maximum Packet
        // Size refuses: `resume` gives them up, so they ask for nothing.
        let pending = &self.subscriptions.pending_subscribe;
        let asked = |filter: &TopicFilter| {
            pending
                .iter()
                .filter(|s| !self.request_refused_by_size(s.encoded_len_in(self.protocol())))
                .any(|s| s.filters.iter().any(|f| f.filter == *filter))
        };
        // One SUBSCRIBE per Subscription Identifier (MQTT 5), so that each filter keeps its own.
        let requests = self
            .subscriptions
            .to_subscribe_again(|filter| !asked(filter));
        for (filters, properties) in requests {
            // Still awaiting CONNACK: `subscribe` keeps the request for `resume` to send. A
            // server without Subscription Identifiers gets the filters without theirs.
            let subscribed = self
                .subscribe_with(now, filters.clone(), properties)
                .or_else(|_| self.subscribe(now, filters.clone()));
            if let Ok(packet_id) = subscribed {
                self.events
                    .push_back(Event::Resubscribing { packet_id, filters });
            }
        }
    }

    /// Unsubscribes from `filters`; returns the identifier [`Event::Unsubscribed`] will carry.
    /// Like [`subscribe`](Self::subscribe), a request made before CONNACK goes out after it.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
    ) -> Result<PacketId, CommandError> {
        self.unsubscribe_with(now, filters, Properties::new())
    }

    /// [`unsubscribe`](Self::unsubscribe) with MQTT 5 properties (User Properties).
    pub fn unsubscribe_with(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<PacketId, CommandError> {
        if self.state == State::Draining {
            return Err(CommandError::NotConnected);
        }
        // PacketId::MIN is a stand-in until allocated below.
        let mut unsubscribe = Unsubscribe::new(PacketId::MIN, filters).with_properties(properties);
        EncodeBody::validate(&unsubscribe, self.protocol())?;
        self.check_size(unsubscribe.encoded_len_in(self.protocol()))?;
        unsubscribe.packet_id = self
            .ids
            .allocate()
            .ok_or(CommandError::PacketIdsExhausted)?;
        if self.state == State::Connected && self.outgoing.active_barrier.is_none() {
            self.send(now, &Packet::Unsubscribe(unsubscribe.clone()));
        } else if self.state == State::Connected {
            self.subscriptions.held.push(unsubscribe.packet_id); // sent when the barrier lifts
        }
        let packet_id = unsubscribe.packet_id;
        self.subscriptions.pending_unsubscribe.push(unsubscribe);
        Ok(packet_id)
    }

    /// Manual-ack mode: the application is done with the received QoS 1/2 message `packet_id`.
    /// Its PUBACK (or PUBREC) goes out once every message received before it is acknowledged too
    /// (MQTT-4.6.0-2); while disconnected it waits for the next connection.
    ///
    /// [`Event::Connected`] with `session_present = false` voids the acks still held: the broker
    /// forgot those messages and may reuse their identifiers for new ones, so do not acknowledge
    /// messages received before it.
    pub fn ack(&mut self, now: Instant, packet_id: PacketId) -> Result<(), CommandError> {
        let qos = self
            .incoming
            .mark_acked(packet_id)
            .filter(|_| self.config.manual_acks)
            .ok_or(CommandError::UnknownAck(packet_id))?;
        if qos == QoS::ExactlyOnce
            && self.incoming.is_held(packet_id)
            && !self.incoming.is_unacked_exactly_once(packet_id)
        {
            // Recorded only now that the application has it: a process that ends before this
            // ack leaves the identifier free, so the broker's re-sent copy is delivered again.
            self.record(SessionRecord::IncomingHeld(packet_id));
        }
        self.flush_acks(now);
        Ok(())
    }

    /// Ends the connection with DISCONNECT. With a non-zero `drain`, first waits up to that long for
    /// inflight and queued messages to be acknowledged (no new ones are accepted meanwhile), so QoS
    /// 1/2 messages are not left behind. Then [`Event::Disconnected`] with
    /// [`DisconnectReason::Requested`]: write out what [`poll_transmit`](Self::poll_transmit) holds
    /// and close the transport. What is still unacknowledged stays in the session. A `drain` too
    /// long for an [`Instant`] (e.g. `Duration::MAX`) waits for the acknowledgements without end.
    pub fn disconnect(&mut self, now: Instant, drain: Duration) -> Result<(), CommandError> {
        self.disconnect_with(now, drain, Disconnect::new())
    }

    /// [`disconnect`](Self::disconnect) with an MQTT 5 DISCONNECT of your own: a Reason Code
    /// (0x04 Disconnect with Will Message has the server publish the will) and properties (a
    /// new Session Expiry Interval, a Reason String, User Properties).
    ///
    /// A connection opened with Session Expiry Interval 0 cannot set another one here
    /// (MQTT-3.14.2-2); MQTT 3.1.1 takes only the plain DISCONNECT.
    pub fn disconnect_with(
        &mut self,
        now: Instant,
        drain: Duration,
        disconnect: Disconnect,
    ) -> Result<(), CommandError> {
        EncodeBody::validate(&disconnect, self.protocol())?;
        let expiry = disconnect.properties().session_expiry_interval;
        if expiry.is_some_and(|secs| secs != 0) && self.config.effective_session_expiry() == 0 {
            return Err(CommandError::PropertyNotAllowed(
                "a non-zero Session Expiry Interval in DISCONNECT after CONNECT asked for 0 (MQTT-3.14.2-2)",
            ));
        }
        if self.state != State::Disconnected {
            self.disconnect_packet = Some(disconnect);
        }
        match self.state {
            State::Disconnected => Err(CommandError::NotConnected),
            State::Connected if !drain.is_zero() && !self.outgoing.is_empty() => {
                self.state = State::Draining;
                self.drain_deadline = deadline(now, drain);
                Ok(())
            }
            State::Draining if !drain.is_zero() => {
                self.drain_deadline = deadline(now, drain);
                Ok(())
            }
            _ => {
                self.finish_disconnect(now);
                Ok(())
            }
        }
    }

    // ---- inputs ----

    /// Bytes read from the transport, cut anywhere. Drain every output afterwards.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        if self.state == State::Disconnected {
            return; // bytes of a connection already given up
        }
        self.decoder.extend_from_slice(bytes);
        self.process(now);
    }

    /// The buffer to read into directly, avoiding a copy; call
    /// [`handle_read`](Self::handle_read) after adding bytes to it.
    ///
    /// Only append to it (`extend_from_slice`, `BufMut` writes, or `reserve` then a read into the
    /// spare capacity); never remove or change bytes already in it: they may be the start of a
    /// packet. With `std::io::Read`, [`handle_received`](Self::handle_received) and a stack buffer
    /// is simpler.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.decoder.buffer_mut()
    }

    /// Bytes were read into [`read_buffer`](Self::read_buffer). Drain every output afterwards.
    pub fn handle_read(&mut self, now: Instant) {
        if self.state == State::Disconnected {
            self.decoder.buffer_mut().clear();
            return;
        }
        self.process(now);
    }

    /// The driver wrote the first `n` bytes of [`poll_transmit`](Self::poll_transmit); the rest
    /// stays queued. Drain every output afterwards: room in the transmit buffer may release queued
    /// messages.
    ///
    /// Report every write, partial ones too, when it happens: bytes taken restart the stall limit
    /// ([`DisconnectReason::TransmitStalled`]), and the PINGRESP wait starts once the PINGREQ is
    /// written.
    pub fn handle_transmitted(&mut self, now: Instant, n: usize) {
        let n = n.min(self.transmit.len());
        if n > 0 {
            self.transmit.advance(n);
            self.acks.transmitted(n);
            self.stall_from = Some(now);
            if let Ping::Unwritten { end } = self.ping {
                if self.acks.is_written(end) {
                    self.ping = Ping::Awaiting(deadline(now, self.ping_timeout()));
                }
            }
        }
        self.pump(now);
    }

    /// The time [`poll_timeout`](Self::poll_timeout) gave has come (calling it early, or twice, is
    /// harmless). Sends PINGREQ when due, and gives the connection up when CONNACK or PINGRESP is
    /// overdue or the transmit buffer has stalled. Drain every output afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Disconnected => {}
            State::AwaitingConnAck => {
                if self.connack_deadline.is_some_and(|d| now >= d) {
                    self.fail(DisconnectReason::ConnAckTimeout);
                }
            }
            State::Connected | State::Draining => {
                if self.stall_deadline().is_some_and(|d| now >= d) {
                    self.fail(DisconnectReason::TransmitStalled);
                    return;
                }
                if matches!(self.ping, Ping::Awaiting(Some(d)) if now >= d) {
                    self.fail(DisconnectReason::KeepAliveTimeout);
                    return;
                }
                if self.state == State::Draining && self.drain_deadline.is_some_and(|d| now >= d) {
                    self.finish_disconnect(now);
                    return;
                }
                if self.ping == Ping::Idle && self.ping_due().is_some_and(|due| now >= due) {
                    self.send(now, &Packet::PingReq);
                    let end = self.acks.stream_end(self.transmit.len());
                    self.ping = Ping::Unwritten { end };
                }
            }
        }
    }

    /// The transport closed (EOF, reset, or the driver gave up on it). Emits
    /// [`Event::Disconnected`] unless the connection was already over. The session is kept.
    ///
    /// Whatever was waiting to be written or parsed belonged to that transport and is discarded,
    /// so [`poll_transmit`](Self::poll_transmit) returns `None` afterwards, even when the transport
    /// failed while flushing the DISCONNECT of a requested disconnect.
    pub fn handle_closed(&mut self, _now: Instant) {
        if self.state != State::Disconnected {
            self.fail(DisconnectReason::TransportClosed);
        }
        self.transmit.clear();
        self.acks.reset();
        self.decoder.buffer_mut().clear();
    }

    // ---- outputs ----

    /// Bytes to write to the transport, if any. Write what you can, then report it with
    /// [`handle_transmitted`](Self::handle_transmitted). Many packets are coalesced here, so one
    /// write carries them all.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        (!self.transmit.is_empty()).then_some(&self.transmit[..])
    }

    /// Whether the driver should read from the transport now.
    ///
    /// `false` while the bytes waiting in [`poll_transmit`](Self::poll_transmit) reach
    /// [`Config::max_transmit_buffer`]: every packet read may queue an acknowledgement, so a peer
    /// that keeps sending and never reads would otherwise grow this buffer without limit. Stop
    /// reading until [`handle_transmitted`](Self::handle_transmitted) makes room; TCP's window then
    /// slows the peer down. Ask again after every input.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.transmit.len() < self.config.max_transmit_buffer
    }

    /// The next event, if any. Drain until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next change of the session for a session store, oldest first; never any while
    /// [`Config::session_recording`] is [`SessionRecording::Off`].
    ///
    /// Drain until `None` after every input (a command counts), append each record to the store
    /// in this order, and make them durable before acting on that input: before telling the
    /// application that `publish` succeeded, before writing [`poll_transmit`](Self::poll_transmit)'s
    /// bytes (a PUBREL or PUBREC may follow from a record). [`SessionRecord::needs_sync`] says
    /// which records need that; the others may wait for the next one that does.
    #[must_use]
    pub fn poll_session_record(&mut self) -> Option<SessionRecord> {
        self.records.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next; `None` while there is
    /// nothing to wait for. Ask again after every input: it changes as packets come and go.
    ///
    /// The instant may already have passed: call `handle_timeout` then, before waiting (a zero
    /// read timeout is an error for `std::net`). Call it whenever `now >= poll_timeout()`, also
    /// while reads keep returning data: keep-alive counts what the client *sent*, so a driver that
    /// only checks the timer when a read times out never pings a broker that talks a lot.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Disconnected => None,
            State::AwaitingConnAck => self.connack_deadline,
            State::Connected | State::Draining => {
                let keep_alive = match self.ping {
                    Ping::Idle => self.ping_due(),
                    Ping::Unwritten { .. } => None,
                    Ping::Awaiting(due) => due,
                };
                [keep_alive, self.drain_deadline, self.stall_deadline()]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    // ---- internals ----

    /// The keep-alive in force: the MQTT 5 server's Server Keep Alive when it sent one, else
    /// ours (read live, like every setting used while connected).
    fn keep_alive(&self) -> Duration {
        if self.negotiated.properties.server_keep_alive.is_some() {
            self.negotiated.keep_alive
        } else {
            self.config.keep_alive
        }
    }

    /// How long a PINGREQ waits for its PINGRESP: the configured timeout, but at most half the
    /// MQTT 5 server's Server Keep Alive when it set one, so that a dead link is still noticed
    /// within 1.5 times the keep-alive the server expects, however long ours was.
    fn ping_timeout(&self) -> Duration {
        let configured = self.config.ping_timeout;
        let server = self.negotiated.keep_alive;
        if self.negotiated.properties.server_keep_alive.is_some() && !server.is_zero() {
            configured.min(server / 2)
        } else {
            configured
        }
    }

    fn ping_due(&self) -> Option<Instant> {
        let keep_alive = self.keep_alive();
        if keep_alive.is_zero() {
            return None;
        }
        self.last_sent.and_then(|t| deadline(t, keep_alive))
    }

    /// When bytes waiting in the transmit buffer, none of them taken, end the connection with
    /// [`DisconnectReason::TransmitStalled`]: after the keep-alive interval (the broker, which
    /// hears nothing from us meanwhile, gives up at 1.5 times it, MQTT-3.1.2-24), or after the
    /// ping timeout when keep-alive is off. Never when that is zero too.
    fn stall_deadline(&self) -> Option<Instant> {
        if self.transmit.is_empty() {
            return None;
        }
        let keep_alive = self.keep_alive();
        let limit = if keep_alive.is_zero() {
            self.ping_timeout()
        } else {
            keep_alive
        };
        if limit.is_zero() {
            return None;
        }
        self.stall_from.and_then(|t| deadline(t, limit))
    }

    fn is_recording(&self) -> bool {
        self.config.session_recording != SessionRecording::Off
    }

    /// Reports a change of the session, if asked to.
    fn record(&mut self, record: SessionRecord) {
        if self.is_recording() {
            self.records.push_back(record);
        }
    }

    /// Records every queued message the records do not hold yet, in queue order (after
    /// [`SessionRecording::ExceptQueue`] left some out, the recorded ones are a prefix of the
    /// queue, so a `Sent` always means the queue's front).
    fn record_queue(&mut self) {
        for queued in self.outgoing.queued.iter().skip(self.recorded_queued) {
            self.records
                .push_back(SessionRecord::Accepted(queued.publish.clone()));
        }
        self.recorded_queued = self.outgoing.queued.len();
    }

    /// MQTT 5: what the server's CONNACK allows a PUBLISH, and the properties a client may send
    /// (which it then carries). Nothing to check for a 3.1.1 `publish`.
    #[inline]
    fn check_publish_terms(
        &self,
        publish: &mut Publish,
        properties: Option<Properties>,
    ) -> Result<(), CommandError> {
        if publish.qos > self.negotiated.maximum_qos {
            return Err(CommandError::QosNotSupported {
                requested: publish.qos,
                maximum: self.negotiated.maximum_qos,
            }); // MQTT-3.2.2-11
        }
        if publish.retain && !self.negotiated.retain_available {
            return Err(CommandError::RetainNotSupported); // MQTT-3.2.2-14
        }
        let Some(mut properties) = properties else {
            return Ok(());
        };
        if properties.subscription_identifiers().next().is_some() {
            return Err(CommandError::PropertyNotAllowed(
                "a client must not send Subscription Identifiers in PUBLISH (MQTT-3.3.4-6)",
            ));
        }
        properties.topic_alias = None; // the session sets aliases as it sends
        publish.set_properties(properties);
        EncodeBody::validate(publish, self.protocol())?;
        Ok(())
    }

    /// MQTT 5: what the server's CONNACK allows a SUBSCRIBE (MQTT 5.0 section 3.2.2.3).
    fn check_subscribe_terms(&self, subscribe: &Subscribe) -> Result<(), CommandError> {
        let terms = &self.negotiated;
        if !terms.wildcard_subscription_available
            && subscribe.filters.iter().any(|f| f.filter.has_wildcards())
        {
            return Err(CommandError::SubscriptionNotSupported(
                "wildcard subscriptions (Wildcard Subscription Available 0)",
            ));
        }
        if !terms.shared_subscription_available
            && subscribe.filters.iter().any(|f| f.filter.is_shared())
        {
            return Err(CommandError::SubscriptionNotSupported(
                "shared subscriptions (Shared Subscription Available 0)",
            ));
        }
        if !terms.subscription_identifiers_available
            && subscribe
                .properties()
                .subscription_identifiers()
                .next()
                .is_some()
        {
            return Err(CommandError::SubscriptionNotSupported(
                "Subscription Identifiers (Subscription Identifier Available 0)",
            ));
        }
        Ok(())
    }

    /// The largest packet we may send: ours, and in MQTT 5 the server's Maximum Packet Size
    /// (MQTT-3.2.2-15).
    #[inline]
    fn max_outgoing_packet_size(&self) -> usize {
        let server = self
            .negotiated
            .maximum_packet_size
            .map_or(usize::MAX, |max| max.get() as usize);
        self.config.max_outgoing_packet_size.min(server)
    }

    /// The window of unacknowledged QoS 1/2 messages: ours, and in MQTT 5 the server's Receive
    /// Maximum (MQTT-3.3.4-7).
    #[inline]
    fn window(&self) -> usize {
        usize::from(
            self.config
                .max_inflight
                .min(self.negotiated.receive_maximum),
        )
    }

    #[inline]
    fn check_size(&self, size: usize) -> Result<(), CommandError> {
        let max = self.max_outgoing_packet_size();
        if size > max {
            return Err(EncodeError::PacketTooLarge { size, max }.into());
        }
        Ok(())
    }

    /// Sends again, in order, the messages [`Stage::Held`] at the reconnect, as far as the
    /// window has room now.
    fn send_held(&mut self, now: Instant) {
        let sent = self
            .outgoing
            .inflight
            .iter()
            .filter(|m| m.stage != Stage::Held)
            .count();
        let room = self.window().saturating_sub(sent);
        let mut inflight = std::mem::take(&mut self.outgoing.inflight);
        let held = inflight.iter_mut().filter(|m| m.stage == Stage::Held);
        for message in held.take(room) {
            message.stage = Stage::Published;
            message.publish.dup = true; // MQTT-3.3.1-1
            if self.transmit.is_empty() {
                self.stall_from = Some(now);
            }
            let result = self.encode_publish(now, &message.publish, message.expires);
            debug_assert!(result.is_ok(), "stored messages were validated when sent");
            self.last_sent = Some(now);
            self.outgoing.held -= 1;
        }
        self.outgoing.inflight = inflight;
    }

    #[inline]
    fn has_room_for(&self, qos: QoS) -> bool {
        match qos {
            QoS::AtMostOnce => self.transmit.len() < self.config.max_transmit_buffer,
            _ => self.outgoing.inflight.len() < self.window(),
        }
    }

    /// Encodes `packet` into the transmit buffer. Packets reaching here were validated (commands
    /// check size and rules up front; acks cannot fail), so an error is impossible.
    fn send(&mut self, now: Instant, packet: &Packet) {
        if self.transmit.is_empty() {
            self.stall_from = Some(now);
        }
        // Branching once on the protocol hands each encoder a constant, so the 3.1.1 path
        // carries none of MQTT 5's.
        let result = if self.config.protocol.is_v5() {
            packet.encode_in(Protocol::Mqtt5, &mut self.transmit)
        } else {
            packet.encode(&mut self.transmit)
        };
        if result.is_ok() {
            self.last_sent = Some(now);
        }
    }

    /// Sends a PUBREC, PUBREL or PUBCOMP for `id`, unless one still waits in the transmit buffer:
    /// that one answers the repeat too, so a peer that repeats a packet while it does not read
    /// cannot pile answers up.
    fn send_ack(&mut self, now: Instant, kind: AckKind, id: PacketId) {
        if self.acks.insert(kind, id, self.transmit.len()) {
            self.encode_ack(now, kind, id);
        }
    }

    /// Sends a PUBREC, PUBREL or PUBCOMP for `id` (it answers a new message) and remembers it
    /// until it is written.
    fn send_ack_always(&mut self, now: Instant, kind: AckKind, id: PacketId) {
        self.acks.insert_always(kind, id, self.transmit.len());
        self.encode_ack(now, kind, id);
    }

    fn encode_ack(&mut self, now: Instant, kind: AckKind, id: PacketId) {
        if self.transmit.is_empty() {
            self.stall_from = Some(now);
        }
        let buf = &mut self.transmit;
        // Each encoder gets a constant protocol, as in `send`.
        let result = match (kind, self.config.protocol.is_v5()) {
            (AckKind::PubRec, false) => PubRec::new(id).encode(buf),
            (AckKind::PubRel, false) => PubRel::new(id).encode(buf),
            (AckKind::PubComp, false) => PubComp::new(id).encode(buf),
            (AckKind::PubRec, true) => PubRec::new(id).encode_in(Protocol::Mqtt5, buf),
            (AckKind::PubRel, true) => PubRel::new(id).encode_in(Protocol::Mqtt5, buf),
            (AckKind::PubComp, true) => PubComp::new(id).encode_in(Protocol::Mqtt5, buf),
        };
        if result.is_ok() {
            self.last_sent = Some(now);
        }
    }

    /// Inlined into `publish`, whose message most often goes out at once: a call (and a drop out
    /// of line) cost an MQTT 3.1.1 QoS 0 publish 18 of its 657 instructions.
    #[inline]
    fn send_publish(&mut self, now: Instant, publish: Publish, expires: Option<Instant>) {
        if self.transmit.is_empty() {
            self.stall_from = Some(now);
        }
        if self.encode_publish(now, &publish, expires).is_err() {
            return; // size and rules were checked by `publish`
        }
        self.last_sent = Some(now);
        if let Some(id) = publish
            .packet_id
            .filter(|id| self.outgoing.barriers.contains(id))
        {
            self.outgoing.active_barrier = Some(id);
        }
        if publish.qos != QoS::AtMostOnce {
            self.outgoing.inflight.push_back(Inflight {
                publish,
                stage: Stage::Published,
                expires,
            });
        }
    }

    /// [`send_publish`](Self::send_publish) for a message from the queue: out of line, so that
    /// `pump`, which every write and acknowledgement calls, stays small.
    #[inline(never)]
    fn send_queued(&mut self, now: Instant, publish: Publish, expires: Option<Instant>) {
        self.send_publish(now, publish, expires);
    }

    /// Encodes a PUBLISH into the transmit buffer.
    #[inline]
    fn encode_publish(
        &mut self,
        now: Instant,
        publish: &Publish,
        expires: Option<Instant>,
    ) -> Result<(), EncodeError> {
        if self.config.protocol.is_v5() {
            self.encode_publish_v5(now, publish, expires)
        } else {
            // MQTT 3.1.1 has neither Topic Aliases nor Message Expiry.
            publish.encode_mqtt311(&mut self.transmit)
        }
    }

    /// [`encode_publish`](Self::encode_publish) in MQTT 5: with a Topic Alias when aliases are
    /// on, with its topic when the alias is new on this connection, and with what is left of its
    /// Message Expiry Interval when it has one (`expires`).
    ///
    /// The session keeps the message as published (its records say so too); only the bytes sent
    /// carry the interval left, in whole seconds rounded up, and at least 1: a message already
    /// on its way (a re-send) is sent again even when its interval has run out.
    ///
    /// Never inlined: inside `send_publish` its registers cost the MQTT 3.1.1 path.
    #[inline(never)]
    fn encode_publish_v5(
        &mut self,
        now: Instant,
        publish: &Publish,
        expires: Option<Instant>,
    ) -> Result<(), EncodeError> {
        if let Some(expires) = expires {
            let left = expires.saturating_duration_since(now);
            let secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            let secs = u32::try_from(secs).unwrap_or(u32::MAX);
            if publish.properties().message_expiry_interval != Some(secs) {
                let mut sent = publish.clone();
                sent.properties_mut().message_expiry_interval = Some(secs);
                return self.encode_publish_v5(now, &sent, None);
            }
        }
        // An alias set with its topic adds a property: a message that would then be too big
        // goes without one, and the aliases stay as they are.
        if self.aliases_out.is_enabled()
            && publish.encoded_len_aliased(true) <= self.max_outgoing_packet_size()
        {
            if let Some((alias, with_topic)) = self.aliases_out.assign(&publish.topic_name()) {
                return publish.encode_aliased(alias, with_topic, &mut self.transmit);
            }
        }
        publish.encode_in(Protocol::Mqtt5, &mut self.transmit)
    }

    /// Moves queued messages into the window while there is room.
    fn pump(&mut self, now: Instant) {
        if !matches!(self.state, State::Connected | State::Draining) {
            return;
        }
        if self.outgoing.held > 0 {
            self.send_held(now);
        }
        while let Some(front) = self.outgoing.queued.front() {
            if self.outgoing.active_barrier.is_some() || !self.has_room_for(front.publish.qos) {
                break;
            }
            if let Some(Queued { publish, expires }) = self.outgoing.queued.pop_front() {
                // MQTT 5.0 section 3.3.2.3.3: not sent once its interval has passed; sent with
                // what is left of it before (`encode_publish`).
                if expires.is_some_and(|at| at <= now) {
                    self.expire(publish);
                    continue;
                }
                if let Some(error) = self.refused_by_server_terms(&publish) {
                    let event = Event::Unsendable {
                        topic: publish.topic_name(),
                        packet_id: publish.packet_id,
                        error: Box::new(error),
                    };
                    self.give_up_queued(publish, event);
                    continue;
                }
                if self.recorded_queued > 0 {
                    self.recorded_queued -= 1;
                    self.record(if publish.qos == QoS::AtMostOnce {
                        SessionRecord::SentAtMostOnce
                    } else {
                        SessionRecord::Sent
                    });
                } else if self.is_recording() && publish.qos != QoS::AtMostOnce {
                    self.records
                        .push_back(SessionRecord::Accepted(publish.clone()));
                    self.records.push_back(SessionRecord::Sent);
                }
                self.send_queued(now, publish, expires);
            }
        }
        if self.state == State::Draining && self.outgoing.is_empty() {
            self.finish_disconnect(now);
        }
    }

    /// MQTT 5: the queued message at the front outlived its Message Expiry Interval: it leaves the
    /// session unsent, reported as [`Event::Expired`].
    fn expire(&mut self, publish: Publish) {
        let event = Event::Expired {
            topic: publish.topic_name(),
            packet_id: publish.packet_id,
        };
        self.give_up_queued(publish, event);
    }

    /// MQTT 5: whether the server's terms, known since its CONNACK, refuse a message the client
    /// took before it knew them (MQTT-3.2.2-11, MQTT-3.2.2-14, MQTT-3.2.2-15).
    fn refused_by_server_terms(&self, publish: &Publish) -> Option<CommandError> {
        if !self.protocol().is_v5() {
            return None;
        }
        let terms = &self.negotiated;
        if publish.qos > terms.maximum_qos {
            return Some(CommandError::QosNotSupported {
                requested: publish.qos,
                maximum: terms.maximum_qos,
            });
        }
        if publish.retain && !terms.retain_available {
            return Some(CommandError::RetainNotSupported);
        }
        let size = publish.encoded_len_in(Protocol::Mqtt5);
        let max = self.max_outgoing_packet_size();
        (size > max).then_some(CommandError::Encode(EncodeError::PacketTooLarge {
            size,
            max,
        }))
    }

    /// An unacknowledged message the server's terms refuse is given up rather than sent again.
    fn records_and_events_for_unsendable(
        &mut self,
        id: PacketId,
        publish: &Publish,
        error: CommandError,
    ) {
        self.record(SessionRecord::Completed(id));
        self.ids.free(id);
        self.outgoing.barriers.remove(&id);
        if self.outgoing.active_barrier == Some(id) {
            self.outgoing.active_barrier = None;
        }
        self.events.push_back(Event::Unsendable {
            topic: publish.topic_name(),
            packet_id: Some(id),
            error: Box::new(error),
        });
    }

    /// The queued message at the front leaves the session unsent, reported as `event`.
    fn give_up_queued(&mut self, publish: Publish, event: Event) {
        let recorded = self.recorded_queued > 0;
        if recorded {
            self.recorded_queued -= 1;
        }
        let packet_id = publish.packet_id;
        match packet_id {
            Some(id) => {
                if recorded {
                    // It leaves the queue as if sent, and is done at once.
                    self.record(SessionRecord::Sent);
                    self.record(SessionRecord::Completed(id));
                }
                self.ids.free(id);
                self.outgoing.barriers.remove(&id);
            }
            None if recorded => self.record(SessionRecord::SentAtMostOnce),
            None => {}
        }
        self.events.push_back(event);
    }

    /// The barrier message `id` was acknowledged: send the requests it held, then the queue.
    ///
    /// Inlined as one test: most sessions never publish a barrier, and every completed message
    /// passes here.
    #[inline]
    fn lift_barrier(&mut self, now: Instant, id: PacketId) {
        if !self.outgoing.barriers.is_empty() || self.outgoing.active_barrier.is_some() {
            self.lift_a_barrier(now, id);
        }
    }

    /// [`lift_barrier`](Self::lift_barrier) when there are barriers.
    #[inline(never)]
    fn lift_a_barrier(&mut self, now: Instant, id: PacketId) {
        self.outgoing.barriers.remove(&id);
        if self.outgoing.active_barrier != Some(id) {
            return;
        }
        self.outgoing.active_barrier = None;
        for held in std::mem::take(&mut self.subscriptions.held) {
            let packet = if let Some(s) = self
                .subscriptions
                .pending_subscribe
                .iter()
                .find(|s| s.packet_id == held)
            {
                Packet::Subscribe(s.clone())
            } else if let Some(u) = self
                .subscriptions
                .pending_unsubscribe
                .iter()
                .find(|u| u.packet_id == held)
            {
                Packet::Unsubscribe(u.clone())
            } else {
                continue;
            };
            self.send(now, &packet);
        }
    }

    /// Sends the acknowledgements the application has given, in arrival order.
    fn flush_acks(&mut self, now: Instant) {
        if !matches!(self.state, State::Connected | State::Draining) {
            return;
        }
        while let Some(ack) = self.incoming.pop_ready() {
            match ack.qos {
                QoS::ExactlyOnce => self.send_ack_always(now, AckKind::PubRec, ack.packet_id),
                _ => self.send(now, &Packet::PubAck(PubAck::new(ack.packet_id))),
            }
        }
    }

    fn finish_disconnect(&mut self, now: Instant) {
        let disconnect = self.disconnect_packet.take().unwrap_or_default();
        self.send(now, &Packet::Disconnect(disconnect));
        self.close(DisconnectReason::Requested);
    }

    /// The connection is over for a fault: nothing more goes out on it, but in MQTT 5 a
    /// DISCONNECT that says why, when the fault is the server's (MQTT 5.0 section 4.13: the
    /// Reason Code of a malformed packet or protocol error). A driver may write it before closing.
    fn fail(&mut self, reason: DisconnectReason) {
        self.transmit.clear();
        self.acks.reset();
        if self.protocol().is_v5() {
            let code = match &reason {
                DisconnectReason::Malformed(error) => Some(error.reason_code()),
                DisconnectReason::ProtocolViolation(violation) => Some(violation.reason_code()),
                _ => None,
            };
            if let Some(code) = code {
                // A code DISCONNECT cannot carry (0x84, for a CONNECT of an unknown protocol
                // from a server) is the Protocol Error it is on a client's connection.
                let code = if code.is_valid_in(crate::packet::PropertyContext::Disconnect) {
                    code
                } else {
                    crate::packet::ReasonCode::ProtocolError
                };
                let disconnect = Disconnect::with_reason_code(code);
                let _ = disconnect.encode_in(Protocol::Mqtt5, &mut self.transmit);
            }
        }
        self.close(reason);
    }

    fn close(&mut self, reason: DisconnectReason) {
        self.state = State::Disconnected;
        self.connack_deadline = None;
        self.ping = Ping::Idle;
        self.stall_from = None;
        self.drain_deadline = None;
        self.disconnect_packet = None;
        self.events.push_back(Event::Disconnected { reason });
    }

    /// Puts the session back on a new connection after CONNACK: re-sends unacknowledged messages in
    /// their original order (MQTT-4.4.0-1, MQTT-4.6.0-1), requests awaiting answers, held acks,
    /// then the queue.
    ///
    /// The re-sends do not depend on `session_present` (unless [`UnackedPolicy::Discard`] gave the
    /// messages up): every PUBLISH goes out again with DUP=1 and every PUBREL with its identifier,
    /// as MQTT-4.4.0-1 asks of any reconnect that is not a clean start of the session's messages.
    fn resume(&mut self, now: Instant, session_present: bool) {
        // Bytes already waiting to be written (what went before is not sent again here).
        let pending = self.transmit.len();
        if !session_present {
            self.incoming.forget_session();
            self.record(SessionRecord::SessionLost);
            self.apply_unacked_policy();
        }
        if self.transmit.is_empty() {
            self.stall_from = Some(now);
        }
        let protocol = self.config.protocol;
        let mut inflight = std::mem::take(&mut self.outgoing.inflight);
        for message in &mut inflight {
            if message.stage == Stage::Held {
                message.stage = Stage::Published; // this connection decides afresh
            }
        }
        self.outgoing.held = 0;
        // MQTT 5: a message this server's terms refuse is given up rather than sent again.
        inflight.retain(|message| {
            let refused = (message.stage == Stage::Published)
                .then(|| self.refused_by_server_terms(&message.publish))
                .flatten();
            let (Some(error), Some(id)) = (refused, message.id()) else {
                return true;
            };
            self.records_and_events_for_unsendable(id, &message.publish, error);
            false
        });
        // The window may be smaller than on the last connection (a new server's Receive
        // Maximum): every PUBREL goes out again, and the PUBLISHes in the order they were first
        // sent (MQTT-4.6.0-1) while the window has room; the rest wait for acknowledgements
        // (MQTT-3.3.4-9: a PUBLISH sent again counts as much as a new one).
        let released = inflight
            .iter()
            .filter(|m| m.stage == Stage::Released)
            .count();
        let mut room = self.window().saturating_sub(released);
        for message in &mut inflight {
            let Some(id) = message.id() else { continue };
            if message.stage == Stage::Published && room == 0 {
                message.stage = Stage::Held;
                self.outgoing.held += 1;
                continue;
            }
            let result = match message.stage {
                Stage::Held => continue,
                Stage::Published => {
                    room -= 1;
                    // MQTT-3.3.1-1: a PUBLISH sent again carries DUP=1, also to a broker that
                    // lost the session (it may have received the first copy before losing it).
                    message.publish.dup = true;
                    self.encode_publish(now, &message.publish, message.expires)
                }
                Stage::Released => {
                    // MQTT-4.4.0-1: the PUBREL again, with its identifier; a broker that lost the
                    // session answers it with PUBCOMP (MQTT-4.3.3), which completes the message.
                    self.acks
                        .insert_always(AckKind::PubRel, id, self.transmit.len());
                    PubRel::new(id).encode_in(protocol, &mut self.transmit)
                }
            };
            debug_assert!(result.is_ok(), "stored messages were validated when sent");
        }
        self.outgoing.inflight = inflight;
        let mut transmit = std::mem::take(&mut self.transmit);
        self.give_up_oversized_requests();
        self.subscriptions.held.clear();
        if self.outgoing.active_barrier.is_some() {
            // The barrier went out again above: requests wait for its PUBACK.
            let subscribes = self
                .subscriptions
                .pending_subscribe
                .iter()
                .map(|s| s.packet_id);
            let unsubscribes = self
                .subscriptions
                .pending_unsubscribe
                .iter()
                .map(|u| u.packet_id);
            let held: Vec<PacketId> = subscribes.chain(unsubscribes).collect();
            self.subscriptions.held = held;
        } else {
            for subscribe in &self.subscriptions.pending_subscribe {
                let _ = subscribe.encode_in(protocol, &mut transmit);
            }
            for unsubscribe in &self.subscriptions.pending_unsubscribe {
                let _ = unsubscribe.encode_in(protocol, &mut transmit);
            }
        }
        self.transmit = transmit;
        // The keep-alive counts from the last packet sent: the CONNECT, unless something went
        // out again here (MQTT-3.1.2-23).
        if self.transmit.len() > pending {
            self.last_sent = Some(now);
        }
        self.flush_acks(now);
        self.pump(now);
    }

    /// MQTT 5: whether a pending request of `size` bytes is over the server's Maximum Packet
    /// Size, and so given up by [`give_up_oversized_requests`](Self::give_up_oversized_requests).
    fn request_refused_by_size(&self, size: usize) -> bool {
        self.protocol().is_v5() && size > self.max_outgoing_packet_size()
    }

    /// MQTT 5: a pending SUBSCRIBE or UNSUBSCRIBE over the server's Maximum Packet Size, which a
    /// request made before CONNACK may be, is given up rather than sent (MQTT-3.2.2-15).
    fn give_up_oversized_requests(&mut self) {
        if !self.protocol().is_v5() {
            return;
        }
        let max = self.max_outgoing_packet_size();
        // Reported subscriptions first, then unsubscriptions, each by identifier.
        let mut given_up = Vec::new();
        self.subscriptions.pending_subscribe.retain(|s| {
            let size = s.encoded_len_in(Protocol::Mqtt5);
            given_up.extend((size > max).then_some((false, s.packet_id, size)));
            size <= max
        });
        self.subscriptions.pending_unsubscribe.retain(|u| {
            let size = u.encoded_len_in(Protocol::Mqtt5);
            given_up.extend((size > max).then_some((true, u.packet_id, size)));
            size <= max
        });
        given_up.sort_unstable();
        for (_, packet_id, size) in given_up {
            self.ids.free(packet_id);
            self.events.push_back(Event::RequestUnsendable {
                packet_id,
                error: CommandError::Encode(EncodeError::PacketTooLarge { size, max }),
            });
        }
    }

    /// `session_present = 0`: the broker knows nothing of our unacknowledged messages. Under
    /// [`UnackedPolicy::Resend`] they all go out again in [`resume`](Self::resume); under
    /// [`UnackedPolicy::Discard`] they are given up here, each reported as [`Event::Dropped`].
    fn apply_unacked_policy(&mut self) {
        if self.config.unacked_policy != UnackedPolicy::Discard {
            return;
        }
        for message in std::mem::take(&mut self.outgoing.inflight) {
            if let Some(id) = message.id() {
                self.record(SessionRecord::Completed(id));
                self.events.push_back(Event::Dropped { packet_id: id });
                self.ids.free(id);
                self.outgoing.barriers.remove(&id);
            }
        }
        self.outgoing.active_barrier = None;
    }

    fn process(&mut self, now: Instant) {
        while self.state != State::Disconnected {
            match self.decoder.next_packet() {
                Ok(Some(packet)) => self.handle_packet(now, packet),
                Ok(None) => break,
                Err(e) => self.fail(DisconnectReason::Malformed(e)),
            }
        }
    }
}
