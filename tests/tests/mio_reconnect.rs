//! The mio client notices dead links with keep-alive, reconnects by itself after a cut,
//! subscribes again, queues publishes while offline, and asks for credentials on every connect.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sansmq::packet::QoS;
use sansmq::{CommandError, DisconnectReason};
use sansmq_e2e::{FaultProxy, Mosquitto, wait_until};
use sansmq_mio::{Client, Credentials, Error, ResubscribePolicy};

use common::{PATIENCE, Recorder, options};

/// Reconnect quickly: these tests wait for it.
const RECONNECT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));

#[test]
fn keep_alive_detects_a_black_holed_link_within_one_and_a_half_intervals() {
    const KEEP_ALIVE: Duration = Duration::from_secs(2);
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let client = Client::new(options(&proxy.url(), "holed").keep_alive(KEEP_ALIVE)).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();

    proxy.set_black_hole(true);
    let start = Instant::now();
    let (cause, at) = events.lost(PATIENCE).expect("connection_lost");
    let took = at - start;
    println!("keep-alive {KEEP_ALIVE:?}: black hole detected after {took:?}");
    assert!(
        matches!(
            cause,
            Error::ConnectionLost(DisconnectReason::KeepAliveTimeout)
        ),
        "{cause:?}"
    );
    // PINGREQ goes out at most one interval after the last packet sent, and PINGRESP is due half
    // an interval later; plus 250 ms for the IO and callback threads to be scheduled on a busy
    // machine.
    assert!(
        took <= KEEP_ALIVE.mul_f64(1.5) + Duration::from_millis(250),
        "took {took:?}"
    );
    assert!(!client.is_connected());
}

#[test]
fn an_idle_healthy_link_survives_keep_alive() {
    let broker = Mosquitto::start();
    let client =
        Client::new(options(&broker.url(), "idle").keep_alive(Duration::from_secs(1))).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    // Three intervals: pings go out and their answers come back.
    assert!(events.lost(Duration::from_millis(3500)).is_none());
    assert!(client.is_connected());
    assert!(
        broker.log().matches("Received PINGREQ from idle").count() >= 2,
        "{}",
        broker.log()
    );
}

#[test]
fn reconnects_after_a_cut_and_subscribes_again() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    // A clean session: the broker forgets the subscription at the cut.
    let client =
        Client::new(options(&proxy.url(), "phoenix").automatic_reconnect(RECONNECT.0, RECONNECT.1))
            .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    assert_eq!(events.connected(PATIENCE), Some((false, proxy.url())));
    client
        .subscribe(&[("phoenix/#", QoS::AtLeastOnce)])
        .unwrap();

    assert_eq!(proxy.cut(), 1);
    let (cause, _) = events.lost(PATIENCE).expect("connection_lost");
    assert!(
        matches!(cause, Error::Io { .. } | Error::ConnectionLost(_)),
        "{cause:?}"
    );
    assert_eq!(
        events.connected(PATIENCE),
        Some((true, proxy.url())),
        "connect_complete(true, uri) after the reconnect"
    );
    assert!(client.is_connected());

    // The subscription is back: another client's message arrives.
    let other = Client::new(options(&broker.url(), "other")).unwrap();
    other.connect().unwrap();
    let deadline = Instant::now() + PATIENCE;
    // SUBSCRIBE went out right after CONNACK; retry until its SUBACK has surely been processed.
    let message = loop {
        other
            .publish("phoenix/1", "risen", QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
        if let Some(message) = events.message(Duration::from_millis(200)) {
            break message;
        }
        assert!(Instant::now() < deadline, "no message after the reconnect");
    };
    assert_eq!(&message.payload[..], b"risen");
    assert_eq!(proxy.connections_accepted(), 2);
}

