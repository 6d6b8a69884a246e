//! [`Client`]: the cloneable handle, and [`ClientBuilder`] for the channel sizes and ack mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq::{CommandError, TopicFilter, TopicName};
use sansmq_driver::LastTopic;
use sansmq_driver::channel::{self, FairReceiver, TrySendError};
use sansmq_driver::outcomes::Outcomes;
use tokio::sync::oneshot;

use crate::command::{self, Command, PublishReply, Reply};
use crate::dispatch::Dispatch;
use crate::stream::Subscription;
use crate::task::Task;
use crate::{ConnectOptions, Error, Events, Message, PublishHandle};

/// Default capacity of the command channel: publishes waiting for the task to take them.
pub const DEFAULT_COMMAND_CAPACITY: usize = 256;
/// Default capacity of [`Events`] and of each [`Subscription`].
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// Settings of the async client beyond [`ConnectOptions`].
#[derive(Debug)]
pub struct ClientBuilder {
    options: ConnectOptions,
    command_capacity: usize,
    event_capacity: usize,
    manual_acks: bool,
}

impl ClientBuilder {
    /// Commands (publishes, subscribes...) that may wait for the background task; when full,
    /// [`Client::publish`] waits and [`Client::try_publish`] fails. Default
    /// [`DEFAULT_COMMAND_CAPACITY`]. Memory is bounded by it plus the offline queue.
    pub fn command_capacity(mut self, capacity: usize) -> Self {
        self.command_capacity = capacity.max(1);
        self
    }

    /// Items [`Events`] and each [`Subscription`] hold before the client holds them back (see
    /// [`Events`]). Default [`DEFAULT_EVENT_CAPACITY`].
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Acknowledge received QoS 1/2 messages only when [`Client::ack`] is called with them (by
    /// default a message is acknowledged as soon as it is in a stream). Until then the broker
    /// counts it as in flight, and redelivers it after a reconnect with a kept session.
    pub fn manual_acks(mut self, manual: bool) -> Self {
        self.manual_acks = manual;
        self
    }

    /// Validates the options (client id, will topic, TLS files) and spawns the background task on
    /// the current tokio runtime; panics outside one, as `tokio::spawn` does. The client is not
    /// connected yet: call [`Client::connect`].
    pub fn build(self) -> Result<(Client, Events), Error> {
        let (commands_tx, commands_rx) = channel::channel(self.command_capacity);
        let (events_tx, events_rx) = channel::channel(self.event_capacity);
        let time_to_wait = self.options.time_to_wait_limit();
        let connect_limit = self
            .options
            .connect_timeout_limit()
            .saturating_mul(2)
            .saturating_mul(u32::try_from(self.options.servers().len()).unwrap_or(u32::MAX));
        self.options.check_connect_rules()?;
        if let Some(uri) = self.options.websocket_uri() {
            // Refused now rather than at every connection attempt.
            sansmq_driver::websocket::check_headers(uri, self.options.websocket_headers())?;
        }
        let connected = Arc::new(AtomicBool::new(false));
        // One copy of the options, shared by the handles (broker rules) and the task.
        let options = Arc::new(self.options);
        let dispatch = Dispatch::new(events_tx, self.event_capacity, self.manual_acks);
        let task = Task::new(
            Arc::clone(&options),
            commands_rx,
            dispatch,
            Arc::clone(&connected),
        )?;
        tokio::spawn(Box::new(task).run());
        let client = Client {
            commands: commands_tx,
            time_to_wait,
            connect_limit,
            event_capacity: self.event_capacity,
            connected,
            options,
            last_topic: LastTopic::default(),
            outcomes: Outcomes::new(),
        };
        Ok((
            client,
            Events {
                rx: FairReceiver::new(events_rx),
            },
        ))
    }
}

/// An async MQTT client handle: `Clone + Send + Sync`, cheap to clone.
///
/// Every call is a command on a bounded channel to one background task, which owns the socket and
/// the sans-IO connection supervisor. The task ends when the last handle is dropped; pending futures then resolve
/// with [`Error::Closed`].
#[derive(Debug, Clone)]
pub struct Client {
    commands: channel::Sender<Command>,
    time_to_wait: Duration,
    connect_limit: Duration,
    event_capacity: usize,
    connected: Arc<AtomicBool>,
    /// For the broker rules, checked before a command is sent to the task.
    options: Arc<ConnectOptions>,
    /// The topic this handle published to last (each clone has its own).
    last_topic: LastTopic,
    /// Where the task settles QoS 0 publishes (shared by the clones).
    outcomes: Outcomes<Error>,
}

impl Client {
    /// A client with the default channel sizes and automatic acknowledgements, and its stream of
    /// [`Events`]. See [`ClientBuilder::build`].
    pub fn new(options: ConnectOptions) -> Result<(Self, Events), Error> {
        Self::builder(options).build()
    }

