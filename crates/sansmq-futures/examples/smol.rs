//! The futures-io client on smol: connects to the broker given as the first argument (default
//! `tcp://127.0.0.1:1883`; plain TCP only: this connector speaks no TLS), subscribes, publishes at
//! QoS 0, 1 and 2, and prints what arrives.
//!
//! ```text
//! cargo run -p sansmq-futures --example smol -- tcp://127.0.0.1:1883
//! ```

use std::io;
use std::time::{Duration, Instant};

use sansmq_futures::{Client, ConnectOptions, Error, Event, QoS, Runtime, ServerUri};
use smol::net::TcpStream;

/// smol's sockets (plain TCP only: no TLS) and timer.
#[derive(Clone)]
struct Smol;

impl Runtime for Smol {
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

    async fn sleep_until(self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }
}

fn main() -> Result<(), Error> {
    let uri = std::env::args().nth(1);
    let uri = uri.as_deref().unwrap_or("tcp://127.0.0.1:1883");
    let options = ConnectOptions::new(uri, "sansmq-futures-smol")?
        .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(30));
    let (client, mut events, connection) = Client::new(options, Smol)?;
    smol::block_on(async {
        smol::spawn(connection).detach();
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
            let timeout = async {
                smol::Timer::after(Duration::from_secs(5)).await;
                None
            };
            match smol::future::or(events.recv(), timeout).await {
                Some(Event::Message(message)) => {
                    received += 1;
                    let payload = String::from_utf8_lossy(&message.payload);
                    println!("received {} at {:?}: {payload}", message.topic, message.qos);
                }
                Some(other) => println!("{other:?}"),
                None => break,
            }
        }
        client.disconnect(Duration::from_secs(2)).await
    })
}
