//! [`Transport`]: the connection's byte stream (TCP, or TLS over it with tokio-rustls), and the one
//! poll that moves bytes between it and the sans-IO core.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::dial::dial;
use crate::{Error, ServerUri};

/// Room made in the core's read buffer before each read: one read takes up to this much, so a
/// backlog of small messages costs one syscall per 128 KiB rather than one per message.
const READ_CHUNK: usize = 128 * 1024;
/// Bytes read into one scratch buffer while discarding what arrives after DISCONNECT.
const DISCARD_CHUNK: usize = 16 * 1024;
/// Reads per [`Transport::poll_linger`] before it yields to the runtime.
const DISCARD_READS: usize = 64;

/// TCP or TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

/// An open connection to one broker.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Bytes of the core's transmit buffer written on this connection so far: a QoS 0 message
    /// is written once this passes its last byte (see `Waiters::written`).
    pub(crate) written: u64,
    stream: Stream,
    /// TLS records may wait in rustls after a write: flush before the next wait.
    unflushed: bool,
    /// Our write side is shut down (a requested close, see [`Transport::poll_linger`]).
    write_shut: bool,
    pub(crate) uri: ServerUri,
}

/// What one [`Transport::poll_io`] did.
#[derive(Debug)]
pub(crate) enum Io {
    /// Bytes went out or came in (and were handed to the core).
    Progress,
    /// The broker closed the connection.
    Closed,
    /// The connection failed.
    Failed(Error),
}

impl Transport {
    /// Resolves `uri`, connects to the first of its addresses that answers ([`dial`]), and
    /// completes the TLS handshake for `ssl://` URIs, all within `timeout`.
    pub(crate) async fn open(
        uri: ServerUri,
        tls: Option<Arc<ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        match tokio::time::timeout(timeout, Self::open_now(uri, tls)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    async fn open_now(uri: ServerUri, tls: Option<Arc<ClientConfig>>) -> Result<Self, Error> {
        tracing::debug!(%uri, "connecting");
        // getaddrinfo on tokio's blocking pool: the task's loop does not wait for DNS.
        let addresses = tokio::net::lookup_host((uri.host.as_str(), uri.port))
            .await
            .map_err(|e| Error::Dns {
                host: uri.host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        let socket = dial(&uri, addresses).await?;
        // Small packets (acks, pings) must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        let stream = match (uri.tls, tls) {
            (true, Some(config)) => {
                let name = sansmq_driver::tls::server_name(&uri.host)?;
                let stream = TlsConnector::from(config)
                    .connect(name, socket)
                    .await
                    .map_err(|e| Error::Tls(tls_reason(&e)))?;
                Stream::Tls(Box::new(stream))
            }
            (true, None) => return Err(Error::Tls("no TLS configuration".into())),
            (false, _) => Stream::Plain(socket),
        };
        Ok(Self {
            written: 0,
            stream,
            unflushed: false,
            write_shut: false,
            uri,
        })
    }

    /// Writes what the core has to send, then (with `read`) reads once into the core's read
    /// buffer. Every byte moved is reported to the core before this returns, so dropping the
    /// future between polls loses nothing. `Pending` when nothing could move.
    pub(crate) fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        core: &mut sansmq::Client,
        read: bool,
    ) -> Poll<Io> {
        let now = Instant::now();
        let mut progress = false;
        // The core coalesces every queued packet into one buffer: one write carries them all.
        while let Some(bytes) = core.poll_transmit() {
            match self.poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Io::Closed),
                Poll::Ready(Ok(n)) => {
                    core.handle_transmitted(now, n);
                    self.written += n as u64;
                    self.unflushed = matches!(self.stream, Stream::Tls(_));
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Io::Failed(Error::io("writing to the broker", &e)));
                }
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            match self.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Io::Failed(Error::io("writing to the broker", &e)));
                }
                Poll::Pending => {}
            }
        }
        if read {
            let buf = core.read_buffer();
            buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Io::Closed),
                Poll::Ready(Ok(_)) => {
                    core.handle_read(now);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Io::Failed(read_error(&e)));
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

    /// During a requested close, once DISCONNECT is written (see
    /// [`Closing`](sansmq_driver::Closing)): shuts down the write side (TLS `close_notify`, then a
    /// FIN), then reads and discards what still arrives. [`Io::Closed`] at the broker's end of
    /// stream, or when the connection failed: either way the close is over.
    pub(crate) fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<Io> {
        if !self.write_shut {
            let shut = match &mut self.stream {
                Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            };
            match shut {
                Poll::Ready(Ok(())) => self.write_shut = true,
                Poll::Ready(Err(_)) => return Poll::Ready(Io::Closed),
                Poll::Pending => return Poll::Pending,
            }
        }
        let mut scratch = [0; DISCARD_CHUNK];
        for _ in 0..DISCARD_READS {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Io::Closed),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Io::Closed),
                Poll::Pending => return Poll::Pending,
            }
        }
        // A flood: let the rest of the runtime run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether bytes wait to be written (in the core or in the TLS layer).
    pub(crate) fn is_flushed(&self, core: &sansmq::Client) -> bool {
        !self.unflushed && core.poll_transmit().is_none()
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, bytes),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, bytes),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
}

/// A read error; a TLS alert or a corrupt record is a TLS error, the rest IO.
fn read_error(e: &io::Error) -> Error {
    if rustls_error(e).is_some() {
        Error::Tls(tls_reason(e))
    } else {
        Error::io("reading from the broker", e)
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// rustls's own message (`invalid peer certificate: UnknownIssuer`...) when there is one.
fn tls_reason(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(tls) => tls.to_string(),
        None => format!("handshake failed: {e}"),
    }
}
