//! [`Client`]: the blocking, Paho-style handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Disconnect, Properties, QoS, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};
use sansmq_driver::LastTopic;
use sansmq_driver::closing::CLOSE_LIMIT;
use sansmq_driver::supervisor::Rejected;

use crate::callback::{self, Callback, Handler, Handoff, Spawner};
use crate::completion::{self, Completion};
use crate::dialer::WAKER;
use crate::io_loop::{self, IoRole, Poller, Shared};
use crate::shell::Shell;
use crate::{ConnectOptions, DeliveryToken, Error, Message, Messages};

/// Closes the client when the last handle goes away.
struct Owner {
    shared: Arc<Shared>,
    io_thread: Option<JoinHandle<()>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake();
        let current = thread::current().id();
        let join = |handle: JoinHandle<()>| {
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        };
        if let Some(io) = self.io_thread.take() {
            join(io);
        }
        // The IO thread has closed the hand-off by now, so the callback thread is ending.
        let callbacks = self.shared.lock().handoff.take_thread();
        if let Some(callbacks) = callbacks {
            join(callbacks);
        }
    }
}

/// A blocking MQTT client, like Paho's `MqttClient`.
///
/// One IO thread owns the socket (plain TCP or TLS, or a WebSocket over either) and the sans-IO
/// core; callbacks run on a second thread, started when a callback or handler is first needed (a
/// client that publishes, or reads through [`messages`](Self::messages), has one thread). The handle is `Clone + Send + Sync`: share it, call it
/// from callbacks. Publishing writes straight to the socket from the calling thread when it can,
/// without a hand-off.
///
/// ```no_run
/// use std::time::Duration;
/// use sansmq::packet::QoS;
/// use sansmq_mio::{Client, ConnectOptions};
///
/// # fn main() -> Result<(), sansmq_mio::Error> {
/// let options = ConnectOptions::new("tcp://127.0.0.1:1883", "quickstart")?;
/// let client = Client::new(options)?;
/// let messages = client.messages(100);
/// client.connect()?;
/// client.subscribe(&[("hello/#", QoS::AtLeastOnce)])?;
/// client.publish("hello/world", "hi", QoS::AtLeastOnce, false)?.wait()?;
/// let message = messages.recv_timeout(Duration::from_secs(5)).expect("a message");
/// println!("{}: {:?}", message.topic, message.payload);
/// client.disconnect(Duration::from_secs(5))?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    time_to_wait: Duration,
    /// The topic this handle published to last (each clone has its own).
    last_topic: LastTopic,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A disconnected client; starts its IO thread (the callback thread starts when there is a
    /// callback, handler or full receiver to serve). Validates the options (client id, will topic,
    /// TLS files, the broker rules' view of the will and session) now.
    pub fn new(options: ConnectOptions) -> Result<Self, Error> {
        options.check_connect_rules()?;
        if let Some(uri) = options.websocket_uri() {
            for (name, value) in options.websocket_headers() {
                sansmq_driver::websocket::check_header(name, value)
                    .map_err(|error| sansmq_driver::websocket::error(uri, error))?;
            }
        }
        let poll = mio::Poll::new().map_err(|e| Error::io("creating the poller", &e))?;
        let waker = mio::Waker::new(poll.registry(), WAKER);
        let waker = Arc::new(waker.map_err(|e| Error::io("creating the waker", &e))?);
        let registry = poll.registry().try_clone();
        let registry = registry.map_err(|e| Error::io("cloning the registry", &e))?;
        let time_to_wait = options.time_to_wait_limit();
        let dispatch = Arc::new(Mutex::new(callback::Dispatch::default()));
        let handoff = Handoff::new(Arc::clone(&dispatch));
        let shared = Arc::new(Shared {
            shell: Mutex::new(Shell::new(options, registry, Arc::clone(&waker), handoff)?),
            dispatch,
            waker,
            closed: AtomicBool::new(false),
            poller: Mutex::new(Poller::new(poll)),
            role: IoRole::default(),
        });
        let weak = Arc::downgrade(&shared);
        let spawn_callbacks: Spawner = Box::new(move |events| {
            let spawned = thread::Builder::new()
                .name("sansmq-callbacks".into())
                .spawn(move || {
                    if let Some(shared) = weak.upgrade() {
                        run_callbacks(&shared, &events);
                    }
                });
            spawned.ok()
        });
        shared.lock().handoff.start_callbacks_with(spawn_callbacks);
        let io = {
            let shared = Arc::clone(&shared);
            let io = move || io_loop::run(&shared);
            thread::Builder::new().name("sansmq-io".into()).spawn(io)
        };
        let io = io.map_err(|e| Error::io("starting the client's IO thread", &e))?;
        let owner = Arc::new(Owner {
            shared: Arc::clone(&shared),
            io_thread: Some(io),
        });
        Ok(Self {
            shared,
            time_to_wait,
            last_topic: LastTopic::default(),
            _owner: owner,
        })
    }

    /// Sets the callback (Paho's `setCallback`); register it before `connect` to see the first
    /// `connect_complete`.
    pub fn set_callback(&self, callback: impl Callback) {
        callback::lock(&self.shared.dispatch).callback = Some(Arc::new(callback));
    }

    /// A receiver of every message no per-subscription handler takes, holding up to `capacity`
    /// (then reading from the broker waits for you). A thread waiting in its `recv` reads from the
    /// broker itself (see [`Messages`]): a message wakes one thread, not two. A message is
    /// acknowledged once it is in the receiver, or with
    /// [`set_manual_acks`](Self::set_manual_acks) once you call [`ack`](Self::ack).
    ///
    /// Once the receiver is full, about 1,024 more messages wait inside the client; beyond them
    /// this client reads nothing more from the broker, its own PUBACKs included. So a thread that
    /// publishes through this client and waits on the tokens should not be the only one draining
    /// the receiver. Closing the client ends the wait; a message the receiver had no room for is
    /// then not acknowledged, and the broker delivers it again.
    pub fn messages(&self, capacity: usize) -> Messages {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        callback::lock(&self.shared.dispatch).receiver = Some(tx);
        Messages::new(rx, &self.shared)
    }

    /// Whether the application acknowledges received QoS 1/2 messages itself with
    /// [`ack`](Self::ack) (Paho's `setManualAcks`), instead of the client when `message_arrived`
    /// or a handler returns, or when the [`messages`](Self::messages) receiver takes the message.
    /// Set it before `connect`: a message delivered in automatic mode is acknowledged by the
    /// client.
    ///
    /// Use it to acknowledge a message only once it is safe (written to disk or stdout): a crash
    /// before then has the broker deliver it again, where an automatic ack of a message still
    /// queued in the receiver loses it.
    pub fn set_manual_acks(&self, manual: bool) {
        callback::lock(&self.shared.dispatch).manual_acks = manual;
    }

    /// Manual-ack mode: the application is done with `message` (Paho's `messageArrivedComplete`).
    /// Its PUBACK (QoS 1) or PUBREC (QoS 2) goes out once every message received before it is
    /// acknowledged too (MQTT-4.6.0-2); while disconnected it waits for the next connection. A
    /// QoS 0 message needs nothing and returns `Ok`.
    ///
    /// [`CommandError::UnknownAck`](crate::CommandError::UnknownAck) names a message acknowledged
    /// already, one not delivered by this client, one received in automatic mode, or one of a
    /// session the broker has since forgotten (`session_present = 0`: it will not deliver that
    /// message again, and may reuse its identifier for a new one).
    pub fn ack(&self, message: &Message) -> Result<(), Error> {
        match message.ack_key() {
            Some(key) => self.shared.call(|shell, now| shell.sup.ack(now, key)),
            None => Ok(()),
        }
    }

    /// Connects, blocking until CONNACK (or the connect timeout, per server URI, which covers DNS,
    /// TCP to every address the host resolves to, 250 ms apart as in RFC 8305, TLS and CONNACK).
    /// Returns the broker's session-present flag. With automatic reconnect, a later loss reconnects by itself.
    pub fn connect(&self) -> Result<bool, Error> {
        let waiter = Completion::default();
        let (limit, attempts) = self.shared.call(|shell, now| {
            shell.sup.connect(now, waiter.clone()).map_err(rejected)?;
            let options = shell.sup.options();
            let attempts = u32::try_from(options.servers().len()).unwrap_or(u32::MAX);
            Ok::<_, Error>((options.connect_timeout_limit(), attempts))
        })?;
        self.shared.wake();
        // Each attempt has its own timer in the core; this only guards against a lost wake-up.
        let total = limit
            .saturating_mul(attempts)
            .saturating_add(Duration::from_secs(1));
        waiter.wait(total).unwrap_or(Err(Error::Timeout(limit)))
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().sup.is_connected()
    }

    /// MQTT 5: starts a re-authentication on the open connection with the authenticator of
    /// [`Mqtt5Options::authenticator`](crate::Mqtt5Options::authenticator) (MQTT 5.0 section
    /// 4.12.1); messages keep flowing meanwhile, and a server that refuses it ends the
    /// connection with its Reason Code. Fails when not connected or without an authenticator.
    pub fn reauthenticate(&self) -> Result<(), Error> {
        self.shared.call(|shell, now| shell.sup.reauthenticate(now))
    }

    /// Subscribes and waits for SUBACK (at most time-to-wait); returns the granted QoS per filter.
    /// A filter the broker refused (0x80) is an error naming it.
    pub fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        let waiter = Completion::default();
        self.shared.call(|shell, now| {
            let filters = shell.sup.options().subscribe_filters(filters)?;
            shell
                .sup
                .subscribe(now, filters, waiter.clone())
                .map_err(rejected)
        })?;
        self.wait(&waiter)
    }

    /// MQTT 5: subscribes with each filter's options (No Local, Retain As Published, Retain
    /// Handling) and `properties` (a Subscription Identifier, which the matching messages carry,
    /// [`Message::subscription_identifiers`]; User Properties), and waits for SUBACK. A filter the
    /// broker refused is [`Error::SubscribeRefused`] with its Reason Code.
    pub fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        let waiter = Completion::default();
        self.shared.call(|shell, now| {
            let options = shell.sup.options();
            options.check_subscribe_rules(filters.iter().map(|f| (&*f.filter, f.qos)))?;
            shell
                .sup
                .subscribe_with_properties(now, filters.to_vec(), properties, waiter.clone())
                .map_err(rejected)
        })?;
        self.wait(&waiter)
    }

    /// Subscribes with a handler that receives the messages matching `filter` (instead of
    /// `message_arrived` and the receiver).
    pub fn subscribe_with(
        &self,
        filter: &str,
        qos: QoS,
        handler: impl Fn(&Message) + Send + Sync + 'static,
    ) -> Result<QoS, Error> {
        let topic_filter = TopicFilter::try_from(filter)?;
        let handler: Handler = Arc::new(handler);
        callback::lock(&self.shared.dispatch)
            .handlers
            .push((topic_filter, handler));
        let granted = self.subscribe(&[(filter, qos)])?;
        Ok(granted.first().copied().unwrap_or(qos))
    }

    /// Unsubscribes and waits for UNSUBACK (at most time-to-wait).
    pub fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        self.unsubscribe_with_properties(filters, Properties::new())
    }

    /// MQTT 5: [`unsubscribe`](Self::unsubscribe) with properties (User Properties).
    pub fn unsubscribe_with_properties(
        &self,
        filters: &[&str],
        properties: Properties,
    ) -> Result<(), Error> {
        let parsed = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        callback::lock(&self.shared.dispatch)
            .handlers
            .retain(|(f, _)| !parsed.contains(f));
        let waiter = Completion::default();
        let unsubscribe = |shell: &mut Shell, now| {
            shell
                .sup
                .unsubscribe_with_properties(now, parsed, properties, waiter.clone())
        };
        self.shared.call(unsubscribe).map_err(rejected)?;
        self.wait(&waiter)
    }

    /// Publishes a message. The token completes when the broker acknowledges a QoS 1/2 message,
    /// and once a QoS 0 message is written to the socket (it fails if the connection ends first).
    /// While disconnected, messages wait in the offline queue; a full queue is
    /// [`CommandError::QueueFull`](crate::CommandError::QueueFull).
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<DeliveryToken, Error> {
        let topic = self.last_topic.name(topic)?;
        let token = DeliveryToken::pending(topic.clone(), qos, self.time_to_wait, &self.shared);
        let payload = payload.into();
        self.shared.call(|shell, now| {
            let id = shell
                .sup
                .publish(now, topic, qos, retain, payload, token.clone());
            token.set_message_id(id.map_err(rejected)?);
            Ok(token)
        })
    }

    /// MQTT 5: [`publish`](Self::publish) with `properties` (User Properties, Content Type,
    /// Payload Format Indicator, Message Expiry Interval, Response Topic, Correlation Data). A
    /// message the broker refuses with a Reason Code fails its token with
    /// [`Error::PublishRefused`]; one whose Message Expiry Interval runs out in the offline queue
    /// with [`Error::Expired`].
    pub fn publish_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<DeliveryToken, Error> {
        let topic = self.last_topic.name(topic)?;
        let token = DeliveryToken::pending(topic.clone(), qos, self.time_to_wait, &self.shared);
        let payload = payload.into();
        self.shared.call(|shell, now| {
            let id = shell.sup.publish_with_properties(
                now,
                topic,
                qos,
                retain,
                payload,
                properties,
                token.clone(),
            );
            token.set_message_id(id.map_err(rejected)?);
            Ok(token)
        })
    }

    /// MQTT 5 request/response, as mosquitto_rr does: publishes `payload` to `topic` with a
    /// Response Topic and Correlation Data, and returns the message a responder publishes back
    /// with the same Correlation Data, or [`Error::Timeout`] after time-to-wait. The response
    /// topic is [`Mqtt5Options::response_topic`](crate::Mqtt5Options::response_topic) (by
    /// default `responses/<client id>`), subscribed to at the first request. Refused on an MQTT
    /// 3.1.1 connection.
    pub fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
    ) -> Result<Message, Error> {
        self.request_with_properties(topic, payload, qos, Properties::new())
    }

    /// [`request`](Self::request) with further properties (User Properties, Content Type...);
    /// its Response Topic and Correlation Data are set by the client.
    pub fn request_with_properties(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        properties: Properties,
    ) -> Result<Message, Error> {
        let topic = TopicName::try_from(topic)?;
        let payload = payload.into();
        let waiter = Completion::default();
        self.shared.call(|shell, now| {
            shell
                .sup
                .request(now, topic, qos, payload, properties, waiter.clone())
                .map_err(rejected)
        })?;
        self.wait(&waiter)
    }

    /// Publishes a QoS 1 message that nothing published later overtakes: until the broker
    /// acknowledges it, later PUBLISH, SUBSCRIBE and UNSUBSCRIBE requests wait (ApsaraMQ's token
    /// refresh on `$SYS/uploadToken` needs this). The token completes on its PUBACK.
    pub fn publish_barrier(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> Result<DeliveryToken, Error> {
        let topic = TopicName::try_from(topic)?;
        let token = DeliveryToken::pending(
            topic.clone(),
            QoS::AtLeastOnce,
            self.time_to_wait,
            &self.shared,
        );
        self.shared.call(|shell, now| {
            let id = shell
                .sup
                .publish_barrier(now, topic, payload.into(), token.clone());
            token.set_message_id(Some(id.map_err(rejected)?));
            Ok(token)
        })
    }

    /// Disconnects: waits up to `timeout` for unacknowledged QoS 1/2 messages, sends DISCONNECT,
    /// and closes the connection once the broker has read it (at most about 3 s more, see
    /// [`sansmq_driver::Closing`]), so the will is not published. Automatic reconnect stops until the next `connect`.
    pub fn disconnect(&self, timeout: Duration) -> Result<(), Error> {
        self.disconnect_with(timeout, Disconnect::new())
    }

    /// MQTT 5: [`disconnect`](Self::disconnect) with a DISCONNECT of your own: a Reason Code
    /// (0x04 has the broker publish the will) and properties (a new Session Expiry Interval, a
    /// Reason String, User Properties).
    pub fn disconnect_with(&self, timeout: Duration, disconnect: Disconnect) -> Result<(), Error> {
        let waiter = Completion::default();
        self.shared.call(|shell, now| {
            shell
                .sup
                .disconnect_with(now, timeout, disconnect, waiter.clone());
        });
        self.shared.wake();
        let limit = timeout
            .saturating_add(CLOSE_LIMIT)
            .saturating_add(Duration::from_secs(1));
        waiter.wait(limit).unwrap_or(Err(Error::Timeout(timeout)))
    }

    /// Stops the client's threads; it cannot connect again. Dropping the last handle does the same
    /// (a callback holding a handle keeps the client alive until `close`).
    pub fn close(&self) {
        self.shared.call(|shell, now| shell.sup.shut_down(now));
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake();
    }

    fn wait<T: Clone>(&self, waiter: &Completion<Result<T, Error>>) -> Result<T, Error> {
        self.shared.wake();
        let waited = waiter.wait(self.time_to_wait);
        waited.unwrap_or(Err(Error::Timeout(self.time_to_wait)))
    }
}

/// The error of a refused command (its waiter is not needed any more).
fn rejected<W>(rejected: Rejected<W>) -> Error {
    rejected.error
}

/// The callback thread: runs callbacks and acknowledges the messages they handled. While it blocks
/// on this client, the IO thread reads on regardless of held callbacks.
fn run_callbacks(shared: &Arc<Shared>, events: &Receiver<callback::CallbackEvent>) {
    let weak = Arc::downgrade(shared);
    completion::on_blocking(move |blocked| {
        if let Some(shared) = weak.upgrade() {
            shared.lock().callback_blocked = blocked;
            // Reading may have paused for callbacks: it goes on now.
            if blocked {
                shared.wake();
            }
        }
    });
    let handed = || shared.wake_receiver();
    callback::run(
        events,
        &shared.dispatch,
        &shared.closed,
        handed,
        |acks, handled| {
            shared.call(|shell, now| {
                shell.handoff.with_callbacks = shell.handoff.with_callbacks.saturating_sub(handled);
                for &key in acks {
                    // A message of a session the broker forgot is refused: its id may name a
                    // newer one.
                    let _ = shell.sup.ack(now, key);
                }
            });
        },
    );
}
