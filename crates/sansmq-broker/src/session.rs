//! A client's session: what outlives its network connection (MQTT 3.1.1 section 3.1.2.4).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Token;
use sansmq::packet::{PacketId, Properties, QoS, SubscribeFilter, SubscriptionId};
use sansmq::{TopicFilter, TopicName};

use crate::meter::Meter;

/// What one queued message costs besides its topic and payload: the queue entry itself.
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<Inflight>();

/// An application message on its way through the broker. Its topic and payload are copies owned
/// by the broker (never slices of a connection's read buffer, which would pin that whole buffer
/// while the message waits in a queue), shared by every subscriber it goes to.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: TopicName,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// MQTT 5: its properties and expiry, shared by the copies that have the same (`None`, as
    /// always from MQTT 3.1.1, when it has none: one pointer is all a message pays for MQTT 5).
    pub(crate) v5: Option<Arc<Mqtt5Parts>>,
}

/// What an MQTT 5 message carries beside its topic and payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mqtt5Parts {
    /// The properties it was published with, owned by the broker, its Topic Alias removed
    /// (MQTT-3.3.2-7: aliases belong to one connection); for a subscriber, with its Subscription
    /// Identifiers.
    pub(crate) properties: Properties,
    /// When its Message Expiry Interval runs out (MQTT-3.3.2-5: not sent after that).
    pub(crate) expires_at: Option<Instant>,
}

impl Message {
    /// A message without MQTT 5 properties.
    pub(crate) fn new(topic: TopicName, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain,
            v5: None,
        }
    }

    /// When its Message Expiry Interval runs out, if it has one.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.v5.as_ref().and_then(|v5| v5.expires_at)
    }

    /// Whether its Message Expiry Interval has run out (the clock is read only for a message
    /// that has one).
    pub(crate) fn expired_now(&self) -> bool {
        self.expires_at().is_some_and(|at| at <= Instant::now())
    }

    /// The Message Expiry Interval to send at `now`: what is left of it, in whole seconds
    /// rounded up (MQTT-3.3.2-6).
    pub(crate) fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let left = self.expires_at()?.saturating_duration_since(now);
        let secs = left
            .as_secs()
            .saturating_add(u64::from(left.subsec_nanos() > 0));
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    /// What this message counts for against the queue limits: its topic and payload, and the
    /// bookkeeping of one queue entry. A payload shared by many sessions counts in each, so the
    /// memory really used stays below what is counted.
    pub(crate) fn cost(&self) -> usize {
        let properties = self.v5.as_ref().map_or(0, |v5| v5.properties.encoded_len());
        self.topic
            .len()
            .saturating_add(self.payload.len())
            .saturating_add(properties)
            .saturating_add(ENTRY_OVERHEAD)
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
    /// Sent on an earlier connection and not yet again on this one: the client's Receive
    /// Maximum holds it back (MQTT-3.3.4-9) until acknowledgements make room, when it is sent
    /// again with DUP 1, before any newer message.
    Unsent,
}

/// An outgoing QoS 1/2 message the client has not acknowledged yet.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) id: PacketId,
    pub(crate) message: Message,
    pub(crate) stage: Stage,
    /// When the redelivery timer of ApsaraMQ mode first saw it unacknowledged, or last sent it
    /// again (`None` until then; see `Server::redeliver`).
    pub(crate) unacked_since: Option<Instant>,
}

/// How much a session may queue, from [`BrokerConfig`](crate::BrokerConfig); 0 means no limit.
#[derive(Debug, Clone)]
pub(crate) struct QueueLimits {
    /// QoS 1/2 messages waiting to be sent (retained ones for a new subscription not counted).
    pub(crate) max_messages: usize,
    /// [`Message::cost`] of the queued and inflight messages of this session.
    pub(crate) max_bytes: usize,
    /// [`Message::cost`] of the queued and inflight messages of every session together.
    pub(crate) total: Meter,
}

/// Broker-wide counts of messages lost to the limits, shared by every session so that they
/// outlive the sessions themselves.
#[derive(Debug, Clone, Default)]
pub(crate) struct DropTotals {
    acknowledged: Arc<AtomicU64>,
    qos0: Arc<AtomicU64>,
}

