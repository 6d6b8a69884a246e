//! MQTT 5 properties (MQTT 5.0 section 2.2.2): the optional, typed fields an MQTT 5 packet carries
//! after its variable header, and the rules for which packet may carry which.
//!
//! A property section is a Variable Byte Integer length, then properties, each an identifier and a
//! value. [`Properties`] holds one decoded section: numbers inline, strings and binary data as
//! slices of the received frame (nothing is copied), and an empty section costs no allocation.
//! Decoding takes the [`PropertyContext`] the section belongs to and refuses what the spec refuses
//! there, with a [`PropertyError`] that names the rule and the [`ReasonCode`] to disconnect with.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use sansmq::MqttString;
//! use sansmq::packet::{Properties, PropertyContext};
//!
//! let mut properties = Properties::new();
//! properties.message_expiry_interval = Some(60);
//! properties.set_content_type(Some(MqttString::try_from("text/plain").unwrap()));
//! properties.push_user_property(
//!     MqttString::try_from("trace").unwrap(),
//!     MqttString::try_from("7f3a").unwrap(),
//! );
//!
//! let mut wire = BytesMut::new();
//! properties.encode(PropertyContext::Publish, &mut wire).unwrap();
//! assert_eq!(wire.len(), properties.encoded_len());
//!
//! let wire = wire.freeze();
//! let (decoded, used) = Properties::decode(PropertyContext::Publish, &wire).unwrap();
//! assert_eq!((decoded, used), (properties, wire.len()));
//!
//! // The same section is not allowed in a SUBSCRIBE: Message Expiry Interval belongs to messages.
//! let error = Properties::decode(PropertyContext::Subscribe, &wire).unwrap_err();
//! assert_eq!(error.reason_code().to_u8(), 0x81);
//! ```

mod codec;
mod held;
mod id;

use std::fmt;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;

use self::codec::Scalar;
use super::QoS;
use super::frame::MAX_REMAINING_LENGTH;
use crate::string::MqttString;
use crate::topic::TopicName;

pub(crate) use self::held::{HeldProperties, NO_PROPERTIES, impl_properties};
pub use self::id::{PropertyContext, PropertyId};

/// A Subscription Identifier: 1 to 268,435,455 (MQTT 5.0 section 3.8.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(NonZeroU32);

impl SubscriptionId {
    /// The largest identifier, the largest Variable Byte Integer.
    pub const MAX: Self = match NonZeroU32::new(MAX_REMAINING_LENGTH as u32) {
        Some(max) => Self(max),
        None => Self(NonZeroU32::MIN),
    };

