//! [`FileStore`]: a session in an append-only log on disk, one directory per client identifier.
//!
//! The directory holds `session.log` (the records, in the [format](crate#the-file-format)), and
//! `lock`, locked for as long as a store has the session open. Compaction writes
//! `session.log.tmp` and renames it over the log.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fs4::fs_std::FileExt;
use sansmq::client::{SessionRecord, SessionSnapshot};

use crate::format::{self, Frame, MAGIC};
use crate::session::Session;
use crate::{SessionStore, StoreError};

/// The log file in a session directory.
const LOG: &str = "session.log";
/// The compacted log being written, renamed over [`LOG`] once on disk.
const COMPACTING: &str = "session.log.tmp";
/// The file locked while a store has the session open.
const LOCK: &str = "lock";

/// The longest directory name a client identifier may make (file systems allow 255 bytes).
const MAX_DIR_NAME: usize = 200;

/// By default the log is compacted when it holds more records than this, and more than
/// [`COMPACT_RATIO`] times as many as the session has items.
const DEFAULT_COMPACT_AFTER: u64 = 10_000;
const COMPACT_RATIO: u64 = 4;

/// When a [`FileStore`] makes what it wrote durable (`fsync`).
///
/// [`sync`](SessionStore::sync) always hands the records appended since the last call to the
/// operating system, so they survive the process being killed whatever the policy; the policy
/// says which of them also survive the machine losing power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every record is on disk before the `sync` after it returns: one `fsync` per `sync` that
    /// has records to write. Nothing acknowledged to the application is lost, and QoS 2 stays
    /// exactly-once, even across a power loss.
    EveryRecord,
    /// Batched: a `sync` calls `fsync` only if the last one is older than this. A power loss
    /// loses at most the records of that long (the application was told they succeeded). Records
    /// written after an `fsync` wait for a later `sync` (or the store's drop):
    /// [`FileStore::sync_deadline`] says when.
    Every(Duration),
    /// Never `fsync` (compaction still does, to never replace the log by a file not on disk).
    Never,
}

