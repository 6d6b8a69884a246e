//! CONNACK (MQTT 3.2): the server's answer to CONNECT.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, EncodeError, PacketType, impl_encode, wire};

/// The server's answer to CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnAck {
    /// Whether the server resumed a session it kept for this client id (MQTT-3.2.2-2, -3).
    pub session_present: bool,
    /// Accepted, or why not.
    pub code: ConnectReturnCode,
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
    /// The answer with `code`, and no session.
    pub const fn new(code: ConnectReturnCode) -> Self {
        Self {
            session_present: false,
            code,
        }
    }

    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::ConnAck, body, |input| {
            let (input, flags) = wire::u8(input)?;
            let (input, code) = wire::u8(input)?;
            if flags & 0xFE != 0 {
                return wire::fail(DecodeError::ConnackReservedFlags { flags });
            }
            let Some(code) = ConnectReturnCode::from_u8(code) else {
                return wire::fail(DecodeError::UnknownConnectReturnCode(code));
            };
            let session_present = flags & 1 != 0;
            if session_present && code != ConnectReturnCode::Accepted {
                return wire::fail(DecodeError::SessionPresentWithRefusal { code }); // MQTT-3.2.2-4
            }
            Ok((
                input,
                Self {
                    session_present,
                    code,
                },
            ))
        })
    }
}

impl EncodeBody for ConnAck {
    const PACKET_TYPE: PacketType = PacketType::ConnAck;

    fn remaining_len(&self) -> usize {
        2
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.session_present && self.code != ConnectReturnCode::Accepted {
            return Err(EncodeError::SessionPresentWithRefusal { code: self.code }); // MQTT-3.2.2-4
        }
        Ok(())
    }

    fn write_body(&self, buf: &mut BytesMut) {
        buf.put_u8(u8::from(self.session_present));
        buf.put_u8(self.code as u8);
    }
}

impl_encode!(ConnAck);
