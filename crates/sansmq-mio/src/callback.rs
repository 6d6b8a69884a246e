//! Callbacks as Paho's `MqttCallbackExtended`, per-subscription handlers and the pull receiver, all
//! run on a thread of their own so a callback may call the client.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use sansmq::TopicFilter;
use sansmq::packet::QoS;

use crate::client::Shared;
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

    /// The connection was lost (not after `disconnect`).
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

thread_local! {
    /// On a callback thread: the client it runs callbacks for.
    static CALLBACKS_OF: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
}

/// Runs `wait`, a blocking wait for the IO thread. On a callback thread, reading from the broker
/// must not pause for the callbacks queued behind this one meanwhile: what the callback waits for
/// (a PUBACK, a SUBACK) may be behind them on the socket. Without this, a callback waiting on its
/// own publish while more than the queue's worth of messages arrived waited out its whole
/// time-to-wait, for every message.
pub(crate) fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    let shared = CALLBACKS_OF.with(|current| current.borrow().upgrade());
    let Some(shared) = shared else {
        return wait();
    };
    shared.lock().callback_blocked = true;
    let _ = shared.waker.wake();
    let result = wait();
    shared.lock().callback_blocked = false;
    result
}

/// Runs callbacks until the client closes; acknowledges each QoS 1/2 message once it was handled.
pub(crate) fn run(shared: &Arc<Shared>, events: &Receiver<CallbackEvent>) {
    CALLBACKS_OF.with(|current| *current.borrow_mut() = Arc::downgrade(shared));
    run_until_closed(shared, events);
    // Break the cycle a callback holding a client handle makes, so the client can be dropped.
    *lock(&shared.dispatch) = Dispatch::default();
}

fn run_until_closed(shared: &Arc<Shared>, events: &Receiver<CallbackEvent>) {
    let mut acks = Vec::new();
    while let Ok(first) = events.recv() {
        // Run what is queued, then acknowledge the batch in one write.
        let mut delivered = 0;
        let mut next = Some(first);
        while let Some(event) = next {
            if let Some((message, manual_acks)) = run_one(shared, event) {
                delivered += 1;
                if let (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(id), false) =
                    (message.qos, message.id, manual_acks)
                {
                    acks.push((message.session, id));
                }
            }
            next = if delivered < ACK_BATCH {
                events.try_recv().ok()
            } else {
                None
            };
        }
        if delivered > 0 {
            shared.delivered(Instant::now(), &acks, delivered);
            acks.clear();
        }
    }
}

/// Messages handled before their acknowledgements are written.
const ACK_BATCH: usize = 64;

/// Runs one event's callbacks; returns the message if it was one, and whether the application
/// acknowledges it itself.
fn run_one(shared: &Arc<Shared>, event: CallbackEvent) -> Option<(Message, bool)> {
    let dispatch = lock(&shared.dispatch);
    let callback = dispatch.callback.clone();
    match event {
        CallbackEvent::ConnectComplete { reconnect, uri } => {
            drop(dispatch);
            if let Some(cb) = callback {
                cb.connect_complete(reconnect, &uri);
            }
            None
        }
        CallbackEvent::ConnectionLost(cause) => {
            drop(dispatch);
            if let Some(cb) = callback {
                cb.connection_lost(&cause);
            }
            None
        }
        CallbackEvent::DeliveryComplete(token) => {
            drop(dispatch);
            if let Some(cb) = callback {
                cb.delivery_complete(&token);
            }
            None
        }
        CallbackEvent::MessageArrived(message) => {
            let handlers: Vec<Handler> = dispatch
                .handlers
                .iter()
                .filter(|(filter, _)| filter.matches(&message.topic))
                .map(|(_, h)| Arc::clone(h))
                .collect();
            let receiver = dispatch.receiver.clone();
            let manual_acks = dispatch.manual_acks;
            drop(dispatch);
            deliver(&message, &handlers, callback, receiver.as_ref(), shared);
            Some((message, manual_acks))
        }
    }
}

fn deliver(
    message: &Message,
    handlers: &[Handler],
    callback: Option<Arc<dyn Callback>>,
    receiver: Option<&SyncSender<Message>>,
    shared: &Arc<Shared>,
) {
    if !handlers.is_empty() {
        for handler in handlers {
            handler(message);
        }
        return;
    }
    if let Some(cb) = callback {
        cb.message_arrived(message.topic.as_str(), message);
    }
    if let Some(tx) = receiver {
        // A full receiver is backpressure: wait for the application (this thread only).
        if let Err(TrySendError::Full(m)) = tx.try_send(message.clone()) {
            if tx.send(m).is_err() {
                shared.drop_receiver();
            }
        }
    }
}

/// Takes the dispatch lock (a poisoned lock still holds valid data: callbacks run outside it).
pub(crate) fn lock(dispatch: &Mutex<Dispatch>) -> std::sync::MutexGuard<'_, Dispatch> {
    dispatch.lock().unwrap_or_else(PoisonError::into_inner)
}
