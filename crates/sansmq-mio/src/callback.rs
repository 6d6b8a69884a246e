//! Callbacks as Paho's `MqttCallbackExtended`, per-subscription handlers and the pull receiver, all
//! run on a thread of their own so a callback may call the client. That thread starts when the
//! first work for it comes: a client that only publishes, or reads through the `messages()`
//! receiver, has its IO thread alone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use sansmq::TopicFilter;
use sansmq_driver::AckKey;

use crate::{DeliveryToken, Error, Message};

/// What happens to a connection and its messages; every method has an empty default.
///
/// Methods run on the client's callback thread, one at a time, in order. They may call the client
/// (publish from `message_arrived`, subscribe from `connect_complete`). A slow callback slows
/// reading from the broker (the queue to this thread is bounded) but never keep-alive.
pub trait Callback: Send + Sync + 'static {
    /// A connection was made; `reconnect` is true for automatic reconnects. Subscribe here to have
    /// subscriptions on every connection, as Alibaba's quick-start does: after a reconnect that
    /// restores the subscriptions itself, such a subscribe joins that SUBSCRIBE rather than
    /// sending a second one.
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        let _ = (reconnect, server_uri);
    }

    /// The connection was lost (not after `disconnect`). Called once more, with the provider's
    /// reason, when automatic reconnect finds no credentials (as after the broker invalidated
    /// ApsaraMQ tokens): it then asks the provider again after each backoff delay and opens
    /// nothing until it has them, so new credentials resume the client by themselves.
    fn connection_lost(&self, cause: &Error) {
        let _ = cause;
    }

    /// A message arrived that no per-subscription handler took. Returning acknowledges it to the
    /// broker (QoS 1/2): if the process dies inside, the broker delivers it again. With
    /// [`Client::set_manual_acks`](crate::Client::set_manual_acks), [`Client::ack`](crate::Client::ack)
    /// does instead, as Paho's `messageArrivedComplete`.
    fn message_arrived(&self, topic: &str, message: &Message) {
        let _ = (topic, message);
    }

    /// The broker acknowledged a QoS 1/2 message this client published.
    fn delivery_complete(&self, token: &DeliveryToken) {
        let _ = token;
    }
}

/// A per-subscription message handler.
pub(crate) type Handler = Arc<dyn Fn(&Message) + Send + Sync>;

/// Work for the callback thread.
pub(crate) enum CallbackEvent {
    ConnectComplete { reconnect: bool, uri: String },
    ConnectionLost(Error),
    MessageArrived(Message),
    DeliveryComplete(DeliveryToken),
}

/// Who receives what, set by the application at any time.
#[derive(Default)]
pub(crate) struct Dispatch {
    pub(crate) callback: Option<Arc<dyn Callback>>,
    pub(crate) handlers: Vec<(TopicFilter, Handler)>,
    pub(crate) receiver: Option<SyncSender<Message>>,
    /// The application acknowledges QoS 1/2 messages itself ([`Client::ack`](crate::Client::ack))
    /// instead of the client doing so when the callbacks return or the receiver takes them.
    pub(crate) manual_acks: bool,
}

/// Runs callbacks until the IO side hangs up, then forgets them (breaking the cycle a callback
/// holding a client handle makes). `delivered(acks, n)`: `n` messages were handled; `acks` are the
/// QoS 1/2 ones among them that the client acknowledges (in arrival order), to write together.
///
/// `closed` is the client's: a receiver that stays full does not keep this thread, or whoever
/// closes the client and waits for this thread, waiting past it. `handed` runs after each message
/// the receiver took (a thread waiting for it may be polling the socket, not the receiver).
pub(crate) fn run(
    events: &Receiver<CallbackEvent>,
    dispatch: &Mutex<Dispatch>,
    closed: &AtomicBool,
    handed: impl Fn(),
    delivered: impl Fn(&[AckKey], usize),
) {
    let mut acks = Vec::new();
    while let Ok(first) = events.recv() {
        // Run what is queued, then acknowledge the batch in one write.
        let mut handled = 0;
        let mut next = Some(first);
        while let Some(event) = next {
            if let Some((message, acknowledge)) = run_one(dispatch, closed, &handed, event) {
                handled += 1;
                acks.extend(message.ack_key().filter(|_| acknowledge));
            }
            next = (handled < ACK_BATCH)
                .then(|| events.try_recv().ok())
                .flatten();
        }
        if handled > 0 {
            delivered(&acks, handled);
            acks.clear();
        }
    }
    *lock(dispatch) = Dispatch::default();
}

/// Messages handled before their acknowledgements are written.
const ACK_BATCH: usize = 64;

