//! [`Waiters`]: the replies owed to the application, by what will complete them.

use std::collections::{HashMap, VecDeque};

use sansmq::packet::{PacketId, QoS};
use sansmq_driver::resubscription::Resubscription;

use crate::Error;
use crate::command::Reply;

/// A QoS 0 message awaiting its write.
#[derive(Debug)]
pub(crate) struct Written {
    /// Where its last byte sits in the connection's byte stream
    /// ([`Transport::written`](crate::transport::Transport::written) counts up to it); `None`
    /// while it waits in the core's queue, where its place is not known yet.
    pub(crate) end: Option<u64>,
    pub(crate) reply: Reply<()>,
}

/// Who waits for what.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// `connect`, until the first CONNACK or the last attempt's failure.
    pub(crate) connect: Option<Reply<bool>>,
    /// QoS 1/2 messages, until PUBACK / PUBCOMP.
    pub(crate) publishes: HashMap<PacketId, Reply<()>>,
    /// QoS 0 messages, oldest first, until written.
    pub(crate) written: VecDeque<Written>,
    pub(crate) subscribes: HashMap<PacketId, Reply<Vec<QoS>>>,
    /// Subscribes that joined the SUBSCRIBE restoring the session's subscriptions.
    pub(crate) restore: Resubscription<Reply<Vec<QoS>>>,
    pub(crate) unsubscribes: HashMap<PacketId, Reply<()>>,
    pub(crate) disconnect: Option<Reply<()>>,
}

impl Waiters {
    /// Whether the application awaits something only the broker's packets can complete: reading
    /// must go on then, whatever the state of the message streams.
    pub(crate) fn await_broker(&self) -> bool {
        !self.publishes.is_empty()
            || !self.subscribes.is_empty()
            || self.restore.has_joined()
            || !self.unsubscribes.is_empty()
            || self.connect.is_some()
            || self.disconnect.is_some()
    }

    /// SUBSCRIBE and UNSUBSCRIBE requests that no connection will answer.
    pub(crate) fn fail_requests(&mut self, cause: &Error) {
        for (_, reply) in self.subscribes.drain() {
            let _ = reply.send(Err(cause.clone()));
        }
        for reply in self.restore.drain() {
            let _ = reply.send(Err(cause.clone()));
        }
        for (_, reply) in self.unsubscribes.drain() {
            let _ = reply.send(Err(cause.clone()));
        }
    }

    /// QoS 0 messages whose connection ended before they were written: lost with it.
    pub(crate) fn fail_written(&mut self, cause: &Error) {
        for waiter in self.written.drain(..) {
            let _ = waiter.reply.send(Err(cause.clone()));
        }
    }

    /// The connection's first `written` bytes are out: so is every message that ends there or
    /// before, and every message before those (QoS 0 messages are written in order).
    pub(crate) fn complete_written_up_to(&mut self, written: u64) {
        let done = self
            .written
            .iter()
            .rposition(|waiter| waiter.end.is_some_and(|end| end <= written));
        if let Some(last) = done {
            for waiter in self.written.drain(..=last) {
                let _ = waiter.reply.send(Ok(()));
            }
        }
    }

    /// Everything accepted so far has been written.
    pub(crate) fn complete_written(&mut self) {
        for waiter in self.written.drain(..) {
            let _ = waiter.reply.send(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    #[test]
    fn what_was_written_resolves_and_only_the_rest_fails() {
        let mut waiters = Waiters::default();
        let mut outcomes = Vec::new();
        for end in [Some(10), None, Some(30), Some(40)] {
            let (reply, rx) = oneshot::channel();
            waiters.written.push_back(Written { end, reply });
            outcomes.push(rx);
        }
        // 30 bytes out: the messages ending at 10 and 30, and the one queued between them.
        waiters.complete_written_up_to(30);
        waiters.fail_written(&Error::Closed);
        let outcomes: Vec<bool> = outcomes
            .into_iter()
            .map(|mut rx| matches!(rx.try_recv(), Ok(Ok(()))))
            .collect();
        assert_eq!(outcomes, [true, true, true, false]);
    }
}
