//! [`Proxying`]: the SOCKS5 handshake ([`Socks5Handshake`]) carried out on a freshly connected,
//! non-blocking socket to the proxy, before TLS and MQTT start on it.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use sansmq_driver::socks5::{Socks5Error, Socks5Handshake};
use sansmq_driver::{ProxyOptions, ServerUri};

use crate::Error;

/// Bytes read at once from the proxy: its longest answer (a reply naming a 255-byte host) fits.
const READ_CHUNK: usize = 512;

/// A connection to the proxy, asking it for the broker.
#[derive(Debug)]
pub(crate) struct Proxying {
    socket: TcpStream,
    handshake: Socks5Handshake,
    /// The proxy, `host:port`, for errors.
    proxy: String,
}

impl Proxying {
    /// Starts the handshake on `socket`, connected to `proxy`, for the broker at `uri`.
    pub(crate) fn new(
        socket: TcpStream,
        proxy: &ProxyOptions,
        uri: &ServerUri,
    ) -> Result<Self, Error> {
        let name = proxy.address();
        let handshake = Socks5Handshake::new(&uri.host, uri.port, proxy.login())
            .map_err(|error| proxy_error(&name, error))?;
        Ok(Self {
            socket,
            handshake,
            proxy: name,
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
            if self.handshake.bound_address().is_some() {
                return Ok(true);
            }
            match self.socket.read(&mut buf) {
                Ok(0) => {
                    let error = self.handshake.handle_closed();
                    return Err(proxy_error(&self.proxy, error));
                }
                Ok(n) => {
                    self.handshake
                        .handle_received(buf.get(..n).unwrap_or_default())
                        .map_err(|error| proxy_error(&self.proxy, error))?;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(e) => return Err(self.io_error("reading from", &e)),
            }
            if self.handshake.bound_address().is_some() {
                tracing::debug!(
                    proxy = %self.proxy,
                    target = self.handshake.target(),
                    bound = ?self.handshake.bound_address(),
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
        Error::io(format!("{doing} the SOCKS5 proxy {}", self.proxy), e)
    }
}

fn proxy_error(proxy: &str, error: Socks5Error) -> Error {
    Error::Proxy {
        proxy: proxy.to_owned(),
        error,
    }
}
