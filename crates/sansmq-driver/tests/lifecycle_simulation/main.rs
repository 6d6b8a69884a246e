//! Deterministic simulation of the connection lifecycle: the sans-IO [`Supervisor`] driven as a
//! driver drives it, against model brokers behind several server URIs, on a virtual clock, with
//! seeded faults — DNS and connect failures per URI, black-holed attempts, refused CONNACKs (bad
//! credentials, server unavailable), transports cut at any point, brokers that go silent, lost
//! sessions, a credentials provider whose tokens are rotated, handed out stale or invalidated —
//! and the application's commands at random times. Every seed checks the guarantees of
//! `invariants.rs` and the driver's own checks in `world.rs`: backoff bounds, URI rotation,
//! token invalidation, re-subscription exactly once per reconnect, every waiter answered
//! exactly once, QoS 1/2 delivery to the broker, acknowledgements of received messages only
//! within their broker session, a silent broker given up in time, bounded queues, no panic.
//!
//! Half the seeds (chosen by the seed) speak MQTT 5.0 (`mqtt5.rs` holds their checks): the
//! brokers grant a Receive Maximum (which may shrink from one connection to the next), Topic
//! Aliases both ways and a Session Expiry Interval (the session outlives its connection exactly
//! that long), refuse messages and subscriptions on denied topics with their Reason Codes, answer
//! requests through a responder (with decoys on the response topic), and end connections with a
//! DISCONNECT of their own; the application publishes with properties (User Properties, Message
//! Expiry) and makes requests, answered, refused or left to time out.
//!
//! `storm.rs` checks
//! that 1,000 clients losing one broker at once do not come back in lock step.
//!
//! - `cargo test -p sansmq-driver --test lifecycle_simulation`: seeds 0..200
//!   (`SANSMQ_LIFECYCLE_START`, `SANSMQ_LIFECYCLE_SEEDS` change the range; `cargo xtask sim
//!   --lifecycle --seeds N` runs many in release).
//! - `SANSMQ_LIFECYCLE_SEED=1234 cargo test -p sansmq-driver --test lifecycle_simulation --
//!   --nocapture`: replays one seed and prints its scenario and trace if it fails
//!   (`SANSMQ_LIFECYCLE_TRACE=1`: always).
//! - `SANSMQ_LIFECYCLE_KNOWN_BUGS=all` (or `subscription-identifier`): the library bug the
//!   simulation found and still excuses (marked LIBRARY BUG where it is excused, listed in
//!   `mqtt5.rs`'s `KnownBug`) fails its seeds, to check a fix.
//!
//! [`Supervisor`]: sansmq_driver::Supervisor

mod broker;
mod invariants;
mod mqtt5;
mod scenario;
mod storm;
mod world;

use std::fmt::Debug;

use sansmq_sim_support::{SeedWorld, Stats, Suite};

use world::World;

const SUITE: Suite = Suite {
    name: "lifecycle simulation",
    env: "SANSMQ_LIFECYCLE",
    default_seeds: 200,
    command: "cargo test -p sansmq-driver --test lifecycle_simulation -- --nocapture",
    maxima: &[],
};
/// A sweep also runs the retry-storm check for one seed in this many.
const STORM_EVERY: u64 = 1_000;

impl SeedWorld for World {
    fn new(seed: u64, trace: bool) -> Self {
        World::new(seed, trace)
    }

    fn run(&mut self) -> Result<(), String> {
        World::run(self)?;
        if self.seed % STORM_EVERY == 0 {
            storm::check(self.seed)?;
            self.stats.insert("retry storms checked", 1);
        }
        Ok(())
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn replay_report(&self) -> (&dyn Debug, &[String]) {
        (&self.sc, self.trace.as_deref().unwrap_or_default())
    }
}

#[test]
fn lifecycle_simulation() {
    SUITE.run::<World>();
}

#[test]
fn a_thousand_clients_losing_one_broker_do_not_reconnect_in_lock_step() {
    for seed in 0..3 {
        let most = storm::check(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        println!(
            "storm seed {seed}: at most {most} of {} attempts in 100 ms",
            storm::CLIENTS
        );
    }
}
