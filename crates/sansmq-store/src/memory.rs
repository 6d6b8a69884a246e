//! [`MemoryStore`]: a session kept in memory only.

use sansmq::client::{SessionRecord, SessionSnapshot};

use crate::session::Session;
use crate::{SessionStore, StoreError};

/// A store that keeps the session in memory: it survives a client being dropped and made again
/// in the same process, not the process. What a client does without a store.
///
/// A record costs the same however large the session is: the queue and the window are deques,
/// and an acknowledgement is looked for from the window's oldest message, where it almost
/// always is. [`load`](SessionStore::load) and [`session`](Self::session) copy the session.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    session: Session,
}

impl MemoryStore {
    /// An empty session.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session as the records so far left it: a copy, built from every message it holds.
    pub fn session(&self) -> SessionSnapshot {
        self.session.snapshot()
    }
}

impl SessionStore for MemoryStore {
    fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
        Ok(self.session.snapshot())
    }

    fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        self.session.apply(record).map_err(StoreError::Rejected)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sansmq::client::ReplayError;
    use sansmq::packet::PacketId;

    use super::*;

    #[test]
    fn records_replay_and_contradictions_are_rejected() {
        let mut store = MemoryStore::new();
        let id = PacketId::new(3).unwrap();
        store.append(&SessionRecord::IncomingHeld(id)).unwrap();
        store.sync().unwrap();
        assert_eq!(store.load().unwrap().awaiting_release, [id]);
        assert!(matches!(
            store.append(&SessionRecord::Completed(id)),
            Err(StoreError::Rejected(ReplayError::UnknownId(i))) if i == id
        ));
        assert_eq!(store.session().awaiting_release, [id]);
    }
}
