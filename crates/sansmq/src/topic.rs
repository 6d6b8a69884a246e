//! Topic names, topic filters and how they match (MQTT 3.1.1 section 4.7).

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use crate::string::{self, MqttString, StringError};

/// The name a message is published to: non-empty, no wildcards (MQTT-4.7.1-1, MQTT-4.7.3-1).
///
/// ```
/// use sansmq::TopicName;
///
/// let name = TopicName::try_from("sensors/kitchen/temp").unwrap();
/// assert_eq!(name.as_str(), "sensors/kitchen/temp");
/// assert!(TopicName::try_from("sensors/+/temp").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(MqttString);

/// A subscription pattern: levels separated by `/`, where `+` stands for exactly one level and a final
/// `#` for any number of levels, including none (MQTT-4.7.1-2, MQTT-4.7.1-3).
///
/// ```
/// use sansmq::{TopicFilter, TopicName};
///
/// let filter = TopicFilter::try_from("sensors/+/temp").unwrap();
/// assert!(filter.matches(&TopicName::try_from("sensors/kitchen/temp").unwrap()));
/// assert!(TopicFilter::try_from("sensors/#/temp").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(MqttString);

impl TopicName {
    /// Validates `bytes` as a topic name without copying them.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        validated(bytes, plain_ascii_name, check_name).map(Self)
    }

    /// Validates an already valid MQTT string as a topic name.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        check_name(s.as_bytes())?;
        Ok(Self(s))
    }

    /// `bytes` that [`check_topic_name`] accepted.
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        Self(MqttString::from_validated(bytes))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as an MQTT string.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// The encoded bytes (no length prefix); cheaper than `as_str().as_bytes()`, which checks the
    /// UTF-8 again.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The levels between the `/` separators.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.as_str().split('/')
    }
}

impl TopicFilter {
    /// Validates `bytes` as a topic filter without copying them.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        validated(bytes, plain_ascii_filter, check_filter).map(Self)
    }

    /// Validates an already valid MQTT string as a topic filter.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        check_filter(s.as_bytes())?;
        Ok(Self(s))
    }

    /// The filter.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The filter as an MQTT string.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// The encoded bytes (no length prefix); cheaper than `as_str().as_bytes()`, which checks the
    /// UTF-8 again.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.as_bytes().iter().any(|&b| b == b'+' || b == b'#')
    }

    /// Whether this is an MQTT 5 Shared Subscription, `$share/{ShareName}/{filter}` (MQTT 5.0
    /// section 4.8.2).
    pub fn is_shared(&self) -> bool {
        self.0.as_bytes().starts_with(b"$share/")
    }

    /// Whether a message published to `name` matches this filter; see [`matches()`].
    pub fn matches(&self, name: &TopicName) -> bool {
        matches_bytes(self.as_bytes(), name.as_bytes())
    }
}

/// Whether topic `name` matches topic `filter`, exactly per MQTT 3.1.1 section 4.7.
///
/// Both are taken as already valid (see [`TopicFilter`] and [`TopicName`]):
/// - `+` matches exactly one level, which may be empty: `a/+` matches `a/`, not `a`;
/// - `#` matches any number of levels including the parent: `a/#` matches `a`, `a/b` and `a/b/c`;
/// - a filter starting with a wildcard never matches a name starting with `$` (MQTT-4.7.2-1), so
///   `#` does not see `$SYS/...`, while `$SYS/#` does.
///
/// ```
/// use sansmq::topic::matches;
///
/// assert!(matches("sport/tennis/#", "sport/tennis"));
/// assert!(matches("+/+", "/finance"));
/// assert!(!matches("#", "$SYS/uptime"));
/// ```
pub fn matches(filter: &str, name: &str) -> bool {
    matches_bytes(filter.as_bytes(), name.as_bytes())
}

