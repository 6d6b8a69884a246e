//! [`Transport`]: the connection's byte stream (TCP, or TLS over it with tokio-rustls), and the one
//! poll that moves bytes between it and the supervisor.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use sansmq_driver::ReadSize;
use sansmq_driver::tls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
#[cfg(feature = "rustls")]
use tokio_rustls::TlsConnector;

use crate::command::Supervisor;
use crate::dial::dial;
use crate::proxying::through_proxy;
use crate::websocket::{upgrade, websocket_error};
use crate::{Error, ProxyOptions, ServerUri};

/// The most room made in the read buffer before a read: a backlog of small messages costs one
/// syscall per 128 KiB rather than one per message. Reads start at [`ReadSize::MIN`] and grow
/// while they fill the room they get, so an idle client holds 512 bytes.
const MAX_READ: usize = 128 * 1024;

/// A TCP stream, or a TLS stream over one.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// How to reach a broker beside its URI: from a bound local address, through a proxy, with
/// extra headers for a WebSocket upgrade.
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    pub(crate) local: Option<std::net::IpAddr>,
    pub(crate) proxy: Option<ProxyOptions>,
    pub(crate) websocket_headers: Arc<[(String, String)]>,
}

/// An open connection to one broker.
pub(crate) struct Transport {
    stream: Box<dyn Stream>,
    /// TLS records may wait in rustls after a write: flush before the next wait.
    unflushed: bool,
    /// [`Action::ShutdownWrite`](sansmq_driver::supervisor::Action::ShutdownWrite) asked to shut
    /// the write side down (`Some(false)`), and it is (`Some(true)`).
    write_shut: Option<bool>,
    /// A `ws://` or `wss://` URI: how its WebSocket errors name it.
    websocket: Option<String>,
    read_size: ReadSize,
}

/// What one [`Transport::poll_io`] did, or opening one.
pub(crate) enum Io {
    /// [`Transport::open`] is done.
    Opened(Result<Transport, Error>),
    /// Bytes went out or came in (and the supervisor was told).
    Progress,
    /// The broker's end of stream (`None`) or a failure: report it to the supervisor.
    Ended(Option<Error>),
}

impl Transport {
    /// Resolves `uri` (or the proxy on its `route`), connects to the first of its addresses that
    /// answers ([`dial`]), asks the proxy for the broker, completes the TLS handshake for
    /// `ssl://` and `wss://` URIs and the WebSocket upgrade for `ws://` and `wss://` ones; or connects to a `unix://` URI's socket. Unbounded by itself: the
    /// supervisor's connect timeout closes it.
    pub(crate) async fn open(
        uri: ServerUri,
        tls: Option<Arc<ClientConfig>>,
        route: Route,
    ) -> Result<Self, Error> {
        if let Some(path) = &uri.unix_socket {
            return Ok(Self::over(open_unix(path, &uri).await?));
        }
        let target = sansmq_driver::dial::dial_target(&uri, route.proxy.as_ref());
        // getaddrinfo on tokio's blocking pool: the task's loop does not wait for DNS.
        let addresses = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| Error::Dns {
                host: target.host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        let addresses = sansmq_driver::dial::reachable_from(&target, addresses, route.local)?;
        let dialed = dial(&target, addresses, route.local).await;
        let socket = match &route.proxy {
            Some(proxy) => {
                let mut socket =
                    dialed.map_err(|e| sansmq_driver::dial::via_proxy(e, proxy, &uri))?;
                through_proxy(&mut socket, proxy, &uri).await?;
                socket
            }
            None => dialed?,
        };
        // Small packets (acks, pings) must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        let stream: Box<dyn Stream> = match (uri.tls, tls) {
            #[cfg(feature = "rustls")]
            (true, Some(config)) => {
                // Through a proxy too, TLS names the broker.
                let name = sansmq_driver::tls::server_name(&uri.host)?;
                let stream = TlsConnector::from(config)
                    .connect(name, socket)
                    .await
                    .map_err(|e| Error::Tls(tls_reason(&e)))?;
                Box::new(stream)
            }
            // No value of `ClientConfig` exists without rustls.
            #[cfg(not(feature = "rustls"))]
            (true, Some(config)) => match *config {},
            (true, None) => return Err(Error::Tls("no TLS configuration".into())),
            (false, _) => Box::new(socket),
        };
        if uri.websocket_path.is_some() {
            let stream = upgrade(stream, &uri, &route.websocket_headers).await?;
            return Ok(Self {
                websocket: Some(uri.to_string()),
                ..Self::over(Box::new(stream))
            });
        }
        Ok(Self::over(stream))
    }

