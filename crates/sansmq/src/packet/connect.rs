//! CONNECT (MQTT 3.1): the client's first packet, in MQTT 3.1.1 or 3.1 form.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    DecodeError, EncodeBody, EncodeError, PacketType, Properties, PropertyContext, QoS,
    impl_encode, wire,
};
use crate::string::{MAX_STRING_LEN, MqttString};
use crate::topic::TopicName;

/// Protocol name and level of a CONNECT (MQTT 3.1.2.1, 3.1.2.2), and so the protocol a connection
/// speaks: what the codec is told to decode and encode.
///
/// MQTT 3.1 and 3.1.1 packets are the same on the wire apart from CONNECT; MQTT 5 packets carry
/// properties and Reason Codes, and AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    Mqtt31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    Mqtt311,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    Mqtt5,
}

impl Protocol {
    /// The protocol name on the wire.
    pub const fn name(self) -> &'static [u8] {
        match self {
            Self::Mqtt31 => b"MQIsdp",
            Self::Mqtt311 | Self::Mqtt5 => b"MQTT",
        }
    }

    /// The protocol level on the wire.
    pub const fn level(self) -> u8 {
        match self {
            Self::Mqtt31 => 3,
            Self::Mqtt311 => 4,
            Self::Mqtt5 => 5,
        }
    }

    /// Whether this is MQTT 5, whose packets carry properties and Reason Codes.
    #[inline]
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::Mqtt5)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mqtt31 => "MQTT 3.1",
            Self::Mqtt311 => "MQTT 3.1.1",
            Self::Mqtt5 => "MQTT 5.0",
        })
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
    /// MQTT 5 will properties (Will Delay Interval, Message Expiry Interval, Content Type, …).
    pub properties: Properties,
}

impl LastWill {
    /// A will at QoS 0, not retained, without properties.
    pub const fn new(topic: TopicName, payload: Bytes) -> Self {
        Self {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        }
    }
}

/// The client's request to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// MQTT 3.1.1, 3.1 or 5: a CONNECT is encoded as this says, whatever protocol the encoder is
    /// given.
    pub protocol: Protocol,
    /// Seconds of silence after which the server may drop the client; 0 disables.
    pub keep_alive: u16,
    /// Start afresh (MQTT 3.1.1 also discards the session when the connection ends; MQTT 5 calls
    /// it Clean Start, and the Session Expiry Interval says how long the session outlives the
    /// connection).
    pub clean_session: bool,
    /// The client identifier; may be empty with `clean_session` (MQTT-3.1.3-6).
    pub client_id: MqttString,
    /// The will message.
    pub will: Option<LastWill>,
    /// User name.
    pub username: Option<MqttString>,
    /// Password; in MQTT 3.1.1 only with a user name (MQTT-3.1.2-22).
    pub password: Option<Password>,
    /// MQTT 5 properties (Session Expiry Interval, Receive Maximum, …); empty for MQTT 3.1.1.
    pub properties: Properties,
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
            properties: Properties::new(),
        }
    }

    /// Parses a CONNECT body into a box: a CONNECT is large (320 bytes), and boxing it where it
    /// is built spares the copies that returning it by value through the parsers would make.
    pub(crate) fn decode(body: &Bytes) -> Result<Box<Self>, DecodeError> {
        wire::parse_body(PacketType::Connect, body, |input| {
            let (input, name) = wire::length_prefixed(input)?;
            let (input, level) = wire::u8(input)?;
            let protocol = match (name, level) {
                (b"MQTT", 4) => Protocol::Mqtt311,
                (b"MQTT", 5) => Protocol::Mqtt5,
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
            let v5 = protocol.is_v5();
            if flags & PASSWORD != 0 && flags & USERNAME == 0 && !v5 {
                return wire::fail(DecodeError::PasswordWithoutUsername); // MQTT-3.1.2-22
            }
            let (mut input, keep_alive) = wire::u16(input)?;
            let mut properties = Properties::new();
            if v5 {
                let (rest, held) = wire::properties(body, PropertyContext::Connect)(input)?;
                (input, properties) = (rest, held.into_inner());
            }
            let (mut input, client_id) = wire::string(body, "client identifier")(input)?;
            let mut will = None;
            if has_will {
                let mut will_properties = Properties::new();
                if v5 {
                    let (rest, held) = wire::properties(body, PropertyContext::Will)(input)?;
                    (input, will_properties) = (rest, held.into_inner());
                }
                let (rest, topic) = wire::topic_name(body)(input)?;
                let (rest, payload) = wire::binary(body)(rest)?;
                input = rest;
                will = Some(LastWill {
                    topic,
                    payload,
                    qos: QoS::from_u8(will_qos).unwrap_or(QoS::AtMostOnce),
                    retain: flags & WILL_RETAIN != 0,
                    properties: will_properties,
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
            let connect = Box::new(Self {
                protocol,
                keep_alive,
                clean_session: flags & CLEAN_SESSION != 0,
                client_id,
                will,
                username,
                password,
                properties,
            });
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

    #[inline]
    fn remaining_len(&self, _: Protocol) -> usize {
        let v5 = self.protocol.is_v5();
        let mut len = wire::prefixed_len(self.protocol.name()) + 1 + 1 + 2;
        if v5 {
            len = len.saturating_add(self.properties.encoded_len());
        }
        len = len.saturating_add(wire::prefixed_len(self.client_id.as_bytes()));
        if let Some(will) = &self.will {
            if v5 {
                len = len.saturating_add(will.properties.encoded_len());
            }
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

    #[inline]
    fn validate(&self, _: Protocol) -> Result<(), EncodeError> {
        let will_properties = self.will.as_ref().map(|will| &will.properties);
        if self.protocol.is_v5() {
            self.properties
                .validate_in_packet(PropertyContext::Connect)?;
            if let Some(properties) = will_properties {
                properties.validate_in_packet(PropertyContext::Will)?;
            }
        } else {
            if self.password.is_some() && self.username.is_none() {
                return Err(EncodeError::PasswordWithoutUsername); // MQTT-3.1.2-22
            }
            // Refused here rather than through `v5_only`, which would ask again whether the
            // protocol is MQTT 5: every MQTT 3.1.1 CONNECT goes through this branch.
            if !self.properties.is_empty()
                || will_properties.is_some_and(|properties| !properties.is_empty())
            {
                return Err(EncodeError::NotInProtocol {
                    packet_type: PacketType::Connect,
                    part: "properties",
                    protocol: self.protocol,
                });
            }
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

    #[inline]
    fn write_body(&self, _: Protocol, buf: &mut BytesMut) {
        let v5 = self.protocol.is_v5();
        // Protocol name, level, flags and keep-alive in one write of a fixed size: one capacity
        // check and an inlined copy, where writing them field by field made four checks and a
        // `memcpy` call of the name.
        let flags = self.connect_flags();
        let [keep_alive_hi, keep_alive_lo] = self.keep_alive.to_be_bytes();
        match self.protocol {
            Protocol::Mqtt31 => buf.put_slice(&[
                0,
                6,
                b'M',
                b'Q',
                b'I',
                b's',
                b'd',
                b'p',
                3,
                flags,
                keep_alive_hi,
                keep_alive_lo,
            ]),
            Protocol::Mqtt311 | Protocol::Mqtt5 => buf.put_slice(&[
                0,
                4,
                b'M',
                b'Q',
                b'T',
                b'T',
                self.protocol.level(),
                flags,
                keep_alive_hi,
                keep_alive_lo,
            ]),
        }
        if v5 {
            self.properties.write(buf);
        }
        wire::put_prefixed(buf, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write(buf);
            }
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
