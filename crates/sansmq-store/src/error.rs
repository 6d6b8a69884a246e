//! [`StoreError`]: why a store could not open, load, append or sync.

use std::io;
use std::path::PathBuf;

use sansmq::client::ReplayError;

/// A session store failed. The session in the store is as it was before the failing call, except
/// after an [`Io`](Self::Io) error in [`sync`](crate::SessionStore::sync), when the records since
/// the last successful sync may or may not be on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another store (in this process or another) has the client's session open.
    #[error("the session of client {client_id:?} is in use by another store (lock file {path})")]
    Locked {
        /// The client identifier.
        client_id: String,
        /// The lock file.
        path: PathBuf,
    },
    /// A client identifier a store cannot name a directory after.
    #[error("client identifier {client_id:?} cannot name a session directory: {reason}")]
    InvalidClientId {
        /// The client identifier.
        client_id: String,
        /// Why not.
        reason: &'static str,
    },
    /// The log holds something other than records this crate wrote: a foreign file, or a record
    /// damaged in the middle of the log (a damaged *last* record is a torn write, and recovery
    /// drops it).
    #[error("{path}: corrupt session log at byte {offset}: {reason}")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record of the log contradicts the session before it.
    #[error("{path}: the session log's record at byte {offset} does not replay: {source}")]
    Replay {
        /// The log file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// How it contradicts the session.
        source: ReplayError,
    },
    /// [`append`](crate::SessionStore::append) was given a record that contradicts the session
    /// (the driver's bug): it is not stored.
    #[error("the record does not fit the session: {0}")]
    Rejected(#[source] ReplayError),
    /// A record longer than the format's 32-bit length (a snapshot of gigabytes of messages).
    #[error("a session record of {0} bytes is over the 4 GiB a log record can hold")]
    RecordTooLarge(usize),
}
