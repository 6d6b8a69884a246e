//! [`ProxyHandshake`]: the handshake of whichever proxy [`ProxyOptions`] names (SOCKS5 or HTTP
//! CONNECT), behind one sans-IO interface, so that a driver runs either the same way and reports
//! a failure as an [`Error`] naming the proxy.

use crate::http_connect::HttpConnectHandshake;
use crate::proxy::{ProxyOptions, ProxyProtocol};
use crate::socks5::Socks5Handshake;
use crate::{Error, ServerUri};

/// The proxy's handshake for one connection to the broker: write
/// [`poll_transmit`](Self::poll_transmit) (reporting with
/// [`handle_transmitted`](Self::handle_transmitted)), hand what is read to
/// [`handle_received`](Self::handle_received) (or [`handle_closed`](Self::handle_closed) at the
/// end of stream), until [`is_connected`](Self::is_connected); then TLS and MQTT start on the
/// connection.
#[derive(Debug)]
pub struct ProxyHandshake {
    protocol: Protocol,
    /// `host:port` of the proxy, for errors.
    proxy: String,
}

#[derive(Debug)]
enum Protocol {
    Socks5(Socks5Handshake),
    HttpConnect(HttpConnectHandshake),
}

impl ProxyHandshake {
    /// Starts the handshake with `proxy` for the broker at `uri` (its host name goes to the
    /// proxy, which resolves it).
    pub fn new(proxy: &ProxyOptions, uri: &ServerUri) -> Result<Self, Error> {
        let name = proxy.address();
        let protocol = match proxy.protocol() {
            ProxyProtocol::Socks5h => Socks5Handshake::new(&uri.host, uri.port, proxy.login())
                .map(Protocol::Socks5)
                .map_err(|error| Error::Proxy {
                    proxy: name.clone(),
                    error,
                })?,
            ProxyProtocol::HttpConnect => {
                HttpConnectHandshake::new(&uri.host, uri.port, proxy.login())
                    .map(Protocol::HttpConnect)
                    .map_err(|error| Error::HttpProxy {
                        proxy: name.clone(),
                        error,
                    })?
            }
        };
        Ok(Self {
            protocol,
            proxy: name,
        })
    }

    /// The bytes to write to the proxy now; empty when there are none.
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        match &self.protocol {
            Protocol::Socks5(h) => h.poll_transmit(),
            Protocol::HttpConnect(h) => h.poll_transmit(),
        }
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were written.
    pub fn handle_transmitted(&mut self, n: usize) {
        match &mut self.protocol {
            Protocol::Socks5(h) => h.handle_transmitted(n),
            Protocol::HttpConnect(h) => h.handle_transmitted(n),
        }
    }

    /// Bytes read from the proxy, in any split; an error ends the handshake.
    pub fn handle_received(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let proxy = &self.proxy;
        match &mut self.protocol {
            Protocol::Socks5(h) => h.handle_received(bytes).map_err(|error| Error::Proxy {
                proxy: proxy.clone(),
                error,
            }),
            Protocol::HttpConnect(h) => {
                h.handle_received(bytes).map_err(|error| Error::HttpProxy {
                    proxy: proxy.clone(),
                    error,
                })
            }
        }
    }

    /// The proxy closed the connection: the error to report.
    pub fn handle_closed(&mut self) -> Error {
        let proxy = self.proxy.clone();
        match &mut self.protocol {
            Protocol::Socks5(h) => Error::Proxy {
                proxy,
                error: h.handle_closed(),
            },
            Protocol::HttpConnect(h) => Error::HttpProxy {
                proxy,
                error: h.handle_closed(),
            },
        }
    }

    /// Whether the proxy has connected to the broker: the next byte read is the broker's.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        match &self.protocol {
            Protocol::Socks5(h) => h.bound_address().is_some(),
            Protocol::HttpConnect(h) => h.is_connected(),
        }
    }

    /// The broker asked for, `host:port`.
    pub fn target(&self) -> &str {
        match &self.protocol {
            Protocol::Socks5(h) => h.target(),
            Protocol::HttpConnect(h) => h.target(),
        }
    }

    /// The proxy, `host:port`.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri() -> ServerUri {
        "tcp://broker.example:1883".parse().unwrap()
    }

    #[test]
    fn an_http_proxy_runs_the_connect_handshake_and_names_itself_in_errors() {
        let proxy: ProxyOptions = "http://127.0.0.1:3128".parse().unwrap();
        let mut handshake = ProxyHandshake::new(&proxy, &uri()).unwrap();
        assert!(
            handshake
                .poll_transmit()
                .starts_with(b"CONNECT broker.example:1883 ")
        );
        let error = handshake
            .handle_received(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "HTTP proxy 127.0.0.1:3128: the proxy cannot reach the broker broker.example:1883: \
             HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn a_socks5_proxy_runs_the_socks5_handshake() {
        let proxy: ProxyOptions = "socks5h://127.0.0.1:1080".parse().unwrap();
        let mut handshake = ProxyHandshake::new(&proxy, &uri()).unwrap();
        assert_eq!(handshake.poll_transmit(), [5, 1, 0]);
        handshake.handle_transmitted(3);
        assert!(matches!(handshake.handle_closed(), Error::Proxy { .. }));
    }
}
