//! Retained messages: the last retained message of each topic (MQTT 3.1.1 section 3.3.1.3).

use std::collections::HashMap;

use sansmq::TopicFilter;

use crate::session::Message;

/// The retained message of each topic, at most `limit` topics.
#[derive(Debug)]
pub(crate) struct Retained {
    messages: HashMap<String, Message>,
    limit: usize,
}

impl Retained {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            messages: HashMap::new(),
            limit,
        }
    }

    /// Stores `message` as its topic's retained message, replacing the previous one
    /// (MQTT-3.3.1-5); an empty payload removes it instead (MQTT-3.3.1-10, MQTT-3.3.1-11).
    /// Returns `false` if the message could not be kept because `limit` topics already hold one.
    pub(crate) fn store(&mut self, message: Message) -> bool {
        let topic = message.topic.as_str();
        if message.payload.is_empty() {
            self.messages.remove(topic);
            return true;
        }
        if let Some(slot) = self.messages.get_mut(topic) {
            *slot = message;
            return true;
        }
        if self.messages.len() >= self.limit {
            return false;
        }
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
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sansmq::TopicName;
    use sansmq::packet::QoS;

    use super::*;

    fn message(topic: &str, payload: &'static [u8]) -> Message {
        Message {
            topic: TopicName::try_from(topic).unwrap(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: true,
        }
    }

    #[test]
    fn keeps_the_last_and_clears_on_empty() {
        let mut retained = Retained::new(2);
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
    }
}
