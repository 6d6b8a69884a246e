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