impl DropTotals {
    /// QoS 1/2 messages dropped, over the broker's life.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// QoS 0 messages dropped, over the broker's life.
    pub(crate) fn qos0(&self) -> u64 {
        self.qos0.load(Ordering::Relaxed)
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The session holds `max_queued_messages`.
    Messages,
    /// The session holds `max_queued_bytes`.
    SessionBytes,
    /// All sessions together hold `max_total_queued_bytes`.
    TotalBytes,
}

impl Refusal {
    fn limit_name(self) -> &'static str {
        match self {
            Self::Messages => "max_queued_messages",
            Self::SessionBytes => "max_queued_bytes",
            Self::TotalBytes => "max_total_queued_bytes",
        }
    }
}

/// The state of one client id.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client_id: String,
    /// Discarded when its connection ends (MQTT-3.1.2-6).
    pub(crate) clean: bool,
    /// The connection currently using the session, if any.
    pub(crate) connection: Option<Token>,
    pub(crate) subscriptions: Vec<SubscribeFilter>,
    /// MQTT 5: the Subscription Identifier of each subscription that has one.
    pub(crate) subscription_ids: HashMap<TopicFilter, SubscriptionId>,
    /// Whether a subscription has an MQTT 5 option (No Local, Retain As Published) or a
    /// Subscription Identifier: routing then looks at each matching subscription.
    pub(crate) has_options: bool,
    /// MQTT 5: how long the session outlives its connection (`None`: for ever). Meaningless
    /// while `clean` (discarded at once) or while connected.
    pub(crate) expiry: Option<Duration>,
    /// When an offline MQTT 5 session with a Session Expiry Interval is discarded
    /// (MQTT-3.1.2-23 ... the Session Expiry Interval after the connection closed).
    pub(crate) expires_at: Option<Instant>,
    /// Messages not sent yet, oldest first: QoS 1/2 ones, and QoS 0 retained messages for a new
    /// subscription with the QoS 0 messages that arrived behind them.
    queue: VecDeque<Message>,
    /// Sent QoS 1/2 messages not fully acknowledged, in the order they were first sent.
    pub(crate) inflight: VecDeque<Inflight>,
    /// Entries of `inflight` at [`Stage::Unsent`].
    pub(crate) unsent: usize,
    /// Ids of incoming QoS 2 messages delivered onwards and waiting for their PUBREL: a PUBLISH
    /// resent with one of these ids is acknowledged but not delivered again (MQTT-4.3.3-2).
    pub(crate) incoming_qos2: HashSet<PacketId>,
    limits: QueueLimits,
    /// [`Message::cost`] of `queue` and `inflight`, this session's share of `limits.total`.
    held: usize,
    /// Entries of `queue` that are retained messages for a subscription (outside
    /// `max_messages`: a SUBSCRIBE gets every matching retained message).
    queued_retained: usize,
    /// QoS 0 entries of `queue`; while there are some, new QoS 0 messages queue behind them.
    queued_qos0: usize,
    /// QoS 1/2 messages this session lost to the limits.
    pub(crate) dropped: u64,
    /// QoS 0 messages this session lost to a full output buffer.
    pub(crate) dropped_qos0: u64,
    totals: DropTotals,
    /// `dropped` when the current run of drops began, while messages are being dropped.
    dropping_since: Option<u64>,
    next_id: u16,
}

impl Session {
    pub(crate) fn new(
        client_id: String,
        clean: bool,
        limits: QueueLimits,
        totals: DropTotals,
    ) -> Self {
        Self {
            client_id,
            clean,
            connection: None,
            subscriptions: Vec::new(),
            subscription_ids: HashMap::new(),
            has_options: false,
            expiry: None,
            expires_at: None,
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            unsent: 0,
            incoming_qos2: HashSet::new(),
            limits,
            held: 0,
            queued_retained: 0,
            queued_qos0: 0,
            dropped: 0,
            dropped_qos0: 0,
            totals,
            dropping_since: None,
            next_id: 0,
        }
    }

    /// Adds a subscription, replacing one with the same filter and its options (MQTT-3.8.4-3);
    /// returns whether it is new.
    pub(crate) fn subscribe(
        &mut self,
        options: SubscribeFilter,
        id: Option<SubscriptionId>,
    ) -> bool {
        match id {
            Some(id) => {
                self.subscription_ids.insert(options.filter.clone(), id);
            }
            None => {
                self.subscription_ids.remove(&options.filter);
            }
        }
        let new = match self
            .subscriptions
            .iter_mut()
            .find(|s| s.filter == options.filter)
        {
            Some(existing) => {
                *existing = options;
                false
            }
            None => {
                self.subscriptions.push(options);
                true
            }
        };
        self.update_has_options();
        new
    }

