//! [`Incoming`]: the broker's QoS 1/2 messages we have not finished with: QoS 2 identifiers awaiting
//! PUBREL (so a re-sent message is not delivered twice) and, in manual-ack mode, acknowledgements
//! held back until the application gives them, sent in arrival order (MQTT-4.6.0-2).

use std::collections::VecDeque;

use super::id_set::IdSet;
use crate::packet::{PacketId, QoS};

/// A received QoS 1/2 message whose acknowledgement (PUBACK or PUBREC) has not gone out yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingAck {
    pub(crate) packet_id: PacketId,
    pub(crate) qos: QoS,
    /// The application acknowledged it; it waits only for those before it.
    pub(crate) acked: bool,
    /// MQTT 5: it counts against our Receive Maximum (a QoS 1 message that is not a re-sent
    /// copy: the server may have our PUBACK for the first one already, and counts it no more).
    pub(crate) counted: bool,
}

/// Incoming QoS 1/2 state. Its per-identifier tables take memory only when used: the QoS 2 set
/// a page per 4,096 identifiers it holds (see [`IdSet`]), the held-acknowledgement counts (64 KiB)
/// from the first held acknowledgement on. A client that never receives either (most idle ones,
/// every one acknowledging automatically at QoS 1) pays for neither.
#[derive(Clone, Default)]
pub(crate) struct Incoming {
    /// QoS 2 identifiers delivered and PUBREC'd (or about to be), PUBREL not yet received.
    awaiting_release: IdSet,
    /// Manual-ack mode: acknowledgements in arrival order.
    pending_acks: VecDeque<PendingAck>,
    /// How many entries of `pending_acks` carry each identifier, so a re-sent message is
    /// recognised in O(1) however many acknowledgements the application holds. A count, not a
    /// bit: a broker may (wrongly) reuse an identifier across QoS levels while both are held.
    pending_ids: Option<Box<[u8]>>,
    /// QoS 1 messages in `pending_acks` whose PUBACK has not gone out and that count against our
    /// Receive Maximum.
    pending_qos1: usize,
    /// The QoS 2 identifiers of `awaiting_release` received since the current connection's
    /// CONNACK: the ones that count against our Receive Maximum (see
    /// [`unacknowledged`](Self::unacknowledged)). Kept only on an MQTT 5 connection, the only
    /// kind with a Receive Maximum: MQTT 3.1.1 pays for neither the set nor its upkeep.
    held_this_connection: IdSet,
    /// Whether the current connection keeps `held_this_connection`.
    counts_receive_maximum: bool,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("awaiting_release", &self.awaiting_release.len())
            .field("pending_acks", &self.pending_acks)
            .finish()
    }
}

impl Incoming {
    /// Records a QoS 2 identifier as delivered; false if it already was (a re-sent message).
    #[inline]
    pub(crate) fn hold(&mut self, id: PacketId) -> bool {
        let new = self.awaiting_release.insert(id);
        if new && self.counts_receive_maximum {
            self.held_this_connection.insert(id);
        }
        new
    }

    /// PUBREL: the QoS 2 identifier is free again; false if it was not held.
    #[inline]
    pub(crate) fn release(&mut self, id: PacketId) -> bool {
        if self.counts_receive_maximum {
            self.held_this_connection.remove(id);
        }
        self.awaiting_release.remove(id)
    }

    /// A CONNACK: the identifiers held from before stop counting against our Receive Maximum,
    /// which only an MQTT 5 connection (`counts_receive_maximum`) has.
    pub(crate) fn connection_started(&mut self, counts_receive_maximum: bool) {
        self.held_this_connection.clear();
        self.counts_receive_maximum = counts_receive_maximum;
    }

    /// Whether the QoS 2 identifier awaits PUBREL.
    pub(crate) fn is_held(&self, id: PacketId) -> bool {
        self.awaiting_release.contains(id)
    }

    /// The QoS 2 identifiers awaiting PUBREL, in increasing order.
    pub(crate) fn awaiting_release(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.awaiting_release.iter()
    }

    /// The broker forgot the session (`session_present = 0`): no PUBREL will come for what it sent
    /// before, and acks held for its messages would answer nothing, or worse, a new message the new
    /// session sends under the same identifier (which a held ack would also hide as a re-send).
    pub(crate) fn forget_session(&mut self) {
        self.awaiting_release.clear();
        self.held_this_connection.clear();
        self.pending_acks.clear();
        self.pending_ids = None;
        self.pending_qos1 = 0;
    }

    /// QoS 1/2 messages the broker sent that we have not finished acknowledging: QoS 1 without
    /// PUBACK, QoS 2 without PUBCOMP (MQTT 5's Receive Maximum counts these, MQTT-3.3.4-9).
    ///
    /// A QoS 2 identifier held from before the current connection does not count: after a
    /// CONNACK whose session is not the one we think (a session created by a CONNECT whose
    /// CONNACK never reached us, which neither side can tell) no PUBREL will free it, and the
    /// server, not knowing it, fills its own count; counting it would end every connection of
    /// the session. The server that does know it counts it, so it only ever sends fewer.
    pub(crate) fn unacknowledged(&self) -> usize {
        self.held_this_connection.len() + self.pending_qos1
    }

