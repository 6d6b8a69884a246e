//! Logins: [`AuthMode`] (Signature, Token, DeviceCredential, Custom) turns keys and a
//! [`ClientId`] into CONNECT's user name and password; [`ApsaraMqCredentials`] does it again for
//! every connect and reconnect as the client's [`sansmq_driver::CredentialsProvider`].
//!
//! | mode | user name | password |
//! |---|---|---|
//! | Signature | `Signature\|<AccessKeyId>\|<InstanceId>` | Base64(HMAC-SHA1(AccessKeySecret, client id)) |
//! | Token | `Token\|<AccessKeyId>\|<InstanceId>` | `<type>\|<token>` pairs joined by `\|`: `R\|123\|W\|abcd` |
//! | DeviceCredential | `DeviceCredential\|<DeviceAccessKeyId>\|<InstanceId>` | Base64(HMAC-SHA1(DeviceAccessKeySecret, client id)) |
//! | Custom | as given | the raw secret, or Base64(HMAC-SHA1(secret, client id)) |
//!
//! Secrets (AccessKey secrets, tokens, custom passwords) are held in [`Secret`]s, which no
//! `Debug` output shows and which have no `Display`; error messages never quote them.

use std::env::VarError;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::ClientId;

mod provider;

pub use provider::ApsaraMqCredentials;

/// The environment variable holding the AccessKey ID, as in Alibaba's quick-start.
pub const ACCESS_KEY_ID_ENV: &str = "MQTT_AK_ENV";

/// The environment variable holding the AccessKey secret, as in Alibaba's quick-start.
pub const ACCESS_KEY_SECRET_ENV: &str = "MQTT_SK_ENV";

/// Base64 of HMAC-SHA1 with `key` over `message`, both taken as UTF-8: the password of the
/// Signature and DeviceCredential modes (and of a signed Custom login), always 28 characters.
///
/// The message is the **whole** client id, `@@@` and device id included.
///
/// ```
/// use sansmq_apsaramq::credentials::sign;
///
/// assert_eq!(sign("secretKey123", "GID_test@@@device-001"), "WUp3wMiZLkLANz/so65nilEQlic=");
/// ```
pub fn sign(key: &str, message: &str) -> String {
    // HMAC accepts a key of any length (RFC 2104 hashes long keys), so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The value of `variable` as `lookup` finds it; refused when missing, empty, not UTF-8 or padded
/// with whitespace (the error names the variable, never its value).
fn read_env(
    variable: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<String, CredentialsError> {
    let problem = match lookup(variable) {
        Ok(value) if value.is_empty() => EnvProblem::Empty,
        Ok(value) if value.trim() != value => EnvProblem::Whitespace,
        Ok(value) => return Ok(value),
        Err(VarError::NotPresent) => EnvProblem::NotSet,
        Err(VarError::NotUnicode(_)) => EnvProblem::NotUnicode,
    };
    Err(CredentialsError::Env {
        variable: variable.to_owned(),
        problem,
    })
}

/// A secret string: shown as `<redacted>` by `Debug`, never by `Display` (it has none).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An AccessKey pair: the account's (Signature, Token) or a device's (DeviceCredential).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    id: String,
    secret: Secret,
}

impl AccessKey {
    /// A key pair.
    pub fn new(id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// Reads the pair from `MQTT_AK_ENV` (id) and `MQTT_SK_ENV` (secret), as Alibaba's
    /// quick-start does; the error names the variable that is missing, empty, not UTF-8 or padded
    /// with whitespace, never its value.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_env_vars(ACCESS_KEY_ID_ENV, ACCESS_KEY_SECRET_ENV)
    }

    /// Reads the pair from two other environment variables (for a device's key, say).
    pub fn from_env_vars(id_var: &str, secret_var: &str) -> Result<Self, CredentialsError> {
        Self::from_lookup(id_var, secret_var, |name| std::env::var(name))
    }

    /// A pair whose ID is given (on a command line, say) and whose secret comes from the
    /// environment variable `secret_var`, `MQTT_SK_ENV` usually: secrets stay off command lines.
    pub fn from_env_secret(
        id: impl Into<String>,
        secret_var: &str,
    ) -> Result<Self, CredentialsError> {
        let secret = read_env(secret_var, |name| std::env::var(name))?;
        Ok(Self::new(id, secret))
    }

    /// [`from_env_vars`](Self::from_env_vars) with the environment passed in, so tests need not
    /// change the process's.
    fn from_lookup(
        id_var: &str,
        secret_var: &str,
        lookup: impl Fn(&str) -> Result<String, VarError>,
    ) -> Result<Self, CredentialsError> {
        Ok(Self {
            id: read_env(id_var, &lookup)?,
            secret: Secret(read_env(secret_var, &lookup)?),
        })
    }

    /// The AccessKey ID (not secret: it is part of the user name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The AccessKey secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .finish()
    }
}

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// Subscribe (read).
    R,
    /// Publish (write).
    W,
    /// Both.
    RW,
}

