//! Retained messages: the last retained message of each topic (MQTT 3.1.1 section 3.3.1.3).

use std::collections::HashMap;

use sansmq::TopicFilter;

use crate::session::{ENTRY_OVERHEAD, Message};

/// The retained message of each topic, within a count and a byte limit (0: no limit).
///
/// When a new retained message does not fit, it is **refused**, not made room for: evicting
/// another topic's message would silently change what that topic's future subscribers get,
/// while a refusal leaves every stored message as its publisher left it and is logged and
/// counted. A refused replacement also clears the topic's old message, so that a new subscriber
/// is never handed a value older than one published since.
#[derive(Debug)]
pub(crate) struct Retained {
    messages: HashMap<String, Message>,
    max_messages: usize,
    max_bytes: usize,
    /// [`Retained::cost`] of every stored message.
    bytes: usize,
    /// Messages that could not be retained.
    refused: u64,
}

impl Retained {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            messages: HashMap::new(),
            max_messages,
            max_bytes,
            bytes: 0,
            refused: 0,
        }
    }

    /// Stores `message` as its topic's retained message, replacing the previous one
    /// (MQTT-3.3.1-5); an empty payload removes it instead (MQTT-3.3.1-10, MQTT-3.3.1-11).
    /// Returns `false` if the message could not be kept within the limits.
    pub(crate) fn store(&mut self, message: Message) -> bool {
        let topic = message.topic.as_str();
        let old = self.messages.remove(topic);
        if let Some(old) = &old {
            self.bytes = self.bytes.saturating_sub(Self::cost(old));
        }
        if message.payload.is_empty() {
            return true;
        }
        let cost = Self::cost(&message);
        let count_full = self.max_messages != 0 && self.messages.len() >= self.max_messages;
        let bytes_full = self.max_bytes != 0 && self.bytes.saturating_add(cost) > self.max_bytes;
        if count_full || bytes_full {
            self.refused = self.refused.saturating_add(1);
            tracing::warn!(
                topic,
                bytes = message.payload.len(),
                retained_messages = self.messages.len(),
                retained_bytes = self.bytes,
                old_cleared = old.is_some(),
                "retained message refused: {} reached",
                if count_full {
                    "max_retained_messages"
                } else {
                    "max_retained_bytes"
                }
            );
            return false;
        }
        self.bytes = self.bytes.saturating_add(cost);
        self.messages.insert(topic.to_owned(), message);
        true
    }

    /// The retained messages matching `filter`, in no particular order.
    pub(crate) fn matching<'a>(
        &'a self,
        filter: &'a TopicFilter,
    ) -> impl Iterator<Item = &'a Message> + 'a {
        self.messages
            .values()
            .filter(move |m| filter.matches(&m.topic))
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// What the stored messages count for against `max_retained_bytes`.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages refused since the broker started.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// What one stored message counts for: its topic twice (the key and the message's own copy),
    /// its payload and the bookkeeping of an entry.
    fn cost(message: &Message) -> usize {
        message
            .topic
            .len()
            .saturating_mul(2)
            .saturating_add(message.payload.len())
            .saturating_add(ENTRY_OVERHEAD)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sansmq::TopicName;
    use sansmq::packet::QoS;

    use super::*;

    fn message(topic: &str, payload: &'static [u8]) -> Message {
        Message::new(
            TopicName::try_from(topic).unwrap(),
            Bytes::from_static(payload),
            QoS::AtMostOnce,
            true,
        )
    }

    #[test]
    fn keeps_the_last_and_clears_on_empty() {
        let mut retained = Retained::new(2, 0);
        assert!(retained.store(message("a/b", b"1")));
        assert!(retained.store(message("a/b", b"2")));
        assert!(retained.store(message("$SYS/x", b"3")));
        assert!(!retained.store(message("a/c", b"4")));
        let all = TopicFilter::try_from("#").unwrap();
        let found: Vec<_> = retained.matching(&all).map(|m| m.payload.clone()).collect();
        assert_eq!(found, [Bytes::from_static(b"2")]); // `#` does not see `$SYS` (MQTT-4.7.2-1)
        assert!(retained.store(message("a/b", b"")));
        assert_eq!(retained.len(), 1);
        assert!(retained.store(message("a/c", b"4")));
        assert_eq!(retained.refused(), 1);
    }

    #[test]
    fn a_message_over_the_byte_limit_is_refused_and_clears_its_topic() {
        let small = Retained::cost(&message("a/b", b"12"));
        let mut retained = Retained::new(0, 2 * small);
        assert!(retained.store(message("a/b", b"12")));
        assert!(retained.store(message("a/c", b"34")));
        assert_eq!(retained.bytes(), 2 * small);
        assert!(!retained.store(message("a/d", b"5")));
        // A bigger replacement does not fit either: the stale value goes too.
        assert!(!retained.store(message("a/b", b"123")));
        assert_eq!(
            (retained.len(), retained.bytes(), retained.refused()),
            (1, small, 2)
        );
        assert!(retained.store(message("a/d", b"56")));
        assert!(retained.store(message("a/d", b"")));
        assert_eq!(retained.bytes(), small);
    }
}
