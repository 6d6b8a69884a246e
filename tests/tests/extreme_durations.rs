//! `Duration::MAX` wherever a user gives a duration — connect timeout, time-to-wait, the drain of
//! `disconnect`, the automatic reconnect delays — neither panics ("overflow when adding duration
//! to instant") nor misbehaves: it means "no limit", in both clients, against a real mosquitto.

mod common;
mod common_async;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::Mosquitto;

use common::{PATIENCE, Recorder};

/// Runs `f` on a thread of its own and returns what it returns, failing the test if it takes longer
/// than `limit` (a client whose IO thread died would wait forever).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

/// Options where every duration a user can give is `Duration::MAX`.
fn unlimited(uri: &str, client_id: &str) -> sansmq_mio::ConnectOptions {
    sansmq_mio::ConnectOptions::new(uri, client_id)
        .unwrap()
        .connect_timeout(Duration::MAX)
        .time_to_wait(Duration::MAX)
        .automatic_reconnect(Duration::MAX, Duration::MAX)
}

#[test]
fn mio_client_takes_duration_max_everywhere() {
    use sansmq_mio::Client;

    let broker = Mosquitto::start();
    let client = Client::new(unlimited(&broker.url(), "unlimited")).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    let c = client.clone();
    within(PATIENCE, "connect", move || c.connect()).unwrap();
    let c = client.clone();
    let granted = within(PATIENCE, "subscribe", move || {
        c.subscribe(&[("unlimited/#", QoS::AtLeastOnce)])
    })
    .unwrap();
    assert_eq!(granted, [QoS::AtLeastOnce]);
    let token = client
        .publish("unlimited/1", "x", QoS::AtLeastOnce, false)
        .unwrap();
    within(PATIENCE, "a delivery token's wait", move || token.wait()).unwrap();

    // The broker ends the connection (another client takes the id): the reconnect, due in
    // `Duration::MAX`, is scheduled without a panic and never comes.
    let thief = Client::new(common::options(&broker.url(), "unlimited")).unwrap();
    thief.connect().unwrap();
    events.lost(PATIENCE).expect("connection_lost");
    thief.disconnect(Duration::from_secs(5)).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(
        !client.is_connected(),
        "the reconnect is due in Duration::MAX"
    );

    // The IO thread is alive: an explicit connect works, and a disconnect that drains an
    // unacknowledged message for up to `Duration::MAX` ends as soon as the PUBACK is in.
    let c = client.clone();
    within(PATIENCE, "connect again", move || c.connect()).unwrap();
    let _pending = client
        .publish("unlimited/2", "y", QoS::AtLeastOnce, false)
        .unwrap();
    let c = client.clone();
    within(PATIENCE, "disconnect", move || c.disconnect(Duration::MAX)).unwrap();
    assert!(!client.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_takes_duration_max_everywhere() {
    use sansmq_tokio::Client;
    use tokio::time::timeout;

    let broker = Mosquitto::start();
    let (client, mut events) = Client::new(unlimited(&broker.url(), "unlimited")).unwrap();
    timeout(PATIENCE, client.connect()).await.unwrap().unwrap();
    let granted = timeout(
        PATIENCE,
        client.subscribe(&[("unlimited/#", QoS::AtLeastOnce)]),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(granted, [QoS::AtLeastOnce]);
    timeout(
        PATIENCE,
        client.publish("unlimited/1", "x", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap()
    .unwrap();

    // The broker ends the connection (another client takes the id): the reconnect, due in
    // `Duration::MAX`, is scheduled without a panic and never comes.
    let (thief, _thief_events) = Client::new(common::options(&broker.url(), "unlimited")).unwrap();
    thief.connect().await.unwrap();
    common_async::lost(&mut events, PATIENCE)
        .await
        .expect("ConnectionLost");
    thief.disconnect(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !client.is_connected(),
        "the reconnect is due in Duration::MAX"
    );

    // The task is alive: an explicit connect works, and a disconnect that drains an
    // unacknowledged message for up to `Duration::MAX` ends as soon as the PUBACK is in.
    timeout(PATIENCE, client.connect()).await.unwrap().unwrap();
    let _pending = client
        .publish_later("unlimited/2", "y", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    timeout(PATIENCE, client.disconnect(Duration::MAX))
        .await
        .unwrap()
        .unwrap();
    assert!(!client.is_connected());
}
