//! mosquitto_sub's options beyond printing, against a real mosquitto: -W before CONNACK, signals
//! before CONNACK, --max-packet-size, --remove-retained, --retained-only, -U and -E; and pub's
//! --repeat. Where sansmq does better than mosquitto (a live message --retained-only stops at is
//! not lost), the test says so.

mod common;

use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use sansmq_e2e::Mosquitto;

use common::{PATIENCE, Subscriber, run, run_with_input, sansmq};

fn publish(port: &str, args: &[&str]) {
    let mut all = vec!["pub", "-p", port];
    all.extend_from_slice(args);
    let outcome = run(&all);
    assert_eq!(outcome.code, Some(0), "{all:?}: {outcome:#?}");
}

/// A listener that completes TCP handshakes (the kernel's backlog does) and never answers.
fn silent_broker() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().expect("bound").port().to_string();
    (listener, port)
}

#[test]
fn w_bounds_connecting_to_a_broker_that_never_answers_and_exits_255_as_mosquitto_sub() {
    let (_listener, port) = silent_broker();
    let outcome = run(&["sub", "-h", "127.0.0.1", "-p", &port, "-t", "t", "-W", "2"]);
    assert_eq!(outcome.code, Some(255), "{outcome:#?}");
    assert!(outcome.elapsed >= Duration::from_secs(2), "{outcome:#?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "{outcome:#?}");
    assert!(
        outcome
            .error_line()
            .contains("before the broker answered CONNECT"),
        "{outcome:#?}"
    );

    let mosquitto = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "t", "-W", "2"])
        .output()
        .expect("mosquitto_sub runs");
    assert_eq!(mosquitto.status.code(), outcome.code);
}

#[test]
fn a_signal_before_connack_exits_255_as_mosquitto_sub() {
    let (_listener, port) = silent_broker();
    let child = sansmq(&["sub", "-h", "127.0.0.1", "-p", &port, "-t", "t"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the sansmq binary runs");
    thread::sleep(Duration::from_millis(500));
    let killed = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait_with_output().expect("sub ends").status;
    assert_eq!(status.code(), Some(255), "{status:?}");
}

#[test]
fn a_message_over_max_packet_size_ends_sub_with_an_error_instead_of_a_reconnect_loop() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let big = vec![b'a'; 2 * 1024 * 1024];
    let kept = ["-c", "-i", "big-receiver", "-q", "1"];

    // A kept session subscribes, then a 2 MiB QoS 1 message waits for it.
    let mut args = vec!["sub", "-p", &port, "-t", "big", "-E"];
    args.extend_from_slice(&kept);
    assert_eq!(run(&args).code, Some(0));
    let published = run_with_input(
        sansmq(&["pub", "-p", &port, "-t", "big", "-q", "1", "-s"]),
        &big,
    );
    assert_eq!(published.code, Some(0), "{published:#?}");

    // With a small limit: one clear error, at once, rather than meeting the message again on
    // every reconnect.
    let mut args = vec!["sub", "-p", &port, "-t", "big", "--max-packet-size", "1000"];
    args.extend_from_slice(&kept);
    let refused = run(&args);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.elapsed < PATIENCE, "{refused:#?}");
    let line = refused.error_line();
    assert!(line.contains("--max-packet-size"), "{refused:#?}");
    assert!(!refused.stderr.contains("reconnecting"), "{refused:#?}");

    // By default sub takes what mosquitto_sub takes: the message is still there, and arrives.
    let mut args = vec!["sub", "-p", &port, "-t", "big", "-C", "1", "-W", "20"];
    args.extend_from_slice(&kept);
    let received = run(&args);
    assert_eq!(received.code, Some(0), "{}", received.stderr);
    assert_eq!(received.stdout.len(), big.len() + 1);
}

