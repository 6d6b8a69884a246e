//! [`Session`]: the session a store keeps, which applies each [`SessionRecord`] in constant
//! (amortised) time.
//!
//! [`SessionSnapshot::apply`] is linear in the session's size per record (it shifts the queue
//! and scans the window for duplicate identifiers), which is right for a replay at startup and
//! wrong for a store that a QoS 1 publisher appends three records per message to. This holds
//! the same session in structures that fit the records: the queue and the window as deques, the
//! identifiers in use as bitmaps, the incoming identifiers and subscriptions as sorted trees. It
//! accepts and refuses exactly what [`SessionSnapshot::apply`] does, and its
//! [`snapshot`](Session::snapshot) is what `apply` would have built.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use sansmq::TopicFilter;
use sansmq::client::{InflightMessage, ReplayError, SessionRecord, SessionSnapshot};
use sansmq::packet::{PacketId, Publish, QoS, SubscribeFilter};

/// A session with O(1) amortised records.
///
/// `Sent` pops the front of the queue. `Released` and `Completed` find their message by scanning
/// the window from the front, which is where the acknowledged message is: a broker acknowledges
/// QoS 1 messages in the order they were sent (MQTT-4.6.0-2), so only QoS 2 messages still
/// waiting for their PUBCOMP, or a message given up out of order, come before it. An identifier
/// not in the window is refused from the bitmap without a scan.
#[derive(Clone, Default)]
pub(crate) struct Session {
    /// QoS 1/2 messages sent and not completed, in the order they were sent.
    inflight: VecDeque<InflightMessage>,
    /// Messages accepted and not sent, in order.
    queued: VecDeque<Publish>,
    /// The identifiers of the messages in `inflight`.
    inflight_ids: IdSet,
    /// The identifiers of the messages in `queued`.
    queued_ids: IdSet,
    /// Incoming QoS 2 identifiers whose PUBREL has not arrived.
    awaiting_release: BTreeSet<PacketId>,
    /// The granted subscriptions: their QoS and MQTT 5 options.
    subscriptions: BTreeMap<TopicFilter, SubscribeFilter>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The identifier sets only index the messages.
        f.debug_struct("Session")
            .field("inflight", &self.inflight)
            .field("queued", &self.queued)
            .field("awaiting_release", &self.awaiting_release)
            .field("subscriptions", &self.subscriptions)
            .finish()
    }
}

impl Session {
    /// Applies one record as [`SessionSnapshot::apply`] would: same result, same error, and on
    /// an error the session is unchanged.
    pub(crate) fn apply(&mut self, record: &SessionRecord) -> Result<(), ReplayError> {
        match record {
            SessionRecord::Accepted(publish) => {
                // MQTT-2.3.1-5: QoS 1/2 messages have an identifier and QoS 0 ones none.
                if publish.packet_id.is_some() == (publish.qos == QoS::AtMostOnce) {
                    return Err(ReplayError::IdentifierMismatch { qos: publish.qos });
                }
                if let Some(id) = publish.packet_id {
                    if self.has_id(id) {
                        return Err(ReplayError::DuplicateId(id));
                    }
                    self.queued_ids.insert(id);
                }
                self.queued.push_back(publish.clone());
            }
            SessionRecord::Sent | SessionRecord::SentAtMostOnce => {
                let publish = self.queued.pop_front().ok_or(ReplayError::NothingQueued)?;
                // A QoS 0 message leaves the session; a QoS 1/2 one takes its identifier along.
                if publish.qos != QoS::AtMostOnce {
                    if let Some(id) = publish.packet_id {
                        self.queued_ids.remove(id);
                        self.inflight_ids.insert(id);
                    }
                    self.inflight.push_back(InflightMessage {
                        publish,
                        released: false,
                    });
                }
            }
            SessionRecord::Released(id) => {
                let at = self.position(*id)?;
                let message = self
                    .inflight
                    .get_mut(at)
                    .ok_or(ReplayError::UnknownId(*id))?;
                if message.publish.qos != QoS::ExactlyOnce {
                    return Err(ReplayError::NotExactlyOnce(*id));
                }
                message.released = true;
            }
            SessionRecord::Completed(id) => {
                let at = self.position(*id)?;
                self.inflight.remove(at);
                self.inflight_ids.remove(*id);
            }
            SessionRecord::IncomingHeld(id) => {
                self.awaiting_release.insert(*id);
            }
            SessionRecord::IncomingReleased(id) => {
                self.awaiting_release.remove(id);
            }
            SessionRecord::Subscribed(subscription) => {
                self.subscriptions
                    .insert(subscription.filter.clone(), subscription.clone());
            }
            SessionRecord::Unsubscribed(filter) => {
                self.subscriptions.remove(filter);
            }
            SessionRecord::SessionLost => self.awaiting_release.clear(),
            SessionRecord::Snapshot(_) => {
                // Rare (a compacted log's first record): the core checks and normalises it, so
                // what a snapshot may hold is decided in one place.
                let mut snapshot = SessionSnapshot::default();
                snapshot.apply(record)?;
                *self = Self::from(snapshot);
            }
        }
        Ok(())
    }

