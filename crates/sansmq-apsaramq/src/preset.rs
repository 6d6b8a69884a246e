//! [`apsaramq_options`]: connect options set up for ApsaraMQ, and checks that refuse, with the
//! reason, what ApsaraMQ does not support.

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::{ConnectOptions, Will};

use crate::{ApsaraMqCredentials, AuthMode, ClientId, Error};

/// Keep-alive interval ApsaraMQ recommends; it drops a silent client after 1.5 times this.
pub const KEEP_ALIVE: Duration = Duration::from_secs(90);

/// How long blocking calls wait for the broker, as in Alibaba's quick-start.
pub const TIME_TO_WAIT: Duration = Duration::from_secs(5);

/// How long a connection attempt (TCP, TLS and CONNACK) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first delay before reconnecting; it doubles, with jitter, up to [`RECONNECT_MAX`].
pub const RECONNECT_MIN: Duration = Duration::from_secs(1);

/// The longest delay before reconnecting.
pub const RECONNECT_MAX: Duration = Duration::from_secs(60);

/// The largest payload ApsaraMQ accepts, 64 KiB: it discards bigger messages, and the client
/// ends up in a reconnect loop.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Connect options for ApsaraMQ at `uri` (see [`Endpoint`](crate::Endpoint) for the URIs), as
/// `client_id`, logging in with `auth`, signed afresh on every connect and reconnect.
///
/// MQTT 3.1.1, clean session, keep-alive 90 s, time-to-wait 5 s, connect timeout 10 s, automatic
/// reconnect after 1 s doubling to 60 s with jitter. Chain further setters on the result as usual;
/// but do not add a will ([`check_will`]), and keep QoS 2 for clean sessions ([`check_qos`]).
///
/// The credentials are computed once here, so a Token mode without a token, say, fails now
/// rather than at connect time. For Token mode, use [`apsaramq_options_with`] and keep the
/// [`ApsaraMqCredentials`] to change the tokens later.
///
/// ```
/// use sansmq_apsaramq::{AccessKey, AuthMode, ClientId, Endpoint, apsaramq_options};
///
/// let endpoint = Endpoint::public("mqtt-cn-test").unwrap();
/// let client_id = ClientId::new("GID_test", "device-001").unwrap();
/// let auth = AuthMode::signature(AccessKey::new("LTAI5tTestKey", "secretKey123"), "mqtt-cn-test");
/// let options = apsaramq_options(&endpoint.tcp_uri(), &client_id, auth).unwrap();
/// assert_eq!(options.client_id(), "GID_test@@@device-001");
/// ```
pub fn apsaramq_options(
    uri: &str,
    client_id: &ClientId,
    auth: AuthMode,
) -> Result<ConnectOptions, Error> {
    apsaramq_options_with(uri, &ApsaraMqCredentials::new(auth, client_id.clone()))
}

/// [`apsaramq_options`] with credentials you keep a clone of (clones share their state), so that
/// [`ApsaraMqCredentials::set_tokens`] after a token refresh applies to later reconnects. The
/// client id is the credentials'.
pub fn apsaramq_options_with(
    uri: &str,
    credentials: &ApsaraMqCredentials,
) -> Result<ConnectOptions, Error> {
    credentials.current()?;
    Ok(ConnectOptions::new(uri, credentials.client_id().as_str())?
        .clean_session(true)
        .keep_alive(KEEP_ALIVE)
        .time_to_wait(TIME_TO_WAIT)
        .connect_timeout(CONNECT_TIMEOUT)
        .automatic_reconnect(RECONNECT_MIN, RECONNECT_MAX)
        .credentials_provider(credentials.clone()))
}

/// Refuses a will message: ApsaraMQ does not support them.
pub fn check_will(will: Option<&Will>) -> Result<(), Error> {
    match will {
        None => Ok(()),
        Some(will) => Err(Error::WillNotSupported {
            topic: will.topic.clone(),
        }),
    }
}

/// Refuses the retain flag: ApsaraMQ does not support retained messages.
pub fn check_retain(retain: bool) -> Result<(), Error> {
    if retain {
        Err(Error::RetainNotSupported)
    } else {
        Ok(())
    }
}

/// Refuses QoS 2 on a persistent session (`clean_session == false`), which ApsaraMQ does not
/// support; use QoS 1 for offline messages.
pub fn check_qos(qos: QoS, clean_session: bool) -> Result<(), Error> {
    if qos == QoS::ExactlyOnce && !clean_session {
        Err(Error::Qos2WithPersistentSession)
    } else {
        Ok(())
    }
}

