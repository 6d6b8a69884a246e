//! # sansmq-mio: a blocking MQTT client for people moving off Eclipse Paho
//!
//! The same concepts as Paho Java's `MqttClient` (connect options, callbacks, time-to-wait,
//! automatic reconnect, delivery tokens) around the sans-IO [`sansmq`] core, on one `mio` IO
//! thread, without an async runtime, and without Paho's pitfalls: durations are `Duration`s (no
//! seconds-versus-milliseconds `connectionTimeout`), reconnect backoff has jitter and belongs to
//! each client, credentials are computed again for every reconnect, QoS 1/2 messages in flight are
//! kept across reconnects even with a clean session (they are sent again), and a received message
//! is acknowledged only once your callback returned.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use sansmq_mio::{Callback, Client, ConnectOptions, Message, QoS};
//!
//! struct Printer {
//!     client: Client,
//! }
//!
//! impl Callback for Printer {
//!     fn connect_complete(&self, reconnect: bool, server_uri: &str) {
//!         println!("connected to {server_uri} (reconnect: {reconnect})");
//!         // Subscribe here: it then happens on every connection.
//!         let _ = self.client.subscribe(&[("sensors/#", QoS::AtLeastOnce)]);
//!     }
//!
//!     fn message_arrived(&self, topic: &str, message: &Message) {
//!         println!("{topic}: {:?}", message.payload);
//!     }
//! }
//!
//! # fn main() -> Result<(), sansmq_mio::Error> {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "GID_demo@@@device-1")?
//!     .keep_alive(Duration::from_secs(90))
//!     .time_to_wait(Duration::from_secs(5))
//!     .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(60));
//! let client = Client::new(options)?;
//! client.set_callback(Printer { client: client.clone() });
//! client.connect()?;
//! let token = client.publish("sensors/1", "21.5", QoS::AtLeastOnce, false)?;
//! token.wait()?; // the broker has it
//! client.disconnect(Duration::from_secs(5))?;
//! client.close();
//! # Ok(())
//! # }
//! ```
//!
//! Everything the API takes or returns is named by this crate (`tests/public_types.rs` checks
//! it): `sansmq` is not needed as a dependency.
//!
//! ## Cargo features
//!
//! `rustls` (TLS for `ssl://`, `mqtts://` and `wss://` URIs), `webpki-roots` (Mozilla's roots,
//! the default [`TrustRoots`]) and `native-roots` (the system store, [`TrustRoots::System`]), all
//! on by default and passed on to `sansmq-driver`, whose docs say more. Without `rustls`, no TLS
//! library is built and [`Client::new`] refuses a TLS URI with [`Error::FeatureNotBuilt`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod callback;
mod client;
mod completion;
mod dialer;
mod io_loop;
mod messages;
mod proxying;
mod shell;
mod socket;
mod token;
mod transport;
mod websocket_link;

pub use callback::Callback;
pub use client::Client;
pub use messages::{Messages, MessagesIntoIter, MessagesIter};
pub use sansmq_driver::DEFAULT_WEBSOCKET_PATH;
/// The HTTP CONNECT handshake, whose errors [`Error::HttpProxy`] carries.
pub use sansmq_driver::http_connect;
/// The SOCKS5 handshake, whose errors [`Error::Proxy`] carries.
pub use sansmq_driver::socks5;
/// MQTT over WebSocket: what [`Error::WebSocket`] carries.
pub use sansmq_driver::websocket;
pub use sansmq_driver::{
    AckKey, BrokerRules, CipherList, ConnectOptions, Credentials, CredentialsProvider, Diagnosis,
    Error, FileStore, KeyPassword, KeyProblem, Message, Mqtt5Options, Operation, ProxyOptions,
    ResubscribePolicy, ServerUri, SessionStore, SessionStoreOptions, StoreError, SyncPolicy,
    TlsOptions, TlsVersion, TrustRoots, Will, redact_uri, redact_userinfo, split_login,
};
pub use token::DeliveryToken;

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
