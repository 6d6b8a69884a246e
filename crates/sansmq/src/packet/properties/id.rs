//! Property identifiers, and the packets each may go in (MQTT 5.0 section 2.2.2.2, table 2-4).

use std::fmt;

/// Where a property section sits: the packet it belongs to, or a CONNECT's will.
///
/// Each property is allowed in some of these only (MQTT 5.0 section 2.2.2.2, table 2-4).
/// [`ReasonCode::is_valid_in`](crate::packet::ReasonCode::is_valid_in) takes it too, for the packets that
/// carry a Reason Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PropertyContext {
    /// CONNECT's own properties (MQTT 5.0 section 3.1.2.11).
    Connect,
    /// The will properties in CONNECT's payload (MQTT 5.0 section 3.1.3.2).
    Will,
    /// CONNACK (3.2.2.3).
    ConnAck,
    /// PUBLISH (3.3.2.3).
    Publish,
    /// PUBACK (3.4.2.2).
    PubAck,
    /// PUBREC (3.5.2.2).
    PubRec,
    /// PUBREL (3.6.2.2).
    PubRel,
    /// PUBCOMP (3.7.2.2).
    PubComp,
    /// SUBSCRIBE (3.8.2.1).
    Subscribe,
    /// SUBACK (3.9.2.1).
    SubAck,
    /// UNSUBSCRIBE (3.10.2.1).
    Unsubscribe,
    /// UNSUBACK (3.11.2.1).
    UnsubAck,
    /// DISCONNECT (3.14.2.2).
    Disconnect,
    /// AUTH (3.15.2.2).
    Auth,
}

impl PropertyContext {
    /// Every context, in the order of the spec.
    pub const ALL: [Self; 14] = [
        Self::Connect,
        Self::Will,
        Self::ConnAck,
        Self::Publish,
        Self::PubAck,
        Self::PubRec,
        Self::PubRel,
        Self::PubComp,
        Self::Subscribe,
        Self::SubAck,
        Self::Unsubscribe,
        Self::UnsubAck,
        Self::Disconnect,
        Self::Auth,
    ];

