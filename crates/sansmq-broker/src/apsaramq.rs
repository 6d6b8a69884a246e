//! ApsaraMQ mode: the rules of Alibaba Cloud ApsaraMQ for MQTT that the broker enforces when
//! [`BrokerConfig::apsaramq`](crate::BrokerConfig::apsaramq) is set.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The ApsaraMQ for MQTT rules and credentials a broker in ApsaraMQ mode checks.
///
/// Build it with [`new`](Self::new) and the by-value setters:
///
/// ```
/// use sansmq_broker::{ApsaraMqMode, TokenKind};
///
/// let mode = ApsaraMqMode::new("mqtt-cn-test")
///     .access_key("LTAI5tTestKey", "secretKey123")
///     .device_credential("device-ak", "device-secret")
///     .token("LTAI5tTestKey", TokenKind::ReadWrite, "token-abc")
///     .max_topic_len(64);
/// assert_eq!(mode.instance_id(), "mqtt-cn-test");
/// ```
///
/// What the broker then does, like the cloud service:
///
/// - **Logins.** The CONNECT user name must be `Signature|<AccessKeyId>|<InstanceId>`,
///   `Token|<AccessKeyId>|<InstanceId>` or `DeviceCredential|<DeviceAccessKeyId>|<InstanceId>`.
///   Signature and DeviceCredential passwords are Base64(HMAC-SHA1(secret, whole client id)) with
///   the secret of an [`access_key`](Self::access_key) or
///   [`device_credential`](Self::device_credential); a Token password is `<type>|<token>` pairs
///   (`R|t1|W|t2`), each a [`token`](Self::token) registered for that access key id.
///   A user name or password that is not in one of these shapes is refused with CONNACK `0x04`
///   (bad user name or password); a well-formed one that does not check out (other instance, unknown
///   key, wrong signature, unknown token) with CONNACK `0x05` (not authorised).
/// - **Client ids** must be `<GroupID>@@@<DeviceID>`, at most 64 characters, the group id starting
///   with `GID_` or `GID-`, letters, digits, `-` and `_` only: otherwise CONNACK `0x02`.
/// - **Permissions.** Signature and DeviceCredential logins may publish and subscribe; a Token login
///   may subscribe with an `R` token and publish with a `W` token (`RW` is both), on the topics
///   its resources reach. A PUBLISH or SUBSCRIBE the client may not do closes its connection, as
///   the service does.
/// - **P2P.** A PUBLISH to `<parent>/p2p/<client id>` goes to that client only, with no subscription.
/// - **Unsupported features are refused**: a CONNECT with a will gets CONNACK `0x05`; a retained
///   PUBLISH, QoS 2 (PUBLISH or SUBSCRIBE) in a persistent session (clean session 0), a topic longer
///   than [`max_topic_len`](Self::max_topic_len) or a payload larger than
///   [`max_payload`](Self::max_payload) close the connection.
/// - **Re-delivery.** A QoS 1 message a connected client leaves unacknowledged is sent again
///   every [`redelivery_interval`](Self::redelivery_interval), as the service does, so consumers
///   must deduplicate.
/// - **Tokens** are [registered](Self::token) (they reach every topic and never expire) or issued
///   by the [local OpenAPI](Self::openapi_bind) (for the topic filters of their resources, until
///   their expiry or revocation). A client holds one per type. A token login past its token's
///   [expiry notice](Self::token_expire_notice) time gets `$SYS/tokenExpireNotice`
///   (`{"expireTime":<ms>,"type":"R|W|RW"}`); when a held token expires or is revoked it gets
///   `$SYS/tokenInvalidNotice` (`{"code":"TokenExpired|TokenRevoked","type":…}`) and its
///   connection is closed. Both are QoS 0 and need no subscription.
/// - **`$SYS/uploadToken`**: a QoS 1 PUBLISH of `{"token":"…","type":"R|W|RW"}` is acknowledged and
///   the token, if valid for the client's AccessKey, replaces the one of its type from then on.
///   An unknown, expired or revoked token closes the connection.
/// - A second connection with the same client id closes the first (as in any MQTT broker).
#[derive(Clone)]
pub struct ApsaraMqMode {
    pub(crate) instance_id: String,
    pub(crate) access_keys: HashMap<String, String>,
    pub(crate) device_credentials: HashMap<String, String>,
    pub(crate) tokens: Vec<RegisteredToken>,
    pub(crate) max_topic_len: usize,
    pub(crate) max_payload: usize,
    pub(crate) redelivery_interval: Duration,
    pub(crate) token_expire_notice: Duration,
    pub(crate) openapi_bind: Option<SocketAddr>,
}

