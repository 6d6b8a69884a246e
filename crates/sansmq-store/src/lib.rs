//! Session stores for the [sansmq](https://docs.rs/sansmq) MQTT client: where a session's
//! unacknowledged messages, offline queue, incoming QoS 2 state and subscriptions live, so that
//! they can outlive the client's process.
//!
//! A store never runs inside the sans-IO core. The driver around a [`Client`](sansmq::Client)
//! calls it:
//!
//! 1. [`SessionStore::load`] once, before making the client, and passes the session to
//!    [`Client::with_session`](sansmq::Client::with_session);
//! 2. [`SessionStore::append`] for every [`SessionRecord`] a step of the client produces (a
//!    message accepted, sent, released, completed; an incoming QoS 2 identifier held or
//!    released; a subscription granted or removed; the broker having lost the session);
//! 3. [`SessionStore::sync`] once those records are appended and before the driver acts on the
//!    step: before `publish` returns `Ok` to the application, before the PUBREL or PUBREC that
//!    follows is written to the socket. What `sync` makes durable is the store's business
//!    ([`SyncPolicy`] for a [`FileStore`]).
//!
//! [`MemoryStore`] keeps the session in memory (what a client does without a store);
//! [`FileStore`] keeps it in a log on disk, one directory per client identifier.
//!
//! ```
//! use sansmq::client::SessionRecord;
//! use sansmq::packet::{Publish, QoS, PacketId};
//! use sansmq::{Client, Config, MqttString, TopicName};
//! use sansmq_store::{FileStore, SessionStore, SyncPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let mut store = FileStore::open(dir.path(), "sensor-17", SyncPolicy::EveryRecord)?;
//! let config = Config::new(MqttString::try_from("sensor-17")?);
//! let client = Client::with_session(config, store.load()?)?;
//!
//! // What the driver records when the application publishes a QoS 1 message.
//! let mut publish = Publish::new(TopicName::try_from("sensors/17")?, "21.5".into());
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(1);
//! store.append(&SessionRecord::Accepted(publish))?;
//! store.sync()?; // now `publish` may return Ok
//! drop((client, store));
//!
//! // The next process finds the message, and resumes it.
//! let mut store = FileStore::open(dir.path(), "sensor-17", SyncPolicy::EveryRecord)?;
//! assert_eq!(store.load()?.queued.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # A store of your own
//!
//! A store in a database implements [`SessionStore`]. This one keeps the whole session under
//! the client's key, written at every `sync` (a real one would write rows per message, and
//! would not replay each record with [`SessionSnapshot::apply`], which costs a scan of the
//! session: [`MemoryStore`] and [`FileStore`] apply a record in constant time):
//!
//! ```
//! use std::collections::HashMap;
//!
//! use sansmq::client::{SessionRecord, SessionSnapshot};
//! use sansmq_store::{SessionStore, StoreError};
//!
//! /// Stands for a database table: client identifier -> session.
//! type Table = HashMap<String, SessionSnapshot>;
//!
//! struct TableStore<'a> {
//!     table: &'a mut Table,
//!     client_id: String,
//!     session: SessionSnapshot,
//! }
//!
//! impl SessionStore for TableStore<'_> {
//!     fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
//!         self.session = self.table.get(&self.client_id).cloned().unwrap_or_default();
//!         Ok(self.session.clone())
//!     }
//!
//!     fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
//!         self.session.apply(record).map_err(StoreError::Rejected)
//!     }
//!
//!     fn sync(&mut self) -> Result<(), StoreError> {
//!         self.table.insert(self.client_id.clone(), self.session.clone());
//!         Ok(())
//!     }
//! }
//!
//! let mut table = Table::new();
//! let mut store = TableStore { table: &mut table, client_id: "c".into(), session: Default::default() };
//! store.load()?;
//! store.append(&SessionRecord::SessionLost)?;
//! store.sync()?;
//! # Ok::<(), StoreError>(())
//! ```
//!
//! # The file format
//!
//! A [`FileStore`]'s `session.log`:
//!
//! ```text
//! file    = "SANSMQ" 0x00 VERSION(0x01) record*
//! record  = len:u32 body_crc:u32 header_crc:u32 body        (len = the body's length)
//! body    = kind:u8 fields
//! ```
//!
//! Integers are little-endian. `body_crc` is the CRC-32 (IEEE) of the body, `header_crc` the
//! CRC-32 of the eight bytes before it, so a record's length is trusted only once checked, and a
//! damaged length is told from a record cut short. Fields by kind:
//!
//! | kind | record              | fields                                                   |
//! |------|---------------------|----------------------------------------------------------|
//! | 1    | `Accepted`          | message                                                  |
//! | 2    | `Sent`              | (none)                                                   |
//! | 3    | `Released`          | id:u16                                                   |
//! | 4    | `Completed`         | id:u16                                                   |
//! | 5    | `IncomingHeld`      | id:u16                                                   |
//! | 6    | `IncomingReleased`  | id:u16                                                   |
//! | 7    | `Subscribed`        | options:u8 filter                                        |
//! | 8    | `Unsubscribed`      | filter                                                   |
//! | 9    | `SessionLost`       | (none)                                                   |
//! | 10   | `Snapshot`          | n:u32 (released:u8 message)×n, n:u32 message×n, n:u32 id:u16×n, n:u32 (options:u8 filter)×n |
//! | 11   | `SentAtMostOnce`    | (none)                                                   |
//!
//! `message = flags:u8 id:u16 topic_len:u16 topic payload_len:u32 payload [properties]`, with
//! the QoS in the flags' two low bits, RETAIN in bit 2, DUP in bit 3, and identifier 0 for none
//! (QoS 0); bit 4 says an MQTT 5 message's properties follow, as a PUBLISH's property section
//! (MQTT 5.0 section 3.3.2.3: a Variable Byte Integer length, then the properties).
//! `options` is MQTT 5's Subscription Options byte (the QoS in its two low bits, then No Local,
//! Retain As Published and Retain Handling), which for an MQTT 3.1.1 subscription is its QoS;
//! `filter = len:u16 bytes`. A body holds exactly its fields. Logs written before MQTT 5 read the
//! same.
//!
//! Recovery reads records until the end. A record that is cut short, or fails a checksum with no
//! whole, checksum-correct record after it (after its end if its header is intact, so a payload
//! that itself holds log records does not count), is a torn last write (the process or the
//! machine stopped while writing it, or the file's length reached the disk before its data): the
//! file is truncated before it, with a warning. A record that fails a checksum with a valid one
//! after it, or that decodes to nothing valid, is [`StoreError::Corrupt`]: the records after it
//! hold acknowledged state, and dropping them silently could lose messages or deliver a QoS 2
//! message twice.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod file;
mod format;
mod memory;
mod session;

pub use error::StoreError;
pub use file::{FileStore, SyncPolicy};
pub use memory::MemoryStore;
pub use sansmq::client::{ReplayError, SessionRecord, SessionSnapshot};

/// The README's example, compiled as a doc test so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Where a session is kept between the client's steps and across processes.
///
/// See the [crate docs](crate) for when a driver calls each method.
pub trait SessionStore {
    /// The stored session, to pass to [`Client::with_session`](sansmq::Client::with_session).
    /// Called once, before the client is made.
    fn load(&mut self) -> Result<SessionSnapshot, StoreError>;

    /// Records one change of the session. It need not be durable until [`sync`](Self::sync).
    /// A record that contradicts the session is refused with [`StoreError::Rejected`].
    fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError>;

    /// Makes the records appended so far as durable as the store promises; the driver calls it
    /// after appending a step's records and before acting on that step.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// When the store wants [`sync`](Self::sync) called even if no new record asks for it (a
    /// batched `fsync` falling due); `None` (the default) if never. A driver includes it in its
    /// timers.
    fn sync_deadline(&self) -> Option<std::time::Instant> {
        None
    }
}
