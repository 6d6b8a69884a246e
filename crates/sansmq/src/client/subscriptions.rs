//! [`Subscriptions`]: the filters the broker granted (so a driver can subscribe again after a
//! reconnect that lost the session), and SUBSCRIBE/UNSUBSCRIBE requests awaiting their answer.

use std::collections::BTreeMap;

use crate::packet::{
    PacketId, Properties, Subscribe, SubscribeFilter, SubscriptionId, Unsubscribe,
};
use crate::topic::TopicFilter;

/// Granted subscriptions and requests in flight.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscriptions {
    /// Filter → the subscription granted: the QoS the broker granted, and the MQTT 5 options
    /// asked for (kept for subscribing again).
    pub(crate) active: BTreeMap<TopicFilter, SubscribeFilter>,
    /// MQTT 5: the Subscription Identifier each granted filter was last subscribed with (a new
    /// SUBSCRIBE of a filter replaces it, MQTT 5.0 section 3.8.2.1.2), so that subscribing again
    /// keeps it. Kept in memory only: a session restored from a store has none.
    pub(crate) identifiers: BTreeMap<TopicFilter, SubscriptionId>,
    /// SUBSCRIBEs sent, SUBACK not yet received; sent again after a reconnect.
    pub(crate) pending_subscribe: Vec<Subscribe>,
    /// UNSUBSCRIBEs sent, UNSUBACK not yet received; sent again after a reconnect.
    pub(crate) pending_unsubscribe: Vec<Unsubscribe>,
    /// Pending requests not sent yet because a barrier message awaits its PUBACK.
    pub(crate) held: Vec<PacketId>,
}

impl Subscriptions {
    /// The granted filters as SUBSCRIBEs that ask for them again: one per Subscription
    /// Identifier (a SUBSCRIBE carries at most one), those without one first, each with its
    /// properties.
    pub(crate) fn to_subscribe_again(
        &self,
        keep: impl Fn(&TopicFilter) -> bool,
    ) -> Vec<(Vec<SubscribeFilter>, Properties)> {
        let mut groups: BTreeMap<Option<SubscriptionId>, Vec<SubscribeFilter>> = BTreeMap::new();
        for (filter, granted) in self.active.iter().filter(|(f, _)| keep(f)) {
            let identifier = self.identifiers.get(filter).copied();
            groups.entry(identifier).or_default().push(granted.clone());
        }
        groups
            .into_iter()
            .map(|(identifier, filters)| {
                let mut properties = Properties::new();
                if let Some(identifier) = identifier {
                    properties.push_subscription_identifier(identifier);
                }
                (filters, properties)
            })
            .collect()
    }

    /// A filter is no longer subscribed.
    pub(crate) fn remove(&mut self, filter: &TopicFilter) -> Option<SubscribeFilter> {
        self.identifiers.remove(filter);
        self.active.remove(filter)
    }

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
