//! What can go wrong turning bytes into packets ([`DecodeError`]: the peer's fault) and packets into
//! bytes ([`EncodeError`]: the caller's fault).

use std::fmt;

use bytes::Bytes;

use super::{
    ConnectReturnCode, PacketType, PropertyContext, PropertyId, Protocol, QoS, ReasonCode,
};
use crate::string::StringError;
use crate::topic::{TopicError, TopicFilter};

/// A packet on the wire breaks a rule of MQTT 3.1, 3.1.1 or 5.0. One variant per rule; the message
/// names the offending value and, where there is one, the spec's normative statement, and
/// [`reason_code`](Self::reason_code) is the MQTT 5 Reason Code to disconnect with.
///
/// A stream that produced a `DecodeError` cannot be resynchronised: the connection must be closed
/// (MQTT-4.8.0-1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0, or 15 outside MQTT 5: reserved (MQTT 2.2.1).
    ReservedPacketType(u8),
    /// Fixed-header flags other than the packet type requires (MQTT-2.2.2-1, MQTT-2.2.2-2).
    InvalidFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The low four bits of the first byte.
        flags: u8,
    },
    /// PUBLISH with both QoS bits set (MQTT-3.3.1-4).
    PublishQos3,
    /// PUBLISH with DUP set at QoS 0 (MQTT-3.3.1-2).
    DupAtQos0,
    /// Remaining length encoded in more than four bytes (MQTT 2.2.3).
    MalformedRemainingLength,
    /// The frame is bigger than the configured maximum; known from the fixed header alone, before the
    /// body is buffered.
    PacketTooLarge {
        /// Whole frame size, fixed header included.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The body ends before the fields its packet type requires.
    BodyTooShort {
        /// The packet type.
        packet_type: PacketType,
        /// The remaining length the fixed header gave.
        remaining_length: usize,
    },
    /// The body goes on after the last field its packet type defines.
    TrailingBytes {
        /// The packet type.
        packet_type: PacketType,
        /// How many bytes are left over.
        extra: usize,
    },
    /// Packet identifier 0 where a non-zero one is required (MQTT-2.3.1-1).
    ZeroPacketId {
        /// The packet type.
        packet_type: PacketType,
    },
    /// A string field is not a valid MQTT string (MQTT-1.5.3-1, MQTT-1.5.3-2).
    InvalidString {
        /// The field, such as `"client identifier"`.
        field: &'static str,
        /// The rule it broke.
        error: StringError,
    },
    /// A topic name (in PUBLISH or a will) is invalid, e.g. contains a wildcard (MQTT-3.3.2-2).
    InvalidTopicName(TopicError),
    /// A topic filter in SUBSCRIBE or UNSUBSCRIBE is invalid (MQTT-4.7.1-2, MQTT-4.7.1-3).
    InvalidTopicFilter(TopicError),
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    NoTopicFilters {
        /// The packet type.
        packet_type: PacketType,
    },
    /// SUBSCRIBE requests QoS 3 or sets the reserved upper bits of the QoS byte (MQTT-3.8.3-4).
    InvalidRequestedQos {
        /// The filter the byte belongs to.
        filter: TopicFilter,
        /// The byte.
        byte: u8,
    },
    /// SUBACK, or MQTT 5 UNSUBACK, without any return code (MQTT-3.9.3-1, MQTT-3.11.3-1).
    NoReturnCodes {
        /// The packet type.
        packet_type: PacketType,
    },
    /// SUBACK return code other than 0x00, 0x01, 0x02 and 0x80 (MQTT-3.9.3-2).
    InvalidSubackReturnCode(u8),
    /// CONNECT protocol name is neither `MQTT` (3.1.1) nor `MQIsdp` (3.1) (MQTT-3.1.2-1).
    UnknownProtocolName(Bytes),
    /// CONNECT protocol level does not go with the name (MQTT-3.1.2-2); a server answers CONNACK 0x01.
    UnsupportedProtocolLevel {
        /// The protocol name.
        name: Bytes,
        /// The protocol level.
        level: u8,
    },
    /// CONNECT flags with the reserved bit 0 set (MQTT-3.1.2-3).
    ConnectReservedFlag,
    /// CONNECT will QoS or retain set without the will flag, or will QoS 3 (MQTT-3.1.2-13,
    /// MQTT-3.1.2-14, MQTT-3.1.2-15).
    InvalidWillFlags {
        /// The CONNECT flags byte.
        flags: u8,
    },
    /// CONNECT with a password but no user name (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// CONNACK acknowledge flags with reserved bits 7-1 set (MQTT 3.2.2.1).
    ConnackReservedFlags {
        /// The acknowledge flags byte.
        flags: u8,
    },
    /// CONNACK return code above 5 (MQTT 3.2.2.3).
    UnknownConnectReturnCode(u8),
    /// CONNACK with session present set and a non-zero return code (MQTT-3.2.2-4).
    SessionPresentWithRefusal {
        /// The return code.
        code: ConnectReturnCode,
    },
    /// An MQTT 5 property section breaks a rule of MQTT 5.0 section 2.2.2 or of its packet.
    Property(PropertyError),
    /// An MQTT 5 Reason Code the packet cannot carry (MQTT 5.0 section 2.4, and the table of each
    /// packet's codes).
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The byte.
        code: u8,
    },
    /// MQTT 5 Subscription Options with reserved bits 7-6 set, QoS 3 or Retain Handling 3
    /// (MQTT-3.8.3-5, MQTT 5.0 section 3.8.3.1).
    InvalidSubscriptionOptions {
        /// The filter the options are for.
        filter: TopicFilter,
        /// The options byte.
        byte: u8,
    },
    /// No Local on a Shared Subscription (MQTT-3.8.3-4).
    NoLocalOnSharedSubscription {
        /// The filter.
        filter: TopicFilter,
    },
    /// An MQTT 5 PUBLISH with an empty topic and no Topic Alias to stand for it (MQTT 5.0
    /// section 3.3.2.1).
    EmptyTopicWithoutAlias,
}