    /// A builder for the channel sizes and the acknowledgement mode.
    pub fn builder(options: ConnectOptions) -> ClientBuilder {
        ClientBuilder {
            options,
            command_capacity: DEFAULT_COMMAND_CAPACITY,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            manual_acks: false,
        }
    }

    /// Connects: tries each server URI in order, each within the connect timeout (DNS, TCP to
    /// every address the host resolves to, 250 ms apart as in RFC 8305, TLS and CONNACK), and
    /// returns the broker's session-present flag. A refusal is
    /// [`Error::Refused`], no answer [`Error::Timeout`], a TLS failure [`Error::Tls`]. With
    /// automatic reconnect, a later loss reconnects by itself ([`Event::Reconnected`](crate::Event)).
    pub async fn connect(&self) -> Result<bool, Error> {
        // The task answers every attempt; this only bounds a task that went away.
        let limit = self.connect_limit.saturating_add(Duration::from_secs(1));
        self.ask(Command::Connect, limit).await
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Publishes and waits until the broker has the message: its PUBACK (QoS 1), its PUBCOMP
    /// (QoS 2), or written to the socket (QoS 0). Waits for room first when the command channel is
    /// full, and waits across reconnects: wrap it in `tokio::time::timeout` to bound it.
    ///
    /// Dropping this future once the message was handed over does not withdraw it; see
    /// [`PublishHandle`].
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.publish_later(topic, payload, qos, retain).await?.await
    }

