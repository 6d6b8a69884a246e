//! `topic`: topic name and filter validation and matching, against a reference written from the spec.
//!
//! The input is two strings separated by the first NUL byte (the second may hold more NULs, which
//! makes it invalid); each, and the whole input, is tried as a topic name and as a topic filter.
//!
//! Checks that:
//! - `TopicName` and `TopicFilter` accept exactly what the reference rules below accept;
//! - every valid name is a valid filter and matches itself;
//! - `#` matches every valid name not starting with `$` and none that does (MQTT-4.7.2-1);
//! - the filter with `+` for each of a name's levels matches it (if it does not start with `$`),
//!   as does one keeping the first level; `<name>/#` matches it (the parent level, MQTT 4.7.1.2), and
//!   `<levels>/#` matches it for a prefix of its levels; `<name>/+` does not;
//! - `sansmq::topic::matches` and `TopicFilter::matches` agree with the reference matcher on every
//!   valid filter/name pair made from the input, and `matches` never panics on any strings.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansmq::topic::matches;
use sansmq::{TopicFilter, TopicName};

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let candidates = [first, second, data];
    for candidate in candidates {
        check_one(candidate);
    }

    let strings: Vec<&str> = candidates
        .iter()
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    for filter in &strings {
        for name in &strings {
            // Not valid topics, perhaps, but `matches` takes any `&str` and must not panic.
            let _ = matches(filter, name);
            let (Ok(f), Ok(n)) = (TopicFilter::try_from(*filter), TopicName::try_from(*name))
            else {
                continue;
            };
            let expected = reference_matches(filter, name);
            assert_eq!(
                matches(filter, name),
                expected,
                "filter {filter:?}, name {name:?}"
            );
            assert_eq!(f.matches(&n), expected, "filter {filter:?}, name {name:?}");
        }
    }
});

/// Validation of one candidate against the reference rules, and the properties of a valid name.
fn check_one(bytes: &[u8]) {
    let name = TopicName::from_bytes(Bytes::copy_from_slice(bytes));
    let filter = TopicFilter::from_bytes(Bytes::copy_from_slice(bytes));
    let s = reference_string(bytes);
    assert_eq!(
        name.is_ok(),
        s.is_some_and(reference_valid_name),
        "TopicName {bytes:?}: {name:?}"
    );
    assert_eq!(
        filter.is_ok(),
        s.is_some_and(reference_valid_filter),
        "TopicFilter {bytes:?}: {filter:?}"
    );
    if let Ok(filter) = &filter {
        assert_eq!(filter.as_str().as_bytes(), bytes);
        assert_eq!(filter.has_wildcards(), filter.contains(['+', '#']));
    }
    let Ok(topic_name) = name else {
        return;
    };
    let name = topic_name.as_str();
    let filter =
        filter.unwrap_or_else(|e| panic!("valid name {name:?} is not a valid filter: {e}"));
    assert!(
        filter.matches(&topic_name),
        "{name:?} does not match itself"
    );
    assert!(matches(name, name));
    assert!(reference_matches(name, name));

    let system = name.starts_with('$');
    let levels: Vec<&str> = name.split('/').collect();
    let check = |filter: &str, expected: bool| {
        assert!(
            TopicFilter::try_from(filter).is_ok(),
            "built an invalid filter {filter:?}"
        );
        assert_eq!(
            matches(filter, name),
            expected,
            "filter {filter:?}, name {name:?}"
        );
        assert_eq!(
            reference_matches(filter, name),
            expected,
            "reference: {filter:?}, {name:?}"
        );
    };
    check("#", !system);
    check(&vec!["+"; levels.len()].join("/"), !system);
    let mut first_kept = vec![levels[0]];
    first_kept.extend(std::iter::repeat_n("+", levels.len() - 1));
    check(&first_kept.join("/"), true);
    check(&format!("{name}/#"), true);
    check(&format!("{name}/+"), false);
    // A few prefixes only: a name can have thousands of levels.
    for keep in (1..levels.len())
        .take(4)
        .chain([levels.len() - 1])
        .filter(|&k| k > 0)
    {
        check(&format!("{}/#", levels[..keep].join("/")), true);
    }
}

/// The string if `bytes` is one MQTT allows (MQTT 1.5.3): at most 65,535 bytes of well-formed UTF-8
/// without U+0000.
fn reference_string(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    (bytes.len() <= 65_535 && !s.contains('\0')).then_some(s)
}

/// MQTT-4.7.3-1: at least one character; MQTT-4.7.1-1: no wildcard in a name.
fn reference_valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['+', '#'])
}

/// MQTT-4.7.3-1, MQTT-4.7.1-2 (`#` alone in the last level), MQTT-4.7.1-3 (`+` alone in its level).
fn reference_valid_filter(s: &str) -> bool {
    let levels: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && levels.iter().enumerate().all(|(i, level)| match *level {
            "#" => i == levels.len() - 1,
            "+" => true,
            other => !other.contains(['+', '#']),
        })
}

/// Whether `name` matches `filter`, read off MQTT 3.1.1 section 4.7 one level at a time.
fn reference_matches(filter: &str, name: &str) -> bool {
    let filter: Vec<&str> = filter.split('/').collect();
    let name: Vec<&str> = name.split('/').collect();
    // MQTT-4.7.2-1: a filter whose first level is a wildcard does not see `$` names.
    if name[0].starts_with('$') && (filter[0] == "+" || filter[0] == "#") {
        return false;
    }
    levels_match(&filter, &name)
}

fn levels_match(filter: &[&str], name: &[&str]) -> bool {
    match (filter, name) {
        // 4.7.1.2: `#` is the parent level and any number of child levels, so also none.
        (["#"], _) => true,
        // 4.7.1.3: `+` is exactly one level, which may be empty.
        (["+", filter_rest @ ..], [_, name_rest @ ..]) => levels_match(filter_rest, name_rest),
        ([f, filter_rest @ ..], [n, name_rest @ ..]) => {
            f == n && levels_match(filter_rest, name_rest)
        }
        ([], []) => true,
        _ => false,
    }
}
