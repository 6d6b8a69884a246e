//! The supervisor with a session store: what is in the store before `publish` returns and before
//! a PUBREL or PUBREC is written, a restart that resumes from it, and a store that fails.

use std::sync::Mutex;

use sansmq::client::{SessionRecord, SessionSnapshot};
use sansmq::packet::{Packet, PacketDecoder, PubRec};
use sansmq_store::{MemoryStore, SessionStore, StoreError};

use super::*;

/// A memory store the test can look into: what was synced, and how often.
#[derive(Default)]
struct Shared {
    store: MemoryStore,
    /// The session as of the last `sync`.
    synced: SessionSnapshot,
    syncs: usize,
    /// Appends fail from now on.
    broken: bool,
}

struct Handle(Arc<Mutex<Shared>>);

impl SessionStore for Handle {
    fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
        let shared = self.0.lock().unwrap();
        Ok(shared.synced.clone())
    }

    fn append(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        let mut shared = self.0.lock().unwrap();
        if shared.broken {
            let disk_full = std::io::Error::other("no space left on device");
            return Err(StoreError::Io {
                path: "session.log".into(),
                source: disk_full,
            });
        }
        shared.store.append(record)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let mut shared = self.0.lock().unwrap();
        shared.syncs += 1;
        shared.synced = shared.store.load()?;
        Ok(())
    }
}

fn stored(shared: &Arc<Mutex<Shared>>) -> Sup {
    let shared = Arc::clone(shared);
    let options = options(&["tcp://a:1883"])
        .clean_session(false)
        .session_store(move |_| Ok(Box::new(Handle(Arc::clone(&shared)))));
    Sup::new(options).expect("supervisor")
}

fn packets(bytes: &[u8]) -> Vec<Packet> {
    let mut decoder = PacketDecoder::new(usize::MAX);
    decoder.extend_from_slice(bytes);
    std::iter::from_fn(|| decoder.next_packet().expect("valid packets")).collect()
}

fn synced(shared: &Arc<Mutex<Shared>>) -> SessionSnapshot {
    shared.lock().unwrap().synced.clone()
}

#[test]
fn publish_returns_once_its_message_is_synced_and_a_restart_resumes_it() {
    let shared = Arc::default();
    let now = Instant::now();
    let mut sup = stored(&shared);
    connect(&mut sup, now, 1);
    let id = publish(&mut sup, now, QoS::AtLeastOnce, 2).expect("accepted");
    let session = synced(&shared);
    assert_eq!(session.inflight.len(), 1, "{session:?}");
    assert_eq!(session.inflight[0].publish.packet_id, id);
    write_all(&mut sup, now);

    // The process dies; the next one resumes the message at its first connect, with DUP=1.
    drop(sup);
    let mut sup = stored(&shared);
    assert_eq!(sup.core().inflight_len(), 1);
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    write_all(&mut sup, now);
    sup.handle_received(now, &[0x20, 0x02, 0x01, 0x00]); // session present
    let sent = packets(&write_all(&mut sup, now));
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(p)] if p.dup && p.packet_id == id),
        "{sent:?}"
    );
}

#[test]
fn pubrel_is_written_only_after_the_release_is_synced() {
    let shared = Arc::default();
    let now = Instant::now();
    let mut sup = stored(&shared);
    connect(&mut sup, now, 1);
    let id = publish(&mut sup, now, QoS::ExactlyOnce, 2)
        .expect("accepted")
        .expect("an identifier");
    write_all(&mut sup, now);
    let syncs = shared.lock().unwrap().syncs;
    let mut pubrec = bytes::BytesMut::new();
    Packet::PubRec(PubRec::new(id)).encode(&mut pubrec).unwrap();
    sup.handle_received(now, &pubrec);
    // The PUBREL is waiting to be written, and the store already knows the release.
    assert!(sup.poll_transmit().is_some());
    assert!(shared.lock().unwrap().syncs > syncs);
    assert!(synced(&shared).inflight[0].released);
}

