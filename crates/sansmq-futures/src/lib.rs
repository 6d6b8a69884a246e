//! # sansmq-futures: an async MQTT client for any runtime
//!
//! A client over [`futures_io`] streams, driving the sans-IO
//! [`Supervisor`](sansmq_driver::Supervisor) that decides reconnects, backoff, credentials,
//! re-subscription and completions. Your executor brings a [`Runtime`]: streams and a timer.
//!
//! ## Run loop
//!
//! [`Client::new`] returns the [`Client`], its [`Events`] and its [`Connection`], a future to spawn.
//! Woken, it runs the calls' commands on the supervisor, opens and drops streams as that asks,
//! writes, reads while it wants to, sleeps until its next deadline, gives the calls their results
//! and [`Events`] the rest; it ends with the last [`Client`]. Calls wait across reconnects: bound
//! them with your runtime's timeout. A QoS 1/2 message is acknowledged once it is in [`Events`].
//!
//! ```no_run
//! use std::{io, time::Duration, time::Instant};
//! use sansmq_futures::{Client, ConnectOptions, Event, QoS, Runtime, ServerUri};
//!
//! #[derive(Clone)]
//! struct Smol; // plain TCP; a TLS runtime would wrap the stream when `uri.tls`
//!
//! impl Runtime for Smol {
//!     type Stream = smol::net::TcpStream;
//!     async fn connect(self, uri: ServerUri) -> io::Result<Self::Stream> {
//!         smol::net::TcpStream::connect((uri.host.as_str(), uri.port)).await
//!     }
//!     async fn sleep_until(self, deadline: Instant) {
//!         smol::Timer::at(deadline).await;
//!     }
//! }
//!
//! # fn main() -> Result<(), sansmq_futures::Error> { smol::block_on(async {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "sensor-17")?;
//! let (client, mut events, connection) = Client::new(options, Smol)?;
//! smol::spawn(connection).detach();
//! client.connect().await?;
//! client.subscribe(&[("sensors/#", QoS::AtLeastOnce)]).await?;
//! client.publish("sensors/17", "21.5", QoS::AtLeastOnce, false).await?; // at its PUBACK
//! while let Some(Event::Message(message)) = events.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload);
//! }
//! client.disconnect(Duration::from_secs(5)).await
//! # }) }
//! ```

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
pub use client::Client;
pub use connection::{Connection, Replies};
pub use events::Events;
pub use sansmq::client::ServerReason;
pub use sansmq::client::{AuthError, Authenticator};
pub use sansmq::packet::{
    PayloadFormat, Properties, QoS, ReasonCode, RetainHandling, SubscribeFilter, SubscriptionId,
};
pub use sansmq::{MqttString, TopicFilter};
pub use sansmq_driver::{
    ConnectOptions, Error, Message, Mqtt5Options, ServerUri, StoreError, SyncPolicy,
};

/// What happened to the client: the supervisor's events, but for `Completed`, with which the
/// [`Connection`] answers the calls and which never reaches [`Events`].
pub type Event = sansmq_driver::supervisor::Event<Replies>;

/// What the client needs of an async runtime: its sockets and its timer. Cloned for each use.
pub trait Runtime: Clone + Send + Unpin + 'static {
    /// A stream to a broker: TCP, or TLS over it.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to `uri`: TLS when `uri.tls` (or an error). The connect timeout bounds it.
    fn connect(self, uri: ServerUri) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Ready at `deadline`, at once if it has passed.
    fn sleep_until(self, deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