impl DecodeError {
    /// The MQTT 5 Reason Code of the DISCONNECT (or CONNACK) that ends the connection (MQTT 5.0
    /// section 4.13): 0x81 Malformed Packet when the packet cannot be parsed as the spec defines
    /// it, 0x82 Protocol Error when it parses but breaks a rule, 0x95 Packet too large, and a
    /// property's own code.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::Property(error) => error.reason_code(),
            Self::UnsupportedProtocolLevel { .. } | Self::UnknownProtocolName(_) => {
                ReasonCode::UnsupportedProtocolVersion
            }
            Self::InvalidReasonCode { .. }
            | Self::NoLocalOnSharedSubscription { .. }
            | Self::EmptyTopicWithoutAlias
            | Self::SessionPresentWithRefusal { .. }
            | Self::InvalidSubscriptionOptions { .. } => ReasonCode::ProtocolError,
            Self::InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            Self::InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

impl From<PropertyError> for DecodeError {
    fn from(error: PropertyError) -> Self {
        Self::Property(error)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedPacketType(t) => write!(f, "packet type {t} is reserved (MQTT 2.2.1)"),
            Self::InvalidFlags { packet_type, flags } => write!(
                f,
                "{packet_type} fixed-header flags are {flags:#06b}, must be {:#06b} (MQTT-2.2.2-2)",
                packet_type.required_flags()
            ),
            Self::PublishQos3 => {
                f.write_str("PUBLISH with QoS 3 (both QoS bits set; MQTT-3.3.1-4)")
            }
            Self::DupAtQos0 => f.write_str("PUBLISH with DUP set at QoS 0 (MQTT-3.3.1-2)"),
            Self::MalformedRemainingLength => {
                f.write_str("remaining length takes more than 4 bytes (MQTT 2.2.3)")
            }
            Self::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes is over the {max}-byte limit")
            }
            Self::BodyTooShort {
                packet_type,
                remaining_length,
            } => write!(
                f,
                "{packet_type} body of {remaining_length} bytes ends before its last field"
            ),
            Self::TrailingBytes { packet_type, extra } => {
                write!(f, "{packet_type} has {extra} bytes after its last field")
            }
            Self::ZeroPacketId { packet_type } => {
                write!(f, "{packet_type} with packet identifier 0 (MQTT-2.3.1-1)")
            }
            Self::InvalidString { field, error } => write!(f, "{field}: {error}"),
            Self::InvalidTopicName(e) | Self::InvalidTopicFilter(e) => e.fmt(f),
            Self::NoTopicFilters { packet_type } => write!(
                f,
                "{packet_type} without any topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2)"
            ),
            Self::InvalidRequestedQos { filter, byte } => write!(
                f,
                "SUBSCRIBE to {filter:?} requests QoS byte {byte:#04x}; only 0, 1 and 2 are allowed (MQTT-3.8.3-4)"
            ),
            Self::NoReturnCodes { packet_type } => write!(
                f,
                "{packet_type} without any return code (MQTT-3.9.3-1, MQTT-3.11.3-1)"
            ),
            Self::InvalidSubackReturnCode(c) => write!(
                f,
                "SUBACK return code {c:#04x}; only 0x00, 0x01, 0x02 and 0x80 are allowed (MQTT-3.9.3-2)"
            ),
            Self::UnknownProtocolName(name) => write!(
                f,
                "CONNECT protocol name {:?} is neither \"MQTT\" nor \"MQIsdp\" (MQTT-3.1.2-1)",
                String::from_utf8_lossy(name)
            ),
            Self::UnsupportedProtocolLevel { name, level } => write!(
                f,
                "CONNECT protocol {:?} level {level} is not supported; \"MQTT\" is level 4 or 5, \"MQIsdp\" level 3 (MQTT-3.1.2-2)",
                String::from_utf8_lossy(name)
            ),
            Self::ConnectReservedFlag => {
                f.write_str("CONNECT flags have the reserved bit 0 set (MQTT-3.1.2-3)")
            }
            Self::InvalidWillFlags { flags } => write!(
                f,
                "CONNECT flags {flags:#010b}: will QoS/retain without the will flag, or will QoS 3 (MQTT-3.1.2-13, -14, -15)"
            ),
            Self::PasswordWithoutUsername => {
                f.write_str("CONNECT has a password but no user name (MQTT-3.1.2-22)")
            }
            Self::ConnackReservedFlags { flags } => write!(
                f,
                "CONNACK acknowledge flags {flags:#010b} have reserved bits 7-1 set"
            ),
            Self::UnknownConnectReturnCode(c) => {
                write!(f, "CONNACK return code {c} is not defined (only 0-5 are)")
            }
            Self::SessionPresentWithRefusal { code } => write!(
                f,
                "CONNACK refuses ({code}) yet says session present (MQTT-3.2.2-4)"
            ),
            Self::Property(e) => e.fmt(f),
            Self::InvalidReasonCode { packet_type, code } => write!(
                f,
                "{packet_type} Reason Code {code:#04x} is not one {packet_type} may carry (MQTT 5.0 section 2.4)"
            ),
            Self::InvalidSubscriptionOptions { filter, byte } => write!(
                f,
                "SUBSCRIBE to {filter:?} has Subscription Options {byte:#010b}: reserved bits set, QoS 3 or Retain Handling 3 (MQTT-3.8.3-5)"
            ),
            Self::NoLocalOnSharedSubscription { filter } => write!(
                f,
                "SUBSCRIBE sets No Local on the Shared Subscription {filter:?} (MQTT-3.8.3-4)"
            ),
            Self::EmptyTopicWithoutAlias => f.write_str(
                "PUBLISH has an empty topic and no Topic Alias (MQTT 5.0 section 3.3.2.1)",
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An MQTT 5 property section breaks a rule of MQTT 5.0 section 2.2.2 or of the property list of
/// the packet it is in. One variant per rule; the message names the property, the packet and the
/// rule, and [`reason_code`](Self::reason_code) is what a session sends in the DISCONNECT (or
/// CONNACK) that ends the connection: 0x81 Malformed Packet when the section cannot be parsed as
/// the spec defines it, 0x82 Protocol Error when it parses but carries what the protocol forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropertyError {
    /// The packet ends inside the Property Length (MQTT 5.0 section 2.2.2.1).
    LengthTruncated,
    /// The Property Length has its continuation bit set in all four bytes (MQTT 1.5.5).
    MalformedLength,
    /// The Property Length says more bytes than the packet has left.
    LengthPastEnd {
        /// The Property Length.
        length: u32,
        /// The bytes after it.
        available: usize,
    },
    /// An identifier table 2-4 does not define (MQTT 5.0 section 2.2.2.2).
    UnknownProperty {
        /// The identifier.
        id: u32,
        /// Where it was.
        context: PropertyContext,
    },
    /// A property the packet may not carry (MQTT 5.0 section 2.2.2.2: "an Identifier which is not
    /// valid for its packet type ... is a Malformed Packet").
    NotAllowed {
        /// The property.
        property: PropertyId,
        /// Where it was.
        context: PropertyContext,
    },
    /// A property that may appear once appears again ("It is a Protocol Error to include ... more
    /// than once", in each property's section).
    Duplicate {
        /// The property.
        property: PropertyId,
        /// Where it was.
        context: PropertyContext,
    },
    /// The section ends inside a property's value.
    ValueTruncated {
        /// The property.
        property: PropertyId,
    },
    /// A Variable Byte Integer value (a Subscription Identifier) longer than four bytes (MQTT 1.5.5).
    MalformedVarInt {
        /// The property.
        property: PropertyId,
    },
    /// A string property or a User Property's name or value is not a valid MQTT string
    /// (MQTT-1.5.4-1, MQTT-1.5.4-2).
    InvalidString {
        /// The property.
        property: PropertyId,
        /// The rule it broke.
        error: StringError,
    },
    /// A Byte that must be 0 or 1 is not: Payload Format Indicator, Request Problem Information,
    /// Request Response Information, Maximum QoS, Retain Available, Wildcard / Subscription
    /// Identifier / Shared Subscription Available.
    NotZeroOrOne {
        /// The property.
        property: PropertyId,
        /// The byte.
        value: u8,
    },
    /// A value that must not be 0 is: Receive Maximum, Maximum Packet Size, Subscription
    /// Identifier, Topic Alias.
    Zero {
        /// The property.
        property: PropertyId,
    },
    /// A Response Topic that is not a valid topic name, such as one with a wildcard
    /// (MQTT-3.3.2-14).
    InvalidResponseTopic(TopicError),
    /// CONNECT with Authentication Data but no Authentication Method (MQTT 5.0 section
    /// 3.1.2.11.10).
    AuthenticationDataWithoutMethod,
}

impl PropertyError {
    /// The Reason Code of the DISCONNECT (or CONNACK) that must end the connection.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::LengthTruncated
            | Self::MalformedLength
            | Self::LengthPastEnd { .. }
            | Self::UnknownProperty { .. }
            | Self::NotAllowed { .. }
            | Self::ValueTruncated { .. }
            | Self::MalformedVarInt { .. }
            | Self::InvalidString { .. } => ReasonCode::MalformedPacket,
            // MQTT 5.0 section 3.3.2.3.4: "A Topic Alias value of 0 ... is a Protocol Error, the
            // receiver uses DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)".
            Self::Zero {
                property: PropertyId::TopicAlias,
            } => ReasonCode::TopicAliasInvalid,
            Self::Duplicate { .. }
            | Self::NotZeroOrOne { .. }
            | Self::Zero { .. }
            | Self::InvalidResponseTopic(_)
            | Self::AuthenticationDataWithoutMethod => ReasonCode::ProtocolError,
        }
    }
}

