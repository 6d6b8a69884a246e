//! Session store bench: what a store costs a QoS 1 publisher per message, and that the cost does
//! not grow with the session.
//!
//! Run with `cargo bench -p sansmq-benches --bench session_store`. Each message is the records
//! the driver appends for it: `Accepted` and `Sent`, then `sync` (the step that publishes must
//! be durable before `publish` returns), then `Completed` when the PUBACK arrives, left for the
//! next step's `sync` as a driver does. Criterion reports messages per second
//! (`Throughput::Elements(1)`):
//!
//! - `session_store/{empty,backlog_10000}/memory`: [`MemoryStore`];
//! - `.../file_never`, `.../file_every_10ms`, `.../file_every_record`: [`FileStore`] in a
//!   temporary directory with [`SyncPolicy::Never`], `Every(10 ms)` and `EveryRecord`,
//!   compacting as it does by default;
//! - `.../file_never_uncompacted`: `SyncPolicy::Never` with compaction off: what the records
//!   themselves cost. The difference to `file_never` is compaction, whose two `fsync`s (the new
//!   log, then its directory) every 10,000 records are most of it for a small session;
//! - `.../snapshot_apply`: the baseline, what both stores did before: the records applied to a
//!   [`SessionSnapshot`] with [`SessionSnapshot::apply`], which is linear in the session's size.
//!
//! In `empty` the session holds only the message being published. In `backlog_10000`, 10,000
//! messages were accepted first and wait in the queue: each `Sent` takes the oldest of them
//! into the window and each `Completed` acknowledges it, while the new message joins the back,
//! so every record works against a session of 10,000 messages.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sansmq::TopicName;
use sansmq::client::{SessionRecord, SessionSnapshot};
use sansmq::packet::{PacketId, Publish, QoS};
use sansmq_store::{FileStore, MemoryStore, SessionStore, StoreError, SyncPolicy};

const BACKLOG: u16 = 10_000;

/// The baseline: a session kept as a [`SessionSnapshot`], each record replayed with `apply`.
#[derive(Default)]
struct SnapshotStore(SessionSnapshot);

impl SessionStore for SnapshotStore {
    fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
        Ok(self.0.clone())
    }

    fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        self.0.apply(record).map_err(StoreError::Rejected)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The identifier after `id`, wrapping from 65,535 to 1.
fn following(id: PacketId) -> PacketId {
    PacketId::new(id.get() % u16::MAX + 1).unwrap()
}

/// A QoS 1 publisher's records, into a store.
struct Publisher<S> {
    store: S,
    message: Publish,
    /// The identifier of the next message accepted.
    next: PacketId,
    /// The identifier of the oldest queued message: the next one sent.
    oldest: PacketId,
}

impl<S: SessionStore> Publisher<S> {
    /// A publisher whose session holds `backlog` queued messages.
    fn new(mut store: S, backlog: u16) -> Self {
        store.load().unwrap();
        let mut message = Publish::new(
            TopicName::try_from("sensors/building-7/floor-3/temperature").unwrap(),
            Bytes::from(vec![0x5A; 100]),
        );
        message.qos = QoS::AtLeastOnce;
        let first = PacketId::new(1).unwrap();
        let mut publisher = Self {
            store,
            message,
            next: first,
            oldest: first,
        };
        for _ in 0..backlog {
            publisher.accept();
        }
        publisher.store.sync().unwrap();
        publisher
    }

    fn accept(&mut self) {
        self.message.packet_id = Some(self.next);
        let record = SessionRecord::Accepted(self.message.clone());
        self.store.append(&record).unwrap();
        self.next = following(self.next);
    }

    /// One message: accepted and sent, synced, acknowledged.
    fn publish(&mut self) {
        self.accept();
        self.store.append(&SessionRecord::Sent).unwrap();
        self.store.sync().unwrap();
        let acknowledged = SessionRecord::Completed(self.oldest);
        self.store.append(&acknowledged).unwrap();
        self.oldest = following(self.oldest);
    }
}

fn bench<S: SessionStore>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    store: S,
    backlog: u16,
) {
    let mut publisher = Publisher::new(store, backlog);
    group.bench_function(name, |b| b.iter(|| publisher.publish()));
}

fn session_store(c: &mut Criterion) {
    for (case, backlog) in [("empty", 0), ("backlog_10000", BACKLOG)] {
        let mut group = c.benchmark_group(format!("session_store/{case}"));
        group.throughput(Throughput::Elements(1));
        bench(
            &mut group,
            "snapshot_apply",
            SnapshotStore::default(),
            backlog,
        );
        bench(&mut group, "memory", MemoryStore::new(), backlog);
        let policies = [
            ("file_never", SyncPolicy::Never),
            (
                "file_every_10ms",
                SyncPolicy::Every(Duration::from_millis(10)),
            ),
            ("file_every_record", SyncPolicy::EveryRecord),
        ];
        for (name, policy) in policies {
            let dir = tempfile::tempdir().unwrap();
            let store = FileStore::open(dir.path(), "bench", policy).unwrap();
            bench(&mut group, name, store, backlog);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path(), "bench", SyncPolicy::Never).unwrap();
        store.set_compact_after(u64::MAX);
        bench(&mut group, "file_never_uncompacted", store, backlog);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // An fsync per message takes milliseconds: 20 samples keep that case within a minute.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = session_store
}
criterion_main!(benches);
