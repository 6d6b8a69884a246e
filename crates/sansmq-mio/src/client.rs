//! [`Client`]: the blocking, Paho-style handle, and the state it shares with its threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::packet::{PacketId, QoS};
use sansmq::{CommandError, TopicFilter, TopicName};
use sansmq_driver::Operation;

use crate::callback::{self, Callback, Dispatch, Handler};
use crate::completion::Completion;
use crate::session::{Inner, Link};
use crate::{ConnectOptions, DeliveryToken, Error, Message, io_loop};

/// Messages the callback thread may have queued before reading from the broker pauses.
const CALLBACK_QUEUE: usize = 1024;

/// State shared by the handles, the IO thread and the callback thread.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) dispatch: Arc<Mutex<Dispatch>>,
    /// Shared with the DNS threads, which wake the IO thread when an answer is in (mio allows one
    /// waker per poll).
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) closed: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock on purpose; if something did, the state is still
        // the core's, which stays consistent between calls.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The callback thread handled `delivered` messages; acknowledge the QoS 1/2 ones among them,
    /// `ids` with the session that delivered each (in arrival order, by the core), and write the
    /// acks out together.
    pub(crate) fn delivered(&self, now: Instant, ids: &[(u64, PacketId)], delivered: usize) {
        let mut inner = self.lock();
        inner.messages_with_callbacks = inner.messages_with_callbacks.saturating_sub(delivered);
        let mut acked = false;
        for &(session, id) in ids {
            // A message of a session the broker forgot: its id may now name a newer message.
            if session == inner.session {
                acked |= inner.core.ack(now, id).is_ok();
            }
        }
        if acked && inner.flush_from_caller(now) {
            drop(inner);
            self.wake();
        }
    }

    pub(crate) fn drop_receiver(&self) {
        callback::lock(&self.dispatch).receiver = None;
    }

    fn wake(&self) {
        let _ = self.waker.wake();
    }
}

/// Closes the client when the last handle goes away.
struct Owner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake();
        let current = thread::current().id();
        for handle in self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

