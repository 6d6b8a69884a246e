//! MQTT over WebSocket (RFC 6455, MQTT 3.1.1 section 6): what every client's WebSocket transport
//! shares — the subprotocol, the headers a user may not set, and [`WebSocketError`].

use crate::ServerUri;

/// The WebSocket subprotocol of MQTT: the client offers it (MQTT-6.0.0-3) and the server must
/// select it (MQTT-6.0.0-4).
pub const SUBPROTOCOL: &str = "mqtt";

/// Why MQTT over WebSocket failed, beneath the MQTT connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketError {
    /// An extra header that the upgrade request sets itself (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`).
    #[error("the upgrade header {name:?} is set by the WebSocket handshake itself")]
    ReservedHeader {
        /// The header's name, as given.
        name: String,
    },
    /// An extra header that HTTP cannot carry. Its value is never shown: it may be a secret.
    #[error("the upgrade header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name, as given.
        name: String,
        /// What is wrong with its name or value.
        reason: &'static str,
    },
    /// The server answered the upgrade with another HTTP status than 101 (404 for a path it
    /// does not serve, 401 for a refused login).
    #[error(
        "the server refused the WebSocket upgrade of {path}: HTTP {status}{}",
        reason_suffix(reason)
    )]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// Its reason phrase, if the status has a standard one.
        reason: Option<String>,
        /// The path requested, without its query (which may carry a signature).
        path: String,
    },
    /// The server's answer is not a WebSocket upgrade (not HTTP, or a 101 without the upgrade's
    /// headers).
    #[error("the server did not answer as a WebSocket server: {0}")]
    NotWebSocket(String),
    /// The server did not select the `mqtt` subprotocol (MQTT-6.0.0-4).
    #[error("the server did not select the WebSocket subprotocol \"mqtt\" (MQTT-6.0.0-4): {0}")]
    Subprotocol(String),
    /// The server sent a text frame: MQTT travels in binary frames only (MQTT-6.0.0-1).
    #[error("the server sent a text frame; MQTT travels in binary frames (MQTT-6.0.0-1)")]
    TextFrame,
    /// The server broke the WebSocket protocol (a bad frame, an unmasked close code...).
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason.as_ref().map(|r| format!(" {r}")).unwrap_or_default()
}

/// Refuses an extra upgrade header that the WebSocket handshake sets itself, or that HTTP cannot
/// carry (a name that is not a token, a value with control characters).
pub fn check_header(name: &str, value: &str) -> Result<(), WebSocketError> {
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), "host" | "upgrade" | "connection")
        || lower.starts_with("sec-websocket-")
    {
        return Err(WebSocketError::ReservedHeader {
            name: name.to_owned(),
        });
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(WebSocketError::InvalidHeader {
            name: name.to_owned(),
            reason: "not a valid HTTP header name",
        });
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(WebSocketError::InvalidHeader {
            name: name.to_owned(),
            reason: "its value holds control characters",
        });
    }
    Ok(())
}

/// Checks every extra header of the upgrade request (see
/// [`ConnectOptions::websocket_header`](crate::ConnectOptions::websocket_header)) with
/// [`check_header`]; the error names the header and `uri`, never the value.
pub fn check_headers(uri: &ServerUri, headers: &[(String, String)]) -> Result<(), crate::Error> {
    headers
        .iter()
        .try_for_each(|(name, value)| check_header(name, value))
        .map_err(|e| error(uri, e))
}

/// The path of `uri`'s upgrade request without its query, for messages: a query may carry a
/// signature or a token.
pub fn path_for_display(uri: &ServerUri) -> &str {
    let path = uri.websocket_path.as_deref().unwrap_or_default();
    path.split_once('?').map_or(path, |(path, _)| path)
}

/// `uri` without the query of its path, for messages (see [`path_for_display`]).
pub fn uri_for_display(uri: &ServerUri) -> String {
    let shown = uri.to_string();
    match shown.split_once('?') {
        Some((before, _)) => before.to_owned(),
        None => shown,
    }
}

/// [`Error::WebSocket`](crate::Error::WebSocket) at `uri`.
pub fn error(uri: &ServerUri, error: WebSocketError) -> crate::Error {
    crate::Error::WebSocket {
        uri: uri_for_display(uri),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_the_handshake_sets_are_refused_by_name_in_any_case() {
        for name in [
            "Host",
            "upgrade",
            "CONNECTION",
            "Sec-WebSocket-Protocol",
            "sec-websocket-key",
        ] {
            assert_eq!(
                check_header(name, "x"),
                Err(WebSocketError::ReservedHeader {
                    name: name.to_owned()
                }),
            );
        }
        assert_eq!(check_header("Authorization", "Bearer t"), Ok(()));
    }

    #[test]
    fn a_header_http_cannot_carry_is_refused_without_its_value() {
        let error = check_header("X-Token", "S3CRET\r\nX-Evil: 1").unwrap_err();
        assert!(!error.to_string().contains("S3CRET"), "{error}");
        assert!(check_header("bad name", "v").is_err());
    }

    #[test]
    fn a_refused_upgrade_names_the_status_and_path() {
        let error = WebSocketError::Refused {
            status: 404,
            reason: Some("Not Found".into()),
            path: "/wrong".into(),
        };
        assert_eq!(
            error.to_string(),
            "the server refused the WebSocket upgrade of /wrong: HTTP 404 Not Found"
        );
    }

    #[test]
    fn the_displayed_path_drops_the_query() {
        let uri: ServerUri = "wss://h/mqtt?X-Amz-Signature=abc".parse().unwrap();
        assert_eq!(path_for_display(&uri), "/mqtt");
        assert_eq!(uri_for_display(&uri), "wss://h:443/mqtt");
    }
}
