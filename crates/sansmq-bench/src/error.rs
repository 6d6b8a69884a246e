//! [`Error`]: why a bench could not start. What goes wrong once it runs (a refused connect, a
//! lost connection) is counted in the summary instead.

use std::io;

/// Why a bench could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic or message template is malformed.
    #[error("template {template:?}: {problem}")]
    Template {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The options do not fit together; the message says which and why.
    #[error("{0}")]
    Options(String),
    /// A rendered topic, client id or user name is not valid MQTT.
    #[error("{what} {value:?}: {reason}")]
    Invalid {
        /// Which string.
        what: &'static str,
        /// Its value.
        value: String,
        /// Why MQTT refuses it.
        reason: String,
    },
    /// The broker's host name did not resolve.
    #[error("resolving {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// TLS could not be set up (roots, client key, server name), or this build has no TLS.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTML report could not be drawn.
    #[error("HTML report: {0}")]
    Report(String),
    /// An event loop could not be created or started.
    #[error("starting an event loop: {0}")]
    EventLoop(io::Error),
}
