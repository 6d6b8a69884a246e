//! Opening a connection: the host resolved off the IO thread ([`Lookup`]), its addresses dialed
//! ([`Dialer`], Happy Eyeballs), then TLS and CONNECT on the socket that won.

use std::time::Instant;

use mio::net::TcpStream;

use super::{Connection, Inner};
use crate::dialer::{Dialed, Dialer, Lookup};
use crate::transport::Transport;
use crate::{Error, ServerUri, tls};

/// A connection being opened, before it is a [`Connection`].
#[derive(Debug)]
pub(crate) enum Opening {
    /// The host is being resolved, off the IO thread.
    Resolving { uri: ServerUri, lookup: Lookup },
    /// Its addresses are being tried.
    Dialing(Dialer),
}

impl Inner {
    /// Starts opening a connection to `uri`: credentials, CONNECT queued in the core, the host's
    /// lookup started. [`advance_opening`](Self::advance_opening) takes it from there.
    pub(super) fn open(&mut self, now: Instant, uri: &ServerUri) -> Result<(), Error> {
        tracing::debug!(%uri, "connecting");
        // Credentials first: without them (tokens invalidated by the broker) there is no point
        // in opening a connection.
        self.options.apply_credentials(self.core.config_mut())?;
        // CONNECT waits in the core until a socket is open; its CONNACK timer, started now,
        // bounds resolving, dialing, TLS and CONNACK together.
        self.core.connect(now)?;
        self.opening = Some(Opening::Resolving {
            uri: uri.clone(),
            lookup: Lookup::start(uri, &self.waker),
        });
        Ok(())
    }

    /// Moves the opening connection on (after a wake-up, a dial socket's event, or its timer):
    /// from the resolved addresses to the dial, from the dial to a [`Connection`], or to a
    /// failure that names every address tried.
    pub(crate) fn advance_opening(&mut self, now: Instant) {
        let dialed = match &mut self.opening {
            None => return,
            Some(Opening::Resolving { uri, lookup }) => match lookup.poll() {
                None => return,
                Some(Err(error)) => Dialed::Failed(error),
                Some(Ok(addresses)) => {
                    tracing::debug!(%uri, ?addresses, "resolved");
                    let mut dialer = Dialer::new(now, uri.clone(), addresses);
                    let dialed = dialer.advance(now, &self.registry);
                    self.opening = Some(Opening::Dialing(dialer));
                    dialed
                }
            },
            Some(Opening::Dialing(dialer)) => dialer.advance(now, &self.registry),
        };
        match dialed {
            Dialed::Pending => {}
            Dialed::Failed(error) => self.transport_failed(now, Some(error)),
            Dialed::Connected(socket) => {
                if let Some(Opening::Dialing(dialer)) = self.opening.take() {
                    self.established(now, dialer.uri().clone(), socket);
                }
            }
        }
    }

    /// TCP is up (the socket registered as [`SOCKET`](super::SOCKET)): start TLS if the URI asks for it and
    /// write CONNECT.
    fn established(&mut self, now: Instant, uri: ServerUri, mut socket: TcpStream) {
        // Small packets (acks, pings) must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        let tls = match (&self.tls, uri.tls) {
            (Some(config), true) => match tls::connect(config, &uri.host) {
                Ok(tls) => Some(tls),
                Err(error) => {
                    let _ = self.registry.deregister(&mut socket);
                    self.transport_failed(now, Some(error));
                    return;
                }
            },
            _ => None,
        };
        self.connection = Some(Connection {
            transport: Transport::new(socket, tls),
            uri,
            closing: None,
        });
        self.flush(now);
    }
}
