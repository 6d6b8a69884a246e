//! What an idle connected client session costs on the heap, counted by a global allocator: the
//! per-packet-id tables are allocated when first needed, so a client that has only connected
//! holds a few KiB, and one that acknowledges by hand or receives QoS 2 pays for its table then.

mod util;

use std::alloc::System;

use sansmq::packet::QoS;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use util::{Scripted, config, incoming};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes that `make` leaves live (what it returns included).
fn live_bytes_of<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(ALLOCATOR);
    let value = make();
    let change = region.change();
    let live = change
        .bytes_allocated
        .saturating_add(change.bytes_reallocated.max(0).unsigned_abs())
        .saturating_sub(change.bytes_deallocated);
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
        idle < 40 * 1024,
        "an idle connected session holds {idle} bytes"
    );

    // A QoS 2 message: the 8 KiB table of identifiers awaiting PUBREL appears.
    let ((), qos2) = live_bytes_of(|| {
        session.deliver(incoming("t", QoS::ExactlyOnce, Some(1), b"x"));
        session.events();
        session.sent();
    });
    assert!(qos2 >= 8 * 1024, "QoS 2 state: {qos2} bytes");
    println!("idle connected session: {idle} bytes; after a QoS 2 message: +{qos2}");
}