    /// Holds an acknowledgement back until the application (and those before it) gave it.
    pub(crate) fn push_ack(&mut self, ack: PendingAck) {
        let counts = self
            .pending_ids
            .get_or_insert_with(|| vec![0; 1 << 16].into_boxed_slice());
        if let Some(n) = counts.get_mut(usize::from(ack.packet_id.get())) {
            *n = n.saturating_add(1);
        }
        if ack.counted {
            self.pending_qos1 += 1;
        }
        self.pending_acks.push_back(ack);
    }

    /// Whether an acknowledgement for `id` is still held back.
    pub(crate) fn is_pending(&self, id: PacketId) -> bool {
        self.pending_ids
            .as_ref()
            .and_then(|counts| counts.get(usize::from(id.get())))
            .is_some_and(|&n| n > 0)
    }

    /// The application acknowledged `id`: the QoS of its message, or `None` if nothing with that
    /// id waits.
    pub(crate) fn mark_acked(&mut self, id: PacketId) -> Option<QoS> {
        let pending = self
            .pending_acks
            .iter_mut()
            .find(|p| p.packet_id == id && !p.acked)?;
        pending.acked = true;
        Some(pending.qos)
    }

    /// Whether the application still holds a QoS 2 message with `id` it has not acknowledged.
    pub(crate) fn is_unacked_exactly_once(&self, id: PacketId) -> bool {
        self.is_pending(id)
            && self
                .pending_acks
                .iter()
                .any(|p| p.packet_id == id && p.qos == QoS::ExactlyOnce && !p.acked)
    }

    /// The next acknowledgement that may go out: the oldest, once the application gave it.
    pub(crate) fn pop_ready(&mut self) -> Option<PendingAck> {
        if !self.pending_acks.front().is_some_and(|p| p.acked) {
            return None;
        }
        let ack = self.pending_acks.pop_front()?;
        let counts = self.pending_ids.as_mut();
        if let Some(n) = counts.and_then(|counts| counts.get_mut(usize::from(ack.packet_id.get())))
        {
            *n = n.saturating_sub(1);
        }
        if ack.counted {
            self.pending_qos1 = self.pending_qos1.saturating_sub(1);
        }
        Some(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    #[test]
    fn the_tables_are_allocated_when_first_used() {
        let mut incoming = Incoming::default();
        assert!(incoming.awaiting_release.pages_held() == 0 && incoming.pending_ids.is_none());
        assert!(!incoming.is_held(id(7)) && !incoming.is_pending(id(7)));
        assert_eq!(incoming.awaiting_release().count(), 0);
        incoming.release(id(7));
        assert_eq!(incoming.pop_ready(), None);
        assert!(incoming.awaiting_release.pages_held() == 0 && incoming.pending_ids.is_none());
        assert!(incoming.hold(id(7)));
        assert_eq!(incoming.awaiting_release.pages_held(), 1);
        incoming.push_ack(PendingAck {
            packet_id: id(7),
            qos: QoS::AtLeastOnce,
            acked: false,
            counted: true,
        });
        assert!(incoming.is_pending(id(7)));
        incoming.forget_session();
        assert!(incoming.awaiting_release.pages_held() == 0 && incoming.pending_ids.is_none());
        assert!(!incoming.is_held(id(7)) && !incoming.is_pending(id(7)));
    }

    #[test]
    fn only_an_mqtt5_connection_counts_held_ids_against_receive_maximum() {
        let mut incoming = Incoming::default();
        incoming.connection_started(false);
        assert!(incoming.hold(id(7)));
        assert_eq!(incoming.held_this_connection.pages_held(), 0);
        incoming.connection_started(true);
        assert!(incoming.hold(id(8)));
        // 7 was held before this connection's CONNACK: only 8 counts.
        assert_eq!(incoming.unacknowledged(), 1);
        assert!(incoming.release(id(8)) && incoming.release(id(7)));
        assert_eq!(incoming.unacknowledged(), 0);
    }

    #[test]
    fn qos2_ids_are_held_until_released() {
        let mut incoming = Incoming::default();
        assert!(incoming.hold(id(65_535)));
        assert!(!incoming.hold(id(65_535)));
        assert_eq!(
            incoming.awaiting_release().collect::<Vec<_>>(),
            [id(65_535)]
        );
        incoming.release(id(65_535));
        assert!(incoming.hold(id(65_535)));
    }

    #[test]
    fn acks_leave_in_arrival_order() {
        let mut incoming = Incoming::default();
        for v in [5, 3, 9] {
            incoming.push_ack(PendingAck {
                packet_id: id(v),
                qos: QoS::AtLeastOnce,
                acked: false,
                counted: true,
            });
        }
        assert_eq!(incoming.mark_acked(id(9)), Some(QoS::AtLeastOnce));
        assert_eq!(incoming.mark_acked(id(3)), Some(QoS::AtLeastOnce));
        assert_eq!(incoming.pop_ready(), None, "5 is not acknowledged yet");
        assert_eq!(incoming.mark_acked(id(5)), Some(QoS::AtLeastOnce));
        let order: Vec<u16> = std::iter::from_fn(|| incoming.pop_ready())
            .map(|p| p.packet_id.get())
            .collect();
        assert_eq!(order, [5, 3, 9]);
        assert_eq!(incoming.mark_acked(id(5)), None);
    }
}
