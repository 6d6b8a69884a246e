//! `sansmq broker`'s limit flags reach the broker.

mod common;

use common::{BrokerProcess, run};

#[test]
fn max_sessions_flag_refuses_a_connect_past_it() {
    let broker = BrokerProcess::start(&["--max-sessions", "1"]);
    let port = broker.port();
    // A persistent session stays after its client leaves, and fills the broker.
    let first = run(&[
        "pub", "-p", port, "-i", "keeper", "-c", "-t", "t", "-m", "x", "-q", "1",
    ]);
    assert_eq!(first.code, Some(0), "{first:#?}");
    let second = run(&["pub", "-p", port, "-i", "other", "-t", "t", "-m", "x"]);
    assert_ne!(second.code, Some(0), "{second:#?}");
    let error = second.error_line().to_lowercase();
    assert!(error.contains("unavailable"), "{error}");
}
