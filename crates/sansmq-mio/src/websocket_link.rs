//! [`WebSocketLink`]: MQTT over WebSocket (RFC 6455, MQTT 3.1.1 section 6) on a non-blocking
//! stream, plain (`ws://`) or under TLS (`wss://`). tungstenite does the upgrade and the framing;
//! this file resumes them when the socket is ready and moves the core's bytes in binary frames.

use std::io::{self, Read, Write};

use bytes::Bytes;
#[cfg(feature = "rustls")]
use rustls::ClientConnection;
use sansmq_driver::websocket::{self as ws, SUBPROTOCOL, WebSocketError};
use sansmq_driver::{DEFAULT_WEBSOCKET_PATH, ServerUri};
use tungstenite::handshake::client::{ClientHandshake, Request};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::Error;
use crate::socket::Socket;
use crate::transport::ReadOutcome;

/// The largest frame made of the core's bytes: what it has ready goes out in one frame up to
/// this, so that a turn's memory stays bounded.
const MAX_OUTGOING_FRAME: usize = 256 * 1024;
/// The largest message or frame accepted from the server: MQTT's largest packet (a remaining
/// length of 268,435,455 and its 5-byte fixed header); the core enforces its own limit on the
/// packets inside.
const MAX_INCOMING: usize = 268_435_455 + 5;

/// The bytes under the WebSocket: the socket, or TLS over it.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(Socket),
    #[cfg(feature = "rustls")]
    Tls(Box<ClientConnection>, Socket),
}

impl Stream {
    pub(crate) fn socket(&mut self) -> &mut Socket {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "rustls")]
            Self::Tls(_, s) => s,
        }
    }

    /// Sends TLS `close_notify`; `Ok(false)` while its record waits for room in the socket.
    fn close_tls(&mut self) -> io::Result<bool> {
        match self {
            Self::Plain(_) => Ok(true),
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => {
                conn.send_close_notify();
                push_tls(conn, socket)?;
                Ok(!conn.wants_write())
            }
        }
    }
}

/// Reads plaintext, taking TLS records from the socket as needed; `WouldBlock` once neither has
/// any, `Ok(0)` at the end of the stream.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.read(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => read_plaintext(conn, socket, buf),
        }
    }
}

/// Reads plaintext from `conn`, taking its records from `socket` as needed.
#[cfg(feature = "rustls")]
fn read_plaintext(
    conn: &mut ClientConnection,
    socket: &mut Socket,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match conn.read_tls(socket) {
            Ok(0) => return Ok(0),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        conn.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Handshake answers, or data written before the handshake was done.
        push_tls(conn, socket)?;
    }
}

/// Writes plaintext into TLS and its records to the socket as far as it takes them;
/// `WouldBlock` when TLS holds as much as it may.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.write(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => write_plaintext(conn, socket, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(_) => Ok(()),
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => {
                push_tls(conn, socket)?;
                match conn.wants_write() {
                    true => Err(io::ErrorKind::WouldBlock.into()),
                    false => Ok(()),
                }
            }
        }
    }
}

/// Writes plaintext into `conn` and its records to `socket`; `WouldBlock` when TLS holds as much
/// as it may.
#[cfg(feature = "rustls")]
fn write_plaintext(
    conn: &mut ClientConnection,
    socket: &mut Socket,
    buf: &[u8],
) -> io::Result<usize> {
    let mut n = conn.writer().write(buf)?;
    push_tls(conn, socket)?;
    if n == 0 && !buf.is_empty() {
        n = conn.writer().write(buf)?;
        push_tls(conn, socket)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
    }
    Ok(n)
}

/// Writes TLS records to the socket until it would block or none is left.
#[cfg(feature = "rustls")]
fn push_tls(conn: &mut ClientConnection, socket: &mut Socket) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How far the WebSocket has come.
enum State {
    /// The upgrade request is sent, or its answer awaited.
    Upgrading(MidHandshake<ClientHandshake<Stream>>),
    Open(WebSocket<Stream>),
    /// The upgrade failed: tungstenite dropped the stream (closing the socket).
    Failed,
}

