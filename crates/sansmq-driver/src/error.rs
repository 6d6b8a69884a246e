//! [`Error`]: everything a blocking call can fail with, saying what failed and why.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sansmq::client::ServerReason;
use sansmq::packet::{ConnectReturnCode, ReasonCode};
use sansmq::{CommandError, DisconnectReason, TopicError};
use sansmq_store::StoreError;

use crate::Diagnosis;
use crate::redact::redact_uri;
use crate::tls::KeyProblem;

/// Why an operation failed.
///
/// `Debug` prints the same one line as `Display`, so that an error returned from
/// `fn main() -> Result<(), Error>` reads `Error: connecting to tcp://…: Connection refused`
/// rather than a dump of the enum; match on the variants for the details.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A server URI that cannot be used.
    #[error("server URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given, its password (if any) replaced by `***` ([`Error::invalid_uri`]).
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A proxy URL that cannot be used.
    #[error("proxy URL {url:?}: {reason}")]
    InvalidProxy {
        /// The URL as given, its password (if any) replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The proxy did not lead to the broker: it refused the login or the connection, or does not
    /// speak SOCKS5.
    #[error("SOCKS5 proxy {proxy}: {error}")]
    Proxy {
        /// The proxy, `host:port`.
        proxy: String,
        /// What went wrong.
        error: crate::socks5::Socks5Error,
    },
    /// The HTTP proxy did not lead to the broker: it wants a (different) login, forbids the
    /// broker, cannot reach it, or does not speak HTTP.
    #[error("HTTP proxy {proxy}: {error}")]
    HttpProxy {
        /// The proxy, `host:port`.
        proxy: String,
        /// What went wrong.
        error: crate::http_connect::HttpConnectError,
    },
    /// Carrying MQTT over WebSocket to a `ws://` or `wss://` URI failed: the upgrade was refused
    /// (with its HTTP status), an upgrade header is not allowed, or the server broke the framing.
    #[error("WebSocket {uri}: {error}")]
    WebSocket {
        /// The server URI, without the query of its path (which may carry a signature).
        uri: String,
        /// What went wrong.
        error: crate::websocket::WebSocketError,
    },
    /// This client cannot do what an option asks (e.g. a Unix socket in a client whose runtime
    /// has none); nothing was opened.
    #[error("{option}: {reason}")]
    Unsupported {
        /// The option, e.g. `ConnectOptions::proxy`.
        option: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// An option needs a part of sansmq that this build leaves out with its cargo feature: TLS
    /// (`rustls`), Mozilla's roots (`webpki-roots`) or the system's (`native-roots`); nothing
    /// was opened.
    #[error(
        "{what} needs the cargo feature `{feature}` of sansmq-driver (also named so in \
         sansmq-mio, sansmq-tokio and sansmq-apsaramq), which this build leaves out"
    )]
    FeatureNotBuilt {
        /// What asked for it, e.g. `TLS to ssl://broker:8883`.
        what: String,
        /// The cargo feature.
        feature: &'static str,
    },
    /// A topic name or filter breaks MQTT's rules.
    #[error(transparent)]
    InvalidTopic(#[from] TopicError),
    /// A client identifier, user name or other string is not a valid MQTT string.
    #[error("{field}: {reason}")]
    InvalidString {
        /// Which setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host:?}: {reason}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's message.
        reason: String,
    },
    /// A socket operation failed.
    #[error("{context}: {reason}")]
    Io {
        /// What was being done, e.g. `connecting to tcp://host:1883`.
        context: String,
        /// The operating system's message.
        reason: String,
    },
    /// The TLS setup or handshake failed (unknown CA, wrong host name, bad certificate file...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The private key for mutual TLS cannot be used: encrypted without a password, a wrong
    /// password, no key in the file...
    #[error("TLS client key {path}: {problem}")]
    ClientKey {
        /// The key file.
        path: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// The broker refused the connection.
    #[error("the broker refused the connection: {0}")]
    Refused(ConnectReturnCode),
    /// No answer within the time allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection ended.
    #[error("connection lost: {0}")]
    ConnectionLost(DisconnectReason),
    /// The broker closed the connection, and the timing says why (see [`Diagnosis`]): a topic
    /// the client may not use, or another client with the same id.
    #[error("{0}")]
    ClosedByBroker(Diagnosis),
    /// The broker's rules ([`ConnectOptions::broker_rules`](crate::ConnectOptions::broker_rules))
    /// refuse this; nothing was sent.
    #[error("not sent: {0}")]
    NotAllowed(String),
    /// The broker refused to subscribe to a filter: SUBACK 0x80 in MQTT 3.1.1, or an MQTT 5
    /// failure Reason Code such as 0x87 Not authorized.
    #[error("the broker refused the subscription to {filter:?} (SUBACK {reason_code})")]
    SubscribeRefused {
        /// The filter.
        filter: String,
        /// The SUBACK's code for it.
        reason_code: ReasonCode,
    },
    /// MQTT 5: the broker refused a QoS 1/2 message with a failure Reason Code in its PUBACK or
    /// PUBREC (such as 0x87 Not authorized or 0x97 Quota exceeded), with its Reason String if it
    /// sent one. The message is done; it is not sent again.
    #[error("the broker refused the message: {0}")]
    PublishRefused(ServerReason),
    /// MQTT 5: the message waited in the offline queue longer than its Message Expiry Interval
    /// and was given up unsent.
    #[error("the message expired before it could be sent (Message Expiry Interval)")]
    Expired,
    /// The client cannot do this now (not connected, queue full, message too large...).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// `disconnect` was called or the client was dropped.
    #[error("the client is closed")]
    Closed,
    /// The session store could not be opened, or failed while the client ran; the client stops
    /// then (see [`ConnectOptions::session_dir`](crate::ConnectOptions::session_dir)).
    #[error("session store: {0}")]
    SessionStore(Arc<StoreError>),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::SessionStore(Arc::new(error))
    }
}

impl Error {
    /// [`Error::InvalidUri`] for `uri`, with the password it may hold replaced by `***`
    /// ([`redact_uri`]): an error message must never show a secret.
    pub fn invalid_uri(uri: &str, reason: impl Into<String>) -> Self {
        Self::InvalidUri {
            uri: redact_uri(uri).into_owned(),
            reason: reason.into(),
        }
    }

    /// [`Error::InvalidProxy`] for `url`, with the password it may hold replaced by `***`.
    pub fn invalid_proxy(url: &str, reason: impl Into<String>) -> Self {
        Self::InvalidProxy {
            url: redact_uri(url).into_owned(),
            reason: reason.into(),
        }
    }

    /// An IO error while doing `context`.
    pub fn io(context: impl Into<String>, error: &std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            reason: error.to_string(),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_one_line_display_that_main_prints() {
        for error in [
            Error::invalid_uri("tcp://user:secret@host:1883:1884", "a second port"),
            Error::Refused(ConnectReturnCode::BadUserNameOrPassword),
            Error::ConnectionLost(DisconnectReason::TransportClosed),
            Error::Command(CommandError::NotConnected),
        ] {
            let debug = format!("{error:?}");
            assert_eq!(debug, error.to_string());
            assert!(
                !debug.contains('\n') && !debug.contains("secret"),
                "{debug}"
            );
        }
    }
}
