//! [`Command`]: what a [`Client`](crate::Client) handle asks the background task to do, over the
//! bounded command channel. Each carries the one-shot sender its answer goes back on, which the
//! [`Supervisor`] keeps until the answer is known ([`Replies`]).

use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq::{TopicFilter, TopicName};
use sansmq_driver::channel;
use sansmq_driver::outcomes::Ticket;
use sansmq_driver::supervisor::Requests;
use tokio::sync::oneshot;

use crate::{AckKey, Error, Message};

/// The answer to a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// How a publish is answered: a QoS 0 message, which most programs publish in bulk and many
/// never await, by a number on the client's [`Outcomes`](sansmq_driver::outcomes::Outcomes)
/// board, without an allocation of its own; a QoS 1/2 message by a one-shot sender.
#[derive(Debug)]
pub(crate) enum PublishReply {
    Reply(Reply<()>),
    Ticket(Ticket<Error>),
}

impl PublishReply {
    pub(crate) fn send(self, result: Result<(), Error>) {
        match self {
            Self::Reply(reply) => drop(reply.send(result)),
            Self::Ticket(ticket) => ticket.settle(result),
        }
    }
}

/// The supervisor's waiters are the commands' one-shot senders, and the publishes' replies.
#[derive(Debug)]
pub(crate) struct Replies;

impl Requests for Replies {
    type Connect = Reply<bool>;
    type Publish = PublishReply;
    type Subscribe = Reply<Vec<QoS>>;
    type Unsubscribe = Reply<()>;
    type Disconnect = Reply<()>;
    type Request = Reply<Message>;
}

/// The connection's life, driven by the task.
pub(crate) type Supervisor = sansmq_driver::Supervisor<Replies>;

/// A request from a handle to the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Connect (to each server URI in turn); answered with the session-present flag.
    Connect(Reply<bool>),
    /// Publish; answered when the broker acknowledged it (QoS 1/2) or it was written (QoS 0).
    Publish(Publish),
    /// Subscribe; answered with the granted QoS per filter. With `route`, messages matching the
    /// (single) filter go there rather than to the event stream.
    Subscribe {
        filters: Vec<SubscribeFilter>,
        /// MQTT 5 properties, boxed so that a command stays small.
        properties: Option<Box<Properties>>,
        route: Option<channel::Sender<Message>>,
        reply: Reply<Vec<QoS>>,
    },
    /// Unsubscribe; answered at UNSUBACK.
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: Reply<()>,
    },
    /// MQTT 5 request; answered with the response message.
    Request {
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        /// Boxed so that a command stays small.
        properties: Box<Properties>,
        reply: Reply<Message>,
    },
    /// Manual acknowledgement of a received message.
    Ack { key: AckKey, reply: Reply<()> },
    /// MQTT 5: a new enhanced-authentication exchange on the open connection.
    Reauthenticate { reply: Reply<()> },
    /// Disconnect after waiting up to `drain` for unacknowledged messages.
    Disconnect { drain: Duration, reply: Reply<()> },
}

impl Command {
    /// Whether it must not wait behind a publish that waits for room: the task takes it out of
    /// turn then, and a handle queues it past the channel's capacity. A `disconnect` must end a
    /// connection whose broker stopped acknowledging, and an acknowledgement may be what the
    /// broker waits for. Acks queued so are bounded by the messages received and not yet
    /// acknowledged (the broker's window), not by the channel's capacity.
    pub(crate) const fn is_urgent(&self) -> bool {
        matches!(self, Self::Ack { .. } | Self::Disconnect { .. })
    }
}

/// A message to publish.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) topic: TopicName,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// Nothing published later goes out before this one's PUBACK (ApsaraMQ's token refresh).
    pub(crate) barrier: bool,
    /// MQTT 5 properties, boxed so that a command stays small.
    pub(crate) properties: Option<Box<Properties>>,
    pub(crate) reply: PublishReply,
}
