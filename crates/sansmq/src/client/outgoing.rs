//! [`Outgoing`]: our QoS 1/2 messages in flight, in the order they were first sent, and the queue of
//! messages waiting behind the window.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use crate::packet::{PacketId, Publish, QoS};

/// Where an unacknowledged outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP.
    Released,
    /// Published on an earlier connection and not sent again on this one yet: the window (the
    /// server's Receive Maximum, MQTT-3.3.4-9) had no room at the reconnect. It goes out again,
    /// DUP=1 with its identifier, ahead of any queued message once an acknowledgement makes room.
    Held,
}

/// One message in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inflight {
    pub(crate) publish: Publish,
    pub(crate) stage: Stage,
    /// MQTT 5: when its Message Expiry Interval ends; a re-send carries what is left of it.
    pub(crate) expires: Option<Instant>,
}

impl Inflight {
    pub(crate) fn id(&self) -> Option<PacketId> {
        self.publish.packet_id
    }
}

/// A message waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) publish: Publish,
    /// MQTT 5: when its Message Expiry Interval, counted from `publish`, ends: it is not sent
    /// after that, and is sent with what is left of the interval before.
    pub(crate) expires: Option<Instant>,
}

impl Queued {
    /// A message without an expiry deadline (one restored from a snapshot keeps its interval as
    /// it was).
    pub(crate) fn new(publish: Publish) -> Self {
        Self {
            publish,
            expires: None,
        }
    }
}

/// What a PUBREC found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receipt {
    /// The message moved to the release stage.
    Released,
    /// A repeat: the message was released already.
    AlreadyReleased,
}

/// Unacknowledged messages and the queue behind them.
///
/// Acknowledgements usually arrive in send order, so the one looked for is almost always at the
/// front; a linear scan over the (small, bounded) window is the fallback.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outgoing {
    pub(crate) inflight: VecDeque<Inflight>,
    pub(crate) queued: VecDeque<Queued>,
    /// Identifiers of barrier messages ([`Client::publish_barrier`](super::Client::publish_barrier))
    /// not yet acknowledged.
    pub(crate) barriers: BTreeSet<PacketId>,
    /// A barrier message that was sent: nothing else goes out until its PUBACK.
    pub(crate) active_barrier: Option<PacketId>,
    /// How many messages in the window are [`Stage::Held`].
    pub(crate) held: usize,
}

impl Outgoing {
    #[inline]
    fn position(&self, id: PacketId, qos: QoS, stage: Stage) -> Option<usize> {
        self.inflight
            .iter()
            .position(|m| m.id() == Some(id) && m.publish.qos == qos && m.stage == stage)
    }

    /// Where the message `id` at `qos` is, published and not released: sent on this connection,
    /// or [`Stage::Held`] (a server that acknowledges a message we have not sent it again yet
    /// has it all the same).
    ///
    /// Inlined with one search on the common path: held messages exist only after a reconnect
    /// that found the window full, so their search is kept out of line.
    #[inline]
    fn unreleased(&mut self, id: PacketId, qos: QoS) -> Option<usize> {
        match self.position(id, qos, Stage::Published) {
            Some(at) => Some(at),
            None if self.held > 0 => self.unreleased_held(id, qos),
            None => None,
        }
    }

    /// [`unreleased`](Self::unreleased) among the [`Stage::Held`] messages.
    #[cold]
    #[inline(never)]
    fn unreleased_held(&mut self, id: PacketId, qos: QoS) -> Option<usize> {
        let at = self.position(id, qos, Stage::Held)?;
        self.held -= 1;
        Some(at)
    }

    /// PUBACK: the QoS 1 message with `id` is done.
    pub(crate) fn acknowledge(&mut self, id: PacketId) -> Option<Inflight> {
        let at = self.unreleased(id, QoS::AtLeastOnce)?;
        self.inflight.remove(at)
    }

    /// PUBREC: the QoS 2 message with `id` moves to the release stage. `None` if it is not ours;
    /// a repeated PUBREC for a message already released is (PUBREL goes out again).
    pub(crate) fn receive(&mut self, id: PacketId) -> Option<Receipt> {
        if let Some(at) = self.unreleased(id, QoS::ExactlyOnce) {
            let m = self.inflight.get_mut(at)?;
            m.stage = Stage::Released;
            return Some(Receipt::Released);
        }
        self.position(id, QoS::ExactlyOnce, Stage::Released)
            .map(|_| Receipt::AlreadyReleased)
    }

    /// MQTT 5: a PUBREC with a failure Reason Code ended the QoS 2 message with `id` before its
    /// release.
    pub(crate) fn abandon(&mut self, id: PacketId) -> Option<Inflight> {
        let at = self.unreleased(id, QoS::ExactlyOnce)?;
        self.inflight.remove(at)
    }

    /// PUBCOMP: the QoS 2 message with `id` is done.
    pub(crate) fn complete(&mut self, id: PacketId) -> Option<Inflight> {
        let at = self.position(id, QoS::ExactlyOnce, Stage::Released)?;
        self.inflight.remove(at)
    }

    /// Messages not yet acknowledged, in the window or queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.inflight.is_empty() && self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::topic::TopicName;

    fn message(id: u16, qos: QoS) -> Inflight {
        let mut publish = Publish::new(TopicName::try_from("t").unwrap(), Bytes::new());
        publish.qos = qos;
        publish.packet_id = PacketId::new(id);
        Inflight {
            publish,
            stage: Stage::Published,
            expires: None,
        }
    }

    #[test]
    fn acks_match_id_qos_and_stage() {
        let mut out = Outgoing::default();
        out.inflight.push_back(message(1, QoS::AtLeastOnce));
        out.inflight.push_back(message(2, QoS::ExactlyOnce));
        let id = |v| PacketId::new(v).unwrap();
        assert!(
            out.acknowledge(id(2)).is_none(),
            "PUBACK for a QoS 2 message"
        );
        assert!(out.complete(id(2)).is_none(), "PUBCOMP before PUBREC");
        assert_eq!(out.receive(id(2)), Some(Receipt::Released));
        assert_eq!(
            out.receive(id(2)),
            Some(Receipt::AlreadyReleased),
            "a repeated PUBREC still gets PUBREL"
        );
        assert_eq!(out.receive(id(1)), None);
        assert_eq!(out.complete(id(2)).and_then(|m| m.id()), Some(id(2)));
        assert_eq!(out.acknowledge(id(1)).and_then(|m| m.id()), Some(id(1)));
        assert!(out.is_empty());
    }
}
