//! The async client reconnects by itself after a cut and subscribes again, notices a dead link
//! with keep-alive, refuses publishes past a full offline queue with a clear error, and asks for
//! credentials on every connect.

mod common;
mod common_async;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sansmq::packet::{ConnectReturnCode, QoS};
use sansmq::{CommandError, DisconnectReason};
use sansmq_e2e::{FaultProxy, Mosquitto};
use sansmq_tokio::{Client, Credentials, Error};

use common::{PATIENCE, options};
use common_async::{connected, lost, message};

const RECONNECT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_cut_and_subscribes_again() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    // A clean session: the broker forgets the subscription at the cut.
    let (client, mut events) =
        Client::new(options(&proxy.url(), "phoenix").automatic_reconnect(RECONNECT.0, RECONNECT.1))
            .unwrap();
    client.connect().await.unwrap();
    assert_eq!(
        connected(&mut events, PATIENCE).await,
        Some((false, false, proxy.url()))
    );
    client
        .subscribe(&[("phoenix/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    assert_eq!(proxy.cut(), 1);
    let cause = lost(&mut events, PATIENCE).await.expect("ConnectionLost");
    assert!(
        matches!(cause, Error::Io { .. } | Error::ConnectionLost(_)),
        "{cause:?}"
    );
    assert_eq!(
        connected(&mut events, PATIENCE).await,
        Some((true, false, proxy.url())),
        "Reconnected without a session"
    );
    // The subscription is back: another client's message arrives.
    let (other, _other_events) = Client::new(options(&broker.url(), "other")).unwrap();
    other.connect().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let got = loop {
        other
            .publish("phoenix/1", "risen", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        if let Some(got) = message(&mut events, Duration::from_millis(200)).await {
            break got;
        }
        assert!(Instant::now() < deadline, "no message after the reconnect");
    };
    assert_eq!(&got.payload[..], b"risen");
    assert_eq!(proxy.connections_accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_awaited_across_a_cut_resolves_after_the_reconnect() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let (client, _events) = Client::new(
        options(&proxy.url(), "patient")
            .clean_session(false)
            .automatic_reconnect(RECONNECT.0, RECONNECT.1),
    )
    .unwrap();
    client.connect().await.unwrap();
    proxy.set_black_hole(true);
    let pending = client
        .publish_later("patient", "through", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set_black_hole(false);
    proxy.cut();
    tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("resolves after the reconnect")
        .unwrap();
    assert!(
        broker.log().contains("Received PUBLISH from patient (d1"),
        "{}",
        broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_detects_a_black_holed_link_within_one_and_a_half_intervals() {
    const KEEP_ALIVE: Duration = Duration::from_secs(2);
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let (client, mut events) =
        Client::new(options(&proxy.url(), "holed").keep_alive(KEEP_ALIVE)).unwrap();
    client.connect().await.unwrap();
    proxy.set_black_hole(true);
    let start = Instant::now();
    let cause = lost(&mut events, PATIENCE).await.expect("ConnectionLost");
    let took = start.elapsed();
    println!("keep-alive {KEEP_ALIVE:?}: black hole detected after {took:?}");
    assert!(
        matches!(
            cause,
            Error::ConnectionLost(DisconnectReason::KeepAliveTimeout)
        ),
        "{cause:?}"
    );
    assert!(
        took <= KEEP_ALIVE.mul_f64(1.5) + Duration::from_millis(250),
        "{took:?}"
    );
    assert!(!client.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_offline_queue_is_a_clear_error_and_the_queue_goes_out_on_reconnect() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let (client, mut events) = Client::new(
        options(&proxy.url(), "offline")
            .offline_queue(5)
            .automatic_reconnect(Duration::from_millis(1500), Duration::from_secs(3)),
    )
    .unwrap();
    client.connect().await.unwrap();
    proxy.cut();
    lost(&mut events, PATIENCE).await.expect("ConnectionLost");
    let mut queued = Vec::new();
    for n in 0..5 {
        queued.push(
            client
                .publish_later("offline", format!("{n}"), QoS::AtLeastOnce, false)
                .await
                .unwrap(),
        );
    }
    let refused = client
        .publish("offline", "one too many", QoS::AtLeastOnce, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Command(CommandError::QueueFull { max_queued: 5 })
        ),
        "{refused:?}"
    );
    println!("offline queue full: {refused}");
    for handle in queued {
        tokio::time::timeout(PATIENCE, handle)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_asked_for_on_every_connect_and_a_refusal_is_typed() {
    let broker = Mosquitto::builder().user("alice", "s3cret").start();
    let proxy = FaultProxy::start(broker.addr());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let (client, mut events) = Client::new(
        options(&proxy.url(), "signer")
            .automatic_reconnect(RECONNECT.0, RECONNECT.1)
            .credentials_provider(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(Credentials {
                    username: "alice".into(),
                    password: Some("s3cret".into()),
                })
            }),
    )
    .unwrap();
    client.connect().await.unwrap();
    proxy.cut();
    assert!(connected(&mut events, PATIENCE).await.is_some());
    assert!(
        connected(&mut events, PATIENCE)
            .await
            .is_some_and(|(again, ..)| again)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (wrong, _events) =
        Client::new(options(&broker.url(), "intruder").credentials("alice", "guess")).unwrap();
    let error = wrong.connect().await.unwrap_err();
    assert!(
        matches!(error, Error::Refused(ConnectReturnCode::NotAuthorized)),
        "{error:?}"
    );
}
