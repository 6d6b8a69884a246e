//! The driver's session store, as a model: the [`SessionRecord`]s the client reported, in order,
//! and how many of them are durable.
//!
//! The driver appends every record after each input and syncs when one of them
//! [needs it](SessionRecord::needs_sync), before it acts on that input (reports `publish`'s `Ok`,
//! writes the transmit buffer). The records after the last sync wait in the store's buffer: a
//! crash loses a suffix of them, all or some (the operating system may have written a part
//! already), never a durable one.

use sansmq::client::{SessionRecord, SessionRecording, SessionSnapshot};
use sansmq::packet::Publish;

use crate::invariants::{Check, ensure};

#[derive(Default)]
pub(crate) struct Store {
    log: Vec<SessionRecord>,
    /// The records before this index survive a crash.
    durable: usize,
}

impl Store {
    /// Appends `record` to the buffer.
    pub(crate) fn append(&mut self, record: SessionRecord) {
        self.log.push(record);
    }

    /// Makes every record appended so far durable.
    pub(crate) fn sync(&mut self) {
        self.durable = self.log.len();
    }

    /// Records appended since the last sync: what a crash may lose.
    pub(crate) fn buffered(&self) -> usize {
        self.log.len() - self.durable
    }

    /// The process crashed with the first `flushed` buffered records written and the others lost.
    /// Returns the session the store replays (what a restarted process resumes) and how many
    /// records made it; the store then holds that session alone, as after a compaction.
    pub(crate) fn crash(&mut self, flushed: usize) -> Result<(SessionSnapshot, usize), String> {
        self.log
            .truncate(self.durable + flushed.min(self.buffered()));
        let mut session = replay(&self.log)?;
        let replayed = self.log.len();
        // A `Sent` may have been among the records lost: a queued message may have gone out.
        session.mark_queued_as_possible_copies();
        self.compact(session.clone());
        Ok((session, replayed))
    }

    /// Replaces the log by `session`, durable (a compaction, or a clean shutdown's last write).
    pub(crate) fn compact(&mut self, session: SessionSnapshot) {
        self.log = vec![SessionRecord::Snapshot(session)];
        self.durable = 1;
    }

    /// The whole log (durable or not) replays to the session the client holds: the records said
    /// every change. Under [`SessionRecording::ExceptQueue`] the messages still in the queue may
    /// be missing from the log, from its back. DUP flags are not compared: a client sets DUP when
    /// it sends a message again, and a message keeps in the log the flag it was accepted with.
    pub(crate) fn check_replays_to(
        &self,
        client: &SessionSnapshot,
        recording: SessionRecording,
    ) -> Check {
        let replayed = replay(&self.log)?;
        let inflight = |s: &SessionSnapshot| -> Vec<(Publish, bool)> {
            s.inflight
                .iter()
                .map(|m| (self.comparable(&m.publish), m.released))
                .collect()
        };
        ensure!(
            inflight(&replayed) == inflight(client),
            "the store's log replays to a window of {:?}, the client holds {:?}",
            replayed.inflight,
            client.inflight
        );
        let queued =
            |q: &[Publish]| -> Vec<Publish> { q.iter().map(|p| self.comparable(p)).collect() };
        let recorded = replayed.queued.len();
        ensure!(
            client.queued.len() >= recorded
                && queued(&replayed.queued) == queued(&client.queued[..recorded])
                && (recording == SessionRecording::ExceptQueue || client.queued.len() == recorded),
            "the store's log replays to a queue of {:?}, the client holds {:?} ({recording:?})",
            replayed.queued,
            client.queued
        );
        ensure!(
            replayed.awaiting_release == client.awaiting_release,
            "the store's log replays to incoming QoS 2 identifiers {:?}, the client holds {:?}",
            replayed.awaiting_release,
            client.awaiting_release
        );
        ensure!(
            replayed.subscriptions == client.subscriptions,
            "the store's log replays to subscriptions {:?}, the client holds {:?}",
            replayed.subscriptions,
            client.subscriptions
        );
        Ok(())
    }
}

/// A log's records applied in order to an empty session.
fn replay(log: &[SessionRecord]) -> Result<SessionSnapshot, String> {
    let mut session = SessionSnapshot::default();
    for (i, record) in log.iter().enumerate() {
        session
            .apply(record)
            .map_err(|e| format!("the store's record {i} ({record:?}) does not replay: {e}"))?;
    }
    Ok(session)
}

impl Store {
    /// A message as the store and the client must agree on it: DUP aside.
    fn comparable(&self, publish: &Publish) -> Publish {
        let mut publish = publish.clone();
        publish.dup = false;
        publish
    }
}