    /// Hands the message over (waiting only for room in the command channel) and returns a
    /// [`PublishHandle`] to await its delivery later: many messages can be in flight from one task.
    pub async fn publish_later(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<PublishHandle, Error> {
        let (command, handle) =
            self.publish_command(topic, payload.into(), qos, retain, false, None)?;
        self.send(command).await?;
        Ok(handle)
    }

    /// MQTT 5: [`publish`](Self::publish) with `properties` (User Properties, Content Type,
    /// Payload Format Indicator, Message Expiry Interval, Response Topic, Correlation Data). A
    /// message the broker refuses with a Reason Code fails with [`Error::PublishRefused`]; one
    /// whose Message Expiry Interval runs out in the offline queue with [`Error::Expired`].
    pub async fn publish_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<(), Error> {
        let (command, handle) =
            self.publish_command(topic, payload.into(), qos, retain, false, Some(properties))?;
        self.send(command).await?;
        handle.await
    }

    /// [`publish_later`](Self::publish_later) without waiting: a full command channel is
    /// [`CommandError::QueueFull`] at once (backpressure: retry later, or use `publish`).
    pub fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<PublishHandle, Error> {
        let (command, handle) =
            self.publish_command(topic, payload.into(), qos, retain, false, None)?;
        match self.commands.try_send(command) {
            Ok(()) => Ok(handle),
            Err(TrySendError::Full(_)) => Err(CommandError::QueueFull {
                max_queued: self.commands.capacity(),
            }
            .into()),
            Err(TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Publishes a QoS 1 message that nothing published later overtakes: until the broker
    /// acknowledges it, later PUBLISH, SUBSCRIBE and UNSUBSCRIBE requests wait in the client
    /// (ApsaraMQ's token refresh on `$SYS/uploadToken` needs this). The handle resolves at its
    /// PUBACK.
    pub async fn publish_barrier(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishHandle, Error> {
        let (command, handle) =
            self.publish_command(topic, payload.into(), QoS::AtLeastOnce, false, true, None)?;
        self.send(command).await?;
        Ok(handle)
    }

    /// Subscribes and waits for SUBACK (at most time-to-wait); returns the granted QoS per filter.
    /// A filter the broker refused (0x80) is an error naming it. Matching messages arrive on
    /// [`Events`].
    pub async fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        let filters = self.options.subscribe_filters(filters)?;
        self.subscribe_inner(filters, None, None).await
    }

    /// MQTT 5: subscribes with each filter's options (No Local, Retain As Published, Retain
    /// Handling) and `properties` (a Subscription Identifier, which the matching messages carry,
    /// [`Message::subscription_identifiers`]; User Properties), and waits for SUBACK. A filter the
    /// broker refused is [`Error::SubscribeRefused`] with its Reason Code.
    pub async fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        self.options
            .check_subscribe_rules(filters.iter().map(|f| (&*f.filter, f.qos)))?;
        let properties = Some(properties).filter(|p| !p.is_empty()).map(Box::new);
        self.subscribe_inner(filters.to_vec(), properties, None)
            .await
    }

    /// MQTT 5 request/response, as mosquitto_rr does: publishes `payload` to `topic` with a
    /// Response Topic and Correlation Data, and resolves with the message a responder publishes
    /// back with the same Correlation Data, or [`Error::Timeout`] after time-to-wait. The
    /// response topic is [`Mqtt5Options::response_topic`](crate::Mqtt5Options::response_topic)
    /// (by default `responses/<client id>`), subscribed to at the first request. Refused on an
    /// MQTT 3.1.1 connection.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
    ) -> Result<Message, Error> {
        self.request_with_properties(topic, payload, qos, Properties::new())
            .await
    }

    /// [`request`](Self::request) with further properties (User Properties, Content Type...);
    /// its Response Topic and Correlation Data are set by the client.
    pub async fn request_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        properties: Properties,
    ) -> Result<Message, Error> {
        let topic = TopicName::try_from(topic)?;
        let payload = payload.into();
        let request = |reply| Command::Request {
            topic,
            payload,
            qos,
            properties: Box::new(properties),
            reply,
        };
        // The client times the request out after time-to-wait; this bound is a backstop.
        self.ask(request, self.time_to_wait.saturating_mul(2)).await
    }

    /// Subscribes to one filter and returns a stream of the messages matching it (they do not go
    /// to [`Events`]).
    pub async fn subscribe_stream(&self, filter: &str, qos: QoS) -> Result<Subscription, Error> {
        self.options.check_subscribe_rules([(filter, qos)])?;
        let filter = SubscribeFilter::new(TopicFilter::try_from(filter)?, qos);
        let (tx, rx) = channel::channel(self.event_capacity);
        let granted = self.subscribe_inner(vec![filter], None, Some(tx)).await?;
        Ok(Subscription {
            rx: FairReceiver::new(rx),
            granted: granted.first().copied().unwrap_or(qos),
        })
    }

    async fn subscribe_inner(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Option<Box<Properties>>,
        route: Option<channel::Sender<Message>>,
    ) -> Result<Vec<QoS>, Error> {
        let subscribe = |reply| Command::Subscribe {
            filters,
            properties,
            route,
            reply,
        };
        self.ask(subscribe, self.time_to_wait).await
    }

    /// Unsubscribes and waits for UNSUBACK (at most time-to-wait). [`Subscription`] streams for
    /// these filters end.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        let unsubscribe = |reply| Command::Unsubscribe { filters, reply };
        self.ask(unsubscribe, self.time_to_wait).await
    }

    /// With [`ClientBuilder::manual_acks`]: you are done with `message`; its PUBACK (QoS 1) or
    /// PUBREC (QoS 2) goes out once every message received before it is acknowledged too
    /// (MQTT-4.6.0-2). A QoS 0 message needs nothing. A message from a session the broker has
    /// since forgotten (reconnect with `session_present = 0`) is [`CommandError::UnknownAck`]: the
    /// broker will not expect its acknowledgement.
    pub async fn ack(&self, message: &Message) -> Result<(), Error> {
        let Some(key) = message.ack_key() else {
            return Ok(());
        };
        let ack = |reply| Command::Ack { key, reply };
        self.ask_urgently(ack, self.time_to_wait).await
    }

