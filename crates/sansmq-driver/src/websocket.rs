//! What every WebSocket transport shares: the subprotocol it asks for, the check of the extra
//! upgrade headers, and [`WebSocketError`], why carrying MQTT over WebSocket failed.
//!
//! The framing itself belongs to a WebSocket crate (tungstenite) in each driver; MQTT's bytes
//! travel in binary frames with any boundaries (MQTT 3.1.1 section 6).

use crate::Error;

/// The subprotocol of MQTT over WebSocket, offered in `Sec-WebSocket-Protocol` (MQTT 3.1.1
/// section 6: "mqtt").
pub const SUBPROTOCOL: &str = "mqtt";

/// Why a WebSocket connection to a broker failed or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketError {
    /// An extra header the handshake sets itself (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`): sending it twice would break the upgrade.
    #[error("the upgrade header {name:?} is set by the WebSocket handshake itself")]
    ReservedHeader {
        /// The header name as given.
        name: String,
    },
    /// An extra header whose name or value HTTP does not allow.
    #[error("the upgrade header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with it (the value is never shown: it may be a secret).
        reason: &'static str,
    },
    /// The server answered the upgrade request with another HTTP status than 101 (404: no
    /// WebSocket endpoint at this path; 401/403: the upgrade headers did not authenticate).
    #[error("the server refused the upgrade: HTTP {status} {reason}")]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The status's reason phrase, when the status has a standard one.
        reason: String,
    },
    /// The upgrade failed otherwise: an answer that is not HTTP, no `mqtt` subprotocol in it...
    #[error("the upgrade failed: {0}")]
    Handshake(String),
    /// The server sent a text frame: MQTT travels in binary frames only.
    #[error("the server sent a text frame; MQTT travels in binary frames")]
    TextFrame,
    /// A frame that breaks RFC 6455 (bad masking, an oversized frame, an invalid close...).
    #[error("{0}")]
    Protocol(String),
}

/// Checks the extra headers of the upgrade request (see
/// [`ConnectOptions::websocket_header`](crate::ConnectOptions::websocket_header)): an HTTP
/// token for a name, no control character in a value, none of the headers the handshake sets
/// itself. The error names the header, never its value.
pub fn check_headers(uri: &crate::ServerUri, headers: &[(String, String)]) -> Result<(), Error> {
    let refuse = |error| Error::WebSocket {
        uri: uri.to_string(),
        error,
    };
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "host" | "upgrade" | "connection")
            || lower.starts_with("sec-websocket-")
        {
            return Err(refuse(WebSocketError::ReservedHeader {
                name: name.clone(),
            }));
        }
        // RFC 9110 section 5.6.2: a field name is a token.
        let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(refuse(WebSocketError::InvalidHeader {
                name: name.clone(),
                reason: "a header name is letters, digits and !#$%&'*+-.^_`|~",
            }));
        }
        // RFC 9110 section 5.5: no CR, LF or NUL in a field value.
        if value.bytes().any(|c| c.is_ascii_control() && c != b'\t') {
            return Err(refuse(WebSocketError::InvalidHeader {
                name: name.clone(),
                reason: "the value holds a control character",
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), Error> {
        let uri = "ws://broker.example/mqtt".parse().unwrap();
        check_headers(&uri, &[(name.to_owned(), value.to_owned())])
    }

    #[test]
    fn the_handshakes_own_headers_are_refused_by_name() {
        for name in [
            "Host",
            "upgrade",
            "CONNECTION",
            "Sec-WebSocket-Protocol",
            "sec-websocket-key",
        ] {
            let error = check(name, "x").unwrap_err();
            let Error::WebSocket { uri, error } = error else {
                panic!("{error}");
            };
            assert_eq!(uri, "ws://broker.example:80/mqtt");
            assert_eq!(error, WebSocketError::ReservedHeader { name: name.into() });
        }
    }

    #[test]
    fn an_authorization_header_passes() {
        check("Authorization", "Bearer abc").unwrap();
        check("X-Device-Id", "17").unwrap();
    }

    #[test]
    fn a_broken_header_is_refused_without_showing_its_value() {
        let error = check("Authorization", "Bearer S3CRET\r\nX-Evil: 1").unwrap_err();
        assert!(error.to_string().contains("\"Authorization\""), "{error}");
        assert!(!error.to_string().contains("S3CRET"), "{error}");
        assert!(check("Bad Name", "x").is_err());
        assert!(check("", "x").is_err());
    }
}
