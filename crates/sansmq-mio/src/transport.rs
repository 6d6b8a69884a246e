//! [`Transport`]: a non-blocking TCP stream, plain or under TLS, that moves bytes between the socket
//! and the sans-IO core.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConnection;

use crate::Error;

/// Plaintext the TLS layer may buffer before `write` reports backpressure.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// The connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<ClientConnection>, TcpStream),
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Everything available was handed to the core.
    Drained,
    /// The byte budget ran out before the socket would block: read again soon (edge-triggered
    /// readiness will not say so again).
    More,
    /// The peer closed the connection.
    Closed,
}

impl Transport {
    pub(crate) fn new(socket: TcpStream, tls: Option<ClientConnection>) -> Self {
        match tls {
            None => Self::Plain(socket),
            Some(mut conn) => {
                conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                Self::Tls(Box::new(conn), socket)
            }
        }
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) | Self::Tls(_, s) => s,
        }
    }

    /// Reads until the socket would block or about `budget` bytes were read, giving every
    /// plaintext byte to `core`.
    pub(crate) fn read_into(
        &mut self,
        core: &mut sansmq::Client,
        now: Instant,
        buf: &mut [u8],
        budget: usize,
    ) -> Result<ReadOutcome, Error> {
        let mut read = 0;
        match self {
            Self::Plain(socket) => loop {
                if read >= budget {
                    return Ok(ReadOutcome::More);
                }
                match socket.read(buf) {
                    Ok(0) => return Ok(ReadOutcome::Closed),
                    Ok(n) => {
                        read += n;
                        // Read on even after a short read: data and the peer's FIN can arrive
                        // under one edge-triggered readiness event, and stopping here would
                        // never see the close.
                        core.handle_received(now, buf.get(..n).unwrap_or_default());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(ReadOutcome::Drained);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("reading from the broker", &e)),
                }
            },
            Self::Tls(conn, socket) => loop {
                if read >= budget {
                    return Ok(ReadOutcome::More);
                }
                match conn.read_tls(socket) {
                    Ok(0) => return Ok(ReadOutcome::Closed),
                    Ok(n) => {
                        read += n;
                        let state = conn
                            .process_new_packets()
                            .map_err(|e| Error::Tls(e.to_string()))?;
                        let mut plaintext = state.plaintext_bytes_to_read();
                        while plaintext > 0 {
                            let n = conn
                                .reader()
                                .read(buf)
                                .map_err(|e| Error::io("reading TLS plaintext", &e))?;
                            if n == 0 {
                                break;
                            }
                            core.handle_received(now, buf.get(..n).unwrap_or_default());
                            plaintext = plaintext.saturating_sub(n);
                        }
                        if state.peer_has_closed() {
                            return Ok(ReadOutcome::Closed);
                        }
                        Self::write_tls(conn, socket)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(ReadOutcome::Drained);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("reading from the broker", &e)),
                }
            },
        }
    }

    /// Writes as much of `data` as the socket (or the TLS buffer) takes; returns how much.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        match self {
            Self::Plain(socket) => loop {
                match socket.write(data) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("writing to the broker", &e)),
                }
            },
            Self::Tls(conn, socket) => {
                let n = conn
                    .writer()
                    .write(data)
                    .map_err(|e| Error::io("writing TLS plaintext", &e))?;
                Self::write_tls(conn, socket)?;
                Ok(n)
            }
        }
    }

    /// Ends our side of the stream once everything queued is written (see
    /// [`Closing`](sansmq_driver::Closing)): TLS `close_notify`, then a FIN. `Ok(false)` while TLS
    /// records still wait for room in the socket: call again when it is writable.
    pub(crate) fn shut_down_writing(&mut self) -> Result<bool, Error> {
        if let Self::Tls(conn, socket) = self {
            conn.send_close_notify();
            Self::write_tls(conn, socket)?;
            if conn.wants_write() {
                return Ok(false);
            }
        }
        // An error means the broker closed first: its side is down, which is what we wait for.
        let _ = self.socket().shutdown(std::net::Shutdown::Write);
        Ok(true)
    }

    /// Reads and drops what the broker still sends after our DISCONNECT, until the socket would
    /// block or about `budget` bytes were read: [`ReadOutcome::Closed`] at its end of stream (or
    /// when the connection failed: either way it is over).
    pub(crate) fn discard(&mut self, buf: &mut [u8], budget: usize) -> ReadOutcome {
        // Raw bytes: what they say no longer matters, so TLS records need not be decrypted.
        let socket = self.socket();
        let mut read = 0;
        loop {
            if read >= budget {
                return ReadOutcome::More;
            }
            match socket.read(buf) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }

    /// Whether TLS records wait to be written.
    pub(crate) fn tls_pending(&self) -> bool {
        matches!(self, Self::Tls(conn, _) if conn.wants_write())
    }

    /// Pushes TLS records (handshake or data) to the socket until it would block.
    pub(crate) fn flush_tls(&mut self) -> Result<(), Error> {
        match self {
            Self::Plain(_) => Ok(()),
            Self::Tls(conn, socket) => Self::write_tls(conn, socket),
        }
    }

    fn write_tls(conn: &mut ClientConnection, socket: &mut TcpStream) -> Result<(), Error> {
        while conn.wants_write() {
            match conn.write_tls(socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("writing to the broker", &e)),
            }
        }
        Ok(())
    }
}
