//! [`ApsaraMqCredentials`]: an [`AuthMode`] and a [`ClientId`] as the client's credentials
//! provider, with the tokens replaceable while the client runs.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use super::{AuthMode, CredentialsError, Token, check_tokens};
use crate::ClientId;
use crate::token_notice::TokenNotice;

/// The client's credentials provider: an [`AuthMode`] and the [`ClientId`] it signs, evaluated
/// afresh for every connect and reconnect.
///
/// Clones share one state, so keep a clone to change the tokens after handing one to
/// [`sansmq_driver::ConnectOptions::credentials_provider`]:
///
/// ```
/// use sansmq_apsaramq::{ApsaraMqCredentials, AuthMode, ClientId, Token, TokenType};
///
/// let client_id = ClientId::new("GID_test", "device-001").unwrap();
/// let first = Token::new(TokenType::RW, "first-token").unwrap();
/// let credentials = ApsaraMqCredentials::new(
///     AuthMode::token("LTAI5tTestKey", "mqtt-cn-test", [first]),
///     client_id,
/// );
/// let options = sansmq_driver::ConnectOptions::new("tcp://127.0.0.1:1883", "GID_test@@@device-001")
///     .unwrap()
///     .credentials_provider(credentials.clone());
///
/// // Later, after uploading a fresh token:
/// credentials.update_token(Token::new(TokenType::RW, "second-token").unwrap()).unwrap();
/// let login = credentials.current().unwrap();
/// assert_eq!(login.password.as_deref(), Some(&b"RW|second-token"[..]));
/// # drop(options);
/// ```
#[derive(Clone)]
pub struct ApsaraMqCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    client_id: ClientId,
    state: RwLock<State>,
}

struct State {
    mode: AuthMode,
    tokens_invalidated: bool,
}

impl ApsaraMqCredentials {
    /// Credentials for `client_id`.
    pub fn new(mode: AuthMode, client_id: ClientId) -> Self {
        Self {
            inner: Arc::new(Inner {
                client_id,
                state: RwLock::new(State {
                    mode,
                    tokens_invalidated: false,
                }),
            }),
        }
    }

    /// The client id that is signed.
    pub fn client_id(&self) -> &ClientId {
        &self.inner.client_id
    }