/// How long a QoS 1 message may stay unacknowledged before it is sent again, as the service
/// does (it says 5 to 10 seconds).
const DEFAULT_REDELIVERY_INTERVAL: Duration = Duration::from_secs(5);

/// How long before a token expires `$SYS/tokenExpireNotice` goes out, as the service does.
const DEFAULT_TOKEN_EXPIRE_NOTICE: Duration = Duration::from_secs(5 * 60);

/// A token [`ApsaraMqMode::token`] registered.
#[derive(Clone)]
pub(crate) struct RegisteredToken {
    pub(crate) access_key_id: String,
    pub(crate) kind: TokenKind,
    pub(crate) token: String,
}

impl ApsaraMqMode {
    /// ApsaraMQ rules for instance `instance_id`, with no credentials yet (so every login is
    /// refused until some are added), topics up to 128 characters and payloads up to 64 KiB.
    pub fn new(instance_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            access_keys: HashMap::new(),
            device_credentials: HashMap::new(),
            tokens: Vec::new(),
            max_topic_len: 128,
            max_payload: 64 * 1024,
            redelivery_interval: DEFAULT_REDELIVERY_INTERVAL,
            token_expire_notice: DEFAULT_TOKEN_EXPIRE_NOTICE,
            openapi_bind: None,
        }
    }

    /// Accepts `Signature|<id>|<instance>` logins signed with `secret` (an AccessKey pair).
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.access_keys.insert(id.into(), secret.into());
        self
    }

    /// Accepts `DeviceCredential|<id>|<instance>` logins signed with `secret` (a device's
    /// credential pair).
    pub fn device_credential(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.device_credentials.insert(id.into(), secret.into());
        self
    }

    /// Accepts `token` of type `kind` in `Token|<access_key_id>|<instance>` logins and in
    /// `$SYS/uploadToken` refreshes from such clients. A token registered as
    /// [`TokenKind::ReadWrite`] may be presented as `R`, `W` or `RW`.
    pub fn token(
        mut self,
        access_key_id: impl Into<String>,
        kind: TokenKind,
        token: impl Into<String>,
    ) -> Self {
        self.tokens.push(RegisteredToken {
            access_key_id: access_key_id.into(),
            kind,
            token: token.into(),
        });
        self
    }

    /// Sets the longest topic (name or filter) in characters; longer ones close the connection.
    /// Default 128, as the quick-start says (older documentation says 64).
    pub fn max_topic_len(mut self, len: usize) -> Self {
        self.max_topic_len = len;
        self
    }

    /// Sets the largest payload in bytes; larger ones close the connection. Default 64 KiB.
    pub fn max_payload(mut self, len: usize) -> Self {
        self.max_payload = len;
        self
    }

    /// Sets how long a connected client may leave a QoS 1 message unacknowledged before it is
    /// sent again, with DUP and the same packet id; `Duration::ZERO` turns this off. Default 5 s.
    ///
    /// The service re-delivers unacknowledged messages every 5 to 10 seconds while the client
    /// stays connected (not only on reconnect, which is all MQTT 3.1.1 requires), which is why
    /// its quick-start asks consumers to deduplicate. Here a message is sent again between one
    /// and one and a quarter intervals after it was last sent, so a local run shows the same
    /// duplicates.
    pub fn redelivery_interval(mut self, interval: Duration) -> Self {
        self.redelivery_interval = interval;
        self
    }

    /// Sets how long before a held token expires the broker sends `$SYS/tokenExpireNotice`.
    /// Default 5 minutes, as the service; a token with less time left when the client logs in
    /// (or uploads it) is announced at once.
    pub fn token_expire_notice(mut self, before: Duration) -> Self {
        self.token_expire_notice = before;
        self
    }

    /// Serves the token operations of the ApsaraMQ OpenAPI (`ApplyToken`, `QueryToken`,
    /// `RevokeToken`, version 2020-04-20) over HTTP on `addr` (port 0: a free one, see
    /// [`Broker::openapi_url`](crate::Broker::openapi_url)).
    ///
    /// Requests are checked as the service checks them: signed (Alibaba Cloud's RPC signature)
    /// with an AccessKey added by [`access_key`](Self::access_key), a timestamp within 15
    /// minutes, a nonce not used before, this instance's id. Tokens it issues log in with
    /// `Token|<that AccessKey id>|<instance>` and reach the topics of their `Resources` (MQTT
    /// topic filters: `parent/+`, `parent/#`). Unlike the service, which wants 60 seconds at
    /// least, any future `ExpireTime` (up to 30 days) is taken, so a test can watch a token
    /// expire. A revoked token gets its holders `$SYS/tokenInvalidNotice` at once.
    pub fn openapi_bind(mut self, addr: SocketAddr) -> Self {
        self.openapi_bind = Some(addr);
        self
    }

    /// The instance id logins must name.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Whether `token` is registered for `access_key_id` with at least the rights of `kind`.
    pub(crate) fn knows_token(&self, access_key_id: &str, kind: TokenKind, token: &str) -> bool {
        self.tokens
            .iter()
            .any(|t| t.access_key_id == access_key_id && t.token == token && t.kind.covers(kind))
    }
}

