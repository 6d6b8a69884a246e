//! ApsaraMQ tokens: the ones the broker issues itself (through its local OpenAPI, as the service's
//! `ApplyToken`), and the ones a Token login holds, with their resources and expiry.
//!
//! A token is a random string that names an entry here: the AccessKey that applied for it, the
//! instance, the topics it reaches (MQTT topic filters, as `ApplyToken`'s `Resources`), what it
//! allows (`R`, `W` or both) and when it expires. A token stays known after it expires or is
//! revoked, so that a login with it is refused with the reason, until it has been dead for
//! [`FORGET_AFTER`].

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::apsaramq::{ApsaraMqMode, TokenKind};

/// How long an expired or revoked token is still recognised (and refused as such).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A token the broker issued (its value is the registry's key).
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// The AccessKey that applied for it; only `Token|<that id>|...` logins may use it.
    pub(crate) access_key_id: String,
    pub(crate) instance_id: String,
    /// Topic filters the token reaches.
    pub(crate) resources: Vec<String>,
    pub(crate) actions: TokenKind,
    pub(crate) expires_at: SystemTime,
    pub(crate) revoked: bool,
}

/// The tokens the broker issued, by value.
#[derive(Default)]
pub(crate) struct TokenRegistry {
    issued: HashMap<String, IssuedToken>,
}

impl fmt::Debug for TokenRegistry {
    /// Counts the tokens, never shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRegistry")
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl TokenRegistry {
    /// Records `token` and returns its value: 256 random bits, URL-safe Base64.
    pub(crate) fn issue(&mut self, token: IssuedToken) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        let value = URL_SAFE_NO_PAD.encode(bytes);
        self.forget_dead(SystemTime::now());
        self.issued.insert(value.clone(), token);
        Ok(value)
    }

    pub(crate) fn get(&self, value: &str) -> Option<&IssuedToken> {
        self.issued.get(value)
    }

    /// Revokes `value`; `false` if no such token was issued.
    pub(crate) fn revoke(&mut self, value: &str) -> bool {
        match self.issued.get_mut(value) {
            Some(token) => {
                token.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Drops the tokens dead (expired or revoked) for longer than [`FORGET_AFTER`], so that
    /// applying for tokens again and again does not grow the broker's memory without end.
    fn forget_dead(&mut self, now: SystemTime) {
        // A revoked token is kept as long as an expired one would be: it is refused by name
        // until then.
        self.issued.retain(|_, token| {
            token
                .expires_at
                .checked_add(FORGET_AFTER)
                .is_some_and(|until| until > now)
        });
    }
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// Not issued (or not for this AccessKey or instance).
    Unknown,
    Expired,
    Revoked,
    /// Issued for fewer actions than the type it was presented as.
    NotAllowed,
}

impl TokenRefusal {
    /// The `code` of `$SYS/tokenInvalidNotice` for a held token that became invalid.
    pub(crate) fn notice_code(self) -> &'static str {
        match self {
            Self::Unknown | Self::NotAllowed => "TokenInvalid",
            Self::Expired => "TokenExpired",
            Self::Revoked => "TokenRevoked",
        }
    }
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => "unknown token",
            Self::Expired => "token expired",
            Self::Revoked => "token revoked",
            Self::NotAllowed => "token does not allow that type",
        })
    }
}

/// A token a Token login presented (at CONNECT or through `$SYS/uploadToken`) and was granted.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HeldToken {
    /// The type it was presented as: a client holds one token per type.
    pub(crate) kind: TokenKind,
    pub(crate) value: String,
    /// Topic filters it reaches; `None` for a token registered with
    /// [`ApsaraMqMode::token`], which reaches every topic.
    pub(crate) resources: Option<Vec<String>>,
    /// `None` for a registered token, which never expires.
    pub(crate) expires_at: Option<SystemTime>,
    /// Whether `$SYS/tokenExpireNotice` went out for it.
    pub(crate) expiry_announced: bool,
}

