//! Topics: a parent topic (created in the ApsaraMQ console) plus `/`-separated sub levels, within a
//! length limit; point-to-point (P2P) topics `<parent>/p2p/<target client id>`.
//!
//! A P2P message reaches its target **without a subscription**; sansmq delivers such unsolicited
//! PUBLISHes to `message_arrived` like any other, and [`is_p2p_for`] tells them apart.

use sansmq::{TopicFilter, TopicName};

use crate::ClientId;

/// The topic length limit of Alibaba's quick-start, in characters. (Older pages say 64: see
/// [`TopicRules::new`].)
pub const DEFAULT_MAX_TOPIC_LEN: usize = 128;

/// The level between the parent topic and the target client id of a P2P topic.
pub const P2P_LEVEL: &str = "p2p";

/// ApsaraMQ's topic rules with a length limit: builds and checks topic names (to publish to) and
/// filters (to subscribe to, `+` and `#` allowed).
///
/// Every topic is also checked against MQTT's own rules ([`sansmq::TopicName`],
/// [`sansmq::TopicFilter`]).
///
/// ```
/// use sansmq_apsaramq::TopicRules;
///
/// let rules = TopicRules::default();
/// let topic = rules.name("parent", "testMq4Iot").unwrap();
/// assert_eq!(topic, "parent/testMq4Iot");
/// let all = rules.filter("parent", "#").unwrap();
/// assert!(all.matches(&topic));
/// assert!(rules.name("parent", &"x".repeat(200)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRules {
    max_len: usize,
}

impl Default for TopicRules {
    /// The quick-start's 128 characters.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_TOPIC_LEN)
    }
}

impl TopicRules {
    /// Rules with a limit of `max_len` characters for a whole topic (parent and sub levels).
    pub const fn new(max_len: usize) -> Self {
        Self { max_len }
    }

    /// The length limit in characters.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }

    /// `<parent>/<sub>` as a topic name; `sub` may hold several levels (`a/b`) or be empty (the
    /// parent topic alone).
    ///
    /// The parent is one level without wildcards; `sub` has no empty level (no leading, trailing
    /// or doubled `/`: almost always a concatenation slip) and no wildcard.
    pub fn name(&self, parent: &str, sub: &str) -> Result<TopicName, TopicError> {
        let topic = self.join(parent, sub)?;
        self.check_name(&topic)
    }

    /// `<parent>/<sub>` as a topic filter; `sub` may use `+` and `#` (`#` alone is everything
    /// under the parent) and may be empty.
    pub fn filter(&self, parent: &str, sub: &str) -> Result<TopicFilter, TopicError> {
        let topic = self.join(parent, sub)?;
        self.check_filter(&topic)
    }

    /// Checks a whole topic name: MQTT's rules and the length limit.
    pub fn check_name(&self, topic: &str) -> Result<TopicName, TopicError> {
        self.check_len(topic)?;
        Ok(TopicName::try_from(topic)?)
    }

    /// Checks a whole topic filter: MQTT's rules and the length limit.
    pub fn check_filter(&self, filter: &str) -> Result<TopicFilter, TopicError> {
        self.check_len(filter)?;
        Ok(TopicFilter::try_from(filter)?)
    }

    /// The P2P topic `<parent>/p2p/<target>`: publish to it to reach one client, which receives
    /// it without subscribing.
    pub fn p2p_topic(&self, parent: &str, target: &ClientId) -> Result<TopicName, TopicError> {
        self.name(parent, &format!("{P2P_LEVEL}/{target}"))
    }

    fn join(&self, parent: &str, sub: &str) -> Result<String, TopicError> {
        let invalid_parent = |reason| TopicError::InvalidParent {
            parent: parent.to_owned(),
            reason,
        };
        if parent.is_empty() {
            return Err(invalid_parent("is empty"));
        }
        if parent.contains('/') {
            return Err(invalid_parent(
                "contains '/'; give the parent topic alone and the rest as sub levels",
            ));
        }
        if parent.contains(['+', '#']) {
            return Err(invalid_parent(
                "contains a wildcard; the parent topic is a name created in the console",
            ));
        }
        if sub.is_empty() {
            return Ok(parent.to_owned());
        }
        if sub.split('/').any(str::is_empty) {
            return Err(TopicError::EmptyLevel {
                parent: parent.to_owned(),
                sub: sub.to_owned(),
            });
        }
        Ok(format!("{parent}/{sub}"))
    }

