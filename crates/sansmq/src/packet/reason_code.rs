//! Reason Codes (MQTT 5.0 section 2.4): the one-byte outcome an MQTT 5 acknowledgement,
//! DISCONNECT or AUTH carries.

use std::fmt;

use super::PropertyContext;

/// A Reason Code (MQTT 5.0 section 2.4, table 2-6): below 0x80 an outcome, from 0x80 on a failure.
///
/// 0x00 has three names: Success, Normal disconnection (DISCONNECT) and Granted QoS 0 (SUBACK);
/// [`NORMAL_DISCONNECTION`](Self::NORMAL_DISCONNECTION) and [`GRANTED_QOS_0`](Self::GRANTED_QOS_0)
/// are the same value as [`Success`](Self::Success), and [`name_in`](Self::name_in) says which
/// name a packet gives it.
///
/// ```
/// use sansmq::packet::{PropertyContext, ReasonCode};
///
/// let code = ReasonCode::from_u8(0x87).unwrap();
/// assert_eq!(code, ReasonCode::NotAuthorized);
/// assert!(code.is_error());
/// assert!(code.is_valid_in(PropertyContext::PubAck));
/// assert!(!code.is_valid_in(PropertyContext::PubRel));
/// assert_eq!(code.to_string(), "0x87 (Not authorized)");
/// assert_eq!(ReasonCode::Success.name_in(PropertyContext::Disconnect), "Normal disconnection");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum ReasonCode {
    /// 0x00: Success; in DISCONNECT "Normal disconnection", in SUBACK "Granted QoS 0" (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH).
    #[default]
    Success = 0x00,
    /// 0x01: Granted QoS 1 (SUBACK).
    GrantedQos1 = 0x01,
    /// 0x02: Granted QoS 2 (SUBACK).
    GrantedQos2 = 0x02,
    /// 0x04: Disconnect with Will Message (DISCONNECT).
    DisconnectWithWillMessage = 0x04,
    /// 0x10: No matching subscribers (PUBACK, PUBREC).
    NoMatchingSubscribers = 0x10,
    /// 0x11: No subscription existed (UNSUBACK).
    NoSubscriptionExisted = 0x11,
    /// 0x18: Continue authentication (AUTH).
    ContinueAuthentication = 0x18,
    /// 0x19: Re-authenticate (AUTH).
    ReAuthenticate = 0x19,
    /// 0x80: Unspecified error (CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT).
    UnspecifiedError = 0x80,
    /// 0x81: Malformed Packet (CONNACK, DISCONNECT).
    MalformedPacket = 0x81,
    /// 0x82: Protocol Error (CONNACK, DISCONNECT).
    ProtocolError = 0x82,
    /// 0x83: Implementation specific error (CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT).
    ImplementationSpecificError = 0x83,
    /// 0x84: Unsupported Protocol Version (CONNACK).
    UnsupportedProtocolVersion = 0x84,
    /// 0x85: Client Identifier not valid (CONNACK).
    ClientIdentifierNotValid = 0x85,
    /// 0x86: Bad User Name or Password (CONNACK).
    BadUserNameOrPassword = 0x86,
    /// 0x87: Not authorized (CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT).
    NotAuthorized = 0x87,
    /// 0x88: Server unavailable (CONNACK).
    ServerUnavailable = 0x88,
    /// 0x89: Server busy (CONNACK, DISCONNECT).
    ServerBusy = 0x89,
    /// 0x8A: Banned (CONNACK).
    Banned = 0x8A,
    /// 0x8B: Server shutting down (DISCONNECT).
    ServerShuttingDown = 0x8B,
    /// 0x8C: Bad authentication method (CONNACK, DISCONNECT).
    BadAuthenticationMethod = 0x8C,
    /// 0x8D: Keep Alive timeout (DISCONNECT).
    KeepAliveTimeout = 0x8D,
    /// 0x8E: Session taken over (DISCONNECT).
    SessionTakenOver = 0x8E,
    /// 0x8F: Topic Filter invalid (SUBACK, UNSUBACK, DISCONNECT).
    TopicFilterInvalid = 0x8F,
    /// 0x90: Topic Name invalid (CONNACK, PUBACK, PUBREC, DISCONNECT).
    TopicNameInvalid = 0x90,
    /// 0x91: Packet Identifier in use (PUBACK, PUBREC, SUBACK, UNSUBACK).
    PacketIdentifierInUse = 0x91,
    /// 0x92: Packet Identifier not found (PUBREL, PUBCOMP).
    PacketIdentifierNotFound = 0x92,
    /// 0x93: Receive Maximum exceeded (DISCONNECT).
    ReceiveMaximumExceeded = 0x93,
    /// 0x94: Topic Alias invalid (DISCONNECT).
    TopicAliasInvalid = 0x94,
    /// 0x95: Packet too large (CONNACK, DISCONNECT).
    PacketTooLarge = 0x95,
    /// 0x96: Message rate too high (DISCONNECT).
    MessageRateTooHigh = 0x96,
    /// 0x97: Quota exceeded (CONNACK, PUBACK, PUBREC, SUBACK, DISCONNECT).
    QuotaExceeded = 0x97,
    /// 0x98: Administrative action (DISCONNECT).
    AdministrativeAction = 0x98,
    /// 0x99: Payload format invalid (CONNACK, PUBACK, PUBREC, DISCONNECT).
    PayloadFormatInvalid = 0x99,
    /// 0x9A: Retain not supported (CONNACK, DISCONNECT).
    RetainNotSupported = 0x9A,
    /// 0x9B: QoS not supported (CONNACK, DISCONNECT).
    QosNotSupported = 0x9B,
    /// 0x9C: Use another server (CONNACK, DISCONNECT).
    UseAnotherServer = 0x9C,
    /// 0x9D: Server moved (CONNACK, DISCONNECT).
    ServerMoved = 0x9D,
    /// 0x9E: Shared Subscriptions not supported (SUBACK, DISCONNECT).
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F: Connection rate exceeded (CONNACK, DISCONNECT).
    ConnectionRateExceeded = 0x9F,
    /// 0xA0: Maximum connect time (DISCONNECT).
    MaximumConnectTime = 0xA0,
    /// 0xA1: Subscription Identifiers not supported (SUBACK, DISCONNECT).
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2: Wildcard Subscriptions not supported (SUBACK, DISCONNECT).
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// 0x00 in DISCONNECT: close the connection normally, without the will message.
    pub const NORMAL_DISCONNECTION: Self = Self::Success;
    /// 0x00 in SUBACK: the subscription is accepted with maximum QoS 0.
    pub const GRANTED_QOS_0: Self = Self::Success;

    /// The code for `value`, or `None` if table 2-6 does not define it.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x00 => Self::Success,
            0x01 => Self::GrantedQos1,
            0x02 => Self::GrantedQos2,
            0x04 => Self::DisconnectWithWillMessage,
            0x10 => Self::NoMatchingSubscribers,
            0x11 => Self::NoSubscriptionExisted,
            0x18 => Self::ContinueAuthentication,
            0x19 => Self::ReAuthenticate,
            0x80 => Self::UnspecifiedError,
            0x81 => Self::MalformedPacket,
            0x82 => Self::ProtocolError,
            0x83 => Self::ImplementationSpecificError,
            0x84 => Self::UnsupportedProtocolVersion,
            0x85 => Self::ClientIdentifierNotValid,
            0x86 => Self::BadUserNameOrPassword,
            0x87 => Self::NotAuthorized,
            0x88 => Self::ServerUnavailable,
            0x89 => Self::ServerBusy,
            0x8A => Self::Banned,
            0x8B => Self::ServerShuttingDown,
            0x8C => Self::BadAuthenticationMethod,
            0x8D => Self::KeepAliveTimeout,
            0x8E => Self::SessionTakenOver,
            0x8F => Self::TopicFilterInvalid,
            0x90 => Self::TopicNameInvalid,
            0x91 => Self::PacketIdentifierInUse,
            0x92 => Self::PacketIdentifierNotFound,
            0x93 => Self::ReceiveMaximumExceeded,
            0x94 => Self::TopicAliasInvalid,
            0x95 => Self::PacketTooLarge,
            0x96 => Self::MessageRateTooHigh,
            0x97 => Self::QuotaExceeded,
            0x98 => Self::AdministrativeAction,
            0x99 => Self::PayloadFormatInvalid,
            0x9A => Self::RetainNotSupported,
            0x9B => Self::QosNotSupported,
            0x9C => Self::UseAnotherServer,
            0x9D => Self::ServerMoved,
            0x9E => Self::SharedSubscriptionsNotSupported,
            0x9F => Self::ConnectionRateExceeded,
            0xA0 => Self::MaximumConnectTime,
            0xA1 => Self::SubscriptionIdentifiersNotSupported,
            0xA2 => Self::WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Whether the code reports a failure: 0x80 and above (MQTT 5.0 section 2.4).
    pub const fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The spec's name, such as `"Packet too large"`; 0x00 is `"Success"` (see
    /// [`name_in`](Self::name_in)).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::GrantedQos1 => "Granted QoS 1",
            Self::GrantedQos2 => "Granted QoS 2",
            Self::DisconnectWithWillMessage => "Disconnect with Will Message",
            Self::NoMatchingSubscribers => "No matching subscribers",
            Self::NoSubscriptionExisted => "No subscription existed",
            Self::ContinueAuthentication => "Continue authentication",
            Self::ReAuthenticate => "Re-authenticate",
            Self::UnspecifiedError => "Unspecified error",
            Self::MalformedPacket => "Malformed Packet",
            Self::ProtocolError => "Protocol Error",
            Self::ImplementationSpecificError => "Implementation specific error",
            Self::UnsupportedProtocolVersion => "Unsupported Protocol Version",
            Self::ClientIdentifierNotValid => "Client Identifier not valid",
            Self::BadUserNameOrPassword => "Bad User Name or Password",
            Self::NotAuthorized => "Not authorized",
            Self::ServerUnavailable => "Server unavailable",
            Self::ServerBusy => "Server busy",
            Self::Banned => "Banned",
            Self::ServerShuttingDown => "Server shutting down",
            Self::BadAuthenticationMethod => "Bad authentication method",
            Self::KeepAliveTimeout => "Keep Alive timeout",
            Self::SessionTakenOver => "Session taken over",
            Self::TopicFilterInvalid => "Topic Filter invalid",
            Self::TopicNameInvalid => "Topic Name invalid",
            Self::PacketIdentifierInUse => "Packet Identifier in use",
            Self::PacketIdentifierNotFound => "Packet Identifier not found",
            Self::ReceiveMaximumExceeded => "Receive Maximum exceeded",
            Self::TopicAliasInvalid => "Topic Alias invalid",
            Self::PacketTooLarge => "Packet too large",
            Self::MessageRateTooHigh => "Message rate too high",
            Self::QuotaExceeded => "Quota exceeded",
            Self::AdministrativeAction => "Administrative action",
            Self::PayloadFormatInvalid => "Payload format invalid",
            Self::RetainNotSupported => "Retain not supported",
            Self::QosNotSupported => "QoS not supported",
            Self::UseAnotherServer => "Use another server",
            Self::ServerMoved => "Server moved",
            Self::SharedSubscriptionsNotSupported => "Shared Subscriptions not supported",
            Self::ConnectionRateExceeded => "Connection rate exceeded",
            Self::MaximumConnectTime => "Maximum connect time",
            Self::SubscriptionIdentifiersNotSupported => "Subscription Identifiers not supported",
            Self::WildcardSubscriptionsNotSupported => "Wildcard Subscriptions not supported",
        }
    }

    /// The spec's name in `packet`: 0x00 is "Normal disconnection" in DISCONNECT and "Granted QoS 0"
    /// in SUBACK.
    pub const fn name_in(self, packet: PropertyContext) -> &'static str {
        match (self, packet) {
            (Self::Success, PropertyContext::Disconnect) => "Normal disconnection",
            (Self::Success, PropertyContext::SubAck) => "Granted QoS 0",
            _ => self.name(),
        }
    }

    /// Whether table 2-6 allows this code in `packet`. Packets without a Reason Code (CONNECT,
    /// PUBLISH, SUBSCRIBE, UNSUBSCRIBE, a will) allow none.
    pub const fn is_valid_in(self, packet: PropertyContext) -> bool {
        match self {
            Self::Success => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::PubRel
                    | PropertyContext::PubComp
                    | PropertyContext::SubAck
                    | PropertyContext::UnsubAck
                    | PropertyContext::Disconnect
                    | PropertyContext::Auth
            ),
            Self::GrantedQos1 => matches!(packet, PropertyContext::SubAck),
            Self::GrantedQos2 => matches!(packet, PropertyContext::SubAck),
            Self::DisconnectWithWillMessage => matches!(packet, PropertyContext::Disconnect),
            Self::NoMatchingSubscribers => {
                matches!(packet, PropertyContext::PubAck | PropertyContext::PubRec)
            }
            Self::NoSubscriptionExisted => matches!(packet, PropertyContext::UnsubAck),
            Self::ContinueAuthentication => matches!(packet, PropertyContext::Auth),
            Self::ReAuthenticate => matches!(packet, PropertyContext::Auth),
            Self::UnspecifiedError => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::SubAck
                    | PropertyContext::UnsubAck
                    | PropertyContext::Disconnect
            ),
            Self::MalformedPacket => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::ProtocolError => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::ImplementationSpecificError => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::SubAck
                    | PropertyContext::UnsubAck
                    | PropertyContext::Disconnect
            ),
            Self::UnsupportedProtocolVersion => matches!(packet, PropertyContext::ConnAck),
            Self::ClientIdentifierNotValid => matches!(packet, PropertyContext::ConnAck),
            Self::BadUserNameOrPassword => matches!(packet, PropertyContext::ConnAck),
            Self::NotAuthorized => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::SubAck
                    | PropertyContext::UnsubAck
                    | PropertyContext::Disconnect
            ),
            Self::ServerUnavailable => matches!(packet, PropertyContext::ConnAck),
            Self::ServerBusy => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::Banned => matches!(packet, PropertyContext::ConnAck),
            Self::ServerShuttingDown => matches!(packet, PropertyContext::Disconnect),
            Self::BadAuthenticationMethod => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::KeepAliveTimeout => matches!(packet, PropertyContext::Disconnect),
            Self::SessionTakenOver => matches!(packet, PropertyContext::Disconnect),
            Self::TopicFilterInvalid => matches!(
                packet,
                PropertyContext::SubAck | PropertyContext::UnsubAck | PropertyContext::Disconnect
            ),
            Self::TopicNameInvalid => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::Disconnect
            ),
            Self::PacketIdentifierInUse => matches!(
                packet,
                PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::SubAck
                    | PropertyContext::UnsubAck
            ),
            Self::PacketIdentifierNotFound => {
                matches!(packet, PropertyContext::PubRel | PropertyContext::PubComp)
            }
            Self::ReceiveMaximumExceeded => matches!(packet, PropertyContext::Disconnect),
            Self::TopicAliasInvalid => matches!(packet, PropertyContext::Disconnect),
            Self::PacketTooLarge => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::MessageRateTooHigh => matches!(packet, PropertyContext::Disconnect),
            Self::QuotaExceeded => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::SubAck
                    | PropertyContext::Disconnect
            ),
            Self::AdministrativeAction => matches!(packet, PropertyContext::Disconnect),
            Self::PayloadFormatInvalid => matches!(
                packet,
                PropertyContext::ConnAck
                    | PropertyContext::PubAck
                    | PropertyContext::PubRec
                    | PropertyContext::Disconnect
            ),
            Self::RetainNotSupported => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::QosNotSupported => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::UseAnotherServer => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::ServerMoved => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::SharedSubscriptionsNotSupported => matches!(
                packet,
                PropertyContext::SubAck | PropertyContext::Disconnect
            ),
            Self::ConnectionRateExceeded => matches!(
                packet,
                PropertyContext::ConnAck | PropertyContext::Disconnect
            ),
            Self::MaximumConnectTime => matches!(packet, PropertyContext::Disconnect),
            Self::SubscriptionIdentifiersNotSupported => matches!(
                packet,
                PropertyContext::SubAck | PropertyContext::Disconnect
            ),
            Self::WildcardSubscriptionsNotSupported => matches!(
                packet,
                PropertyContext::SubAck | PropertyContext::Disconnect
            ),
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} ({})", *self as u8, self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_byte_round_trips_and_the_others_are_refused() {
        let defined: Vec<u8> = (0..=255)
            .filter(|&b| ReasonCode::from_u8(b).is_some())
            .collect();
        // Table 2-6 defines 43 distinct values.
        assert_eq!(defined.len(), 43);
        for byte in defined {
            assert_eq!(ReasonCode::from_u8(byte).unwrap().to_u8(), byte);
        }
        for byte in [0x03, 0x05, 0x12, 0x7F, 0xA3, 0xFF] {
            assert_eq!(ReasonCode::from_u8(byte), None, "{byte:#04x}");
        }
    }

    #[test]
    fn errors_are_the_codes_from_0x80() {
        assert!(!ReasonCode::Success.is_error());
        assert!(!ReasonCode::ReAuthenticate.is_error());
        assert!(ReasonCode::UnspecifiedError.is_error());
        assert!(ReasonCode::WildcardSubscriptionsNotSupported.is_error());
    }

    #[test]
    fn packets_allow_the_codes_of_table_2_6() {
        // Spot checks across the table.
        assert!(ReasonCode::MalformedPacket.is_valid_in(PropertyContext::Disconnect));
        assert!(!ReasonCode::MalformedPacket.is_valid_in(PropertyContext::PubAck));
        assert!(ReasonCode::PacketIdentifierNotFound.is_valid_in(PropertyContext::PubComp));
        assert!(!ReasonCode::PacketIdentifierNotFound.is_valid_in(PropertyContext::PubAck));
        assert!(ReasonCode::ContinueAuthentication.is_valid_in(PropertyContext::Auth));
        assert!(ReasonCode::NoSubscriptionExisted.is_valid_in(PropertyContext::UnsubAck));
        assert!(!ReasonCode::GrantedQos1.is_valid_in(PropertyContext::ConnAck));
        // Success is valid in every packet that has a Reason Code, and no code is valid in one
        // that has none.
        for context in PropertyContext::ALL {
            let has_reason_code = !matches!(
                context,
                PropertyContext::Connect
                    | PropertyContext::Will
                    | PropertyContext::Publish
                    | PropertyContext::Subscribe
                    | PropertyContext::Unsubscribe
            );
            assert_eq!(ReasonCode::Success.is_valid_in(context), has_reason_code);
            for code in (0..=255).filter_map(ReasonCode::from_u8) {
                assert!(
                    has_reason_code || !code.is_valid_in(context),
                    "{code} in {context}"
                );
            }
        }
    }

    #[test]
    fn display_gives_the_byte_and_the_name() {
        assert_eq!(
            ReasonCode::MalformedPacket.to_string(),
            "0x81 (Malformed Packet)"
        );
        assert_eq!(ReasonCode::Success.to_string(), "0x00 (Success)");
        assert_eq!(
            ReasonCode::GRANTED_QOS_0.name_in(PropertyContext::SubAck),
            "Granted QoS 0"
        );
        assert_eq!(
            ReasonCode::Success.name_in(PropertyContext::PubAck),
            "Success"
        );
    }
}
