//! [`Client`]: the cloneable handle whose calls run on the [`Connection`]'s supervisor.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use sansmq::packet::{Properties, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};
use sansmq_driver::channel::{self, PollSender};
use sansmq_driver::supervisor::{Rejected, Supervisor};

use crate::connection::{Connection, Sup};
use crate::{ConnectOptions, Error, Events, Message, QoS, Runtime};

/// Calls that may wait for the connection to take them; more calls wait for room.
pub(crate) const COMMAND_CAPACITY: usize = 256;
/// Events that [`Events`] holds before the connection stops reading.
pub(crate) const EVENT_CAPACITY: usize = 1024;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;
/// What a call asks of the supervisor, at the time given.
pub(crate) type Run = Box<dyn FnOnce(&mut Sup, Instant) + Send>;

/// A call as the connection runs it.
pub(crate) struct Command {
    pub(crate) run: Run,
    /// `disconnect`: queued past the channel's capacity, and taken even while the connection
    /// takes no other calls because a publish waits for room (a broker that stopped acknowledging
    /// must not keep the client from disconnecting).
    pub(crate) urgent: bool,
}

impl Command {
    pub(crate) const fn is_urgent(&self) -> bool {
        self.urgent
    }
}
type New<R> = (Client, Events, Connection<R>);

/// An async MQTT client handle: `Clone + Send + Sync`. Each call is a command to the one
/// [`Connection`]; when the last handle is dropped, the connection closes and what is still
/// pending fails with [`Error::Closed`].
#[derive(Debug, Clone)]
pub struct Client {
    commands: channel::Sender<Command>,
    connected: Arc<AtomicBool>,
    options: Arc<ConnectOptions>,
}

impl Client {
    /// A client, not connected yet, its [`Events`], and the [`Connection`] to spawn on your
    /// executor. Fails on options that cannot be used (client id, will, broker rules), and with
    /// [`Error::Unsupported`] on those of a transport this client does not open (a bind address,
    /// a proxy, a `unix://` URI: your [`Runtime`] opens TCP streams to a host and port).
    pub fn new<R: Runtime>(options: ConnectOptions, runtime: R) -> Result<New<R>, Error> {
        options.check_connect_rules()?;
        refuse_transport_options(&options)?;
        let (commands, commands_rx) = channel::channel(COMMAND_CAPACITY);
        let (events, events_rx) = channel::channel(EVENT_CAPACITY);
        let connected = Arc::new(AtomicBool::new(false));
        let connection = Connection {
            supervisor: Supervisor::new(options.clone())?,
            runtime,
            commands: commands_rx,
            events: PollSender::new(events),
            held: VecDeque::new(),
            opening: None,
            stream: None,
            sleep: None,
            connected: Arc::clone(&connected),
        };
        let options = Arc::new(options);
        let client = Self {
            commands,
            connected,
            options,
        };
        Ok((client, Events::new(events_rx), connection))
    }

    /// Connects, trying each server URI in turn within the connect timeout, and returns the
    /// broker's session-present flag. A refusal is [`Error::Refused`].
    pub async fn connect(&self) -> Result<bool, Error> {
        let connect = |sup: &mut Sup, now, reply| refuse(sup.connect(now, reply));
        answer(self.send(connect).await?.await)
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Publishes and waits until the broker has the message: its PUBACK (QoS 1), its PUBCOMP
    /// (QoS 2), or written to the stream (QoS 0). Waits across reconnects.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.publish_later(topic, payload.into(), qos, retain)
            .await?
            .await
    }

    /// Hands the message over (waiting only for room among the commands) and returns its delivery,
    /// to await later: many messages can be in flight, in order. Dropped, only the news is lost.
    pub async fn publish_later(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + use<>, Error> {
        let topic = TopicName::try_from(topic)?;
        // The supervisor checks the broker's rules.
        let publish = move |sup: &mut Sup, now, reply| {
            refuse(sup.publish(now, topic, qos, retain, payload, reply));
        };
        let result = self.send(publish).await?;
        Ok(async { answer(result.await) })
    }

    /// MQTT 5: [`publish`](Self::publish) with `properties` (User Properties, Content Type,
    /// Payload Format Indicator, Message Expiry Interval, Response Topic, Correlation Data). A
    /// message the broker refuses with a Reason Code fails with [`Error::PublishRefused`]; one
    /// whose Message Expiry Interval runs out while it waits with [`Error::Expired`].
    pub async fn publish_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<(), Error> {
        let topic = TopicName::try_from(topic)?;
        let payload = payload.into();
        let publish = move |sup: &mut Sup, now, reply| {
            let published =
                sup.publish_with_properties(now, topic, qos, retain, payload, properties, reply);
            refuse(published);
        };
        answer(self.send(publish).await?.await)
    }

    /// MQTT 5: subscribes with each filter's options (No Local, Retain As Published, Retain
    /// Handling) and `properties` (a Subscription Identifier, which the matching messages carry;
    /// User Properties), and waits for SUBACK. A filter the broker refused is
    /// [`Error::SubscribeRefused`] with its Reason Code.
    pub async fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        self.options
            .check_subscribe_rules(filters.iter().map(|f| (&*f.filter, f.qos)))?;
        let filters = filters.to_vec();
        let subscribe = |sup: &mut Sup, now, reply| {
            refuse(sup.subscribe_with_properties(now, filters, properties, reply));
        };
        answer(self.send(subscribe).await?.await)
    }

