//! [`Error`]: everything this crate refuses, saying what and why.

use crate::{ClientIdError, CredentialsError, EndpointError, TopicError};

/// Why something cannot be used with ApsaraMQ.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client id breaks ApsaraMQ's rules.
    #[error(transparent)]
    ClientId(#[from] ClientIdError),
    /// Credentials cannot be made.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A topic breaks ApsaraMQ's or MQTT's rules.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// An endpoint cannot be built.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The client refused an option (a bad URI, say).
    #[error(transparent)]
    Options(#[from] sansmq_driver::Error),
    /// A will message was set.
    #[error(
        "will message on {topic:?}: ApsaraMQ does not support will messages; publish a status message from your application instead"
    )]
    WillNotSupported {
        /// The will's topic.
        topic: String,
    },
    /// A message was to be retained.
    #[error("ApsaraMQ does not support retained messages; publish with retain = false")]
    RetainNotSupported,
    /// A shared subscription (`$share/...`).
    #[error(
        "{filter:?} is a shared subscription: ApsaraMQ does not support shared subscriptions; subscribe to the topic itself"
    )]
    SharedSubscriptionNotSupported {
        /// The filter.
        filter: String,
    },
    /// QoS 2 with `clean_session == false`.
    #[error(
        "ApsaraMQ does not support QoS 2 without a clean session; use QoS 1 for offline messages (clean session off), or a clean session for QoS 2"
    )]
    Qos2WithPersistentSession,
    /// A payload over the limit.
    #[error(
        "payload of {len} bytes: ApsaraMQ discards messages over {max} bytes (64 KiB), and the client would reconnect in a loop"
    )]
    PayloadTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}