#[test]
fn a_failing_store_fails_the_publish_and_stops_the_client() {
    let shared: Arc<Mutex<Shared>> = Arc::default();
    let now = Instant::now();
    let mut sup = stored(&shared);
    connect(&mut sup, now, 1);
    events(&mut sup);
    let earlier = publish(&mut sup, now, QoS::AtLeastOnce, 2).expect("accepted");
    assert!(earlier.is_some());
    shared.lock().unwrap().broken = true;
    let rejected = publish(&mut sup, now, QoS::AtLeastOnce, 3).expect_err("not stored");
    assert!(
        matches!(rejected.error, Error::SessionStore(_)),
        "{}",
        rejected.error
    );
    assert_eq!(rejected.waiter, 3);
    let events = events(&mut sup);
    // The earlier publish's waiter hears it, and so does the application.
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Completed(Completed::Publish(2, _, Err(Error::SessionStore(_))))
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ConnectionLost {
            cause: Error::SessionStore(_),
            reconnect_at: None
        }
    )));
    assert!(!sup.is_connected());
    assert!(actions(&mut sup).contains(&Action::Close));
    assert!(publish(&mut sup, now, QoS::AtMostOnce, 4).is_err());
}

#[test]
fn a_store_that_cannot_open_fails_the_client() {
    let options = options(&["tcp://a:1883"]).session_store(|client_id| {
        Err(StoreError::Locked {
            client_id: client_id.to_owned(),
            path: "lock".into(),
        })
    });
    let error = Sup::new(options).expect_err("no store, no client");
    assert!(
        matches!(&error, Error::SessionStore(e) if matches!(**e, StoreError::Locked { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("supervised"), "{error}");
}

#[test]
fn without_the_offline_queue_a_queued_message_is_stored_only_once_sent() {
    let shared = Arc::default();
    let now = Instant::now();
    let handle = Arc::clone(&shared);
    let options = options(&["tcp://a:1883"])
        .clean_session(false)
        .session_store(move |_| Ok(Box::new(Handle(Arc::clone(&handle)))))
        .persist_offline_queue(false);
    let mut sup = Sup::new(options).expect("supervisor");
    // Not connected: the message waits in the queue, and not in the store.
    publish(&mut sup, now, QoS::AtLeastOnce, 2).expect("accepted");
    assert_eq!(sup.core().queued_len(), 1);
    assert_eq!(synced(&shared), SessionSnapshot::default());
    connect(&mut sup, now, 1);
    assert_eq!(synced(&shared).inflight.len(), 1, "stored as it went out");
}

/// A store that asks for a sync at a deadline of its own, as a batched `fsync` policy does.
struct Batched {
    due: Option<Instant>,
    syncs: Arc<AtomicUsize>,
}

impl SessionStore for Batched {
    fn load(&mut self) -> Result<SessionSnapshot, StoreError> {
        Ok(SessionSnapshot::default())
    }

    fn append(&mut self, _: &SessionRecord) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.due = None;
        Ok(())
    }

    fn sync_deadline(&self) -> Option<Instant> {
        self.due
    }
}

#[test]
fn a_store_deadline_is_a_timer_and_syncs_when_it_comes() {
    let now = Instant::now();
    let due = now + Duration::from_millis(10);
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&syncs);
    let options = options(&["tcp://a:1883"]).session_store(move |_| {
        Ok(Box::new(Batched {
            due: Some(due),
            syncs: Arc::clone(&counted),
        }))
    });
    let mut sup = Sup::new(options).expect("supervisor");
    assert_eq!(sup.poll_timeout(), Some(due));
    sup.handle_timeout(now);
    assert_eq!(syncs.load(Ordering::SeqCst), 0, "not due yet");
    sup.handle_timeout(due);
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    assert_eq!(sup.poll_timeout(), None);
}
