//! [`Negotiated`]: what the server's CONNACK settled for the current connection — in MQTT 5 its
//! limits and capabilities (MQTT 5.0 section 3.2.2.3), in MQTT 3.1.1 only our own settings.

use std::num::NonZeroU32;
use std::time::Duration;

use super::config::Config;
use crate::packet::{Properties, QoS};
use crate::string::MqttString;

/// The terms of the current (or last) connection, from [`Client::negotiated`](super::Client::negotiated).
///
/// Before the first MQTT 5 CONNACK, and always in MQTT 3.1.1, every capability is available and
/// every limit is the protocol's. The client honours these itself: it never has more QoS 1/2
/// messages unacknowledged than `receive_maximum`, never sends a packet over
/// `maximum_packet_size` (a `publish` that would is refused), never uses more Topic Aliases than
/// `topic_alias_maximum`, pings at `keep_alive`, and refuses locally a QoS above `maximum_qos`,
/// a retained message without `retain_available`, and subscriptions the server said it cannot
/// take.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// How many QoS 1/2 PUBLISHes the server takes unacknowledged (MQTT 5.0 section 3.2.2.3.3);
    /// 65,535 when it says nothing.
    pub receive_maximum: u16,
    /// The largest packet the server accepts (section 3.2.2.3.6); `None`: the protocol's limit.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// How many Topic Aliases the server accepts from us (section 3.2.2.3.8).
    pub topic_alias_maximum: u16,
    /// The keep-alive in force: the server's Server Keep Alive when it sent one (section
    /// 3.2.2.3.14), which replaces ours, else ours.
    pub keep_alive: Duration,
    /// The highest QoS the server takes (section 3.2.2.3.4).
    pub maximum_qos: QoS,
    /// Whether the server keeps retained messages (section 3.2.2.3.5).
    pub retain_available: bool,
    /// Whether subscriptions may use wildcards (section 3.2.2.3.11).
    pub wildcard_subscription_available: bool,
    /// Whether SUBSCRIBE may carry a Subscription Identifier (section 3.2.2.3.12).
    pub subscription_identifiers_available: bool,
    /// Whether `$share/` subscriptions are supported (section 3.2.2.3.13).
    pub shared_subscription_available: bool,
    /// How long the server keeps the session after the connection ends, in seconds (the server's
    /// value when it sent one, else what we asked for); `u32::MAX` is never.
    pub session_expiry_interval: u32,
    /// The client identifier the server assigned when we connected with an empty one (section
    /// 3.2.2.3.7); the client uses it for its later connections.
    pub assigned_client_identifier: Option<MqttString>,
    /// The CONNACK's properties as received, for what the fields above do not cover: Response
    /// Information, Server Reference, Reason String, User Properties, Authentication Method and
    /// Data.
    pub properties: Properties,
}

impl Negotiated {
    /// The terms before (or without) an MQTT 5 CONNACK: everything available, our own keep-alive
    /// and session expiry.
    pub(crate) fn unrestricted(config: &Config) -> Self {
        Self {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            keep_alive: config.keep_alive,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            session_expiry_interval: config.effective_session_expiry(),
            assigned_client_identifier: None,
            properties: Properties::new(),
        }
    }

    /// The terms an MQTT 5 CONNACK with `properties` sets (absent properties mean the protocol's
    /// defaults).
    pub(crate) fn from_connack(config: &Config, properties: Properties) -> Self {
        Self {
            receive_maximum: properties.receive_maximum.map_or(u16::MAX, |n| n.get()),
            maximum_packet_size: properties.maximum_packet_size,
            topic_alias_maximum: properties.topic_alias_maximum.unwrap_or(0),
            keep_alive: properties
                .server_keep_alive
                .map_or(config.keep_alive, |secs| Duration::from_secs(secs.into())),
            maximum_qos: properties.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: properties.retain_available.unwrap_or(true),
            wildcard_subscription_available: properties
                .wildcard_subscription_available
                .unwrap_or(true),
            subscription_identifiers_available: properties
                .subscription_identifier_available
                .unwrap_or(true),
            shared_subscription_available: properties.shared_subscription_available.unwrap_or(true),
            session_expiry_interval: properties
                .session_expiry_interval
                .unwrap_or_else(|| config.effective_session_expiry()),
            assigned_client_identifier: properties.assigned_client_identifier().cloned(),
            properties,
        }
    }
}
