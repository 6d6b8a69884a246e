//! [`DeliveryToken`]: Paho's `IMqttDeliveryToken`, a handle on one published message.

use std::time::Duration;

use sansmq::TopicName;
use sansmq::packet::{PacketId, QoS};

use crate::Error;
use crate::completion::Completion;

/// Tracks one published message until the broker has it: PUBACK for QoS 1, PUBCOMP for QoS 2;
/// a QoS 0 token is complete once the message was written or queued.
#[derive(Debug, Clone)]
pub struct DeliveryToken {
    topic: TopicName,
    message_id: Option<PacketId>,
    qos: QoS,
    done: Completion<Result<(), Error>>,
    time_to_wait: Duration,
}

impl DeliveryToken {
    pub(crate) fn pending(
        topic: TopicName,
        message_id: Option<PacketId>,
        qos: QoS,
        time_to_wait: Duration,
    ) -> Self {
        Self {
            topic,
            message_id,
            qos,
            done: Completion::new(),
            time_to_wait,
        }
    }

    pub(crate) fn complete(&self, result: Result<(), Error>) {
        self.done.complete(result);
    }

    /// The topic the message was published to (Paho's `getTopics()`, which has one topic).
    pub fn topic(&self) -> &TopicName {
        &self.topic
    }

    /// The packet identifier of a QoS 1/2 message (Paho's `getMessageId()`); `None` for QoS 0.
    pub fn message_id(&self) -> Option<PacketId> {
        self.message_id
    }

    /// The message's QoS.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// Whether the broker has the message (or delivery failed for good).
    pub fn is_complete(&self) -> bool {
        self.done.peek().is_some()
    }

    /// Waits for the broker's acknowledgement, at most the client's time-to-wait.
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_timeout(self.time_to_wait)
    }

    /// Waits for the broker's acknowledgement, at most `timeout`. A timeout does not cancel the
    /// delivery: the message stays in the session and the token completes later.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.done
            .wait(Some(timeout))
            .unwrap_or(Err(Error::Timeout(timeout)))
    }
}
