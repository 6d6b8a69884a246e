//! What the [`Supervisor`](super::Supervisor) asks of its driver ([`Action`]) and tells the
//! application ([`Event`]).

use std::fmt;

use crate::{Error, Message, ServerUri};

use super::{Completed, Requests};

/// Something only the driver can do: open or close a transport. Drain
/// [`poll_action`](super::Supervisor::poll_action) after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a transport to `uri` (resolve, dial, TLS when `uri.tls`), then report
    /// [`handle_opened`](super::Supervisor::handle_opened) or
    /// [`handle_open_failed`](super::Supervisor::handle_open_failed). Bytes to write wait until
    /// it is open.
    Open {
        /// The server to connect to.
        uri: ServerUri,
    },
    /// A requested disconnect wrote DISCONNECT: shut down the write side (TLS `close_notify`,
    /// then FIN) once the transport's own buffers are out, and keep reading (the supervisor
    /// discards what arrives) until end of stream, then report
    /// [`handle_closed`](super::Supervisor::handle_closed). See [`Closing`](crate::Closing).
    ShutdownWrite,
    /// Drop the transport, or abandon the one being opened. Nothing more is reported for it.
    Close,
}

/// What happened, for the application.
pub enum Event<R: Requests> {
    /// CONNACK accepted a connection.
    Connected {
        /// The server it is connected to.
        uri: ServerUri,
        /// The broker resumed a kept session.
        session_present: bool,
        /// An earlier connection of this client succeeded (Paho's `connectComplete(reconnect)`).
        reconnect: bool,
        /// It answers the application's `connect` rather than an automatic reconnect.
        requested: bool,
    },
    /// An established connection ended without being asked to.
    ConnectionLost {
        /// Why, with the diagnosis when the broker closed it.
        cause: Error,
        /// When the next automatic attempt starts, if there is one.
        reconnect_at: Option<std::time::Instant>,
    },
    /// Automatic reconnect waits for credentials: the provider had none to give (e.g. ApsaraMQ
    /// tokens the broker declared invalid). No connection is opened without them; each attempt
    /// asks the provider again after the backoff, so new credentials resume the client by
    /// themselves. Reported once per outage.
    WaitingForCredentials {
        /// The provider's refusal.
        cause: Error,
    },
    /// A message arrived.
    Message(Message),
    /// A request is over: give the waiter its result.
    Completed(Completed<R>),
}

impl<R: Requests> fmt::Debug for Event<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected {
                uri,
                session_present,
                reconnect,
                requested,
            } => f
                .debug_struct("Connected")
                .field("uri", &uri.to_string())
                .field("session_present", session_present)
                .field("reconnect", reconnect)
                .field("requested", requested)
                .finish(),
            Self::ConnectionLost {
                cause,
                reconnect_at,
            } => f
                .debug_struct("ConnectionLost")
                .field("cause", cause)
                .field("reconnect_at", reconnect_at)
                .finish(),
            Self::WaitingForCredentials { cause } => f
                .debug_struct("WaitingForCredentials")
                .field("cause", cause)
                .finish(),
            Self::Message(message) => f.debug_tuple("Message").field(message).finish(),
            Self::Completed(completed) => f.debug_tuple("Completed").field(completed).finish(),
        }
    }
}
