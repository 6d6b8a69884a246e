//! [`Transport`]: a non-blocking stream (TCP, or a Unix socket), plain or under TLS, possibly
//! carrying a WebSocket, that moves bytes between the socket and the sans-IO core.

use std::io::{self, Read, Write};
use std::sync::Arc;

#[cfg(feature = "rustls")]
use rustls::ClientConnection;
use sansmq_driver::ReadSize;
use sansmq_driver::tls::ClientConfig;

use crate::socket::Socket;
use crate::websocket_link::{self, WebSocketLink};
use crate::{Error, ServerUri};

/// Plaintext the TLS layer may buffer before `write` reports backpressure.
#[cfg(feature = "rustls")]
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// The connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(Socket),
    #[cfg(feature = "rustls")]
    Tls(Box<ClientConnection>, Socket),
    /// MQTT over WebSocket (`ws://`, `wss://`).
    WebSocket(Box<WebSocketLink>),
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
    /// `socket` to the broker at `uri`, under TLS with `config` when given: then the broker's
    /// certificate must name `uri`'s host (SNI is sent for names). A WebSocket URI upgrades to
    /// WebSocket over that, sending `websocket_headers` with the upgrade request.
    pub(crate) fn new(
        socket: Socket,
        config: Option<&Arc<ClientConfig>>,
        uri: &ServerUri,
        websocket_headers: &[(String, String)],
    ) -> Result<Self, Error> {
        // The socket, or TLS over it, which a WebSocket or this transport itself then carries.
        let stream = match config {
            None => websocket_link::Stream::Plain(socket),
            #[cfg(feature = "rustls")]
            Some(config) => {
                let name = sansmq_driver::tls::server_name(&uri.host)?;
                let mut conn = ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| Error::Tls(e.to_string()))?;
                conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                websocket_link::Stream::Tls(Box::new(conn), socket)
            }
            // No value of `ClientConfig` exists without rustls.
            #[cfg(not(feature = "rustls"))]
            Some(config) => match **config {},
        };
        if uri.websocket_path.is_some() {
            let link = WebSocketLink::new(stream, uri, websocket_headers)?;
            return Ok(Self::WebSocket(Box::new(link)));
        }
        Ok(match stream {
            websocket_link::Stream::Plain(socket) => Self::Plain(socket),
            #[cfg(feature = "rustls")]
            websocket_link::Stream::Tls(conn, socket) => Self::Tls(conn, socket),
        })
    }

    /// The socket, unless a failed WebSocket upgrade has closed it.
    pub(crate) fn socket(&mut self) -> Option<&mut Socket> {
        match self {
            Self::Plain(s) => Some(s),
            #[cfg(feature = "rustls")]
            Self::Tls(_, s) => Some(s),
            Self::WebSocket(link) => link.socket(),
        }
    }

    /// Reads until the socket would block or about `budget` bytes were read, giving every
    /// plaintext byte to `received`; stops early ([`ReadOutcome::More`]) once `received` says
    /// `false` (the bytes are no longer wanted from this socket, or not now).
    ///
    /// Without `until_blocked`, a plain socket's short read ends it ([`ReadOutcome::Drained`]):
    /// the socket is empty, and what arrives next (bytes or the broker's FIN) raises a new
    /// edge-triggered event, so the read that would only say "would block" is saved (one syscall
    /// per wake-up). With it (the event reported the end of stream or an error too, or reading
    /// resumes without an event), reading goes on until the socket would block: data and the FIN
    /// can arrive under one event, and stopping early would never see the close.
    ///
    /// Each socket read asks for what `size` says, growing `buf` to it: a backlog grows the reads
    /// within one call.
    pub(crate) fn read(
        &mut self,
        buf: &mut Vec<u8>,
        size: &mut ReadSize,
        budget: usize,
        until_blocked: bool,
        mut received: impl FnMut(&[u8]) -> bool,
    ) -> Result<ReadOutcome, Error> {
        if let Self::WebSocket(link) = self {
            return link.read(budget, received);
        }
        let mut read = 0;
        loop {
            if read >= budget {
                return Ok(ReadOutcome::More);
            }
            if buf.len() < size.next() {
                buf.resize(size.next(), 0);
            }
            let result = match self {
                Self::Plain(socket) => socket.read(buf),
                #[cfg(feature = "rustls")]
                Self::Tls(conn, socket) => conn.read_tls(socket),
                Self::WebSocket(_) => return Ok(ReadOutcome::Drained),
            };
            let n = match result {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading from the broker", &e)),
            };
            read += n;
            size.record(buf.len(), n);
            #[cfg(feature = "rustls")]
            if let Self::Tls(conn, socket) = self {
                match Self::receive_tls(conn, socket, buf, &mut received)? {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                }
            }
            if !received(buf.get(..n).unwrap_or_default()) {
                return Ok(ReadOutcome::More);
            }
            if !until_blocked && n < buf.len() {
                return Ok(ReadOutcome::Drained);
            }
        }
    }

    /// Decrypts the TLS records just read and gives their plaintext to `received`; `Some` when
    /// reading stops there, `None` to read on.
    #[cfg(feature = "rustls")]
    fn receive_tls(
        conn: &mut ClientConnection,
        socket: &mut Socket,
        buf: &mut [u8],
        received: &mut impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<ReadOutcome>, Error> {
        let state = conn
            .process_new_packets()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let mut plaintext = state.plaintext_bytes_to_read();
        let mut wanted = true;
        while plaintext > 0 {
            let n = conn
                .reader()
                .read(buf)
                .map_err(|e| Error::io("reading TLS plaintext", &e))?;
            if n == 0 {
                break;
            }
            wanted &= received(buf.get(..n).unwrap_or_default());
            plaintext = plaintext.saturating_sub(n);
        }
        if !wanted {
            return Ok(Some(ReadOutcome::More));
        }
        if state.peer_has_closed() {
            return Ok(Some(ReadOutcome::Closed));
        }
        Self::write_tls(conn, socket)?;
        Ok(None)
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
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => {
                let n = conn
                    .writer()
                    .write(data)
                    .map_err(|e| Error::io("writing TLS plaintext", &e))?;
                Self::write_tls(conn, socket)?;
                Ok(n)
            }
            Self::WebSocket(link) => link.write(data),
        }
    }

    /// Ends our side of the stream once everything queued is written (see
    /// [`Closing`](sansmq_driver::Closing)): TLS `close_notify`, then a FIN. `Ok(false)` while TLS
    /// records still wait for room in the socket: call again when it is writable.
    pub(crate) fn shut_down_writing(&mut self) -> Result<bool, Error> {
        if let Self::WebSocket(link) = self {
            return link.shut_down_writing();
        }
        #[cfg(feature = "rustls")]
        if let Self::Tls(conn, socket) = self {
            conn.send_close_notify();
            Self::write_tls(conn, socket)?;
            if conn.wants_write() {
                return Ok(false);
            }
        }
        // An error means the broker closed first: its side is down, which is what we wait for.
        if let Some(socket) = self.socket() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
        Ok(true)
    }

    /// Pushes TLS records (handshake or data) and WebSocket frames (and moves a WebSocket's
    /// upgrade on) to the socket until it would block.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        match self {
            Self::Plain(_) => Ok(()),
            #[cfg(feature = "rustls")]
            Self::Tls(conn, socket) => Self::write_tls(conn, socket),
            Self::WebSocket(link) => link.flush().map(drop),
        }
    }

    /// Whether bytes may wait unread that no readiness event will announce (a WebSocket upgrade
    /// finished while writing); asks once.
    pub(crate) fn take_unread(&mut self) -> bool {
        match self {
            Self::WebSocket(link) => link.take_unread(),
            Self::Plain(_) => false,
            #[cfg(feature = "rustls")]
            Self::Tls(..) => false,
        }
    }

    #[cfg(feature = "rustls")]
    fn write_tls(conn: &mut ClientConnection, socket: &mut Socket) -> Result<(), Error> {
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
