//! No synchronised retry storm: many clients that lose the same broker at the same instant come
//! back spread out, each with its own jitter seed.
//!
//! The bound: with the default delays (1 s to 60 s) the first attempt falls uniformly in
//! [1 s, 1.5 s], a 500 ms window, so a 100 ms window expects a fifth of the clients (200 of
//! 1,000, give or take 13); later rounds spread wider. No 100 ms window may hold more than 30%
//! of them ([`MAX_SHARE`]): about eight standard deviations above the expectation, so no seed
//! fails by chance, and far below the 100% of clients in lock step. Seeds 0..3 measure 217 to
//! 230.

use std::time::{Duration, Instant};

use sansmq_driver::supervisor::{Action, Supervisor};
use sansmq_driver::{ConnectOptions, Error};

use crate::invariants::Violation;
use crate::world::Waiters;

/// Simulated clients.
pub(crate) const CLIENTS: u64 = 1_000;
/// The window, and the largest share of the clients' attempts one window may hold.
const WINDOW: Duration = Duration::from_millis(100);
const MAX_SHARE: f64 = 0.3;
/// How long the broker stays down after the loss.
const DOWN_FOR: Duration = Duration::from_secs(120);

/// Every attempt of `CLIENTS` clients (jitter seeds from `seed`) after they lose the broker at
/// the same instant, as offsets from it; the broker stays down, so each attempt fails at once.
pub(crate) fn attempts(seed: u64) -> Vec<Duration> {
    #[allow(clippy::disallowed_methods)] // the virtual clock's origin
    let start = Instant::now();
    let lost = start + Duration::from_secs(10);
    let mut attempts = Vec::new();
    for client in 0..CLIENTS {
        let options = ConnectOptions::new("tcp://broker.sim:1883", format!("storm-{client}"))
            .expect("valid options")
            .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(60));
        let mut sup = Supervisor::<Waiters>::new(options)
            .expect("supervisor")
            .with_jitter_seed(seed.wrapping_mul(CLIENTS).wrapping_add(client));
        sup.connect(start, 0).expect("connect accepted");
        sup.handle_opened(start);
        while let Some(bytes) = sup.poll_transmit() {
            let n = bytes.len();
            sup.handle_transmitted(start, n);
        }
        sup.handle_received(start, &[0x20, 0x02, 0x00, 0x00]);
        assert!(sup.is_connected(), "client {client} connected");
        sup.handle_closed(lost, None);
        while let Some(at) = sup.poll_timeout() {
            if at > lost + DOWN_FOR {
                break;
            }
            sup.handle_timeout(at);
            let opened =
                std::iter::from_fn(|| sup.poll_action()).any(|a| matches!(a, Action::Open { .. }));
            assert!(
                opened,
                "client {client}: the timer at {at:?} opened nothing"
            );
            attempts.push(at - lost);
            let refused = Error::Io {
                context: "connecting to tcp://broker.sim:1883".into(),
                reason: "connection refused".into(),
            };
            sup.handle_open_failed(at, refused);
            while sup.poll_event().is_some() {}
        }
    }
    attempts
}

/// The most attempts in any `WINDOW`, checked against the bound.
pub(crate) fn check(seed: u64) -> Result<usize, Violation> {
    let mut attempts = attempts(seed);
    attempts.sort_unstable();
    let mut most = 0;
    let mut from = 0;
    for to in 0..attempts.len() {
        while attempts[to] - attempts[from] >= WINDOW {
            from += 1;
        }
        most = most.max(to - from + 1);
    }
    let limit = (CLIENTS as f64 * MAX_SHARE) as usize;
    if most > limit {
        return Err(format!(
            "retry storm: {most} of {CLIENTS} clients' attempts fell in one {WINDOW:?} window \
             (limit {limit})"
        ));
    }
    Ok(most)
}
