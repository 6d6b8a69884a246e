//! `sansmq broker --max-topic-levels/--max-topic-length`: the flags reach the broker, which
//! refuses filters past them with SUBACK 0x80.

mod common;

use common::{BrokerProcess, run};

#[test]
fn filters_past_the_topic_limit_flags_are_refused() {
    let broker = BrokerProcess::start(&["--max-topic-levels", "2", "--max-topic-length", "8"]);
    let port = broker.port();
    for filter in ["a/b/c", "abcdefghi"] {
        let refused = run(&["sub", "-p", port, "-t", filter, "-C", "1", "-W", "5"]);
        assert_eq!(refused.code, Some(1), "{refused:#?}");
        assert!(
            refused
                .error_line()
                .contains("(SUBACK 0x80 (Unspecified error))"),
            "{refused:#?}"
        );
    }
    // Within the limits: subscribed, then the wait for a message times out (-W: exit 27).
    let within = run(&["sub", "-p", port, "-t", "a/#", "-C", "1", "-W", "1"]);
    assert_eq!(within.code, Some(27), "{within:#?}");
}
