//! The file store against its promises: every record survives a reopen, a torn or damaged last
//! record is dropped and nothing before it, damage in the middle is refused, the lock keeps a
//! second store out, compaction keeps the session.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use sansmq::client::{InflightMessage, SessionRecord, SessionSnapshot};
use sansmq::packet::{PacketId, Publish, QoS, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};
use sansmq_store::{FileStore, MemoryStore, SessionStore, StoreError, SyncPolicy};

const CLIENT: &str = "device-1";

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

fn message(qos: QoS, packet_id: Option<u16>, topic: &str, payload: &[u8]) -> Publish {
    let mut publish = Publish::new(
        TopicName::try_from(topic).unwrap(),
        Bytes::copy_from_slice(payload),
    );
    publish.qos = qos;
    publish.packet_id = packet_id.map(id);
    publish
}

fn subscription(filter: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(TopicFilter::try_from(filter).unwrap(), qos)
}

/// A valid log with a record of every kind.
fn every_kind() -> Vec<SessionRecord> {
    let mut retained = message(QoS::ExactlyOnce, Some(2), "a/ü", b"\x00\xffpayload");
    retained.retain = true;
    retained.dup = true;
    vec![
        SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), "a/b", b"one")),
        SessionRecord::Sent,
        SessionRecord::Accepted(retained),
        SessionRecord::Sent,
        SessionRecord::Released(id(2)),
        SessionRecord::Accepted(message(QoS::AtMostOnce, None, "q", b"")),
        SessionRecord::Accepted(message(QoS::ExactlyOnce, Some(3), "q", &[7; 300])),
        SessionRecord::Completed(id(1)),
        SessionRecord::IncomingHeld(id(9)),
        SessionRecord::IncomingHeld(id(4)),
        SessionRecord::IncomingReleased(id(9)),
        SessionRecord::Subscribed(subscription("a/+/#", QoS::ExactlyOnce)),
        SessionRecord::Subscribed(subscription("b", QoS::AtMostOnce)),
        SessionRecord::Unsubscribed(TopicFilter::try_from("b").unwrap()),
        SessionRecord::SessionLost,
        SessionRecord::IncomingHeld(id(5)),
        SessionRecord::Snapshot(SessionSnapshot {
            inflight: vec![InflightMessage {
                publish: message(QoS::ExactlyOnce, Some(7), "s", b"snap"),
                released: true,
            }],
            queued: vec![message(QoS::AtMostOnce, None, "s/0", b"zero")],
            awaiting_release: vec![id(8)],
            subscriptions: vec![subscription("s/#", QoS::AtLeastOnce)],
        }),
        SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), "after", b"snapshot")),
    ]
}

fn replay(records: &[SessionRecord]) -> SessionSnapshot {
    let mut snapshot = SessionSnapshot::default();
    for record in records {
        snapshot.apply(record).unwrap();
    }
    snapshot
}

/// Writes `records` (one sync each) to a new store in `dir`; returns the log's path.
fn write(dir: &Path, records: &[SessionRecord]) -> PathBuf {
    let mut store = FileStore::open(dir, CLIENT, SyncPolicy::Never).unwrap();
    for record in records {
        store.append(record).unwrap();
        store.sync().unwrap();
    }
    store.dir().join("session.log")
}

fn reopen(dir: &Path) -> Result<SessionSnapshot, StoreError> {
    FileStore::open(dir, CLIENT, SyncPolicy::Never)?.load()
}

/// A copy of the session directory's log, cut at `len`, in a new directory.
fn cut_copy(log: &Path, len: usize, edit: impl FnOnce(&mut Vec<u8>)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let name = log.parent().unwrap().file_name().unwrap();
    fs::create_dir(copy.path().join(name)).unwrap();
    let mut bytes = fs::read(log).unwrap();
    bytes.truncate(len);
    edit(&mut bytes);
    fs::write(copy.path().join(name).join("session.log"), bytes).unwrap();
    copy
}

#[test]
fn every_record_kind_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let records = every_kind();
    write(dir.path(), &records);
    let expected = replay(&records);
    assert_eq!(reopen(dir.path()).unwrap(), expected);
    // And again: opening wrote nothing that changes it.
    assert_eq!(reopen(dir.path()).unwrap(), expected);
    let mut memory = MemoryStore::new();
    for record in &records {
        memory.append(record).unwrap();
    }
    assert_eq!(memory.load().unwrap(), expected);
}