    fn check_len(&self, topic: &str) -> Result<(), TopicError> {
        let len = topic.chars().count();
        if len > self.max_len {
            return Err(TopicError::TooLong {
                topic: topic.to_owned(),
                len,
                max: self.max_len,
            });
        }
        Ok(())
    }
}

/// The P2P topic `<parent>/p2p/<target>` under the default rules; see [`TopicRules::p2p_topic`].
///
/// ```
/// use sansmq_apsaramq::{ClientId, p2p_topic};
///
/// let target = ClientId::new("GID_test", "device-002").unwrap();
/// assert_eq!(p2p_topic("parent", &target).unwrap(), "parent/p2p/GID_test@@@device-002");
/// ```
pub fn p2p_topic(parent: &str, target: &ClientId) -> Result<TopicName, TopicError> {
    TopicRules::default().p2p_topic(parent, target)
}

/// Whether a message that arrived on `topic` is a P2P message for this client: its topic is
/// exactly `<parent>/p2p/<own client id>`.
///
/// ```
/// use sansmq_apsaramq::{ClientId, is_p2p_for};
///
/// let me = ClientId::new("GID_test", "device-001").unwrap();
/// assert!(is_p2p_for("parent/p2p/GID_test@@@device-001", "parent", &me));
/// assert!(!is_p2p_for("parent/testMq4Iot", "parent", &me));
/// ```
pub fn is_p2p_for(topic: &str, parent: &str, own_client_id: &ClientId) -> bool {
    topic
        .strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(P2P_LEVEL))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|target| target == own_client_id.as_str())
}