    fn over(stream: Box<dyn Stream>) -> Self {
        Self {
            stream,
            unflushed: false,
            write_shut: None,
            read_size: ReadSize::new(MAX_READ),
            websocket: None,
        }
    }

    /// A requested close wrote DISCONNECT: the next polls shut the write side down (TLS
    /// `close_notify`, then FIN) and read on until the broker's end of stream.
    pub(crate) fn shut_down_writing(&mut self) {
        self.write_shut.get_or_insert(false);
    }

    /// Writes what the supervisor has to send (then, when asked to, shuts the write side down),
    /// then with `read` reads once into its read buffer. Every byte moved is reported before this
    /// returns, so dropping the future between polls loses nothing. `Pending` when nothing moved.
    pub(crate) fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        supervisor: &mut Supervisor,
        read: bool,
    ) -> Poll<Io> {
        let now = Instant::now();
        let mut progress = false;
        let mut stream = Pin::new(&mut self.stream);
        // The core coalesces every queued packet into one buffer: one write carries them all.
        while let Some(bytes) = supervisor.poll_transmit() {
            match stream.as_mut().poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Io::Ended(None)),
                Poll::Ready(Ok(n)) => {
                    supervisor.handle_transmitted(now, n);
                    self.unflushed = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Io::Ended(Some(write_error(&e)))),
                Poll::Pending => break,
            }
        }
        // A no-op for TCP.
        if self.unflushed {
            match stream.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Io::Ended(Some(write_error(&e)))),
                Poll::Pending => {}
            }
        }
        if self.write_shut == Some(false) && supervisor.poll_transmit().is_none() {
            match stream.as_mut().poll_shutdown(cx) {
                Poll::Ready(Ok(())) => {
                    self.write_shut = Some(true);
                    progress = true;
                }
                // The close is over either way.
                Poll::Ready(Err(_)) => return Poll::Ready(Io::Ended(None)),
                Poll::Pending => {}
            }
        }
        if read {
            let buf = supervisor.read_buffer();
            buf.reserve(self.read_size.next());
            let room = buf.capacity() - buf.len();
            match tokio_util::io::poll_read_buf(stream, cx, buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Io::Ended(None)),
                Poll::Ready(Ok(n)) => {
                    self.read_size.record(room, n);
                    supervisor.handle_read(now);
                    self.read_size.shrink(supervisor.read_buffer());
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Io::Ended(Some(read_error(&e, self.websocket.as_deref()))));
                }
                Poll::Pending => {}
            }
        }
        if progress {
            Poll::Ready(Io::Progress)
        } else {
            Poll::Pending
        }
    }
}

/// Connects to a broker's Unix socket.
#[cfg(unix)]
async fn open_unix(path: &std::path::Path, uri: &ServerUri) -> Result<Box<dyn Stream>, Error> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| Error::io(format!("connecting to {uri}"), &e))?;
    Ok(Box::new(stream))
}

#[cfg(not(unix))]
async fn open_unix(path: &std::path::Path, _uri: &ServerUri) -> Result<Box<dyn Stream>, Error> {
    Err(Error::Unsupported {
        option: "unix:// server URI",
        reason: format!("{}: Unix sockets need a Unix system", path.display()),
    })
}

fn write_error(e: &io::Error) -> Error {
    Error::io("writing to the broker", e)
}

/// A read error; a TLS alert or a corrupt record is a TLS error, a broken WebSocket frame a
/// WebSocket error naming `websocket`, the rest IO.
fn read_error(e: &io::Error, websocket: Option<&str>) -> Error {
    if let (Some(error), Some(uri)) = (websocket_error(e), websocket) {
        Error::WebSocket {
            uri: uri.to_owned(),
            error: error.clone(),
        }
    } else {
        #[cfg(feature = "rustls")]
        if rustls_error(e).is_some() {
            return Error::Tls(tls_reason(e));
        }
        Error::io("reading from the broker", e)
    }
}

#[cfg(feature = "rustls")]
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// rustls's own message (`invalid peer certificate: UnknownIssuer`...) when there is one.
#[cfg(feature = "rustls")]
fn tls_reason(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(tls) => tls.to_string(),
        None => format!("handshake failed: {e}"),
    }
}
