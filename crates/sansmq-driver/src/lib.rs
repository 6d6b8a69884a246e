//! # sansmq-driver: what every sansmq driver shares
//!
//! The blocking client ([`sansmq-mio`](https://docs.rs/sansmq-mio)), the tokio one
//! ([`sansmq-tokio`](https://docs.rs/sansmq-tokio)) and the runtime-agnostic one
//! ([`sansmq-futures`](https://docs.rs/sansmq-futures)) are thin shells around one
//! [`Supervisor`]: the sans-IO state machine of a connection's whole life — which server URI to
//! try, the credentials of each attempt, jittered reconnects, re-subscribing, when each request
//! completes and with which [`Error`], how a requested disconnect ends, and what a broker's close
//! means ([`Diagnostics`]). A driver only opens transports, moves bytes, reads a clock and hands
//! results to its application; [`guide`] shows how to write one for a new runtime.
//!
//! They also share what the supervisor is configured with: the same [`ConnectOptions`], the same
//! [`ServerUri`]s, the same rustls configuration ([`tls`]), so an option means the same thing in
//! every client and a credentials provider (such as ApsaraMQ's signer) plugs into any of them.
//!
//! Options become the core's configuration, with credentials asked for before every connect:
//!
//! ```
//! use std::time::Duration;
//! use sansmq_driver::ConnectOptions;
//!
//! # fn main() -> Result<(), sansmq_driver::Error> {
//! let options = ConnectOptions::new("tcp://127.0.0.1:1883", "GID_demo@@@device-1")?
//!     .keep_alive(Duration::from_secs(90))
//!     .credentials("user", "secret");
//! let mut config = options.core_config()?;
//! options.apply_credentials(&mut config)?;
//! assert_eq!(config.keep_alive, Duration::from_secs(90));
//! assert!(config.username.is_some());
//! assert!(format!("{options:?}").find("secret").is_none());
//! # Ok(())
//! # }
//! ```
//!
//! ## Cargo features
//!
//! TLS and its root stores, all on by default (the clients pass them on under the same names):
//!
//! - `rustls`: TLS for `ssl://`, `mqtts://` and `wss://` URIs, rustls with ring
//!   ([`ConnectOptions::tls_config`]), and encrypted client keys;
//! - `webpki-roots`: Mozilla's root certificates, compiled in ([`TrustRoots::WebPki`], the
//!   default roots); turns `rustls` on;
//! - `native-roots`: the operating system's certificate store ([`TrustRoots::System`]); turns
//!   `rustls` on.
//!
//! Without `rustls`, rustls and ring are not built; the settings ([`TlsOptions`], [`TrustRoots`],
//! ...) stay, and [`ConnectOptions::tls_config`] refuses a TLS URI with
//! [`Error::FeatureNotBuilt`], naming the URI and the feature, as the clients are made. Roots
//! whose feature is left out are refused the same way; with `native-roots` but not
//! `webpki-roots`, the system store is the default. `rustls` names the TLS library, as ureq's
//! feature does (rumqttc says `use-rustls`, reqwest `rustls-tls`), so that another could come
//! beside it; the root stores are named as the ends of reqwest's `rustls-tls-webpki-roots` and
//! `rustls-tls-native-roots`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backoff;
pub mod channel;
pub mod closing;
#[cfg(test)]
mod counting_waker;
mod deadline;
pub mod diagnosis;
pub mod dial;
mod error;
pub mod guide;
pub mod http_connect;
mod last_topic;
mod message;
mod mqtt5;
mod options;
pub mod outcomes;
pub mod proxy;
mod proxy_env;
mod proxy_handshake;
mod read_size;
mod redact;
pub mod resubscription;
mod rotation;
pub mod rules;
mod session_store;
pub mod socks5;
pub mod supervisor;
pub mod tls;
mod uri;
pub mod websocket;

pub use backoff::Backoff;
pub use closing::Closing;
pub use deadline::deadline_after;
pub use diagnosis::{Diagnosis, Diagnostics, Operation};
pub use dial::Dial;
pub use error::Error;
pub use last_topic::LastTopic;
pub use message::{AckKey, Message};
pub use mqtt5::Mqtt5Options;
pub use options::{ConnectOptions, Credentials, CredentialsProvider, ResubscribePolicy, Will};
pub use proxy::{ProxyLogin, ProxyOptions, ProxyProtocol};
pub use proxy_handshake::ProxyHandshake;
pub use read_size::ReadSize;
pub use redact::{REDACTED, redact_uri, redact_userinfo, split_login};
pub use rotation::ServerRotation;
pub use rules::{BrokerRules, OutgoingPublish};
pub use sansmq_store::{FileStore, SessionStore, StoreError, SyncPolicy};
pub use session_store::SessionStoreOptions;
pub use supervisor::Supervisor;
pub use tls::{CipherList, KeyPassword, KeyProblem, TlsOptions, TlsVersion, TrustRoots};
pub use uri::{DEFAULT_WEBSOCKET_PATH, ServerUri};

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
