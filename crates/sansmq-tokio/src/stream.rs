//! The incoming side: [`Events`] (messages and connection changes, in order) and per-subscription
//! [`Subscription`] streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use sansmq_driver::channel::FairReceiver;

use crate::{Error, Message};

/// Something that happened to the client, in the order it happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The first CONNACK after [`Client::connect`](crate::Client::connect).
    Connected {
        /// The broker kept a session for this client id.
        session_present: bool,
        /// The server URI connected to.
        uri: String,
    },
    /// An automatic reconnect succeeded. Without `session_present` the broker forgot the session;
    /// the client subscribed again per its [`ResubscribePolicy`](crate::ResubscribePolicy).
    Reconnected {
        /// The broker kept a session for this client id.
        session_present: bool,
        /// The server URI connected to.
        uri: String,
    },
    /// The connection ended without being asked to; with automatic reconnect the client is
    /// trying again.
    ConnectionLost {
        /// Why.
        cause: Error,
    },
    /// Automatic reconnect waits for credentials: the provider had none to give (e.g. ApsaraMQ
    /// tokens the broker declared invalid). No connection is opened without them; the provider is
    /// asked again after each backoff delay, so new credentials resume the client by themselves.
    /// Reported once per outage.
    WaitingForCredentials {
        /// The provider's refusal.
        cause: Error,
    },
    /// A message that no [`Subscription`] stream took.
    Message(Message),
}

/// Every [`Event`], from [`Client::new`](crate::Client::new) or
/// [`ClientBuilder::build`](crate::ClientBuilder::build). A [`Stream`].
///
/// The channel behind it is bounded. When it is full the client keeps reading from the broker as
/// long as a publish, subscribe or unsubscribe of yours awaits the broker's answer (so a task that
/// publishes and consumes never deadlocks); it holds the messages that did not fit, unacknowledged,
/// and pauses reading only once it holds as many again and nothing awaits the broker. QoS 1/2
/// messages held that way are bounded by the broker's own window (it sends no more unacknowledged
/// ones); QoS 0 messages beyond eight times the capacity are dropped (with a `tracing` warning),
/// as QoS 0 allows. Dropping `Events` makes the client acknowledge and discard messages.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: FairReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client's task has ended (every [`Client`](crate::Client)
    /// handle dropped).
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next message, skipping connection events.
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            if let Event::Message(message) = self.recv().await? {
                return Some(message);
            }
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// The messages matching one filter, from
/// [`Client::subscribe_stream`](crate::Client::subscribe_stream). A [`Stream`]; bounded like
/// [`Events`]. A message goes to the first live subscription stream whose filter matches it, and
/// to [`Events`] when none does. Dropping it sends later matches to [`Events`] (it does not
/// unsubscribe).
#[derive(Debug)]
pub struct Subscription {
    pub(crate) rx: FairReceiver<Message>,
    pub(crate) granted: sansmq::packet::QoS,
}

impl Subscription {
    /// The next message; `None` once the client's task has ended or the filter was unsubscribed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// The QoS the broker granted.
    pub fn granted_qos(&self) -> sansmq::packet::QoS {
        self.granted
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use sansmq_driver::channel;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_receiver_that_always_finds_items_still_lets_other_tasks_run() {
        let (tx, rx) = channel::channel::<u32>(1000);
        let mut rx = FairReceiver::new(rx);
        for i in 0..1000 {
            tx.try_send(i).unwrap();
        }
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&other_ran);
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let mut received_before_other = None;
        for expected in 0..1000 {
            let got = rx.recv().await;
            assert_eq!(got, Some(expected));
            if received_before_other.is_none() && other_ran.load(Ordering::SeqCst) {
                received_before_other = Some(expected);
            }
        }
        assert!(
            received_before_other.is_some(),
            "the spawned task never ran while 1,000 items were received"
        );
    }
}