/// A WebSocket to the broker carrying MQTT.
pub(crate) struct WebSocketLink {
    state: State,
    uri: ServerUri,
    /// A frame is still (partly) in tungstenite's buffer: no more of the core's bytes are taken
    /// until it is out.
    blocked: bool,
    /// The upgrade finished while writing: its answer may have brought frames that no readiness
    /// event will announce.
    unread: bool,
}

impl std::fmt::Debug for WebSocketLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Upgrading(_) => "upgrading",
            State::Open(_) => "open",
            State::Failed => "failed",
        };
        f.debug_struct("WebSocketLink")
            .field("uri", &ws::uri_for_display(&self.uri))
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl WebSocketLink {
    /// Starts the upgrade to `uri`'s WebSocket path over `stream`, offering the `mqtt` subprotocol
    /// and sending `headers` (refused by name when the handshake sets them itself). Nothing is
    /// written until the first [`write`](Self::write) or [`read`](Self::read).
    pub(crate) fn new(
        stream: Stream,
        uri: &ServerUri,
        headers: &[(String, String)],
    ) -> Result<Self, Error> {
        let request = upgrade_request(uri, headers)?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_INCOMING))
            .max_frame_size(Some(MAX_INCOMING));
        let mid = ClientHandshake::start(stream, request, Some(config))
            .map_err(|e| handshake_error(uri, e))?;
        Ok(Self {
            state: State::Upgrading(mid),
            uri: uri.clone(),
            blocked: false,
            unread: false,
        })
    }

    /// The socket, unless a failed upgrade has closed it.
    pub(crate) fn socket(&mut self) -> Option<&mut Socket> {
        match &mut self.state {
            State::Upgrading(mid) => Some(mid.get_mut().get_mut().socket()),
            State::Open(websocket) => Some(websocket.get_mut().socket()),
            State::Failed => None,
        }
    }

    /// Moves the upgrade on; `Ok(true)` once the WebSocket is open.
    fn upgrade(&mut self) -> Result<bool, Error> {
        let mid = match std::mem::replace(&mut self.state, State::Failed) {
            State::Upgrading(mid) => mid,
            State::Open(websocket) => {
                self.state = State::Open(websocket);
                return Ok(true);
            }
            State::Failed => {
                return Err(self.error(WebSocketError::Protocol("the upgrade failed".into())));
            }
        };
        match mid.handshake() {
            Ok((websocket, response)) => {
                tracing::debug!(uri = %ws::uri_for_display(&self.uri), status = %response.status(), "WebSocket open");
                self.state = State::Open(websocket);
                self.unread = true;
                Ok(true)
            }
            Err(HandshakeError::Interrupted(mut mid)) => {
                // TLS may hold the request's records: they must not wait for the next write.
                match mid.get_mut().get_mut().flush() {
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                        return Err(io_error("writing to the broker", &e));
                    }
                    _ => {}
                }
                self.state = State::Upgrading(mid);
                Ok(false)
            }
            Err(HandshakeError::Failure(e)) => Err(handshake_error(&self.uri, e)),
        }
    }

    /// Reads frames until the socket would block or about `budget` bytes came, giving the payload
    /// of each binary frame to `received` (any boundaries: the core takes arbitrary chunks); stops
    /// early once `received` says `false`. A Close frame from the server ends the connection as
    /// the end of a TCP stream does.
    pub(crate) fn read(
        &mut self,
        budget: usize,
        mut received: impl FnMut(&[u8]) -> bool,
    ) -> Result<ReadOutcome, Error> {
        if !self.upgrade()? {
            return Ok(ReadOutcome::Drained);
        }
        self.unread = false;
        let State::Open(websocket) = &mut self.state else {
            return Ok(ReadOutcome::Drained);
        };
        let mut read = 0_usize;
        loop {
            if read >= budget {
                return Ok(ReadOutcome::More);
            }
            // Pongs to the server's pings go out within `read` (or the next flush).
            match websocket.read() {
                Ok(Message::Binary(payload)) => {
                    read = read.saturating_add(payload.len().max(1));
                    if !received(&payload) {
                        return Ok(ReadOutcome::More);
                    }
                }
                // MQTT-6.0.0-1: MQTT control packets travel in binary frames only.
                Ok(Message::Text(_)) => return Err(self.error(WebSocketError::TextFrame)),
                Ok(Message::Close(_)) => {
                    // The answering Close, if the socket takes it; the connection ends anyway.
                    let _ = websocket.flush();
                    return Ok(ReadOutcome::Closed);
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                    read = read.saturating_add(1);
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Drained);
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return end_or_error(&self.uri, e, "reading from the broker"),
            }
        }
    }

    /// Sends what the core has ready, up to [`MAX_OUTGOING_FRAME`], as one binary frame; returns
    /// how much it took: nothing before the upgrade is done, nor while the last frame is not out.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if !self.upgrade()? {
            return Ok(0);
        }
        if self.blocked && !self.flush()? {
            return Ok(0);
        }
        let State::Open(websocket) = &mut self.state else {
            return Ok(0);
        };
        let frame = data.get(..MAX_OUTGOING_FRAME).unwrap_or(data);
        match websocket.write(Message::Binary(Bytes::copy_from_slice(frame))) {
            // Would block: the frame waits in tungstenite's buffer, sent by the flush.
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(write_error(&self.uri, e)),
        }
        self.flush()?;
        Ok(frame.len())
    }

    /// Pushes buffered frames (and pongs, TLS records) to the socket, moving the upgrade on first;
    /// `Ok(false)` while some wait for room. Call when the socket is writable.
    pub(crate) fn flush(&mut self) -> Result<bool, Error> {
        if !self.upgrade()? {
            return Ok(false);
        }
        let State::Open(websocket) = &mut self.state else {
            return Ok(false);
        };
        match websocket.flush() {
            Ok(()) => self.blocked = false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
            }
            Err(e) => return Err(write_error(&self.uri, e)),
        }
        Ok(!self.blocked)
    }

    /// Whether the upgrade finished outside [`read`](Self::read), so frames may wait unread
    /// (once: it clears the flag).
    pub(crate) fn take_unread(&mut self) -> bool {
        let unread = self.unread;
        self.unread = false;
        unread
    }

    /// After the DISCONNECT: a Close frame, TLS `close_notify`, then the socket's write side.
    /// `Ok(false)` while they wait for room in the socket.
    pub(crate) fn shut_down_writing(&mut self) -> Result<bool, Error> {
        let websocket = match &mut self.state {
            State::Open(websocket) => websocket,
            State::Upgrading(mid) => {
                let _ = mid
                    .get_mut()
                    .get_mut()
                    .socket()
                    .shutdown(std::net::Shutdown::Write);
                return Ok(true);
            }
            State::Failed => return Ok(true),
        };
        match websocket.close(None) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(false);
            }
            // The server closed first: its side is down, which is what the close waits for.
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
            Err(e) => return Err(write_error(&self.uri, e)),
        }
        let stream = websocket.get_mut();
        match stream.close_tls() {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => return Err(io_error("writing to the broker", &e)),
        }
        // An error means the broker closed first, as above.
        let _ = stream.socket().shutdown(std::net::Shutdown::Write);
        Ok(true)
    }

    fn error(&self, error: WebSocketError) -> Error {
        ws::error(&self.uri, error)
    }
}

