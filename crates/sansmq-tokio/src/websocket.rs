//! [`upgrade`]: MQTT over WebSocket (RFC 6455, subprotocol `mqtt`) on an open stream (TCP, a
//! proxied connection, or TLS for `wss://`), with tokio-tungstenite doing the framing.
//!
//! [`WsStream`] turns the WebSocket back into a byte stream for the transport: each write of the
//! core's queued bytes leaves as one binary frame, and the payloads of incoming binary frames are
//! read as one stream, whatever their boundaries (MQTT 3.1.1 section 6). Pings are answered by
//! tungstenite as the stream is read; the broker's Close ends the stream like a TCP end of
//! stream; shutting the write side down sends our Close (after DISCONNECT).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_core::Stream as _;
use futures_sink::Sink;
use sansmq_driver::websocket::{self, WebSocketError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{Error, ServerUri};

/// Asks the server at `uri` (on `stream`, already connected and secured) to upgrade to WebSocket
/// at the URI's path, offering the `mqtt` subprotocol and sending the extra `headers`. A refusal
/// is [`WebSocketError::Refused`] with its HTTP status.
pub(crate) async fn upgrade<S>(
    stream: S,
    uri: &ServerUri,
    headers: &[(String, String)],
) -> Result<WsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |error| websocket::error(uri, error);
    websocket::check_headers(uri, headers)?;
    let mut request = uri
        .websocket_url()
        .unwrap_or_else(|| uri.to_string())
        .into_client_request()
        .map_err(|e| failed(WebSocketError::NotWebSocket(e.to_string())))?;
    let fields = request.headers_mut();
    fields.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(websocket::SUBPROTOCOL),
    );
    for (name, value) in headers {
        let invalid = |reason| {
            failed(WebSocketError::InvalidHeader {
                name: name.clone(),
                reason,
            })
        };
        let name_field = HeaderName::try_from(name.as_str())
            .map_err(|_| invalid("not a valid HTTP header name"))?;
        let value_field = HeaderValue::try_from(value.as_str())
            .map_err(|_| invalid("not a valid HTTP header value"))?;
        fields.append(name_field, value_field);
    }
    match tokio_tungstenite::client_async_with_config(request, stream, None).await {
        Ok((ws, response)) => {
            tracing::debug!(%uri, status = %response.status(), "upgraded to WebSocket");
            Ok(WsStream {
                ws,
                unread: Bytes::new(),
            })
        }
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(failed(WebSocketError::NotWebSocket(format!(
                "it closed the connection instead of answering the upgrade ({e})"
            ))))
        }
        Err(tungstenite::Error::Io(e)) => Err(Error::io(
            format!("upgrading {} to WebSocket", websocket::uri_for_display(uri)),
            &e,
        )),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status();
            Err(failed(WebSocketError::Refused {
                status: status.as_u16(),
                reason: status.canonical_reason().map(str::to_owned),
                path: websocket::path_for_display(uri).to_owned(),
            }))
        }
        Err(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(e),
        )) => Err(failed(WebSocketError::Subprotocol(e.to_string()))),
        Err(e) => Err(failed(WebSocketError::NotWebSocket(e.to_string()))),
    }
}

/// A WebSocket as the byte stream the transport reads and writes.
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What the last binary frame holds beyond the reads so far.
    unread: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.unread.is_empty() {
                let n = self.unread.len().min(buf.remaining());
                buf.put_slice(self.unread.get(..n).unwrap_or_default());
                self.unread.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(payload))) => self.unread = payload,
                // tungstenite queued the pong; the next read sends it.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // The next read sends tungstenite's answer and ends the stream.
                Some(Ok(Message::Close(frame))) => {
                    tracing::debug!(?frame, "the broker closed the WebSocket");
                }
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(broken(WebSocketError::TextFrame)));
                }
                Some(Err(e)) => return Poll::Ready(Err(into_io(e))),
                // The end of the stream: a completed close, or the connection's end.
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    /// All of `buf` as one binary frame: the core hands over every queued packet at once.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut ws = Pin::new(&mut self.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(into_io)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(into_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(into_io)
    }

    /// Sends our Close frame; the broker's answer then ends the read side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(into_io)
    }
}

/// A WebSocket failure as the IO error the transport reports; [`websocket_error`] gets it back.
fn into_io(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::BrokenPipe.into()
        }
        other => broken(WebSocketError::Protocol(other.to_string())),
    }
}

fn broken(error: WebSocketError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The [`WebSocketError`] an IO error of a [`WsStream`] carries, if any.
pub(crate) fn websocket_error(e: &io::Error) -> Option<&WebSocketError> {
    e.get_ref()?.downcast_ref::<WebSocketError>()
}
