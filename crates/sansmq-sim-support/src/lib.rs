//! What the deterministic simulations of this workspace share (`crates/sansmq/tests/simulation`
//! and `crates/sansmq-driver/tests/lifecycle_simulation`): a [`Suite`] sweeps a range of seeds
//! over every core or replays one seed with its trace, driving the simulation's
//! [`SeedWorld`], and [`Rng`] is the one stream of random numbers a seed draws from.
//!
//! Each simulation names its own environment variables and its replay command in its [`Suite`];
//! this crate holds no simulation of its own and depends on nothing beyond `std`, so a seed's
//! run changes only when the simulation does.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod panic_capture;
mod rng;
mod suite;

pub use rng::Rng;
pub use suite::{SeedWorld, Stats, Suite};