/// The upgrade request for `uri`: its WebSocket path, the `mqtt` subprotocol (MQTT-6.0.0-3) and
/// the user's extra headers.
fn upgrade_request(uri: &ServerUri, headers: &[(String, String)]) -> Result<Request, Error> {
    let target = uri
        .websocket_url()
        .unwrap_or_else(|| format!("ws://{}:{}{DEFAULT_WEBSOCKET_PATH}", uri.host, uri.port));
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(target.as_str())
        .map_err(|e| ws::error(uri, WebSocketError::Protocol(e.to_string())))?;
    let request_headers = request.headers_mut();
    request_headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    for (name, value) in headers {
        ws::check_header(name, value).map_err(|e| ws::error(uri, e))?;
        let invalid = |reason| {
            ws::error(
                uri,
                WebSocketError::InvalidHeader {
                    name: name.clone(),
                    reason,
                },
            )
        };
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("not a valid HTTP header name"))?;
        let mut value =
            HeaderValue::from_str(value).map_err(|_| invalid("its value is not valid in HTTP"))?;
        value.set_sensitive(true);
        request_headers.append(header, value);
    }
    Ok(request)
}

/// What a failed upgrade means.
fn handshake_error(uri: &ServerUri, error: tungstenite::Error) -> Error {
    use tungstenite::error::ProtocolError;
    let websocket = match error {
        // A server that is not WebSocket (an MQTT port, say) hangs up on the request.
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ) =>
        {
            WebSocketError::NotWebSocket(format!(
                "it closed the connection instead of answering the upgrade ({e})"
            ))
        }
        tungstenite::Error::Io(e) => {
            let doing = format!("upgrading {} to WebSocket", ws::uri_for_display(uri));
            return io_error(&doing, &e);
        }
        tungstenite::Error::Http(response) => WebSocketError::Refused {
            status: response.status().as_u16(),
            reason: response.status().canonical_reason().map(str::to_owned),
            path: ws::path_for_display(uri).to_owned(),
        },
        tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => {
            WebSocketError::Subprotocol(e.to_string())
        }
        tungstenite::Error::Protocol(ProtocolError::HandshakeIncomplete) => {
            WebSocketError::NotWebSocket(
                "it closed the connection instead of answering the upgrade".into(),
            )
        }
        tungstenite::Error::Protocol(e) => WebSocketError::NotWebSocket(e.to_string()),
        tungstenite::Error::HttpFormat(e) => WebSocketError::NotWebSocket(e.to_string()),
        tungstenite::Error::Utf8(e) => WebSocketError::NotWebSocket(e),
        e => WebSocketError::NotWebSocket(e.to_string()),
    };
    ws::error(uri, websocket)
}