#[test]
fn records_appended_without_a_sync_are_written_at_drop() {
    let dir = tempfile::tempdir().unwrap();
    let records = every_kind();
    {
        let mut store = FileStore::open(dir.path(), CLIENT, SyncPolicy::EveryRecord).unwrap();
        for record in &records {
            store.append(record).unwrap();
        }
    }
    assert_eq!(reopen(dir.path()).unwrap(), replay(&records));
}

/// Where each record of the log written by `write(records)` starts, and the file's end.
fn boundaries(records: &[SessionRecord]) -> Vec<usize> {
    let mut ends = Vec::new();
    for n in 0..=records.len() {
        let d = tempfile::tempdir().unwrap();
        let log = write(d.path(), &records[..n]);
        ends.push(fs::metadata(log).unwrap().len() as usize);
    }
    ends
}

#[test]
fn a_torn_last_record_is_dropped_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let records = every_kind();
    let log = write(dir.path(), &records);
    let ends = boundaries(&records);
    let whole = *ends.last().unwrap();
    assert_eq!(fs::metadata(&log).unwrap().len() as usize, whole);
    // The last record is a QoS 1 message, and the one before it a snapshot: both are cut.
    for last in [records.len() - 1, records.len() - 2] {
        let (start, end) = (ends[last], ends[last + 1]);
        let before = replay(&records[..last]);
        for cut in start..end {
            let copy = cut_copy(&log, cut, |_| {});
            assert_eq!(reopen(copy.path()).unwrap(), before, "cut at {cut}");
            // The torn bytes are gone: what is appended next follows the last whole record.
            let cut_log = copy.path().join(log.parent().unwrap().file_name().unwrap());
            let cut_log = cut_log.join("session.log");
            assert_eq!(fs::metadata(&cut_log).unwrap().len() as usize, start);
            let mut store = FileStore::open(copy.path(), CLIENT, SyncPolicy::Never).unwrap();
            store.append(&records[last]).unwrap();
            store.sync().unwrap();
            drop(store);
            assert_eq!(
                reopen(copy.path()).unwrap(),
                replay(&records[..=last]),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn a_log_cut_inside_its_header_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), &every_kind());
    for cut in 0..8 {
        let copy = cut_copy(&log, cut, |_| {});
        assert_eq!(reopen(copy.path()).unwrap(), SessionSnapshot::default());
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let records = every_kind();
    let log = write(dir.path(), &records);
    let ends = boundaries(&records);
    let (start, end) = (ends[records.len() - 1], ends[records.len()]);
    let before = replay(&records[..records.len() - 1]);
    for at in start..end {
        for bit in [0, 5] {
            let copy = cut_copy(&log, end, |bytes| bytes[at] ^= 1 << bit);
            assert_eq!(
                reopen(copy.path()).unwrap(),
                before,
                "bit {bit} of byte {at}"
            );
        }
    }
    // Zeros where the last record should be (the length reached the disk, the data did not).
    let copy = cut_copy(&log, end, |bytes| bytes[start..].fill(0));
    assert_eq!(reopen(copy.path()).unwrap(), before);
}

#[test]
fn damage_before_the_last_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let records = every_kind();
    let log = write(dir.path(), &records);
    let ends = boundaries(&records);
    let end = *ends.last().unwrap();
    // A byte in the header, and one in the body, of the third record (a message).
    for at in [ends[2] + 1, ends[2] + 20] {
        let copy = cut_copy(&log, end, |bytes| bytes[at] ^= 0x10);
        match reopen(copy.path()) {
            Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset as usize, ends[2]),
            other => panic!("damage at {at}: {other:?}"),
        }
        // Nothing was truncated.
        let copied = copy.path().join(log.parent().unwrap().file_name().unwrap());
        let len = fs::metadata(copied.join("session.log")).unwrap().len();
        assert_eq!(len as usize, end);
    }
}

#[test]
fn a_file_that_is_not_a_session_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), &[]);
    fs::write(&log, b"{\"inflight\": []}\n").unwrap();
    assert!(matches!(
        reopen(dir.path()),
        Err(StoreError::Corrupt { offset: 0, .. })
    ));
    fs::write(&log, b"SAN").unwrap(); // a prefix of the header: creation was cut short
    assert_eq!(reopen(dir.path()).unwrap(), SessionSnapshot::default());
}