    /// The packet's name as the spec writes it, such as `"PUBACK"`, or `"will properties"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Will => "will properties",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

impl fmt::Display for PropertyContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A property identifier (MQTT 5.0 section 2.2.2.2, table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PropertyId {
    /// 0x01, Byte: whether the payload is UTF-8.
    PayloadFormatIndicator = 0x01,
    /// 0x02, Four Byte Integer: the message's lifetime in seconds.
    MessageExpiryInterval = 0x02,
    /// 0x03, UTF-8 String: the payload's content type.
    ContentType = 0x03,
    /// 0x08, UTF-8 String: the topic name for a response.
    ResponseTopic = 0x08,
    /// 0x09, Binary Data: what ties a response to its request.
    CorrelationData = 0x09,
    /// 0x0B, Variable Byte Integer: the subscription a message matched.
    SubscriptionIdentifier = 0x0B,
    /// 0x11, Four Byte Integer: how long the session outlives the connection, in seconds.
    SessionExpiryInterval = 0x11,
    /// 0x12, UTF-8 String: the client identifier the server chose.
    AssignedClientIdentifier = 0x12,
    /// 0x13, Two Byte Integer: the keep alive the server imposes.
    ServerKeepAlive = 0x13,
    /// 0x15, UTF-8 String: the extended authentication method.
    AuthenticationMethod = 0x15,
    /// 0x16, Binary Data: the authentication method's data.
    AuthenticationData = 0x16,
    /// 0x17, Byte: whether failures may carry a reason string and user properties.
    RequestProblemInformation = 0x17,
    /// 0x18, Four Byte Integer: how long the server waits before publishing the will.
    WillDelayInterval = 0x18,
    /// 0x19, Byte: whether the client asks for response information.
    RequestResponseInformation = 0x19,
    /// 0x1A, UTF-8 String: the basis of response topics.
    ResponseInformation = 0x1A,
    /// 0x1C, UTF-8 String: another server to use.
    ServerReference = 0x1C,
    /// 0x1F, UTF-8 String: a human-readable reason.
    ReasonString = 0x1F,
    /// 0x21, Two Byte Integer: how many QoS 1 and 2 publications the sender takes at once.
    ReceiveMaximum = 0x21,
    /// 0x22, Two Byte Integer: the highest topic alias the sender accepts.
    TopicAliasMaximum = 0x22,
    /// 0x23, Two Byte Integer: a number standing for the topic.
    TopicAlias = 0x23,
    /// 0x24, Byte: the highest QoS the server supports.
    MaximumQos = 0x24,
    /// 0x25, Byte: whether the server supports retained messages.
    RetainAvailable = 0x25,
    /// 0x26, UTF-8 String Pair: an application's name and value; may repeat, in order.
    UserProperty = 0x26,
    /// 0x27, Four Byte Integer: the largest packet the sender accepts.
    MaximumPacketSize = 0x27,
    /// 0x28, Byte: whether the server supports wildcard subscriptions.
    WildcardSubscriptionAvailable = 0x28,
    /// 0x29, Byte: whether the server supports subscription identifiers.
    SubscriptionIdentifierAvailable = 0x29,
    /// 0x2A, Byte: whether the server supports shared subscriptions.
    SharedSubscriptionAvailable = 0x2A,
}

impl PropertyId {
    /// The property for an identifier, or `None` if table 2-4 does not define it.
    pub const fn from_u32(id: u32) -> Option<Self> {
        Some(match id {
            0x01 => Self::PayloadFormatIndicator,
            0x02 => Self::MessageExpiryInterval,
            0x03 => Self::ContentType,
            0x08 => Self::ResponseTopic,
            0x09 => Self::CorrelationData,
            0x0B => Self::SubscriptionIdentifier,
            0x11 => Self::SessionExpiryInterval,
            0x12 => Self::AssignedClientIdentifier,
            0x13 => Self::ServerKeepAlive,
            0x15 => Self::AuthenticationMethod,
            0x16 => Self::AuthenticationData,
            0x17 => Self::RequestProblemInformation,
            0x18 => Self::WillDelayInterval,
            0x19 => Self::RequestResponseInformation,
            0x1A => Self::ResponseInformation,
            0x1C => Self::ServerReference,
            0x1F => Self::ReasonString,
            0x21 => Self::ReceiveMaximum,
            0x22 => Self::TopicAliasMaximum,
            0x23 => Self::TopicAlias,
            0x24 => Self::MaximumQos,
            0x25 => Self::RetainAvailable,
            0x26 => Self::UserProperty,
            0x27 => Self::MaximumPacketSize,
            0x28 => Self::WildcardSubscriptionAvailable,
            0x29 => Self::SubscriptionIdentifierAvailable,
            0x2A => Self::SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// The spec's name, such as `"Receive Maximum"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PayloadFormatIndicator => "Payload Format Indicator",
            Self::MessageExpiryInterval => "Message Expiry Interval",
            Self::ContentType => "Content Type",
            Self::ResponseTopic => "Response Topic",
            Self::CorrelationData => "Correlation Data",
            Self::SubscriptionIdentifier => "Subscription Identifier",
            Self::SessionExpiryInterval => "Session Expiry Interval",
            Self::AssignedClientIdentifier => "Assigned Client Identifier",
            Self::ServerKeepAlive => "Server Keep Alive",
            Self::AuthenticationMethod => "Authentication Method",
            Self::AuthenticationData => "Authentication Data",
            Self::RequestProblemInformation => "Request Problem Information",
            Self::WillDelayInterval => "Will Delay Interval",
            Self::RequestResponseInformation => "Request Response Information",
            Self::ResponseInformation => "Response Information",
            Self::ServerReference => "Server Reference",
            Self::ReasonString => "Reason String",
            Self::ReceiveMaximum => "Receive Maximum",
            Self::TopicAliasMaximum => "Topic Alias Maximum",
            Self::TopicAlias => "Topic Alias",
            Self::MaximumQos => "Maximum QoS",
            Self::RetainAvailable => "Retain Available",
            Self::UserProperty => "User Property",
            Self::MaximumPacketSize => "Maximum Packet Size",
            Self::WildcardSubscriptionAvailable => "Wildcard Subscription Available",
            Self::SubscriptionIdentifierAvailable => "Subscription Identifier Available",
            Self::SharedSubscriptionAvailable => "Shared Subscription Available",
        }
    }

    /// Whether table 2-4 allows the property in `context`.
    pub const fn is_allowed_in(self, context: PropertyContext) -> bool {
        self.contexts() & context.bit() != 0
    }

    /// Whether the property may appear more than once in `context`: User Property wherever it is
    /// allowed, Subscription Identifier in PUBLISH (a message matching several subscriptions,
    /// MQTT 5.0 section 3.3.4). Every other repeat is a Protocol Error.
    pub const fn is_repeatable_in(self, context: PropertyContext) -> bool {
        match self {
            Self::UserProperty => self.is_allowed_in(context),
            Self::SubscriptionIdentifier => matches!(context, PropertyContext::Publish),
            _ => false,
        }
    }

    /// The contexts of table 2-4, as a set of [`PropertyContext::bit`]s.
    const fn contexts(self) -> u16 {
        use PropertyContext as C;
        match self {
            Self::PayloadFormatIndicator
            | Self::MessageExpiryInterval
            | Self::ContentType
            | Self::ResponseTopic
            | Self::CorrelationData => C::Publish.bit() | C::Will.bit(),
            Self::SubscriptionIdentifier => C::Publish.bit() | C::Subscribe.bit(),
            Self::SessionExpiryInterval => {
                C::Connect.bit() | C::ConnAck.bit() | C::Disconnect.bit()
            }
            Self::AssignedClientIdentifier
            | Self::ServerKeepAlive
            | Self::ResponseInformation
            | Self::MaximumQos
            | Self::RetainAvailable
            | Self::WildcardSubscriptionAvailable
            | Self::SubscriptionIdentifierAvailable
            | Self::SharedSubscriptionAvailable => C::ConnAck.bit(),
            Self::AuthenticationMethod | Self::AuthenticationData => {
                C::Connect.bit() | C::ConnAck.bit() | C::Auth.bit()
            }
            Self::RequestProblemInformation | Self::RequestResponseInformation => C::Connect.bit(),
            Self::WillDelayInterval => C::Will.bit(),
            Self::ServerReference => C::ConnAck.bit() | C::Disconnect.bit(),
            Self::ReasonString => {
                C::ConnAck.bit()
                    | C::PubAck.bit()
                    | C::PubRec.bit()
                    | C::PubRel.bit()
                    | C::PubComp.bit()
                    | C::SubAck.bit()
                    | C::UnsubAck.bit()
                    | C::Disconnect.bit()
                    | C::Auth.bit()
            }
            Self::ReceiveMaximum | Self::TopicAliasMaximum | Self::MaximumPacketSize => {
                C::Connect.bit() | C::ConnAck.bit()
            }
            Self::TopicAlias => C::Publish.bit(),
            // Every context: all 14 bits.
            Self::UserProperty => (1 << PropertyContext::ALL.len()) - 1,
        }
    }
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_2_4_allows_user_properties_everywhere_and_topic_alias_only_in_publish() {
        for context in PropertyContext::ALL {
            assert!(PropertyId::UserProperty.is_allowed_in(context));
            assert!(PropertyId::UserProperty.is_repeatable_in(context));
            assert_eq!(
                PropertyId::TopicAlias.is_allowed_in(context),
                context == PropertyContext::Publish
            );
        }
        // Every defined identifier maps back to itself.
        let defined: Vec<PropertyId> = (0..=0x7F).filter_map(PropertyId::from_u32).collect();
        assert_eq!(defined.len(), 27);
        for id in defined {
            assert_eq!(PropertyId::from_u32(id as u32), Some(id));
        }
    }
}
