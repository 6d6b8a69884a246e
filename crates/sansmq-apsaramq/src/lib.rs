//! # sansmq-apsaramq: Alibaba Cloud ApsaraMQ for MQTT on sansmq
//!
//! Everything ApsaraMQ for MQTT (formerly MQ4IoT) asks of a client beyond plain MQTT 3.1.1, as
//! checked values, so mistakes fail locally with a message instead of as an unexplained refusal
//! or disconnect from the broker:
//!
//! - [`credentials`]: the Signature, Token, DeviceCredential and Custom logins ([`AuthMode`]),
//!   keys from `MQTT_AK_ENV` / `MQTT_SK_ENV` ([`AccessKey::from_env`]), secrets kept out of
//!   `Debug`, and [`ApsaraMqCredentials`], the client's credentials provider, which signs again
//!   for every reconnect and takes refreshed tokens;
//! - [`client_id`]: [`ClientId`], `<GroupID>@@@<DeviceID>`, and its rules;
//! - [`topic`]: parent topic plus sub levels within a length limit, and point-to-point topics
//!   ([`p2p_topic`], [`is_p2p_for`]);
//! - [`endpoint`]: [`Endpoint`], instance id → public or VPC domain name → `tcp://` / `ssl://` /
//!   `ws://` / `wss://` URI;
//! - [`events`]: [`ApsaraMqCallback`], Paho's callbacks plus point-to-point messages told apart
//!   ([`MessageKind`]) and token notices as typed values, wired by [`ApsaraMqEvents`];
//! - [`dedup`]: idempotent consumption, as the quick-start asks: a [`Deduplicator`] that lets each
//!   message through once by a message id header ([`MessageIds`] tags payloads) or a key of yours,
//!   and `Deduplicated` callbacks;
//! - [`openapi`]: Alibaba Cloud's OpenAPI request [`signature`](openapi::signature) (HMAC-SHA1,
//!   SignatureVersion 1.0) and, with the `openapi` feature, the client that issues, checks and
//!   revokes tokens;
//! - [`preset`]: [`apsaramq_options`], the [`sansmq_driver::ConnectOptions`] ApsaraMQ wants, and
//!   checks refusing what it does not support (will, retain, QoS 2 on a persistent session,
//!   payloads over 64 KiB, shared subscriptions), and [`apsaramq_mqtt5_options`] for the MQTT 5.0
//!   instances.
//!
//! The Signature password is Base64(HMAC-SHA1(AccessKey secret, whole client id)):
//!
//! ```
//! use sansmq_apsaramq::{AccessKey, AuthMode, ClientId};
//!
//! # fn main() -> Result<(), sansmq_apsaramq::Error> {
//! // In a program: AccessKey::from_env()?
//! let key = AccessKey::new("LTAI5tTestKey", "secretKey123");
//! let client_id = ClientId::new("GID_test", "device-001")?;
//! let auth = AuthMode::signature(key, "mqtt-cn-test");
//!
//! let login = auth.connect_credentials(&client_id)?;
//! assert_eq!(login.username, "Signature|LTAI5tTestKey|mqtt-cn-test");
//! assert_eq!(login.password.as_deref(), Some(&b"WUp3wMiZLkLANz/so65nilEQlic="[..]));
//! # Ok(())
//! # }
//! ```
//!
//! Connecting, as Alibaba's quick-start does (subscribe in `connect_complete`, so it happens on
//! every reconnect):
//!
//! ```no_run
//! use sansmq_apsaramq::{AccessKey, AuthMode, ClientId, Endpoint, QoS, TopicRules, apsaramq_options};
//! use sansmq_mio::{Callback, Client};
//!
//! struct Subscriber {
//!     client: Client,
//!     topic: String,
//! }
//!
//! impl Callback for Subscriber {
//!     fn connect_complete(&self, _reconnect: bool, _server_uri: &str) {
//!         let _ = self.client.subscribe(&[(self.topic.as_str(), QoS::AtLeastOnce)]);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = Endpoint::public("mqtt-cn-test")?;
//! let client_id = ClientId::new("GID_test", "device-001")?;
//! let auth = AuthMode::signature(AccessKey::from_env()?, endpoint.instance_id());
//! let topic = TopicRules::default().name("parent", "testMq4Iot")?;
//!
//! let client = Client::new(apsaramq_options(&endpoint.tcp_uri(), &client_id, auth)?)?;
//! client.set_callback(Subscriber { client: client.clone(), topic: topic.to_string() });
//! client.connect()?;
//! # Ok(())
//! # }
//! ```
//!
//! What the callbacks receive is named by this crate (`ClientError`, `QoS`, ...), so it needs no
//! `sansmq` or `sansmq-driver` dependency beside it:
//!
//! ```
//! use sansmq_apsaramq::{ApsaraMqCallback, ClientError, ConnectReturnCode, Diagnosis, QoS};
//!
//! struct Watcher;
//!
//! impl ApsaraMqCallback for Watcher {
//!     fn connection_lost(&self, cause: &ClientError) {
//!         match cause {
//!             ClientError::ClosedByBroker(Diagnosis::NotAuthorised { topic, .. }) => {
//!                 eprintln!("may not use {topic}")
//!             }
//!             ClientError::Refused(ConnectReturnCode::NotAuthorized) => eprintln!("check the key"),
//!             other => eprintln!("lost: {other}"),
//!         }
//!     }
//! }
//! # let _ = (Watcher, QoS::AtLeastOnce);
//! ```
//!
//! The broker redelivers unacknowledged QoS 1 messages every few seconds while connected, and
//! again after a reconnect, and publishers may send a message twice: make message handlers
//! idempotent, or let [`dedup`] drop the copies.
//!
//! ## Features
//!
//! - `mio` (default): the blocking client's helpers, [`upload_token`], [`ApsaraMqCallback`],
//!   [`ApsaraMqEvents`] and [`Deduplicated`](dedup::Deduplicated);
//! - `tokio` (default): the async client's [`upload_token_async`];
//! - `rustls`, `webpki-roots` and `native-roots` (default): the clients' TLS (`ssl://` on port
//!   8883, `wss://` on 443), Mozilla's roots and the system store, passed on to `sansmq-driver`
//!   and the clients chosen (see its docs);
//! - `openapi`: `openapi::OpenApiClient`, which issues, checks and revokes tokens over Alibaba
//!   Cloud's OpenAPI (HTTPS). The request signature, [`openapi::signature`], needs no feature.
//!
//! Without `mio` and `tokio` the crate builds neither client: logins, client ids, topics,
//! endpoints, token notices, the [`Deduplicator`] and the OpenAPI signature remain.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Client ids, topics and environment variables come from users: refuse them, never panic on them.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod client_id;
pub mod credentials;
pub mod dedup;
pub mod endpoint;
mod error;
pub mod events;
pub mod openapi;
pub mod preset;
pub mod token_notice;
pub mod token_refresh;
pub mod topic;

