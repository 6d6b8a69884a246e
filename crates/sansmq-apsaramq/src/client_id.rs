//! [`ClientId`]: ApsaraMQ's `<GroupID>@@@<DeviceID>` client identifier, checked against the
//! broker's rules before it is sent.

use std::fmt;
use std::str::FromStr;

/// The separator between the group id and the device id.
pub const SEPARATOR: &str = "@@@";

/// The longest client id ApsaraMQ accepts, in characters.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// The prefixes a group id may start with (case-sensitive).
pub const GROUP_ID_PREFIXES: [&str; 2] = ["GID_", "GID-"];

/// A client id ApsaraMQ accepts: `<GroupID>@@@<DeviceID>`, at most 64 characters, the group id
/// starting with `GID_` or `GID-`, and only ASCII letters, digits, `-` and `_` besides the one
/// `@@@`.
///
/// The whole id, `@@@` and device id included, is what Signature and DeviceCredential logins sign.
/// Two clients with the same id knock each other off the broker in a loop, so give every device
/// its own, and never randomise it behind the user's back.
///
/// ```
/// use sansmq_apsaramq::ClientId;
///
/// let id = ClientId::new("GID_test", "device-001").unwrap();
/// assert_eq!(id.as_str(), "GID_test@@@device-001");
///
/// let parsed: ClientId = "GID_test@@@device-001".parse().unwrap();
/// assert_eq!(parsed.group_id(), "GID_test");
/// assert_eq!(parsed.device_id(), "device-001");
///
/// let error = "test@@@device-001".parse::<ClientId>().unwrap_err();
/// assert!(error.to_string().contains("GID_"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    value: String,
    /// Byte offset of the `@@@`; the group id is `value[..separator]`.
    separator: usize,
}

impl ClientId {
    /// Joins and checks a group id and a device id.
    pub fn new(group_id: &str, device_id: &str) -> Result<Self, ClientIdError> {
        Self::parse(&format!("{group_id}{SEPARATOR}{device_id}"))
    }

    /// Checks a whole `<GroupID>@@@<DeviceID>` string.
    pub fn parse(client_id: &str) -> Result<Self, ClientIdError> {
        let missing = || ClientIdError::MissingSeparator {
            client_id: client_id.to_owned(),
        };
        let (group_id, device_id) = client_id.split_once(SEPARATOR).ok_or_else(missing)?;
        let separator = group_id.len();

        if !GROUP_ID_PREFIXES.iter().any(|p| group_id.starts_with(p)) {
            return Err(ClientIdError::GroupIdPrefix {
                client_id: client_id.to_owned(),
                group_id: group_id.to_owned(),
            });
        }
        for (part, text, offset) in [
            (ClientIdPart::GroupId, group_id, 0),
            (
                ClientIdPart::DeviceId,
                device_id,
                separator + SEPARATOR.len(),
            ),
        ] {
            if let Some((index, character)) = text.char_indices().find(|&(_, c)| !allowed(c)) {
                return Err(ClientIdError::InvalidCharacter {
                    client_id: client_id.to_owned(),
                    part,
                    character,
                    position: offset + index,
                });
            }
        }
        if device_id.is_empty() {
            return Err(ClientIdError::EmptyDeviceId {
                client_id: client_id.to_owned(),
            });
        }
        // Every character is ASCII by now, so bytes and characters are the same count.
        if client_id.len() > MAX_CLIENT_ID_LEN {
            return Err(ClientIdError::TooLong {
                client_id: client_id.to_owned(),
                len: client_id.len(),
            });
        }
        Ok(Self {
            value: client_id.to_owned(),
            separator,
        })
    }

    /// The whole id, as sent in CONNECT and signed.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The group id (`GID_...`), as created in the console.
    pub fn group_id(&self) -> &str {
        self.value.get(..self.separator).unwrap_or_default()
    }

    /// The device id, after the `@@@`.
    pub fn device_id(&self) -> &str {
        self.value
            .get(self.separator + SEPARATOR.len()..)
            .unwrap_or_default()
    }
}