/// [`matches()`] on the encoded bytes: `/`, `+`, `#` and `$` are ASCII, so UTF-8 needs no decoding.
fn matches_bytes(filter: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'$') && matches!(filter.first(), Some(b'+' | b'#')) {
        return false; // MQTT-4.7.2-1
    }
    let mut filter_levels = filter.split(|&b| b == b'/');
    let mut name_levels = name.split(|&b| b == b'/');
    loop {
        match (filter_levels.next(), name_levels.next()) {
            (Some(b"#"), _) => return true,
            (Some(b"+"), Some(_)) => {}
            (Some(f), Some(n)) if f == n => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Validates `bytes` as an MQTT string and then by `check`; see [`check_valid`].
#[inline]
fn validated(
    bytes: Bytes,
    fast: fn(&[u8]) -> bool,
    check: fn(&[u8]) -> Result<(), TopicError>,
) -> Result<MqttString, TopicError> {
    check_valid(&bytes, fast, check)?;
    Ok(MqttString::from_validated(bytes))
}

/// Checks `bytes` as an MQTT string and then by `check`. The usual topic is short plain ASCII,
/// which `fast` accepts in one pass; anything else takes the precise path, which names the rule it
/// breaks.
#[inline]
fn check_valid(
    bytes: &[u8],
    fast: fn(&[u8]) -> bool,
    check: fn(&[u8]) -> Result<(), TopicError>,
) -> Result<(), TopicError> {
    if !bytes.is_empty() && bytes.len() <= string::MAX_STRING_LEN && fast(bytes) {
        return Ok(());
    }
    string::validate(bytes).map_err(|error| TopicError::String {
        topic: lossy(bytes),
        error,
    })?;
    check(bytes)
}

/// Checks `bytes` as a topic name, as [`TopicName::from_bytes`] does, without making one: a
/// decoded PUBLISH keeps its topic as a range of its frame.
#[inline]
pub(crate) fn check_topic_name(bytes: &[u8]) -> Result<(), TopicError> {
    check_valid(bytes, plain_ascii_name, check_name)
}

fn check_name(bytes: &[u8]) -> Result<(), TopicError> {
    if bytes.is_empty() {
        return Err(TopicError::Empty); // MQTT-4.7.3-1
    }
    if let Some(position) = bytes.iter().position(|&b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName {
            topic: lossy(bytes),
            position,
        }); // MQTT-4.7.1-1
    }
    Ok(())
}

fn check_filter(bytes: &[u8]) -> Result<(), TopicError> {
    if bytes.is_empty() {
        return Err(TopicError::Empty); // MQTT-4.7.3-1
    }
    let mut levels = bytes.split(|&b| b == b'/').peekable();
    while let Some(level) = levels.next() {
        let has_hash = level.contains(&b'#');
        if has_hash && (level != b"#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard {
                filter: lossy(bytes),
            }); // MQTT-4.7.1-2
        }
        if level.contains(&b'+') && level != b"+" {
            return Err(TopicError::MisplacedSingleLevelWildcard {
                filter: lossy(bytes),
            }); // MQTT-4.7.1-3
        }
    }
    Ok(())
}

/// Whether `bytes` are ASCII without U+0000, `+` or `#`, as topic names are checked on every
/// received PUBLISH.
#[inline]
fn plain_ascii_name(bytes: &[u8]) -> bool {
    ascii_scan(bytes) == Some(false)
}

/// Whether `bytes` are ASCII without U+0000, with each `+` alone in its level and `#` alone in the
/// last one. The scan is word-at-a-time; only a filter that has wildcards is looked at again, at
/// its wildcards.
#[inline]
fn plain_ascii_filter(bytes: &[u8]) -> bool {
    match ascii_scan(bytes) {
        None => false,
        Some(false) => true,
        Some(true) => wildcards_alone(bytes),
    }
}

/// `None` unless `bytes` are ASCII without U+0000; otherwise whether they contain `+` or `#`.
/// Eight bytes at a time (SWAR): the rule checks run on every topic that crosses the wire.
#[inline]
fn ascii_scan(bytes: &[u8]) -> Option<bool> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is zero exactly when the result is not zero (for bytes below 0x80, which
    // the ASCII check of the same word guarantees).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut bad = 0;
    let mut wild = 0;
    let mut scan = |word: &[u8; 8]| {
        let x = u64::from_ne_bytes(*word);
        bad |= (x & HIGHS) | zero_byte(x);
        wild |= zero_byte(x ^ (ONES * u64::from(b'+'))) | zero_byte(x ^ (ONES * u64::from(b'#')));
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut copy = [0; 8];
        copy.copy_from_slice(word);
        scan(&copy);
    }
    if let Some(last) = bytes.last_chunk::<8>() {
        // The last eight bytes, overlapping the words already seen: the tail in one step.
        scan(last);
    } else {
        // Shorter than a word: padded with a plain byte.
        let mut word = [b'a'; 8];
        for (w, &c) in word.iter_mut().zip(words.remainder()) {
            *w = c;
        }
        scan(&word);
    }
    if bad != 0 {
        return None;
    }
    Some(wild != 0)
}