/// A blocking MQTT client, like Paho's `MqttClient`.
///
/// One IO thread owns the socket (plain TCP or TLS) and the sans-IO core; callbacks run on a second
/// thread. The handle is `Clone + Send + Sync`: share it, call it from callbacks. Publishing writes
/// straight to the socket from the calling thread when it can, without a hand-off.
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
    /// A disconnected client; starts its IO and callback threads. Validates the options (client id,
    /// will topic, TLS files, the broker rules' view of the will and session) now.
    pub fn new(options: ConnectOptions) -> Result<Self, Error> {
        options.check_connect_rules()?;
        let poll = mio::Poll::new().map_err(|e| Error::io("creating the poller", &e))?;
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), io_loop::WAKER)
                .map_err(|e| Error::io("creating the waker", &e))?,
        );
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| Error::io("cloning the registry", &e))?;
        let (tx, rx) = mpsc::sync_channel(CALLBACK_QUEUE);
        let time_to_wait = options.time_to_wait_limit();
        let dispatch = Arc::new(Mutex::new(Dispatch::default()));
        let inner = Inner::new(
            options,
            registry,
            Arc::clone(&waker),
            tx,
            Arc::clone(&dispatch),
        )?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            dispatch,
            waker,
            closed: AtomicBool::new(false),
        });
        let io = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("sansmq-io".into())
                .spawn(move || io_loop::run(poll, &shared))
                .map_err(|e| Error::io("starting the IO thread", &e))?
        };
        let callbacks = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("sansmq-callbacks".into())
                .spawn(move || callback::run(&shared, &rx))
                .map_err(|e| Error::io("starting the callback thread", &e))?
        };
        let owner = Arc::new(Owner {
            shared: Arc::clone(&shared),
            threads: Mutex::new(vec![io, callbacks]),
        });
        Ok(Self {
            shared,
            time_to_wait,
            _owner: owner,
        })
    }

    /// Sets the callback (Paho's `setCallback`); register it before `connect` to see the first
    /// `connect_complete`.
    pub fn set_callback(&self, callback: impl Callback) {
        callback::lock(&self.shared.dispatch).callback = Some(Arc::new(callback));
    }

    /// A receiver of every message no per-subscription handler takes, holding up to `capacity`
    /// (then reading from the broker waits for you). A message is acknowledged once it is in the
    /// receiver, or with [`set_manual_acks`](Self::set_manual_acks) once you call
    /// [`ack`](Self::ack).
    pub fn messages(&self, capacity: usize) -> Receiver<Message> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        callback::lock(&self.shared.dispatch).receiver = Some(tx);
        rx
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
    /// [`CommandError::UnknownAck`] names a message acknowledged already, one not delivered by
    /// this client, one received in automatic mode, or one of a session the broker has since
    /// forgotten (`session_present = 0`: it will not deliver that message again, and may reuse
    /// its identifier for a new one).
    pub fn ack(&self, message: &Message) -> Result<(), Error> {
        let Some(id) = message.id else {
            return Ok(());
        };
        let mut inner = self.shared.lock();
        if message.session != inner.session {
            return Err(CommandError::UnknownAck(id).into());
        }
        let now = Instant::now();
        inner.core.ack(now, id)?;
        if inner.flush_from_caller(now) {
            drop(inner);
            self.shared.wake();
        }
        Ok(())
    }

    /// Connects, blocking until CONNACK (or the connect timeout, per server URI, which covers DNS,
    /// TCP to every address the host resolves to, 250 ms apart as in RFC 8305, TLS and CONNACK).
    /// Returns the
    /// broker's session-present flag. With automatic reconnect, a later loss reconnects by itself.
    pub fn connect(&self) -> Result<bool, Error> {
        let waiter = Completion::new();
        {
            let mut inner = self.shared.lock();
            match inner.link {
                Link::Connected => return Err(CommandError::AlreadyConnected.into()),
                Link::Closed => return Err(Error::Closed),
                _ => {}
            }
            let now = Instant::now();
            inner.start_connect(now, waiter.clone());
            inner.process_events(now);
        }
        self.shared.wake();
        let limit = self.shared.lock().options.connect_timeout_limit();
        let attempts = u32::try_from(self.shared.lock().options.servers().len()).unwrap_or(1);
        // Each attempt has its own timer in the core; this only guards against a lost wake-up.
        let total = limit
            .saturating_mul(attempts)
            .saturating_add(Duration::from_secs(1));
        waiter
            .wait(Some(total))
            .unwrap_or(Err(Error::Timeout(limit)))
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().link == Link::Connected
    }

    /// Subscribes and waits for SUBACK (at most time-to-wait); returns the granted QoS per filter.
    /// A filter the broker refused (0x80) is an error naming it.
    pub fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        let filters = self.shared.lock().options.subscribe_filters(filters)?;
        let waiter = Completion::new();
        self.shared
            .lock()
            .subscribe(Instant::now(), filters, waiter.clone())?;
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
        let parsed = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        callback::lock(&self.shared.dispatch)
            .handlers
            .retain(|(f, _)| !parsed.contains(f));
        let waiter = Completion::new();
        {
            let mut inner = self.shared.lock();
            let now = Instant::now();
            inner.restore.on_unsubscribe(&parsed);
            let id = inner.core.unsubscribe(now, parsed)?;
            inner.unsubscribe_waiters.insert(id, waiter.clone());
            let _ = inner.flush_from_caller(now);
        }
        self.wait(&waiter)
    }

    /// Publishes a message. QoS 0 returns a completed token once the message is written or queued;
    /// QoS 1/2 return a token that completes when the broker acknowledges. While disconnected,
    /// messages wait in the offline queue; a full queue is [`CommandError::QueueFull`].
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<DeliveryToken, Error> {
        let topic = TopicName::try_from(topic)?;
        let payload = payload.into();
        let mut inner = self.shared.lock();
        inner
            .options
            .check_publish_rules(&topic, payload.len(), qos, retain)?;
        let now = Instant::now();
        let id = inner
            .core
            .publish(now, topic.clone(), qos, retain, payload)?;
        inner
            .diagnostics
            .on_sent(now, Operation::Publish, &topic, id);
        let token = DeliveryToken::pending(topic, id, qos, self.time_to_wait);
        match id {
            Some(id) => {
                inner.deliveries.insert(id, token.clone());
            }
            None => token.complete(Ok(())),
        }
        if inner.flush_from_caller(now) {
            drop(inner);
            self.shared.wake();
        }
        Ok(token)
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
        let mut inner = self.shared.lock();
        let now = Instant::now();
        let id = inner.core.publish_barrier(now, topic.clone(), payload)?;
        let token = DeliveryToken::pending(topic, Some(id), QoS::AtLeastOnce, self.time_to_wait);
        inner.deliveries.insert(id, token.clone());
        if inner.flush_from_caller(now) {
            drop(inner);
            self.shared.wake();
        }
        Ok(token)
    }

    /// Disconnects: waits up to `timeout` for unacknowledged QoS 1/2 messages, sends DISCONNECT,
    /// and closes the connection once the broker has read it (at most about 3 s more, see
    /// [`sansmq_driver::Closing`]), so the will is not published. Automatic reconnect stops until the next `connect`.
    pub fn disconnect(&self, timeout: Duration) -> Result<(), Error> {
        let waiter = Completion::new();
        {
            let mut inner = self.shared.lock();
            let now = Instant::now();
            match inner.core.disconnect(now, timeout) {
                Ok(()) => inner.disconnect_waiter = Some(waiter.clone()),
                Err(_) => {
                    // Not connected (perhaps waiting to reconnect): just stop.
                    inner.link = Link::Idle;
                    return Ok(());
                }
            }
            inner.process_events(now);
        }
        self.shared.wake();
        waiter
            .wait(Some(
                timeout
                    .saturating_add(sansmq_driver::closing::CLOSE_LIMIT)
                    .saturating_add(Duration::from_secs(1)),
            ))
            .unwrap_or(Err(Error::Timeout(timeout)))
    }

    /// Stops the client's threads; it cannot connect again. Dropping the last handle does the same
    /// (a callback holding a handle keeps the client alive until `close`).
    pub fn close(&self) {
        self.shared.lock().link = Link::Closed;
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake();
    }

    fn wait<T: Clone>(&self, waiter: &Completion<Result<T, Error>>) -> Result<T, Error> {
        self.shared.wake();
        waiter
            .wait(Some(self.time_to_wait))
            .unwrap_or(Err(Error::Timeout(self.time_to_wait)))
    }
}