/// A failed read: the end of the connection (its close without a Close frame included, as a TCP
/// stream's end), or an error.
fn end_or_error(
    uri: &ServerUri,
    error: tungstenite::Error,
    doing: &str,
) -> Result<ReadOutcome, Error> {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Ok(ReadOutcome::Closed)
        }
        tungstenite::Error::Io(e) => Err(io_error(doing, &e)),
        e => Err(ws::error(uri, WebSocketError::Protocol(e.to_string()))),
    }
}

fn write_error(uri: &ServerUri, error: tungstenite::Error) -> Error {
    match error {
        tungstenite::Error::Io(e) => io_error("writing to the broker", &e),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::io("writing to the broker", &io::ErrorKind::BrokenPipe.into())
        }
        e => ws::error(uri, WebSocketError::Protocol(e.to_string())),
    }
}

/// An IO error; a TLS failure inside it (the stream wraps rustls's errors) is a TLS error.
fn io_error(doing: &str, error: &io::Error) -> Error {
    #[cfg(feature = "rustls")]
    if let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return Error::Tls(tls.to_string());
    }
    Error::io(doing, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> ServerUri {
        text.parse().unwrap()
    }

    #[test]
    fn the_upgrade_request_offers_mqtt_with_the_extra_headers_marked_sensitive() {
        let headers = [("Authorization".to_owned(), "Bearer t".to_owned())];
        let request = upgrade_request(&uri("wss://broker.example/gw?x=1"), &headers).unwrap();
        assert_eq!(request.uri().to_string(), "wss://broker.example:443/gw?x=1");
        assert_eq!(request.headers()["sec-websocket-protocol"], SUBPROTOCOL);
        let authorization = &request.headers()["authorization"];
        assert_eq!(authorization, "Bearer t");
        assert!(authorization.is_sensitive());
    }

    #[test]
    fn an_ipv6_host_is_bracketed_in_the_request() {
        let request = upgrade_request(&uri("ws://[::1]:8080/mqtt"), &[]).unwrap();
        assert_eq!(request.uri().host(), Some("[::1]"));
        assert_eq!(request.headers()["host"], "[::1]:8080");
    }

    #[test]
    fn a_reserved_header_is_refused_naming_it_and_the_uri() {
        let headers = [("Upgrade".to_owned(), "h2c".to_owned())];
        let error = upgrade_request(&uri("ws://h/mqtt"), &headers).unwrap_err();
        match &error {
            Error::WebSocket { uri, error } => {
                assert_eq!(uri, "ws://h:80/mqtt");
                let name = "Upgrade".to_owned();
                assert_eq!(error, &WebSocketError::ReservedHeader { name });
            }
            other => panic!("expected a WebSocket error, got {other:?}"),
        }
    }
}
