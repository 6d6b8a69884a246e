//! A complete driver for [`sansmq::Client`] on a blocking `std::net::TcpStream`, written from the
//! docs alone. It connects, subscribes to a topic, publishes N QoS 1 messages to it, receives them
//! back and disconnects gracefully:
//!
//! ```text
//! cargo run -p sansmq --example tcp_driver -- [HOST:PORT] [TOPIC] [COUNT]
//! ```
//!
//! One thread, one loop: write what `poll_transmit` holds, drain `poll_event`, then read for no
//! longer than `poll_timeout` allows. A driver for any other runtime has the same three steps.

// Drivers own the clock; the library never reads it (hence the crate-wide ban on `Instant::now`).
#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sansmq::client::{Config, DisconnectReason, Event};
use sansmq::packet::{QoS, SubscribeFilter};
use sansmq::{Client, CommandError, MqttString, TopicFilter, TopicName};

/// How long `disconnect` waits for unacknowledged messages before sending DISCONNECT anyway.
const DRAIN: Duration = Duration::from_secs(5);
/// The driver's own timer, merged with the client's: give up if the whole run takes longer.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:1883".to_owned());
    let topic = TopicName::try_from(args.next().unwrap_or_else(|| "sansmq/example".to_owned()))?;
    let count: usize = args.next().map_or(Ok(10), |n| n.parse())?;

    let mut stream = TcpStream::connect(&addr)?;
    stream.set_nodelay(true)?;
    let client_id = MqttString::try_from(format!("sansmq-tcp-driver-{}", std::process::id()))?;
    let mut client = Client::new(Config::new(client_id));
    client.connect(Instant::now())?; // queues CONNECT for step 1

    let give_up = Instant::now() + RUN_LIMIT;
    let (mut subscribed, mut done) = (false, false);
    let (mut published, mut acked, mut received) = (0, 0, 0);
    let mut buf = vec![0; 16 * 1024];
    loop {
        // 1. Write what the client holds; after a short write the rest stays queued in it.
        while let Some(bytes) = client.poll_transmit() {
            let Ok(n @ 1..) = stream.write(bytes) else {
                client.handle_closed(Instant::now()); // error or 0 bytes: the transport is gone
                break;
            };
            client.handle_transmitted(Instant::now(), n);
        }
        if done {
            break;
        }

        // 2. Drain events and act on them. Commands only queue bytes, for step 1 to write.
        let now = Instant::now();
        while let Some(event) = client.poll_event() {
            println!("{event:?}");
            match event {
                Event::Connected { .. } => {
                    let filter = TopicFilter::try_from(topic.as_str())?;
                    let qos = QoS::AtLeastOnce;
                    client.subscribe(now, vec![SubscribeFilter::new(filter, qos)])?;
                }
                Event::Subscribed { results, .. } => {
                    for (_, granted) in results {
                        granted?; // SUBACK 0x80: the broker refused the filter
                    }
                    subscribed = true;
                }
                Event::Published { .. } => acked += 1,
                Event::Message(_) => {
                    received += 1;
                    if received == count {
                        client.disconnect(now, DRAIN)?; // first waits for the PUBACKs still due
                    }
                }
                Event::Disconnected {
                    reason: DisconnectReason::Requested,
                } => done = true,
                Event::Disconnected { reason } => return Err(reason.into()),
                _ => {}
            }
        }
        // Publish the rest; a full queue is backpressure: retry once acknowledgements free room.
        while subscribed && published < count {
            let payload = format!("message {}", published + 1).into_bytes();
            match client.publish(now, topic.clone(), QoS::AtLeastOnce, false, payload) {
                Ok(_) => published += 1,
                Err(CommandError::QueueFull { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if done || client.poll_transmit().is_some() {
            continue; // write before waiting
        }

        // 3. Wait for bytes until the earliest deadline, the client's (keep-alive, CONNACK,
        //    drain) or ours; when it has passed, tell the client (early or twice is harmless).
        let now = Instant::now();
        let deadline = client.poll_timeout().map_or(give_up, |t| t.min(give_up));
        if deadline <= now {
            if now >= give_up {
                return Err(format!("timed out: {received}/{count} messages back").into());
            }
            client.handle_timeout(now);
            continue;
        }
        stream.set_read_timeout(Some(deadline - now))?; // never zero, which would be an error
        match stream.read(&mut buf) {
            Ok(0) => client.handle_closed(Instant::now()), // EOF
            Ok(n) => client.handle_received(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), WouldBlock | TimedOut | Interrupted) => {} // see above
            Err(_) => client.handle_closed(Instant::now()),
        }
    }
    println!("{received}/{count} messages back, {acked}/{count} acknowledged");
    if acked < count {
        return Err("the drain ran out before every publish was acknowledged".into());
    }
    Ok(())
}
