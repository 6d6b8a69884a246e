//! What `pub` and `sub` say when the connection is lost right after a PUBLISH or SUBSCRIBE. Only
//! a close the client diagnosed as a refusal of the topic may blame permissions (that case is
//! `apsaramq_closing_the_connection_after_a_forbidden_*` in `local_broker.rs`): a broker that
//! resets, goes down, or sends garbage is no refusal.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq::packet::Packet;
use sansmq_e2e::ScriptedBroker;

use common::{PATIENCE, run};

/// `127.0.0.1` and the port of `broker`.
fn address(broker: &ScriptedBroker) -> (String, String) {
    let url = broker.url();
    let (host, port) = url
        .trim_start_matches("tcp://")
        .rsplit_once(':')
        .expect("host:port");
    (host.to_owned(), port.to_owned())
}

#[test]
fn pub_to_a_broker_that_resets_after_the_publish_does_not_blame_permissions() {
    let broker = ScriptedBroker::start(|mut peer| {
        peer.accept();
        if let Some(Packet::Publish(_)) = peer.recv() {
            peer.reset(); // as a crashing broker, or one killed with unread data, does
        }
    });
    let (host, port) = address(&broker);
    let outcome = run(&[
        "pub", "-h", &host, "-p", &port, "-t", "t", "-m", "x", "-q", "1",
    ]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(
        !line.contains("may not allow"),
        "a reset is no refusal: {line}"
    );
    assert!(line.contains("reset"), "{line}");
    assert!(
        line.contains("the broker closed the connection, or is down or unreachable"),
        "{line}"
    );
}

#[test]
fn pub_to_a_broker_that_closes_after_the_publish_and_goes_down_says_it_is_down() {
    let (published, publish_seen) = mpsc::channel();
    let broker = ScriptedBroker::start(move |mut peer| {
        peer.accept();
        if let Some(Packet::Publish(_)) = peer.recv() {
            let _ = published.send(());
            // The test stops listening meanwhile: the broker is going down.
            thread::sleep(Duration::from_millis(300));
            peer.close();
        }
    });
    let (host, port) = address(&broker);
    let publisher = thread::spawn(move || {
        run(&[
            "pub", "-h", &host, "-p", &port, "-t", "t", "-m", "x", "-q", "1",
        ])
    });
    publish_seen.recv_timeout(PATIENCE).expect("the PUBLISH");
    drop(broker);
    let outcome = publisher.join().expect("the publisher ran");
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(
        !line.contains("may not allow"),
        "a broker going down: {line}"
    );
    assert!(line.contains("probably down or unreachable"), "{line}");
}

#[test]
fn sub_names_garbage_before_suback_at_once_and_does_not_blame_permissions() {
    let broker = ScriptedBroker::start(|mut peer| {
        peer.accept();
        if let Some(Packet::Subscribe(_)) = peer.recv() {
            // Packet type 0 is reserved (MQTT 2.2.1).
            peer.send_raw(&[0x00, 0x00]);
            while !peer.is_closed() {
                let _ = peer.recv();
            }
        }
    });
    let (host, port) = address(&broker);
    let outcome = run(&["sub", "-h", &host, "-p", &port, "-t", "t"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let line = outcome.error_line();
    assert!(
        !line.contains("may not allow"),
        "garbage is no refusal: {line}"
    );
    assert!(line.contains("subscribing to [\"t\"]"), "{line}");
    assert!(line.to_lowercase().contains("reserved"), "{line}");
    // At once, not after reconnecting for the subscribe's whole wait.
    assert!(outcome.elapsed < Duration::from_secs(5), "{outcome:#?}");
}
