//! [`MqttString`]: a UTF-8 string as MQTT carries it, validated once and kept as a `Bytes` slice.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The longest string MQTT can carry: its length prefix is a `u16` (MQTT-1.5.3).
pub const MAX_STRING_LEN: usize = u16::MAX as usize;

/// A UTF-8 encoded string as MQTT defines it (section 1.5.3): well-formed UTF-8, no U+0000, at most
/// 65,535 bytes.
///
/// It is a view over [`Bytes`], so a string decoded from a packet shares the packet's buffer instead
/// of being copied into a `String`. Cloning is cheap (a reference count).
///
/// ```
/// use sansmq::MqttString;
///
/// let id = MqttString::try_from("sensor-17").unwrap();
/// assert_eq!(id.as_str(), "sensor-17");
/// assert!(MqttString::try_from("nul\0inside").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

impl MqttString {
    /// Validates `bytes` and wraps them without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        validate(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes that [`validate`] accepted.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// A string known at compile time; panics in const evaluation if it breaks MQTT's string rules.
    ///
    /// ```
    /// const DEMO: sansmq::MqttString = sansmq::MqttString::from_static("demo");
    /// assert_eq!(DEMO.as_str(), "demo");
    /// ```
    // Panics only in const evaluation, where that is a compile error; `i < len` bounds the index.
    #[allow(clippy::panic, clippy::indexing_slicing)]
    pub const fn from_static(s: &'static str) -> Self {
        let bytes = s.as_bytes();
        if bytes.len() > MAX_STRING_LEN {
            panic!("MqttString::from_static: longer than 65,535 bytes");
        }
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == 0 {
                panic!("MqttString::from_static: contains U+0000");
            }
            i += 1;
        }
        Self(Bytes::from_static(bytes))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Validated on construction, so this cannot fail; `unsafe` is forbidden in this crate, so the
        // check is repeated rather than skipped (it runs at memory speed on short strings).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The encoded bytes, without the length prefix.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks MQTT's string rules on raw bytes.
pub(crate) fn validate(bytes: &[u8]) -> Result<(), StringError> {
    if bytes.len() > MAX_STRING_LEN {
        return Err(StringError::TooLong { len: bytes.len() });
    }
    // MQTT-1.5.3-1: ill-formed UTF-8 (which includes surrogates, as Rust's decoder rejects them).
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(StringError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        });
    }
    // MQTT-1.5.3-2: U+0000 must not appear.
    if let Some(position) = bytes.iter().position(|&b| b == 0) {
        return Err(StringError::NullCharacter { position });
    }
    Ok(())
}

impl Deref for MqttString {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;

    fn try_from(s: &str) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;

    fn try_from(s: String) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::from(s))
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Why bytes are not a valid MQTT string.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StringError {
    /// Longer than the 65,535 bytes a `u16` length prefix can say.
    TooLong {
        /// The length in bytes.
        len: usize,
    },
    /// Not well-formed UTF-8 (MQTT-1.5.3-1).
    InvalidUtf8 {
        /// How many leading bytes are valid.
        valid_up_to: usize,
    },
    /// Contains U+0000 (MQTT-1.5.3-2).
    NullCharacter {
        /// Byte offset of the first NUL.
        position: usize,
    },
}

impl fmt::Display for StringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "{len} bytes is longer than the 65,535 an MQTT string may hold"
            ),
            Self::InvalidUtf8 { valid_up_to } => {
                write!(
                    f,
                    "not well-formed UTF-8 after byte {valid_up_to} (MQTT-1.5.3-1)"
                )
            }
            Self::NullCharacter { position } => {
                write!(f, "U+0000 at byte {position} is not allowed (MQTT-1.5.3-2)")
            }
        }
    }
}

impl std::error::Error for StringError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_utf8_up_to_the_limit() {
        let s = "é".repeat(MAX_STRING_LEN / 2);
        assert_eq!(
            MqttString::try_from(s.as_str()).unwrap().len(),
            MAX_STRING_LEN - 1
        );
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(
            MqttString::try_from("x".repeat(MAX_STRING_LEN + 1)),
            Err(StringError::TooLong {
                len: MAX_STRING_LEN + 1
            })
        );
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"ab\xff")),
            Err(StringError::InvalidUtf8 { valid_up_to: 2 })
        );
        // An encoded UTF-16 surrogate (U+D800) is ill-formed UTF-8 (MQTT-1.5.3-1).
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"\xed\xa0\x80")),
            Err(StringError::InvalidUtf8 { valid_up_to: 0 })
        );
        assert_eq!(
            MqttString::try_from("a\0"),
            Err(StringError::NullCharacter { position: 1 })
        );
    }

    #[test]
    fn shares_the_buffer() {
        let buf = Bytes::from_static(b"shared");
        let s = MqttString::from_bytes(buf.clone()).unwrap();
        assert_eq!(s.as_bytes().as_ptr(), buf.as_ptr());
    }
}
