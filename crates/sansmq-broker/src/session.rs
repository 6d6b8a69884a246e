//! A client's session: what outlives its network connection (MQTT 3.1.1 section 3.1.2.4).

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use mio::Token;
use sansmq::packet::{PacketId, QoS, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};

/// An application message on its way through the broker. Its topic and payload are copies owned
/// by the broker (never slices of a connection's read buffer, which would pin that whole buffer
/// while the message waits in a queue), shared by every subscriber it goes to.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: TopicName,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
}

impl Message {
    /// Bytes this message holds (topic and payload), for the stats.
    pub(crate) fn size(&self) -> usize {
        self.topic.len().saturating_add(self.payload.len())
    }

    /// The same message at QoS `qos` with the RETAIN flag `retain`.
    pub(crate) fn with(&self, qos: QoS, retain: bool) -> Self {
        Self {
            qos,
            retain,
            ..self.clone()
        }
    }
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP (QoS 2).
    Released,
}

/// An outgoing QoS 1/2 message the client has not acknowledged yet.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) id: PacketId,
    pub(crate) message: Message,
    pub(crate) stage: Stage,
}

/// The state of one client id.
#[derive(Debug)]
pub(crate) struct Session {
    /// Discarded when its connection ends (MQTT-3.1.2-6).
    pub(crate) clean: bool,
    /// The connection currently using the session, if any.
    pub(crate) connection: Option<Token>,
    pub(crate) subscriptions: Vec<SubscribeFilter>,
    /// QoS 1/2 messages not sent yet, oldest first.
    pub(crate) queue: VecDeque<Message>,
    /// Sent QoS 1/2 messages not fully acknowledged, in the order they were first sent.
    pub(crate) inflight: VecDeque<Inflight>,
    /// Ids of incoming QoS 2 messages delivered onwards and waiting for their PUBREL: a PUBLISH
    /// resent with one of these ids is acknowledged but not delivered again (MQTT-4.3.3-2).
    pub(crate) incoming_qos2: HashSet<PacketId>,
    /// Messages this session lost to its limits.
    pub(crate) dropped: u64,
    next_id: u16,
}

impl Session {
    pub(crate) fn new(clean: bool) -> Self {
        Self {
            clean,
            connection: None,
            subscriptions: Vec::new(),
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            incoming_qos2: HashSet::new(),
            dropped: 0,
            next_id: 0,
        }
    }

    /// Adds a subscription, replacing one with the same filter (MQTT-3.8.4-3).
    pub(crate) fn subscribe(&mut self, filter: TopicFilter, qos: QoS) {
        match self.subscriptions.iter_mut().find(|s| s.filter == filter) {
            Some(existing) => existing.qos = qos,
            None => self.subscriptions.push(SubscribeFilter { filter, qos }),
        }
    }

    pub(crate) fn unsubscribe(&mut self, filter: &TopicFilter) {
        self.subscriptions.retain(|s| &s.filter != filter);
    }

