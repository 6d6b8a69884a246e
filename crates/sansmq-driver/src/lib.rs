//! # sansmq-driver: what every sansmq driver shares
//!
//! The blocking client ([`sansmq-mio`](https://docs.rs/sansmq-mio)) and the async one
//! ([`sansmq-tokio`](https://docs.rs/sansmq-tokio)) take the same [`ConnectOptions`], speak to the
//! same [`ServerUri`]s, verify brokers with the same rustls configuration ([`tls`]), wait between
//! reconnects with the same jittered [`Backoff`], explain a broker that hangs up with the same
//! [`Diagnostics`], and fail with the same [`Error`]. They live here
//! once, so an option means the same thing in both clients and a credentials provider (such as
//! ApsaraMQ's signer) plugs into either.
//!
//! A driver turns options into the core's configuration, and asks for credentials before every
//! connect:
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

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backoff;
pub mod closing;
mod deadline;
pub mod diagnosis;
pub mod dial;
mod error;
mod message;
mod options;
mod redact;
pub mod resubscription;
mod rotation;
pub mod rules;
pub mod supervisor;
pub mod tls;
mod uri;

pub use backoff::Backoff;
pub use closing::Closing;
pub use deadline::deadline_after;
pub use diagnosis::{Diagnosis, Diagnostics, Operation};
pub use dial::Dial;
pub use error::Error;
pub use message::{AckKey, Message};
pub use options::{ConnectOptions, Credentials, CredentialsProvider, ResubscribePolicy, Will};
pub use redact::{REDACTED, redact_uri, redact_userinfo, split_login};
pub use rotation::ServerRotation;
pub use rules::{BrokerRules, OutgoingPublish};
pub use supervisor::Supervisor;
pub use tls::{KeyPassword, KeyProblem, TlsOptions, TrustRoots};
pub use uri::ServerUri;
