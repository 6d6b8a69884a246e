//! [`apsaramq_options`]: connect options set up for ApsaraMQ, and checks that refuse, with the
//! reason, what ApsaraMQ does not support.

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::{BrokerRules, ConnectOptions, OutgoingPublish, Will};

use crate::{ApsaraMqCredentials, AuthMode, ClientId, Error, TopicRules};

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
/// reconnect after 1 s doubling to 60 s with jitter, and [`ApsaraMqRules`]: the client refuses,
/// with the reason and before sending anything, a will, a retained message, a payload over
/// 64 KiB, QoS 2 on a persistent session and topics over 128 characters. Chain further setters on
/// the result as usual.
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
        .credentials_provider(credentials.clone())
        .broker_rules(ApsaraMqRules::default()))
}

/// ApsaraMQ's limits as [`BrokerRules`], installed by [`apsaramq_options`]: what the broker
/// would discard, or answer by closing the connection, fails at the call instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApsaraMqRules {
    /// The topic length limit (default 128 characters).
    pub topics: TopicRules,
}

impl BrokerRules for ApsaraMqRules {
    fn check_connect(&self, will: Option<&Will>, _clean_session: bool) -> Result<(), String> {
        check_will(will).map_err(|e| e.to_string())
    }

    fn check_publish(&self, publish: &OutgoingPublish<'_>) -> Result<(), String> {
        check_retain(publish.retain)
            .and_then(|()| check_payload(publish.payload_len))
            .and_then(|()| check_qos(publish.qos, publish.clean_session))
            .and_then(|()| Ok(self.topics.check_name(publish.topic).map(drop)?))
            .map_err(|e| e.to_string())
    }

    fn check_subscribe(&self, filter: &str, qos: QoS, clean_session: bool) -> Result<(), String> {
        check_qos(qos, clean_session)
            .and_then(|()| Ok(self.topics.check_filter(filter).map(drop)?))
            .map_err(|e| e.to_string())
    }
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
    fn preset_rules_refuse_what_apsaramq_does_not_support() {
        let rules = ApsaraMqRules::default();
        let publish = |topic, payload_len, qos, retain, clean_session| OutgoingPublish {
            topic,
            payload_len,
            qos,
            retain,
            clean_session,
        };
        let ok = publish("p/a", MAX_PAYLOAD, QoS::ExactlyOnce, false, true);
        assert_eq!(rules.check_publish(&ok), Ok(()));
        let refusals = [
            (publish("p/a", 1, QoS::AtLeastOnce, true, true), "retained"),
            (
                publish("p/a", MAX_PAYLOAD + 1, QoS::AtLeastOnce, false, true),
                "64 KiB",
            ),
            (publish("p/a", 1, QoS::ExactlyOnce, false, false), "QoS 2"),
        ];
        for (refused, reason) in refusals {
            let error = rules.check_publish(&refused).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
        let long = format!("p/{}", "x".repeat(200));
        assert!(
            rules
                .check_publish(&publish(&long, 1, QoS::AtMostOnce, false, true))
                .is_err()
        );
        assert!(rules.check_subscribe("p/#", QoS::ExactlyOnce, true).is_ok());
        assert!(
            rules
                .check_subscribe("p/#", QoS::ExactlyOnce, false)
                .is_err()
        );
        let will = Will {
            topic: "p/will".into(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        };
        assert!(
            rules
                .check_connect(Some(&will), true)
                .unwrap_err()
                .contains("will")
        );
        assert!(rules.check_connect(None, true).is_ok());
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
            properties: Default::default(),
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