    /// Ends the subscription to `filter`; returns whether there was one.
    pub(crate) fn unsubscribe(&mut self, filter: &TopicFilter) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| &s.filter != filter);
        self.subscription_ids.remove(filter);
        self.update_has_options();
        self.subscriptions.len() != before
    }

    fn update_has_options(&mut self) {
        self.has_options = !self.subscription_ids.is_empty()
            || self
                .subscriptions
                .iter()
                .any(|s| s.no_local || s.retain_as_published);
    }

    /// Gives back what a queued QoS 1/2 message taken with [`pop_queued`](Self::pop_queued)
    /// counted for, when it is not sent after all (expired, or too large for the client).
    pub(crate) fn forget(&mut self, message: &Message) {
        if message.qos != QoS::AtMostOnce {
            self.release(message.cost());
        }
    }

    /// Queues a message to be sent as the connection's window and buffer allow. Past a limit the
    /// new message is dropped, counted and logged (the queue keeps the older ones, so what a
    /// client gets is a prefix of what was sent, with no gaps in between).
    pub(crate) fn enqueue(&mut self, message: Message) -> Result<(), Refusal> {
        let cost = message.cost();
        let refusal = if reached(self.queued_live(), self.limits.max_messages) {
            Some(Refusal::Messages)
        } else if self.limits.max_bytes != 0
            && self.held.saturating_add(cost) > self.limits.max_bytes
        {
            Some(Refusal::SessionBytes)
        } else if !self.limits.total.has_room_for(cost) {
            Some(Refusal::TotalBytes)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.count_drop(&message, refusal);
            return Err(refusal);
        }
        self.push(message);
        Ok(())
    }

    /// Queues a message that goes out at once: the queue is empty, the connection has room and
    /// the inflight window is open. It only ever waits for its acknowledgement, within
    /// `max_inflight`, so no queue limit applies (it is still counted): a client that keeps up
    /// is served even while offline sessions fill the queues.
    pub(crate) fn enqueue_to_send(&mut self, message: Message) {
        self.push(message);
    }

    /// Queues a retained message (RETAIN 1) for a new subscription (MQTT-3.3.1-6). It is not held to
    /// `max_queued_messages` (the retained store's own limits bound how many there can be), nor
    /// to `max_queued_bytes`, only to the broker-wide `max_total_queued_bytes`.
    pub(crate) fn enqueue_retained(&mut self, message: Message) -> Result<(), Refusal> {
        if !self.limits.total.has_room_for(message.cost()) {
            self.count_drop(&message, Refusal::TotalBytes);
            return Err(Refusal::TotalBytes);
        }
        self.push(message);
        Ok(())
    }

    /// Counts a QoS 0 message that could not be sent at once and was not queued.
    pub(crate) fn drop_qos0(&mut self) {
        self.dropped_qos0 = self.dropped_qos0.saturating_add(1);
        self.totals.qos0.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether QoS 0 messages are queued: a new one must then wait behind them, or a retained
    /// message would reach the client after a newer message on its topic.
    pub(crate) fn has_queued_qos0(&self) -> bool {
        self.queued_qos0 > 0
    }

    /// The oldest queued message, if any.
    pub(crate) fn peek_queued(&self) -> Option<&Message> {
        self.queue.front()
    }

    /// Takes the oldest queued message to send it. A QoS 0 message is then done with; a QoS 1/2
    /// one must be put in `inflight` (it stays accounted until acknowledged).
    pub(crate) fn pop_queued(&mut self) -> Option<Message> {
        let message = self.queue.pop_front()?;
        if message.retain {
            self.queued_retained = self.queued_retained.saturating_sub(1);
        }
        if message.qos == QoS::AtMostOnce {
            self.queued_qos0 = self.queued_qos0.saturating_sub(1);
            self.release(message.cost());
        }
        Some(message)
    }

    /// Messages waiting to be sent.
    pub(crate) fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Queued messages other than retained ones for a subscription.
    fn queued_live(&self) -> usize {
        self.queue.len().saturating_sub(self.queued_retained)
    }

    fn push(&mut self, message: Message) {
        let cost = message.cost();
        self.held = self.held.saturating_add(cost);
        self.limits.total.add(cost);
        if message.retain {
            self.queued_retained = self.queued_retained.saturating_add(1);
        }
        if message.qos == QoS::AtMostOnce {
            self.queued_qos0 = self.queued_qos0.saturating_add(1);
        }
        self.queue.push_back(message);
        if let Some(since) = self.dropping_since.take() {
            let dropped = self.dropped.saturating_sub(since);
            tracing::info!(
                client_id = %self.client_id,
                dropped,
                "outgoing messages are queued again for client {} after {dropped} were dropped",
                self.client_id
            );
        }
    }

    fn release(&mut self, cost: usize) {
        self.held = self.held.saturating_sub(cost);
        self.limits.total.sub(cost);
    }

    /// A QoS 1/2 message refused: counted here and broker-wide, logged once per run of drops
    /// (like mosquitto's "Outgoing messages are being dropped for client") and each at debug.
    fn count_drop(&mut self, message: &Message, refusal: Refusal) {
        if message.qos == QoS::AtMostOnce {
            return self.drop_qos0();
        }
        if self.dropping_since.is_none() {
            self.dropping_since = Some(self.dropped);
            tracing::warn!(
                client_id = %self.client_id,
                limit = refusal.limit_name(),
                queued = self.queue.len(),
                held_bytes = self.held,
                "outgoing messages are being dropped for client {} ({} reached)",
                self.client_id,
                refusal.limit_name()
            );
        }
        self.dropped = self.dropped.saturating_add(1);
        self.totals.acknowledged.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(client_id = %self.client_id, topic = %message.topic, qos = ?message.qos, "message dropped");
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
                if entry.stage == Stage::Unsent {
                    self.unsent = self.unsent.saturating_sub(1);
                }
                entry.stage = Stage::Released;
                true
            }
            None => false,
        }
    }

    /// MQTT 5: PUBREC for `id` with an error Reason Code: the QoS 2 message is done, refused.
    /// Returns whether it was inflight.
    pub(crate) fn handle_pubrec_refused(&mut self, id: PacketId) -> bool {
        self.remove(id, QoS::ExactlyOnce, Stage::Published)
    }

    /// PUBCOMP for `id`: the QoS 2 message is done. Returns whether it was inflight.
    pub(crate) fn handle_pubcomp(&mut self, id: PacketId) -> bool {
        self.remove(id, QoS::ExactlyOnce, Stage::Released)
    }

    /// Removes the inflight message `id` at `qos` waiting at `stage` (a message held back at
    /// [`Stage::Unsent`] waits for what [`Stage::Published`] does: the client may have had it
    /// from an earlier connection).
    fn remove(&mut self, id: PacketId, qos: QoS, stage: Stage) -> bool {
        let index = self.inflight.iter().position(|m| {
            let waiting =
                m.stage == stage || (stage == Stage::Published && m.stage == Stage::Unsent);
            m.id == id && m.message.qos == qos && waiting
        });
        match index.and_then(|index| self.inflight.remove(index)) {
            Some(done) => {
                if done.stage == Stage::Unsent {
                    self.unsent = self.unsent.saturating_sub(1);
                }
                self.release(done.message.cost());
                true
            }
            None => false,
        }
    }

    /// Forgets the inflight message `id` whatever it waits for, as if acknowledged (one too big
    /// for the client's Maximum Packet Size).
    pub(crate) fn drop_inflight(&mut self, id: PacketId) {
        if let Some(index) = self.inflight.iter().position(|m| m.id == id) {
            if let Some(done) = self.inflight.remove(index) {
                if done.stage == Stage::Unsent {
                    self.unsent = self.unsent.saturating_sub(1);
                }
                self.release(done.message.cost());
            }
        }
    }

    /// [`Message::cost`] of the queued and inflight messages.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.limits.total.sub(self.held);
    }
}

