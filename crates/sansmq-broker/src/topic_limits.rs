//! The bounds on the topics and topic filters the broker takes: [`TopicLimits`].

use crate::config::BrokerConfig;

/// How deep and how long a topic or a topic filter may be
/// ([`BrokerConfig::max_topic_levels`], [`BrokerConfig::max_topic_length`]); 0 is no limit of the
/// broker's own, leaving MQTT's: at most 65 535 bytes (MQTT-1.5.3), so at most 65 536 levels
/// (all of them empty).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicLimits {
    pub(crate) max_levels: usize,
    pub(crate) max_length: usize,
}

/// A topic or topic filter over the broker's [`TopicLimits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TopicLimitError {
    #[error("topic {topic:?} is {length} bytes long, over the limit of {limit} (max_topic_length)")]
    TooLong {
        topic: String,
        length: usize,
        limit: usize,
    },
    #[error("topic {topic:?} has {levels} levels, over the limit of {limit} (max_topic_levels)")]
    TooManyLevels {
        topic: String,
        levels: usize,
        limit: usize,
    },
}

/// How much of an offending topic an error quotes.
const QUOTED_CHARS: usize = 48;

impl TopicLimits {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        Self {
            max_levels: config.max_topic_levels,
            max_length: config.max_topic_length,
        }
    }

    /// Checks a topic name or topic filter.
    pub(crate) fn check(&self, topic: &str) -> Result<(), TopicLimitError> {
        let length = topic.len();
        if self.max_length != 0 && length > self.max_length {
            return Err(TopicLimitError::TooLong {
                topic: quoted(topic),
                length,
                limit: self.max_length,
            });
        }
        let levels = topic
            .bytes()
            .filter(|&b| b == b'/')
            .count()
            .saturating_add(1);
        if self.max_levels != 0 && levels > self.max_levels {
            return Err(TopicLimitError::TooManyLevels {
                topic: quoted(topic),
                levels,
                limit: self.max_levels,
            });
        }
        Ok(())
    }
}

/// The start of `topic`, marked as cut if it is long: enough to recognise it in a log line.
fn quoted(topic: &str) -> String {
    match topic.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", topic.get(..end).unwrap_or_default()),
        None => topic.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TopicLimits = TopicLimits {
        max_levels: 3,
        max_length: 100,
    };

    #[test]
    fn topics_within_the_limits_pass() {
        assert_eq!(LIMITS.check("a/b/c"), Ok(()));
        assert_eq!(LIMITS.check("+/+/#"), Ok(()));
        assert_eq!(LIMITS.check(&"x".repeat(100)), Ok(()));
    }

    #[test]
    fn the_error_names_the_topic_its_size_and_the_setting() {
        let error = LIMITS.check("a/b/c/#").unwrap_err();
        assert_eq!(
            error.to_string(),
            "topic \"a/b/c/#\" has 4 levels, over the limit of 3 (max_topic_levels)"
        );
        let error = LIMITS.check(&"é".repeat(60)).unwrap_err().to_string();
        assert!(error.starts_with(&format!("topic \"{}...\" is 120 bytes", "é".repeat(48))));
        assert!(
            error.ends_with("over the limit of 100 (max_topic_length)"),
            "{error}"
        );
        assert!(matches!(
            LIMITS.check("///"),
            Err(TopicLimitError::TooManyLevels { levels: 4, .. })
        ));
    }

    #[test]
    fn zero_limits_refuse_nothing_mqtt_allows() {
        let unlimited = TopicLimits {
            max_levels: 0,
            max_length: 0,
        };
        // The deepest and longest topics MQTT allows (65 535 bytes, MQTT-1.5.3).
        assert_eq!(unlimited.check(&"/".repeat(65_534)), Ok(()));
        assert_eq!(unlimited.check(&"x".repeat(65_535)), Ok(()));
        assert_eq!(unlimited.check("a"), Ok(()));
        // One limit at 0 leaves the other in force.
        let length_only = TopicLimits {
            max_levels: 0,
            max_length: 10,
        };
        assert_eq!(length_only.check(&"/".repeat(10)), Ok(()));
        assert!(matches!(
            length_only.check(&"/".repeat(11)),
            Err(TopicLimitError::TooLong { length: 11, .. })
        ));
        let levels_only = TopicLimits {
            max_levels: 3,
            max_length: 0,
        };
        assert_eq!(levels_only.check(&"x".repeat(10_000)), Ok(()));
        assert!(levels_only.check("a/b/c/d").is_err());
    }
}
