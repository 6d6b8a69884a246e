//! CONNECT (MQTT 3.1): the client's first packet, in MQTT 3.1.1 or 3.1 form.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeBody, EncodeError, PacketType, QoS, impl_encode, wire};
use crate::string::{MAX_STRING_LEN, MqttString};
use crate::topic::TopicName;

/// Protocol name and level of a CONNECT (MQTT 3.1.2.1, 3.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    Mqtt31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    Mqtt311,
}

impl Protocol {
    /// The protocol name on the wire.
    pub const fn name(self) -> &'static [u8] {
        match self {
            Self::Mqtt31 => b"MQIsdp",
            Self::Mqtt311 => b"MQTT",
        }
    }

    /// The protocol level on the wire.
    pub const fn level(self) -> u8 {
        match self {
            Self::Mqtt31 => 3,
            Self::Mqtt311 => 4,
        }
    }
}

/// A password: any bytes, at most 65,535 of them. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Password(pub Bytes);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes redacted>)", self.0.len())
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// The message the server publishes for the client if it goes away without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Where the will is published.
    pub topic: TopicName,
    /// The will message, at most 65,535 bytes.
    pub payload: Bytes,
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
}

/// The client's request to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// MQTT 3.1.1 or 3.1.
    pub protocol: Protocol,
    /// Seconds of silence after which the server may drop the client; 0 disables.
    pub keep_alive: u16,
    /// Start afresh (and discard the session when the connection ends).
    pub clean_session: bool,
    /// The client identifier; may be empty with `clean_session` (MQTT-3.1.3-6).
    pub client_id: MqttString,
    /// The will message.
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<MqttString>,
    /// Password; only with a user name (MQTT-3.1.2-22).
    pub password: Option<Password>,
}

const USERNAME: u8 = 0b1000_0000;
const PASSWORD: u8 = 0b0100_0000;
const WILL_RETAIN: u8 = 0b0010_0000;
const WILL_QOS: u8 = 0b0001_1000;
const WILL: u8 = 0b0000_0100;
const CLEAN_SESSION: u8 = 0b0000_0010;
const RESERVED: u8 = 0b0000_0001;

impl Connect {
    /// An MQTT 3.1.1 CONNECT with a clean session, no keep-alive, no will and no credentials.
    pub fn new(client_id: MqttString) -> Self {
        Self {
            protocol: Protocol::Mqtt311,
            keep_alive: 0,
            clean_session: true,
            client_id,
            will: None,
            username: None,
            password: None,
        }
    }

    pub(crate) fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        wire::parse_body(PacketType::Connect, body, |input| {
            let (input, name) = wire::length_prefixed(input)?;
            let (input, level) = wire::u8(input)?;
            let protocol = match (name, level) {
                (b"MQTT", 4) => Protocol::Mqtt311,
                (b"MQIsdp", 3) => Protocol::Mqtt31,
                (b"MQTT" | b"MQIsdp", level) => {
                    return wire::fail(DecodeError::UnsupportedProtocolLevel {
                        name: body.slice_ref(name),
                        level,
                    }); // MQTT-3.1.2-2
                }
                _ => return wire::fail(DecodeError::UnknownProtocolName(body.slice_ref(name))),
            };
            let (input, flags) = wire::u8(input)?;
            if flags & RESERVED != 0 {
                return wire::fail(DecodeError::ConnectReservedFlag); // MQTT-3.1.2-3
            }
            let will_qos = (flags & WILL_QOS) >> 3;
            let has_will = flags & WILL != 0;
            if (!has_will && (will_qos != 0 || flags & WILL_RETAIN != 0)) || will_qos == 3 {
                // MQTT-3.1.2-13, MQTT-3.1.2-14, MQTT-3.1.2-15
                return wire::fail(DecodeError::InvalidWillFlags { flags });
            }
            if flags & PASSWORD != 0 && flags & USERNAME == 0 {
                return wire::fail(DecodeError::PasswordWithoutUsername); // MQTT-3.1.2-22
            }
            let (input, keep_alive) = wire::u16(input)?;
            let (mut input, client_id) = wire::string(body, "client identifier")(input)?;
            let mut will = None;
            if has_will {
                let (rest, topic) = wire::topic_name(body)(input)?;
                let (rest, payload) = wire::binary(body)(rest)?;
                input = rest;
                will = Some(LastWill {
                    topic,
                    payload,
                    qos: QoS::from_u8(will_qos).unwrap_or(QoS::AtMostOnce),
                    retain: flags & WILL_RETAIN != 0,
                });
            }
            let mut username = None;
            if flags & USERNAME != 0 {
                let (rest, name) = wire::string(body, "user name")(input)?;
                input = rest;
                username = Some(name);
            }
            let mut password = None;
            if flags & PASSWORD != 0 {
                let (rest, secret) = wire::binary(body)(input)?;
                input = rest;
                password = Some(Password(secret));
            }
            let connect = Self {
                protocol,
                keep_alive,
                clean_session: flags & CLEAN_SESSION != 0,
                client_id,
                will,
                username,
                password,
            };
            Ok((input, connect))
        })
    }

    fn connect_flags(&self) -> u8 {
        let mut flags = 0;
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.clean_session {
            flags |= CLEAN_SESSION;
        }
        flags
    }
}

impl EncodeBody for Connect {
    const PACKET_TYPE: PacketType = PacketType::Connect;

    fn remaining_len(&self) -> usize {
        let mut len = wire::prefixed_len(self.protocol.name()) + 1 + 1 + 2;
        len = len.saturating_add(wire::prefixed_len(self.client_id.as_bytes()));
        if let Some(will) = &self.will {
            len = len
                .saturating_add(wire::prefixed_len(will.topic.as_bytes()))
                .saturating_add(wire::prefixed_len(&will.payload));
        }
        if let Some(username) = &self.username {
            len = len.saturating_add(wire::prefixed_len(username.as_bytes()));
        }
        if let Some(password) = &self.password {
            len = len.saturating_add(wire::prefixed_len(&password.0));
        }
        len
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername); // MQTT-3.1.2-22
        }
        let too_long = |field, len: usize| {
            if len > MAX_STRING_LEN {
                Err(EncodeError::FieldTooLong { field, len })
            } else {
                Ok(())
            }
        };
        if let Some(will) = &self.will {
            too_long("will payload", will.payload.len())?;
        }
        if let Some(password) = &self.password {
            too_long("password", password.0.len())?;
        }
        Ok(())
    }

    fn write_body(&self, buf: &mut BytesMut) {
        wire::put_prefixed(buf, self.protocol.name());
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.connect_flags());
        buf.put_u16(self.keep_alive);
        wire::put_prefixed(buf, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            wire::put_prefixed(buf, will.topic.as_bytes());
            wire::put_prefixed(buf, &will.payload);
        }
        if let Some(username) = &self.username {
            wire::put_prefixed(buf, username.as_bytes());
        }
        if let Some(password) = &self.password {
            wire::put_prefixed(buf, &password.0);
        }
    }
}

impl_encode!(Connect);