    /// The identifier for `value`, or `None` for 0 and values above 268,435,455.
    pub const fn new(value: u32) -> Option<Self> {
        if value > Self::MAX.get() {
            return None;
        }
        match NonZeroU32::new(value) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The identifier's value.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the Payload Format Indicator says of a payload (MQTT 5.0 section 3.3.2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum PayloadFormat {
    /// 0: unspecified bytes, the same as no indicator.
    #[default]
    Unspecified = 0,
    /// 1: UTF-8 encoded character data.
    Utf8 = 1,
}

/// The properties of one MQTT 5 packet or will (MQTT 5.0 section 2.2.2).
///
/// Numeric and boolean properties are public fields; strings, binary data, Subscription
/// Identifiers and User Properties are behind methods, kept in one list so that a `Properties`
/// stays small (72 bytes on 64-bit targets) and an empty one allocates nothing. Decoded strings
/// and binary data share the frame they came from.
///
/// A `Properties` can hold any property; which ones a packet may carry is checked when encoding
/// ([`encode`](Self::encode) with the packet's [`PropertyContext`]) and decoding. Two sets are equal
/// when they hold the same properties, User Properties (and Subscription Identifiers) in the same
/// order; the order of other properties on the wire does not matter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// Payload Format Indicator (PUBLISH, will).
    pub payload_format_indicator: Option<PayloadFormat>,
    /// Message Expiry Interval in seconds (PUBLISH, will).
    pub message_expiry_interval: Option<u32>,
    /// Session Expiry Interval in seconds (CONNECT, CONNACK, DISCONNECT); `u32::MAX` never expires.
    pub session_expiry_interval: Option<u32>,
    /// Server Keep Alive in seconds (CONNACK).
    pub server_keep_alive: Option<u16>,
    /// Request Problem Information (CONNECT).
    pub request_problem_information: Option<bool>,
    /// Will Delay Interval in seconds (will).
    pub will_delay_interval: Option<u32>,
    /// Request Response Information (CONNECT).
    pub request_response_information: Option<bool>,
    /// Receive Maximum (CONNECT, CONNACK); never 0.
    pub receive_maximum: Option<NonZeroU16>,
    /// Topic Alias Maximum (CONNECT, CONNACK).
    pub topic_alias_maximum: Option<u16>,
    /// Topic Alias (PUBLISH); never 0 (MQTT-3.3.2-8).
    pub topic_alias: Option<NonZeroU16>,
    /// Maximum QoS (CONNACK): [`QoS::AtMostOnce`] or [`QoS::AtLeastOnce`]; encoding refuses
    /// [`QoS::ExactlyOnce`], which is what its absence means.
    pub maximum_qos: Option<QoS>,
    /// Retain Available (CONNACK).
    pub retain_available: Option<bool>,
    /// Maximum Packet Size in bytes (CONNECT, CONNACK); never 0.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Wildcard Subscription Available (CONNACK).
    pub wildcard_subscription_available: Option<bool>,
    /// Subscription Identifier Available (CONNACK).
    pub subscription_identifier_available: Option<bool>,
    /// Shared Subscription Available (CONNACK).
    pub shared_subscription_available: Option<bool>,
    /// The variable-length properties, sorted by identifier; repeated ones in the order they came.
    entries: Vec<Entry>,
}

/// A variable-length property, or one that may repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Content Type, Response Topic (checked as a topic name), Assigned Client Identifier,
    /// Authentication Method, Response Information, Server Reference, Reason String.
    String(PropertyId, MqttString),
    /// Correlation Data, Authentication Data.
    Binary(PropertyId, Bytes),
    SubscriptionId(SubscriptionId),
    User(MqttString, MqttString),
}

impl Entry {
    fn id(&self) -> PropertyId {
        match self {
            Self::String(id, _) | Self::Binary(id, _) => *id,
            Self::SubscriptionId(_) => PropertyId::SubscriptionIdentifier,
            Self::User(..) => PropertyId::UserProperty,
        }
    }
}

impl Properties {
    /// No properties.
    pub const fn new() -> Self {
        Self {
            payload_format_indicator: None,
            message_expiry_interval: None,
            session_expiry_interval: None,
            server_keep_alive: None,
            request_problem_information: None,
            will_delay_interval: None,
            request_response_information: None,
            receive_maximum: None,
            topic_alias_maximum: None,
            topic_alias: None,
            maximum_qos: None,
            retain_available: None,
            maximum_packet_size: None,
            wildcard_subscription_available: None,
            subscription_identifier_available: None,
            shared_subscription_available: None,
            entries: Vec::new(),
        }
    }

