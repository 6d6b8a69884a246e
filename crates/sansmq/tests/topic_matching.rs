//! Topic validation and matching, case by case from MQTT 3.1.1 section 4.7 and its examples.

use sansmq::topic::matches;
use sansmq::{TopicError, TopicFilter, TopicName};

/// (filter, topic name, matches?)
const MATCHING: &[(&str, &str, bool)] = &[
    // Exact levels.
    ("sport/tennis/player1", "sport/tennis/player1", true),
    ("sport/tennis/player1", "sport/tennis/player2", false),
    ("sport/tennis", "sport/tennis/player1", false),
    ("sport/tennis/player1", "sport/tennis", false),
    ("a", "A", false),
    // '#' matches the parent and any number of child levels (4.7.1.2).
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/#", "sport", true),
    ("sport/#", "sports", false),
    ("sport/#", "sport/", true),
    ("#", "sport/tennis/player1", true),
    ("#", "/", true),
    ("#", "a", true),
    // '+' matches exactly one level, which may be empty (4.7.1.3).
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player2", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+", "sport", true),
    ("+", "/finance", false),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+/tennis/#", "sport/tennis/player1", true),
    ("+/tennis/#", "sport/tennis", true),
    ("+/+/+", "a/b", false),
    ("+/#", "a", true),
    // Leading and trailing slashes make empty levels, which count (4.7.1.1).
    ("/finance", "finance", false),
    ("finance/", "finance", false),
    ("a//b", "a//b", true),
    ("a/+/b", "a//b", true),
    // Names starting with '$' are not matched by filters starting with a wildcard (MQTT-4.7.2-1).
    ("#", "$SYS/monitor/Clients", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$SYS", "$SYS", true),
    ("a/#", "a/$b", true),
    ("+", "$", false),
];

#[test]
fn matching_table() {
    for &(filter, name, expected) in MATCHING {
        let f = TopicFilter::try_from(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let n = TopicName::try_from(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            f.matches(&n),
            expected,
            "filter {filter:?} vs name {name:?}"
        );
        assert_eq!(matches(filter, name), expected);
    }
}

#[test]
fn valid_filters() {
    for filter in [
        "#", "+", "/", "+/+", "/#", "a/+/b/#", "+/#", "a//+", "$SYS/#", "é/€", " ",
    ] {
        assert!(
            TopicFilter::try_from(filter).is_ok(),
            "{filter:?} should be valid"
        );
    }
}

#[test]
fn invalid_filters() {
    let cases: &[(&str, TopicError)] = &[
        ("", TopicError::Empty),
        (
            "a/#/b",
            TopicError::MisplacedMultiLevelWildcard {
                filter: "a/#/b".into(),
            },
        ),
        (
            "a#",
            TopicError::MisplacedMultiLevelWildcard {
                filter: "a#".into(),
            },
        ),
        (
            "#/",
            TopicError::MisplacedMultiLevelWildcard {
                filter: "#/".into(),
            },
        ),
        (
            "##",
            TopicError::MisplacedMultiLevelWildcard {
                filter: "##".into(),
            },
        ),
        (
            "a+",
            TopicError::MisplacedSingleLevelWildcard {
                filter: "a+".into(),
            },
        ),
        (
            "+a/b",
            TopicError::MisplacedSingleLevelWildcard {
                filter: "+a/b".into(),
            },
        ),
        (
            "a/++",
            TopicError::MisplacedSingleLevelWildcard {
                filter: "a/++".into(),
            },
        ),
    ];
    for (filter, error) in cases {
        assert_eq!(
            TopicFilter::try_from(*filter).as_ref(),
            Err(error),
            "{filter:?}"
        );
    }
}

#[test]
fn valid_and_invalid_names() {
    for name in ["a", "/", "a/b", "/a", "a/", "$SYS/x", "with space", "ü/€"] {
        assert!(
            TopicName::try_from(name).is_ok(),
            "{name:?} should be valid"
        );
    }
    assert_eq!(TopicName::try_from(""), Err(TopicError::Empty));
    assert_eq!(
        TopicName::try_from("a/#"),
        Err(TopicError::WildcardInName {
            topic: "a/#".into(),
            position: 2
        })
    );
    assert_eq!(
        TopicName::try_from("+"),
        Err(TopicError::WildcardInName {
            topic: "+".into(),
            position: 0
        })
    );
    assert!(matches!(
        TopicName::try_from("a\0b"),
        Err(TopicError::String { .. })
    ));
}

#[test]
fn error_messages_name_the_topic_and_the_rule() {
    let error = TopicFilter::try_from("a/#/b").unwrap_err();
    assert_eq!(
        error.to_string(),
        "topic filter \"a/#/b\": '#' must be the last level and alone in it (MQTT-4.7.1-2)"
    );
}
