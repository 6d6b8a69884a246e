//! # sansmq-futures: an async MQTT client for any runtime
//!
//! An async client over the [`futures_io`] `AsyncRead + AsyncWrite` traits, driving the sans-IO
//! [`Supervisor`](sansmq_driver::Supervisor) (reconnect, backoff, credentials, re-subscribe,
//! completions). The runtime comes from you, as two small traits: a [`Connector`] opens a byte
//! stream to a server URI (TCP, or TLS if you wrap one) and a [`Timer`] sleeps until a deadline.
//! Both have implementations for closures.
//!
//! ## Run loop
//!
//! [`Client::new`] returns the [`Client`] handle, the stream of [`Events`] and the
//! [`Connection`]: one future that owns the transport and the supervisor. Spawn it on any
//! executor. Each time it is polled it takes the commands the handles sent, opens and closes
//! transports as the supervisor asks, writes what it has to send, reads while the supervisor wants
//! to, sleeps until its next deadline (keep-alive, CONNACK, reconnect), and hands completions to
//! the waiting calls and events to [`Events`]. It ends when the last [`Client`] is dropped.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//!
//! use sansmq_futures::{Client, ConnectOptions, Event, QoS, ServerUri};
//!
//! # fn main() -> Result<(), sansmq_futures::Error> {
//! smol::block_on(async {
//!     let options = ConnectOptions::new("tcp://127.0.0.1:1883", "sensor-17")?
//!         .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(60));
//!     // Plain TCP only: a TLS connector would wrap the stream when `uri.tls` says so.
//!     let connector = |uri: ServerUri| async move {
//!         smol::net::TcpStream::connect((uri.host.as_str(), uri.port)).await
//!     };
//!     let timer = |deadline: Instant| async move {
//!         smol::Timer::at(deadline).await;
//!     };
//!     let (client, mut events, connection) = Client::new(options, connector, timer)?;
//!     smol::spawn(connection).detach();
//!
//!     client.connect().await?;
//!     client.subscribe(&[("sensors/#", QoS::AtLeastOnce)]).await?;
//!     // Resolves at the broker's PUBACK.
//!     client.publish("sensors/17/temp", "21.5", QoS::AtLeastOnce, false).await?;
//!     while let Some(event) = events.recv().await {
//!         match event {
//!             Event::Message(message) => println!("{}: {:?}", message.topic, message.payload),
//!             other => println!("{other:?}"),
//!         }
//! #       break;
//!     }
//!     client.disconnect(Duration::from_secs(5)).await
//! })
//! # }
//! ```
//!
//! Calls wait as long as the answer takes (across reconnects): bound them with your runtime's
//! timeout. Received QoS 1/2 messages are acknowledged once they are in [`Events`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod connection;
mod events;

use std::future::Future;
use std::io;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

pub use bytes::Bytes;
pub use client::{Client, PublishHandle};
pub use connection::Connection;
pub use events::{Event, Events};
pub use sansmq::packet::QoS;
pub use sansmq_driver::{ConnectOptions, Error, Message, ServerUri};

/// Opens byte streams to brokers with the runtime's sockets.
pub trait Connector: Send + 'static {
    /// The stream: TCP, or TLS over it.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `uri` (TLS when `uri.tls`, or an error if the connector speaks none).
    /// Need not time out: the connect timeout bounds it.
    fn connect(
        &self,
        uri: ServerUri,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;
}

impl<F, Fut, S> Connector for F
where
    F: Fn(ServerUri) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = S;

    fn connect(&self, uri: ServerUri) -> impl Future<Output = io::Result<S>> + Send + 'static {
        self(uri)
    }
}

/// The runtime's clock alarm.
pub trait Timer: Send + 'static {
    /// A future that is ready at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;
}

impl<F, Fut> Timer for F
where
    F: Fn(Instant) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        self(deadline)
    }
}
