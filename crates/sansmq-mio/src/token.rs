//! [`DeliveryToken`]: Paho's `IMqttDeliveryToken`, a handle on one published message.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use sansmq::TopicName;
use sansmq::packet::{PacketId, QoS};

use crate::Error;
use crate::completion::Once;
use crate::io_loop::{IoRun, Shared};

/// Tracks one published message until the broker has it: PUBACK for QoS 1, PUBCOMP for QoS 2.
/// A QoS 0 message has no acknowledgement: its token completes once the message is written to
/// the socket (or fails when the connection ends before that, or the client closes).
#[derive(Debug, Clone)]
pub struct DeliveryToken {
    message: Arc<Delivery>,
    time_to_wait: Duration,
}

/// What every clone of a token shares.
#[derive(Debug)]
struct Delivery {
    topic: TopicName,
    qos: QoS,
    /// Set once the client accepted the message, before it can complete.
    id: OnceLock<PacketId>,
    done: Once<Result<(), Error>>,
    /// The client, to take its IO back from a receiving thread while someone waits here.
    client: Weak<Shared>,
}

impl DeliveryToken {
    pub(crate) fn pending(
        topic: TopicName,
        qos: QoS,
        time_to_wait: Duration,
        client: &Arc<Shared>,
    ) -> Self {
        let done = Once::default();
        let message = Arc::new(Delivery {
            topic,
            qos,
            id: OnceLock::new(),
            done,
            client: Arc::downgrade(client),
        });
        Self {
            message,
            time_to_wait,
        }
    }

    pub(crate) fn set_message_id(&self, id: Option<PacketId>) {
        if let Some(id) = id {
            let _ = self.message.id.set(id);
        }
    }

    pub(crate) fn complete(&self, result: Result<(), Error>) {
        self.message.done.complete(result);
    }

    /// The topic the message was published to (Paho's `getTopics()`, which has one topic).
    pub fn topic(&self) -> &TopicName {
        &self.message.topic
    }

    /// The packet identifier of a QoS 1/2 message (Paho's `getMessageId()`); `None` for QoS 0.
    pub fn message_id(&self) -> Option<PacketId> {
        self.message.id.get().copied()
    }

    /// The message's QoS.
    pub fn qos(&self) -> QoS {
        self.message.qos
    }

    /// Whether the broker has the message (a QoS 0 one: it was written), or delivery failed for
    /// good.
    pub fn is_complete(&self) -> bool {
        self.message.done.peek().is_some()
    }

    /// Waits for the broker's acknowledgement (QoS 0: the write), at most the client's
    /// time-to-wait.
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_timeout(self.time_to_wait)
    }

    /// Waits for the broker's acknowledgement (QoS 0: the write), at most `timeout`. A timeout
    /// does not cancel the delivery: the message stays in the session and the token completes
    /// later.
    ///
    /// The waiting thread reads the acknowledgement itself: it runs the client's IO while it
    /// waits (see [`Messages`](crate::Messages)), unless another waiting thread does already, or
    /// it is the callback thread.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = sansmq_driver::deadline_after(Instant::now(), timeout);
        let done = &self.message.done;
        loop {
            if let Some(result) = done.peek() {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout(timeout));
            }
            // This thread reads the acknowledgement itself rather than wait for the IO thread to.
            let ran = match self.message.client.upgrade() {
                Some(client) => client.run_io_until(Some(deadline), || self.is_complete()),
                None => IoRun::Elsewhere,
            };
            let Some(until) = ran.then_wait_until(now, Some(deadline)) else {
                continue;
            };
            let until = until.unwrap_or(deadline);
            if let Some(result) = done.wait(until.saturating_duration_since(now)) {
                return result;
            }
        }
    }
}