#[test]
fn a_checksummed_record_that_does_not_replay_is_refused() {
    // A log written by something else: completing a message never accepted.
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), &[]);
    let other = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(other.path(), CLIENT, SyncPolicy::Never).unwrap();
    store
        .append(&SessionRecord::Accepted(message(
            QoS::AtLeastOnce,
            Some(1),
            "t",
            b"",
        )))
        .unwrap();
    store.append(&SessionRecord::Sent).unwrap();
    store.append(&SessionRecord::Completed(id(1))).unwrap();
    store.sync().unwrap();
    let bytes = fs::read(store.dir().join("session.log")).unwrap();
    drop(store);
    // Keep the header and the last record (Completed: 12 + 3 bytes).
    let mut forged = bytes[..8].to_vec();
    forged.extend_from_slice(&bytes[bytes.len() - 15..]);
    fs::write(&log, forged).unwrap();
    assert!(matches!(
        reopen(dir.path()),
        Err(StoreError::Replay { offset: 8, .. })
    ));
}

#[test]
fn a_rejected_record_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
    store.append(&SessionRecord::IncomingHeld(id(1))).unwrap();
    assert!(matches!(
        store.append(&SessionRecord::Sent),
        Err(StoreError::Rejected(_))
    ));
    store.sync().unwrap();
    drop(store);
    assert_eq!(reopen(dir.path()).unwrap().awaiting_release, [id(1)]);
}

#[test]
fn the_lock_keeps_a_second_store_out_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
    match FileStore::open(dir.path(), CLIENT, SyncPolicy::Never) {
        Err(e @ StoreError::Locked { .. }) => {
            assert!(e.to_string().contains("\"device-1\""), "{e}");
        }
        other => panic!("a second store opened the session: {other:?}"),
    }
    // Another client's session is another directory, another lock.
    FileStore::open(dir.path(), "device-2", SyncPolicy::Never).unwrap();
    drop(first);
    FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
}

#[test]
fn client_ids_name_distinct_safe_directories() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["Dev", "dev", "a/b", "a_2fb", "..", "con", "GID@@@x y", "ü"];
    let mut names = Vec::new();
    for client_id in ids {
        let store = FileStore::open(dir.path(), client_id, SyncPolicy::Never).unwrap();
        assert_eq!(store.client_id(), client_id);
        let name = store
            .dir()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "{name}"
        );
        assert_eq!(store.dir().parent().unwrap(), dir.path());
        names.push(name);
    }
    assert_eq!(names[0], "id-_44ev");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), ids.len());
    for bad in ["", &"x".repeat(300), &"/".repeat(70)] {
        assert!(matches!(
            FileStore::open(dir.path(), bad, SyncPolicy::Never),
            Err(StoreError::InvalidClientId { .. })
        ));
    }
}

/// Messages published and acknowledged one after another, ids cycling through 1..=10.
fn traffic(n: u16) -> Vec<SessionRecord> {
    let mut records = vec![SessionRecord::Subscribed(subscription(
        "t/#",
        QoS::AtLeastOnce,
    ))];
    for i in 0..n {
        let packet_id = i % 10 + 1;
        records.push(SessionRecord::Accepted(message(
            QoS::AtLeastOnce,
            Some(packet_id),
            "t/1",
            &i.to_le_bytes(),
        )));
        records.push(SessionRecord::Sent);
        if i >= 3 {
            records.push(SessionRecord::Completed(id((i - 3) % 10 + 1)));
        }
    }
    records
}

#[test]
fn compaction_keeps_the_session_and_shrinks_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let records = traffic(300);
    let mut store = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
    let log = store.dir().join("session.log");
    store.set_compact_after(1_000_000);
    for record in &records {
        store.append(record).unwrap();
        store.sync().unwrap();
    }
    let grown = fs::metadata(&log).unwrap().len();
    store.compact().unwrap();
    let compacted = fs::metadata(&log).unwrap().len();
    assert!(compacted * 10 < grown, "{compacted} of {grown} bytes");
    // Appends after compaction go to the compacted log.
    let more = SessionRecord::IncomingHeld(id(3));
    store.append(&more).unwrap();
    store.sync().unwrap();
    drop(store);
    let mut all = records.clone();
    all.push(more);
    assert_eq!(reopen(dir.path()).unwrap(), replay(&all));
    assert!(!log.with_file_name("session.log.tmp").exists());
}

#[test]
fn the_log_compacts_itself_as_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let records = traffic(2_000);
    let mut store = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
    let log = store.dir().join("session.log");
    store.set_compact_after(100);
    let mut largest = 0;
    for record in &records {
        store.append(record).unwrap();
        store.sync().unwrap();
        largest = largest.max(fs::metadata(&log).unwrap().len());
    }
    // Without compaction the log holds ~6,000 records of at least 15 bytes.
    assert!(largest < 20_000, "the log grew to {largest} bytes");
    drop(store);
    assert_eq!(reopen(dir.path()).unwrap(), replay(&records));
}

