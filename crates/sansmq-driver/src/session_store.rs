//! [`SessionStoreOptions`]: where a client keeps its session so that it outlives the process, as
//! Paho's file persistence does; and [`Persistence`], the supervisor's side of it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sansmq::client::{SessionRecording, SessionSnapshot};
use sansmq_store::{FileStore, SessionStore, StoreError, SyncPolicy};

/// Opens the store of a client identifier.
type Open = dyn Fn(&str) -> Result<Box<dyn SessionStore + Send>, StoreError> + Send + Sync;

/// Where a client keeps its session ([`ConnectOptions::session_dir`](crate::ConnectOptions::session_dir),
/// [`ConnectOptions::session_store`](crate::ConnectOptions::session_store)).
///
/// Each client opens its own store from these options when it is made: a [`FileStore`] locks
/// the session, so a second client with the same identifier and directory fails to start with
/// [`StoreError::Locked`] instead of sharing it.
#[derive(Clone)]
pub struct SessionStoreOptions {
    open: Arc<Open>,
    /// What the options said, for `Debug`.
    describe: String,
    /// Whether the offline queue is kept in the store too.
    pub(crate) queue: bool,
}

impl fmt::Debug for SessionStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStoreOptions")
            .field("store", &self.describe)
            .field("queue", &self.queue)
            .finish()
    }
}

impl SessionStoreOptions {
    /// A [`FileStore`] per client identifier under `dir`, with `policy`.
    pub(crate) fn dir(dir: PathBuf, policy: SyncPolicy) -> Self {
        let describe = format!("{} ({policy:?})", dir.display());
        Self {
            open: Arc::new(move |client_id| {
                let store = FileStore::open(&dir, client_id, policy)?;
                Ok(Box::new(store) as Box<dyn SessionStore + Send>)
            }),
            describe,
            queue: true,
        }
    }

    /// The store `open` returns for the client identifier.
    pub(crate) fn custom<F>(open: F) -> Self
    where
        F: Fn(&str) -> Result<Box<dyn SessionStore + Send>, StoreError> + Send + Sync + 'static,
    {
        Self {
            open: Arc::new(open),
            describe: "<custom store>".to_owned(),
            queue: true,
        }
    }

    /// The records the core reports for these options.
    pub(crate) fn recording(&self) -> SessionRecording {
        if self.queue {
            SessionRecording::All
        } else {
            SessionRecording::ExceptQueue
        }
    }

    /// Opens the client's store and loads its session, ready for
    /// [`Client::with_session`](sansmq::Client::with_session).
    pub(crate) fn open(
        &self,
        client_id: &str,
    ) -> Result<(Persistence, SessionSnapshot), StoreError> {
        let mut store = (self.open)(client_id)?;
        let mut session = store.load()?;
        // A `Sent` need not be durable: a queued message may have gone out already.
        session.mark_queued_as_possible_copies();
        Ok((Persistence { store }, session))
    }
}

/// A client's open session store: the supervisor hands it the core's records after every input
/// and syncs when one of them must be durable before the driver acts
/// ([`SessionRecord::needs_sync`](sansmq::client::SessionRecord::needs_sync)).
pub(crate) struct Persistence {
    store: Box<dyn SessionStore + Send>,
}

impl Persistence {
    /// Appends what `core` recorded since the last call, and syncs if any of it must be durable.
    pub(crate) fn record(&mut self, core: &mut sansmq::Client) -> Result<(), StoreError> {
        let mut sync = false;
        while let Some(record) = core.poll_session_record() {
            sync |= record.needs_sync();
            self.store.append(&record)?;
        }
        if sync {
            self.store.sync()?;
        }
        Ok(())
    }

    /// When the store wants [`sync`](Self::sync) called even if nothing new must be durable.
    pub(crate) fn sync_deadline(&self) -> Option<Instant> {
        self.store.sync_deadline()
    }

    /// Writes out what the store holds (records that could wait, a batched `fsync` due).
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        self.store.sync()
    }
}
