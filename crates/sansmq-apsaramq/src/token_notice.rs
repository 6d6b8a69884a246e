//! The broker's token notices, pushed unsubscribed: `$SYS/tokenExpireNotice` (about five minutes
//! before a token expires) and `$SYS/tokenInvalidNotice` (the token was revoked; the broker then
//! disconnects).

use std::fmt;

use serde_json::Value;

use crate::credentials::TokenType;

/// Where the broker announces a token about to expire.
pub const TOKEN_EXPIRE_NOTICE_TOPIC: &str = "$SYS/tokenExpireNotice";
/// Where the broker announces a token that is no longer valid.
pub const TOKEN_INVALID_NOTICE_TOPIC: &str = "$SYS/tokenInvalidNotice";

/// A token notice from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenNotice {
    /// The token of this type expires soon: upload a new one
    /// ([`upload_token`](crate::upload_token)).
    Expiring {
        /// Which token.
        token_type: TokenType,
        /// When it expires, as the broker sent it (milliseconds since the Unix epoch).
        expire_time: u64,
    },
    /// The token of this type is invalid; the broker disconnects next. Do not reconnect with it
    /// ([`ApsaraMqCredentials::invalidate_tokens`](crate::ApsaraMqCredentials::invalidate_tokens)).
    Invalid {
        /// Which token.
        token_type: TokenType,
        /// The broker's reason code, as sent.
        code: String,
    },
}

/// A notice arrived on a notice topic but its JSON is not what ApsaraMQ documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}: {reason} (payload {payload:?})")]
pub struct NoticeError {
    /// The notice topic.
    pub topic: &'static str,
    /// What is wrong.
    pub reason: String,
    /// The payload, lossily decoded (notices carry no secrets).
    pub payload: String,
}

/// Recognises a token notice: `None` for any other topic, otherwise the parsed notice or why it
/// could not be read.
pub fn parse_token_notice(topic: &str, payload: &[u8]) -> Option<Result<TokenNotice, NoticeError>> {
    let topic = match topic {
        TOKEN_EXPIRE_NOTICE_TOPIC => TOKEN_EXPIRE_NOTICE_TOPIC,
        TOKEN_INVALID_NOTICE_TOPIC => TOKEN_INVALID_NOTICE_TOPIC,
        _ => return None,
    };
    let error = |reason: String| NoticeError {
        topic,
        reason,
        payload: String::from_utf8_lossy(payload).into_owned(),
    };
    let json: Value = match serde_json::from_slice(payload) {
        Ok(json) => json,
        Err(e) => return Some(Err(error(format!("not JSON: {e}")))),
    };
    let token_type = match json.get("type").and_then(Value::as_str) {
        Some("R") => TokenType::R,
        Some("W") => TokenType::W,
        Some("RW") => TokenType::RW,
        other => return Some(Err(error(format!("\"type\" is {other:?}, not R, W or RW")))),
    };
    Some(if topic == TOKEN_EXPIRE_NOTICE_TOPIC {
        match json.get("expireTime").and_then(number) {
            Some(expire_time) => Ok(TokenNotice::Expiring {
                token_type,
                expire_time,
            }),
            None => Err(error("\"expireTime\" is missing or not a number".into())),
        }
    } else {
        match json.get("code") {
            Some(Value::String(code)) => Ok(TokenNotice::Invalid {
                token_type,
                code: code.clone(),
            }),
            Some(Value::Number(code)) => Ok(TokenNotice::Invalid {
                token_type,
                code: code.to_string(),
            }),
            _ => Err(error("\"code\" is missing".into())),
        }
    })
}

/// A JSON number, or a string holding one (services differ).
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl fmt::Display for TokenNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expiring {
                token_type,
                expire_time,
            } => write!(
                f,
                "{token_type} token expires at {expire_time} (ms since epoch)"
            ),
            Self::Invalid { token_type, code } => {
                write!(f, "{token_type} token is invalid (code {code})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_notices() {
        let expiring = parse_token_notice(
            TOKEN_EXPIRE_NOTICE_TOPIC,
            br#"{"expireTime":1700000000000,"type":"RW"}"#,
        );
        assert_eq!(
            expiring,
            Some(Ok(TokenNotice::Expiring {
                token_type: TokenType::RW,
                expire_time: 1_700_000_000_000
            }))
        );
        let invalid =
            parse_token_notice(TOKEN_INVALID_NOTICE_TOPIC, br#"{"code":"403","type":"W"}"#);
        assert_eq!(
            invalid,
            Some(Ok(TokenNotice::Invalid {
                token_type: TokenType::W,
                code: "403".into()
            }))
        );
        let numeric = parse_token_notice(TOKEN_INVALID_NOTICE_TOPIC, br#"{"code":401,"type":"R"}"#);
        assert!(matches!(numeric, Some(Ok(TokenNotice::Invalid { code, .. })) if code == "401"));
        let as_string = parse_token_notice(
            TOKEN_EXPIRE_NOTICE_TOPIC,
            br#"{"expireTime":"1700000000000","type":"R"}"#,
        );
        assert!(matches!(as_string, Some(Ok(TokenNotice::Expiring { .. }))));
    }

    #[test]
    fn other_topics_are_not_notices() {
        assert_eq!(parse_token_notice("$SYS/other", b"{}"), None);
        assert_eq!(parse_token_notice("parent/p2p/x", b"{}"), None);
    }

    #[test]
    fn malformed_notices_say_what_is_wrong() {
        let error = parse_token_notice(TOKEN_EXPIRE_NOTICE_TOPIC, b"not json")
            .unwrap()
            .unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{error}");
        let error =
            parse_token_notice(TOKEN_EXPIRE_NOTICE_TOPIC, br#"{"type":"X","expireTime":1}"#)
                .unwrap()
                .unwrap_err();
        assert!(error.reason.contains("not R, W or RW"), "{error}");
        let error = parse_token_notice(TOKEN_INVALID_NOTICE_TOPIC, br#"{"type":"R"}"#)
            .unwrap()
            .unwrap_err();
        assert!(error.reason.contains("\"code\""), "{error}");
    }
}