    /// The session as [`SessionSnapshot::apply`] would have left it. Copies every message.
    pub(crate) fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            inflight: self.inflight.iter().cloned().collect(),
            queued: self.queued.iter().cloned().collect(),
            awaiting_release: self.awaiting_release.iter().copied().collect(),
            subscriptions: self.subscriptions.values().cloned().collect(),
        }
    }

    /// How many items the session holds: messages, incoming identifiers and subscriptions.
    pub(crate) fn items(&self) -> usize {
        self.inflight.len()
            + self.queued.len()
            + self.awaiting_release.len()
            + self.subscriptions.len()
    }

    /// Whether a message of the session (in the window or queued) has `id`.
    fn has_id(&self, id: PacketId) -> bool {
        self.inflight_ids.contains(id) || self.queued_ids.contains(id)
    }

    /// Where in the window the message with `id` is.
    fn position(&self, id: PacketId) -> Result<usize, ReplayError> {
        if !self.inflight_ids.contains(id) {
            return Err(ReplayError::UnknownId(id));
        }
        self.inflight
            .iter()
            .position(|m| m.publish.packet_id == Some(id))
            .ok_or(ReplayError::UnknownId(id))
    }
}

impl From<SessionSnapshot> for Session {
    /// The session of a snapshot that [`SessionSnapshot::apply`] built, so is valid: QoS 1/2
    /// messages only in the window, each identifier once.
    fn from(snapshot: SessionSnapshot) -> Self {
        let mut session = Self::default();
        for message in snapshot.inflight {
            if let Some(id) = message.publish.packet_id {
                session.inflight_ids.insert(id);
            }
            session.inflight.push_back(message);
        }
        for publish in snapshot.queued {
            if let Some(id) = publish.packet_id {
                session.queued_ids.insert(id);
            }
            session.queued.push_back(publish);
        }
        session.awaiting_release = snapshot.awaiting_release.into_iter().collect();
        session.subscriptions = snapshot
            .subscriptions
            .into_iter()
            .map(|s| (s.filter.clone(), s))
            .collect();
        session
    }
}

/// Words in a bitmap of every `u16`.
const ID_WORDS: usize = (u16::MAX as usize + 1) / 64;

/// A set of packet identifiers: a bitmap of the whole range (8 KiB), allocated at the first
/// insert.
#[derive(Clone, Default)]
struct IdSet {
    words: Vec<u64>,
}

/// The word of the bitmap that holds `id`, and its bit there.
fn slot(id: PacketId) -> (usize, u64) {
    let id = usize::from(id.get());
    (id / 64, 1 << (id % 64))
}

