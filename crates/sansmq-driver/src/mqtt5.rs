//! [`Mqtt5Options`]: what a connection asks for when it speaks MQTT 5.0.

use std::fmt;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use sansmq::MqttString;
use sansmq::client::Authenticator;
use sansmq::packet::Properties;

use crate::Error;

/// MQTT 5.0 settings, given with [`ConnectOptions::mqtt5`](crate::ConnectOptions::mqtt5), which
/// also switches the connection to MQTT 5.0. They have no meaning in MQTT 3.1.1, so a 3.1.1
/// connection cannot carry them.
///
/// Defaults are the protocol's own: the session ends with the connection (Session Expiry
/// Interval 0) unless [`session_expiry`](Self::session_expiry) says otherwise, the server may send
/// 65,535 unacknowledged messages, sets no Topic Alias for us, and the client aliases the topics
/// it sends most ([`sansmq::client::DEFAULT_OUTGOING_TOPIC_ALIASES`], within the server's
/// maximum).
///
/// ```
/// use std::time::Duration;
/// use sansmq_driver::{ConnectOptions, Mqtt5Options};
///
/// # fn main() -> Result<(), sansmq_driver::Error> {
/// let v5 = Mqtt5Options::new()
///     .session_expiry(Duration::from_secs(3600)) // kept an hour after a disconnect
///     .receive_maximum(100)
///     .user_property("fleet", "north")?;
/// let options = ConnectOptions::new("tcp://127.0.0.1:1883", "device-1")?.mqtt5(v5);
/// let config = options.core_config()?;
/// assert_eq!(config.session_expiry_interval, Some(3600));
/// assert_eq!(config.receive_maximum.map(|m| m.get()), Some(100));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mqtt5Options {
    session_expiry: Option<Duration>,
    receive_maximum: Option<NonZeroU16>,
    topic_alias_maximum: u16,
    outgoing_topic_aliases: u16,
    properties: Properties,
    response_topic: Option<String>,
    authenticator: Option<AuthenticatorFactory>,
}

/// Makes each client its own [`Authenticator`] (options are cloned, and an authenticator holds
/// the state of one exchange).
#[derive(Clone)]
struct AuthenticatorFactory(Arc<dyn Fn() -> Box<dyn Authenticator> + Send + Sync>);

impl fmt::Debug for AuthenticatorFactory {
    /// An authenticator may hold secrets: only its method is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Authenticator")
            .field(&(self.0)().method())
            .finish()
    }
}

impl PartialEq for AuthenticatorFactory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AuthenticatorFactory {}

impl Default for Mqtt5Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Mqtt5Options {
    /// The protocol's defaults (see the type's docs).
    pub fn new() -> Self {
        Self {
            session_expiry: None,
            receive_maximum: None,
            topic_alias_maximum: 0,
            outgoing_topic_aliases: sansmq::client::DEFAULT_OUTGOING_TOPIC_ALIASES,
            properties: Properties::new(),
            response_topic: None,
            authenticator: None,
        }
    }

    /// Enhanced authentication (MQTT 5.0 section 4.12): each client made with these options gets
    /// an authenticator from `make`, whose method and first data go in every CONNECT and which
    /// answers the server's AUTH challenges (SCRAM and the like); the clients' `reauthenticate`
    /// starts a new exchange on the open connection. A failed exchange ends the connection with
    /// the server's Reason Code, or with 0x82 Protocol Error when the server's proof is wrong.
    pub fn authenticator<F, A>(mut self, make: F) -> Self
    where
        F: Fn() -> A + Send + Sync + 'static,
        A: Authenticator + 'static,
    {
        let make = move || Box::new(make()) as Box<dyn Authenticator>;
        self.authenticator = Some(AuthenticatorFactory(Arc::new(make)));
        self
    }

    /// A new authenticator for a client, if these options have one.
    pub(crate) fn make_authenticator(&self) -> Option<Box<dyn Authenticator>> {
        self.authenticator.as_ref().map(|factory| (factory.0)())
    }