/// Runs one event's callbacks; returns the message if it was one, and whether the client
/// acknowledges it now (not in manual-ack mode, nor when the client closed before the receiver
/// took it: the broker then delivers it again).
fn run_one(
    dispatch: &Mutex<Dispatch>,
    closed: &AtomicBool,
    handed: &dyn Fn(),
    event: CallbackEvent,
) -> Option<(Message, bool)> {
    let (callback, handlers, receiver, manual_acks) = {
        let d = lock(dispatch);
        let handlers: Vec<Handler> = match &event {
            CallbackEvent::MessageArrived(m) => d
                .handlers
                .iter()
                .filter(|(filter, _)| filter.matches(&m.topic))
                .map(|(_, handler)| Arc::clone(handler))
                .collect(),
            _ => Vec::new(),
        };
        (
            d.callback.clone(),
            handlers,
            d.receiver.clone(),
            d.manual_acks,
        )
    };
    let message = match (event, callback.as_deref()) {
        (CallbackEvent::MessageArrived(message), _) => message,
        (CallbackEvent::ConnectComplete { reconnect, uri }, Some(cb)) => {
            cb.connect_complete(reconnect, &uri);
            return None;
        }
        (CallbackEvent::ConnectionLost(cause), Some(cb)) => {
            cb.connection_lost(&cause);
            return None;
        }
        (CallbackEvent::DeliveryComplete(token), Some(cb)) => {
            cb.delivery_complete(&token);
            return None;
        }
        (_, None) => return None,
    };
    for handler in &handlers {
        handler(&message);
    }
    if handlers.is_empty() {
        if let Some(cb) = callback {
            cb.message_arrived(message.topic.as_str(), &message);
        }
        if let Some(tx) = receiver {
            match send_until_closed(&tx, message.clone(), closed) {
                Handed::Taken => handed(),
                Handed::ReceiverGone => lock(dispatch).receiver = None,
                Handed::Closed => return Some((message, false)),
            }
        }
    }
    Some((message, !manual_acks))
}

/// What became of a message offered to the receiver.
enum Handed {
    Taken,
    ReceiverGone,
    Closed,
}

/// Gives `message` to the receiver, waiting while it is full (backpressure: the application is
/// behind; only this thread waits), but not once the client is closed.
fn send_until_closed(tx: &SyncSender<Message>, message: Message, closed: &AtomicBool) -> Handed {
    let mut message = message;
    let mut pause = Duration::from_micros(100);
    loop {
        match tx.try_send(message) {
            Ok(()) => return Handed::Taken,
            Err(TrySendError::Disconnected(_)) => return Handed::ReceiverGone,
            Err(TrySendError::Full(again)) => {
                if closed.load(Ordering::SeqCst) {
                    return Handed::Closed;
                }
                message = again;
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2).min(RECEIVER_POLL);
            }
        }
    }
}

/// The longest pause between offers to a full receiver.
const RECEIVER_POLL: Duration = Duration::from_millis(10);

/// Takes the dispatch lock (a poisoned lock still holds valid data: callbacks run outside it).
pub(crate) fn lock(dispatch: &Mutex<Dispatch>) -> std::sync::MutexGuard<'_, Dispatch> {
    dispatch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Messages the callback thread may have queued before reading from the broker pauses.
const CALLBACK_QUEUE: usize = 1024;

/// Starts the callback thread on the receiving end of its queue.
pub(crate) type Spawner = Box<dyn FnOnce(Receiver<CallbackEvent>) -> Option<JoinHandle<()>> + Send>;

/// The callback thread, started on first use.
enum CallbackThread {
    /// Not needed yet: how to start it.
    Idle(Option<Spawner>),
    Running {
        queue: SyncSender<CallbackEvent>,
        thread: Option<JoinHandle<()>>,
    },
    /// The client closed (or the thread could not be started): callbacks no longer run.
    Gone(Option<JoinHandle<()>>),
}

/// The IO side of the hand-off: events for the callback thread, held back while its bounded queue
/// is full (reading from the broker pauses meanwhile), and the receiver-only fast path.
pub(crate) struct Handoff {
    callbacks: CallbackThread,
    pub(crate) dispatch: Arc<Mutex<Dispatch>>,
    /// Messages given to the callback thread and not yet handled by it.
    pub(crate) with_callbacks: usize,
    /// Work the bounded queue did not take yet.
    held: VecDeque<CallbackEvent>,
}