    /// Queues a QoS 1/2 message; past `limit` the new message is dropped (the queue keeps the
    /// older ones, so what a client gets is a prefix of what was sent, with no gaps in between).
    pub(crate) fn enqueue(&mut self, message: Message, limit: usize) -> bool {
        if self.queue.len() >= limit {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.queue.push_back(message);
        true
    }

    /// A packet id no inflight message uses (MQTT-2.3.1-2), or `None` if all 65 535 are taken.
    pub(crate) fn allocate_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let id = PacketId::new(self.next_id)?;
            if !self.inflight.iter().any(|m| m.id == id) {
                return Some(id);
            }
        }
        None
    }

    /// PUBACK for `id`: the QoS 1 message is done. Returns whether it was inflight.
    pub(crate) fn handle_puback(&mut self, id: PacketId) -> bool {
        self.remove(id, QoS::AtLeastOnce, Stage::Published)
    }

    /// PUBREC for `id`: the QoS 2 message moves on to PUBREL. Returns whether it was inflight.
    pub(crate) fn handle_pubrec(&mut self, id: PacketId) -> bool {
        match self
            .inflight
            .iter_mut()
            .find(|m| m.id == id && m.message.qos == QoS::ExactlyOnce)
        {
            Some(entry) => {
                entry.stage = Stage::Released;
                true
            }
            None => false,
        }
    }

    /// PUBCOMP for `id`: the QoS 2 message is done. Returns whether it was inflight.
    pub(crate) fn handle_pubcomp(&mut self, id: PacketId) -> bool {
        self.remove(id, QoS::ExactlyOnce, Stage::Released)
    }

    fn remove(&mut self, id: PacketId, qos: QoS, stage: Stage) -> bool {
        match self
            .inflight
            .iter()
            .position(|m| m.id == id && m.message.qos == qos && m.stage == stage)
        {
            Some(index) => self.inflight.remove(index).is_some(),
            None => false,
        }
    }

    /// Bytes held by queued and inflight messages.
    pub(crate) fn held_bytes(&self) -> usize {
        let queued = self.queue.iter().map(Message::size);
        let inflight = self.inflight.iter().map(|m| m.message.size());
        queued.chain(inflight).fold(0, usize::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(qos: QoS) -> Message {
        Message {
            topic: TopicName::try_from("a/b").unwrap(),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: false,
        }
    }

    #[test]
    fn subscribing_again_to_a_filter_replaces_its_qos() {
        let mut session = Session::new(true);
        session.subscribe(TopicFilter::try_from("a/+").unwrap(), QoS::AtMostOnce);
        session.subscribe(TopicFilter::try_from("a/#").unwrap(), QoS::ExactlyOnce);
        session.subscribe(TopicFilter::try_from("a/#").unwrap(), QoS::AtLeastOnce);
        let granted: Vec<(&str, QoS)> = session
            .subscriptions
            .iter()
            .map(|s| (s.filter.as_str(), s.qos))
            .collect();
        assert_eq!(
            granted,
            [("a/+", QoS::AtMostOnce), ("a/#", QoS::AtLeastOnce)]
        );
        session.unsubscribe(&TopicFilter::try_from("a/#").unwrap());
        session.unsubscribe(&TopicFilter::try_from("a/+").unwrap());
        assert!(session.subscriptions.is_empty());
    }

    #[test]
    fn the_queue_refuses_the_newest_past_its_limit() {
        let mut session = Session::new(false);
        assert!(session.enqueue(message(QoS::AtLeastOnce), 2));
        assert!(session.enqueue(message(QoS::AtLeastOnce), 2));
        assert!(!session.enqueue(message(QoS::AtLeastOnce), 2));
        assert_eq!((session.queue.len(), session.dropped), (2, 1));
        assert_eq!(session.held_bytes(), 8);
    }

    #[test]
    fn packet_ids_in_use_are_skipped_and_wrap() {
        let mut session = Session::new(true);
        let first = session.allocate_id().unwrap();
        session.inflight.push_back(Inflight {
            id: PacketId::new(2).unwrap(),
            message: message(QoS::AtLeastOnce),
            stage: Stage::Published,
        });
        assert_eq!(first.get(), 1);
        assert_eq!(session.allocate_id().unwrap().get(), 3);
        session.next_id = u16::MAX;
        assert_eq!(session.allocate_id().unwrap().get(), 1);
    }

    #[test]
    fn qos2_acks_go_through_both_stages() {
        let mut session = Session::new(true);
        let id = PacketId::new(5).unwrap();
        session.inflight.push_back(Inflight {
            id,
            message: message(QoS::ExactlyOnce),
            stage: Stage::Published,
        });
        assert!(!session.handle_puback(id));
        assert!(!session.handle_pubcomp(id));
        assert!(session.handle_pubrec(id));
        assert!(session.handle_pubcomp(id));
        assert!(session.inflight.is_empty());
    }
}
