//! [`Events`]: what happens to the client, for the application.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_core::Stream;

use crate::{Error, Message, ServerUri};

/// Something that happened to the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A connection was made: by [`Client::connect`](crate::Client::connect), or by itself after a
    /// loss.
    Connected {
        /// The server.
        uri: ServerUri,
        /// The broker kept the session; if not, a reconnect subscribed again per the
        /// [`ResubscribePolicy`](sansmq_driver::ResubscribePolicy).
        session_present: bool,
        /// It was an automatic reconnect.
        reconnect: bool,
    },
    /// The connection ended without being asked to; with automatic reconnect, the client tries
    /// again.
    ConnectionLost(Error),
    /// Automatic reconnect stopped (no credentials); the next `connect` starts again.
    ReconnectStopped(Error),
    /// A message arrived.
    Message(Message),
}

/// The client's [`Event`]s: a [`Stream`], or call [`recv`](Self::recv).
///
/// Its channel is bounded: while it is full the connection stops reading from the broker, unless
/// a call awaits the broker's answer (so publishing while not consuming cannot deadlock). Without
/// `Events`, the client acknowledges and discards messages.
#[derive(Debug)]
pub struct Events(pub(crate) mpsc::Receiver<Event>);

impl Events {
    /// The next event; `None` once the [`Connection`](crate::Connection) has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| Pin::new(&mut self.0).poll_next(cx)).await
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}