impl TokenType {
    /// `"R"`, `"W"` or `"RW"`, as the password and `$SYS/uploadToken` spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::R => "R",
            Self::W => "W",
            Self::RW => "RW",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token issued by ApsaraMQ's `ApplyToken` API, with its type. The value is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    kind: TokenType,
    value: Secret,
}

impl Token {
    /// A token; refused when empty or containing `|`, which would corrupt the password.
    pub fn new(kind: TokenType, value: impl Into<Secret>) -> Result<Self, CredentialsError> {
        let value = value.into();
        let reason = if value.expose().is_empty() {
            "is empty"
        } else if value.expose().contains('|') {
            "contains '|', the password's separator"
        } else {
            return Ok(Self { kind, value });
        };
        Err(CredentialsError::InvalidToken { kind, reason })
    }

    /// What it allows.
    pub fn kind(&self) -> TokenType {
        self.kind
    }

    /// The token itself.
    pub fn value(&self) -> &Secret {
        &self.value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("kind", &self.kind)
            .field("value", &self.value)
            .finish()
    }
}

/// A Custom login's password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomPassword {
    /// Sent as is.
    Raw(Secret),
    /// Base64(HMAC-SHA1(secret, client id)) is sent.
    Signed(Secret),
}

/// How to log in to ApsaraMQ; see the [module docs](self) for what each mode sends.
///
/// `Debug` shows ids and instance, never a secret or token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMode {
    /// The account's (or a RAM user's) AccessKey signs the client id.
    Signature {
        /// The AccessKey pair.
        access_key: AccessKey,
        /// The instance id, e.g. `mqtt-cn-0pp0abcdef`.
        instance_id: String,
    },
    /// Tokens from the `ApplyToken` API (one or several, e.g. an `R` and a `W` one).
    Token {
        /// The AccessKey ID that applied for the tokens (its secret is not needed here).
        access_key_id: String,
        /// The instance id.
        instance_id: String,
        /// The tokens, sent in this order.
        tokens: Vec<Token>,
    },
    /// A device's own key pair (from the `RegisterDeviceCredential` API) signs the client id.
    DeviceCredential {
        /// The device's AccessKey pair.
        device_key: AccessKey,
        /// The instance id.
        instance_id: String,
    },
    /// A user name and password checked by your own authentication service.
    Custom {
        /// The user name, sent as is.
        username: String,
        /// The password, raw or signed.
        password: CustomPassword,
    },
}

impl AuthMode {
    /// Signature mode.
    pub fn signature(access_key: AccessKey, instance_id: impl Into<String>) -> Self {
        Self::Signature {
            access_key,
            instance_id: instance_id.into(),
        }
    }

    /// Token mode.
    pub fn token(
        access_key_id: impl Into<String>,
        instance_id: impl Into<String>,
        tokens: impl IntoIterator<Item = Token>,
    ) -> Self {
        Self::Token {
            access_key_id: access_key_id.into(),
            instance_id: instance_id.into(),
            tokens: tokens.into_iter().collect(),
        }
    }

    /// DeviceCredential mode.
    pub fn device_credential(device_key: AccessKey, instance_id: impl Into<String>) -> Self {
        Self::DeviceCredential {
            device_key,
            instance_id: instance_id.into(),
        }
    }

    /// Custom mode, password sent as is.
    pub fn custom_raw(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self::Custom {
            username: username.into(),
            password: CustomPassword::Raw(password.into()),
        }
    }