/// Why a topic breaks ApsaraMQ's or MQTT's rules; every message names the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The parent topic is not one plain level.
    #[error("parent topic {parent:?} {reason}")]
    InvalidParent {
        /// The parent topic.
        parent: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The sub levels contain an empty level.
    #[error(
        "sub topic {sub:?} under parent {parent:?} has an empty level; do not start or end it with '/' or double a '/'"
    )]
    EmptyLevel {
        /// The parent topic.
        parent: String,
        /// The sub levels as given.
        sub: String,
    },
    /// Longer than the limit.
    #[error("topic {topic:?}: {len} characters; the limit is {max}")]
    TooLong {
        /// The topic.
        topic: String,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Breaks MQTT's topic rules (a wildcard in a name, a misplaced `#`...).
    #[error(transparent)]
    Mqtt(#[from] sansmq::TopicError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> ClientId {
        ClientId::parse("GID_test@@@device-001").unwrap()
    }

    #[test]
    fn names_from_parent_and_sub_levels() {
        let rules = TopicRules::default();
        assert_eq!(rules.max_len(), 128);
        assert_eq!(
            rules.name("parent", "testMq4Iot").unwrap(),
            "parent/testMq4Iot"
        );
        assert_eq!(rules.name("parent", "a/b/c").unwrap(), "parent/a/b/c");
        assert_eq!(rules.name("parent", "").unwrap(), "parent");
    }

    #[test]
    fn filters_take_wildcards_in_sub_levels() {
        let rules = TopicRules::default();
        assert_eq!(rules.filter("parent", "#").unwrap(), "parent/#");
        assert_eq!(rules.filter("parent", "+/temp").unwrap(), "parent/+/temp");
        assert_eq!(rules.filter("parent", "a/+").unwrap(), "parent/a/+");
        assert_eq!(rules.filter("parent", "").unwrap(), "parent");
    }

    #[test]
    fn names_refuse_wildcards() {
        let rules = TopicRules::default();
        for sub in ["#", "a/+", "a+b"] {
            assert!(
                matches!(
                    rules.name("parent", sub),
                    Err(TopicError::Mqtt(sansmq::TopicError::WildcardInName { .. }))
                ),
                "{sub}"
            );
        }
    }

    #[test]
    fn filters_refuse_misplaced_wildcards() {
        let rules = TopicRules::default();
        assert!(matches!(
            rules.filter("parent", "#/a"),
            Err(TopicError::Mqtt(
                sansmq::TopicError::MisplacedMultiLevelWildcard { .. }
            ))
        ));
        assert!(matches!(
            rules.filter("parent", "a+"),
            Err(TopicError::Mqtt(
                sansmq::TopicError::MisplacedSingleLevelWildcard { .. }
            ))
        ));
    }

    #[test]
    fn refuses_a_bad_parent() {
        let rules = TopicRules::default();
        for (parent, reason_part) in [
            ("", "is empty"),
            ("a/b", "contains '/'"),
            ("+", "wildcard"),
            ("pa#", "wildcard"),
        ] {
            for error in [
                rules.name(parent, "x").unwrap_err(),
                rules.filter(parent, "x").unwrap_err(),
            ] {
                assert!(
                    matches!(&error, TopicError::InvalidParent { parent: p, .. } if p == parent),
                    "{error:?}"
                );
                let message = error.to_string();
                assert!(message.contains(reason_part), "{message}");
                assert!(message.contains(&format!("{parent:?}")), "{message}");
            }
        }
    }

    #[test]
    fn refuses_empty_levels_in_sub() {
        let rules = TopicRules::default();
        for sub in ["/testMq4Iot", "a/", "a//b", "/"] {
            let error = rules.name("parent", sub).unwrap_err();
            assert_eq!(
                error,
                TopicError::EmptyLevel {
                    parent: "parent".into(),
                    sub: sub.into()
                }
            );
            assert!(error.to_string().contains(sub));
            assert!(rules.filter("parent", sub).is_err());
        }
    }

    #[test]
    fn length_limit_default_128_counts_characters() {
        let rules = TopicRules::default();
        let sub = "x".repeat(128 - "parent/".len());
        assert_eq!(rules.name("parent", &sub).unwrap().len(), 128);
        let error = rules.name("parent", &format!("{sub}x")).unwrap_err();
        assert!(matches!(
            error,
            TopicError::TooLong {
                len: 129,
                max: 128,
                ..
            }
        ));
        assert!(error.to_string().contains("129 characters"));
        assert!(error.to_string().contains("limit is 128"));
        assert!(rules.filter("parent", &format!("{sub}x")).is_err());

        // Characters, not bytes: 121 two-byte letters fit.
        let wide = "é".repeat(128 - "parent/".len());
        assert!(rules.name("parent", &wide).is_ok());
    }

    #[test]
    fn length_limit_is_configurable() {
        let rules = TopicRules::new(64);
        assert_eq!(rules.max_len(), 64);
        let sub = "x".repeat(64 - "parent/".len());
        assert!(rules.name("parent", &sub).is_ok());
        assert!(matches!(
            rules.name("parent", &format!("{sub}x")),
            Err(TopicError::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            rules.check_filter(&format!("parent/{sub}x")),
            Err(TopicError::TooLong { max: 64, .. })
        ));
    }

    #[test]
    fn check_whole_topics() {
        let rules = TopicRules::default();
        assert_eq!(rules.check_name("a/b").unwrap(), "a/b");
        assert_eq!(rules.check_filter("a/#").unwrap(), "a/#");
        assert!(matches!(
            rules.check_name(""),
            Err(TopicError::Mqtt(sansmq::TopicError::Empty))
        ));
        assert!(matches!(rules.check_name("a/+"), Err(TopicError::Mqtt(_))));
        assert!(matches!(
            rules.check_name("a\0b"),
            Err(TopicError::Mqtt(sansmq::TopicError::String { .. }))
        ));
    }

    #[test]
    fn p2p_topic_is_parent_p2p_target() {
        let target = ClientId::new("GID_test", "device-002").unwrap();
        assert_eq!(
            p2p_topic("parent", &target).unwrap(),
            "parent/p2p/GID_test@@@device-002"
        );
        assert!(p2p_topic("a/b", &target).is_err());
        let long_parent = "p".repeat(110);
        assert!(matches!(
            p2p_topic(&long_parent, &target),
            Err(TopicError::TooLong { .. })
        ));
        assert!(
            TopicRules::new(200)
                .p2p_topic(&long_parent, &target)
                .is_ok()
        );
    }

    #[test]
    fn recognises_p2p_messages_for_this_client_only() {
        let me = me();
        let mine = p2p_topic("parent", &me).unwrap();
        assert!(is_p2p_for(&mine, "parent", &me));

        for topic in [
            "parent/p2p/GID_test@@@device-002",
            "parent/p2p/GID_test@@@device-0011",
            "parent/p2p/GID_test@@@device-001/x",
            "parent/p2p/",
            "parent/p2p",
            "parent/testMq4Iot",
            "other/p2p/GID_test@@@device-001",
            "parentx/p2p/GID_test@@@device-001",
            "parent/P2P/GID_test@@@device-001",
            "parent//p2p/GID_test@@@device-001",
            "x/parent/p2p/GID_test@@@device-001",
        ] {
            assert!(!is_p2p_for(topic, "parent", &me), "{topic}");
        }
    }
}
