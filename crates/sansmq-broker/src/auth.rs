//! ApsaraMQ login checks: Signature, Token and DeviceCredential user names and passwords.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sansmq::packet::ConnectReturnCode;
use sha1::Sha1;

use std::time::SystemTime;

use crate::apsaramq::{ApsaraMqMode, TokenKind};
use crate::tokens::{self, HeldToken, TokenRegistry};

/// What an accepted login may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// For a Token login, what it holds; `None` for logins that may do everything.
    pub(crate) token_login: Option<TokenLogin>,
}

/// The tokens of a `Token|<access key id>|<instance>` login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenLogin {
    /// The AccessKey id of the login; uploaded tokens must belong to it too.
    pub(crate) access_key_id: String,
    /// At most one token per type, as the service allows.
    pub(crate) held: Vec<HeldToken>,
}

impl Grant {
    pub(crate) const ALL: Self = Self { token_login: None };

    /// Whether the login may publish to `topic`: a `W` (or `RW`) token whose resources reach it.
    pub(crate) fn may_publish(&self, topic: &str) -> bool {
        self.token_login
            .as_ref()
            .is_none_or(|login| login.held.iter().any(|t| t.may_publish(topic)))
    }

    /// Whether the login may subscribe to `filter`: an `R` (or `RW`) token whose resources cover
    /// it.
    pub(crate) fn may_subscribe(&self, filter: &str) -> bool {
        self.token_login
            .as_ref()
            .is_none_or(|login| login.held.iter().any(|t| t.may_subscribe(filter)))
    }
}

impl TokenLogin {
    /// Holds `token` from now on, in place of the one of its type held so far.
    pub(crate) fn hold(&mut self, token: HeldToken) {
        self.held.retain(|held| held.kind != token.kind);
        self.held.push(token);
    }
}

/// Checks an ApsaraMQ login. Malformed credentials get `BadUserNameOrPassword` (0x04), well-formed
/// ones that do not check out get `NotAuthorized` (0x05).
pub(crate) fn verify(
    mode: &ApsaraMqMode,
    registry: &TokenRegistry,
    now: SystemTime,
    client_id: &str,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> Result<Grant, ConnectReturnCode> {
    use ConnectReturnCode::{BadUserNameOrPassword, NotAuthorized};
    let (Some(username), Some(password)) = (username, password) else {
        return Err(BadUserNameOrPassword);
    };
    let mut parts = username.split('|');
    let (Some(scheme), Some(key_id), Some(instance), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadUserNameOrPassword);
    };
    let password = std::str::from_utf8(password).map_err(|_| BadUserNameOrPassword)?;
    let secrets = match scheme {
        "Signature" => &mode.access_keys,
        "DeviceCredential" => &mode.device_credentials,
        "Token" => {
            let grant = verify_tokens(mode, registry, now, key_id, password)?;
            return if instance == mode.instance_id {
                Ok(grant)
            } else {
                Err(NotAuthorized)
            };
        }
        _ => return Err(BadUserNameOrPassword),
    };
    if instance != mode.instance_id {
        return Err(NotAuthorized);
    }
    let Some(secret) = secrets.get(key_id) else {
        return Err(NotAuthorized);
    };
    if signature_matches(secret, client_id, password) {
        Ok(Grant::ALL)
    } else {
        Err(NotAuthorized)
    }
}

/// Base64(HMAC-SHA1(secret, client id)): the Signature and DeviceCredential password.
pub(crate) fn sign(secret: &str, client_id: &str) -> String {
    STANDARD.encode(mac(secret, client_id).finalize().into_bytes())
}

fn mac(secret: &str, client_id: &str) -> Hmac<Sha1> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(client_id.as_bytes());
    mac
}

/// Compares in constant time, so a wrong password tells nothing about the right one.
fn signature_matches(secret: &str, client_id: &str, password: &str) -> bool {
    match STANDARD.decode(password) {
        Ok(tag) => mac(secret, client_id).verify_slice(&tag).is_ok(),
        Err(_) => false,
    }
}

