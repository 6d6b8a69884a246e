//! [`HttpConnectHandshake`]: the client side of an HTTP proxy's CONNECT method (RFC 9110 section
//! 9.3.6, with Basic authentication, RFC 7617) as a sans-IO state machine, run by each driver on a
//! fresh connection to the proxy before TLS and MQTT start, in the same steps as the
//! [`socks5`](crate::socks5) handshake:
//!
//! 1. [`HttpConnectHandshake::new`] queues `CONNECT host:port HTTP/1.1`; the driver writes what
//!    [`poll_transmit`](HttpConnectHandshake::poll_transmit) returns, reporting each write with
//!    [`handle_transmitted`](HttpConnectHandshake::handle_transmitted);
//! 2. it hands every byte it reads to
//!    [`handle_received`](HttpConnectHandshake::handle_received), which parses the response head
//!    (with `httparse`) once it is complete, or fails with an [`HttpConnectError`];
//! 3. once [`is_connected`](HttpConnectHandshake::is_connected), the connection leads to the
//!    broker.
//!
//! ```
//! use sansmq_driver::http_connect::HttpConnectHandshake;
//!
//! let mut handshake = HttpConnectHandshake::new("broker.example", 8883, None)?;
//! let request = handshake.poll_transmit().to_vec();
//! assert!(request.starts_with(b"CONNECT broker.example:8883 HTTP/1.1\r\nHost: broker.example:8883\r\n"));
//! handshake.handle_transmitted(request.len());
//! handshake.handle_received(b"HTTP/1.1 200 Connection")?;
//! assert!(!handshake.is_connected());
//! handshake.handle_received(b" established\r\n\r\n")?;
//! assert!(handshake.is_connected());
//! # Ok::<(), sansmq_driver::http_connect::HttpConnectError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::proxy::ProxyLogin;

mod error;

pub use error::HttpConnectError;

/// The longest response head read: proxies answer CONNECT with a few short headers.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Headers parsed in the response.
const MAX_HEADERS: usize = 64;

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the response head.
    Response,
    /// The proxy connected to the broker.
    Connected,
    Failed,
}

/// An HTTP CONNECT handshake in progress. `Debug` never shows the request (it may hold the
/// password).
pub struct HttpConnectHandshake {
    state: State,
    /// `host:port`, an IPv6 address in brackets.
    target: String,
    /// The user name sent, if any.
    username: Option<String>,
    outgoing: Vec<u8>,
    written: usize,
    incoming: Vec<u8>,
}

impl fmt::Debug for HttpConnectHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConnectHandshake")
            .field("state", &self.state)
            .field("target", &self.target)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl HttpConnectHandshake {
    /// A handshake asking the proxy for a tunnel to `host:port`, with a `Proxy-Authorization:
    /// Basic` header when `login` is given; the request is queued. Fails for a host name that
    /// holds white space, `/`, `@` or control characters, or a user name holding `:`.
    pub fn new(
        host: &str,
        port: u16,
        login: Option<&ProxyLogin>,
    ) -> Result<Self, HttpConnectError> {
        let bad =
            |c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#');
        if host.is_empty() || host.contains(bad) {
            return Err(HttpConnectError::InvalidHost {
                host: host.to_owned(),
            });
        }
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        // RFC 9110 section 9.3.6: the request target is the authority; Host repeats it.
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(login) = login {
            if login.username.contains(':') {
                return Err(HttpConnectError::InvalidUsername {
                    username: login.username.clone(),
                });
            }
            let credentials = format!("{}:{}", login.username, login.password);
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(&STANDARD.encode(credentials.as_bytes()));
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        Ok(Self {
            state: State::Response,
            target,
            username: login.map(|l| l.username.clone()),
            outgoing: request.into_bytes(),
            written: 0,
            incoming: Vec::new(),
        })
    }

    /// The bytes to write to the proxy now; empty when there are none. Report what was written
    /// with [`handle_transmitted`](Self::handle_transmitted).
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        self.outgoing.get(self.written..).unwrap_or_default()
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were written.
    pub fn handle_transmitted(&mut self, n: usize) {
        self.written = self.written.saturating_add(n).min(self.outgoing.len());
    }

    /// Bytes read from the proxy, in any split. Completes the handshake once the response head is
    /// whole and says 2xx; an error ends it, and the driver closes the connection.
    pub fn handle_received(&mut self, bytes: &[u8]) -> Result<(), HttpConnectError> {
        let result = match self.state {
            State::Failed => Err(HttpConnectError::Closed),
            State::Connected => Err(HttpConnectError::BytesAfterResponse { count: bytes.len() }),
            State::Response => {
                self.incoming.extend_from_slice(bytes);
                self.parse()
            }
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// The proxy closed the connection: the error to report.
    pub fn handle_closed(&mut self) -> HttpConnectError {
        self.state = State::Failed;
        HttpConnectError::Closed
    }

    /// Whether the proxy has connected to the broker: the next byte read is the broker's.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The broker asked for, `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Parses the response head once it is complete.
    fn parse(&mut self) -> Result<(), HttpConnectError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.incoming) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.incoming.len() > MAX_RESPONSE_HEAD => {
                return Err(HttpConnectError::ResponseTooLong {
                    limit: MAX_RESPONSE_HEAD,
                });
            }
            Ok(httparse::Status::Partial) => return Ok(()),
            Err(e) => {
                return Err(HttpConnectError::NotHttp {
                    reason: e.to_string(),
                });
            }
        };
        let status = response.code.unwrap_or_default();
        let reason = response.reason.unwrap_or_default().to_owned();
        let target = self.target.clone();
        match status {
            200..=299 => {
                // The broker never speaks first: whatever follows the head is not its.
                let count = self.incoming.len().saturating_sub(head_len);
                if count > 0 {
                    return Err(HttpConnectError::BytesAfterResponse { count });
                }
                self.state = State::Connected;
                self.incoming = Vec::new();
                Ok(())
            }
            407 => Err(match &self.username {
                Some(username) => HttpConnectError::LoginRefused {
                    username: username.clone(),
                },
                None => HttpConnectError::LoginRequired,
            }),
            403 => Err(HttpConnectError::Forbidden { target }),
            502..=504 => Err(HttpConnectError::Unreachable {
                target,
                status,
                reason,
            }),
            _ => Err(HttpConnectError::Refused {
                target,
                status,
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