impl fmt::Debug for HeldToken {
    /// Never shows the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldToken")
            .field("kind", &self.kind)
            .field("resources", &self.resources)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl HeldToken {
    /// Whether this token lets its holder publish to `topic`.
    pub(crate) fn may_publish(&self, topic: &str) -> bool {
        self.kind.can_write()
            && self.resources.as_ref().is_none_or(|resources| {
                resources
                    .iter()
                    .any(|resource| sansmq::topic::matches(resource, topic))
            })
    }

    /// Whether this token lets its holder subscribe to `filter`: every topic the filter matches
    /// is within one of its resources.
    pub(crate) fn may_subscribe(&self, filter: &str) -> bool {
        self.kind.can_read()
            && self.resources.as_ref().is_none_or(|resources| {
                resources
                    .iter()
                    .any(|resource| filter_covers(resource, filter))
            })
    }

    /// Whether this token is still good at `now`, by what the registry says of it.
    pub(crate) fn state(
        &self,
        registry: &TokenRegistry,
        now: SystemTime,
    ) -> Result<(), TokenRefusal> {
        if self.expires_at.is_none() {
            return Ok(()); // registered with the mode: never expires, cannot be revoked
        }
        match registry.get(&self.value) {
            None => Err(TokenRefusal::Unknown),
            Some(token) if token.revoked => Err(TokenRefusal::Revoked),
            Some(token) if token.expires_at <= now => Err(TokenRefusal::Expired),
            Some(_) => Ok(()),
        }
    }
}

/// Checks a token presented as type `kind` by a `Token|<access_key_id>|<instance>` login.
pub(crate) fn check(
    mode: &ApsaraMqMode,
    registry: &TokenRegistry,
    access_key_id: &str,
    kind: TokenKind,
    value: &str,
    now: SystemTime,
) -> Result<HeldToken, TokenRefusal> {
    if mode.knows_token(access_key_id, kind, value) {
        return Ok(HeldToken {
            kind,
            value: value.to_owned(),
            resources: None,
            expires_at: None,
            expiry_announced: false,
        });
    }
    let issued = registry
        .get(value)
        .filter(|t| t.access_key_id == access_key_id && t.instance_id == mode.instance_id())
        .ok_or(TokenRefusal::Unknown)?;
    if issued.revoked {
        Err(TokenRefusal::Revoked)
    } else if issued.expires_at <= now {
        Err(TokenRefusal::Expired)
    } else if !issued.actions.covers(kind) {
        Err(TokenRefusal::NotAllowed)
    } else {
        Ok(HeldToken {
            kind,
            value: value.to_owned(),
            resources: Some(issued.resources.clone()),
            expires_at: Some(issued.expires_at),
            expiry_announced: false,
        })
    }
}

/// Whether every topic `filter` matches is matched by `resource` (both MQTT topic filters).
fn filter_covers(resource: &str, filter: &str) -> bool {
    let mut resource_levels = resource.split('/');
    let mut filter_levels = filter.split('/');
    loop {
        match (resource_levels.next(), filter_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(r), Some(f)) if r == f && f != "+" && f != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(kind: TokenKind, resources: &[&str]) -> HeldToken {
        HeldToken {
            kind,
            value: "t".to_owned(),
            resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
            expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
            expiry_announced: false,
        }
    }

    #[test]
    fn resources_are_topic_filters() {
        let token = held(TokenKind::ReadWrite, &["parent/+", "other/#"]);
        assert!(token.may_publish("parent/a"));
        assert!(token.may_publish("other/a/b/c"));
        assert!(token.may_publish("other"));
        assert!(!token.may_publish("parent/a/b"));
        assert!(!token.may_publish("elsewhere/a"));
        assert!(token.may_subscribe("parent/a"));
        assert!(token.may_subscribe("parent/+"));
        assert!(token.may_subscribe("other/#"));
        assert!(token.may_subscribe("other/+/x"));
        assert!(!token.may_subscribe("parent/#"));
        assert!(!token.may_subscribe("+/a"));
        assert!(!token.may_subscribe("#"));
    }

    #[test]
    fn the_type_limits_what_a_token_allows() {
        let read = held(TokenKind::Read, &["p/#"]);
        assert!(read.may_subscribe("p/x") && !read.may_publish("p/x"));
        let write = held(TokenKind::Write, &["p/#"]);
        assert!(!write.may_subscribe("p/x") && write.may_publish("p/x"));
    }

    #[test]
    fn issued_tokens_are_checked_for_key_instance_expiry_revocation_and_type() {
        let mode = ApsaraMqMode::new("inst");
        let mut registry = TokenRegistry::default();
        let now = SystemTime::now();
        let issue = |registry: &mut TokenRegistry, actions, expires_at| {
            registry
                .issue(IssuedToken {
                    access_key_id: "ak".to_owned(),
                    instance_id: "inst".to_owned(),
                    resources: vec!["p/#".to_owned()],
                    actions,
                    expires_at,
                    revoked: false,
                })
                .unwrap()
        };
        let live = issue(
            &mut registry,
            TokenKind::Read,
            now + Duration::from_secs(60),
        );
        let held = check(&mode, &registry, "ak", TokenKind::Read, &live, now).unwrap();
        assert_eq!(held.resources.as_deref(), Some(&["p/#".to_owned()][..]));
        assert_eq!(held.state(&registry, now), Ok(()));
        assert_eq!(
            check(&mode, &registry, "other-ak", TokenKind::Read, &live, now),
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            check(&mode, &registry, "ak", TokenKind::Write, &live, now),
            Err(TokenRefusal::NotAllowed)
        );
        let other_instance = ApsaraMqMode::new("elsewhere");
        assert_eq!(
            check(
                &other_instance,
                &registry,
                "ak",
                TokenKind::Read,
                &live,
                now
            ),
            Err(TokenRefusal::Unknown)
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(held.state(&registry, later), Err(TokenRefusal::Expired));
        assert_eq!(
            check(&mode, &registry, "ak", TokenKind::Read, &live, later),
            Err(TokenRefusal::Expired)
        );
        assert!(registry.revoke(&live));
        assert!(!registry.revoke("never-issued"));
        assert_eq!(held.state(&registry, now), Err(TokenRefusal::Revoked));
        assert_eq!(
            check(&mode, &registry, "ak", TokenKind::Read, &live, now),
            Err(TokenRefusal::Revoked)
        );
        let other = issue(
            &mut registry,
            TokenKind::ReadWrite,
            now + Duration::from_secs(60),
        );
        assert_ne!(other, live);
        assert_eq!(other.len(), 43); // 32 bytes, URL-safe Base64 without padding
        assert!(!format!("{registry:?}").contains(&live));
        assert!(!format!("{held:?}").contains(&live));
    }

    #[test]
    fn long_dead_tokens_are_forgotten() {
        let mut registry = TokenRegistry::default();
        let long_ago = SystemTime::now() - FORGET_AFTER - Duration::from_secs(1);
        let dead = registry
            .issue(IssuedToken {
                access_key_id: "ak".to_owned(),
                instance_id: "i".to_owned(),
                resources: vec!["p".to_owned()],
                actions: TokenKind::Read,
                expires_at: long_ago,
                revoked: false,
            })
            .unwrap();
        assert!(registry.get(&dead).is_some());
        registry.forget_dead(SystemTime::now());
        assert!(registry.get(&dead).is_none());
    }
}