    /// Custom mode, password = Base64(HMAC-SHA1(secret, client id)).
    pub fn custom_signed(username: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self::Custom {
            username: username.into(),
            password: CustomPassword::Signed(secret.into()),
        }
    }

    /// The mode's name: `Signature`, `Token`, `DeviceCredential` or `Custom`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Signature { .. } => "Signature",
            Self::Token { .. } => "Token",
            Self::DeviceCredential { .. } => "DeviceCredential",
            Self::Custom { .. } => "Custom",
        }
    }

    /// CONNECT's user name and password for `client_id`.
    ///
    /// Fails when an AccessKey ID or instance id is empty or contains `|` (it would corrupt the
    /// user name), or when Token mode has no token or two of one type.
    pub fn connect_credentials(
        &self,
        client_id: &ClientId,
    ) -> Result<sansmq_driver::Credentials, CredentialsError> {
        let (username, password) = match self {
            Self::Signature {
                access_key,
                instance_id,
            } => (
                prefixed_username("Signature", "AccessKey ID", &access_key.id, instance_id)?,
                sign(access_key.secret.expose(), client_id.as_str()),
            ),
            Self::Token {
                access_key_id,
                instance_id,
                tokens,
            } => {
                check_tokens(tokens)?;
                let password = tokens
                    .iter()
                    .map(|t| format!("{}|{}", t.kind, t.value.expose()))
                    .collect::<Vec<_>>()
                    .join("|");
                (
                    prefixed_username("Token", "AccessKey ID", access_key_id, instance_id)?,
                    password,
                )
            }
            Self::DeviceCredential {
                device_key,
                instance_id,
            } => (
                prefixed_username(
                    "DeviceCredential",
                    "device AccessKey ID",
                    &device_key.id,
                    instance_id,
                )?,
                sign(device_key.secret.expose(), client_id.as_str()),
            ),
            Self::Custom { username, password } => (
                username.clone(),
                match password {
                    CustomPassword::Raw(secret) => secret.expose().to_owned(),
                    CustomPassword::Signed(secret) => sign(secret.expose(), client_id.as_str()),
                },
            ),
        };
        Ok(sansmq_driver::Credentials {
            username,
            password: Some(password.into()),
        })
    }
}

/// `<mode>|<key id>|<instance id>`, refusing fields that would break the format.
fn prefixed_username(
    mode: &str,
    key_field: &'static str,
    key_id: &str,
    instance_id: &str,
) -> Result<String, CredentialsError> {
    for (field, value) in [(key_field, key_id), ("instance id", instance_id)] {
        let reason = if value.is_empty() {
            "is empty"
        } else if value.contains('|') {
            "contains '|', the user name's separator"
        } else {
            continue;
        };
        return Err(CredentialsError::InvalidField {
            field,
            value: value.to_owned(),
            reason,
        });
    }
    Ok(format!("{mode}|{key_id}|{instance_id}"))
}

/// At least one token, at most one of each type.
pub(crate) fn check_tokens(tokens: &[Token]) -> Result<(), CredentialsError> {
    if tokens.is_empty() {
        return Err(CredentialsError::NoTokens);
    }
    for (i, token) in tokens.iter().enumerate() {
        if tokens.iter().skip(i + 1).any(|t| t.kind == token.kind) {
            return Err(CredentialsError::DuplicateTokenType(token.kind));
        }
    }
    Ok(())
}

/// Why credentials cannot be made. Messages name variables and fields, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// An environment variable cannot be used.
    #[error("environment variable {variable}: {problem}")]
    Env {
        /// The variable's name.
        variable: String,
        /// What is wrong with it.
        problem: EnvProblem,
    },
    /// An id would corrupt the user name.
    #[error("{field} {value:?} {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// Its value (ids and instance ids are not secret).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A token cannot be sent (its value is not shown).
    #[error("the {kind} token {reason}")]
    InvalidToken {
        /// The token's type.
        kind: TokenType,
        /// What is wrong.
        reason: &'static str,
    },
    /// Token mode without a token.
    #[error("Token mode needs at least one token (R, W or RW)")]
    NoTokens,
    /// Two tokens of one type.
    #[error("two {0} tokens; give at most one token of each type")]
    DuplicateTokenType(TokenType),
    /// Tokens were set on credentials that do not use Token mode.
    #[error("these credentials use {mode} mode; tokens apply only to Token mode")]
    NotTokenMode {
        /// The mode in use.
        mode: &'static str,
    },
    /// The broker declared the tokens invalid and no new ones were set since.
    #[error(
        "the tokens were declared invalid by the broker; set new ones before reconnecting (connecting again with the same tokens would be refused)"
    )]
    TokensInvalidated,
}