/// A session in an append-only log of checksummed records, compacted when it holds many more
/// records than the session has items, under `dir/<client id>/`.
///
/// Opening recovers the session: it replays the log, dropping a last record that a crash cut
/// short or damaged (with a warning), and refusing a log damaged anywhere else
/// ([`StoreError::Corrupt`]). The session stays locked to this store until it is dropped.
///
/// Appended records are buffered until [`sync`](SessionStore::sync), which writes them in one
/// call and applies the [`SyncPolicy`]. Keeping the session in memory costs the same per record
/// however large the session is, as for a [`MemoryStore`](crate::MemoryStore); compaction,
/// [`load`](SessionStore::load) and [`session`](Self::session) copy it.
pub struct FileStore {
    client_id: String,
    dir: PathBuf,
    log_path: PathBuf,
    log: File,
    /// Locked for the store's life: closing it releases the lock.
    _lock: File,
    policy: SyncPolicy,
    session: Session,
    /// Records appended and not yet written, framed.
    pending: Vec<u8>,
    pending_records: u64,
    /// Records and bytes in the log file.
    records: u64,
    len: u64,
    /// Some written bytes may not be on disk.
    unsynced: bool,
    last_sync: Instant,
    compact_after: u64,
    /// `fsync`s of the log so far (tests count them instead of timing them).
    fsyncs: u64,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("client_id", &self.client_id)
            .field("dir", &self.dir)
            .field("policy", &self.policy)
            .field("records", &self.records)
            .field("len", &self.len)
            .field("pending_records", &self.pending_records)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (creating it if needed) the session of `client_id` under `dir`, and recovers it.
    ///
    /// The session directory is named after the identifier: lower-case ASCII letters, digits and
    /// `-` stand for themselves, every other byte is written `_` and two hex digits (so names
    /// differ only where identifiers do, also on case-insensitive file systems), after an `id-`
    /// prefix (no Windows device name).
    ///
    /// Fails with [`StoreError::Locked`] while another store, in this process or another, has the
    /// session open; with [`StoreError::InvalidClientId`] for an empty identifier (the broker
    /// names such a client, and its session ends with the connection) or one whose name would be
    /// over 200 bytes; with [`StoreError::Corrupt`] or [`StoreError::Replay`] if the log is
    /// damaged before its last record or was not written by a client.
    pub fn open(
        dir: impl AsRef<Path>,
        client_id: &str,
        policy: SyncPolicy,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref().join(dir_name(client_id)?);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        if !lock.try_lock_exclusive().map_err(io_error(&lock_path))? {
            return Err(StoreError::Locked {
                client_id: client_id.to_owned(),
                path: lock_path,
            });
        }
        // A compaction the process did not finish: the log it would have replaced is intact.
        let compacting = dir.join(COMPACTING);
        match fs::remove_file(&compacting) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error(&compacting)(e));
            }
            _ => {}
        }
        let log_path = dir.join(LOG);
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(io_error(&log_path))?;
        let mut store = Self {
            client_id: client_id.to_owned(),
            dir,
            log_path,
            log,
            _lock: lock,
            policy,
            session: Session::default(),
            pending: Vec::new(),
            pending_records: 0,
            records: 0,
            len: 0,
            unsynced: false,
            last_sync: Instant::now(),
            compact_after: DEFAULT_COMPACT_AFTER,
            fsyncs: 0,
        };
        store.recover(Bytes::from(bytes))?;
        sync_dir(&store.dir)?;
        Ok(store)
    }

    /// Replays the log, truncating a torn last record.
    fn recover(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.log_path.clone();
        let corrupt = |offset: usize, reason| StoreError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        if bytes.len() < MAGIC.len() {
            if !MAGIC.starts_with(bytes.as_ref()) {
                return Err(corrupt(0, "not a sansmq session log"));
            }
            // New, or its creation was cut short.
            self.truncate(0)?;
            self.log
                .write_all(MAGIC)
                .map_err(io_error(&self.log_path))?;
            self.len = MAGIC.len() as u64;
            return self.fsync();
        }
        if !bytes.starts_with(MAGIC) {
            return Err(corrupt(
                0,
                "not a sansmq session log, or another version of it",
            ));
        }
        let mut offset = MAGIC.len();
        let torn = loop {
            // In range: `offset` only ever moves past whole records.
            let rest = bytes.slice(offset..);
            if rest.is_empty() {
                break None;
            }
            let (body, len) = match format::frame(&rest) {
                Frame::Record { body, len } => (body, len),
                Frame::Incomplete => break Some("cut short"),
                // Whether valid records follow decides between a torn last write and damage. A
                // body's checked length skips the records its own payload may hold.
                Frame::BadHeader if !record_from(&bytes, offset + 1) => break Some("damaged"),
                Frame::BadBody { len } if !record_from(&bytes, offset + len) => {
                    break Some("damaged");
                }
                Frame::BadHeader | Frame::BadBody { .. } => {
                    return Err(corrupt(
                        offset,
                        "a record fails its checksum and valid records follow it",
                    ));
                }
            };
            let record = format::decode(body).map_err(|reason| corrupt(offset, reason))?;
            self.session
                .apply(&record)
                .map_err(|source| StoreError::Replay {
                    path: self.log_path.clone(),
                    offset: offset as u64,
                    source,
                })?;
            self.records += 1;
            offset += len;
        };
        self.len = offset as u64;
        if let Some(how) = torn {
            tracing::warn!(
                log = %self.log_path.display(),
                offset,
                dropped = bytes.len() - offset,
                "the session log's last record was {how} (the process or machine stopped while writing it); dropping it",
            );
            self.truncate(self.len)?;
            self.fsync()?;
        }
        Ok(())
    }

    /// The client identifier whose session this is.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The session directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The session as the records so far (written or not) leave it: a copy, built from every
    /// message it holds.
    pub fn session(&self) -> SessionSnapshot {
        self.session.snapshot()
    }

    /// Compaction starts once the log holds more than `records` records (and more than four times
    /// as many as the session has items). 10,000 by default.
    pub fn set_compact_after(&mut self, records: u64) {
        self.compact_after = records;
    }

    /// Under [`SyncPolicy::Every`], when records written but not on disk are due: the driver calls
    /// [`sync`](SessionStore::sync) then. `None` when nothing waits or under another policy.
    pub fn sync_deadline(&self) -> Option<Instant> {
        match self.policy {
            SyncPolicy::Every(period) if self.unsynced || !self.pending.is_empty() => {
                self.last_sync.checked_add(period)
            }
            _ => None,
        }
    }

    /// Rewrites the log as one snapshot record of the session: written to a new file, made
    /// durable, then renamed over the log (the directory made durable too), so a crash at any
    /// point leaves either log whole. [`sync`](SessionStore::sync) compacts by itself when the
    /// log has grown; this does it now.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.compact_at(Instant::now())
    }

    fn compact_at(&mut self, now: Instant) -> Result<(), StoreError> {
        let path = self.dir.join(COMPACTING);
        let mut bytes = MAGIC.to_vec();
        let snapshot = SessionRecord::Snapshot(self.session.snapshot());
        format::encode(&snapshot, &mut bytes).map_err(|e| StoreError::RecordTooLarge(e.0))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        file.set_len(0).map_err(io_error(&path))?;
        file.write_all(&bytes).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        fs::rename(&path, &self.log_path).map_err(io_error(&self.log_path))?;
        // The handle follows the file to its new name: appends go to the compacted log.
        self.log = file;
        self.records = 1;
        self.len = bytes.len() as u64;
        self.pending.clear();
        self.pending_records = 0;
        sync_dir(&self.dir)?;
        self.fsyncs += 1;
        self.unsynced = false;
        self.last_sync = now;
        Ok(())
    }

    /// [`sync`](SessionStore::sync) at `now`.
    fn sync_at(&mut self, now: Instant) -> Result<(), StoreError> {
        if !self.pending.is_empty() {
            if let Err(e) = self.log.write_all(&self.pending) {
                // Leave no partial record behind for the records after it to follow.
                let _ = self.log.set_len(self.len);
                return Err(io_error(&self.log_path)(e));
            }
            self.len += self.pending.len() as u64;
            self.records += self.pending_records;
            self.pending.clear();
            self.pending_records = 0;
            self.unsynced = true;
        }
        let due = match self.policy {
            SyncPolicy::EveryRecord => true,
            SyncPolicy::Every(period) => now.saturating_duration_since(self.last_sync) >= period,
            SyncPolicy::Never => false,
        };
        if self.unsynced && due {
            self.fsync()?;
            self.last_sync = now;
        }
        let items = u64::try_from(self.session.items()).unwrap_or(u64::MAX);
        if self.records > self.compact_after && self.records / COMPACT_RATIO > items {
            self.compact_at(now)?;
        }
        Ok(())
    }

    fn fsync(&mut self) -> Result<(), StoreError> {
        self.log.sync_data().map_err(io_error(&self.log_path))?;
        self.fsyncs += 1;
        self.unsynced = false;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> Result<(), StoreError> {
        self.log.set_len(len).map_err(io_error(&self.log_path))
    }
}

