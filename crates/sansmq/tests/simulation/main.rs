//! Deterministic simulation: the client core against a model broker built on our codec, on a
//! virtual clock, over a seeded network that cuts connections anywhere (mid-packet too, both
//! ways), delays traffic, restarts the broker with or without the session, restarts the
//! application from its session snapshot, and (when the client records its session) crashes it,
//! restarting it from the records its session store had made durable (`store.rs`). Every seed
//! checks the guarantees in `invariants.rs`.
//!
//! - `cargo test -p sansmq --test simulation`: seeds 0..1000 (`SANSMQ_SIM_START`,
//!   `SANSMQ_SIM_SEEDS` change the range; `cargo xtask sim --seeds N` runs many in release).
//! - `SANSMQ_SIM_SEED=1234 cargo test -p sansmq --test simulation -- --nocapture`: replays one
//!   seed and prints its scenario and trace if it fails (`SANSMQ_SIM_TRACE=1`: always).

mod ack_order;
mod invariants;
mod link;
mod model_broker;
mod scenario;
mod store;
mod world;

use std::fmt::Debug;

use sansmq_sim_support::{SeedWorld, Stats, Suite};

use world::World;

const SUITE: Suite = Suite {
    name: "simulation",
    env: "SANSMQ_SIM",
    default_seeds: 1000,
    command: "cargo test -p sansmq --test simulation -- --nocapture",
    maxima: &[("steps, most in one seed", "steps")],
};

impl SeedWorld for World {
    fn new(seed: u64, trace: bool) -> Self {
        World::new(seed, trace)
    }

    fn run(&mut self) -> Result<(), String> {
        World::run(self)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn replay_report(&self) -> (&dyn Debug, &[String]) {
        (&self.sc, self.trace.as_deref().unwrap_or_default())
    }
}

#[test]
fn simulation() {
    SUITE.run::<World>();
}