    /// MQTT 5 request/response, as mosquitto_rr does: publishes `payload` to `topic` with a
    /// Response Topic and Correlation Data, and resolves with the message a responder publishes
    /// back with the same Correlation Data, or [`Error::Timeout`] after time-to-wait. The
    /// response topic is [`Mqtt5Options::response_topic`](crate::Mqtt5Options::response_topic)
    /// (by default `responses/<client id>`), subscribed to at the first request. `properties`
    /// may add User Properties and so on. Refused on an MQTT 3.1.1 connection.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        properties: Properties,
    ) -> Result<Message, Error> {
        let topic = TopicName::try_from(topic)?;
        let payload = payload.into();
        let request = move |sup: &mut Sup, now, reply| {
            refuse(sup.request(now, topic, qos, payload, properties, reply));
        };
        answer(self.send(request).await?.await)
    }

    /// Subscribes and waits for SUBACK; returns the granted QoS per filter. A filter the broker
    /// refused is [`Error::SubscribeRefused`]. Matching messages arrive on [`Events`].
    pub async fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        let filters = self.options.subscribe_filters(filters)?;
        let subscribe = |sup: &mut Sup, now, reply| refuse(sup.subscribe(now, filters, reply));
        answer(self.send(subscribe).await?.await)
    }

    /// Unsubscribes and waits for UNSUBACK.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        let filters = filters.iter().map(|&f| TopicFilter::try_from(f));
        let filters = filters.collect::<Result<Vec<_>, _>>()?;
        let unsubscribe = |sup: &mut Sup, now, reply| refuse(sup.unsubscribe(now, filters, reply));
        answer(self.send(unsubscribe).await?.await)
    }

    /// MQTT 5: starts a re-authentication on the open connection with the authenticator of
    /// [`Mqtt5Options::authenticator`](sansmq_driver::Mqtt5Options::authenticator) (MQTT 5.0
    /// section 4.12.1); messages keep flowing meanwhile, and a server that refuses it ends the
    /// connection with its Reason Code. Fails when not connected or without an authenticator.
    pub async fn reauthenticate(&self) -> Result<(), Error> {
        let reauthenticate = |sup: &mut Sup, now, reply: Reply<()>| {
            let _ = reply.send(sup.reauthenticate(now));
        };
        answer(self.send(reauthenticate).await?.await)
    }

    /// Disconnects: waits up to `drain` for unacknowledged QoS 1/2 messages, sends DISCONNECT and
    /// closes once the broker has read it, so that the will is not published. Automatic
    /// reconnect stops until the next `connect`. It does not wait behind publishes waiting for
    /// room (a broker that stopped acknowledging): the connection takes it out of turn.
    pub async fn disconnect(&self, drain: Duration) -> Result<(), Error> {
        let disconnect = move |sup: &mut Sup, now, reply| sup.disconnect(now, drain, reply);
        let (command, result) = call(disconnect, true);
        self.commands
            .send_past_capacity(command)
            .map_err(|_| Error::Closed)?;
        answer(result.await)
    }

    /// Hands `command` to the connection once there is room; its result comes later.
    async fn send<T, F>(&self, command: F) -> Result<oneshot::Receiver<Result<T, Error>>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Sup, Instant, Reply<T>) + Send + 'static,
    {
        let (command, result) = call(command, false);
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Closed)?;
        Ok(result)
    }
}

/// The command that runs `command` with a reply sender, and the receiver of its result.
fn call<T, F>(command: F, urgent: bool) -> (Command, oneshot::Receiver<Result<T, Error>>)
where
    T: Send + 'static,
    F: FnOnce(&mut Sup, Instant, Reply<T>) + Send + 'static,
{
    let (reply, result) = oneshot::channel();
    let run = Box::new(move |sup: &mut Sup, now| command(sup, now, reply));
    (Command { run, urgent }, result)
}

/// Answers a refused command at once.
fn refuse<T, U>(result: Result<U, Rejected<Reply<T>>>) {
    if let Err(rejected) = result {
        let _ = rejected.waiter.send(Err(rejected.error));
    }
}

/// The transport options a [`Runtime`] cannot carry out, refused by name rather than ignored.
fn refuse_transport_options(options: &ConnectOptions) -> Result<(), Error> {
    let refused = |option: &'static str, what: &str| Error::Unsupported {
        option,
        reason: format!(
            "sansmq-futures connects with Runtime::connect, which takes {what}; \
             use sansmq-mio or sansmq-tokio"
        ),
    };
    if options.local_address().is_some() {
        return Err(refused("ConnectOptions::bind_address", "no bind address"));
    }
    if options.proxy_options().is_some() {
        return Err(refused("ConnectOptions::proxy", "no proxy"));
    }
    if let Some(uri) = options.websocket_uri() {
        return Err(refused(
            "ws:// and wss:// server URIs",
            &format!("TCP only, not MQTT over WebSocket at {uri}"),
        ));
    }
    if let Some(uri) = options
        .servers()
        .iter()
        .find(|uri| uri.unix_socket.is_some())
    {
        return Err(refused(
            "unix:// server URI",
            &format!("TCP only, not {uri}"),
        ));
    }
    Ok(())
}

/// A call's result, or [`Error::Closed`] if the connection ended without giving one.
fn answer<T>(result: Result<Result<T, Error>, oneshot::Canceled>) -> Result<T, Error> {
    result.unwrap_or(Err(Error::Closed))
}
