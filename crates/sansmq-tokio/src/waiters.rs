//! [`Waiters`]: the replies owed to the application, by what will complete them.

use std::collections::HashMap;

use sansmq::packet::{PacketId, QoS};
use sansmq_driver::resubscription::Resubscription;

use crate::Error;
use crate::command::Reply;

/// Who waits for what.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// `connect`, until the first CONNACK or the last attempt's failure.
    pub(crate) connect: Option<Reply<bool>>,
    /// QoS 1/2 messages, until PUBACK / PUBCOMP.
    pub(crate) publishes: HashMap<PacketId, Reply<()>>,
    /// QoS 0 messages, until everything accepted so far was written.
    pub(crate) written: Vec<Reply<()>>,
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

    /// QoS 0 messages whose connection ended: they were written or lost with it.
    pub(crate) fn fail_written(&mut self, cause: &Error) {
        for reply in self.written.drain(..) {
            let _ = reply.send(Err(cause.clone()));
        }
    }

    /// Everything accepted so far has been written.
    pub(crate) fn complete_written(&mut self) {
        for reply in self.written.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }
}