impl SessionStore for FileStore {
    /// The session recovered when the store was opened, with the records appended since.
    fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
        Ok(self.session.snapshot())
    }

    fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        let before = self.pending.len();
        format::encode(record, &mut self.pending).map_err(|e| StoreError::RecordTooLarge(e.0))?;
        if let Err(e) = self.session.apply(record) {
            self.pending.truncate(before);
            return Err(StoreError::Rejected(e));
        }
        self.pending_records += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.sync_at(Instant::now())
    }

    fn sync_deadline(&self) -> Option<Instant> {
        FileStore::sync_deadline(self)
    }
}

impl Drop for FileStore {
    /// Writes what was appended since the last [`sync`](SessionStore::sync) and, unless the
    /// policy is [`SyncPolicy::Never`], makes it durable; errors are logged, nothing else can be
    /// done with them here.
    fn drop(&mut self) {
        if self.pending.is_empty() && (!self.unsynced || self.policy == SyncPolicy::Never) {
            return;
        }
        if matches!(self.policy, SyncPolicy::Every(_)) {
            self.policy = SyncPolicy::EveryRecord;
        }
        let result = self.sync_at(Instant::now());
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not write the session log's last records");
        }
    }
}

/// The session directory's name for `client_id`: see [`FileStore::open`].
fn dir_name(client_id: &str) -> Result<String, StoreError> {
    let invalid = |reason| StoreError::InvalidClientId {
        client_id: client_id.to_owned(),
        reason,
    };
    if client_id.is_empty() {
        return Err(invalid(
            "it is empty (the broker names such a client, and its session ends with the connection)",
        ));
    }
    let mut name = String::from("id-");
    for b in client_id.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("_{b:02x}"));
        }
        if name.len() > MAX_DIR_NAME {
            return Err(invalid(
                "it is too long: escaped, it would be over 200 bytes",
            ));
        }
    }
    Ok(name)
}

