//! [`Transport`]: how a connection's bytes travel, plain TCP or WebSocket, behind one read and
//! one write call.

use std::io::{self, Read, Write};

use bytes::{Buf, BytesMut};
use mio::Registry;
use mio::net::TcpStream;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::connection::ReadOutcome;
use crate::read_buffer::ReadBuffer;
use crate::websocket::WebSocketStream;

/// Bytes read from a TCP socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A client connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    /// MQTT bytes straight on the socket.
    Tcp(TcpStream),
    /// MQTT bytes in WebSocket binary frames.
    WebSocket(WebSocketStream),
}

impl Transport {
    /// Reads once into `input`: one chunk of a TCP socket, one message of a WebSocket.
    pub(crate) fn read(&mut self, input: &mut ReadBuffer) -> ReadOutcome {
        let stream = match self {
            Self::Tcp(stream) => stream,
            Self::WebSocket(ws) => return ws.read(input),
        };
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            return match stream.read(&mut chunk) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    input.extend(chunk.get(..n).unwrap_or(&[]));
                    ReadOutcome::Data
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => ReadOutcome::Failed(e),
            };
        }
    }

    /// Writes as much of `out` as the socket takes; `Ok(false)` when it would block.
    pub(crate) fn write(&mut self, out: &mut BytesMut) -> io::Result<bool> {
        let stream = match self {
            Self::Tcp(stream) => stream,
            Self::WebSocket(ws) => return ws.flush(out),
        };
        while !out.is_empty() {
            match stream.write(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Output handed to the transport and not yet written (beside the connection's buffer).
    pub(crate) fn unsent(&self) -> usize {
        match self {
            Self::Tcp(_) => 0,
            Self::WebSocket(ws) => ws.unsent(),
        }
    }

    /// Ends a WebSocket with a Close frame: 1001 (going away) when the broker is `shutting_down`,
    /// 1000 (normal) otherwise. TCP has nothing to add before the socket closes.
    pub(crate) fn close(&mut self, shutting_down: bool) {
        if let Self::WebSocket(ws) = self {
            ws.close(if shutting_down {
                CloseCode::Away
            } else {
                CloseCode::Normal
            });
        }
    }

    /// Takes the socket out of the event loop's registry.
    pub(crate) fn deregister(&mut self, registry: &Registry) {
        let socket = match self {
            Self::Tcp(stream) => Some(stream),
            Self::WebSocket(ws) => ws.socket_mut(),
        };
        if let Some(socket) = socket {
            let _ = registry.deregister(socket);
        }
    }
}
