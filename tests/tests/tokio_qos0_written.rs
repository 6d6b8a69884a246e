//! A QoS 0 `publish().await` resolves once the message is written, even when the broker reads it
//! and hangs up at once: the client may write the PUBLISH and read the broker's EOF in one turn,
//! and what it wrote must not be reported lost with the connection.

mod common;

use std::time::Duration;

use sansmq::packet::{Packet, QoS};
use sansmq_e2e::{Peer, ScriptedBroker};
use sansmq_tokio::Client;
use tokio::time::timeout;

use common::{PATIENCE, options};

/// Runs of the race per test: losing it took 40% of runs before the fix.
const ROUNDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_publish_written_before_the_broker_hangs_up_resolves_ok() {
    // The broker accepts, reads one PUBLISH and closes at once.
    let broker = ScriptedBroker::start(|mut peer: Peer| {
        if peer.accept().is_some() && matches!(peer.recv(), Some(Packet::Publish(_))) {
            peer.close();
        }
    });
    for round in 0..ROUNDS {
        let (client, _events) =
            Client::new(options(&broker.url(), &format!("hangup-{round}"))).unwrap();
        client.connect().await.unwrap();
        let outcome = timeout(
            PATIENCE,
            client.publish("hangup/t", "last words", QoS::AtMostOnce, false),
        )
        .await
        .expect("the publish resolves");
        assert!(
            outcome.is_ok(),
            "round {round}: the PUBLISH was written and read, yet: {outcome:?}"
        );
        let _ = client.disconnect(Duration::ZERO).await;
    }
}

/// Messages of this size, enough of them that the sockets cannot take them all.
const BIG: usize = 32 * 1024;
const MANY: usize = 512;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_qos0_publishes_not_written_fail_when_the_broker_hangs_up() {
    // The broker reads nothing, so the client's writes stall part way through the burst; then
    // it hangs up.
    let broker = ScriptedBroker::start(|mut peer: Peer| {
        if peer.accept().is_some() {
            std::thread::sleep(Duration::from_millis(1500));
            peer.reset();
        }
    });
    let (client, _events) = Client::new(options(&broker.url(), "partly")).unwrap();
    client.connect().await.unwrap();
    let mut handles = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        let handle = client
            .publish_later("partly/t", vec![7; BIG], QoS::AtMostOnce, false)
            .await
            .unwrap();
        handles.push(handle);
    }
    let mut outcomes = Vec::with_capacity(MANY);
    for handle in handles {
        outcomes.push(
            timeout(PATIENCE, handle)
                .await
                .expect("each publish resolves"),
        );
    }
    let written = outcomes.iter().take_while(|o| o.is_ok()).count();
    assert!(
        outcomes.iter().skip(written).all(Result::is_err),
        "a message written after one that was not: {:?}",
        outcomes.iter().map(Result::is_ok).collect::<Vec<_>>()
    );
    assert!(
        written > 0,
        "the messages the socket took before the broker hung up were reported lost too"
    );
    assert!(written < MANY, "the sockets took all {MANY} messages");
}
