//! Publish and consume from one task with sansmq-tokio.
//!
//! ```text
//! mosquitto -p 1883 &            # or any MQTT 3.1.1 broker
//! cargo run -p sansmq-tokio --example async_quickstart [tcp://127.0.0.1:1883]
//! ```
//!
//! It subscribes to `quickstart/#`, publishes one message at each QoS (each `publish` resolves
//! once the broker has it), then a burst of 100 QoS 1 messages in flight at once, reads them all
//! back, and disconnects after the broker acknowledged everything.

use std::process::ExitCode;
use std::time::Duration;

use sansmq_tokio::{Client, ConnectOptions, Error, Event, QoS};

#[tokio::main]
async fn main() -> ExitCode {
    // An error as one readable line (its Display), not the Debug dump `main -> Result` prints.
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("async_quickstart: error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:1883".to_owned());
    let options = ConnectOptions::new(&uri, format!("quickstart-{}", std::process::id()))?
        .keep_alive(Duration::from_secs(30))
        .automatic_reconnect(Duration::from_millis(500), Duration::from_secs(30));
    let (client, mut events) = Client::new(options)?;

    let session_present = client.connect().await?;
    println!("connected to {uri} (session present: {session_present})");
    let granted = client
        .subscribe(&[("quickstart/#", QoS::ExactlyOnce)])
        .await?;
    println!("subscribed, granted {granted:?}");

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        // Resolves at PUBACK (QoS 1), PUBCOMP (QoS 2), or once written (QoS 0).
        client
            .publish("quickstart/hello", format!("hello at {qos:?}"), qos, false)
            .await?;
        println!("published at {qos:?}");
    }

    // Many in flight from one task: hand them over, await the handles later.
    let mut handles = Vec::new();
    for n in 0..100 {
        handles.push(
            client
                .publish_later("quickstart/burst", n.to_string(), QoS::AtLeastOnce, false)
                .await?,
        );
    }
    for handle in handles {
        handle.await?;
    }
    println!("100 messages acknowledged");

    // The same task consumes: 3 hellos and 100 burst messages.
    let mut received = 0;
    while received < 103 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .map_err(|_| Error::Timeout(Duration::from_secs(10)))?;
        match event {
            Some(Event::Message(message)) => {
                received += 1;
                if message.topic.as_str() == "quickstart/hello" {
                    println!("{}: {:?}", message.topic, message.payload);
                }
            }
            Some(Event::ConnectionLost { cause }) => println!("connection lost: {cause}"),
            Some(Event::Reconnected {
                session_present, ..
            }) => {
                println!("reconnected (session present: {session_present})");
            }
            Some(_) => {}
            None => break,
        }
    }
    println!("received {received} messages");

    // Waits up to 5 s for anything still unacknowledged, then sends DISCONNECT.
    client.disconnect(Duration::from_secs(5)).await?;
    println!("disconnected");
    Ok(())
}
