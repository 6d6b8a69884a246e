//! [`HttpConnectError`]: why an HTTP CONNECT handshake failed.

/// Why an HTTP CONNECT handshake failed: what the proxy answered, or a target or login the
/// request cannot carry. Messages never show the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConnectError {
    /// The broker's host name holds what an HTTP request line cannot carry.
    #[error("the broker's host name {host:?} cannot go in a CONNECT request")]
    InvalidHost {
        /// The host name.
        host: String,
    },
    /// The user name holds a `:`, which Basic authentication cannot carry (RFC 7617 section 2).
    #[error("the proxy user name {username:?} holds ':', which Basic authentication cannot carry")]
    InvalidUsername {
        /// The user name.
        username: String,
    },
    /// 407 without a login: the proxy wants one.
    #[error(
        "the proxy wants a login (407 Proxy Authentication Required): give one in the proxy URL, \
         http://user:password@host:port"
    )]
    LoginRequired,
    /// 407 with a login: the proxy refused it.
    #[error("the proxy refused the login of user {username:?} (407 Proxy Authentication Required)")]
    LoginRefused {
        /// The user name sent.
        username: String,
    },
    /// 403: the proxy does not allow connecting there (often only port 443 is allowed).
    #[error("the proxy forbids connecting to {target} (403 Forbidden)")]
    Forbidden {
        /// The broker asked for, `host:port`.
        target: String,
    },
    /// 502, 503 or 504: the proxy could not reach the broker (down, unknown name, timed out).
    #[error("the proxy cannot reach the broker {target}: HTTP {status} {reason}")]
    Unreachable {
        /// The broker asked for, `host:port`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
    },
    /// Another status than 2xx, 403, 407, 502, 503, 504.
    #[error("the proxy refused to connect to {target}: HTTP {status} {reason}")]
    Refused {
        /// The broker asked for, `host:port`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
    },
    /// The answer is not an HTTP response (is it an HTTP proxy?).
    #[error("the proxy's answer is not HTTP ({reason}); is it an HTTP proxy?")]
    NotHttp {
        /// What the parser found wrong.
        reason: String,
    },
    /// The response head is longer than the handshake reads.
    #[error("the proxy's response head is over {limit} bytes")]
    ResponseTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// Bytes came after the proxy's 2xx answer before the client spoke: the broker never speaks
    /// first in MQTT, so they are not the broker's.
    #[error(
        "the proxy sent {count} bytes after its answer, before the client spoke; a broker never \
         speaks first"
    )]
    BytesAfterResponse {
        /// How many.
        count: usize,
    },
    /// The proxy closed the connection before it answered.
    #[error("the proxy closed the connection before answering")]
    Closed,
}
