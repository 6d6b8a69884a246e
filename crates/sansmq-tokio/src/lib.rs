//! # sansmq-tokio: an async MQTT client whose publish resolves when the broker has the message
//!
//! An async client on tokio around the sans-IO [`sansmq`] core, for what `rumqttc` users keep
//! asking for: `publish(..).await` that resolves at the broker's acknowledgement (QoS 1 PUBACK,
//! QoS 2 PUBCOMP) or once written (QoS 0); no event loop to poll; no deadlock when one task
//! publishes and consumes; QoS 2 messages kept through `disconnect` and reconnects.
//!
//! ## Run loop
//!
//! [`Client::new`] spawns one background task that owns the socket (TCP, or TLS with
//! tokio-rustls, through a SOCKS5 or HTTP proxy if asked; MQTT over WebSocket for `ws://` and
//! `wss://` URIs, with tokio-tungstenite on top) and the sans-IO [`Supervisor`](sansmq_driver::Supervisor), which decides the
//! connection's whole life (server URIs, credentials, reconnect backoff, re-subscribing, when each
//! request completes). The task only does IO: it `select!`s over the socket, a bounded channel of
//! commands from the [`Client`] handles, a connection being opened, room in your [`Events`]
//! stream, and one `Sleep` reset to the supervisor's next deadline (keep-alive, CONNACK,
//! reconnect). Each command batch goes out in one write; each read (up to 128 KiB) goes straight
//! into the core's buffer. There is no task per timer or per message.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use sansmq_tokio::{Client, ConnectOptions, Event, QoS};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sansmq_tokio::Error> {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "sensor-17")?
//!     .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(60));
//! let (client, mut events) = Client::new(options)?;
//! client.connect().await?;
//! client.subscribe(&[("sensors/#", QoS::AtLeastOnce)]).await?;
//!
//! // Resolves at the broker's PUBACK.
//! client.publish("sensors/17/temp", "21.5", QoS::AtLeastOnce, false).await?;
//!
//! // Or many in flight at once, awaited later.
//! let mut handles = Vec::new();
//! for n in 0..100 {
//!     handles.push(client.publish_later("sensors/17/seq", n.to_string(), QoS::ExactlyOnce, false).await?);
//! }
//! for handle in handles {
//!     handle.await?;
//! }
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(message) => println!("{}: {:?}", message.topic, message.payload),
//!         Event::ConnectionLost { cause } => println!("lost: {cause}"),
//!         Event::Reconnected { session_present, .. } => println!("back ({session_present})"),
//!         _ => {}
//!     }
//! #   break;
//! }
//! client.disconnect(Duration::from_secs(5)).await?; // waits for unacknowledged QoS 1/2
//! # Ok(())
//! # }
//! ```
//!
//! ## Backpressure, cancellation, deadlocks
//!
//! - The command channel is bounded ([`ClientBuilder::command_capacity`]). While connected, a
//!   full offline queue (the core's, [`ConnectOptions::offline_queue`]) makes the task stop taking
//!   commands, so the channel fills and [`Client::publish`] waits ([`Client::try_publish`] fails
//!   with `QueueFull`): memory never grows past both bounds. While disconnected, a full offline
//!   queue is an error at once.
//! - Dropping a publish future never corrupts anything: a message handed to the task is in the
//!   session and is delivered per its QoS; only the notification is lost ([`PublishHandle`]).
//! - The task stops reading the socket only when your streams are full **and** nothing you await
//!   needs the broker's answer, so awaiting a PUBACK while not reading messages cannot hang (see
//!   [`Events`]).
//!
//! Logging goes through `tracing`.
//!
//! ## One dependency
//!
//! Everything the API takes or returns is named by this crate; `sansmq` is not needed as a
//! dependency:
//!
//! ```
//! use sansmq_tokio::{
//!     Bytes, CommandError, ConnectReturnCode, DisconnectReason, Error, KeyProblem, PacketId, QoS,
//!     TopicError, TopicFilter, TopicName,
//! };
//!
//! fn explain(error: &Error) -> String {
//!     match error {
//!         Error::Refused(ConnectReturnCode::BadUserNameOrPassword) => "wrong login".into(),
//!         Error::Command(CommandError::NotConnected) => "not connected".into(),
//!         Error::ConnectionLost(reason) => format!("lost: {reason}"),
//!         Error::InvalidTopic(error) => format!("{error}"),
//!         Error::ClientKey { problem: KeyProblem::PasswordNeeded, .. } => "key password?".into(),
//!         other => other.to_string(),
//!     }
//! }
//! let _: (QoS, Option<PacketId>, Bytes) = (QoS::AtLeastOnce, PacketId::new(1), Bytes::new());
//! let _: Result<TopicName, TopicError> = TopicName::try_from("a/b");
//! let _: Result<TopicFilter, TopicError> = TopicFilter::try_from("a/#");
//! let _: Option<&DisconnectReason> = None;
//! assert_eq!(explain(&Error::Refused(ConnectReturnCode::BadUserNameOrPassword)), "wrong login");
//! ```
//!
//! ## Cargo features
//!
//! `rustls` (TLS for `ssl://`, `mqtts://` and `wss://` URIs, with tokio-rustls), `webpki-roots`
//! (Mozilla's roots, the default [`TrustRoots`]) and `native-roots` (the system store,
//! [`TrustRoots::System`]), all on by default and passed on to `sansmq-driver`, whose docs say
//! more. Without `rustls`, no TLS library is built and [`Client::new`] refuses a TLS URI with
//! [`Error::FeatureNotBuilt`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod command;
mod dial;
mod dispatch;
mod proxying;
mod publish;
mod stream;
mod task;
mod transport;
mod websocket;

pub use client::{Client, ClientBuilder, DEFAULT_COMMAND_CAPACITY, DEFAULT_EVENT_CAPACITY};
pub use publish::PublishHandle;
/// The HTTP CONNECT handshake, whose errors [`Error::HttpProxy`] carries.
pub use sansmq_driver::http_connect;
/// The SOCKS5 handshake, whose errors [`Error::Proxy`] carries.
pub use sansmq_driver::socks5;
/// What [`Error::WebSocket`] carries.
pub use sansmq_driver::websocket::WebSocketError;
pub use sansmq_driver::{
    AckKey, BrokerRules, CipherList, ConnectOptions, Credentials, CredentialsProvider, Diagnosis,
    Error, FileStore, KeyPassword, KeyProblem, Message, Mqtt5Options, Operation, ProxyOptions,
    ResubscribePolicy, ServerUri, SessionStore, SessionStoreOptions, StoreError, SyncPolicy,
    TlsOptions, TlsVersion, TrustRoots, Will, redact_uri, redact_userinfo, split_login,
};
pub use stream::{Event, Events, Subscription};

// The core's types that this client's API takes and returns, so that `sansmq` need not be a
// dependency of its users.
pub use bytes::Bytes;
pub use sansmq::client::ProtocolViolation;
pub use sansmq::client::ServerReason;
pub use sansmq::client::{AuthError, Authenticator};
pub use sansmq::packet::{
    ConnectReturnCode, DecodeError, PacketId, PayloadFormat, Properties, Protocol, QoS, ReasonCode,
    RetainHandling, SubscribeFilter, SubscriptionId,
};
pub use sansmq::{CommandError, DisconnectReason, MqttString, TopicError, TopicFilter, TopicName};

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