    /// Whether there is no property at all: the section encodes as a single zero byte
    /// (MQTT 5.0 section 2.2.2.1).
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Field by field rather than through `scalars()`, and with `&` rather than `&&` so the
        // compiler can test them all without a branch each: every MQTT 3.1.1 encode asks.
        self.entries.is_empty()
            & self.payload_format_indicator.is_none()
            & self.message_expiry_interval.is_none()
            & self.session_expiry_interval.is_none()
            & self.server_keep_alive.is_none()
            & self.request_problem_information.is_none()
            & self.will_delay_interval.is_none()
            & self.request_response_information.is_none()
            & self.receive_maximum.is_none()
            & self.topic_alias_maximum.is_none()
            & self.topic_alias.is_none()
            & self.maximum_qos.is_none()
            & self.retain_available.is_none()
            & self.maximum_packet_size.is_none()
            & self.wildcard_subscription_available.is_none()
            & self.subscription_identifier_available.is_none()
            & self.shared_subscription_available.is_none()
    }

    /// Content Type (PUBLISH, will).
    pub fn content_type(&self) -> Option<&MqttString> {
        self.string(PropertyId::ContentType)
    }

    /// Sets or removes the Content Type.
    pub fn set_content_type(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::ContentType, value);
    }

    /// Response Topic (PUBLISH, will): a topic name, without wildcards (MQTT-3.3.2-14).
    pub fn response_topic(&self) -> Option<TopicName> {
        self.string(PropertyId::ResponseTopic)
            .map(|s| TopicName::from_checked(s.clone().into_bytes()))
    }

    /// Sets or removes the Response Topic.
    pub fn set_response_topic(&mut self, value: Option<TopicName>) {
        self.set_string(
            PropertyId::ResponseTopic,
            value.map(|topic| topic.as_mqtt_str().clone()),
        );
    }

    /// Correlation Data (PUBLISH, will).
    pub fn correlation_data(&self) -> Option<&Bytes> {
        self.binary(PropertyId::CorrelationData)
    }

    /// Sets or removes the Correlation Data; at most 65,535 bytes, which encoding checks.
    pub fn set_correlation_data(&mut self, value: Option<Bytes>) {
        self.set_binary(PropertyId::CorrelationData, value);
    }

    /// The Subscription Identifiers, in order: several in a PUBLISH that matched several
    /// subscriptions, at most one in SUBSCRIBE.
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = SubscriptionId> + '_ {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::SubscriptionId(id) => Some(*id),
            _ => None,
        })
    }

    /// Adds a Subscription Identifier after those already there.
    pub fn push_subscription_identifier(&mut self, id: SubscriptionId) {
        self.push(Entry::SubscriptionId(id));
    }

    /// Removes every Subscription Identifier.
    pub fn clear_subscription_identifiers(&mut self) {
        self.entries
            .retain(|entry| !matches!(entry, Entry::SubscriptionId(_)));
    }

    /// Assigned Client Identifier (CONNACK).
    pub fn assigned_client_identifier(&self) -> Option<&MqttString> {
        self.string(PropertyId::AssignedClientIdentifier)
    }

    /// Sets or removes the Assigned Client Identifier.
    pub fn set_assigned_client_identifier(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::AssignedClientIdentifier, value);
    }

    /// Authentication Method (CONNECT, CONNACK, AUTH).
    pub fn authentication_method(&self) -> Option<&MqttString> {
        self.string(PropertyId::AuthenticationMethod)
    }

    /// Sets or removes the Authentication Method.
    pub fn set_authentication_method(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::AuthenticationMethod, value);
    }

    /// Authentication Data (CONNECT, CONNACK, AUTH).
    pub fn authentication_data(&self) -> Option<&Bytes> {
        self.binary(PropertyId::AuthenticationData)
    }

    /// Sets or removes the Authentication Data; at most 65,535 bytes, which encoding checks.
    pub fn set_authentication_data(&mut self, value: Option<Bytes>) {
        self.set_binary(PropertyId::AuthenticationData, value);
    }

    /// Response Information (CONNACK).
    pub fn response_information(&self) -> Option<&MqttString> {
        self.string(PropertyId::ResponseInformation)
    }

    /// Sets or removes the Response Information.
    pub fn set_response_information(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::ResponseInformation, value);
    }

    /// Server Reference (CONNACK, DISCONNECT).
    pub fn server_reference(&self) -> Option<&MqttString> {
        self.string(PropertyId::ServerReference)
    }

    /// Sets or removes the Server Reference.
    pub fn set_server_reference(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::ServerReference, value);
    }

    /// Reason String (acknowledgements, DISCONNECT, AUTH).
    pub fn reason_string(&self) -> Option<&MqttString> {
        self.string(PropertyId::ReasonString)
    }

    /// Sets or removes the Reason String.
    pub fn set_reason_string(&mut self, value: Option<MqttString>) {
        self.set_string(PropertyId::ReasonString, value);
    }

    /// The User Properties as (name, value) pairs, in the order they came (MQTT 5.0 section
    /// 3.3.2.3.7: the order is kept); a name may repeat.
    pub fn user_properties(&self) -> impl Iterator<Item = (&MqttString, &MqttString)> + '_ {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::User(name, value) => Some((name, value)),
            _ => None,
        })
    }

    /// Adds a User Property after those already there.
    pub fn push_user_property(&mut self, name: MqttString, value: MqttString) {
        self.push(Entry::User(name, value));
    }

    /// Removes every User Property.
    pub fn clear_user_properties(&mut self) {
        self.entries
            .retain(|entry| !matches!(entry, Entry::User(..)));
    }

    fn string(&self, id: PropertyId) -> Option<&MqttString> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::String(entry_id, s) if *entry_id == id => Some(s),
            _ => None,
        })
    }

    fn binary(&self, id: PropertyId) -> Option<&Bytes> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::Binary(entry_id, b) if *entry_id == id => Some(b),
            _ => None,
        })
    }

    fn set_string(&mut self, id: PropertyId, value: Option<MqttString>) {
        self.entries.retain(|entry| entry.id() != id);
        if let Some(value) = value {
            self.push(Entry::String(id, value));
        }
    }

    fn set_binary(&mut self, id: PropertyId, value: Option<Bytes>) {
        self.entries.retain(|entry| entry.id() != id);
        if let Some(value) = value {
            self.push(Entry::Binary(id, value));
        }
    }

    /// Inserts after every entry with the same or a lower identifier, keeping the list sorted.
    fn push(&mut self, entry: Entry) {
        let id = entry.id();
        let at = self.entries.partition_point(|e| e.id() <= id);
        self.entries.insert(at, entry);
    }
}

