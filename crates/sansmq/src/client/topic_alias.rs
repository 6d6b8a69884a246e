//! MQTT 5 Topic Aliases (MQTT 5.0 section 3.3.2.3.4): small numbers that stand for topics on one
//! connection, so a topic crosses the wire once. Each side keeps its own mapping for what it
//! sends, bounded by the other side's Topic Alias Maximum, and both start empty on every new
//! connection (MQTT-3.3.2-7).

use std::collections::HashMap;
use std::num::NonZeroU16;

use crate::topic::TopicName;

/// The aliases the server set on this connection, for the PUBLISHes it sends us.
#[derive(Debug, Clone, Default)]
pub(crate) struct InboundAliases {
    /// Slot `alias - 1`; as many as our Topic Alias Maximum, allocated on first use.
    topics: Vec<Option<TopicName>>,
    maximum: u16,
}

/// Why an inbound alias cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasFault {
    /// Above the Topic Alias Maximum we sent (MQTT-3.3.2-10).
    AboveMaximum,
    /// Used without a topic before any PUBLISH set it (MQTT 5.0 section 3.3.4: a Protocol Error).
    Unknown,
}

impl InboundAliases {
    /// A new connection that accepts aliases up to `maximum` (0: none).
    pub(crate) fn reset(&mut self, maximum: u16) {
        self.topics = Vec::new();
        self.maximum = maximum;
    }

    /// A PUBLISH with `alias`: sets it to `topic` when the PUBLISH has one (non-empty), or returns
    /// the topic it stands for.
    pub(crate) fn resolve(
        &mut self,
        alias: NonZeroU16,
        topic: Option<TopicName>,
    ) -> Result<TopicName, AliasFault> {
        if alias.get() > self.maximum {
            return Err(AliasFault::AboveMaximum);
        }
        let slot = usize::from(alias.get() - 1);
        match topic {
            Some(topic) => {
                if self.topics.len() <= slot {
                    self.topics.resize(slot + 1, None);
                }
                if let Some(entry) = self.topics.get_mut(slot) {
                    *entry = Some(topic.clone());
                }
                Ok(topic)
            }
            None => self
                .topics
                .get(slot)
                .cloned()
                .flatten()
                .ok_or(AliasFault::Unknown),
        }
    }
}

/// The aliases we set on this connection: the most recently used topics up to the smaller of
/// the server's Topic Alias Maximum and our own limit, the least recently used one given to a
/// new topic when all are taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutboundAliases {
    /// Topic → its alias.
    by_topic: HashMap<TopicName, NonZeroU16>,
    /// Slot `alias - 1`: the topic it stands for and when it was last used.
    slots: Vec<(TopicName, u64)>,
    maximum: u16,
    clock: u64,
}

impl OutboundAliases {
    /// A new connection on which up to `maximum` aliases may be used (0: none).
    pub(crate) fn reset(&mut self, maximum: u16) {
        self.by_topic = HashMap::new();
        self.slots = Vec::new();
        self.maximum = maximum;
        self.clock = 0;
    }

    /// Whether aliases are used on this connection.
    pub(crate) fn is_enabled(&self) -> bool {
        self.maximum > 0
    }

    /// The alias to send `topic` with, and whether the topic must go with it (the alias is new,
    /// or now stands for another topic). `None` when aliases are off or the topic is empty.
    pub(crate) fn assign(&mut self, topic: &TopicName) -> Option<(NonZeroU16, bool)> {
        if self.maximum == 0 || topic.as_bytes().is_empty() {
            return None;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(&alias) = self.by_topic.get(topic) {
            if let Some(slot) = self.slots.get_mut(usize::from(alias.get() - 1)) {
                slot.1 = now;
            }
            return Some((alias, false));
        }
        let bytes = topic.clone();
        if self.slots.len() < usize::from(self.maximum) {
            self.slots.push((bytes.clone(), now));
            let alias = NonZeroU16::new(u16::try_from(self.slots.len()).ok()?)?;
            self.by_topic.insert(bytes, alias);
            return Some((alias, true));
        }
        // All taken: the least recently used alias now stands for this topic.
        let (index, _) = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, used))| *used)?;
        let alias = NonZeroU16::new(u16::try_from(index + 1).ok()?)?;
        let slot = self.slots.get_mut(index)?;
        let old = std::mem::replace(slot, (bytes.clone(), now));
        self.by_topic.remove(&old.0);
        self.by_topic.insert(bytes, alias);
        Some((alias, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(s: &str) -> TopicName {
        TopicName::try_from(s).unwrap()
    }

    fn alias(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).unwrap()
    }

    #[test]
    fn inbound_aliases_are_set_by_a_topic_and_bounded_by_our_maximum() {
        let mut aliases = InboundAliases::default();
        aliases.reset(2);
        assert_eq!(aliases.resolve(alias(1), None), Err(AliasFault::Unknown));
        assert_eq!(aliases.resolve(alias(1), Some(topic("a"))), Ok(topic("a")));
        assert_eq!(aliases.resolve(alias(1), None), Ok(topic("a")));
        assert_eq!(aliases.resolve(alias(1), Some(topic("b"))), Ok(topic("b")));
        assert_eq!(aliases.resolve(alias(1), None), Ok(topic("b")));
        assert_eq!(
            aliases.resolve(alias(3), Some(topic("c"))),
            Err(AliasFault::AboveMaximum)
        );
        aliases.reset(2);
        assert_eq!(aliases.resolve(alias(1), None), Err(AliasFault::Unknown));
    }

    #[test]
    fn outbound_aliases_reuse_the_least_recently_used() {
        let mut aliases = OutboundAliases::default();
        assert_eq!(aliases.assign(&topic("a")), None, "off until reset");
        aliases.reset(2);
        assert_eq!(aliases.assign(&topic("a")), Some((alias(1), true)));
        assert_eq!(aliases.assign(&topic("b")), Some((alias(2), true)));
        assert_eq!(aliases.assign(&topic("a")), Some((alias(1), false)));
        // "b" is the least recently used: "c" takes its alias, and the topic goes with it.
        assert_eq!(aliases.assign(&topic("c")), Some((alias(2), true)));
        assert_eq!(aliases.assign(&topic("c")), Some((alias(2), false)));
        assert_eq!(aliases.assign(&topic("b")), Some((alias(1), true)));
        aliases.reset(2);
        assert_eq!(aliases.assign(&topic("c")), Some((alias(1), true)));
    }
}