/// Letters, digits, `-` and `_`: the only characters ApsaraMQ allows besides the `@@@`.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl FromStr for ClientId {
    type Err = ClientIdError;

    fn from_str(s: &str) -> Result<Self, ClientIdError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for ClientId {
    type Error = ClientIdError;

    fn try_from(s: &str) -> Result<Self, ClientIdError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ClientId {
    type Error = ClientIdError;

    fn try_from(s: String) -> Result<Self, ClientIdError> {
        Self::parse(&s)
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> String {
        id.value
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl PartialEq<str> for ClientId {
    fn eq(&self, other: &str) -> bool {
        self.value == other
    }
}

impl PartialEq<&str> for ClientId {
    fn eq(&self, other: &&str) -> bool {
        self.value == *other
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// Which half of a client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdPart {
    /// Before the `@@@`.
    GroupId,
    /// After the `@@@`.
    DeviceId,
}

impl fmt::Display for ClientIdPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GroupId => "group id",
            Self::DeviceId => "device id",
        })
    }
}

/// Which of ApsaraMQ's client id rules a string breaks; every message names the id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdError {
    /// No `@@@` between the group id and the device id.
    #[error("client id {client_id:?}: no \"@@@\"; ApsaraMQ client ids are <GroupID>@@@<DeviceID>")]
    MissingSeparator {
        /// The client id.
        client_id: String,
    },
    /// The group id does not start with `GID_` or `GID-`.
    #[error(
        "client id {client_id:?}: group id {group_id:?} must start with \"GID_\" or \"GID-\" (case-sensitive)"
    )]
    GroupIdPrefix {
        /// The client id.
        client_id: String,
        /// The part before `@@@`.
        group_id: String,
    },
    /// A character other than an ASCII letter, a digit, `-` or `_` (a second `@@@` included).
    #[error(
        "client id {client_id:?}: {character:?} at byte {position} in the {part}; only letters, digits, '-' and '_' are allowed besides the one \"@@@\""
    )]
    InvalidCharacter {
        /// The client id.
        client_id: String,
        /// Where the character is.
        part: ClientIdPart,
        /// The character.
        character: char,
        /// Its byte offset in the client id.
        position: usize,
    },
    /// Nothing after the `@@@`.
    #[error("client id {client_id:?}: the device id after \"@@@\" is empty")]
    EmptyDeviceId {
        /// The client id.
        client_id: String,
    },
    /// More than 64 characters.
    #[error("client id {client_id:?}: {len} characters; ApsaraMQ allows at most 64")]
    TooLong {
        /// The client id.
        client_id: String,
        /// Its length in characters.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_splits() {
        let id = ClientId::new("GID_test", "device-001").unwrap();
        assert_eq!(id, "GID_test@@@device-001");
        assert_eq!(id.group_id(), "GID_test");
        assert_eq!(id.device_id(), "device-001");
        assert_eq!(id.to_string(), "GID_test@@@device-001");
        assert_eq!(format!("{id:?}"), "\"GID_test@@@device-001\"");
        assert_eq!(String::from(id.clone()), "GID_test@@@device-001");
        assert_eq!(ClientId::parse("GID_test@@@device-001").unwrap(), id);
        assert_eq!(ClientId::try_from("GID_test@@@device-001").unwrap(), id);
        assert_eq!(
            ClientId::try_from(String::from("GID_test@@@device-001")).unwrap(),
            id
        );
    }

    #[test]
    fn accepts_both_prefixes_and_every_allowed_character() {
        for id in [
            "GID_a@@@b",
            "GID-a@@@b",
            "GID_@@@x",
            "GID_Az09-_@@@azAZ09-_",
            "GID_x@@@0",
        ] {
            assert!(ClientId::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn accepts_exactly_64_characters() {
        let device = "d".repeat(MAX_CLIENT_ID_LEN - "GID_g@@@".len());
        let id = ClientId::new("GID_g", &device).unwrap();
        assert_eq!(id.as_str().len(), 64);
    }

    #[test]
    fn rejects_65_characters() {
        let device = "d".repeat(MAX_CLIENT_ID_LEN + 1 - "GID_g@@@".len());
        let error = ClientId::new("GID_g", &device).unwrap_err();
        assert!(matches!(error, ClientIdError::TooLong { len: 65, .. }));
        let message = error.to_string();
        assert!(message.contains("65 characters"), "{message}");
        assert!(message.contains("at most 64"), "{message}");
        assert!(message.contains(&device), "{message}");
    }

    #[test]
    fn rejects_missing_separator() {
        for id in ["GID_test", "GID_test@@device", "GID_test@device", ""] {
            let error = ClientId::parse(id).unwrap_err();
            assert_eq!(
                error,
                ClientIdError::MissingSeparator {
                    client_id: id.into()
                }
            );
            assert!(error.to_string().contains("@@@"));
        }
    }

    #[test]
    fn rejects_group_id_without_prefix() {
        for (id, group) in [
            ("test@@@device", "test"),
            ("gid_test@@@device", "gid_test"),
            ("GID@@@device", "GID"),
            ("GIDtest@@@device", "GIDtest"),
            ("@@@device", ""),
            (" GID_test@@@device", " GID_test"),
        ] {
            let error = ClientId::parse(id).unwrap_err();
            assert_eq!(
                error,
                ClientIdError::GroupIdPrefix {
                    client_id: id.into(),
                    group_id: group.into()
                },
                "{id}"
            );
            let message = error.to_string();
            assert!(message.contains("GID_"), "{message}");
            assert!(message.contains(&format!("{group:?}")), "{message}");
        }
    }

    #[test]
    fn rejects_invalid_characters_naming_part_and_position() {
        for (id, part, character, position) in [
            ("GID_te st@@@device", ClientIdPart::GroupId, ' ', 6),
            ("GID_t.e@@@device", ClientIdPart::GroupId, '.', 5),
            ("GID_test@@@dev/ice", ClientIdPart::DeviceId, '/', 14),
            ("GID_test@@@dev:1", ClientIdPart::DeviceId, ':', 14),
            ("GID_test@@@device@@@x", ClientIdPart::DeviceId, '@', 17),
            ("GID_test@@@@device", ClientIdPart::DeviceId, '@', 11),
            ("GID_test@@@gerät", ClientIdPart::DeviceId, 'ä', 14),
            ("GID_test@@@+", ClientIdPart::DeviceId, '+', 11),
            ("GID_test@@@#", ClientIdPart::DeviceId, '#', 11),
        ] {
            let error = ClientId::parse(id).unwrap_err();
            assert_eq!(
                error,
                ClientIdError::InvalidCharacter {
                    client_id: id.into(),
                    part,
                    character,
                    position
                },
                "{id}"
            );
            let message = error.to_string();
            assert!(message.contains(&part.to_string()), "{message}");
            assert!(message.contains(id), "{message}");
        }
    }

    #[test]
    fn rejects_empty_device_id() {
        let error = ClientId::parse("GID_test@@@").unwrap_err();
        assert_eq!(
            error,
            ClientIdError::EmptyDeviceId {
                client_id: "GID_test@@@".into()
            }
        );
        assert!(error.to_string().contains("device id"));
        assert!(ClientId::new("GID_test", "").is_err());
    }
}