impl Handoff {
    pub(crate) fn new(dispatch: Arc<Mutex<Dispatch>>) -> Self {
        Self {
            callbacks: CallbackThread::Idle(None),
            dispatch,
            with_callbacks: 0,
            held: VecDeque::new(),
        }
    }

    /// `spawn` starts the callback thread when the first work for it comes.
    pub(crate) fn start_callbacks_with(&mut self, spawn: Spawner) {
        if let CallbackThread::Idle(spawner) = &mut self.callbacks {
            *spawner = Some(spawn);
        }
    }

    /// The callback thread's queue, starting the thread if it is not running yet.
    fn queue(&mut self) -> Option<&SyncSender<CallbackEvent>> {
        if let CallbackThread::Idle(spawn) = &mut self.callbacks {
            let (queue, events) = mpsc::sync_channel(CALLBACK_QUEUE);
            self.callbacks = match spawn.take().and_then(|spawn| spawn(events)) {
                Some(thread) => CallbackThread::Running {
                    queue,
                    thread: Some(thread),
                },
                None => {
                    tracing::error!(
                        "the callback thread could not be started; callbacks will not run"
                    );
                    CallbackThread::Gone(None)
                }
            };
        }
        match &self.callbacks {
            CallbackThread::Running { queue, .. } => Some(queue),
            _ => None,
        }
    }

    /// Queues `event` for the callback thread, after what is held. Connection events with no
    /// callback set have nobody to hear them and start nothing.
    pub(crate) fn send(&mut self, event: CallbackEvent) {
        let heard = matches!(event, CallbackEvent::MessageArrived(_))
            || lock(&self.dispatch).callback.is_some();
        if !heard && matches!(self.callbacks, CallbackThread::Idle(_)) {
            return;
        }
        let held = !self.held.is_empty();
        let Some(queue) = self.queue() else {
            return;
        };
        if held {
            self.held.push_back(event);
        } else if let Err(TrySendError::Full(event)) = queue.try_send(event) {
            self.held.push_back(event);
        }
    }

    /// Hands a message to the application; returns its key when the client acknowledges it now.
    /// When only a `messages()` receiver listens, the message goes there at once and its ack
    /// leaves in the same write as the others of this read: no thread hand-off per message.
    /// Otherwise, or while earlier messages are still with the callback thread (order), the
    /// callback thread delivers.
    pub(crate) fn deliver(&mut self, message: Message) -> Option<AckKey> {
        let direct = (self.held.is_empty() && self.with_callbacks == 0)
            .then(|| {
                let dispatch = lock(&self.dispatch);
                let only_receiver = dispatch.callback.is_none() && dispatch.handlers.is_empty();
                Some((
                    dispatch.receiver.clone().filter(|_| only_receiver)?,
                    dispatch.manual_acks,
                ))
            })
            .flatten();
        let message = match direct {
            Some((receiver, manual_acks)) => {
                let key = message.ack_key().filter(|_| !manual_acks);
                match receiver.try_send(message) {
                    Ok(()) => return key,
                    Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) => {
                        message
                    }
                }
            }
            None => message,
        };
        self.with_callbacks += 1;
        self.send(CallbackEvent::MessageArrived(message));
        None
    }

    /// Moves held work to the callback thread, as far as its queue takes it.
    pub(crate) fn release(&mut self) {
        let CallbackThread::Running {
            queue: callbacks, ..
        } = &self.callbacks
        else {
            return;
        };
        while let Some(event) = self.held.pop_front() {
            match callbacks.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => return self.held.push_front(event),
                Err(TrySendError::Disconnected(_)) => self.held.clear(),
            }
        }
    }

    /// Whether nothing is held back (reading need not pause).
    pub(crate) fn is_clear(&self) -> bool {
        self.held.is_empty()
    }

    /// How long to wait before offering held work again.
    pub(crate) fn retry(&self) -> Option<Duration> {
        (!self.held.is_empty()).then_some(Duration::from_millis(5))
    }

    /// The client closes: the callback thread ends once it has run what it was given.
    pub(crate) fn close(&mut self) {
        let thread = match &mut self.callbacks {
            CallbackThread::Running { thread, .. } | CallbackThread::Gone(thread) => thread.take(),
            CallbackThread::Idle(_) => None,
        };
        self.callbacks = CallbackThread::Gone(thread);
        self.held.clear();
    }

    /// The callback thread, if one was started and nobody has taken it yet (to join it).
    pub(crate) fn take_thread(&mut self) -> Option<JoinHandle<()>> {
        match &mut self.callbacks {
            CallbackThread::Running { thread, .. } | CallbackThread::Gone(thread) => thread.take(),
            CallbackThread::Idle(_) => None,
        }
    }
}