/// What is wrong with an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvProblem {
    /// Not set.
    NotSet,
    /// Set to the empty string.
    Empty,
    /// Not valid Unicode.
    NotUnicode,
    /// Starts or ends with whitespace (a stray newline, say).
    Whitespace,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSet => "is not set",
            Self::Empty => "is empty",
            Self::NotUnicode => "is not valid Unicode",
            Self::Whitespace => "starts or ends with whitespace",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY_ID: &str = "LTAI5tTestKey";
    const SECRET: &str = "secretKey123";
    const INSTANCE: &str = "mqtt-cn-test";
    const CLIENT_ID: &str = "GID_test@@@device-001";
    const EXPECTED: &str = "WUp3wMiZLkLANz/so65nilEQlic=";
    /// What the old scheme, signing only the group id, gives: never what we send.
    const GROUP_ONLY: &str = "vNnueb3fxTePnowvE8ma3hks6hI=";

    fn client_id() -> ClientId {
        ClientId::parse(CLIENT_ID).unwrap()
    }

    fn password(credentials: &sansmq_driver::Credentials) -> &str {
        std::str::from_utf8(credentials.password.as_deref().unwrap()).unwrap()
    }

    fn token(kind: TokenType, value: &str) -> Token {
        Token::new(kind, value).unwrap()
    }

    #[test]
    fn sign_matches_the_test_vector_and_not_the_group_only_scheme() {
        assert_eq!(sign(SECRET, CLIENT_ID), EXPECTED);
        assert_eq!(sign(SECRET, "GID_test"), GROUP_ONLY);
        assert_eq!(sign(SECRET, CLIENT_ID).len(), 28);
    }

    #[test]
    fn signature_mode_matches_the_test_vector() {
        let mode = AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE);
        let login = mode.connect_credentials(&client_id()).unwrap();
        assert_eq!(login.username, "Signature|LTAI5tTestKey|mqtt-cn-test");
        assert_eq!(password(&login), EXPECTED);
        assert_ne!(password(&login), GROUP_ONLY);
    }

    #[test]
    fn signature_depends_on_the_device_id() {
        let mode = AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE);
        let other = ClientId::new("GID_test", "device-002").unwrap();
        let login = mode.connect_credentials(&other).unwrap();
        assert_ne!(password(&login), EXPECTED);
        assert_eq!(password(&login), sign(SECRET, "GID_test@@@device-002"));
    }

    #[test]
    fn device_credential_mode_signs_with_the_device_key() {
        let mode = AuthMode::device_credential(AccessKey::new("DevKeyId", SECRET), INSTANCE);
        let login = mode.connect_credentials(&client_id()).unwrap();
        assert_eq!(login.username, "DeviceCredential|DevKeyId|mqtt-cn-test");
        assert_eq!(password(&login), EXPECTED);
    }

    #[test]
    fn token_mode_joins_type_and_token_pairs_in_order() {
        let mode = AuthMode::token(
            KEY_ID,
            INSTANCE,
            [token(TokenType::R, "123"), token(TokenType::W, "abcd")],
        );
        let login = mode.connect_credentials(&client_id()).unwrap();
        assert_eq!(login.username, "Token|LTAI5tTestKey|mqtt-cn-test");
        assert_eq!(password(&login), "R|123|W|abcd");

        let single = AuthMode::token(KEY_ID, INSTANCE, [token(TokenType::RW, "xyz")]);
        let login = single.connect_credentials(&client_id()).unwrap();
        assert_eq!(password(&login), "RW|xyz");

        let three = AuthMode::token(
            KEY_ID,
            INSTANCE,
            [
                token(TokenType::W, "w1"),
                token(TokenType::RW, "rw1"),
                token(TokenType::R, "r1"),
            ],
        );
        let login = three.connect_credentials(&client_id()).unwrap();
        assert_eq!(password(&login), "W|w1|RW|rw1|R|r1");
    }

    #[test]
    fn token_mode_refuses_no_token_and_duplicate_types() {
        let none = AuthMode::token(KEY_ID, INSTANCE, []);
        assert_eq!(
            none.connect_credentials(&client_id()).unwrap_err(),
            CredentialsError::NoTokens
        );
        let twice = AuthMode::token(
            KEY_ID,
            INSTANCE,
            [token(TokenType::R, "a"), token(TokenType::R, "b")],
        );
        let error = twice.connect_credentials(&client_id()).unwrap_err();
        assert_eq!(error, CredentialsError::DuplicateTokenType(TokenType::R));
        assert!(error.to_string().contains("two R tokens"));
    }

    #[test]
    fn token_refuses_empty_and_separator_without_showing_the_value() {
        assert_eq!(
            Token::new(TokenType::W, "").unwrap_err(),
            CredentialsError::InvalidToken {
                kind: TokenType::W,
                reason: "is empty"
            }
        );
        let error = Token::new(TokenType::RW, "sec|ret").unwrap_err();
        assert!(matches!(
            error,
            CredentialsError::InvalidToken {
                kind: TokenType::RW,
                ..
            }
        ));
        let message = error.to_string();
        assert!(message.contains("'|'"), "{message}");
        assert!(!message.contains("sec|ret"), "{message}");
    }

    #[test]
    fn custom_mode_raw_and_signed() {
        let raw = AuthMode::custom_raw("my-user", "my-password");
        let login = raw.connect_credentials(&client_id()).unwrap();
        assert_eq!(login.username, "my-user");
        assert_eq!(password(&login), "my-password");

        let signed = AuthMode::custom_signed("my-user", SECRET);
        let login = signed.connect_credentials(&client_id()).unwrap();
        assert_eq!(login.username, "my-user");
        assert_eq!(password(&login), EXPECTED);
    }

    #[test]
    fn refuses_ids_that_would_corrupt_the_user_name() {
        let cases = [
            (
                AuthMode::signature(AccessKey::new("", SECRET), INSTANCE),
                "AccessKey ID",
                "",
            ),
            (
                AuthMode::signature(AccessKey::new("a|b", SECRET), INSTANCE),
                "AccessKey ID",
                "a|b",
            ),
            (
                AuthMode::signature(AccessKey::new(KEY_ID, SECRET), ""),
                "instance id",
                "",
            ),
            (
                AuthMode::token("k", "mqtt|x", [token(TokenType::R, "t")]),
                "instance id",
                "mqtt|x",
            ),
            (
                AuthMode::device_credential(AccessKey::new("d|k", SECRET), INSTANCE),
                "device AccessKey ID",
                "d|k",
            ),
        ];
        for (mode, field, value) in cases {
            let error = mode.connect_credentials(&client_id()).unwrap_err();
            assert!(
                matches!(&error, CredentialsError::InvalidField { field: f, value: v, .. } if *f == field && v == value),
                "{error:?}"
            );
            assert!(!error.to_string().contains(SECRET));
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned().ok_or(VarError::NotPresent)
    }

    fn from_env(vars: &[(&str, &str)]) -> Result<AccessKey, CredentialsError> {
        AccessKey::from_lookup(ACCESS_KEY_ID_ENV, ACCESS_KEY_SECRET_ENV, env(vars))
    }

    #[test]
    fn from_env_reads_both_variables() {
        let key = from_env(&[("MQTT_AK_ENV", KEY_ID), ("MQTT_SK_ENV", SECRET)]).unwrap();
        assert_eq!(key.id(), KEY_ID);
        assert_eq!(key.secret().expose(), SECRET);
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let error = from_env(&[("MQTT_SK_ENV", SECRET)]).unwrap_err();
        assert_eq!(
            error,
            CredentialsError::Env {
                variable: "MQTT_AK_ENV".into(),
                problem: EnvProblem::NotSet
            }
        );
        assert_eq!(
            error.to_string(),
            "environment variable MQTT_AK_ENV: is not set"
        );

        let error = from_env(&[("MQTT_AK_ENV", KEY_ID)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable MQTT_SK_ENV: is not set"
        );
    }

    #[test]
    fn from_env_refuses_empty_padded_and_non_unicode_values_without_showing_them() {
        let error = from_env(&[("MQTT_AK_ENV", KEY_ID), ("MQTT_SK_ENV", "")]).unwrap_err();
        assert_eq!(
            error,
            CredentialsError::Env {
                variable: "MQTT_SK_ENV".into(),
                problem: EnvProblem::Empty
            }
        );

        let padded = "secretKey123\n";
        let error = from_env(&[("MQTT_AK_ENV", KEY_ID), ("MQTT_SK_ENV", padded)]).unwrap_err();
        assert_eq!(
            error,
            CredentialsError::Env {
                variable: "MQTT_SK_ENV".into(),
                problem: EnvProblem::Whitespace
            }
        );
        assert!(!error.to_string().contains(SECRET));

        let error = AccessKey::from_lookup("MQTT_AK_ENV", "MQTT_SK_ENV", |_| {
            Err(VarError::NotUnicode("x".into()))
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable MQTT_AK_ENV: is not valid Unicode"
        );
    }

    #[test]
    fn from_env_vars_reads_the_real_environment() {
        // A name nobody sets, so the process environment need not be changed.
        let error =
            AccessKey::from_env_vars("SANSMQ_APSARAMQ_TEST_UNSET_ID", "MQTT_SK_ENV").unwrap_err();
        assert_eq!(
            error,
            CredentialsError::Env {
                variable: "SANSMQ_APSARAMQ_TEST_UNSET_ID".into(),
                problem: EnvProblem::NotSet
            }
        );
    }

    #[test]
    fn from_env_secret_takes_the_id_as_given() {
        let error =
            AccessKey::from_env_secret(KEY_ID, "SANSMQ_APSARAMQ_TEST_UNSET_SECRET").unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable SANSMQ_APSARAMQ_TEST_UNSET_SECRET: is not set"
        );
        // A variable every test run has, so the process environment need not be changed.
        let path = std::env::var("PATH").unwrap();
        let key = AccessKey::from_env_secret(KEY_ID, "PATH").unwrap();
        assert_eq!((key.id(), key.secret().expose()), (KEY_ID, path.as_str()));
    }

    fn assert_hidden(debug: &str, secrets: &[&str]) {
        for secret in secrets {
            assert!(!debug.contains(secret), "{secret:?} shown in {debug}");
        }
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let key = AccessKey::new(KEY_ID, SECRET);
        assert_hidden(&format!("{key:?}"), &[SECRET]);
        assert!(format!("{key:?}").contains(KEY_ID));
        assert_hidden(&format!("{:?}", Secret::new(SECRET)), &[SECRET]);
        assert_hidden(&format!("{:#?}", key.secret()), &[SECRET]);

        let tok = token(TokenType::R, "tokenSecretValue");
        assert_hidden(&format!("{tok:?}"), &["tokenSecretValue"]);

        let modes = [
            AuthMode::signature(key.clone(), INSTANCE),
            AuthMode::device_credential(key.clone(), INSTANCE),
            AuthMode::token(KEY_ID, INSTANCE, [tok.clone()]),
            AuthMode::custom_raw("user", SECRET),
            AuthMode::custom_signed("user", SECRET),
        ];
        for mode in modes {
            assert_hidden(&format!("{mode:?}"), &[SECRET, "tokenSecretValue"]);
            assert_hidden(&format!("{mode:#?}"), &[SECRET, "tokenSecretValue"]);
            let login = mode.connect_credentials(&client_id()).unwrap();
            let shown = format!("{login:?}");
            assert!(!shown.contains(password(&login)), "{shown}");

            let provider = ApsaraMqCredentials::new(mode, client_id());
            assert_hidden(&format!("{provider:?}"), &[SECRET, "tokenSecretValue"]);
        }
    }

    #[test]
    fn token_type_spelling() {
        assert_eq!(TokenType::R.to_string(), "R");
        assert_eq!(TokenType::W.as_str(), "W");
        assert_eq!(TokenType::RW.to_string(), "RW");
    }
}