    /// The mode's name: `Signature`, `Token`, `DeviceCredential` or `Custom`.
    pub fn mode_name(&self) -> &'static str {
        self.read(|state| state.mode.name())
    }

    /// The user name and password for the next CONNECT.
    pub fn current(&self) -> Result<sansmq_driver::Credentials, CredentialsError> {
        self.read(|state| {
            if state.tokens_invalidated {
                return Err(CredentialsError::TokensInvalidated);
            }
            state.mode.connect_credentials(&self.inner.client_id)
        })
    }

    /// Replaces all tokens (Token mode only); later connects send these. Clears
    /// [`invalidate_tokens`](Self::invalidate_tokens).
    pub fn set_tokens(
        &self,
        tokens: impl IntoIterator<Item = Token>,
    ) -> Result<(), CredentialsError> {
        let tokens: Vec<Token> = tokens.into_iter().collect();
        check_tokens(&tokens)?;
        self.write(|state| match &mut state.mode {
            AuthMode::Token {
                tokens: current, ..
            } => {
                *current = tokens;
                state.tokens_invalidated = false;
                Ok(())
            }
            other => Err(CredentialsError::NotTokenMode { mode: other.name() }),
        })
    }

    /// Replaces the token of the same type, or adds it (Token mode only): what to do once the
    /// broker acknowledged a `$SYS/uploadToken`. Clears
    /// [`invalidate_tokens`](Self::invalidate_tokens).
    pub fn update_token(&self, token: Token) -> Result<(), CredentialsError> {
        self.write(|state| match &mut state.mode {
            AuthMode::Token { tokens, .. } => {
                match tokens.iter_mut().find(|t| t.kind() == token.kind()) {
                    Some(slot) => *slot = token,
                    None => tokens.push(token),
                }
                state.tokens_invalidated = false;
                Ok(())
            }
            other => Err(CredentialsError::NotTokenMode { mode: other.name() }),
        })
    }

    /// Makes [`current`](Self::current) fail until new tokens are set: after the broker's
    /// `$SYS/tokenInvalidNotice`, reconnecting with the same tokens would only be refused.
    pub fn invalidate_tokens(&self) {
        self.write(|state| state.tokens_invalidated = true);
    }

    /// Takes in a token notice from the broker: after [`TokenNotice::Invalid`] these
    /// credentials stop signing ([`invalidate_tokens`](Self::invalidate_tokens)), so automatic
    /// reconnects wait for new tokens instead of retrying with refused ones. What
    /// [`ApsaraMqEvents::with_credentials`](crate::ApsaraMqEvents::with_credentials) does for the
    /// blocking client; call it for the async client's messages:
    ///
    /// ```
    /// use sansmq_apsaramq::{
    ///     ApsaraMqCredentials, AuthMode, ClientId, Incoming, Token, TokenType, classify,
    /// };
    ///
    /// let me = ClientId::new("GID_demo", "device-1").unwrap();
    /// let token = Token::new(TokenType::RW, "t").unwrap();
    /// let credentials = ApsaraMqCredentials::new(AuthMode::token("LTAI", "mqtt-x", [token]), me.clone());
    /// // A message from the async client's `Events::next_message`:
    /// let (topic, payload) = ("$SYS/tokenInvalidNotice", br#"{"code":"TokenRevoked","type":"RW"}"#);
    /// if let Incoming::Notice(Ok(notice)) = classify(topic, payload, "demo", &me) {
    ///     credentials.observe(&notice);
    /// }
    /// assert!(credentials.current().is_err());
    /// ```
    pub fn observe(&self, notice: &TokenNotice) {
        if matches!(notice, TokenNotice::Invalid { .. }) {
            self.invalidate_tokens();
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        // A panic elsewhere while holding the lock cannot leave `State` half-written (every
        // write is a single assignment), so a poisoned lock is still good to read.
        f(&self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

impl sansmq_driver::CredentialsProvider for ApsaraMqCredentials {
    fn credentials(&self) -> Result<sansmq_driver::Credentials, String> {
        self.current().map_err(|e| e.to_string())
    }
}

impl fmt::Debug for ApsaraMqCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.read(|state| {
            f.debug_struct("ApsaraMqCredentials")
                .field("client_id", &self.inner.client_id)
                .field("mode", &state.mode)
                .field("tokens_invalidated", &state.tokens_invalidated)
                .finish()
        })
    }
}

#[cfg(test)]
mod tests {
    use sansmq_driver::CredentialsProvider as _;

    use super::*;
    use crate::credentials::{AccessKey, TokenType};

    const KEY_ID: &str = "LTAI5tTestKey";
    const SECRET: &str = "secretKey123";
    const INSTANCE: &str = "mqtt-cn-test";
    const EXPECTED: &str = "WUp3wMiZLkLANz/so65nilEQlic=";

    fn client_id() -> ClientId {
        ClientId::parse("GID_test@@@device-001").unwrap()
    }

    fn password(credentials: &sansmq_driver::Credentials) -> &str {
        std::str::from_utf8(credentials.password.as_deref().unwrap()).unwrap()
    }

    fn token(kind: TokenType, value: &str) -> Token {
        Token::new(kind, value).unwrap()
    }

    #[test]
    fn provider_signs_for_its_client_id_on_every_call() {
        let provider = ApsaraMqCredentials::new(
            AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE),
            client_id(),
        );
        assert_eq!(provider.client_id(), &client_id());
        assert_eq!(provider.mode_name(), "Signature");
        for _ in 0..2 {
            let login = provider.credentials().unwrap();
            assert_eq!(login.username, "Signature|LTAI5tTestKey|mqtt-cn-test");
            assert_eq!(password(&login), EXPECTED);
        }
    }

    #[test]
    fn provider_token_refresh_is_seen_by_every_clone() {
        let provider = ApsaraMqCredentials::new(
            AuthMode::token(
                KEY_ID,
                INSTANCE,
                [token(TokenType::R, "r1"), token(TokenType::W, "w1")],
            ),
            client_id(),
        );
        let handed_to_client = provider.clone();
        assert_eq!(password(&handed_to_client.current().unwrap()), "R|r1|W|w1");

        provider.update_token(token(TokenType::W, "w2")).unwrap();
        assert_eq!(password(&handed_to_client.current().unwrap()), "R|r1|W|w2");

        provider.update_token(token(TokenType::RW, "rw1")).unwrap();
        assert_eq!(
            password(&handed_to_client.current().unwrap()),
            "R|r1|W|w2|RW|rw1"
        );

        provider.set_tokens([token(TokenType::RW, "rw2")]).unwrap();
        assert_eq!(password(&handed_to_client.current().unwrap()), "RW|rw2");

        assert_eq!(
            provider.set_tokens([]).unwrap_err(),
            CredentialsError::NoTokens
        );
        assert_eq!(
            provider
                .set_tokens([token(TokenType::W, "a"), token(TokenType::W, "b")])
                .unwrap_err(),
            CredentialsError::DuplicateTokenType(TokenType::W)
        );
        // A refused set leaves the tokens as they were.
        assert_eq!(password(&handed_to_client.current().unwrap()), "RW|rw2");
    }

    #[test]
    fn provider_refuses_to_reuse_invalidated_tokens() {
        let provider = ApsaraMqCredentials::new(
            AuthMode::token(KEY_ID, INSTANCE, [token(TokenType::RW, "old")]),
            client_id(),
        );
        provider.invalidate_tokens();
        assert_eq!(
            provider.current().unwrap_err(),
            CredentialsError::TokensInvalidated
        );
        let message = provider.credentials().unwrap_err();
        assert!(message.contains("invalid"), "{message}");

        provider.set_tokens([token(TokenType::RW, "new")]).unwrap();
        assert_eq!(password(&provider.current().unwrap()), "RW|new");

        provider.invalidate_tokens();
        provider
            .update_token(token(TokenType::RW, "newer"))
            .unwrap();
        assert_eq!(password(&provider.current().unwrap()), "RW|newer");
    }

    #[test]
    fn tokens_apply_only_to_token_mode() {
        let provider = ApsaraMqCredentials::new(
            AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE),
            client_id(),
        );
        let error = provider.set_tokens([token(TokenType::R, "t")]).unwrap_err();
        assert_eq!(error, CredentialsError::NotTokenMode { mode: "Signature" });
        assert_eq!(
            provider.update_token(token(TokenType::R, "t")).unwrap_err(),
            CredentialsError::NotTokenMode { mode: "Signature" }
        );
        assert_eq!(password(&provider.current().unwrap()), EXPECTED);
    }
}