impl fmt::Debug for ApsaraMqMode {
    /// Names the key ids, never the secrets or tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApsaraMqMode")
            .field("instance_id", &self.instance_id)
            .field("access_keys", &self.access_keys.keys().collect::<Vec<_>>())
            .field(
                "device_credentials",
                &self.device_credentials.keys().collect::<Vec<_>>(),
            )
            .field("tokens", &self.tokens.len())
            .field("max_topic_len", &self.max_topic_len)
            .field("max_payload", &self.max_payload)
            .field("redelivery_interval", &self.redelivery_interval)
            .field("token_expire_notice", &self.token_expire_notice)
            .field("openapi_bind", &self.openapi_bind)
            .finish()
    }
}

/// The rights an ApsaraMQ token grants: `R` (subscribe), `W` (publish) or `RW` (both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `R`: may subscribe.
    Read,
    /// `W`: may publish.
    Write,
    /// `RW`: may subscribe and publish.
    ReadWrite,
}

impl TokenKind {
    /// The type as ApsaraMQ writes it: `R`, `W` or `RW`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "R",
            Self::Write => "W",
            Self::ReadWrite => "RW",
        }
    }

    /// Whether a token of this kind grants everything `other` does.
    pub(crate) fn covers(self, other: Self) -> bool {
        self == Self::ReadWrite || self == other
    }

    pub(crate) fn can_read(self) -> bool {
        self != Self::Write
    }

    pub(crate) fn can_write(self) -> bool {
        self != Self::Read
    }
}

