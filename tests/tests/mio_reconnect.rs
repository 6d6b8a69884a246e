//! The mio client keeps a persistent session across a reconnect, queues publishes while offline,
//! and asks for credentials on every connect. Keep-alive, reconnecting after a cut and subscribing
//! again are scenarios of `scenarios.rs`, run for every driver.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sansmq::CommandError;
use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto, wait_until};
use sansmq_mio::{Client, Credentials, Error};

use common::{PATIENCE, Recorder, options};

/// Reconnect quickly: these tests wait for it.
const RECONNECT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));

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
