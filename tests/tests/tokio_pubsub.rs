//! The async client's own ways to publish and receive through mosquitto: publish futures resolve
//! at the broker's acknowledgement, many can be in flight from one task, dropping some loses
//! nothing, and a task that publishes and consumes through a tiny stream never deadlocks. Every
//! QoS, in order, is a scenario of `scenarios.rs`, run for every driver.

mod common;
mod common_async;

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_tokio::{Client, Error, Event, PublishHandle};
use tokio::time::timeout;

use common::{PATIENCE, Tally, options, seq_payload};
use common_async::message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_stream_takes_its_messages_and_events_get_the_rest() {
    let broker = Mosquitto::start();
    let (client, mut events) = Client::new(options(&broker.url(), "routes")).unwrap();
    client.connect().await.unwrap();
    let mut alarms = client
        .subscribe_stream("alarms/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(alarms.granted_qos(), QoS::AtLeastOnce);
    client
        .subscribe(&[("status/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    client
        .publish("alarms/fire", "!", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    client
        .publish("status/ok", "fine", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let alarm = timeout(PATIENCE, alarms.recv()).await.unwrap().unwrap();
    assert_eq!(alarm.topic.as_str(), "alarms/fire");
    let status = message(&mut events, PATIENCE).await.unwrap();
    assert_eq!(status.topic.as_str(), "status/ok");
    // Unsubscribing ends the stream.
    client.unsubscribe(&["alarms/#"]).await.unwrap();
    assert!(timeout(PATIENCE, alarms.recv()).await.unwrap().is_none());
}

/// The regression this crate exists for: rumqttc's event loop must be polled for a publish to
/// complete, so a task that awaits a publish while its incoming channel is full waits forever.
/// Here the stream holds one event, the task publishes 200 QoS 1 messages to its own subscription
/// and awaits each without reading a single message: every PUBACK sits behind unread messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_publishing_and_consuming_through_a_tiny_stream_never_deadlocks() {
    const N: u32 = 200;
    let broker = Mosquitto::start();
    let (client, mut events) = Client::builder(options(&broker.url(), "selfish"))
        .event_capacity(1)
        .command_capacity(1)
        .build()
        .unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("echo", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let published = timeout(PATIENCE, async {
        for n in 0..N {
            client
                .publish("echo", seq_payload(n), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
    })
    .await;
    assert!(published.is_ok(), "publishing while not consuming hung");
    // Now consume: every message is there, in order, once.
    let tally = Tally::new(N as usize);
    while tally.distinct() < N as usize {
        let got = message(&mut events, PATIENCE).await.expect("every message");
        tally.record(&got.payload);
    }
    let (distinct, total, out_of_order, strangers) = tally.summary();
    assert_eq!(
        (distinct, total, out_of_order, strangers),
        (N as usize, N as usize, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_publishes_all_resolve() {
    let broker = Mosquitto::start();
    let (client, mut events) = Client::new(options(&broker.url(), "crowd")).unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("crowd", QoS::ExactlyOnce)])
        .await
        .unwrap();
    let tasks: Vec<_> = (0..1000u32)
        .map(|n| {
            let client = client.clone();
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][n as usize % 3];
            tokio::spawn(async move { client.publish("crowd", seq_payload(n), qos, false).await })
        })
        .collect();
    let results = timeout(PATIENCE, async {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    })
    .await
    .expect("every publish resolves");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let tally = Tally::new(1000);
    while tally.distinct() < 1000 {
        let got = message(&mut events, PATIENCE).await.expect("every message");
        tally.record(&got.payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_half_the_publish_futures_loses_nothing_and_the_client_goes_on() {
    const N: u32 = 1000;
    let broker = Mosquitto::start();
    let (client, mut events) = Client::new(options(&broker.url(), "fickle")).unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("fickle", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let mut handles: Vec<(u32, PublishHandle)> = Vec::new();
    for n in 0..N {
        let handle = client
            .publish_later("fickle", seq_payload(n), QoS::AtLeastOnce, false)
            .await
            .unwrap();
        handles.push((n, handle));
    }
    // Drop every odd handle while its message is still in flight; await the others.
    let mut acknowledged = Vec::new();
    for (n, handle) in handles {
        if n % 2 == 1 {
            drop(handle);
        } else {
            timeout(PATIENCE, handle).await.unwrap().unwrap();
            acknowledged.push(n);
        }
    }
    // Futures of `publish` itself, cancelled midway by a timeout that fires at once.
    for n in N..N + 50 {
        let _ = timeout(
            Duration::ZERO,
            client.publish("fickle", seq_payload(n), QoS::AtLeastOnce, false),
        )
        .await;
    }
    // Still usable: a last message resolves and arrives after everything else.
    client
        .publish("fickle", seq_payload(N + 50), QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let tally = Tally::new(N as usize + 51);
    loop {
        let got = message(&mut events, PATIENCE).await.expect("messages");
        tally.record(&got.payload);
        if got.payload == seq_payload(N + 50) {
            break;
        }
    }
    // Every message whose handle was dropped went out too, and every acknowledged one arrived.
    let missing = tally.missing(usize::MAX);
    assert!(
        missing.iter().all(|&n| n >= N as usize),
        "lost: {:?}",
        &missing[..missing.len().min(20)]
    );
    assert!(
        acknowledged
            .iter()
            .all(|n| !missing.contains(&(*n as usize)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_waits_for_qos2_messages_in_flight() {
    let broker = Mosquitto::start();
    let (subscriber, mut events) = Client::new(options(&broker.url(), "sink")).unwrap();
    subscriber.connect().await.unwrap();
    subscriber
        .subscribe(&[("flush", QoS::ExactlyOnce)])
        .await
        .unwrap();
    let (publisher, _publisher_events) = Client::new(options(&broker.url(), "source")).unwrap();
    publisher.connect().await.unwrap();
    let mut handles = Vec::new();
    for n in 0..100 {
        handles.push(
            publisher
                .publish_later("flush", seq_payload(n), QoS::ExactlyOnce, false)
                .await
                .unwrap(),
        );
    }
    // Straight away, with up to 100 messages not yet through their four-packet exchange.
    publisher.disconnect(PATIENCE).await.unwrap();
    for handle in handles {
        handle.await.expect("acknowledged before DISCONNECT");
    }
    let tally = Tally::new(100);
    while tally.distinct() < 100 {
        let got = message(&mut events, PATIENCE).await.expect("every message");
        tally.record(&got.payload);
    }
    assert_eq!(tally.summary(), (100, 100, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_publish_fails_on_a_full_channel_and_publish_waits() {
    let broker = Mosquitto::start();
    // One command slot, a queue of one behind a window of one.
    let (client, _events) = Client::builder(
        options(&broker.url(), "narrow")
            .max_inflight(1)
            .offline_queue(1),
    )
    .command_capacity(1)
    .build()
    .unwrap();
    client.connect().await.unwrap();
    let mut handles = Vec::new();
    let mut refused = 0;
    for n in 0..200 {
        match client.try_publish("narrow", seq_payload(n), QoS::AtLeastOnce, false) {
            Ok(handle) => handles.push(handle),
            Err(Error::Command(sansmq::CommandError::QueueFull { max_queued })) => {
                assert_eq!(max_queued, 1);
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(refused > 0, "a burst must meet backpressure");
    for handle in handles {
        timeout(PATIENCE, handle).await.unwrap().unwrap();
    }
    // `publish` waits for room instead.
    for n in 0..50 {
        timeout(
            PATIENCE,
            client.publish("narrow", seq_payload(n), QoS::AtLeastOnce, false),
        )
        .await
        .unwrap()
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_acks_hold_the_puback_until_the_application_acks() {
    let broker = Mosquitto::start();
    let (client, mut events) =
        Client::builder(options(&broker.url(), "careful").clean_session(false))
            .manual_acks(true)
            .build()
            .unwrap();
    client.connect().await.unwrap();
    client
        .subscribe(&[("careful", QoS::AtLeastOnce)])
        .await
        .unwrap();
    client
        .publish("careful", "once", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let first = message(&mut events, PATIENCE).await.unwrap();
    assert!(!first.duplicate);
    // Not acknowledged: after a reconnect with the session kept, the broker sends it again (DUP),
    // and the client, knowing the application holds it, does not deliver it twice.
    client.disconnect(Duration::ZERO).await.unwrap();
    assert!(!broker.log().contains("Received PUBACK from careful"));
    assert!(client.connect().await.unwrap(), "session present");
    assert!(wait_until(PATIENCE, || broker
        .log()
        .contains("Sending PUBLISH to careful (d1")));
    let again = common_async::find(&mut events, Duration::from_millis(300), |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert!(again.is_none(), "delivered twice: {again:?}");
    // The application is done with it: now the PUBACK goes out.
    client.ack(&first).await.unwrap();
    assert!(wait_until(PATIENCE, || broker
        .log()
        .contains("Received PUBACK from careful")));
}
