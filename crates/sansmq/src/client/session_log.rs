//! [`SessionRecord`]: one change of the persistent session state, as plain data, and its replay
//! onto a [`SessionSnapshot`] ([`SessionSnapshot::apply`]).

use std::fmt;

use super::snapshot::{InflightMessage, SessionSnapshot};
use crate::packet::{PacketId, Publish, QoS, SubscribeFilter};
use crate::topic::TopicFilter;

/// One change of the persistent session state: what a session store appends, and replays with
/// [`SessionSnapshot::apply`] when the process starts again; the result is what
/// [`Client::with_session`](super::Client::with_session) resumes.
///
/// The log describes the [`SessionSnapshot`] a client would report at the same moment:
///
/// - A message enters the session with [`Accepted`](SessionRecord::Accepted), at the back of the
///   queue, whether it goes out at once or waits (QoS 0 messages too: an offline queue survives
///   the process). [`Sent`](SessionRecord::Sent) says the oldest queued message went out: a
///   QoS 0 one is gone, a QoS 1/2 one moves into the window. The queue is strictly first in,
///   first out, so `Sent` needs no identifier, which a QoS 0 message does not have.
/// - [`Released`](SessionRecord::Released) (PUBREC received, PUBREL sent) and
///   [`Completed`](SessionRecord::Completed) (PUBACK or PUBCOMP received, or the message given
///   up under [`UnackedPolicy::Discard`](super::UnackedPolicy::Discard)) follow a message in
///   the window by its identifier.
///
/// # What replay refuses and what it tolerates
///
/// A crash only ever loses a suffix of the log, and every prefix of a log a client wrote is a
/// session that existed, so a record that contradicts the state before it means a store or
/// driver bug, or a file that is not what it claims. For outgoing messages, replay then stops
/// with a [`ReplayError`] instead of guessing: a wrong guess could send a QoS 2 message twice.
///
/// What the broker may legitimately repeat is tolerated, so a driver can record every packet it
/// acts on: a PUBREC for a message already released (`Released` again), an incoming QoS 2
/// identifier held again (a re-sent PUBLISH) or released when not held (a repeated PUBREL), and
/// an UNSUBACK for a filter that was never granted.
///
/// # When a record is appended
///
/// A [`Client`](super::Client) reports the records of each step through
/// [`poll_session_record`](super::Client::poll_session_record), per
/// [`Config::session_recording`](super::Config::session_recording). They are appended and made
/// durable ([`needs_sync`](SessionRecord::needs_sync)) before the driver acts on that step
/// (returns `Ok` from a publish, writes the PUBREL or PUBREC that follows), so a crash at any
/// point loses nothing the application was told succeeded and delivers nothing twice at QoS 2.
/// (A lost `Sent` alone would harm nothing: the message would go out again from the queue,
/// without DUP, under the same identifier, which is how a broker recognises a copy.)
///
/// In manual-ack mode an incoming QoS 2 identifier is recorded when the application acknowledges
/// its message, not when it arrives: a process that ends before the acknowledgement gets the
/// broker's re-sent copy after it restarts. Between the application's handling and the record
/// (one store write) a crash can still repeat the message; an application that must never see a
/// repeat makes its handling idempotent or keeps its own result and the acknowledgement in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRecord {
    /// The application published a message; it joins the back of the queue. QoS 1/2 messages carry
    /// their packet identifier, QoS 0 ones none.
    Accepted(Publish),
    /// The oldest queued message went out: a QoS 1/2 one joins the window, awaiting PUBACK or
    /// PUBREC (a QoS 0 one leaves the session, as with [`SentAtMostOnce`](Self::SentAtMostOnce)).
    Sent,
    /// The oldest queued message, a QoS 0 one, went out and left the session. Unlike
    /// [`Sent`](Self::Sent) it must be durable before the message is written: a QoS 0 message has
    /// no identifier a broker could recognise a copy by, so a client that forgot it went out
    /// would send it twice.
    SentAtMostOnce,
    /// QoS 2: PUBREC arrived for the message with this identifier and PUBREL went out; only
    /// PUBCOMP is missing.
    Released(PacketId),
    /// The message with this identifier is done (PUBACK or PUBCOMP arrived) or given up
    /// ([`Event::Dropped`](super::Event::Dropped)): it leaves the session.
    Completed(PacketId),
    /// An incoming QoS 2 message with this identifier was delivered; until its PUBREL a re-sent
    /// copy must not be delivered again.
    IncomingHeld(PacketId),
    /// PUBREL arrived for this incoming QoS 2 identifier: it is free for a new message.
    IncomingReleased(PacketId),
    /// The broker granted a subscription (at the QoS it granted, which replaces any earlier one
    /// for the same filter).
    Subscribed(SubscribeFilter),
    /// The broker removed a subscription (UNSUBACK), or refused a SUBSCRIBE for the filter.
    Unsubscribed(TopicFilter),
    /// The broker did not have the session (CONNACK with `session_present = 0`).
    ///
    /// It forgot the incoming QoS 2 identifiers it was to release, so they are forgotten here too.
    /// Our own messages stay: a client re-sends them to the new session (under
    /// [`UnackedPolicy::Discard`](super::UnackedPolicy::Discard) it gives them up, and the driver
    /// records a [`Completed`](Self::Completed) for each). The granted subscriptions stay too:
    /// they are what a client subscribes to again
    /// ([`RestoreSubscriptions`](super::RestoreSubscriptions)).
    SessionLost,
    /// The whole session at this point: replaces everything before it (a compacted log starts
    /// with one).
    Snapshot(SessionSnapshot),
}

