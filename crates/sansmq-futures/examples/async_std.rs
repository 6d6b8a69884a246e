//! The futures-io client on async-std: connects to the broker given as the first argument
//! (default `tcp://127.0.0.1:1883`; plain TCP only: this connector speaks no TLS), subscribes,
//! publishes at QoS 0, 1 and 2, and prints what arrives.
//!
//! ```text
//! cargo run -p sansmq-futures --example async_std -- tcp://127.0.0.1:1883
//! ```

use std::io;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use sansmq_futures::{Client, ConnectOptions, Error, Event, QoS, Runtime, ServerUri};

/// async-std's sockets (plain TCP only: no TLS) and timer.
#[derive(Clone)]
struct AsyncStd;

impl Runtime for AsyncStd {
    type Stream = TcpStream;

    async fn connect(self, uri: ServerUri) -> io::Result<TcpStream> {
        if uri.tls {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS: not in this example",
            ));
        }
        TcpStream::connect((uri.host.as_str(), uri.port)).await
    }

    /// async-std sleeps for a duration: the time left until the deadline.
    async fn sleep_until(self, deadline: Instant) {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now())).await;
    }
}

fn main() -> Result<(), Error> {
    let uri = std::env::args().nth(1);
    let uri = uri.as_deref().unwrap_or("tcp://127.0.0.1:1883");
    let options = ConnectOptions::new(uri, "sansmq-futures-async-std")?
        .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(30));
    let (client, mut events, connection) = Client::new(options, AsyncStd)?;
    async_std::task::block_on(async {
        async_std::task::spawn(connection);
        let session_present = client.connect().await?;
        println!("connected to {uri} (session present: {session_present})");
        let granted = client
            .subscribe(&[("sansmq/futures/#", QoS::ExactlyOnce)])
            .await?;
        println!("subscribed: {granted:?}");
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = format!("sansmq/futures/qos{}", qos as u8);
            client
                .publish(&topic, format!("hello at {qos:?}"), qos, false)
                .await?;
            println!("published to {topic}: the broker has it");
        }
        let mut received = 0;
        while received < 3 {
            match async_std::future::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(Event::Message(message))) => {
                    received += 1;
                    let payload = String::from_utf8_lossy(&message.payload);
                    println!("received {} at {:?}: {payload}", message.topic, message.qos);
                }
                Ok(Some(other)) => println!("{other:?}"),
                Ok(None) | Err(_) => break,
            }
        }
        client.disconnect(Duration::from_secs(2)).await
    })
}