/// Refuses a payload over [`MAX_PAYLOAD`] (64 KiB), which the broker would discard.
///
/// ```
/// use sansmq_apsaramq::{check_payload, MAX_PAYLOAD};
///
/// assert!(check_payload(MAX_PAYLOAD).is_ok());
/// assert!(check_payload(MAX_PAYLOAD + 1).is_err());
/// ```
pub fn check_payload(len: usize) -> Result<(), Error> {
    if len > MAX_PAYLOAD {
        Err(Error::PayloadTooLarge {
            len,
            max: MAX_PAYLOAD,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sansmq_driver::CredentialsProvider as _;

    use super::*;
    use crate::{AccessKey, CredentialsError, Token, TokenType};

    fn client_id() -> ClientId {
        ClientId::new("GID_test", "device-001").unwrap()
    }

    fn signature() -> AuthMode {
        AuthMode::signature(
            AccessKey::new("LTAI5tTestKey", "secretKey123"),
            "mqtt-cn-test",
        )
    }

    #[test]
    fn preset_uses_the_client_id_and_the_apsaramq_settings() {
        let options = apsaramq_options(
            "tcp://mqtt-cn-test.mqtt.aliyuncs.com:1883",
            &client_id(),
            signature(),
        )
        .unwrap();
        assert_eq!(options.client_id(), "GID_test@@@device-001");
        // The settings have no getters; Debug shows them.
        let shown = format!("{options:?}");
        for expected in [
            "keep_alive: 90s",
            "time_to_wait: 5s",
            "connect_timeout: 10s",
            "automatic_reconnect: true",
            "clean_session: true",
            "mqtt-cn-test.mqtt.aliyuncs.com",
        ] {
            assert!(shown.contains(expected), "{expected} not in {shown}");
        }
        assert!(!shown.contains("secretKey123"), "{shown}");
    }

    #[test]
    fn preset_refuses_a_bad_uri() {
        let error = apsaramq_options("http://x", &client_id(), signature()).unwrap_err();
        assert!(matches!(
            error,
            Error::Options(sansmq_driver::Error::InvalidUri { .. })
        ));
    }

    #[test]
    fn preset_fails_early_on_unusable_credentials() {
        let auth = AuthMode::token("LTAI5tTestKey", "mqtt-cn-test", []);
        let error = apsaramq_options("tcp://localhost:1883", &client_id(), auth).unwrap_err();
        assert!(matches!(
            error,
            Error::Credentials(CredentialsError::NoTokens)
        ));
    }

    #[test]
    fn preset_with_kept_credentials_sees_token_updates() {
        let credentials = ApsaraMqCredentials::new(
            AuthMode::token(
                "LTAI5tTestKey",
                "mqtt-cn-test",
                [Token::new(TokenType::RW, "old").unwrap()],
            ),
            client_id(),
        );
        let options = apsaramq_options_with("tcp://localhost:1883", &credentials).unwrap();
        assert_eq!(options.client_id(), "GID_test@@@device-001");
        credentials
            .set_tokens([Token::new(TokenType::RW, "new").unwrap()])
            .unwrap();
        // `options` holds a clone: the same state.
        let login = credentials.credentials().unwrap();
        assert_eq!(login.password.as_deref(), Some(&b"RW|new"[..]));
    }

    #[test]
    fn will_is_refused_with_the_reason() {
        assert!(check_will(None).is_ok());
        let will = Will {
            topic: "parent/will".into(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
        };
        let error = check_will(Some(&will)).unwrap_err();
        assert!(matches!(&error, Error::WillNotSupported { topic } if topic == "parent/will"));
        let message = error.to_string();
        assert!(message.contains("does not support will"), "{message}");
        assert!(message.contains("parent/will"), "{message}");
    }

    #[test]
    fn retain_is_refused_with_the_reason() {
        assert!(check_retain(false).is_ok());
        let error = check_retain(true).unwrap_err();
        assert!(matches!(error, Error::RetainNotSupported));
        assert!(error.to_string().contains("retained"));
    }

    #[test]
    fn qos2_is_refused_only_on_a_persistent_session() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            assert!(check_qos(qos, true).is_ok());
        }
        assert!(check_qos(QoS::AtMostOnce, false).is_ok());
        assert!(check_qos(QoS::AtLeastOnce, false).is_ok());
        let error = check_qos(QoS::ExactlyOnce, false).unwrap_err();
        assert!(matches!(error, Error::Qos2WithPersistentSession));
        let message = error.to_string();
        assert!(message.contains("QoS 2"), "{message}");
        assert!(message.contains("clean session"), "{message}");
    }

    #[test]
    fn payload_limit_is_64_kib() {
        assert_eq!(MAX_PAYLOAD, 65_536);
        assert!(check_payload(0).is_ok());
        assert!(check_payload(65_536).is_ok());
        let error = check_payload(65_537).unwrap_err();
        assert!(matches!(
            error,
            Error::PayloadTooLarge {
                len: 65_537,
                max: 65_536
            }
        ));
        assert!(error.to_string().contains("65537 bytes"));
    }
}
