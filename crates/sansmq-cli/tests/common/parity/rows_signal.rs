//! The signal rows: SIGTERM and SIGINT to a running `sub` and to a `pub -l` waiting on stdin,
//! each with a will, so the watcher sees whether the broker published it.

use super::row::{Row, publish, subscribe};

/// mosquitto_pub has no signal handler.
const PUB_SIGNALS: &str = "mosquitto_pub has no signal handler: the signal kills it and the \
                           broker publishes its will; sansmq pub -l sends DISCONNECT and exits 0, \
                           as mosquitto_sub does (issue 19)";

pub(crate) fn rows() -> Vec<Row> {
    let sub_with_will = "{b} -t {t} -i {id} -v --will-topic {t}/will --will-payload gone";
    let pub_with_will = "{b} -t {t} -i {id} -l --will-topic {t}/will --will-payload gone";
    let mut rows = Vec::new();
    let names = [
        (
            "TERM",
            "sub: SIGTERM after SUBACK, no will",
            "pub -l: SIGTERM while waiting for stdin",
        ),
        (
            "INT",
            "sub: SIGINT after SUBACK, no will",
            "pub -l: SIGINT while waiting for stdin",
        ),
    ];
    for (signal, sub_name, pub_name) in names {
        rows.push(
            subscribe(sub_name, sub_with_will)
                .feed("{t}", "before the signal", 0)
                .signal(signal),
        );
        rows.push(
            publish(pub_name, pub_with_will)
                .stdin("first\n")
                .keep_stdin_open()
                .ready_when_logged("Received PUBLISH from {id}")
                .signal(signal)
                .differs(PUB_SIGNALS),
        );
    }
    rows
}
