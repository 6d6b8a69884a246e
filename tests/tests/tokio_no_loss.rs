//! No message is lost between two async clients with persistent sessions while a proxy cuts the
//! link about every 300 ms: QoS 1 arrives at least once, QoS 2 exactly once. The scenario of
//! `mio_no_loss.rs` (same counts, same proxy, same `Tally`), driven through futures: the
//! publisher keeps up to 500 publish handles in flight and awaits the oldest.
//! `SANSMQ_NO_LOSS_MESSAGES` sets the count (default 10,000).

mod common;
mod common_async;

use std::collections::VecDeque;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto};
use sansmq_tokio::{Client, ConnectOptions, Event, PublishHandle};
use tokio::time::{Instant, timeout_at};

use common::{Tally, options, seq_payload};

const TOPIC: &str = "no-loss/stream";
const RUN_LIMIT: Duration = Duration::from_secs(50);
const IN_FLIGHT: usize = 500;

fn messages() -> u32 {
    std::env::var("SANSMQ_NO_LOSS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn persistent(uri: &str, client_id: &str) -> ConnectOptions {
    options(uri, client_id)
        .clean_session(false)
        .automatic_reconnect(Duration::from_millis(20), Duration::from_millis(500))
}

/// Publishes `0..n` and the marker `n` through a link cut every 300 ms; returns
/// `(distinct, duplicates)` of the numbers `0..n` the subscriber saw.
async fn with_cuts(label: &str, qos: QoS) -> (usize, usize) {
    let n = messages();
    let deadline = Instant::now() + RUN_LIMIT;
    let broker = Mosquitto::builder()
        .log_types(["warning", "notice"])
        .start();
    let proxy = FaultProxy::start(broker.addr());
    let tally = Tally::new(n as usize + 1);

    let (subscriber, mut events) =
        Client::new(persistent(&proxy.url(), &format!("{label}-sub"))).unwrap();
    common_async::connect(&subscriber).await;
    subscriber.subscribe(&[(TOPIC, qos)]).await.unwrap();
    let counting = {
        let tally = tally.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::Message(message) = event {
                    tally.record(&message.payload);
                    if tally.distinct() == n as usize + 1 {
                        return;
                    }
                }
            }
        })
    };
    let (publisher, _publisher_events) =
        Client::new(persistent(&proxy.url(), &format!("{label}-pub"))).unwrap();
    common_async::connect(&publisher).await;

    proxy.cut_every(Duration::from_millis(300));
    let mut in_flight: VecDeque<(u32, PublishHandle)> = VecDeque::new();
    for i in 0..n {
        if in_flight.len() >= IN_FLIGHT {
            let (m, oldest) = in_flight.pop_front().unwrap();
            let outcome = timeout_at(deadline, oldest).await;
            assert!(
                matches!(outcome, Ok(Ok(()))),
                "{label}: message {m}: {outcome:?}"
            );
        }
        if i == n / 3 {
            proxy.cut(); // however fast the run, one cut lands mid-stream
        }
        let handle = publisher
            .publish_later(TOPIC, seq_payload(i), qos, false)
            .await
            .unwrap();
        in_flight.push_back((i, handle));
    }
    for (m, handle) in in_flight {
        let outcome = timeout_at(deadline, handle).await;
        assert!(
            matches!(outcome, Ok(Ok(()))),
            "{label}: message {m}: {outcome:?}"
        );
    }
    proxy.stop_cutting();
    println!(
        "{label}: {} cuts closed {} connections",
        proxy.cuts(),
        proxy.connections_cut()
    );
    assert!(proxy.connections_cut() >= 2, "{proxy:?}");
    // The marker goes after everything: once it is in, every redelivery was made.
    timeout_at(
        deadline,
        publisher.publish(TOPIC, seq_payload(n), qos, false),
    )
    .await
    .expect("the marker in time")
    .unwrap();
    let complete = timeout_at(deadline, counting).await.is_ok();
    let (distinct, total, out_of_order, strangers) = tally.summary();
    println!(
        "{label}: {n} sent, {} distinct received, {} duplicates ({out_of_order} after a higher number)",
        distinct - 1,
        total - strangers - distinct
    );
    assert!(
        complete,
        "{label}: missing, the first: {:?}",
        tally.missing(20)
    );
    assert_eq!(strangers, 0);
    publisher.disconnect(Duration::from_secs(5)).await.unwrap();
    subscriber.disconnect(Duration::from_secs(5)).await.unwrap();
    (distinct - 1, total - strangers - distinct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_loses_nothing_while_the_link_is_cut_every_300_ms() {
    let (distinct, _) = with_cuts("tokio-qos1", QoS::AtLeastOnce).await;
    assert_eq!(distinct, messages() as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_delivers_exactly_once_while_the_link_is_cut_every_300_ms() {
    let (distinct, duplicates) = with_cuts("tokio-qos2", QoS::ExactlyOnce).await;
    assert_eq!(distinct, messages() as usize);
    assert_eq!(duplicates, 0, "QoS 2 must arrive exactly once");
}