impl SessionRecord {
    /// Whether the record must be durable before the driver acts on the step that made it; the
    /// others may wait in the store for the next record that is (the store keeps their order).
    ///
    /// - `Accepted`: `publish` returns `Ok` only then, or the message is lost with the process.
    /// - `SentAtMostOnce`: the QoS 0 message may be written only then, or it goes out twice.
    /// - `Released`: its PUBREL may be written only then. A client that forgot the release would
    ///   send the PUBLISH again, and a broker that has completed the message takes it as new: a
    ///   QoS 2 message twice.
    /// - `IncomingHeld`, `IncomingReleased` and `SessionLost`: the PUBREC, PUBCOMP or the next
    ///   PUBREC may be written only then. A client that forgot a held identifier delivers the
    ///   re-sent copy again; one that forgot a release or the lost session drops the broker's next
    ///   message under that identifier as a copy.
    ///
    /// `Sent`, `Completed`, `Subscribed` and `Unsubscribed` may be lost harmlessly: a message
    /// goes out again (as a copy the broker recognises, or a PUBREL it answers), a subscription is
    /// asked for again.
    #[must_use]
    pub fn needs_sync(&self) -> bool {
        match self {
            Self::Accepted(_)
            | Self::Released(_)
            | Self::IncomingHeld(_)
            | Self::IncomingReleased(_)
            | Self::SentAtMostOnce
            | Self::SessionLost
            | Self::Snapshot(_) => true,
            Self::Sent | Self::Completed(_) | Self::Subscribed(_) | Self::Unsubscribed(_) => false,
        }
    }
}

