//! MQTT over WebSocket (RFC 6455; MQTT 3.1.1 section 6): the upgrade, then MQTT bytes carried in
//! binary frames, on tungstenite over the connection's non-blocking socket.
//!
//! The layer is a byte transport: what arrives in binary frames is appended to the connection's
//! read buffer, whatever the frame boundaries (a packet split over frames, several packets in
//! one frame, MQTT-6.0.0-2), and the connection's output goes out as binary frames. Pings are
//! answered, a Close is answered and ends the connection, and anything that is not a binary
//! frame ends it with a Close frame saying why. The MQTT session code above does not know which
//! transport a connection uses.

use std::fmt;
use std::io;

use bytes::BytesMut;
use mio::net::TcpStream;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::connection::ReadOutcome;
use crate::read_buffer::ReadBuffer;

/// The subprotocols this listener speaks, in order of preference: `mqtt` (MQTT-6.0.0-3/4), and
/// `mqttv3.1`, which MQTT 3.1 clients offered before the name was standardised (mosquitto
/// accepts both).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Bytes tungstenite reads from the socket at a time (and the read buffer it keeps per
/// connection), and about what one [`WebSocketStream::read`] gathers: the TCP path's read size.
const READ_BUFFER: usize = 16 * 1024;

/// Messages one [`WebSocketStream::read`] takes at most, so that a connection sending tiny
/// frames (or a flood of pings) still yields to the others.
const MESSAGES_PER_READ: usize = 64;

/// The WebSocket side of one client connection.
pub(crate) struct WebSocketStream {
    state: State,
    /// Bytes handed to tungstenite in the last binary frame and not yet known to be written.
    unsent: usize,
    /// How the connection ends, met by a read that had data to return first.
    ending: Option<ReadOutcome>,
}

enum State {
    /// The HTTP upgrade is under way.
    Upgrading(Box<MidHandshake<ServerHandshake<TcpStream, MqttSubprotocol>>>),
    Open(Box<WebSocket<TcpStream>>),
    /// The upgrade failed; the socket is gone.
    Failed,
}

impl fmt::Debug for WebSocketStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Upgrading(_) => "upgrading",
            State::Open(_) => "open",
            State::Failed => "failed",
        };
        f.debug_struct("WebSocketStream")
            .field("state", &state)
            .field("unsent", &self.unsent)
            .field("ending", &self.ending)
            .finish()
    }
}

impl WebSocketStream {
    /// Starts the server side of the upgrade on an accepted socket. Frames and messages over
    /// `max_packet_size` bytes (0: no limit) are refused from their header, before their payload
    /// is buffered: an MQTT packet cannot be bigger, and a frame carrying several packets must
    /// fit there too.
    pub(crate) fn accept(stream: TcpStream, max_packet_size: usize) -> Self {
        let limit = Some(max_packet_size).filter(|&limit| limit != 0);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_frame_size(limit)
            .max_message_size(limit);
        Self {
            state: State::Upgrading(Box::new(ServerHandshake::start(
                stream,
                MqttSubprotocol,
                Some(config),
            ))),
            unsent: 0,
            ending: None,
        }
    }