/// The section of MQTT 5.0 that states a value rule for `property`.
fn value_rule(property: PropertyId) -> &'static str {
    match property {
        PropertyId::PayloadFormatIndicator => "MQTT 5.0 section 3.3.2.3.2",
        PropertyId::RequestProblemInformation => "MQTT 5.0 section 3.1.2.11.7",
        PropertyId::RequestResponseInformation => "MQTT 5.0 section 3.1.2.11.6",
        PropertyId::MaximumQos => "MQTT 5.0 section 3.2.2.3.4",
        PropertyId::RetainAvailable => "MQTT 5.0 section 3.2.2.3.5",
        PropertyId::WildcardSubscriptionAvailable => "MQTT 5.0 section 3.2.2.3.11",
        PropertyId::SubscriptionIdentifierAvailable => "MQTT 5.0 section 3.2.2.3.12",
        PropertyId::SharedSubscriptionAvailable => "MQTT 5.0 section 3.2.2.3.13",
        PropertyId::ReceiveMaximum => "MQTT 5.0 sections 3.1.2.11.3, 3.2.2.3.3",
        PropertyId::MaximumPacketSize => "MQTT 5.0 sections 3.1.2.11.4, 3.2.2.3.6",
        PropertyId::SubscriptionIdentifier => "MQTT 5.0 sections 3.3.2.3.8, 3.8.2.1.2",
        PropertyId::TopicAlias => "MQTT-3.3.2-8",
        _ => "MQTT 5.0 section 2.2.2.2",
    }
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthTruncated => {
                f.write_str("the packet ends inside the Property Length (MQTT 5.0 section 2.2.2.1)")
            }
            Self::MalformedLength => {
                f.write_str("Property Length takes more than 4 bytes (MQTT 1.5.5)")
            }
            Self::LengthPastEnd { length, available } => write!(
                f,
                "Property Length {length} is past the end of the packet: {available} bytes follow it"
            ),
            Self::UnknownProperty { id, context } => write!(
                f,
                "{context} has property identifier {id:#04x}, which MQTT 5.0 does not define (section 2.2.2.2)"
            ),
            Self::NotAllowed { property, context } => write!(
                f,
                "{property} is not allowed in {context} (MQTT 5.0 section 2.2.2.2: a Malformed Packet)"
            ),
            Self::Duplicate { property, context } => write!(
                f,
                "{property} appears more than once in {context}, a Protocol Error (MQTT 5.0 section 2.2.2.2)"
            ),
            Self::ValueTruncated { property } => {
                write!(f, "the properties end inside the value of {property}")
            }
            Self::MalformedVarInt { property } => {
                write!(f, "{property} takes more than 4 bytes (MQTT 1.5.5)")
            }
            Self::InvalidString { property, error } => write!(f, "{property}: {error}"),
            Self::NotZeroOrOne { property, value } => write!(
                f,
                "{property} is {value}; only 0 and 1 are allowed ({})",
                value_rule(*property)
            ),
            Self::Zero { property } => write!(
                f,
                "{property} is 0, which is not allowed ({})",
                value_rule(*property)
            ),
            Self::InvalidResponseTopic(e) => write!(f, "Response Topic: {e} (MQTT-3.3.2-14)"),
            Self::AuthenticationDataWithoutMethod => f.write_str(
                "CONNECT has Authentication Data but no Authentication Method (MQTT 5.0 section 3.1.2.11.10)",
            ),
        }
    }
}

