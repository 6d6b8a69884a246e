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
//! - `SANSMQ_SIM_PROTOCOL`: `both` (the default: every fourth seed is an MQTT 5 session, the
//!   others draw exactly what they drew before MQTT 5), `5` (every seed MQTT 5) or `311` (none).
//!   A failing MQTT 5 seed says so, and is replayed with `SANSMQ_SIM_PROTOCOL=5`.

mod ack_order;
mod invariants;
mod link;
mod model_broker;
mod scenario;
mod store;
mod world;

use std::fmt::Debug;

use sansmq_sim_support::{SeedWorld, Stats, Suite};

use world::{KnownBugs, World};

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

/// Replays MQTT 5 seeds without stepping around a known client bug: each must pass.
fn replay_v5_strict(seeds: &[u64], known_bugs: KnownBugs) {
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| {
            let mut world = World::with(seed, true, known_bugs, false);
            world.run().err().map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// MQTT 5, manual acks: the broker resumes a session and re-sends its QoS 1 messages in flight
/// (DUP=1) while the PUBACKs the client wrote for them on the new connection are on their way;
/// the client takes each copy for a new message, counts it against our Receive Maximum until the
/// application acknowledges it again, and when the broker (which got the PUBACKs, so it is
/// within the limit) sends a new message, ends the connection with 0x93
/// (`ProtocolViolation::ReceiveMaximumExceeded`).
#[test]
#[ignore = "client bug: Receive Maximum counts re-sent copies of messages already acknowledged"]
fn v5_receive_maximum_and_resent_copies_of_acknowledged_messages() {
    replay_v5_strict(
        &[9, 112, 121, 165, 204],
        KnownBugs {
            receive_maximum_copies: false,
            ..KnownBugs::WORK_AROUND
        },
    );
}

/// MQTT 5, Message Expiry: when the client sends a queued message with what is left of its
/// Message Expiry Interval, its in-flight copy carries the new interval, but the session records
/// (`Accepted`, then `Sent`) still hold the published one: the store's log replays to a session
/// that differs from the client's snapshot, and after a crash the message is re-sent with its
/// whole interval again.
#[test]
#[ignore = "client bug: the session records miss the Message Expiry Interval rewritten at send"]
fn v5_session_records_and_the_message_expiry_left_at_send() {
    replay_v5_strict(
        &[250, 552],
        KnownBugs {
            expiry_records: false,
            ..KnownBugs::WORK_AROUND
        },
    );
}

/// MQTT 5, the server's Maximum QoS 1 or Maximum Packet Size: `publish` at QoS 2, or of a message
/// above the size limit, returns `Ok` while the client does not know the server's terms (between
/// `connect` and CONNACK, which resets what it knew, or in a client restored from a snapshot
/// before it connects), and once CONNACK states them the client sends the PUBLISH anyway
/// (MQTT-3.2.2-11, MQTT-3.2.2-15; seeds 5 to 303 break the first, 13, 65 and 249 the second); a
/// real server disconnects with 0x9B or 0x95.
#[test]
#[ignore = "client bug: a message taken before CONNACK is sent though the server's terms refuse it"]
fn v5_message_taken_before_connack_is_sent_against_the_server_terms() {
    replay_v5_strict(
        &[5, 66, 162, 284, 303, 13, 65, 249],
        KnownBugs {
            qos2_before_connack: false,
            ..KnownBugs::WORK_AROUND
        },
    );
}

/// MQTT 5, the server's Maximum Packet Size: `publish` measures a message without the Topic
/// Alias (3 bytes) the session adds when it sends the message with its topic, so a message that
/// fits within 3 bytes of the server's limit is taken and then sent above it (MQTT-3.2.2-15).
#[test]
#[ignore = "client bug: the Topic Alias is not counted in the size publish checks"]
fn v5_topic_alias_not_counted_against_the_maximum_packet_size() {
    replay_v5_strict(
        &[27, 45, 49, 62, 150],
        KnownBugs {
            alias_size: false,
            ..KnownBugs::WORK_AROUND
        },
    );
}