#[test]
fn remove_retained_clears_what_it_receives_except_what_t_filters_out() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    publish(&port, &["-t", "rr/a", "-m", "one", "-r"]);
    publish(&port, &["-t", "rr/b", "-m", "two", "-r"]);

    let cleared = run(&[
        "sub",
        "-p",
        &port,
        "-t",
        "rr/#",
        "--remove-retained",
        "-T",
        "rr/b",
        "-C",
        "1",
        "-v",
    ]);
    assert_eq!(cleared.code, Some(0), "{cleared:#?}");
    assert_eq!(cleared.stdout, "rr/a one\n");

    // Only rr/b's retained message is left.
    let left = run(&["sub", "-p", &port, "-t", "rr/#", "-v", "-W", "1"]);
    assert_eq!(left.code, Some(27), "{left:#?}");
    assert_eq!(left.stdout, "rr/b two\n");
}

#[test]
fn retained_only_stops_at_the_first_live_message_and_a_kept_session_still_gets_it() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let kept = ["-c", "-i", "retained-only", "-q", "1"];
    publish(&port, &["-t", "ro/old", "-m", "stale", "-r", "-q", "1"]);

    let mut args = vec!["sub", "-p", &port, "-t", "ro/#", "-v", "--retained-only"];
    args.extend_from_slice(&kept);
    let sub = Subscriber::start(&args);
    publish(&port, &["-t", "ro/new", "-m", "live", "-q", "1"]);
    let outcome = sub.finish();
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert_eq!(outcome.stdout, "ro/old stale\n");

    // mosquitto_sub acknowledges the live message it drops; sansmq leaves it to the session.
    let mut args = vec![
        "sub", "-p", &port, "-t", "ro/#", "-v", "-R", "-C", "1", "-W", "10",
    ];
    args.extend_from_slice(&kept);
    let again = run(&args);
    assert_eq!(again.code, Some(0), "{again:#?}");
    assert_eq!(again.stdout, "ro/new live\n");
}

#[test]
fn u_ends_a_subscription_of_a_kept_session_and_e_exits_after_suback() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let kept = ["-c", "-i", "unsubscriber", "-q", "1"];

    let mut args = vec!["sub", "-p", &port, "-t", "u/old", "-E"];
    args.extend_from_slice(&kept);
    let subscribed = run(&args);
    assert_eq!(subscribed.code, Some(0), "{subscribed:#?}");
    assert_eq!(subscribed.stdout, "");

    let mut args = vec!["sub", "-p", &port, "-t", "u/new", "-U", "u/old", "-E"];
    args.extend_from_slice(&kept);
    assert_eq!(run(&args).code, Some(0));

    // Messages to the old filter no longer reach the session; the new filter's do.
    publish(&port, &["-t", "u/old", "-m", "dropped", "-q", "1"]);
    publish(&port, &["-t", "u/new", "-m", "kept", "-q", "1"]);
    let mut args = vec!["sub", "-p", &port, "-t", "u/new", "-v", "-W", "2"];
    args.extend_from_slice(&kept);
    let outcome = run(&args);
    assert_eq!(outcome.code, Some(27), "{outcome:#?}");
    assert_eq!(outcome.stdout, "u/new kept\n");
}

#[test]
fn repeat_publishes_the_message_count_times_waiting_the_delay_between() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let sub = Subscriber::start(&["sub", "-p", &port, "-t", "rep", "-C", "3"]);
    let outcome = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "rep",
        "-m",
        "again",
        "-q",
        "1",
        "--repeat",
        "3",
        "--repeat-delay",
        "0.4",
    ]);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    // Two delays of 0.4 s lie between three messages.
    assert!(
        outcome.elapsed >= Duration::from_millis(800),
        "{outcome:#?}"
    );
    assert_eq!(sub.finish().stdout, "again\nagain\nagain\n");
}

#[test]
fn mqtt5_properties_after_which_v311_is_asked_for_are_refused_with_what_to_do() {
    let outcome = run(&[
        "pub",
        "-t",
        "t",
        "-m",
        "x",
        "-D",
        "publish",
        "user-property",
        "name",
        "value",
        "-V",
        "311",
    ]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome
            .error_line()
            .contains("-V mqttv311 after -D: MQTT 3.1.x has no properties; drop -V"),
        "{outcome:#?}"
    );
}
