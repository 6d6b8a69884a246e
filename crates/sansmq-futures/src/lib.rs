//! # sansmq-futures: an async MQTT client for any runtime
//!
//! A client over [`futures_io`] streams that drives the sans-IO
//! [`Supervisor`](sansmq_driver::Supervisor) (reconnect, backoff, credentials, re-subscribe,
//! completions). Your runtime comes in as a [`Connector`] that opens a stream to a server URI
//! (TCP, or TLS if it wraps one) and a [`Timer`] that sleeps until a deadline; closures are both.
//!
//! ## Run loop
//!
//! [`Client::new`] returns the [`Client`] handle, its [`Events`] and its [`Connection`]: one future
//! to spawn on any executor. Each time it is woken it takes the calls' commands, opens and closes
//! streams as the supervisor asks, writes, reads while the supervisor wants to, sleeps until the
//! next deadline (keep-alive, CONNACK, reconnect), gives the calls their results and the events
//! to [`Events`]. It ends with the last [`Client`].
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use sansmq_futures::{Client, ConnectOptions, Event, QoS, ServerUri};
//!
//! # fn main() -> Result<(), sansmq_futures::Error> { smol::block_on(async {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "sensor-17")?;
//! let connector = |uri: ServerUri| async move {
//!     smol::net::TcpStream::connect((uri.host.as_str(), uri.port)).await // plain TCP only
//! };
//! let timer = |deadline| async move { smol::Timer::at(deadline).await; };
//! let (client, mut events, connection) = Client::new(options, connector, timer)?;
//! smol::spawn(connection).detach();
//! client.connect().await?;
//! client.subscribe(&[("sensors/#", QoS::AtLeastOnce)]).await?;
//! client.publish("sensors/17", "21.5", QoS::AtLeastOnce, false).await?; // at its PUBACK
//! while let Ok(Event::Message(message)) = events.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload);
//! }
//! client.disconnect(Duration::from_secs(5)).await
//! # }) }
//! ```
//!
//! Calls wait as long as their answer takes, across reconnects: bound them with your runtime's
//! timeout. A received QoS 1/2 message is acknowledged once it is in [`Events`].

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
pub use client::{Client, Pending};
pub use connection::Connection;
pub use events::{Event, Events};
pub use sansmq::packet::QoS;
pub use sansmq_driver::{ConnectOptions, Error, Message, ServerUri};

/// Opens byte streams to brokers with the runtime's sockets.
pub trait Connector: Send + 'static {
    /// The stream: TCP, or TLS over it.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `uri`: TLS when `uri.tls` (or an error). The connect timeout bounds it.
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

/// The runtime's alarm clock.
pub trait Timer: Send + 'static {
    /// Ready at `deadline`, at once if it has passed.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;
}

impl<F: Fn(Instant) -> Fut + Send + 'static, Fut: Future<Output = ()> + Send + 'static> Timer
    for F
{
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        self(deadline)
    }
}
