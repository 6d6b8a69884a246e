//! [`PublishHandle`]: a future for one message's delivery.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use sansmq_driver::outcomes::Claim;
use tokio::sync::oneshot;

use crate::Error;

/// Resolves when the broker has the message: at its PUBACK (QoS 1), at its PUBCOMP (QoS 2), or
/// once it was written to the socket (QoS 0).
///
/// # Cancellation
///
/// Dropping the handle (or a [`Client::publish`](crate::Client::publish) future that already
/// handed the message to the client) does **not** withdraw the message: it is in the client's
/// session and is delivered per its QoS, across reconnects for QoS 1/2. Only the notification is
/// lost. A `publish` future dropped while it still waits for room in the command channel has sent
/// nothing.
///
/// It resolves with an error when the client refused the message (offline queue full while
/// disconnected, message too large: [`Error::Command`]), when the session gave it up, when a QoS 0
/// message's connection ended before it was written ([`Error::ConnectionLost`]; it may still be
/// sent if it was waiting in the queue), or when the client shut down ([`Error::Closed`]).
///
/// A QoS 0 handle is a number on a board the client shares with its task
/// ([`sansmq_driver::outcomes`]), not a channel of its own: publishing QoS 0 messages in bulk
/// allocates nothing per message, whether their handles are kept, awaited or dropped.
#[derive(Debug)]
#[must_use = "a handle does nothing unless awaited; drop it if the outcome does not matter"]
pub struct PublishHandle {
    outcome: Outcome,
}

/// Where the outcome comes from: see [`PublishReply`](crate::command::PublishReply).
#[derive(Debug)]
enum Outcome {
    Replied(oneshot::Receiver<Result<(), Error>>),
    Claimed(Claim<Error>),
}

impl PublishHandle {
    pub(crate) fn replied(rx: oneshot::Receiver<Result<(), Error>>) -> Self {
        Self {
            outcome: Outcome::Replied(rx),
        }
    }

    pub(crate) fn claimed(claim: Claim<Error>) -> Self {
        Self {
            outcome: Outcome::Claimed(claim),
        }
    }

    /// The outcome if it is known already, without waiting.
    pub fn try_outcome(&mut self) -> Option<Result<(), Error>> {
        match &mut self.outcome {
            Outcome::Replied(rx) => match rx.try_recv() {
                Ok(result) => Some(result),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => Some(Err(Error::Closed)),
            },
            Outcome::Claimed(claim) => claim
                .try_outcome()
                .map(|outcome| outcome.unwrap_or(Err(Error::Closed))),
        }
    }
}

impl Future for PublishHandle {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.outcome {
            Outcome::Replied(rx) => Pin::new(rx)
                .poll(cx)
                .map(|result| result.unwrap_or(Err(Error::Closed))),
            Outcome::Claimed(claim) => claim
                .poll(cx)
                .map(|outcome| outcome.unwrap_or(Err(Error::Closed))),
        }
    }
}