/// Whether a whole record with matching checksums starts anywhere in `bytes` from `offset` on:
/// if so, the damage before it is not a torn last write.
fn record_from(bytes: &Bytes, offset: usize) -> bool {
    (offset..bytes.len())
        .any(|at| matches!(format::frame(&bytes.slice(at..)), Frame::Record { .. }))
}

/// Makes a directory's entries (a new or renamed file) durable. Windows has no such call: there
/// the file's own `fsync` covers it.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use sansmq::packet::PacketId;

    use super::*;

    fn record(v: u16) -> SessionRecord {
        SessionRecord::IncomingHeld(PacketId::new(v).unwrap())
    }

    fn open(dir: &Path, policy: SyncPolicy) -> FileStore {
        FileStore::open(dir, "c", policy).unwrap()
    }

    #[test]
    fn every_record_policy_syncs_each_sync_that_wrote_something() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), SyncPolicy::EveryRecord);
        let (opened, now) = (store.fsyncs, Instant::now());
        store.sync_at(now).unwrap();
        assert_eq!(store.fsyncs, opened, "nothing to make durable");
        store.append(&record(1)).unwrap();
        store.append(&record(2)).unwrap();
        assert_eq!(store.fsyncs, opened, "append only buffers");
        store.sync_at(now).unwrap();
        assert_eq!(store.fsyncs, opened + 1, "one fsync for the step's records");
        assert_eq!(store.sync_deadline(), None);
    }

    #[test]
    fn batched_policy_syncs_when_the_last_sync_is_old_enough() {
        let dir = tempfile::tempdir().unwrap();
        let period = Duration::from_millis(10);
        let mut store = open(dir.path(), SyncPolicy::Every(period));
        let start = store.last_sync;
        let opened = store.fsyncs;
        store.append(&record(1)).unwrap();
        assert_eq!(store.sync_deadline(), Some(start + period));
        store.sync_at(start + period / 2).unwrap();
        assert_eq!(store.fsyncs, opened, "too soon");
        assert_eq!(store.len, fs::metadata(&store.log_path).unwrap().len());
        assert_eq!(store.sync_deadline(), Some(start + period));
        store.sync_at(start + period).unwrap();
        assert_eq!(store.fsyncs, opened + 1);
        assert_eq!(store.sync_deadline(), None, "nothing waits");
        store.sync_at(start + period * 5).unwrap();
        assert_eq!(store.fsyncs, opened + 1, "nothing written since");
    }

    #[test]
    fn never_policy_writes_without_syncing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), SyncPolicy::Never);
        let opened = store.fsyncs;
        store.append(&record(1)).unwrap();
        store.sync_at(Instant::now()).unwrap();
        assert_eq!(store.fsyncs, opened);
        assert_eq!(store.len, fs::metadata(&store.log_path).unwrap().len());
        assert_eq!(store.sync_deadline(), None);
    }

    #[test]
    fn compaction_waits_for_the_log_to_outgrow_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), SyncPolicy::Never);
        store.set_compact_after(10);
        // Fifty live identifiers: fifty records are not four times the session.
        for v in 1..=50 {
            store.append(&record(v)).unwrap();
            store.sync_at(Instant::now()).unwrap();
        }
        assert_eq!(store.records, 50);
        for v in 1..=200 {
            store.append(&record(v % 50 + 1)).unwrap(); // already held: no new item
        }
        store.sync_at(Instant::now()).unwrap();
        assert_eq!(store.records, 1, "compacted to one snapshot record");
    }

    #[test]
    fn a_leftover_compaction_file_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let session_dir = open(dir.path(), SyncPolicy::Never).dir().to_owned();
        fs::write(session_dir.join(COMPACTING), b"half a snapshot").unwrap();
        let store = open(dir.path(), SyncPolicy::Never);
        assert!(!session_dir.join(COMPACTING).exists());
        assert_eq!(store.session(), SessionSnapshot::default());
    }
}