pub use client_id::{ClientId, ClientIdError, ClientIdPart};
pub use credentials::{
    AccessKey, ApsaraMqCredentials, AuthMode, CredentialsError, CustomPassword, EnvProblem, Secret,
    Token, TokenType,
};
pub use dedup::{Deduplicator, MessageIds, Seen};
pub use endpoint::{Endpoint, EndpointError, Network, Transport};
pub use error::Error;
#[cfg(feature = "mio")]
pub use events::{ApsaraMqCallback, ApsaraMqEvents};
pub use events::{Incoming, MessageKind, classify};
pub use preset::{
    ApsaraMqRules, MAX_PAYLOAD, MQTT5_MAX_KEEP_ALIVE, apsaramq_mqtt5_options, apsaramq_options,
    apsaramq_options_with, check_not_shared, check_payload, check_qos, check_retain, check_will,
};
pub use token_notice::{
    NoticeError, TOKEN_EXPIRE_NOTICE_TOPIC, TOKEN_INVALID_NOTICE_TOPIC, TokenNotice,
    parse_token_notice,
};
#[cfg(feature = "mio")]
pub use token_refresh::upload_token;
#[cfg(feature = "tokio")]
pub use token_refresh::upload_token_async;
pub use token_refresh::{UPLOAD_TOKEN_TOPIC, upload_token_payload};
pub use topic::{TopicError, TopicRules, is_p2p_for, p2p_topic};

// The client-side types this crate's API takes and returns, so that neither `sansmq` nor
// `sansmq-driver` need be dependencies of its users. `ClientError` is what the clients fail with
// and what [`ApsaraMqCallback::connection_lost`] receives; MQTT's own topic rules fail with
// `MqttTopicError` (inside [`TopicError::Mqtt`]).
pub use sansmq::client::ProtocolViolation;
pub use sansmq::packet::{ConnectReturnCode, DecodeError, Protocol, QoS};
pub use sansmq::{
    CommandError, DisconnectReason, TopicError as MqttTopicError, TopicFilter, TopicName,
};
pub use sansmq_driver::{Diagnosis, Error as ClientError, Mqtt5Options};

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