/// Checks a Token password `<type>|<token>[|<type>|<token>...]`.
fn verify_tokens(
    mode: &ApsaraMqMode,
    registry: &TokenRegistry,
    now: SystemTime,
    key_id: &str,
    password: &str,
) -> Result<Grant, ConnectReturnCode> {
    let fields: Vec<&str> = password.split('|').collect();
    if fields.len() % 2 != 0 || fields.iter().any(|f| f.is_empty()) {
        return Err(ConnectReturnCode::BadUserNameOrPassword);
    }
    let mut login = TokenLogin {
        access_key_id: key_id.to_owned(),
        held: Vec::new(),
    };
    for pair in fields.chunks_exact(2) {
        let &[kind, token] = pair else {
            return Err(ConnectReturnCode::BadUserNameOrPassword);
        };
        let kind: TokenKind = kind
            .parse()
            .map_err(|_| ConnectReturnCode::BadUserNameOrPassword)?;
        match tokens::check(mode, registry, key_id, kind, token, now) {
            Ok(held) => login.hold(held),
            Err(refusal) => {
                tracing::info!(key_id, %kind, %refusal, "token login refused");
                return Err(ConnectReturnCode::NotAuthorized);
            }
        }
    }
    Ok(Grant {
        token_login: Some(login),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "GID_test@@@device-001";

    fn mode() -> ApsaraMqMode {
        ApsaraMqMode::new("mqtt-cn-test")
            .access_key("LTAI5tTestKey", "secretKey123")
            .device_credential("dev-ak", "dev-secret")
            .token("LTAI5tTestKey", TokenKind::Read, "r-tok")
            .token("LTAI5tTestKey", TokenKind::Write, "w-tok")
    }

    fn check(user: &str, password: &str) -> Result<Grant, ConnectReturnCode> {
        let registry = TokenRegistry::default();
        let now = SystemTime::now();
        verify(
            &mode(),
            &registry,
            now,
            CLIENT,
            Some(user),
            Some(password.as_bytes()),
        )
    }

    #[test]
    fn signs_the_whole_client_id() {
        assert_eq!(sign("secretKey123", CLIENT), "WUp3wMiZLkLANz/so65nilEQlic=");
    }

    #[test]
    fn signature_logins() {
        let user = "Signature|LTAI5tTestKey|mqtt-cn-test";
        assert_eq!(check(user, "WUp3wMiZLkLANz/so65nilEQlic="), Ok(Grant::ALL));
        // Signing only the group id is the old, wrong scheme.
        assert_eq!(
            check(user, "vNnueb3fxTePnowvE8ma3hks6hI="),
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(
            check(
                "Signature|LTAI5tTestKey|other-instance",
                "WUp3wMiZLkLANz/so65nilEQlic="
            ),
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(
            check(
                "Signature|unknown|mqtt-cn-test",
                "WUp3wMiZLkLANz/so65nilEQlic="
            ),
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(
            check("Signature|LTAI5tTestKey", "x"),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
        assert_eq!(
            verify(
                &mode(),
                &TokenRegistry::default(),
                SystemTime::now(),
                CLIENT,
                Some(user),
                None
            ),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
    }

    #[test]
    fn device_credential_logins_use_device_keys() {
        let password = sign("dev-secret", CLIENT);
        assert!(check("DeviceCredential|dev-ak|mqtt-cn-test", &password).is_ok());
        assert!(check("Signature|dev-ak|mqtt-cn-test", &password).is_err());
    }

    #[test]
    fn token_logins() {
        let user = "Token|LTAI5tTestKey|mqtt-cn-test";
        let grant = check(user, "R|r-tok").unwrap();
        assert!(grant.may_subscribe("any/#") && !grant.may_publish("any"));
        let grant = check(user, "R|r-tok|W|w-tok").unwrap();
        assert!(grant.may_subscribe("any/#") && grant.may_publish("any"));
        let login = grant.token_login.unwrap();
        assert_eq!(login.access_key_id, "LTAI5tTestKey");
        assert_eq!(login.held.len(), 2);
        assert_eq!(
            check(user, "W|r-tok"),
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(
            check(user, "R|r-tok|W"),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
        assert_eq!(
            check(user, "X|r-tok"),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
        assert_eq!(
            check("Token|LTAI5tTestKey|elsewhere", "R|r-tok"),
            Err(ConnectReturnCode::NotAuthorized)
        );
    }
}