/// A record that contradicts the session state before it: the log is not one a client wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// A QoS 1/2 message without a packet identifier, or a QoS 0 message with one.
    IdentifierMismatch {
        /// The message's QoS.
        qos: QoS,
    },
    /// A message takes an identifier another message of the session already has.
    DuplicateId(PacketId),
    /// `Sent` with no message queued.
    NothingQueued,
    /// `Released` or `Completed` for an identifier no message in the window has.
    UnknownId(PacketId),
    /// `Released` for a message that is not QoS 2 (only QoS 2 has a release stage).
    NotExactlyOnce(PacketId),
    /// A snapshot holds a QoS 0 message in the window, or a released message that is not QoS 2.
    InvalidSnapshot(&'static str),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdentifierMismatch { qos } => write!(
                f,
                "a QoS {} message {} a packet identifier",
                *qos as u8,
                if *qos == QoS::AtMostOnce {
                    "has"
                } else {
                    "lacks"
                }
            ),
            Self::DuplicateId(id) => write!(
                f,
                "packet identifier {id} is used by two messages of the session"
            ),
            Self::NothingQueued => f.write_str("a message was sent from an empty queue"),
            Self::UnknownId(id) => write!(
                f,
                "no message in flight has packet identifier {id} to acknowledge"
            ),
            Self::NotExactlyOnce(id) => write!(
                f,
                "message {id} was released, but only QoS 2 messages have a release stage"
            ),
            Self::InvalidSnapshot(why) => write!(f, "invalid session snapshot: {why}"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl SessionSnapshot {
    /// Applies one record of a session log. Replaying a whole log onto
    /// [`SessionSnapshot::default()`] gives the session to pass to
    /// [`Client::with_session`](super::Client::with_session).
    ///
    /// The order of each part follows [`Client::snapshot`](super::Client::snapshot): messages in
    /// the order they were accepted, incoming identifiers increasing, subscriptions by filter.
    /// A message keeps the DUP flag it was accepted with; a resumed client sets it on every
    /// re-send anyway.
    ///
    /// On an error the snapshot is unchanged; see [`SessionRecord`] for what is refused.
    ///
    /// Each record costs a scan of the window and, for [`SessionRecord::Sent`], a shift of the
    /// queue: replay is linear in the session's size per record.
    pub fn apply(&mut self, record: &SessionRecord) -> Result<(), ReplayError> {
        match record {
            SessionRecord::Accepted(publish) => {
                check_identifier(publish)?;
                if let Some(id) = publish.packet_id.filter(|&id| self.has_id(id)) {
                    return Err(ReplayError::DuplicateId(id));
                }
                self.queued.push(publish.clone());
            }
            SessionRecord::Sent | SessionRecord::SentAtMostOnce => {
                if self.queued.is_empty() {
                    return Err(ReplayError::NothingQueued);
                }
                let publish = self.queued.remove(0);
                if publish.qos != QoS::AtMostOnce {
                    self.inflight.push(InflightMessage {
                        publish,
                        released: false,
                    });
                }
            }
            SessionRecord::Released(id) => {
                let message = self
                    .inflight
                    .iter_mut()
                    .find(|m| m.publish.packet_id == Some(*id))
                    .ok_or(ReplayError::UnknownId(*id))?;
                if message.publish.qos != QoS::ExactlyOnce {
                    return Err(ReplayError::NotExactlyOnce(*id));
                }
                message.released = true;
            }
            SessionRecord::Completed(id) => {
                let at = self
                    .inflight
                    .iter()
                    .position(|m| m.publish.packet_id == Some(*id))
                    .ok_or(ReplayError::UnknownId(*id))?;
                self.inflight.remove(at);
            }
            SessionRecord::IncomingHeld(id) => {
                if let Err(at) = self.awaiting_release.binary_search(id) {
                    self.awaiting_release.insert(at, *id);
                }
            }
            SessionRecord::IncomingReleased(id) => {
                if let Ok(at) = self.awaiting_release.binary_search(id) {
                    self.awaiting_release.remove(at);
                }
            }
            SessionRecord::Subscribed(subscription) => {
                match self
                    .subscriptions
                    .binary_search_by(|s| s.filter.cmp(&subscription.filter))
                {
                    Ok(at) => {
                        if let Some(s) = self.subscriptions.get_mut(at) {
                            *s = subscription.clone();
                        }
                    }
                    Err(at) => self.subscriptions.insert(at, subscription.clone()),
                }
            }
            SessionRecord::Unsubscribed(filter) => {
                if let Ok(at) = self
                    .subscriptions
                    .binary_search_by(|s| s.filter.cmp(filter))
                {
                    self.subscriptions.remove(at);
                }
            }
            SessionRecord::SessionLost => self.awaiting_release.clear(),
            SessionRecord::Snapshot(snapshot) => *self = normalized(snapshot)?,
        }
        Ok(())
    }

    /// Sets DUP on every queued QoS 1/2 message; for a session replayed from a log, before
    /// [`Client::with_session`](super::Client::with_session).
    ///
    /// A [`Sent`](SessionRecord::Sent) record need not be durable
    /// ([`SessionRecord::needs_sync`]), so a queued message of a replayed session may have gone
    /// out already; sending it again without DUP would break MQTT-3.3.1-1. DUP on a first send
    /// only tells the broker to check for a copy, which it finds none of.
    pub fn mark_queued_as_possible_copies(&mut self) {
        for publish in &mut self.queued {
            if publish.qos != QoS::AtMostOnce {
                publish.dup = true;
            }
        }
    }

    /// Whether a message of the session (in the window or queued) has `id`.
    fn has_id(&self, id: PacketId) -> bool {
        let inflight = self.inflight.iter().map(|m| &m.publish);
        inflight
            .chain(&self.queued)
            .any(|p| p.packet_id == Some(id))
    }
}

/// QoS 1/2 messages have an identifier and QoS 0 ones none (MQTT-2.3.1-5).
fn check_identifier(publish: &Publish) -> Result<(), ReplayError> {
    if publish.packet_id.is_some() == (publish.qos == QoS::AtMostOnce) {
        return Err(ReplayError::IdentifierMismatch { qos: publish.qos });
    }
    Ok(())
}

/// `snapshot` checked as [`Client::with_session`](super::Client::with_session) would, with its
/// incoming identifiers and subscriptions in replay order (sorted, each once; for a filter given
/// twice, the last QoS).
fn normalized(snapshot: &SessionSnapshot) -> Result<SessionSnapshot, ReplayError> {
    let mut ids = std::collections::BTreeSet::new();
    for message in &snapshot.inflight {
        let publish = &message.publish;
        if publish.qos == QoS::AtMostOnce {
            return Err(ReplayError::InvalidSnapshot(
                "a QoS 0 message is in the window",
            ));
        }
        if message.released && publish.qos != QoS::ExactlyOnce {
            return Err(ReplayError::InvalidSnapshot(
                "a message that is not QoS 2 was released",
            ));
        }
    }
    let inflight = snapshot.inflight.iter().map(|m| &m.publish);
    for publish in inflight.chain(&snapshot.queued) {
        check_identifier(publish)?;
        if let Some(id) = publish.packet_id.filter(|&id| !ids.insert(id)) {
            return Err(ReplayError::DuplicateId(id));
        }
    }
    let mut awaiting_release = snapshot.awaiting_release.clone();
    awaiting_release.sort_unstable();
    awaiting_release.dedup();
    let mut subscriptions: std::collections::BTreeMap<&TopicFilter, QoS> = Default::default();
    for s in &snapshot.subscriptions {
        subscriptions.insert(&s.filter, s.qos);
    }
    Ok(SessionSnapshot {
        inflight: snapshot.inflight.clone(),
        queued: snapshot.queued.clone(),
        awaiting_release,
        subscriptions: subscriptions
            .into_iter()
            .map(|(filter, qos)| SubscribeFilter::new(filter.clone(), qos))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::topic::TopicName;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    fn message(qos: QoS, packet_id: Option<u16>, payload: &'static [u8]) -> Publish {
        let mut publish = Publish::new(
            TopicName::try_from("a/b").unwrap(),
            Bytes::from_static(payload),
        );
        publish.qos = qos;
        publish.packet_id = packet_id.map(id);
        publish
    }

    fn replay(records: &[SessionRecord]) -> Result<SessionSnapshot, ReplayError> {
        let mut snapshot = SessionSnapshot::default();
        for record in records {
            snapshot.apply(record)?;
        }
        Ok(snapshot)
    }

    fn filter(s: &str, qos: QoS) -> SubscribeFilter {
        SubscribeFilter::new(TopicFilter::try_from(s).unwrap(), qos)
    }

    #[test]
    fn a_qos2_message_goes_from_the_queue_through_the_window_and_leaves() {
        let publish = message(QoS::ExactlyOnce, Some(7), b"x");
        let mut snapshot = replay(&[SessionRecord::Accepted(publish.clone())]).unwrap();
        assert_eq!(snapshot.queued, std::slice::from_ref(&publish));
        snapshot.apply(&SessionRecord::Sent).unwrap();
        assert!(snapshot.queued.is_empty());
        let sent = InflightMessage {
            publish,
            released: false,
        };
        assert_eq!(snapshot.inflight, std::slice::from_ref(&sent));
        snapshot.apply(&SessionRecord::Released(id(7))).unwrap();
        snapshot.apply(&SessionRecord::Released(id(7))).unwrap(); // a repeated PUBREC
        assert_eq!(
            snapshot.inflight,
            [InflightMessage {
                released: true,
                ..sent
            }]
        );
        snapshot.apply(&SessionRecord::Completed(id(7))).unwrap();
        assert_eq!(snapshot, SessionSnapshot::default());
    }

    #[test]
    fn a_sent_qos0_message_leaves_the_session() {
        let publish = message(QoS::AtMostOnce, None, b"x");
        let records = [
            SessionRecord::Accepted(publish.clone()),
            SessionRecord::Sent,
        ];
        assert_eq!(replay(&records).unwrap(), SessionSnapshot::default());
    }

    #[test]
    fn session_lost_forgets_incoming_ids_and_keeps_messages_and_subscriptions() {
        let records = [
            SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), b"m")),
            SessionRecord::Sent,
            SessionRecord::Accepted(message(QoS::AtMostOnce, None, b"q")),
            SessionRecord::IncomingHeld(id(9)),
            SessionRecord::Subscribed(filter("a/#", QoS::ExactlyOnce)),
        ];
        let before = replay(&records).unwrap();
        assert_eq!(before.awaiting_release, [id(9)]);
        let mut after = before.clone();
        after.apply(&SessionRecord::SessionLost).unwrap();
        assert_eq!(
            after,
            SessionSnapshot {
                awaiting_release: Vec::new(),
                ..before
            }
        );
    }

    #[test]
    fn what_a_broker_may_repeat_is_tolerated() {
        let records = [
            SessionRecord::IncomingHeld(id(3)),
            SessionRecord::IncomingHeld(id(1)),
            SessionRecord::IncomingHeld(id(3)),
            SessionRecord::IncomingReleased(id(2)),
            SessionRecord::Unsubscribed(TopicFilter::try_from("never/granted").unwrap()),
            SessionRecord::Subscribed(filter("b", QoS::AtLeastOnce)),
            SessionRecord::Subscribed(filter("a", QoS::AtLeastOnce)),
            SessionRecord::Subscribed(filter("b", QoS::AtMostOnce)),
        ];
        let snapshot = replay(&records).unwrap();
        assert_eq!(snapshot.awaiting_release, [id(1), id(3)]);
        assert_eq!(
            snapshot.subscriptions,
            [filter("a", QoS::AtLeastOnce), filter("b", QoS::AtMostOnce)]
        );
    }

    #[test]
    fn contradictions_are_refused_and_leave_the_snapshot_unchanged() {
        let qos1 = SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), b"m"));
        let mut snapshot = replay(std::slice::from_ref(&qos1)).unwrap();
        let before = snapshot.clone();
        let cases = [
            (qos1.clone(), ReplayError::DuplicateId(id(1))),
            // Queued, not sent: nothing can acknowledge it yet.
            (
                SessionRecord::Completed(id(1)),
                ReplayError::UnknownId(id(1)),
            ),
            (
                SessionRecord::Released(id(2)),
                ReplayError::UnknownId(id(2)),
            ),
            (
                SessionRecord::Accepted(message(QoS::AtLeastOnce, None, b"m")),
                ReplayError::IdentifierMismatch {
                    qos: QoS::AtLeastOnce,
                },
            ),
            (
                SessionRecord::Accepted(message(QoS::AtMostOnce, Some(4), b"m")),
                ReplayError::IdentifierMismatch {
                    qos: QoS::AtMostOnce,
                },
            ),
        ];
        for (record, error) in cases {
            assert_eq!(snapshot.apply(&record), Err(error), "{record:?}");
            assert_eq!(snapshot, before);
        }
        snapshot.apply(&SessionRecord::Sent).unwrap();
        assert_eq!(
            snapshot.apply(&SessionRecord::Released(id(1))),
            Err(ReplayError::NotExactlyOnce(id(1)))
        );
        assert_eq!(
            SessionSnapshot::default().apply(&SessionRecord::Sent),
            Err(ReplayError::NothingQueued)
        );
        // A message in the window and one queued with the same identifier.
        let mut twice = snapshot.clone();
        twice.queued.push(message(QoS::ExactlyOnce, Some(1), b"n"));
        assert_eq!(
            SessionSnapshot::default().apply(&SessionRecord::Snapshot(twice)),
            Err(ReplayError::DuplicateId(id(1)))
        );
        let mut released_qos1 = snapshot.clone();
        if let Some(m) = released_qos1.inflight.first_mut() {
            m.released = true;
        }
        assert!(matches!(
            SessionSnapshot::default().apply(&SessionRecord::Snapshot(released_qos1)),
            Err(ReplayError::InvalidSnapshot(_))
        ));
    }

    #[test]
    fn a_replayed_log_restores_a_client() {
        let records = [
            SessionRecord::Accepted(message(QoS::ExactlyOnce, Some(5), b"a")),
            SessionRecord::Sent,
            SessionRecord::Released(id(5)),
            SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(6), b"b")),
            SessionRecord::Accepted(message(QoS::AtMostOnce, None, b"c")),
            SessionRecord::IncomingHeld(id(2)),
            SessionRecord::Subscribed(filter("x/+", QoS::AtLeastOnce)),
        ];
        let snapshot = replay(&records).unwrap();
        let client = crate::Client::with_session(
            crate::Config::new(crate::MqttString::try_from("c").unwrap()),
            snapshot.clone(),
        );
        assert_eq!(client.unwrap().snapshot(), snapshot);
    }

    /// A message of the reference model, in acceptance order.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Stage {
        Queued,
        InFlight,
        Released,
    }

    /// The session as the simplest structures that can hold it.
    #[derive(Debug, Default, Clone)]
    struct Model {
        messages: Vec<(Publish, Stage)>,
        incoming: BTreeSet<PacketId>,
        subscriptions: BTreeMap<TopicFilter, QoS>,
    }

    impl Model {
        fn snapshot(&self) -> SessionSnapshot {
            SessionSnapshot {
                inflight: self
                    .messages
                    .iter()
                    .filter(|(_, stage)| *stage != Stage::Queued)
                    .map(|(publish, stage)| InflightMessage {
                        publish: publish.clone(),
                        released: *stage == Stage::Released,
                    })
                    .collect(),
                queued: self
                    .messages
                    .iter()
                    .filter(|(_, stage)| *stage == Stage::Queued)
                    .map(|(publish, _)| publish.clone())
                    .collect(),
                awaiting_release: self.incoming.iter().copied().collect(),
                subscriptions: self
                    .subscriptions
                    .iter()
                    .map(|(filter, qos)| SubscribeFilter::new(filter.clone(), *qos))
                    .collect(),
            }
        }
    }

    /// What a random step tries to do; steps that do not fit the model's state are skipped.
    #[derive(Debug, Clone)]
    enum Step {
        Accept(u8, u16),
        Send,
        Release(usize),
        Complete(usize),
        Hold(u16),
        ReleaseIncoming(u16),
        Subscribe(usize, u8),
        Unsubscribe(usize),
        Lost,
        Snapshot,
    }

    const FILTERS: [&str; 4] = ["a", "a/+", "#", "b/c"];

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0u8..3, 1u16..12).prop_map(|(q, i)| Step::Accept(q, i)),
            3 => Just(Step::Send),
            2 => any::<usize>().prop_map(Step::Release),
            2 => any::<usize>().prop_map(Step::Complete),
            1 => (1u16..6).prop_map(Step::Hold),
            1 => (1u16..6).prop_map(Step::ReleaseIncoming),
            1 => (0..FILTERS.len(), 0u8..3).prop_map(|(f, q)| Step::Subscribe(f, q)),
            1 => (0..FILTERS.len()).prop_map(Step::Unsubscribe),
            1 => Just(Step::Lost),
            1 => Just(Step::Snapshot),
        ]
    }

    /// The valid records `steps` make, applied to the model as they are made.
    fn records(steps: &[Step], model: &mut Model) -> Vec<SessionRecord> {
        let mut out = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            let record = match *step {
                Step::Accept(q, i) => {
                    let qos = QoS::from_u8(q).unwrap();
                    let packet_id = (qos != QoS::AtMostOnce).then(|| id(i));
                    if packet_id.is_some()
                        && model.messages.iter().any(|(p, _)| p.packet_id == packet_id)
                    {
                        continue;
                    }
                    let mut publish = Publish::new(
                        TopicName::try_from(format!("t/{n}")).unwrap(),
                        Bytes::from(vec![q; n % 5]),
                    );
                    publish.qos = qos;
                    publish.packet_id = packet_id;
                    model.messages.push((publish.clone(), Stage::Queued));
                    SessionRecord::Accepted(publish)
                }
                Step::Send => {
                    let Some(at) = model.messages.iter().position(|(_, s)| *s == Stage::Queued)
                    else {
                        continue;
                    };
                    if model.messages[at].0.qos == QoS::AtMostOnce {
                        model.messages.remove(at);
                        SessionRecord::SentAtMostOnce
                    } else {
                        model.messages[at].1 = Stage::InFlight;
                        SessionRecord::Sent
                    }
                }
                Step::Release(pick) => {
                    let qos2: Vec<usize> = (0..model.messages.len())
                        .filter(|&i| {
                            model.messages[i].1 != Stage::Queued
                                && model.messages[i].0.qos == QoS::ExactlyOnce
                        })
                        .collect();
                    let Some(&at) = qos2.get(pick % qos2.len().max(1)) else {
                        continue;
                    };
                    model.messages[at].1 = Stage::Released;
                    SessionRecord::Released(model.messages[at].0.packet_id.unwrap())
                }
                Step::Complete(pick) => {
                    let sent: Vec<usize> = (0..model.messages.len())
                        .filter(|&i| model.messages[i].1 != Stage::Queued)
                        .collect();
                    let Some(&at) = sent.get(pick % sent.len().max(1)) else {
                        continue;
                    };
                    let (publish, _) = model.messages.remove(at);
                    SessionRecord::Completed(publish.packet_id.unwrap())
                }
                Step::Hold(i) => {
                    model.incoming.insert(id(i));
                    SessionRecord::IncomingHeld(id(i))
                }
                Step::ReleaseIncoming(i) => {
                    model.incoming.remove(&id(i));
                    SessionRecord::IncomingReleased(id(i))
                }
                Step::Subscribe(f, q) => {
                    let s = filter(FILTERS[f], QoS::from_u8(q).unwrap());
                    model.subscriptions.insert(s.filter.clone(), s.qos);
                    SessionRecord::Subscribed(s)
                }
                Step::Unsubscribe(f) => {
                    let filter = TopicFilter::try_from(FILTERS[f]).unwrap();
                    model.subscriptions.remove(&filter);
                    SessionRecord::Unsubscribed(filter)
                }
                Step::Lost => {
                    model.incoming.clear();
                    SessionRecord::SessionLost
                }
                Step::Snapshot => SessionRecord::Snapshot(model.snapshot()),
            };
            out.push(record);
        }
        out
    }

    #[test]
    fn queued_qos1_and_qos2_messages_are_marked_as_possible_copies() {
        let mut session = replay(&[
            SessionRecord::Accepted(message(QoS::AtMostOnce, None, b"0")),
            SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), b"1")),
            SessionRecord::Accepted(message(QoS::ExactlyOnce, Some(2), b"2")),
        ])
        .unwrap();
        session.mark_queued_as_possible_copies();
        let dup: Vec<bool> = session.queued.iter().map(|p| p.dup).collect();
        assert_eq!(
            dup,
            [false, true, true],
            "QoS 0 never carries DUP (MQTT-3.3.1-2)"
        );
    }

    proptest! {
        #[test]
        fn replay_matches_the_reference_model(steps in prop::collection::vec(step(), 0..120)) {
            let mut model = Model::default();
            let records = records(&steps, &mut model);
            prop_assert_eq!(replay(&records), Ok(model.snapshot()));
        }

        #[test]
        fn a_snapshot_replaces_the_records_before_it(
            steps in prop::collection::vec(step(), 0..120),
            split in any::<prop::sample::Index>(),
        ) {
            let records = records(&steps, &mut Model::default());
            let at = split.index(records.len() + 1);
            let (before, after) = records.split_at(at);
            let mut compacted = vec![SessionRecord::Snapshot(replay(before).unwrap())];
            compacted.extend_from_slice(after);
            prop_assert_eq!(replay(&compacted), replay(&records));
        }
    }
}
