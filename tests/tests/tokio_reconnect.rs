//! The async client reports the session the broker kept on every (re)connection, resolves a
//! publish awaited across a cut, refuses publishes past a full offline queue with a clear error,
//! and asks for credentials on every connect. Keep-alive, reconnecting after a cut and subscribing
//! again are scenarios of `scenarios.rs`, run for every driver.

mod common;
mod common_async;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sansmq::CommandError;
use sansmq::packet::{ConnectReturnCode, QoS};
use sansmq_e2e::{FaultProxy, Mosquitto};
use sansmq_tokio::{Client, Credentials, Error};

use common::{PATIENCE, options};
use common_async::{connected, lost};

const RECONNECT: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));

/// What the driver-neutral scenarios do not see: `Connected` and `Reconnected` carry the broker's
/// session-present flag and the URI connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_events_carry_session_present_and_the_uri() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let reconnecting =
        |client_id| options(&proxy.url(), client_id).automatic_reconnect(RECONNECT.0, RECONNECT.1);
    let (kept, mut kept_events) = Client::new(reconnecting("kept").clean_session(false)).unwrap();
    let (fresh, mut fresh_events) = Client::new(reconnecting("fresh")).unwrap();
    assert!(!kept.connect().await.unwrap(), "no session yet");
    assert!(!fresh.connect().await.unwrap());
    for events in [&mut kept_events, &mut fresh_events] {
        assert_eq!(
            connected(events, PATIENCE).await,
            Some((false, false, proxy.url()))
        );
    }
    assert_eq!(proxy.cut(), 2);
    assert_eq!(
        connected(&mut kept_events, PATIENCE).await,
        Some((true, true, proxy.url())),
        "Reconnected to the session the broker kept"
    );
    assert_eq!(
        connected(&mut fresh_events, PATIENCE).await,
        Some((true, false, proxy.url())),
        "Reconnected without a session"
    );
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