impl IdSet {
    fn contains(&self, id: PacketId) -> bool {
        let (word, bit) = slot(id);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    fn insert(&mut self, id: PacketId) {
        if self.words.is_empty() {
            self.words.resize(ID_WORDS, 0);
        }
        let (word, bit) = slot(id);
        if let Some(w) = self.words.get_mut(word) {
            *w |= bit;
        }
    }

    fn remove(&mut self, id: PacketId) {
        let (word, bit) = slot(id);
        if let Some(w) = self.words.get_mut(word) {
            *w &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use sansmq::TopicName;

    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    /// A message with `packet_id`, or with the wrong presence of one if `mismatched`.
    fn message(qos: u8, packet_id: u16, mismatched: bool, payload: u8) -> Publish {
        let qos = QoS::from_u8(qos).unwrap();
        let mut publish = Publish::new(
            TopicName::try_from("a/b").unwrap(),
            Bytes::from(vec![payload; usize::from(payload % 4)]),
        );
        publish.qos = qos;
        publish.packet_id = ((qos != QoS::AtMostOnce) != mismatched).then(|| id(packet_id));
        publish
    }

    const FILTERS: [&str; 4] = ["a", "a/+", "#", "b/c"];

    fn subscription() -> impl Strategy<Value = SubscribeFilter> {
        (prop::sample::select(&FILTERS[..]), 0u8..3).prop_map(|(f, q)| {
            SubscribeFilter::new(TopicFilter::try_from(f).unwrap(), QoS::from_u8(q).unwrap())
        })
    }

    /// Identifiers from a small range, so that duplicates and unknown identifiers are common;
    /// one message in ten gets its identifier wrong for its QoS.
    fn publish() -> impl Strategy<Value = Publish> {
        (0u8..3, 1u16..8, prop::bool::weighted(0.1), any::<u8>())
            .prop_map(|(q, i, mismatched, p)| message(q, i, mismatched, p))
    }

    /// Snapshots with unsorted and repeated incoming identifiers and filters, and messages that
    /// are sometimes invalid (QoS 0 in the window, released QoS 1, identifiers used twice).
    fn snapshot() -> impl Strategy<Value = SessionSnapshot> {
        let inflight = (publish(), prop::bool::weighted(0.3))
            .prop_map(|(publish, released)| InflightMessage { publish, released });
        (
            prop::collection::vec(inflight, 0..4),
            prop::collection::vec(publish(), 0..4),
            prop::collection::vec((1u16..6).prop_map(id), 0..4),
            prop::collection::vec(subscription(), 0..4),
        )
            .prop_map(|(inflight, queued, awaiting_release, subscriptions)| {
                SessionSnapshot {
                    inflight,
                    queued,
                    awaiting_release,
                    subscriptions,
                }
            })
    }

    /// A step of the test: a record, or a snapshot of the session so far (always valid).
    #[derive(Debug, Clone)]
    enum Step {
        Record(SessionRecord),
        Resnapshot,
    }

    fn step() -> impl Strategy<Value = Step> {
        let pid = || (1u16..8).prop_map(id);
        prop_oneof![
            6 => publish().prop_map(|p| Step::Record(SessionRecord::Accepted(p))),
            4 => Just(Step::Record(SessionRecord::Sent)),
            1 => Just(Step::Record(SessionRecord::SentAtMostOnce)),
            2 => pid().prop_map(|i| Step::Record(SessionRecord::Released(i))),
            4 => pid().prop_map(|i| Step::Record(SessionRecord::Completed(i))),
            1 => pid().prop_map(|i| Step::Record(SessionRecord::IncomingHeld(i))),
            1 => pid().prop_map(|i| Step::Record(SessionRecord::IncomingReleased(i))),
            1 => subscription().prop_map(|s| Step::Record(SessionRecord::Subscribed(s))),
            1 => prop::sample::select(&FILTERS[..]).prop_map(|f| {
                Step::Record(SessionRecord::Unsubscribed(TopicFilter::try_from(f).unwrap()))
            }),
            1 => Just(Step::Record(SessionRecord::SessionLost)),
            1 => snapshot().prop_map(|s| Step::Record(SessionRecord::Snapshot(s))),
            1 => Just(Step::Resnapshot),
        ]
    }

    fn items(snapshot: &SessionSnapshot) -> usize {
        snapshot.inflight.len()
            + snapshot.queued.len()
            + snapshot.awaiting_release.len()
            + snapshot.subscriptions.len()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn every_record_does_what_the_core_replay_does(
            steps in prop::collection::vec(step(), 0..150),
        ) {
            let mut reference = SessionSnapshot::default();
            let mut session = Session::default();
            for step in steps {
                let record = match step {
                    Step::Record(record) => record,
                    Step::Resnapshot => SessionRecord::Snapshot(reference.clone()),
                };
                let expected = reference.apply(&record);
                prop_assert_eq!(session.apply(&record), expected, "{:?}", record);
                prop_assert_eq!(session.snapshot(), reference.clone(), "after {:?}", record);
                prop_assert_eq!(session.items(), items(&reference));
            }
        }
    }

    #[test]
    fn acknowledgements_out_of_order_find_their_message() {
        let mut session = Session::default();
        for i in 1..=4 {
            let record = SessionRecord::Accepted(message(2, i, false, 0));
            session.apply(&record).unwrap();
            session.apply(&SessionRecord::Sent).unwrap();
        }
        session.apply(&SessionRecord::Released(id(3))).unwrap();
        session.apply(&SessionRecord::Completed(id(3))).unwrap();
        session.apply(&SessionRecord::Completed(id(1))).unwrap();
        let left: Vec<_> = session
            .snapshot()
            .inflight
            .iter()
            .map(|m| m.publish.packet_id)
            .collect();
        assert_eq!(left, [Some(id(2)), Some(id(4))]);
        // A completed identifier is free again, and unknown to the window.
        assert_eq!(
            session.apply(&SessionRecord::Completed(id(3))),
            Err(ReplayError::UnknownId(id(3)))
        );
        session
            .apply(&SessionRecord::Accepted(message(1, 3, false, 0)))
            .unwrap();
        // Queued is not in the window: nothing can acknowledge it yet.
        assert_eq!(
            session.apply(&SessionRecord::Released(id(3))),
            Err(ReplayError::UnknownId(id(3)))
        );
    }
}
