//! How a driver's waiters travel through the [`Supervisor`](super::Supervisor): each command takes
//! the driver's own waiter (a one-shot sender, a completion, a delivery token) and the supervisor
//! hands it back with its result once the result is known.

use std::fmt;

use sansmq::packet::QoS;

use crate::{Error, Message};

/// The types a driver answers its application with, one per kind of request. The supervisor never
/// looks inside them: it keeps each until its request completes, then returns it in a
/// [`Completed`].
///
/// ```
/// use sansmq_driver::supervisor::Requests;
///
/// /// A driver whose application polls numbered requests.
/// #[derive(Debug)]
/// struct Numbered;
///
/// impl Requests for Numbered {
///     type Connect = u64;
///     type Publish = u64;
///     type Subscribe = u64;
///     type Unsubscribe = u64;
///     type Disconnect = u64;
///     type Request = u64;
/// }
/// ```
pub trait Requests {
    /// Answers `connect` with the broker's session-present flag.
    type Connect;
    /// Answers `publish`: QoS 0 once written, QoS 1 at PUBACK, QoS 2 at PUBCOMP.
    type Publish;
    /// Answers `subscribe` with the granted QoS per filter.
    type Subscribe;
    /// Answers `unsubscribe` at UNSUBACK.
    type Unsubscribe;
    /// Answers `disconnect` once the connection is closed.
    type Disconnect;
    /// Answers an MQTT 5 `request` with its response message.
    type Request;
}

/// A request is over: the driver's waiter and the result to give it. Every waiter a command
/// accepted comes back exactly once.
pub enum Completed<R: Requests> {
    /// `connect`: the first CONNACK's session-present flag, or why no attempt succeeded.
    Connect(R::Connect, Result<bool, Error>),
    /// `publish` or `publish_barrier`, with the message's QoS.
    Publish(R::Publish, QoS, Result<(), Error>),
    /// `subscribe`: the granted QoS per filter.
    Subscribe(R::Subscribe, Result<Vec<QoS>, Error>),
    /// `unsubscribe`.
    Unsubscribe(R::Unsubscribe, Result<(), Error>),
    /// `disconnect`.
    Disconnect(R::Disconnect, Result<(), Error>),
    /// `request` (MQTT 5): the response, a message whose Correlation Data is the request's.
    Request(R::Request, Result<Message, Error>),
}

impl<R: Requests> fmt::Debug for Completed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(_, result) => f.debug_tuple("Connect").field(result).finish(),
            Self::Publish(_, qos, result) => {
                f.debug_tuple("Publish").field(qos).field(result).finish()
            }
            Self::Subscribe(_, result) => f.debug_tuple("Subscribe").field(result).finish(),
            Self::Unsubscribe(_, result) => f.debug_tuple("Unsubscribe").field(result).finish(),
            Self::Disconnect(_, result) => f.debug_tuple("Disconnect").field(result).finish(),
            Self::Request(_, result) => f.debug_tuple("Request").field(result).finish(),
        }
    }
}

/// A command refused at once (local misuse, a full queue, a rule of the broker's): nothing was
/// sent, and the waiter comes back with the reason.
#[derive(Debug)]
pub struct Rejected<W> {
    /// Why.
    pub error: Error,
    /// The waiter the command was given.
    pub waiter: W,
}

impl<W> Rejected<W> {
    pub(super) fn new(error: impl Into<Error>, waiter: W) -> Self {
        Self {
            error: error.into(),
            waiter,
        }
    }
}