    /// How long the server keeps the session after the connection ends (Session Expiry
    /// Interval), in whole seconds, rounded down; `Duration::MAX` (or anything from 2^32 - 1
    /// seconds on) means it never expires. Unset, the session ends with a clean-session
    /// connection and never expires otherwise, as in MQTT 3.1.1.
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        self.session_expiry = Some(expiry);
        self
    }

    /// How many QoS 1/2 messages the server may send us before we acknowledge them (Receive
    /// Maximum); 0 is taken as 1. A server that sends more breaks the protocol, and the
    /// connection ends with Reason Code 0x93.
    pub fn receive_maximum(mut self, messages: u16) -> Self {
        self.receive_maximum = Some(NonZeroU16::new(messages).unwrap_or(NonZeroU16::MIN));
        self
    }

    /// How many Topic Aliases the server may set on the messages it sends us (Topic Alias
    /// Maximum); 0, the default, lets it set none.
    pub fn topic_alias_maximum(mut self, aliases: u16) -> Self {
        self.topic_alias_maximum = aliases;
        self
    }

    /// The most Topic Aliases the client sets on the messages it sends, within the server's Topic
    /// Alias Maximum; 0 sends every topic in full.
    pub fn outgoing_topic_aliases(mut self, aliases: u16) -> Self {
        self.outgoing_topic_aliases = aliases;
        self
    }

    /// A User Property for the CONNECT; repeats and their order are kept.
    pub fn user_property(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let string = |field: &'static str, s: &str| {
            MqttString::try_from(s).map_err(|e| Error::InvalidString {
                field,
                reason: e.to_string(),
            })
        };
        self.properties.push_user_property(
            string("user property name", name)?,
            string("user property value", value)?,
        );
        Ok(self)
    }

    /// Ask the server for Response Information (a topic prefix for request/response) in its
    /// CONNACK.
    pub fn request_response_information(mut self, request: bool) -> Self {
        self.properties.request_response_information = Some(request);
        self
    }

    /// Whether the server may send a Reason String or User Properties with its failures (Request
    /// Problem Information); it may unless told not to.
    pub fn request_problem_information(mut self, request: bool) -> Self {
        self.properties.request_problem_information = Some(request);
        self
    }

    /// The topic the responses to this client's requests come back on (the clients' `request`,
    /// MQTT 5.0 section 4.10); by default `responses/<client id>`. With several clients of one
    /// id in turn, or a broker that grants each client its own branch (ApsaraMQ's
    /// point-to-point topics, a Response Information prefix), name it here.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Self {
        self.response_topic = Some(topic.into());
        self
    }

    /// The response topic set with [`response_topic`](Self::response_topic).
    pub fn response_topic_name(&self) -> Option<&str> {
        self.response_topic.as_deref()
    }

    /// The Session Expiry Interval sent, in seconds, if set.
    pub fn session_expiry_interval(&self) -> Option<u32> {
        self.session_expiry
            .map(|expiry| u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX))
    }

    /// Writes these settings into the core's configuration.
    pub(crate) fn apply(&self, config: &mut sansmq::Config) {
        config.protocol = sansmq::packet::Protocol::Mqtt5;
        config.session_expiry_interval = self.session_expiry_interval();
        config.receive_maximum = self.receive_maximum;
        config.topic_alias_maximum = self.topic_alias_maximum;
        config.outgoing_topic_aliases = self.outgoing_topic_aliases;
        config.connect_properties = self.properties.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectOptions;

    fn config(v5: Mqtt5Options) -> sansmq::Config {
        ConnectOptions::new("tcp://127.0.0.1:1883", "device-1")
            .unwrap()
            .mqtt5(v5)
            .core_config()
            .unwrap()
    }

    #[test]
    fn the_defaults_switch_the_protocol_and_ask_for_nothing_more() {
        let config = config(Mqtt5Options::new());
        assert_eq!(config.protocol, sansmq::packet::Protocol::Mqtt5);
        assert_eq!(config.session_expiry_interval, None);
        assert_eq!(config.receive_maximum, None);
        assert_eq!(config.topic_alias_maximum, 0);
        assert!(config.connect_properties.is_empty());
    }

    #[test]
    fn every_setting_reaches_the_core() {
        let config = config(
            Mqtt5Options::new()
                .session_expiry(Duration::from_millis(90_500))
                .receive_maximum(0)
                .topic_alias_maximum(10)
                .outgoing_topic_aliases(0)
                .user_property("a", "1")
                .unwrap()
                .user_property("a", "2")
                .unwrap()
                .request_response_information(true)
                .request_problem_information(false),
        );
        assert_eq!(config.session_expiry_interval, Some(90));
        assert_eq!(config.receive_maximum, Some(NonZeroU16::MIN));
        assert_eq!(config.topic_alias_maximum, 10);
        assert_eq!(config.outgoing_topic_aliases, 0);
        let users: Vec<_> = config
            .connect_properties
            .user_properties()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_str().to_owned()))
            .collect();
        assert_eq!(users, [("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert_eq!(
            config.connect_properties.request_response_information,
            Some(true)
        );
        assert_eq!(
            config.connect_properties.request_problem_information,
            Some(false)
        );
    }

    #[test]
    fn a_session_that_never_expires() {
        let v5 = Mqtt5Options::new().session_expiry(Duration::MAX);
        assert_eq!(v5.session_expiry_interval(), Some(u32::MAX));
    }

    #[test]
    fn a_user_property_must_be_an_mqtt_string() {
        let refused = Mqtt5Options::new().user_property("nul\0", "x");
        assert!(
            matches!(refused, Err(Error::InvalidString { field, .. }) if field == "user property name")
        );
    }
}
