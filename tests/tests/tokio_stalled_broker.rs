//! A broker that stops acknowledging (but answers pings, so keep-alive never gives up) must not
//! keep a tokio client alive once the application has dropped it. With publishes still queued
//! behind the one waiting for room, dropping every handle ends the client's task: its events
//! end and its connection closes, instead of lasting as long as the broker does.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sansmq::packet::{Packet, QoS};
use sansmq_e2e::{Peer, ScriptedBroker, wait_until};
use sansmq_tokio::Client;
use tokio::time::timeout;

use common::{PATIENCE, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_during_a_stall_ends_the_client() {
    let publishes = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let broker = {
        let (publishes, closed) = (Arc::clone(&publishes), Arc::clone(&closed));
        ScriptedBroker::start(move |mut peer: Peer| {
            if peer.accept().is_none() {
                return;
            }
            while !peer.is_closed() {
                match peer.recv_within(Duration::from_millis(100)) {
                    Some(Packet::PingReq) => drop(peer.send(&Packet::PingResp)),
                    Some(Packet::Publish(_)) => drop(publishes.fetch_add(1, Ordering::SeqCst)),
                    _ => {}
                }
            }
            closed.store(true, Ordering::SeqCst);
        })
    };
    let (client, mut events) = Client::new(
        options(&broker.url(), "stalled")
            .keep_alive(Duration::from_secs(1))
            .max_inflight(2)
            .offline_queue(2),
    )
    .unwrap();
    client.connect().await.unwrap();

    // The window (2) and the queue (2) fill, a fifth publish waits for room, and the command
    // channel fills behind it: the publishing task blocks.
    let publishing = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut handles = Vec::new();
            for n in 0..1_000u32 {
                let payload = n.to_string();
                match client
                    .publish_later("stalled/t", payload, QoS::AtLeastOnce, false)
                    .await
                {
                    Ok(handle) => handles.push(handle),
                    Err(e) => panic!("publish {n}: {e}"),
                }
            }
        })
    };
    assert!(
        wait_until(PATIENCE, || publishes.load(Ordering::SeqCst) >= 2),
        "the window never filled"
    );
    // Three keep-alive intervals: pings are answered, so the connection stays up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!publishing.is_finished(), "publishing should wait for room");
    assert!(!closed.load(Ordering::SeqCst));

    publishing.abort();
    let _ = publishing.await;
    drop(client);
    timeout(PATIENCE, async { while events.recv().await.is_some() {} })
        .await
        .expect("the events end once every handle is gone");
    assert!(
        wait_until(PATIENCE, || closed.load(Ordering::SeqCst)),
        "the connection closes with the client"
    );
}
