//! Durations from the command line far beyond what the clock can count (`u64::MAX` seconds) mean
//! "no limit": they must not panic with "overflow when adding duration to instant" (exit 101).

mod common;

use common::{BrokerProcess, Subscriber, run};

const FOREVER: &str = "18446744073709551615";

#[test]
fn sub_with_a_timeout_beyond_the_clock_waits_for_its_messages() {
    let broker = BrokerProcess::start(&[]);
    let port = broker.port();
    let sub = Subscriber::start(&[
        "sub", "-p", port, "-t", "far/away", "-W", FOREVER, "-k", "65535", "-C", "1",
    ]);
    let published = run(&["pub", "-p", port, "-t", "far/away", "-m", "still here"]);
    assert_eq!(published.code, Some(0), "{published:#?}");
    let received = sub.finish();
    assert_eq!(received.code, Some(0), "{received:#?}");
    assert_eq!(received.stdout, "still here\n");
}

#[test]
fn demo_with_a_wait_beyond_the_clock_runs_to_its_summary() {
    let outcome = run(&["demo", "--count", "1", "--wait", FOREVER]);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(
        outcome.stdout.contains("every message sent was received"),
        "{outcome:#?}"
    );
}