/// Whether `count` has reached `limit` (0: no limit).
fn reached(count: usize, limit: usize) -> bool {
    limit != 0 && count >= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(qos: QoS) -> Message {
        Message::new(
            TopicName::try_from("a/b").unwrap(),
            Bytes::from_static(b"x"),
            qos,
            false,
        )
    }

    fn limited(max_messages: usize, max_bytes: usize, total: &Meter) -> Session {
        let limits = QueueLimits {
            max_messages,
            max_bytes,
            total: total.clone(),
        };
        Session::new("c".to_owned(), false, limits, DropTotals::default())
    }

    fn session(clean: bool) -> Session {
        let mut session = limited(0, 0, &Meter::new(0));
        session.clean = clean;
        session
    }

    #[test]
    fn subscribing_again_to_a_filter_replaces_its_qos() {
        let mut session = session(true);
        let sub = |f: &str, qos| SubscribeFilter::new(TopicFilter::try_from(f).unwrap(), qos);
        assert!(session.subscribe(sub("a/+", QoS::AtMostOnce), None));
        assert!(session.subscribe(sub("a/#", QoS::ExactlyOnce), None));
        assert!(!session.subscribe(sub("a/#", QoS::AtLeastOnce), None));
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
        let total = Meter::new(0);
        let mut session = limited(2, 0, &total);
        assert_eq!(session.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!(session.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!(
            session.enqueue(message(QoS::AtLeastOnce)),
            Err(Refusal::Messages)
        );
        assert_eq!((session.queued_len(), session.dropped), (2, 1));
        assert_eq!(session.totals.acknowledged(), 1);
        let cost = message(QoS::AtLeastOnce).cost();
        assert_eq!(cost, 4 + ENTRY_OVERHEAD);
        assert_eq!((session.held_bytes(), total.used()), (2 * cost, 2 * cost));
        drop(session);
        assert_eq!(
            total.used(),
            0,
            "a session gives its bytes back when it goes"
        );
    }

    #[test]
    fn byte_limits_per_session_and_over_all_sessions() {
        let cost = message(QoS::AtLeastOnce).cost();
        let total = Meter::new(3 * cost);
        let mut first = limited(0, 2 * cost, &total);
        let mut second = limited(0, 0, &total);
        assert_eq!(first.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!(first.enqueue(message(QoS::ExactlyOnce)), Ok(()));
        assert_eq!(
            first.enqueue(message(QoS::AtLeastOnce)),
            Err(Refusal::SessionBytes)
        );
        assert_eq!(second.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!(
            second.enqueue(message(QoS::AtLeastOnce)),
            Err(Refusal::TotalBytes)
        );
        // Acknowledging makes room: the bytes stay counted while the message is inflight.
        let sent = first.pop_queued().unwrap();
        let id = first.allocate_id().unwrap();
        first.inflight.push_back(Inflight {
            id,
            message: sent,
            stage: Stage::Published,
            unacked_since: None,
        });
        assert_eq!(total.used(), 3 * cost);
        assert!(first.handle_puback(id));
        assert_eq!(total.used(), 2 * cost);
        assert_eq!(second.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!((first.dropped, second.dropped), (1, 1));
    }

    #[test]
    fn a_message_sent_at_once_passes_the_queue_limits() {
        let total = Meter::new(1);
        let mut session = limited(0, 0, &total);
        session.enqueue_to_send(message(QoS::AtLeastOnce));
        assert_eq!(session.queued_len(), 1);
        assert_eq!(
            session.enqueue(message(QoS::AtLeastOnce)),
            Err(Refusal::TotalBytes)
        );
    }

    #[test]
    fn retained_messages_for_a_subscription_pass_the_message_limit() {
        let total = Meter::new(0);
        let mut session = limited(1, 0, &total);
        for _ in 0..3 {
            let retained = message(QoS::AtMostOnce).with(QoS::AtMostOnce, true);
            assert_eq!(session.enqueue_retained(retained), Ok(()));
        }
        assert!(session.has_queued_qos0());
        // Live messages still get their own `max_messages`.
        assert_eq!(session.enqueue(message(QoS::AtLeastOnce)), Ok(()));
        assert_eq!(
            session.enqueue(message(QoS::AtLeastOnce)),
            Err(Refusal::Messages)
        );
        for _ in 0..3 {
            assert_eq!(session.pop_queued().unwrap().qos, QoS::AtMostOnce);
        }
        assert!(!session.has_queued_qos0());
        assert_eq!(session.held_bytes(), message(QoS::AtLeastOnce).cost());
        assert_eq!(total.used(), session.held_bytes());
    }

    #[test]
    fn packet_ids_in_use_are_skipped_and_wrap() {
        let mut session = session(true);
        let first = session.allocate_id().unwrap();
        session.inflight.push_back(Inflight {
            id: PacketId::new(2).unwrap(),
            message: message(QoS::AtLeastOnce),
            stage: Stage::Published,
            unacked_since: None,
        });
        assert_eq!(first.get(), 1);
        assert_eq!(session.allocate_id().unwrap().get(), 3);
        session.next_id = u16::MAX;
        assert_eq!(session.allocate_id().unwrap().get(), 1);
    }

    #[test]
    fn qos2_acks_go_through_both_stages() {
        let mut session = session(true);
        let id = PacketId::new(5).unwrap();
        session.inflight.push_back(Inflight {
            id,
            message: message(QoS::ExactlyOnce),
            stage: Stage::Published,
            unacked_since: None,
        });
        assert!(!session.handle_puback(id));
        assert!(!session.handle_pubcomp(id));
        assert!(session.handle_pubrec(id));
        assert!(session.handle_pubcomp(id));
        assert!(session.inflight.is_empty());
    }
}