#[test]
fn without_resubscribe_the_subscription_is_gone_after_a_reconnect() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let client = Client::new(
        options(&proxy.url(), "forgetful")
            .automatic_reconnect(RECONNECT.0, RECONNECT.1)
            .resubscribe(ResubscribePolicy::Never),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    client.subscribe(&[("lost/#", QoS::AtLeastOnce)]).unwrap();
    client.subscribe(&[("marker", QoS::AtLeastOnce)]).unwrap();
    proxy.cut();
    assert_eq!(events.connected(PATIENCE), Some((false, proxy.url())));
    assert!(events.connected(PATIENCE).is_some_and(|(again, _)| again));
    // The application subscribes to what it wants again, as in Paho's connectComplete.
    client.subscribe(&[("marker", QoS::AtLeastOnce)]).unwrap();
    client
        .publish("lost/1", "x", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    client
        .publish("marker", "y", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = events.message(PATIENCE).unwrap();
    assert_eq!(message.topic.as_str(), "marker", "{message:?}");
}

#[test]
fn a_persistent_session_keeps_messages_published_while_the_client_was_away() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let client = Client::new(
        options(&proxy.url(), "traveller")
            .clean_session(false)
            .automatic_reconnect(Duration::from_millis(1500), Duration::from_secs(3)),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    client.subscribe(&[("mail/#", QoS::AtLeastOnce)]).unwrap();
    assert!(events.connected(PATIENCE).is_some());

    proxy.cut();
    assert!(events.lost(PATIENCE).is_some());
    // While it waits to reconnect (at least 750 ms), mail arrives for it.
    let sender = Client::new(options(&broker.url(), "sender")).unwrap();
    sender.connect().unwrap();
    for n in 0..5 {
        sender
            .publish("mail/box", format!("letter {n}"), QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
    }
    assert_eq!(events.connected(PATIENCE), Some((true, proxy.url())));
    for n in 0..5 {
        let message = events.message(PATIENCE).expect("the queued mail");
        assert_eq!(message.payload, format!("letter {n}").as_bytes());
    }
}

#[test]
fn publishes_wait_offline_until_the_queue_is_full_then_fail_clearly() {
    const QUEUE: usize = 50;
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let client = Client::new(
        options(&proxy.url(), "offline")
            .offline_queue(QUEUE)
            .automatic_reconnect(RECONNECT.0, RECONNECT.1),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    assert!(events.connected(PATIENCE).is_some());
    let subscriber = Client::new(options(&broker.url(), "subscriber")).unwrap();
    subscriber.connect().unwrap();
    let messages = subscriber.messages(128);
    subscriber
        .subscribe(&[("queued", QoS::AtLeastOnce)])
        .unwrap();

    // The link is dark: keep-alive is 60 s, so the client still believes it is connected and
    // fills its window, then the queue.
    proxy.set_black_hole(true);
    let window = 20;
    let mut tokens = Vec::new();
    let error = loop {
        match client.publish("queued", tokens.len().to_string(), QoS::AtLeastOnce, false) {
            Ok(token) => tokens.push(token),
            Err(error) => break error,
        }
        assert!(tokens.len() <= window + QUEUE, "no backpressure");
    };
    assert_eq!(tokens.len(), window + QUEUE);
    assert!(
        matches!(error, Error::Command(CommandError::QueueFull { max_queued }) if max_queued == QUEUE),
        "{error:?}"
    );
    assert!(error.to_string().contains("full"), "{error}");

    // The link comes back, reset: the client reconnects and everything goes out, in order.
    proxy.set_black_hole(false);
    proxy.cut();
    for token in &tokens {
        token.wait().unwrap();
    }
    let mut received = Vec::new();
    while received.len() < tokens.len() {
        let message = messages
            .recv_timeout(PATIENCE)
            .expect("every queued message");
        let n: usize = std::str::from_utf8(&message.payload)
            .unwrap()
            .parse()
            .unwrap();
        // Tolerate a message twice (at least once), never a gap.
        if received.last().is_none_or(|&last| n > last) {
            received.push(n);
        }
    }
    assert_eq!(received, (0..tokens.len()).collect::<Vec<_>>());
}

#[test]
fn credentials_are_asked_for_on_every_connect() {
    let broker = Mosquitto::builder()
        .user("device", "token-1")
        .user("device2", "token-2")
        .start();
    let proxy = FaultProxy::start(broker.addr());
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = {
        let calls = Arc::clone(&calls);
        move || {
            // A token that changes on every connect, as ApsaraMQ's do.
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Credentials {
                username: if n == 1 { "device" } else { "device2" }.into(),
                password: Some(format!("token-{n}").into()),
            })
        }
    };
    let max_delay = Duration::from_secs(3);
    let client = Client::new(
        options(&proxy.url(), "rotating")
            .credentials_provider(provider)
            .automatic_reconnect(RECONNECT.0, max_delay),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(events.connected(PATIENCE), Some((false, proxy.url())));

    proxy.cut();
    assert_eq!(events.connected(PATIENCE), Some((true, proxy.url())));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The third token is wrong: the broker refuses, and the client backs off to its longest delay
    // instead of retrying at full speed.
    proxy.cut();
    assert!(events.lost(PATIENCE).is_some());
    assert!(wait_until(PATIENCE, || calls.load(Ordering::SeqCst) >= 3));
    assert!(wait_until(PATIENCE, || broker
        .log()
        .contains("not authorised")));
    let refused_at = calls.load(Ordering::SeqCst);
    // The next delay is drawn from the upper half of the longest one.
    std::thread::sleep(max_delay / 3);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        refused_at,
        "retried within a third of the longest delay"
    );
    assert!(!client.is_connected());
}