impl FromStr for TokenKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "R" => Ok(Self::Read),
            "W" => Ok(Self::Write),
            "RW" => Ok(Self::ReadWrite),
            other => Err(format!("token type {other:?} is not R, W or RW")),
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an ApsaraMQ client id is refused, or `None` if it is valid.
pub(crate) fn client_id_problem(client_id: &str) -> Option<&'static str> {
    if client_id.chars().count() > 64 {
        return Some("longer than 64 characters");
    }
    let Some((group, device)) = client_id.split_once("@@@") else {
        return Some("not <GroupID>@@@<DeviceID>");
    };
    if !(group.starts_with("GID_") || group.starts_with("GID-")) {
        return Some("group id does not start with GID_ or GID-");
    }
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if group.len() <= 4 || device.is_empty() {
        return Some("empty group or device id");
    }
    if !allowed(group) || !allowed(device) {
        return Some("characters other than letters, digits, '-' and '_'");
    }
    None
}

/// The client a P2P topic `<parent>/p2p/<client id>` is addressed to, if `topic` is one.
pub(crate) fn p2p_target(topic: &str) -> Option<&str> {
    let mut levels = topic.splitn(3, '/');
    let _parent = levels.next()?;
    if levels.next()? != "p2p" {
        return None;
    }
    levels.next().filter(|target| !target.is_empty())
}

/// The topic a client refreshes its token on.
pub(crate) const UPLOAD_TOKEN_TOPIC: &str = "$SYS/uploadToken";

/// Reads an uploadToken payload `{"token":"…","type":"R|W|RW"}`.
pub(crate) fn parse_upload_token(payload: &[u8]) -> Result<(String, TokenKind), String> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let token = value
        .get("token")
        .and_then(serde_json::Value::as_str)
        .ok_or("no string \"token\" field")?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or("no string \"type\" field")?
        .parse()?;
    Ok((token.to_owned(), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert_eq!(client_id_problem("GID_test@@@device-001"), None);
        assert_eq!(client_id_problem("GID-a_b@@@d_1"), None);
        assert!(client_id_problem("test@@@device").is_some());
        assert!(client_id_problem("GID_test").is_some());
        assert!(client_id_problem("GID_@@@dev").is_some());
        assert!(client_id_problem("GID_x@@@").is_some());
        assert!(client_id_problem("GID_x@@@dev.1").is_some());
        assert!(client_id_problem("GID_x@@@a@@@b").is_some());
        let long = format!("GID_x@@@{}", "d".repeat(57));
        assert_eq!(long.len(), 65);
        assert!(client_id_problem(&long).is_some());
        assert_eq!(client_id_problem(&long[..64]), None);
    }

    #[test]
    fn p2p_topics() {
        assert_eq!(p2p_target("parent/p2p/GID_x@@@d"), Some("GID_x@@@d"));
        assert_eq!(p2p_target("parent/p2p/"), None);
        assert_eq!(p2p_target("parent/p2p"), None);
        assert_eq!(p2p_target("parent/x/p2p/GID_x@@@d"), None);
    }

    #[test]
    fn upload_token_payloads() {
        assert_eq!(
            parse_upload_token(br#"{"token":"abc","type":"RW"}"#),
            Ok(("abc".to_owned(), TokenKind::ReadWrite))
        );
        assert!(parse_upload_token(br#"{"token":"abc","type":"X"}"#).is_err());
        assert!(parse_upload_token(br#"{"type":"R"}"#).is_err());
        assert!(parse_upload_token(b"\xff").is_err());
    }

    #[test]
    fn token_kinds() {
        let mode = ApsaraMqMode::new("i").token("ak", TokenKind::ReadWrite, "t");
        assert!(mode.knows_token("ak", TokenKind::Read, "t"));
        assert!(mode.knows_token("ak", TokenKind::Write, "t"));
        assert!(!mode.knows_token("other", TokenKind::Read, "t"));
        let mode = ApsaraMqMode::new("i").token("ak", TokenKind::Read, "t");
        assert!(!mode.knows_token("ak", TokenKind::Write, "t"));
        assert!(!format!("{mode:?}").contains("\"t\""));
    }
}
