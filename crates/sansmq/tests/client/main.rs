//! The client session's behaviours, one named test each, against a scripted broker on a virtual
//! clock.

#[path = "../util/mod.rs"]
mod util;

mod connect;
mod disconnect;
mod extreme_durations;
mod incoming;
mod keep_alive;
mod mqtt5;
mod outgoing;
mod peer_faults;
mod peer_stops_reading;
mod session_records;
mod session_resume;
mod subscribe;
