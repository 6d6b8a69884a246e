//! [`LastTopic`]: the topic a client handle published to last, so that a stream of messages to
//! one topic checks and copies its name once.

use std::sync::Mutex;

use sansmq::{TopicError, TopicName};

/// The [`TopicName`] a client handle made last. A publish names its topic as a `&str`; turning
/// it into a `TopicName` checks it (UTF-8, no wildcards, MQTT-3.3.2-2) and copies it into a
/// buffer of its own. Most programs publish to a few topics over and over, so a handle keeps the
/// last name and hands out clones of it (a reference count) while the topic stays the same.
///
/// A clone of a handle starts with none: each handle has its own, so handles used by different
/// threads do not contend for it, and one used from two threads at once skips it rather than
/// wait.
#[derive(Debug, Default)]
pub struct LastTopic(Mutex<Option<TopicName>>);

impl LastTopic {
    /// `topic` as a [`TopicName`]: the last one when it is the same topic, else a new one, which
    /// becomes the last.
    pub fn name(&self, topic: &str) -> Result<TopicName, TopicError> {
        let Ok(mut last) = self.0.try_lock() else {
            return TopicName::try_from(topic);
        };
        if let Some(name) = last
            .as_ref()
            .filter(|name| name.as_bytes() == topic.as_bytes())
        {
            return Ok(name.clone());
        }
        let name = TopicName::try_from(topic)?;
        *last = Some(name.clone());
        Ok(name)
    }
}

impl Clone for LastTopic {
    /// A new, empty one: see the type's documentation.
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_topic_shares_one_name_and_a_new_topic_replaces_it() {
        let last = LastTopic::default();
        let first = last.name("a/b").unwrap();
        let again = last.name("a/b").unwrap();
        assert_eq!(first, again);
        assert_eq!(
            first.as_bytes().as_ptr(),
            again.as_bytes().as_ptr(),
            "the second is a clone of the first, not a copy"
        );
        let other = last.name("a/c").unwrap();
        assert_eq!(other.as_str(), "a/c");
        let back = last.name("a/b").unwrap();
        assert_eq!(back.as_str(), "a/b");
        assert_ne!(
            back.as_bytes().as_ptr(),
            first.as_bytes().as_ptr(),
            "only the last topic is kept"
        );
    }

    #[test]
    fn an_invalid_topic_is_refused_and_the_last_one_kept() {
        let last = LastTopic::default();
        let kept = last.name("a").unwrap();
        assert!(last.name("a/+").is_err(), "MQTT-3.3.2-2: no wildcards");
        assert!(last.name("").is_err());
        assert_eq!(
            last.name("a").unwrap().as_bytes().as_ptr(),
            kept.as_bytes().as_ptr()
        );
    }

    #[test]
    fn a_clone_starts_empty_and_a_busy_one_still_answers() {
        let last = LastTopic::default();
        let first = last.name("t").unwrap();
        let cloned = last.clone();
        assert_ne!(
            cloned.name("t").unwrap().as_bytes().as_ptr(),
            first.as_bytes().as_ptr()
        );
        let held = last.0.lock().unwrap();
        assert_eq!(
            last.name("t").unwrap().as_str(),
            "t",
            "locked: a fresh name"
        );
        drop(held);
    }
}