/// Whether every `+` in `bytes` fills its level and a `#` fills the last one (MQTT-4.7.1-2,
/// MQTT-4.7.1-3).
fn wildcards_alone(bytes: &[u8]) -> bool {
    let mut previous = b'/';
    let mut rest = bytes.iter();
    while let Some(&c) = rest.next() {
        if c == b'+' || c == b'#' {
            let next = rest.as_slice().first();
            let fills_level = match c {
                b'+' => next.is_none_or(|&n| n == b'/'),
                _ => next.is_none(),
            };
            if previous != b'/' || !fills_level {
                return false;
            }
        }
        previous = c;
    }
    true
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

macro_rules! topic_conversions {
    ($ty:ident) => {
        impl TryFrom<&str> for $ty {
            type Error = TopicError;

            fn try_from(s: &str) -> Result<Self, TopicError> {
                Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;

            fn try_from(s: String) -> Result<Self, TopicError> {
                Self::from_bytes(Bytes::from(s))
            }
        }

        impl TryFrom<MqttString> for $ty {
            type Error = TopicError;

            fn try_from(s: MqttString) -> Result<Self, TopicError> {
                Self::from_string(s)
            }
        }

        impl From<$ty> for MqttString {
            fn from(topic: $ty) -> MqttString {
                topic.0
            }
        }

        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

topic_conversions!(TopicName);
topic_conversions!(TopicFilter);

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long (MQTT-4.7.3-1).
    Empty,
    /// Not a valid MQTT string.
    String {
        /// The topic, with invalid UTF-8 replaced by U+FFFD.
        topic: String,
        /// The rule it broke.
        error: StringError,
    },
    /// A topic name contains `+` or `#` (MQTT-4.7.1-1, MQTT-3.3.2-2).
    WildcardInName {
        /// The topic name.
        topic: String,
        /// Byte offset of the wildcard.
        position: usize,
    },
    /// `#` is not alone in the last level of a filter (MQTT-4.7.1-2).
    MisplacedMultiLevelWildcard {
        /// The filter.
        filter: String,
    },
    /// `+` does not fill a whole level of a filter (MQTT-4.7.1-3).
    MisplacedSingleLevelWildcard {
        /// The filter.
        filter: String,
    },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => {
                f.write_str("topic is empty; it must be at least one character (MQTT-4.7.3-1)")
            }
            Self::String { topic, error } => write!(f, "topic {topic:?}: {error}"),
            Self::WildcardInName { topic, position } => write!(
                f,
                "topic name {topic:?}: wildcard at byte {position}; '+' and '#' are only for subscriptions (MQTT-4.7.1-1)"
            ),
            Self::MisplacedMultiLevelWildcard { filter } => write!(
                f,
                "topic filter {filter:?}: '#' must be the last level and alone in it (MQTT-4.7.1-2)"
            ),
            Self::MisplacedSingleLevelWildcard { filter } => write!(
                f,
                "topic filter {filter:?}: '+' must fill a whole level (MQTT-4.7.1-3)"
            ),
        }
    }
}

impl std::error::Error for TopicError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast checks accept exactly what the precise rules accept, for every non-empty string
    /// over a small alphabet up to a length past one 8-byte word.
    #[test]
    fn fast_checks_agree_with_the_rules() {
        fn all_strings(alphabet: &[u8], max_len: usize, mut check: impl FnMut(&[u8])) {
            let mut current = Vec::new();
            fn walk(
                alphabet: &[u8],
                max_len: usize,
                s: &mut Vec<u8>,
                check: &mut dyn FnMut(&[u8]),
            ) {
                check(s);
                if s.len() == max_len {
                    return;
                }
                for &c in alphabet {
                    s.push(c);
                    walk(alphabet, max_len, s, check);
                    s.pop();
                }
            }
            walk(alphabet, max_len, &mut current, &mut check);
        }
        // `validated` refuses the empty string before the fast check runs.
        let check = |s: &[u8]| {
            if s.is_empty() {
                return;
            }
            let plain = s.iter().all(|&c| c != 0 && c < 0x80);
            assert_eq!(
                plain_ascii_name(s),
                plain && check_name(s).is_ok(),
                "name {s:?}"
            );
            assert_eq!(
                plain_ascii_filter(s),
                plain && check_filter(s).is_ok(),
                "filter {s:?}"
            );
        };
        all_strings(b"a/+#", 10, check);
        all_strings(&[b'a', b'/', b'+', b'#', 0, 0x80], 5, check);
        for position in 0..20 {
            for bad in [0, 0x80, 0xFF, b'+', b'#'] {
                let mut s = *b"abcdefgh/ijklmnop/qr";
                s[position] = bad;
                check(&s);
                s[position] = b'/';
                check(&s);
            }
        }
    }
}