impl fmt::Debug for Properties {
    /// Lists only the properties present. Authentication Data is redacted: it may be a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for (id, value) in self.scalars() {
            match value {
                Some(Scalar::Byte(v)) => list.entry(&id, &v),
                Some(Scalar::TwoBytes(v)) => list.entry(&id, &v),
                Some(Scalar::FourBytes(v)) => list.entry(&id, &v),
                None => &mut list,
            };
        }
        for entry in &self.entries {
            match entry {
                Entry::String(id, s) => list.entry(id, s),
                Entry::Binary(PropertyId::AuthenticationData, b) => list.entry(
                    &PropertyId::AuthenticationData,
                    &format_args!("<{} bytes>", b.len()),
                ),
                Entry::Binary(id, b) => list.entry(id, b),
                Entry::SubscriptionId(id) => list.entry(&PropertyId::SubscriptionIdentifier, id),
                Entry::User(name, value) => list.entry(&PropertyId::UserProperty, &(name, value)),
            };
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(value: &str) -> MqttString {
        MqttString::try_from(value).unwrap()
    }

    #[test]
    fn setters_replace_and_remove() {
        let mut properties = Properties::new();
        properties.set_reason_string(Some(s("one")));
        properties.set_reason_string(Some(s("two")));
        assert_eq!(properties.reason_string().unwrap(), "two");
        properties.push_user_property(s("k"), s("v"));
        properties.set_reason_string(None);
        assert_eq!(properties.reason_string(), None);
        assert_eq!(properties.user_properties().count(), 1);
        properties.clear_user_properties();
        assert!(properties.is_empty());
    }

    #[test]
    fn debug_lists_what_is_there_and_hides_authentication_data() {
        let mut properties = Properties::new();
        properties.receive_maximum = NonZeroU16::new(10);
        properties.set_authentication_method(Some(s("SCRAM-SHA-1")));
        properties.set_authentication_data(Some(Bytes::from_static(b"secret-proof")));
        let debug = format!("{properties:?}");
        assert_eq!(
            debug,
            "{ReceiveMaximum: 10, AuthenticationMethod: \"SCRAM-SHA-1\", AuthenticationData: <12 bytes>}"
        );
        assert!(!debug.contains("secret"));
    }

    /// Decoding moves a `Properties` around and a packet will hold one: numbers inline and the
    /// variable-length rest in one list keep it at nine words, where a field per property would
    /// take over 380 bytes.
    #[test]
    fn properties_stay_small() {
        assert_eq!(std::mem::size_of::<Properties>(), 72);
    }
}