/// A candidate record; those that do not fit the session are left out of the log.
fn candidate() -> impl Strategy<Value = SessionRecord> {
    let pid = 1u16..6;
    prop_oneof![
        4 => (0u8..3, pid.clone(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(
            |(q, i, retain, payload)| {
                let qos = QoS::from_u8(q).unwrap();
                let mut publish = message(qos, (qos != QoS::AtMostOnce).then_some(i), "p/q", &payload);
                publish.retain = retain;
                SessionRecord::Accepted(publish)
            }
        ),
        3 => Just(SessionRecord::Sent),
        1 => Just(SessionRecord::SentAtMostOnce),
        2 => pid.clone().prop_map(|i| SessionRecord::Released(id(i))),
        3 => pid.clone().prop_map(|i| SessionRecord::Completed(id(i))),
        1 => pid.clone().prop_map(|i| SessionRecord::IncomingHeld(id(i))),
        1 => pid.prop_map(|i| SessionRecord::IncomingReleased(id(i))),
        1 => (0u8..3, prop::sample::select(vec!["a", "a/+", "#"]))
            .prop_map(|(q, f)| SessionRecord::Subscribed(subscription(f, QoS::from_u8(q).unwrap()))),
        1 => prop::sample::select(vec!["a", "a/+", "#"])
            .prop_map(|f| SessionRecord::Unsubscribed(TopicFilter::try_from(f).unwrap())),
        1 => Just(SessionRecord::SessionLost),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn what_is_written_reopens_as_replayed(
        candidates in prop::collection::vec((candidate(), any::<bool>()), 0..150),
        compact_after in 5u64..200,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
        store.set_compact_after(compact_after);
        let mut memory = SessionSnapshot::default();
        for (record, sync) in &candidates {
            if memory.apply(record).is_err() {
                prop_assert!(matches!(store.append(record), Err(StoreError::Rejected(_))));
                continue;
            }
            store.append(record).unwrap();
            if *sync {
                store.sync().unwrap();
            }
        }
        prop_assert_eq!(store.session(), memory.clone());
        drop(store);
        prop_assert_eq!(reopen(dir.path()).unwrap(), memory);
    }
}

/// Set in the child process of [`a_second_process_cannot_open_a_locked_session`]: the
/// directory whose session it tries to open.
const CHILD_DIR: &str = "SANSMQ_STORE_TEST_CHILD_DIR";

#[test]
fn a_second_process_cannot_open_a_locked_session() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        // The child: report what opening gave.
        match FileStore::open(dir, CLIENT, SyncPolicy::Never) {
            Err(StoreError::Locked { client_id, .. }) => println!("child: locked {client_id}"),
            other => println!("child: {other:?}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = |dir: &Path| {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_second_process_cannot_open_a_locked_session",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let store = FileStore::open(dir.path(), CLIENT, SyncPolicy::Never).unwrap();
    let said = child(dir.path());
    assert!(said.contains("child: locked device-1"), "{said}");
    drop(store);
    let said = child(dir.path());
    assert!(said.contains("child: Ok("), "{said}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The log comes from disk: whatever it holds, opening gives a session or an error.
    #[test]
    fn any_log_content_opens_or_fails_without_panicking(
        tail in prop::collection::vec(any::<u8>(), 0..200),
        prefix in 0usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), &every_kind()[..prefix]);
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(&tail);
        fs::write(&log, bytes).unwrap();
        let _ = reopen(dir.path());
    }
}

#[test]
fn a_damaged_last_message_holding_a_log_record_is_still_a_torn_write() {
    // The payload is itself a framed record, which a scan for valid records would find.
    let other = tempfile::tempdir().unwrap();
    let framed = fs::read(write(other.path(), &[SessionRecord::IncomingHeld(id(1))])).unwrap();
    let records = [
        SessionRecord::IncomingHeld(id(2)),
        SessionRecord::Accepted(message(QoS::AtLeastOnce, Some(1), "log", &framed[8..])),
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), &records);
    let ends = boundaries(&records);
    let start = ends[1];
    // A flipped bit in the record's kind, before the payload.
    let copy = cut_copy(&log, ends[2], |bytes| bytes[start + 12] ^= 0x40);
    assert_eq!(reopen(copy.path()).unwrap(), replay(&records[..1]));
}
