//! What an idle connected client session costs on the heap, counted by a global allocator: the
//! per-packet-id tables are allocated when first needed, so a client that has only connected
//! holds a few KiB, and one that acknowledges by hand or receives QoS 2 pays for its table then.

mod util;

use std::alloc::System;

use sansmq::packet::{PubRel, QoS};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use util::{Scripted, config, id, incoming};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes that `make` leaves live (what it returns included); negative when it frees more
/// than it allocates.
fn live_bytes_of<T>(make: impl FnOnce() -> T) -> (T, i64) {
    let region = Region::new(ALLOCATOR);
    let value = make();
    let change = region.change();
    let count = |bytes: usize| i64::try_from(bytes).unwrap_or(i64::MAX);
    let live = count(change.bytes_allocated) + i64::try_from(change.bytes_reallocated).unwrap_or(0)
        - count(change.bytes_deallocated);
    (value, live)
}

/// One test, so that no other test allocates while this one counts.
#[test]
fn an_idle_session_allocates_its_tables_only_when_used() {
    let (mut session, idle) = live_bytes_of(|| {
        let mut session = Scripted::connected(config());
        session.events();
        session.sent();
        session
    });
    assert!(
        idle < 4 * 1024,
        "an idle connected session holds {idle} bytes"
    );

    // A QoS 2 exchange: a page of the set of identifiers awaiting PUBREL (512 bytes) appears,
    // and stays as the set's spare; the next exchanges reuse it and hold nothing more.
    let mut exchange = |id_value: u16| {
        live_bytes_of(|| {
            session.deliver(incoming("t", QoS::ExactlyOnce, Some(id_value), b"x"));
            session.events();
            session.sent();
            session.deliver(PubRel::new(id(id_value)));
            session.events();
            session.sent();
        })
        .1
    };
    let first = exchange(1);
    assert!(
        (512..4 * 1024).contains(&first),
        "QoS 2 state: {first} bytes"
    );
    let later: Vec<i64> = (2..6).map(&mut exchange).collect();
    println!(
        "idle connected session: {idle} bytes; a first QoS 2 exchange: +{first}; later ones: {later:?}"
    );
    assert!(
        later.iter().all(|&bytes| bytes <= 0),
        "later exchanges hold nothing more: {later:?}"
    );
}
