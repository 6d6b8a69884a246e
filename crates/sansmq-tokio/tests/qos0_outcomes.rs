//! QoS 0 handles are settled on the client's outcomes board rather than by a one-shot channel
//! each: every handle still gets its own outcome, in whatever order the outcomes come, and a
//! client that goes away resolves the ones left.

use std::time::Duration;

use sansmq_tokio::{Client, CommandError, ConnectOptions, Error, QoS};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn refused_handles_resolve_before_queued_ones_and_the_queued_ones_when_the_client_goes() {
    // Never connected: the first two wait in the offline queue, the rest are refused at once,
    // so outcomes come out of order.
    let options = ConnectOptions::new("tcp://127.0.0.1:9", "outcomes")
        .unwrap()
        .offline_queue(2);
    let (client, events) = Client::new(options).unwrap();
    let mut handles = Vec::new();
    for i in 0..6 {
        let handle = client
            .publish_later("outcomes/t", vec![i], QoS::AtMostOnce, false)
            .await
            .unwrap();
        handles.push(handle);
    }
    let mut queued: Vec<_> = handles.drain(..2).collect();
    // A refused handle given up unawaited keeps nothing.
    drop(handles.pop());
    for handle in handles {
        let outcome = timeout(PATIENCE, handle).await.expect("refused at once");
        assert!(
            matches!(outcome, Err(Error::Command(CommandError::QueueFull { .. }))),
            "{outcome:?}"
        );
    }
    for handle in &mut queued {
        assert!(handle.try_outcome().is_none(), "still queued");
    }
    drop(client);
    drop(events);
    for handle in queued {
        let outcome = timeout(PATIENCE, handle)
            .await
            .expect("resolved as the task ends");
        assert!(matches!(outcome, Err(Error::Closed)), "{outcome:?}");
    }
}