impl std::error::Error for PropertyError {}

/// A packet cannot be encoded as asked: it would break a rule of MQTT 3.1.1 or a size limit. Nothing
/// is written to the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded packet would be bigger than the protocol (remaining length at most 268,435,455)
    /// or the configured limit allows.
    PacketTooLarge {
        /// Whole frame size, fixed header included.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A binary field (password, will payload) is longer than its `u16` length prefix allows.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// QoS 1 and 2 PUBLISHes need a packet identifier and QoS 0 ones must not have one (MQTT-2.3.1-5).
    PacketIdMismatch {
        /// The PUBLISH's QoS.
        qos: QoS,
    },
    /// DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2).
    DupAtQos0,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    NoTopicFilters {
        /// The packet type.
        packet_type: PacketType,
    },
    /// SUBACK, or MQTT 5 UNSUBACK, without any return code (MQTT-3.9.3-1, MQTT-3.11.3-1).
    NoReturnCodes {
        /// The packet type.
        packet_type: PacketType,
    },
    /// A password without a user name (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// CONNACK refusing the connection cannot say session present (MQTT-3.2.2-4).
    SessionPresentWithRefusal {
        /// The return code.
        code: ConnectReturnCode,
    },
    /// An MQTT 5 property the packet may not carry (MQTT 5.0 section 2.2.2.2).
    PropertyNotAllowed {
        /// The property.
        property: PropertyId,
        /// The packet.
        context: PropertyContext,
    },
    /// An MQTT 5 property that may appear at most once in the packet appears again, such as a
    /// second Subscription Identifier in SUBSCRIBE.
    PropertyRepeated {
        /// The property.
        property: PropertyId,
        /// The packet.
        context: PropertyContext,
    },
    /// Maximum QoS 2: the property is 0 or 1; a server supporting QoS 2 leaves it out (MQTT 5.0
    /// section 3.2.2.3.4).
    MaximumQos2,
    /// Authentication Data without an Authentication Method in CONNECT (MQTT 5.0 section
    /// 3.1.2.11.10).
    AuthenticationDataWithoutMethod,
    /// The properties are longer than a Property Length can say (268,435,455 bytes).
    PropertiesTooLong {
        /// Their length in bytes.
        len: usize,
    },
    /// An MQTT 5 part (properties, a Reason Code, subscription options, AUTH itself) in a packet
    /// encoded for MQTT 3.1.1, which cannot carry it.
    NotInProtocol {
        /// The packet type.
        packet_type: PacketType,
        /// What it carries.
        part: &'static str,
        /// The protocol it was encoded for.
        protocol: Protocol,
    },
    /// A Reason Code the packet cannot carry (MQTT 5.0 section 2.4).
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code.
        reason_code: ReasonCode,
    },
    /// No Local on a Shared Subscription (MQTT-3.8.3-4).
    NoLocalOnSharedSubscription {
        /// The filter.
        filter: TopicFilter,
    },
    /// A PUBLISH with an empty topic: MQTT 3.1.1 never allows one (MQTT-4.7.3-1), MQTT 5 only
    /// with a Topic Alias (MQTT 5.0 section 3.3.2.1).
    EmptyTopicWithoutAlias,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes is over the {max}-byte limit")
            }
            Self::FieldTooLong { field, len } => {
                write!(f, "{field} of {len} bytes is over the 65,535 MQTT allows")
            }
            Self::PacketIdMismatch { qos } => write!(
                f,
                "a {qos} PUBLISH {} a packet identifier (MQTT-2.3.1-5)",
                if *qos == QoS::AtMostOnce {
                    "must not have"
                } else {
                    "needs"
                }
            ),
            Self::DupAtQos0 => f.write_str("DUP cannot be set on a QoS 0 PUBLISH (MQTT-3.3.1-2)"),
            Self::NoTopicFilters { packet_type } => write!(
                f,
                "{packet_type} needs at least one topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2)"
            ),
            Self::NoReturnCodes { packet_type } => write!(
                f,
                "{packet_type} needs at least one return code (MQTT-3.9.3-1, MQTT-3.11.3-1)"
            ),
            Self::PasswordWithoutUsername => {
                f.write_str("a password needs a user name (MQTT-3.1.2-22)")
            }
            Self::SessionPresentWithRefusal { code } => write!(
                f,
                "CONNACK refusing ({code}) cannot say session present (MQTT-3.2.2-4)"
            ),
            Self::PropertyNotAllowed { property, context } => write!(
                f,
                "{property} is not allowed in {context} (MQTT 5.0 section 2.2.2.2)"
            ),
            Self::PropertyRepeated { property, context } => {
                write!(f, "{property} may appear only once in {context}")
            }
            Self::MaximumQos2 => f.write_str(
                "Maximum QoS can be 0 or 1; a server supporting QoS 2 leaves it out (MQTT 5.0 section 3.2.2.3.4)",
            ),
            Self::AuthenticationDataWithoutMethod => f.write_str(
                "Authentication Data needs an Authentication Method in CONNECT (MQTT 5.0 section 3.1.2.11.10)",
            ),
            Self::PropertiesTooLong { len } => write!(
                f,
                "properties of {len} bytes are over the 268,435,455 a Property Length can say"
            ),
            Self::NotInProtocol {
                packet_type,
                part,
                protocol,
            } => write!(f, "{protocol} {packet_type} cannot carry {part}"),
            Self::InvalidReasonCode {
                packet_type,
                reason_code,
            } => write!(
                f,
                "{packet_type} cannot carry Reason Code {reason_code} (MQTT 5.0 section 2.4)"
            ),
            Self::NoLocalOnSharedSubscription { filter } => write!(
                f,
                "No Local cannot be set on the Shared Subscription {filter:?} (MQTT-3.8.3-4)"
            ),
            Self::EmptyTopicWithoutAlias => f.write_str(
                "a PUBLISH needs a topic, or in MQTT 5 a Topic Alias standing for one (MQTT-4.7.3-1, MQTT 5.0 section 3.3.2.1)",
            ),
        }
    }
}

impl std::error::Error for EncodeError {}