    /// MQTT 5: starts a re-authentication on the open connection with the authenticator of
    /// [`Mqtt5Options::authenticator`](sansmq_driver::Mqtt5Options::authenticator) (MQTT 5.0
    /// section 4.12.1); messages keep flowing meanwhile, and a server that refuses it ends the
    /// connection with its Reason Code. Fails when not connected or without an authenticator.
    pub async fn reauthenticate(&self) -> Result<(), Error> {
        let reauthenticate = |reply| Command::Reauthenticate { reply };
        self.ask(reauthenticate, self.time_to_wait).await
    }

    /// Disconnects: waits up to `drain` for unacknowledged QoS 1/2 messages (their futures
    /// resolve as their acknowledgements arrive), then sends DISCONNECT and closes the connection
    /// once the broker has read it (at most about 3 s more, see [`sansmq_driver::Closing`]), so
    /// the will is not published. What is still unacknowledged then stays in the session for a
    /// later `connect`. Automatic reconnect stops until the next `connect`.
    ///
    /// It does not wait behind publishes waiting for room (a broker that stopped acknowledging):
    /// the task takes it out of turn, so it ends the connection within the limits above. The
    /// publishes then go to the offline queue, or fail with `QueueFull` once it is full.
    pub async fn disconnect(&self, drain: Duration) -> Result<(), Error> {
        let limit = drain
            .saturating_add(sansmq_driver::closing::CLOSE_LIMIT)
            .saturating_add(Duration::from_secs(1));
        self.ask_urgently(|reply| Command::Disconnect { drain, reply }, limit)
            .await
    }

    /// A PUBLISH command and the handle its reply resolves, after MQTT's and the broker's rules
    /// (a barrier is the client's own message, e.g. ApsaraMQ's token upload, and skips the latter).
    fn publish_command(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        barrier: bool,
        properties: Option<Properties>,
    ) -> Result<(Command, PublishHandle), Error> {
        if !barrier {
            self.options
                .check_publish_rules(topic, payload.len(), qos, retain)?;
        }
        let topic = self.last_topic.name(topic)?;
        let (reply, handle) = if qos == QoS::AtMostOnce {
            let (ticket, claim) = self.outcomes.issue();
            (PublishReply::Ticket(ticket), PublishHandle::claimed(claim))
        } else {
            let (reply, rx) = oneshot::channel();
            (PublishReply::Reply(reply), PublishHandle::replied(rx))
        };
        let command = Command::Publish(command::Publish {
            topic,
            payload,
            qos,
            retain,
            barrier,
            properties: properties.filter(|p| !p.is_empty()).map(Box::new),
            reply,
        });
        Ok((command, handle))
    }

    /// Hands `command` to the task, waiting for room in the channel when it is full.
    async fn send(&self, command: Command) -> Result<(), Error> {
        // With room, `try_send` takes a permit without building and polling `send`'s future.
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(command)) => {
                self.commands.send(command).await.map_err(|_| Error::Closed)
            }
            Err(TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Sends the command made with a reply sender, and waits up to `limit` for the reply.
    async fn ask<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
        limit: Duration,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply)).await?;
        Self::reply_within(rx, limit).await
    }

    /// [`ask`](Self::ask) for an [urgent](Command::is_urgent) command: queued at once, past the
    /// channel's capacity, and taken by the task even while a publish waits for room.
    async fn ask_urgently<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
        limit: Duration,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send_past_capacity(command(reply))
            .map_err(|_| Error::Closed)?;
        Self::reply_within(rx, limit).await
    }

    async fn reply_within<T>(
        rx: oneshot::Receiver<Result<T, Error>>,
        limit: Duration,
    ) -> Result<T, Error> {
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(limit)),
        }
    }
}
