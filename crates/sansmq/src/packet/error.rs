//! What can go wrong turning bytes into packets ([`DecodeError`]: the peer's fault) and packets into
//! bytes ([`EncodeError`]: the caller's fault).

use std::fmt;

use bytes::Bytes;

use super::{ConnectReturnCode, PacketType, QoS};
use crate::string::StringError;
use crate::topic::{TopicError, TopicFilter};

/// A packet on the wire breaks a rule of MQTT 3.1/3.1.1. One variant per rule; the message names the
/// offending value and, where there is one, the spec's normative statement.
///
/// A stream that produced a `DecodeError` cannot be resynchronised: the connection must be closed
/// (MQTT-4.8.0-1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0 or 15, which are reserved (MQTT 2.2.1).
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
    /// SUBACK without any return code.
    NoReturnCodes,
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
            Self::NoReturnCodes => f.write_str("SUBACK without any return code"),
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
                "CONNECT protocol {:?} level {level} is not supported; \"MQTT\" is level 4, \"MQIsdp\" level 3 (MQTT-3.1.2-2)",
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
        }
    }
}

impl std::error::Error for DecodeError {}

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
    /// SUBACK without any return code.
    NoReturnCodes,
    /// A password without a user name (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// CONNACK refusing the connection cannot say session present (MQTT-3.2.2-4).
    SessionPresentWithRefusal {
        /// The return code.
        code: ConnectReturnCode,
    },
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
            Self::NoReturnCodes => f.write_str("SUBACK needs at least one return code"),
            Self::PasswordWithoutUsername => {
                f.write_str("a password needs a user name (MQTT-3.1.2-22)")
            }
            Self::SessionPresentWithRefusal { code } => write!(
                f,
                "CONNACK refusing ({code}) cannot say session present (MQTT-3.2.2-4)"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}
