//! [`Subscriptions`]: the filters the broker granted (so a driver can subscribe again after a
//! reconnect that lost the session), and SUBSCRIBE/UNSUBSCRIBE requests awaiting their answer.

use std::collections::BTreeMap;

use crate::packet::{PacketId, Subscribe, SubscribeFilter, Unsubscribe};
use crate::topic::TopicFilter;

/// Granted subscriptions and requests in flight.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscriptions {
    /// Filter → the subscription granted: the QoS the broker granted, and the MQTT 5 options
    /// asked for (kept for subscribing again).
    pub(crate) active: BTreeMap<TopicFilter, SubscribeFilter>,
    /// SUBSCRIBEs sent, SUBACK not yet received; sent again after a reconnect.
    pub(crate) pending_subscribe: Vec<Subscribe>,
    /// UNSUBSCRIBEs sent, UNSUBACK not yet received; sent again after a reconnect.
    pub(crate) pending_unsubscribe: Vec<Unsubscribe>,
    /// Pending requests not sent yet because a barrier message awaits its PUBACK.
    pub(crate) held: Vec<PacketId>,
}

impl Subscriptions {
    /// Takes the SUBSCRIBE that `id` answers.
    pub(crate) fn take_subscribe(&mut self, id: PacketId) -> Option<Subscribe> {
        let at = self
            .pending_subscribe
            .iter()
            .position(|s| s.packet_id == id)?;
        Some(self.pending_subscribe.remove(at))
    }

    /// Takes the UNSUBSCRIBE that `id` answers.
    pub(crate) fn take_unsubscribe(&mut self, id: PacketId) -> Option<Unsubscribe> {
        let at = self
            .pending_unsubscribe
            .iter()
            .position(|s| s.packet_id == id)?;
        Some(self.pending_unsubscribe.remove(at))
    }
}
