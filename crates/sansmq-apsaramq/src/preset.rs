//! [`apsaramq_options`]: connect options set up for ApsaraMQ, and checks that refuse, with the
//! reason, what ApsaraMQ does not support.

use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_driver::{BrokerRules, ConnectOptions, Mqtt5Options, OutgoingPublish, Will};

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

/// The longest keep-alive ApsaraMQ's MQTT 5.0 instances take, 8 minutes: asked for more, they
/// answer with this as their Server Keep Alive, and the client uses it.
pub const MQTT5_MAX_KEEP_ALIVE: Duration = Duration::from_secs(8 * 60);

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

/// [`apsaramq_options_with`] speaking MQTT 5.0, for ApsaraMQ's Professional, Enterprise Platinum
/// and Serverless instances: the same login (Signature, Token and DeviceCredential are unchanged
/// on MQTT 5.0), the same settings and rules, and `v5` for what only MQTT 5.0 has
/// ([`Mqtt5Options::new`] for the protocol's defaults: the session ends with the connection, as
/// the preset's clean session says).
///
/// What ApsaraMQ's MQTT 5.0 instances add to the rules: they have no shared subscriptions
/// (`$share/...` is refused at the call), keep-alive is at most [`MQTT5_MAX_KEEP_ALIVE`] (the
/// broker's Server Keep Alive replaces a longer one), and QoS 2 needs a session that ends with
/// the connection (Session Expiry Interval 0). Subscription identifiers go from 1 to 268,435,455
/// and Receive Maximum up to 65,535, as MQTT 5.0 allows anyway.
///
/// ```
/// use std::time::Duration;
/// use sansmq_apsaramq::{AccessKey, ApsaraMqCredentials, AuthMode, ClientId, Mqtt5Options,
///     apsaramq_mqtt5_options};
///
/// # fn main() -> Result<(), sansmq_apsaramq::Error> {
/// let client_id = ClientId::new("GID_test", "device-001")?;
/// let auth = AuthMode::signature(AccessKey::new("LTAI5tTestKey", "secretKey123"), "mqtt-cn-test");
/// let credentials = ApsaraMqCredentials::new(auth, client_id);
/// let v5 = Mqtt5Options::new().receive_maximum(100);
/// let options = apsaramq_mqtt5_options("tcp://127.0.0.1:1883", &credentials, v5)?;
/// assert!(options.mqtt5_options().is_some());
/// // No shared subscriptions on ApsaraMQ.
/// assert!(options.check_subscribe_rules([("$share/g/demo/#", sansmq_apsaramq::QoS::AtLeastOnce)]).is_err());
/// # Ok(())
/// # }
/// ```
pub fn apsaramq_mqtt5_options(
    uri: &str,
    credentials: &ApsaraMqCredentials,
    v5: Mqtt5Options,
) -> Result<ConnectOptions, Error> {
    Ok(apsaramq_options_with(uri, credentials)?.mqtt5(v5))
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
        check_not_shared(filter)
            .and_then(|()| check_qos(qos, clean_session))
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

/// Refuses a shared subscription (`$share/<group>/<filter>`, MQTT 5.0 section 4.8.2): ApsaraMQ
/// has none (its MQTT 5.0 instances say Shared Subscription Available 0). A group id's clients
/// share nothing either: each subscribing client gets its own copy.
pub fn check_not_shared(filter: &str) -> Result<(), Error> {
    if filter.starts_with("$share/") {
        Err(Error::SharedSubscriptionNotSupported {
            filter: filter.to_owned(),
        })
    } else {
        Ok(())
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

/// Refuses QoS 2 on a persistent session (`clean_session == false`: in MQTT 5.0, a Session
/// Expiry Interval other than 0), which ApsaraMQ does not support; use QoS 1 for offline
/// messages.
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
    fn shared_subscriptions_are_refused_with_the_reason() {
        let rules = ApsaraMqRules::default();
        assert!(
            rules
                .check_subscribe("p/share/#", QoS::AtLeastOnce, true)
                .is_ok()
        );
        let error = rules
            .check_subscribe("$share/g/p/#", QoS::AtLeastOnce, true)
            .unwrap_err();
        assert!(error.contains("shared subscription"), "{error}");
        assert!(error.contains("$share/g/p/#"), "{error}");
    }

    #[test]
    fn mqtt5_preset_counts_session_expiry_as_the_persistent_session() {
        let credentials = ApsaraMqCredentials::new(signature(), client_id());
        let uri = "tcp://localhost:1883";
        // Session Expiry Interval 0 (the default): QoS 2 is fine.
        let clean = apsaramq_mqtt5_options(uri, &credentials, Mqtt5Options::new()).unwrap();
        assert_eq!(clean.protocol(), sansmq::packet::Protocol::Mqtt5);
        assert!(
            clean
                .check_publish_rules("p/a", 1, QoS::ExactlyOnce, false)
                .is_ok()
        );
        assert!(
            clean
                .check_subscribe_rules([("p/#", QoS::ExactlyOnce)])
                .is_ok()
        );
        // A session kept after the connection is ApsaraMQ's persistent session, even with Clean
        // Start: QoS 2 is refused on it, QoS 1 is not.
        let kept = Mqtt5Options::new().session_expiry(Duration::from_secs(3600));
        let kept = apsaramq_mqtt5_options(uri, &credentials, kept).unwrap();
        assert!(kept.is_clean_session());
        let error = kept
            .check_publish_rules("p/a", 1, QoS::ExactlyOnce, false)
            .unwrap_err();
        assert!(error.to_string().contains("QoS 2"), "{error}");
        assert!(
            kept.check_subscribe_rules([("p/#", QoS::ExactlyOnce)])
                .is_err()
        );
        assert!(
            kept.check_publish_rules("p/a", 1, QoS::AtLeastOnce, false)
                .is_ok()
        );
        // And the other way round: no expiry, so a kept session ends with the connection.
        let ends = Mqtt5Options::new().session_expiry(Duration::ZERO);
        let ends = apsaramq_mqtt5_options(uri, &credentials, ends)
            .unwrap()
            .clean_session(false);
        assert!(
            ends.check_publish_rules("p/a", 1, QoS::ExactlyOnce, false)
                .is_ok()
        );
        // The MQTT 5.0 rules still refuse what MQTT 3.1.1's do.
        assert!(
            clean
                .check_publish_rules("p/a", 1, QoS::AtLeastOnce, true)
                .is_err()
        );
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
