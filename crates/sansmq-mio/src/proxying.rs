//! [`Proxying`]: the proxy's handshake ([`ProxyHandshake`]: SOCKS5 or HTTP CONNECT) carried out on a freshly connected,
//! non-blocking socket to the proxy, before TLS and MQTT start on it.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use sansmq_driver::{ProxyHandshake, ProxyOptions, ProxyProtocol, ServerUri};

use crate::Error;

/// Bytes read at once from the proxy: a SOCKS5 reply fits whole, an HTTP answer in a few reads.
const READ_CHUNK: usize = 512;

/// A connection to the proxy, asking it for the broker.
#[derive(Debug)]
pub(crate) struct Proxying {
    socket: TcpStream,
    handshake: ProxyHandshake,
    /// For IO errors.
    protocol: ProxyProtocol,
}

impl Proxying {
    /// Starts the handshake on `socket`, connected to `proxy`, for the broker at `uri`.
    pub(crate) fn new(
        socket: TcpStream,
        proxy: &ProxyOptions,
        uri: &ServerUri,
    ) -> Result<Self, Error> {
        Ok(Self {
            socket,
            handshake: ProxyHandshake::new(proxy, uri)?,
            protocol: proxy.protocol(),
        })
    }

    /// Writes and reads what it can without blocking (call after each socket event); `Ok(true)`
    /// once the proxy has connected to the broker.
    pub(crate) fn advance(&mut self) -> Result<bool, Error> {
        let mut buf = [0; READ_CHUNK];
        loop {
            let mut progress = false;
            while !self.handshake.poll_transmit().is_empty() {
                match self.socket.write(self.handshake.poll_transmit()) {
                    Ok(n) => {
                        self.handshake.handle_transmitted(n);
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.io_error("writing to", &e)),
                }
            }
            if self.handshake.is_connected() {
                return Ok(true);
            }
            match self.socket.read(&mut buf) {
                Ok(0) => return Err(self.handshake.handle_closed()),
                Ok(n) => {
                    self.handshake
                        .handle_received(buf.get(..n).unwrap_or_default())?;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(e) => return Err(self.io_error("reading from", &e)),
            }
            if self.handshake.is_connected() {
                tracing::debug!(
                    proxy = self.handshake.proxy(),
                    target = self.handshake.target(),
                    "the proxy connected to the broker"
                );
                return Ok(true);
            }
            if !progress {
                return Ok(false);
            }
        }
    }

    /// The socket, now leading to the broker.
    pub(crate) fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// The socket, to deregister it when the attempt is abandoned.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    fn io_error(&self, doing: &str, e: &io::Error) -> Error {
        let (protocol, proxy) = (self.protocol, self.handshake.proxy());
        Error::io(format!("{doing} the {protocol} proxy {proxy}"), e)
    }
}
