//! [`Event`]: what happens to the client, for the application.

use futures_channel::mpsc;

use crate::{Error, Message, ServerUri};

/// Something that happened to the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Connected, by [`Client::connect`](crate::Client::connect) or by itself after a loss.
    Connected {
        /// The server.
        uri: ServerUri,
        /// The broker kept the session; if not, a reconnect subscribed again per the
        /// [`ResubscribePolicy`](sansmq_driver::ResubscribePolicy).
        session_present: bool,
        /// It was an automatic reconnect.
        reconnect: bool,
    },
    /// The connection ended without being asked to; with automatic reconnect it comes back.
    ConnectionLost(Error),
    /// Automatic reconnect stopped (no credentials); the next `connect` starts again.
    ReconnectStopped(Error),
    /// A message arrived.
    Message(Message),
}

/// The client's [`Event`]s: a `Stream`, or `recv().await` them. It ends with the
/// [`Connection`](crate::Connection).
///
/// Its channel is bounded: while it is full the connection stops reading from the broker, unless
/// a call awaits the broker's answer (so publishing while not consuming cannot deadlock). Without
/// `Events`, the client acknowledges and discards messages.
pub type Events = mpsc::Receiver<Event>;