    /// The socket, for (de)registration; `None` once a failed upgrade dropped it.
    pub(crate) fn socket_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.state {
            State::Upgrading(handshake) => Some(handshake.get_mut().get_mut()),
            State::Open(ws) => Some(ws.get_mut()),
            State::Failed => None,
        }
    }

    /// Bytes of the connection's output given to the WebSocket layer and not yet written.
    pub(crate) fn unsent(&self) -> usize {
        self.unsent
    }

    /// Reads what has arrived, message by message, up to [`READ_BUFFER`] bytes (the TCP path's
    /// chunk) or [`MESSAGES_PER_READ`] messages: binary messages' bytes go to `input`, control
    /// frames are answered. Whatever ends the connection after some data (a Close, a text frame)
    /// is returned by the next call, so that the data before it is handled first.
    pub(crate) fn read(&mut self, input: &mut ReadBuffer) -> ReadOutcome {
        if let Some(ending) = self.ending.take() {
            return ending;
        }
        let ws = match open(&mut self.state) {
            Ok(Some(ws)) => ws,
            Ok(None) => return ReadOutcome::WouldBlock,
            Err(outcome) => return outcome,
        };
        let mut gathered = 0_usize;
        let mut progress = false;
        for _ in 0..MESSAGES_PER_READ {
            let ending = match ws.read() {
                Ok(Message::Binary(bytes)) => {
                    input.extend(&bytes);
                    gathered = gathered.saturating_add(bytes.len());
                    progress = true;
                    if gathered >= READ_BUFFER {
                        return ReadOutcome::Data;
                    }
                    continue;
                }
                // tungstenite queued the pong; the connection's next flush sends it.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                    progress = true;
                    continue;
                }
                Err(tungstenite::Error::Io(error))
                    if error.kind() == io::ErrorKind::Interrupted =>
                {
                    continue;
                }
                Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    return if progress {
                        ReadOutcome::Data
                    } else {
                        ReadOutcome::WouldBlock
                    };
                }
                Ok(Message::Text(_)) => {
                    // MQTT-6.0.0-1: only binary frames carry MQTT.
                    refuse(ws, CloseCode::Unsupported, "MQTT goes in binary frames");
                    ReadOutcome::Refused("a WebSocket text frame (MQTT-6.0.0-1)".to_owned())
                }
                // tungstenite queued the answering Close; closing the connection flushes it.
                Ok(Message::Close(_)) => ReadOutcome::Closed,
                Err(tungstenite::Error::Io(error)) => ReadOutcome::Failed(error),
                Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ),
                ) => ReadOutcome::Closed,
                Err(error @ tungstenite::Error::Capacity(_)) => {
                    refuse(ws, CloseCode::Size, "frame over the maximum packet size");
                    ReadOutcome::Refused(format!("WebSocket: {error}"))
                }
                Err(error) => {
                    refuse(ws, CloseCode::Protocol, "WebSocket protocol error");
                    ReadOutcome::Refused(format!("WebSocket: {error}"))
                }
            };
            if !progress {
                return ending;
            }
            self.ending = Some(ending);
            return ReadOutcome::Data;
        }
        ReadOutcome::Data
    }

    /// Starts the closing handshake with `code`, sending what the socket takes now: the
    /// connection is closed right after, so this is a courtesy that tells the client why. A
    /// connection already closing (or still upgrading) is left as it is.
    pub(crate) fn close(&mut self, code: CloseCode) {
        if let State::Open(ws) = &mut self.state {
            let reason = match code {
                CloseCode::Away => "broker shutting down",
                _ => "",
            };
            refuse(ws, code, reason);
        }
    }

    /// Sends `out` as a binary frame once what was sent before is written; `Ok(false)` when the
    /// socket would block. Output is handed over one frame at a time, so the WebSocket layer
    /// holds at most one frame beside the connection's own (bounded) output buffer.
    pub(crate) fn flush(&mut self, out: &mut BytesMut) -> io::Result<bool> {
        let ws = match open(&mut self.state) {
            Ok(Some(ws)) => ws,
            // Still upgrading: nothing goes out before the upgrade is answered.
            Ok(None) => return Ok(true),
            Err(_) => return Err(io::ErrorKind::NotConnected.into()),
        };
        loop {
            match ws.flush() {
                Ok(()) => self.unsent = 0,
                Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(false);
                }
                Err(tungstenite::Error::Io(error))
                    if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(into_io(error)),
            }
            if out.is_empty() {
                return Ok(true);
            }
            let frame = out.split().freeze();
            self.unsent = frame.len();
            match ws.write(Message::Binary(frame)) {
                Ok(()) => {}
                // The frame is buffered; the next flush writes it.
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(into_io(error)),
            }
        }
    }
}

/// The open WebSocket, driving the upgrade on if it is under way: `Ok(None)` while it
/// waits for the socket, `Err` with how the connection ends if it failed.
fn open(state: &mut State) -> Result<Option<&mut WebSocket<TcpStream>>, ReadOutcome> {
    if let State::Upgrading(_) = *state {
        let State::Upgrading(handshake) = std::mem::replace(&mut *state, State::Failed) else {
            return Err(ReadOutcome::Closed);
        };
        match (*handshake).handshake() {
            Ok(ws) => *state = State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(handshake)) => {
                *state = State::Upgrading(Box::new(handshake));
                return Ok(None);
            }
            Err(HandshakeError::Failure(error)) => {
                return Err(ReadOutcome::Refused(format!(
                    "WebSocket upgrade failed: {error}"
                )));
            }
        }
    }
    match state {
        State::Open(ws) => Ok(Some(ws)),
        State::Upgrading(_) => Ok(None),
        State::Failed => Err(ReadOutcome::Closed),
    }
}

/// Queues a Close frame with `code` (unless one was sent or received already) and tries to send
/// it; the connection is closed next whatever happens, so failures are of no consequence.
fn refuse(ws: &mut WebSocket<TcpStream>, code: CloseCode, reason: &'static str) {
    let _ = ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
}

fn into_io(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(error) => error,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::BrokenPipe.into()
        }
        error => io::Error::other(error.to_string()),
    }
}

/// The upgrade's answer: the `mqtt` subprotocol when the client offers it (MQTT-6.0.0-4), else
/// `mqttv3.1`; a client that offers subprotocols but neither gets 400 Bad Request. A client that
/// offers none is let in: MQTT-6.0.0-3 binds the client, and tolerating its omission costs
/// nothing. Any path is accepted, as mosquitto's listener does.
#[derive(Debug, Clone, Copy)]
struct MqttSubprotocol;

impl Callback for MqttSubprotocol {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let offered: Vec<&str> = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|protocol| !protocol.is_empty())
            .collect();
        if offered.is_empty() {
            return Ok(response);
        }
        let chosen = SUBPROTOCOLS.iter().find(|ours| offered.contains(ours));
        let Some(chosen) = chosen else {
            let mut refusal = ErrorResponse::new(Some(
                "this MQTT broker speaks the WebSocket subprotocol mqtt\n".to_owned(),
            ));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refusal);
        };
        let mut response = response;
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(chosen));
        Ok(response)
    }
}
