//! CONNACK (MQTT 3.2): the server's answer to CONNECT.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketType, PropertyContext, Protocol, ReasonCode,
    check_reason_code, impl_encode, v5_only, wire,
};

/// The server's answer to CONNECT.
///
/// MQTT 3.1.1 answers with a return code, MQTT 5 with a Reason Code and properties (the server's
/// limits and what it assigned). A `ConnAck` holds both codes: [`new`](Self::new) and
/// [`from_reason_code`](Self::from_reason_code) fill one from the other as MQTT 5.0 section
/// 3.2.2.2 pairs them, encoding as 3.1.1 writes `code` and as 5 writes `reason_code`, and decoding
/// fills both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a session it kept for this client id (MQTT-3.2.2-2, -3).
    pub session_present: bool,
    /// Accepted, or why not, as MQTT 3.1.1 says it.
    pub code: ConnectReturnCode,
    /// Accepted, or why not, as MQTT 5 says it.
    pub reason_code: ReasonCode,
    properties: HeldProperties,
}

/// CONNACK return codes (MQTT 3.2.2.3, table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is correct UTF-8 but not allowed by the server.
    IdentifierRejected = 2,
    /// 3: the network connection is made but the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the data in the user name or password is malformed (in practice: wrong credentials).
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a byte, if it is one of 0 to 5.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

impl ConnectReturnCode {
    /// The MQTT 5 Reason Code with the same meaning (MQTT 5.0 section 3.2.2.2).
    pub const fn to_reason_code(self) -> ReasonCode {
        match self {
            Self::Accepted => ReasonCode::Success,
            Self::UnacceptableProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
            Self::IdentifierRejected => ReasonCode::ClientIdentifierNotValid,
            Self::ServerUnavailable => ReasonCode::ServerUnavailable,
            Self::BadUserNameOrPassword => ReasonCode::BadUserNameOrPassword,
            Self::NotAuthorized => ReasonCode::NotAuthorized,
        }
    }

    /// The MQTT 3.1.1 code closest to an MQTT 5 CONNACK Reason Code: its pair where it has one,
    /// Not authorized for a ban or a bad authentication method, Server unavailable for any other
    /// refusal.
    pub const fn from_reason_code(code: ReasonCode) -> Self {
        match code {
            ReasonCode::Success => Self::Accepted,
            ReasonCode::UnsupportedProtocolVersion => Self::UnacceptableProtocolVersion,
            ReasonCode::ClientIdentifierNotValid => Self::IdentifierRejected,
            ReasonCode::BadUserNameOrPassword => Self::BadUserNameOrPassword,
            ReasonCode::NotAuthorized
            | ReasonCode::Banned
            | ReasonCode::BadAuthenticationMethod => Self::NotAuthorized,
            _ => Self::ServerUnavailable,
        }
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = match self {
            Self::Accepted => "connection accepted",
            Self::UnacceptableProtocolVersion => "unacceptable protocol version",
            Self::IdentifierRejected => "client identifier rejected",
            Self::ServerUnavailable => "server unavailable",
            Self::BadUserNameOrPassword => "bad user name or password",
            Self::NotAuthorized => "not authorized",
        };
        write!(f, "{} ({meaning})", *self as u8)
    }
}

impl ConnAck {
    /// The answer with `code` (and its MQTT 5 Reason Code), and no session.
    pub const fn new(code: ConnectReturnCode) -> Self {
        Self {
            session_present: false,
            code,
            reason_code: code.to_reason_code(),
            properties: HeldProperties::EMPTY,
        }
    }

    /// The MQTT 5 answer with `reason_code` (and the closest MQTT 3.1.1 code), and no session.
    pub const fn from_reason_code(reason_code: ReasonCode) -> Self {
        Self {
            session_present: false,
            code: ConnectReturnCode::from_reason_code(reason_code),
            reason_code,
            properties: HeldProperties::EMPTY,
        }
    }

    /// The answer with `session_present` set as given.
    #[must_use]
    pub const fn with_session_present(mut self, session_present: bool) -> Self {
        self.session_present = session_present;
        self
    }

    /// Whether the connection was accepted.
    pub fn is_accepted(&self) -> bool {
        self.code == ConnectReturnCode::Accepted
    }

    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::ConnAck, body, |input| {
            let (input, flags) = wire::u8(input)?;
            if flags & 0xFE != 0 {
                return wire::fail(DecodeError::ConnackReservedFlags { flags });
            }
            let session_present = flags & 1 != 0;
            if v5 {
                let (input, reason_code) =
                    wire::reason_code(PacketType::ConnAck, PropertyContext::ConnAck)(input)?;
                if session_present && reason_code != ReasonCode::Success {
                    // MQTT-3.2.2-6
                    return wire::fail(DecodeError::SessionPresentWithRefusal {
                        code: ConnectReturnCode::from_reason_code(reason_code),
                    });
                }
                let (input, properties) = wire::properties(body, PropertyContext::ConnAck)(input)?;
                let mut connack = Self::from_reason_code(reason_code);
                connack.session_present = session_present;
                connack.properties = properties;
                return Ok((input, connack));
            }
            let (input, code) = wire::u8(input)?;
            let Some(code) = ConnectReturnCode::from_u8(code) else {
                return wire::fail(DecodeError::UnknownConnectReturnCode(code));
            };
            if session_present && code != ConnectReturnCode::Accepted {
                return wire::fail(DecodeError::SessionPresentWithRefusal { code }); // MQTT-3.2.2-4
            }
            Ok((input, Self::new(code).with_session_present(session_present)))
        })
    }
}

impl_properties!(ConnAck, PropertyContext::ConnAck);

impl EncodeBody for ConnAck {
    const PACKET_TYPE: PacketType = PacketType::ConnAck;

    fn remaining_len(&self, protocol: Protocol) -> usize {
        if protocol.is_v5() {
            2usize.saturating_add(self.properties.encoded_len())
        } else {
            2
        }
    }

    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        v5_only(
            protocol,
            PacketType::ConnAck,
            "properties",
            !self.properties.is_empty(),
        )?;
        let accepted = if protocol.is_v5() {
            check_reason_code(
                PacketType::ConnAck,
                PropertyContext::ConnAck,
                self.reason_code,
            )?;
            self.reason_code == ReasonCode::Success
        } else {
            self.code == ConnectReturnCode::Accepted
        };
        if self.session_present && !accepted {
            // MQTT-3.2.2-4, MQTT-3.2.2-6
            return Err(EncodeError::SessionPresentWithRefusal { code: self.code });
        }
        self.properties.validate(PropertyContext::ConnAck)
    }

    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        buf.put_u8(u8::from(self.session_present));
        if protocol.is_v5() {
            buf.put_u8(self.reason_code.to_u8());
            self.properties.write(buf);
        } else {
            buf.put_u8(self.code as u8);
        }
    }
}

impl_encode!(ConnAck);
