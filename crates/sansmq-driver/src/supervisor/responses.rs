//! [`Responses`]: MQTT 5 requests waiting for their response, matched by Correlation Data.
//!
//! A request is a PUBLISH that names a Response Topic and carries Correlation Data (MQTT 5.0
//! section 4.10); the responder publishes its answer to that topic with the same Correlation
//! Data. The supervisor subscribes to the client's response topic once, numbers each request, and
//! answers a request's waiter with the message whose Correlation Data is its number. A message on
//! the response topic that answers no waiting request (a late answer, or one for another client
//! sharing the topic) goes to the application as any message does.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::PacketId;

use super::Requests;

/// One request waiting for its answer.
struct Pending<W> {
    /// The request's own identifier while it is unacknowledged (QoS 1/2): a broker that refuses
    /// or loses it fails the request.
    packet_id: Option<PacketId>,
    /// When the request gives up: the options' time-to-wait after it was made.
    deadline: Instant,
    waiter: W,
}

/// The requests of one supervisor.
pub(super) struct Responses<R: Requests> {
    /// The response topic, once subscribed to.
    topic: Option<TopicName>,
    /// The Correlation Data of the next request.
    next: u64,
    pending: HashMap<u64, Pending<R::Request>>,
}

impl<R: Requests> Default for Responses<R> {
    fn default() -> Self {
        Self {
            topic: None,
            next: 0,
            pending: HashMap::new(),
        }
    }
}

impl<R: Requests> Responses<R> {
    /// The response topic subscribed to, if any.
    pub(super) fn topic(&self) -> Option<&TopicName> {
        self.topic.as_ref()
    }

    /// From now on, responses come on `topic`.
    pub(super) fn subscribed(&mut self, topic: TopicName) {
        self.topic = Some(topic);
    }

    /// The Correlation Data for a new request: eight bytes, unique in this supervisor.
    pub(super) fn next_correlation(&mut self) -> (u64, Bytes) {
        let number = self.next;
        self.next = self.next.wrapping_add(1);
        (number, Bytes::copy_from_slice(&number.to_be_bytes()))
    }

    /// Waits for the answer to request `number`.
    pub(super) fn insert(
        &mut self,
        number: u64,
        packet_id: Option<PacketId>,
        deadline: Instant,
        waiter: R::Request,
    ) {
        self.pending.insert(
            number,
            Pending {
                packet_id,
                deadline,
                waiter,
            },
        );
    }

    /// The waiter of the request that `correlation` (a message's Correlation Data) answers.
    pub(super) fn answered(&mut self, correlation: &[u8]) -> Option<R::Request> {
        let number = u64::from_be_bytes(correlation.try_into().ok()?);
        self.pending.remove(&number).map(|pending| pending.waiter)
    }

    /// The waiter of the request sent as QoS 1/2 message `packet_id`, which will not reach the
    /// responder (refused by the broker, expired, given up).
    pub(super) fn lost(&mut self, packet_id: PacketId) -> Option<R::Request> {
        let number = self
            .pending
            .iter()
            .find_map(|(number, p)| (p.packet_id == Some(packet_id)).then_some(*number))?;
        self.pending.remove(&number).map(|pending| pending.waiter)
    }

    /// Request `packet_id` reached the broker: only the answer is awaited now.
    pub(super) fn delivered(&mut self, packet_id: PacketId) {
        if let Some(pending) = self
            .pending
            .values_mut()
            .find(|p| p.packet_id == Some(packet_id))
        {
            pending.packet_id = None;
        }
    }

    /// The earliest deadline of a waiting request.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Takes the waiters whose deadline is not after `now`.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<R::Request> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(number, _)| *number)
            .collect();
        due.into_iter()
            .filter_map(|number| self.pending.remove(&number))
            .map(|pending| pending.waiter)
            .collect()
    }

    /// Takes every waiter (the client is shut down).
    pub(super) fn drain(&mut self) -> Vec<R::Request> {
        self.pending.drain().map(|(_, p)| p.waiter).collect()
    }
}
