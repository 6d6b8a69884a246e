//! Encoding and decoding a property section: the Property Length, then each property's identifier
//! and value (MQTT 5.0 section 2.2.2).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes, BytesMut};

use super::{Entry, PayloadFormat, Properties, PropertyContext, PropertyId, SubscriptionId};
use crate::packet::frame::{self, MAX_REMAINING_LENGTH, MalformedVarInt};
use crate::packet::wire::put_prefixed;
use crate::packet::{EncodeError, PropertyError, QoS};
use crate::string::MqttString;

impl Entry {
    /// Identifier and value; every identifier is one byte.
    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::String(_, s) => 2 + s.len(),
            Self::Binary(_, b) => 2usize.saturating_add(b.len()),
            Self::SubscriptionId(id) => frame::var_int_len(id.get() as usize),
            Self::User(name, value) => 4 + name.len() + value.len(),
        }
    }

    fn write(&self, buf: &mut BytesMut) {
        buf.put_u8(self.id() as u8);
        match self {
            Self::String(_, s) => put_prefixed(buf, s.as_bytes()),
            Self::Binary(_, b) => put_prefixed(buf, b),
            Self::SubscriptionId(id) => frame::put_var_int(buf, id.get() as usize),
            Self::User(name, value) => {
                put_prefixed(buf, name.as_bytes());
                put_prefixed(buf, value.as_bytes());
            }
        }
    }
}

/// A fixed-size property value.
#[derive(Clone, Copy)]
pub(super) enum Scalar {
    Byte(u8),
    TwoBytes(u16),
    FourBytes(u32),
}

impl Scalar {
    /// Identifier and value.
    const fn encoded_len(self) -> usize {
        1 + match self {
            Self::Byte(_) => 1,
            Self::TwoBytes(_) => 2,
            Self::FourBytes(_) => 4,
        }
    }

    fn write(self, buf: &mut BytesMut) {
        match self {
            Self::Byte(b) => buf.put_u8(b),
            Self::TwoBytes(v) => buf.put_u16(v),
            Self::FourBytes(v) => buf.put_u32(v),
        }
    }
}

/// The fixed-size properties, listed once in identifier order: field, identifier, and how a value
/// becomes a [`Scalar`]. Each function it defines reads every field straight, with no table built
/// at run time: encoding asks for the length, the identifiers present and the bytes, and walking
/// a built table each time made an MQTT 5 encode with properties cost twice rumqttc's.
macro_rules! scalar_properties {
    ($($field:ident: $id:ident => |$value:ident| $scalar:expr;)*) => {
        impl Properties {
            /// The fixed-size properties in identifier order, `None` where absent.
            pub(super) fn scalars(&self) -> [(PropertyId, Option<Scalar>); 16] {
                [$((PropertyId::$id, self.$field.map(|$value| $scalar)),)*]
            }

            /// The encoded length of the fixed-size properties present.
            fn scalars_len(&self) -> usize {
                0 $(+ self.$field.map_or(0, |$value| Scalar::encoded_len($scalar)))*
            }

            /// The identifiers of the fixed-size properties present, as bits of a `u64`.
            fn scalar_ids(&self) -> u64 {
                0 $(| (u64::from(self.$field.is_some()) << (PropertyId::$id as u8)))*
            }

            /// Writes the properties without the Property Length in front of them, in ascending
            /// identifier order: each fixed-size one after the variable-length ones of lower
            /// identifier, then those left.
            pub(crate) fn write_properties(&self, buf: &mut BytesMut) {
                let mut entries = self.entries.iter().peekable();
                $(
                    if let Some($value) = self.$field {
                        while let Some(entry) =
                            entries.next_if(|entry| entry.id() < PropertyId::$id)
                        {
                            entry.write(buf);
                        }
                        buf.put_u8(PropertyId::$id as u8);
                        Scalar::write($scalar, buf);
                    }
                )*
                for entry in entries {
                    entry.write(buf);
                }
            }
        }
    };
}

scalar_properties! {
    payload_format_indicator: PayloadFormatIndicator => |f| Scalar::Byte(f as u8);
    message_expiry_interval: MessageExpiryInterval => |v| Scalar::FourBytes(v);
    session_expiry_interval: SessionExpiryInterval => |v| Scalar::FourBytes(v);
    server_keep_alive: ServerKeepAlive => |v| Scalar::TwoBytes(v);
    request_problem_information: RequestProblemInformation => |b| Scalar::Byte(u8::from(b));
    will_delay_interval: WillDelayInterval => |v| Scalar::FourBytes(v);
    request_response_information: RequestResponseInformation => |b| Scalar::Byte(u8::from(b));
    receive_maximum: ReceiveMaximum => |v| Scalar::TwoBytes(v.get());
    topic_alias_maximum: TopicAliasMaximum => |v| Scalar::TwoBytes(v);
    topic_alias: TopicAlias => |v| Scalar::TwoBytes(v.get());
    maximum_qos: MaximumQos => |q| Scalar::Byte(q as u8);
    retain_available: RetainAvailable => |b| Scalar::Byte(u8::from(b));
    maximum_packet_size: MaximumPacketSize => |v| Scalar::FourBytes(v.get());
    wildcard_subscription_available: WildcardSubscriptionAvailable => |b| Scalar::Byte(u8::from(b));
    subscription_identifier_available: SubscriptionIdentifierAvailable => |b| Scalar::Byte(u8::from(b));
    shared_subscription_available: SharedSubscriptionAvailable => |b| Scalar::Byte(u8::from(b));
}

impl Properties {
    /// The length of the properties, without the Property Length in front of them.
    pub(crate) fn properties_len(&self) -> usize {
        self.entries.iter().fold(self.scalars_len(), |len, entry| {
            len.saturating_add(entry.encoded_len())
        })
    }

    /// The size of the encoded section: the Property Length and the properties.
    pub fn encoded_len(&self) -> usize {
        let len = self.properties_len();
        frame::var_int_len(len).saturating_add(len)
    }

    /// Checks that the properties can go in `context`: each allowed there (table 2-4) and at most
    /// once unless it may repeat, Maximum QoS 0 or 1, binary data within 65,535 bytes,
    /// Authentication Data only with an Authentication Method in CONNECT, and the whole within the
    /// largest Property Length.
    pub fn validate(&self, context: PropertyContext) -> Result<(), EncodeError> {
        self.validate_in_packet(context)?;
        let len = self.properties_len();
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PropertiesTooLong { len });
        }
        Ok(())
    }

    /// [`validate`](Self::validate) without the length check, for a section inside a packet: the
    /// packet's own size check (which counts the section) refuses it as `PacketTooLarge`, and
    /// measuring the section once fewer is a fifth of an MQTT 5 PUBLISH encode.
    pub(crate) fn validate_in_packet(&self, context: PropertyContext) -> Result<(), EncodeError> {
        let mut present = self.scalar_ids();
        while present != 0 {
            let id = present.trailing_zeros();
            present &= present - 1;
            if let Some(id) = PropertyId::from_u32(id) {
                if !id.is_allowed_in(context) {
                    return Err(EncodeError::PropertyNotAllowed {
                        property: id,
                        context,
                    });
                }
            }
        }
        let mut previous = None;
        for entry in &self.entries {
            let id = entry.id();
            if !id.is_allowed_in(context) {
                return Err(EncodeError::PropertyNotAllowed {
                    property: id,
                    context,
                });
            }
            // Sorted by identifier, so a repeat follows its first.
            if previous == Some(id) && !id.is_repeatable_in(context) {
                return Err(EncodeError::PropertyRepeated {
                    property: id,
                    context,
                });
            }
            previous = Some(id);
            if let Entry::Binary(_, data) = entry {
                if data.len() > usize::from(u16::MAX) {
                    return Err(EncodeError::FieldTooLong {
                        field: id.name(),
                        len: data.len(),
                    });
                }
            }
        }
        if self.maximum_qos == Some(QoS::ExactlyOnce) {
            return Err(EncodeError::MaximumQos2); // MQTT 3.2.2.3.4
        }
        if context == PropertyContext::Connect
            && self.authentication_data().is_some()
            && self.authentication_method().is_none()
        {
            return Err(EncodeError::AuthenticationDataWithoutMethod); // MQTT 3.1.2.11.10
        }
        Ok(())
    }

    /// Validates the properties for `context` (see [`validate`](Self::validate)) and appends the
    /// Property Length and the properties to `buf`, in ascending identifier order (User
    /// Properties and Subscription Identifiers in theirs), reserving exactly
    /// [`encoded_len`](Self::encoded_len) bytes first. On error nothing is written.
    pub fn encode(&self, context: PropertyContext, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.validate(context)?;
        buf.reserve(self.encoded_len());
        self.write(buf);
        Ok(())
    }

    /// Writes the section; [`validate`](Self::validate) has accepted it.
    pub(crate) fn write(&self, buf: &mut BytesMut) {
        frame::put_var_int(buf, self.properties_len());
        self.write_properties(buf);
    }

    /// Decodes the property section at the start of `input` for `context`: the Property Length,
    /// then exactly that many bytes of properties. Returns the properties and how many bytes the
    /// section took; strings and binary data are slices of `input`.
    ///
    /// Every rule of MQTT 5.0 section 2.2.2 and of the context's property list is checked; the
    /// [`PropertyError`] says which one broke and the Reason Code to disconnect with.
    pub fn decode(context: PropertyContext, input: &Bytes) -> Result<(Self, usize), PropertyError> {
        Self::decode_slice(context, input, input)
    }

    /// [`decode`](Self::decode) for `input`, a slice of `body` (a packet's body, as the nom
    /// parsers of [`wire`](crate::packet::wire) see it), which strings and binary data share.
    /// `Bytes::slice_ref` panics on a slice of anything else.
    pub(crate) fn decode_slice(
        context: PropertyContext,
        body: &Bytes,
        input: &[u8],
    ) -> Result<(Self, usize), PropertyError> {
        let (len, len_len) = match frame::read_var_int(input) {
            Ok(Some((len, len_len))) => (len, len_len),
            Ok(None) => return Err(PropertyError::LengthTruncated),
            Err(MalformedVarInt) => return Err(PropertyError::MalformedLength),
        };
        let available = input.len().saturating_sub(len_len);
        let end = len_len.saturating_add(len as usize);
        let Some(section) = input.get(len_len..end) else {
            return Err(PropertyError::LengthPastEnd {
                length: len,
                available,
            });
        };
        let mut reader = Reader {
            body,
            rest: section,
        };
        let mut properties = Self::new();
        // Identifiers go up to 0x2A, so one bit each fits.
        let mut seen: u64 = 0;
        while !reader.rest.is_empty() {
            let id = match frame::read_var_int(reader.rest) {
                Ok(Some((id, id_len))) => {
                    reader.rest = reader.rest.get(id_len..).unwrap_or_default();
                    id
                }
                // Every identifier is one byte below 0x80: one with the continuation bit is unknown.
                Ok(None) | Err(MalformedVarInt) => {
                    return Err(PropertyError::UnknownProperty {
                        id: u32::from(reader.rest.first().copied().unwrap_or_default()),
                        context,
                    });
                }
            };
            let Some(property) = PropertyId::from_u32(id) else {
                return Err(PropertyError::UnknownProperty { id, context });
            };
            if !property.is_allowed_in(context) {
                return Err(PropertyError::NotAllowed { property, context });
            }
            let bit = 1u64 << (property as u8);
            if seen & bit != 0 && !property.is_repeatable_in(context) {
                return Err(PropertyError::Duplicate { property, context });
            }
            seen |= bit;
            properties.read_value(property, &mut reader)?;
        }
        // Entries arrive in wire order; keep them sorted by identifier (a stable sort, so repeats
        // keep their order). Sections are short, and mostly sorted already.
        if properties
            .entries
            .windows(2)
            .any(|pair| matches!(pair, [a, b] if a.id() > b.id()))
        {
            properties.entries.sort_by_key(Entry::id);
        }
        // MQTT 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is
        // no Authentication Method".
        if context == PropertyContext::Connect
            && properties.authentication_data().is_some()
            && properties.authentication_method().is_none()
        {
            return Err(PropertyError::AuthenticationDataWithoutMethod);
        }
        Ok((properties, end))
    }

    /// Reads `property`'s value, which the section's rules have let through, into `self`.
    fn read_value(
        &mut self,
        property: PropertyId,
        r: &mut Reader<'_>,
    ) -> Result<(), PropertyError> {
        use PropertyId as P;
        match property {
            P::PayloadFormatIndicator => {
                self.payload_format_indicator = Some(match r.byte(property)? {
                    0 => PayloadFormat::Unspecified,
                    1 => PayloadFormat::Utf8,
                    value => return Err(PropertyError::NotZeroOrOne { property, value }),
                });
            }
            P::MessageExpiryInterval => self.message_expiry_interval = Some(r.u32(property)?),
            P::SessionExpiryInterval => self.session_expiry_interval = Some(r.u32(property)?),
            P::WillDelayInterval => self.will_delay_interval = Some(r.u32(property)?),
            P::ServerKeepAlive => self.server_keep_alive = Some(r.u16(property)?),
            P::TopicAliasMaximum => self.topic_alias_maximum = Some(r.u16(property)?),
            P::ReceiveMaximum => {
                let value = NonZeroU16::new(r.u16(property)?);
                self.receive_maximum = Some(value.ok_or(PropertyError::Zero { property })?);
            }
            P::TopicAlias => {
                let value = NonZeroU16::new(r.u16(property)?);
                self.topic_alias = Some(value.ok_or(PropertyError::Zero { property })?);
            }
            P::MaximumPacketSize => {
                let value = NonZeroU32::new(r.u32(property)?);
                self.maximum_packet_size = Some(value.ok_or(PropertyError::Zero { property })?);
            }
            P::SubscriptionIdentifier => {
                let id = SubscriptionId::new(r.var_int(property)?);
                let id = id.ok_or(PropertyError::Zero { property })?;
                self.entries.push(Entry::SubscriptionId(id));
            }
            P::RequestProblemInformation => {
                self.request_problem_information = Some(r.flag(property)?);
            }
            P::RequestResponseInformation => {
                self.request_response_information = Some(r.flag(property)?);
            }
            P::MaximumQos => {
                self.maximum_qos = Some(if r.flag(property)? {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                });
            }
            P::RetainAvailable => self.retain_available = Some(r.flag(property)?),
            P::WildcardSubscriptionAvailable => {
                self.wildcard_subscription_available = Some(r.flag(property)?);
            }
            P::SubscriptionIdentifierAvailable => {
                self.subscription_identifier_available = Some(r.flag(property)?);
            }
            P::SharedSubscriptionAvailable => {
                self.shared_subscription_available = Some(r.flag(property)?);
            }
            P::ResponseTopic => {
                let topic = r.string(property)?;
                // MQTT-3.3.2-14: a topic name, so no wildcards.
                crate::topic::check_topic_name(topic.as_bytes())
                    .map_err(PropertyError::InvalidResponseTopic)?;
                self.entries.push(Entry::String(property, topic));
            }
            P::ContentType
            | P::AssignedClientIdentifier
            | P::AuthenticationMethod
            | P::ResponseInformation
            | P::ServerReference
            | P::ReasonString => {
                let value = r.string(property)?;
                self.entries.push(Entry::String(property, value));
            }
            P::CorrelationData | P::AuthenticationData => {
                let value = r.binary(property)?;
                self.entries.push(Entry::Binary(property, value));
            }
            P::UserProperty => {
                let name = r.string(property)?;
                let value = r.string(property)?;
                self.entries.push(Entry::User(name, value));
            }
        }
        Ok(())
    }
}

/// The properties not yet read, in the frame `body` they share.
struct Reader<'a> {
    body: &'a Bytes,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, property: PropertyId, n: usize) -> Result<&'a [u8], PropertyError> {
        let (value, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(PropertyError::ValueTruncated { property })?;
        self.rest = rest;
        Ok(value)
    }

    fn byte(&mut self, property: PropertyId) -> Result<u8, PropertyError> {
        Ok(self.take(property, 1)?.first().copied().unwrap_or_default())
    }

    /// A Byte that must be 0 or 1.
    fn flag(&mut self, property: PropertyId) -> Result<bool, PropertyError> {
        match self.byte(property)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(PropertyError::NotZeroOrOne { property, value }),
        }
    }

    fn u16(&mut self, property: PropertyId) -> Result<u16, PropertyError> {
        let bytes = self.take(property, 2)?;
        Ok(u16::from_be_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn u32(&mut self, property: PropertyId) -> Result<u32, PropertyError> {
        let bytes = self.take(property, 4)?;
        Ok(u32::from_be_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn var_int(&mut self, property: PropertyId) -> Result<u32, PropertyError> {
        match frame::read_var_int(self.rest) {
            Ok(Some((value, len))) => {
                self.rest = self.rest.get(len..).unwrap_or_default();
                Ok(value)
            }
            Ok(None) => Err(PropertyError::ValueTruncated { property }),
            Err(MalformedVarInt) => Err(PropertyError::MalformedVarInt { property }),
        }
    }

    fn binary(&mut self, property: PropertyId) -> Result<Bytes, PropertyError> {
        let len = self.u16(property)?;
        let raw = self.take(property, usize::from(len))?;
        Ok(self.body.slice_ref(raw))
    }

    fn string(&mut self, property: PropertyId) -> Result<MqttString, PropertyError> {
        let raw = self.binary(property)?;
        // MQTT-1.5.4-1: ill-formed UTF-8 makes the packet malformed.
        MqttString::from_bytes(raw)
            .map_err(|error| PropertyError::InvalidString { property, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ReasonCode;
    use crate::string::StringError;
    use crate::topic::{TopicError, TopicName};
    use proptest::prelude::*;

    fn s(value: &str) -> MqttString {
        MqttString::try_from(value).unwrap()
    }

    fn decode(context: PropertyContext, wire: &[u8]) -> Result<(Properties, usize), PropertyError> {
        Properties::decode(context, &Bytes::copy_from_slice(wire))
    }

    fn encode(context: PropertyContext, properties: &Properties) -> Vec<u8> {
        let mut buf = BytesMut::new();
        properties.encode(context, &mut buf).unwrap();
        assert_eq!(buf.len(), properties.encoded_len());
        buf.to_vec()
    }

    /// Decodes `wire` whole, checks it equals `expected`, and that encoding `expected` gives
    /// `wire` back byte for byte.
    fn assert_vector(context: PropertyContext, wire: &[u8], expected: &Properties) {
        assert_eq!(decode(context, wire), Ok((expected.clone(), wire.len())));
        assert_eq!(encode(context, expected), wire);
    }

    #[test]
    fn a_publish_section_matches_the_spec_byte_for_byte() {
        #[rustfmt::skip]
        let wire = [
            38,                                   // Property Length
            0x01, 0x01,                           // Payload Format Indicator: UTF-8
            0x02, 0x00, 0x00, 0x0E, 0x10,         // Message Expiry Interval: 3600
            0x03, 0x00, 0x04, b'j', b's', b'o', b'n', // Content Type
            0x08, 0x00, 0x03, b'r', b'/', b'1',   // Response Topic
            0x09, 0x00, 0x02, 0xDE, 0xAD,         // Correlation Data
            0x0B, 0x80, 0x01,                     // Subscription Identifier: 128, two bytes
            0x23, 0x00, 0x05,                     // Topic Alias: 5
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // User Property a=b
        ];
        let mut expected = Properties::new();
        expected.payload_format_indicator = Some(PayloadFormat::Utf8);
        expected.message_expiry_interval = Some(3600);
        expected.set_content_type(Some(s("json")));
        expected.set_response_topic(Some(TopicName::try_from("r/1").unwrap()));
        expected.set_correlation_data(Some(Bytes::from_static(&[0xDE, 0xAD])));
        expected.push_subscription_identifier(SubscriptionId::new(128).unwrap());
        expected.topic_alias = NonZeroU16::new(5);
        expected.push_user_property(s("a"), s("b"));
        assert_vector(PropertyContext::Publish, &wire, &expected);
    }

    #[test]
    fn a_connect_section_matches_the_spec_byte_for_byte() {
        #[rustfmt::skip]
        let wire = [
            34,                                   // Property Length
            0x11, 0x00, 0x00, 0x00, 0x78,         // Session Expiry Interval: 120
            0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
            0x16, 0x00, 0x03, 0x01, 0x02, 0x03,   // Authentication Data
            0x17, 0x00,                           // Request Problem Information: 0
            0x19, 0x01,                           // Request Response Information: 1
            0x21, 0x00, 0x14,                     // Receive Maximum: 20
            0x22, 0x00, 0x0A,                     // Topic Alias Maximum: 10
            0x27, 0x00, 0x01, 0x00, 0x00,         // Maximum Packet Size: 65,536
        ];
        let mut expected = Properties::new();
        expected.session_expiry_interval = Some(120);
        expected.set_authentication_method(Some(s("SCRAM")));
        expected.set_authentication_data(Some(Bytes::from_static(&[1, 2, 3])));
        expected.request_problem_information = Some(false);
        expected.request_response_information = Some(true);
        expected.receive_maximum = NonZeroU16::new(20);
        expected.topic_alias_maximum = Some(10);
        expected.maximum_packet_size = NonZeroU32::new(65_536);
        assert_vector(PropertyContext::Connect, &wire, &expected);
    }

    #[test]
    fn a_connack_section_matches_the_spec_byte_for_byte() {
        #[rustfmt::skip]
        let wire = [
            34,                                   // Property Length
            0x12, 0x00, 0x02, b'x', b'1',         // Assigned Client Identifier
            0x13, 0x00, 0x3C,                     // Server Keep Alive: 60
            0x1A, 0x00, 0x02, b'r', b'i',         // Response Information
            0x1C, 0x00, 0x03, b's', b':', b'1',   // Server Reference
            0x1F, 0x00, 0x02, b'o', b'k',         // Reason String
            0x24, 0x00,                           // Maximum QoS: 0
            0x25, 0x01,                           // Retain Available
            0x28, 0x00,                           // Wildcard Subscription Available: no
            0x29, 0x01,                           // Subscription Identifier Available
            0x2A, 0x00,                           // Shared Subscription Available: no
        ];
        let mut expected = Properties::new();
        expected.set_assigned_client_identifier(Some(s("x1")));
        expected.server_keep_alive = Some(60);
        expected.set_response_information(Some(s("ri")));
        expected.set_server_reference(Some(s("s:1")));
        expected.set_reason_string(Some(s("ok")));
        expected.maximum_qos = Some(QoS::AtMostOnce);
        expected.retain_available = Some(true);
        expected.wildcard_subscription_available = Some(false);
        expected.subscription_identifier_available = Some(true);
        expected.shared_subscription_available = Some(false);
        assert_vector(PropertyContext::ConnAck, &wire, &expected);
    }

    #[test]
    fn will_and_acknowledgement_sections_match_the_spec_byte_for_byte() {
        let mut will = Properties::new();
        will.payload_format_indicator = Some(PayloadFormat::Unspecified);
        will.will_delay_interval = Some(10);
        let wire = [7, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00, 0x0A];
        assert_vector(PropertyContext::Will, &wire, &will);

        let mut ack = Properties::new();
        ack.set_reason_string(Some(s("quota")));
        let wire = [8, 0x1F, 0x00, 0x05, b'q', b'u', b'o', b't', b'a'];
        for context in [
            PropertyContext::PubAck,
            PropertyContext::PubRec,
            PropertyContext::PubRel,
            PropertyContext::PubComp,
            PropertyContext::SubAck,
            PropertyContext::UnsubAck,
            PropertyContext::Disconnect,
            PropertyContext::Auth,
        ] {
            assert_vector(context, &wire, &ack);
        }
    }

    #[test]
    fn an_empty_section_is_one_zero_byte_in_every_context() {
        for context in PropertyContext::ALL {
            assert_vector(context, &[0x00], &Properties::new());
        }
        assert!(Properties::new().is_empty());
        assert_eq!(Properties::new().encoded_len(), 1);
    }

    #[test]
    fn decoding_stops_at_the_property_length_and_shares_the_frame() {
        let wire = Bytes::from_static(&[4, 0x03, 0x00, 0x01, b't', 0xAA, 0xBB]);
        let (properties, used) = Properties::decode(PropertyContext::Publish, &wire).unwrap();
        assert_eq!(used, 5);
        let content_type = properties.content_type().unwrap();
        assert_eq!(content_type, "t");
        // A view into the frame, not a copy.
        assert!(
            wire.as_ptr_range()
                .contains(&content_type.as_bytes().as_ptr())
        );
    }

    #[test]
    fn properties_in_any_order_decode_to_the_same_set_and_encode_in_identifier_order() {
        #[rustfmt::skip]
        let wire = [
            16,
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'2', // User Property k=2
            0x03, 0x00, 0x01, b't',                   // Content Type
            0x02, 0x00, 0x00, 0x00, 0x01,             // Message Expiry Interval: 1
        ];
        let mut expected = Properties::new();
        expected.push_user_property(s("k"), s("2"));
        expected.set_content_type(Some(s("t")));
        expected.message_expiry_interval = Some(1);
        assert_eq!(
            decode(PropertyContext::Publish, &wire),
            Ok((expected.clone(), wire.len()))
        );
        assert_eq!(
            encode(PropertyContext::Publish, &expected),
            [
                16, 0x02, 0, 0, 0, 1, 0x03, 0, 1, b't', 0x26, 0, 1, b'k', 0, 1, b'2'
            ]
        );
    }

    #[test]
    fn user_properties_repeat_in_order_even_with_the_same_name() {
        #[rustfmt::skip]
        let wire = [
            20,
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'2',
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'1',
            0x26, 0x00, 0x01, b'a', 0x00, 0x00,       // empty value
        ];
        let (properties, _) = decode(PropertyContext::Subscribe, &wire).unwrap();
        let pairs: Vec<(&str, &str)> = properties
            .user_properties()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(pairs, [("k", "2"), ("k", "1"), ("a", "")]);
        assert_eq!(encode(PropertyContext::Subscribe, &properties), wire);
    }

    #[test]
    fn a_user_property_needs_its_value() {
        // Name "k", then the section ends where the value's length should be.
        let wire = [4, 0x26, 0x00, 0x01, b'k'];
        assert_eq!(
            decode(PropertyContext::PubAck, &wire),
            Err(PropertyError::ValueTruncated {
                property: PropertyId::UserProperty
            })
        );
    }

    #[test]
    fn a_publish_carries_several_subscription_identifiers_a_subscribe_one() {
        let wire = [6, 0x0B, 0x01, 0x0B, 0xFF, 0xFF, 0x7F];
        let (properties, _) = decode(PropertyContext::Publish, &wire).unwrap();
        let ids: Vec<u32> = properties
            .subscription_identifiers()
            .map(SubscriptionId::get)
            .collect();
        assert_eq!(ids, [1, 2_097_151]);
        assert_eq!(encode(PropertyContext::Publish, &properties), wire);

        let error = decode(PropertyContext::Subscribe, &wire).unwrap_err();
        assert_eq!(
            error,
            PropertyError::Duplicate {
                property: PropertyId::SubscriptionIdentifier,
                context: PropertyContext::Subscribe
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        let mut buf = BytesMut::new();
        assert_eq!(
            properties.encode(PropertyContext::Subscribe, &mut buf),
            Err(EncodeError::PropertyRepeated {
                property: PropertyId::SubscriptionIdentifier,
                context: PropertyContext::Subscribe
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn the_largest_subscription_identifier_takes_four_bytes() {
        let id = SubscriptionId::new(268_435_455).unwrap();
        assert_eq!(id, SubscriptionId::MAX);
        assert_eq!(SubscriptionId::new(268_435_456), None);
        assert_eq!(SubscriptionId::new(0), None);
        let mut properties = Properties::new();
        properties.push_subscription_identifier(id);
        let wire = [5, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_vector(PropertyContext::Subscribe, &wire, &properties);
    }

    #[test]
    fn a_subscription_identifier_in_more_bytes_than_needed_is_read_and_written_short() {
        // 0x81 0x00 is 1 in two bytes: MQTT-1.5.5-1 binds the sender, the decoder reads it.
        let (properties, used) = decode(PropertyContext::Publish, &[3, 0x0B, 0x81, 0x00]).unwrap();
        assert_eq!(used, 4);
        let ids: Vec<u32> = properties
            .subscription_identifiers()
            .map(SubscriptionId::get)
            .collect();
        assert_eq!(ids, [1]);
        assert_eq!(
            encode(PropertyContext::Publish, &properties),
            [2, 0x0B, 0x01]
        );
    }

    #[test]
    fn a_repeated_property_is_a_protocol_error() {
        let wire = [6, 0x13, 0x00, 0x0A, 0x13, 0x00, 0x0B];
        let error = decode(PropertyContext::ConnAck, &wire).unwrap_err();
        assert_eq!(
            error,
            PropertyError::Duplicate {
                property: PropertyId::ServerKeepAlive,
                context: PropertyContext::ConnAck
            }
        );
        assert_eq!(error.reason_code().to_u8(), 0x82);
        assert_eq!(
            error.to_string(),
            "Server Keep Alive appears more than once in CONNACK, a Protocol Error (MQTT 5.0 section 2.2.2.2)"
        );
        // Strings too: two Reason Strings.
        let wire = [8, 0x1F, 0x00, 0x01, b'a', 0x1F, 0x00, 0x01, b'b'];
        assert!(matches!(
            decode(PropertyContext::Disconnect, &wire),
            Err(PropertyError::Duplicate {
                property: PropertyId::ReasonString,
                ..
            })
        ));
    }

    #[test]
    fn a_property_outside_its_packets_is_malformed() {
        // Session Expiry Interval in PUBLISH.
        let wire = [5, 0x11, 0x00, 0x00, 0x00, 0x01];
        let error = decode(PropertyContext::Publish, &wire).unwrap_err();
        assert_eq!(
            error,
            PropertyError::NotAllowed {
                property: PropertyId::SessionExpiryInterval,
                context: PropertyContext::Publish
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
        assert_eq!(
            error.to_string(),
            "Session Expiry Interval is not allowed in PUBLISH (MQTT 5.0 section 2.2.2.2: a Malformed Packet)"
        );
        // A Topic Alias in a will, a Will Delay Interval in PUBLISH, a Reason String in PUBLISH.
        for (context, wire, property) in [
            (
                PropertyContext::Will,
                &[3, 0x23, 0x00, 0x01][..],
                PropertyId::TopicAlias,
            ),
            (
                PropertyContext::Publish,
                &[5, 0x18, 0, 0, 0, 1],
                PropertyId::WillDelayInterval,
            ),
            (
                PropertyContext::Publish,
                &[3, 0x1F, 0, 0],
                PropertyId::ReasonString,
            ),
        ] {
            assert_eq!(
                decode(context, wire),
                Err(PropertyError::NotAllowed { property, context })
            );
        }
        let mut properties = Properties::new();
        properties.topic_alias = NonZeroU16::new(1);
        let mut buf = BytesMut::new();
        assert_eq!(
            properties.encode(PropertyContext::Connect, &mut buf),
            Err(EncodeError::PropertyNotAllowed {
                property: PropertyId::TopicAlias,
                context: PropertyContext::Connect
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn an_undefined_identifier_is_malformed() {
        for id in [0x00, 0x04, 0x2B, 0x7F] {
            let error = decode(PropertyContext::Publish, &[2, id, 0x00]).unwrap_err();
            assert_eq!(
                error,
                PropertyError::UnknownProperty {
                    id: u32::from(id),
                    context: PropertyContext::Publish
                }
            );
            assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
        }
        // A two-byte identifier (0x81 0x01 = 129) is no property either.
        assert!(matches!(
            decode(PropertyContext::Publish, &[2, 0x81, 0x01]),
            Err(PropertyError::UnknownProperty { .. })
        ));
    }

    #[test]
    fn zero_receive_maximum_and_maximum_packet_size_are_protocol_errors() {
        for (context, wire, property) in [
            (
                PropertyContext::Connect,
                &[3, 0x21, 0x00, 0x00][..],
                PropertyId::ReceiveMaximum,
            ),
            (
                PropertyContext::ConnAck,
                &[3, 0x21, 0x00, 0x00],
                PropertyId::ReceiveMaximum,
            ),
            (
                PropertyContext::Connect,
                &[5, 0x27, 0, 0, 0, 0],
                PropertyId::MaximumPacketSize,
            ),
            (
                PropertyContext::ConnAck,
                &[5, 0x27, 0, 0, 0, 0],
                PropertyId::MaximumPacketSize,
            ),
        ] {
            let error = decode(context, wire).unwrap_err();
            assert_eq!(error, PropertyError::Zero { property });
            assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        }
        assert_eq!(
            PropertyError::Zero {
                property: PropertyId::ReceiveMaximum
            }
            .to_string(),
            "Receive Maximum is 0, which is not allowed (MQTT 5.0 sections 3.1.2.11.3, 3.2.2.3.3)"
        );
    }

    #[test]
    fn subscription_identifier_0_is_a_protocol_error() {
        for context in [PropertyContext::Publish, PropertyContext::Subscribe] {
            let error = decode(context, &[2, 0x0B, 0x00]).unwrap_err();
            assert_eq!(
                error,
                PropertyError::Zero {
                    property: PropertyId::SubscriptionIdentifier
                }
            );
            assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        }
    }

    #[test]
    fn topic_alias_0_disconnects_with_topic_alias_invalid() {
        let error = decode(PropertyContext::Publish, &[3, 0x23, 0x00, 0x00]).unwrap_err();
        assert_eq!(
            error,
            PropertyError::Zero {
                property: PropertyId::TopicAlias
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::TopicAliasInvalid);
    }

    #[test]
    fn a_payload_format_indicator_other_than_0_or_1_is_a_protocol_error() {
        let error = decode(PropertyContext::Publish, &[2, 0x01, 0x02]).unwrap_err();
        assert_eq!(
            error,
            PropertyError::NotZeroOrOne {
                property: PropertyId::PayloadFormatIndicator,
                value: 2
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        assert_eq!(
            error.to_string(),
            "Payload Format Indicator is 2; only 0 and 1 are allowed (MQTT 5.0 section 3.3.2.3.2)"
        );
    }

    #[test]
    fn byte_flags_must_be_0_or_1() {
        for (context, id) in [
            (
                PropertyContext::Connect,
                PropertyId::RequestProblemInformation,
            ),
            (
                PropertyContext::Connect,
                PropertyId::RequestResponseInformation,
            ),
            (PropertyContext::ConnAck, PropertyId::MaximumQos),
            (PropertyContext::ConnAck, PropertyId::RetainAvailable),
            (
                PropertyContext::ConnAck,
                PropertyId::WildcardSubscriptionAvailable,
            ),
            (
                PropertyContext::ConnAck,
                PropertyId::SubscriptionIdentifierAvailable,
            ),
            (
                PropertyContext::ConnAck,
                PropertyId::SharedSubscriptionAvailable,
            ),
        ] {
            assert_eq!(
                decode(context, &[2, id as u8, 0x02]),
                Err(PropertyError::NotZeroOrOne {
                    property: id,
                    value: 2
                }),
                "{id}"
            );
            assert!(decode(context, &[2, id as u8, 0x01]).is_ok(), "{id}");
        }
    }

    #[test]
    fn maximum_qos_2_cannot_be_encoded() {
        let mut properties = Properties::new();
        properties.maximum_qos = Some(QoS::ExactlyOnce);
        assert_eq!(
            properties.validate(PropertyContext::ConnAck),
            Err(EncodeError::MaximumQos2)
        );
        properties.maximum_qos = Some(QoS::AtLeastOnce);
        assert_vector(PropertyContext::ConnAck, &[2, 0x24, 0x01], &properties);
    }

    #[test]
    fn a_truncated_or_overlong_property_length_is_malformed() {
        assert_eq!(
            decode(PropertyContext::PubAck, &[]),
            Err(PropertyError::LengthTruncated)
        );
        assert_eq!(
            decode(PropertyContext::PubAck, &[0x80, 0x80]),
            Err(PropertyError::LengthTruncated)
        );
        let error = decode(PropertyContext::PubAck, &[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).unwrap_err();
        assert_eq!(error, PropertyError::MalformedLength);
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
    }

    #[test]
    fn a_property_length_past_the_end_is_malformed() {
        let error = decode(PropertyContext::Publish, &[5, 0x01, 0x00]).unwrap_err();
        assert_eq!(
            error,
            PropertyError::LengthPastEnd {
                length: 5,
                available: 2
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
        // The largest length there is, with nothing behind it.
        assert_eq!(
            decode(PropertyContext::Publish, &[0xFF, 0xFF, 0xFF, 0x7F]),
            Err(PropertyError::LengthPastEnd {
                length: 268_435_455,
                available: 0
            })
        );
    }

    #[test]
    fn a_value_cut_by_the_property_length_is_malformed() {
        for (wire, property) in [
            // Message Expiry Interval with two of its four bytes.
            (
                &[3, 0x02, 0x00, 0x00][..],
                PropertyId::MessageExpiryInterval,
            ),
            // Topic Alias with one of two.
            (&[2, 0x23, 0x00], PropertyId::TopicAlias),
            // Content Type announcing 5 bytes, with 1.
            (&[4, 0x03, 0x00, 0x05, b'a'], PropertyId::ContentType),
            // Correlation Data without its length.
            (&[2, 0x09, 0x00], PropertyId::CorrelationData),
            // Subscription Identifier whose continuation bit runs off the end.
            (&[2, 0x0B, 0x80], PropertyId::SubscriptionIdentifier),
        ] {
            // The property length cuts the value even though the buffer goes on.
            let mut input = wire.to_vec();
            input.extend_from_slice(&[0x00; 8]);
            let error = decode(PropertyContext::Publish, &input).unwrap_err();
            assert_eq!(error, PropertyError::ValueTruncated { property });
            assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
        }
        assert_eq!(
            decode(PropertyContext::Publish, &[5, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(PropertyError::MalformedVarInt {
                property: PropertyId::SubscriptionIdentifier
            })
        );
    }

    #[test]
    fn invalid_utf8_in_a_string_property_is_malformed() {
        let error =
            decode(PropertyContext::Publish, &[5, 0x03, 0x00, 0x02, 0xC3, 0x28]).unwrap_err();
        assert_eq!(
            error,
            PropertyError::InvalidString {
                property: PropertyId::ContentType,
                error: StringError::InvalidUtf8 { valid_up_to: 0 }
            }
        );
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
        // U+0000 in a User Property's value.
        let error = decode(PropertyContext::Auth, &[7, 0x26, 0, 1, b'k', 0, 1, 0]).unwrap_err();
        assert_eq!(
            error,
            PropertyError::InvalidString {
                property: PropertyId::UserProperty,
                error: StringError::NullCharacter { position: 0 }
            }
        );
        assert_eq!(
            error.to_string(),
            "User Property: U+0000 at byte 0 is not allowed (MQTT-1.5.3-2)"
        );
    }

    #[test]
    fn a_response_topic_with_a_wildcard_is_a_protocol_error() {
        let error = decode(PropertyContext::Will, &[5, 0x08, 0x00, 0x02, b'a', b'#']).unwrap_err();
        assert!(
            matches!(
                error,
                PropertyError::InvalidResponseTopic(TopicError::WildcardInName { .. })
            ),
            "{error:?}"
        );
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
    }

    #[test]
    fn authentication_data_needs_a_method_in_connect() {
        let wire = [4, 0x16, 0x00, 0x01, 0xFF];
        let error = decode(PropertyContext::Connect, &wire).unwrap_err();
        assert_eq!(error, PropertyError::AuthenticationDataWithoutMethod);
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        let mut properties = Properties::new();
        properties.set_authentication_data(Some(Bytes::from_static(b"x")));
        assert_eq!(
            properties.validate(PropertyContext::Connect),
            Err(EncodeError::AuthenticationDataWithoutMethod)
        );
    }

    #[test]
    fn binary_data_over_65535_bytes_cannot_be_encoded() {
        let mut properties = Properties::new();
        properties.set_correlation_data(Some(Bytes::from(vec![0; 65_536])));
        let mut buf = BytesMut::new();
        assert_eq!(
            properties.encode(PropertyContext::Publish, &mut buf),
            Err(EncodeError::FieldTooLong {
                field: "Correlation Data",
                len: 65_536
            })
        );
        assert!(buf.is_empty());
    }

    fn string() -> impl Strategy<Value = MqttString> {
        "[a-z/ é]{0,8}".prop_map(|value| MqttString::try_from(value).unwrap())
    }

    fn binary() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from)
    }

    fn flag() -> impl Strategy<Value = Option<bool>> {
        proptest::option::of(any::<bool>())
    }

    /// Any set of properties, each present or not, whatever the context.
    fn any_properties() -> impl Strategy<Value = Properties> {
        let numbers = (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u16>()),
            flag(),
            proptest::option::of(any::<u32>()),
            flag(),
            proptest::option::of(1..=u16::MAX),
            proptest::option::of(any::<u16>()),
            proptest::option::of(1..=u16::MAX),
            flag(),
            flag(),
        );
        let more_numbers = (proptest::option::of(1..=u32::MAX), flag(), flag(), flag());
        let strings = proptest::collection::vec(proptest::option::of(string()), 7);
        let topic = proptest::option::of("[a-z]{1,4}(/[a-z]{0,4}){0,2}");
        let binaries = (
            proptest::option::of(binary()),
            proptest::option::of(binary()),
        );
        let ids = proptest::collection::vec(1..=SubscriptionId::MAX.get(), 0..3);
        let users = proptest::collection::vec((string(), string()), 0..3);
        (numbers, more_numbers, strings, topic, binaries, ids, users).prop_map(
            |(n, m, strings, topic, (correlation, auth_data), ids, users)| {
                let mut p = Properties::new();
                p.payload_format_indicator = n.0.map(|utf8| {
                    if utf8 {
                        PayloadFormat::Utf8
                    } else {
                        PayloadFormat::Unspecified
                    }
                });
                p.message_expiry_interval = n.1;
                p.session_expiry_interval = n.2;
                p.server_keep_alive = n.3;
                p.request_problem_information = n.4;
                p.will_delay_interval = n.5;
                p.request_response_information = n.6;
                p.receive_maximum = n.7.and_then(NonZeroU16::new);
                p.topic_alias_maximum = n.8;
                p.topic_alias = n.9.and_then(NonZeroU16::new);
                p.maximum_qos = n.10.map(|one| {
                    if one {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    }
                });
                p.retain_available = n.11;
                p.maximum_packet_size = m.0.and_then(NonZeroU32::new);
                p.wildcard_subscription_available = m.1;
                p.subscription_identifier_available = m.2;
                p.shared_subscription_available = m.3;
                let [ct, aci, am, ri, sr, rs, _]: [Option<MqttString>; 7] =
                    strings.try_into().unwrap();
                p.set_content_type(ct);
                p.set_assigned_client_identifier(aci);
                p.set_authentication_method(am);
                p.set_response_information(ri);
                p.set_server_reference(sr);
                p.set_reason_string(rs);
                p.set_response_topic(topic.map(|t| TopicName::try_from(t.as_str()).unwrap()));
                p.set_correlation_data(correlation);
                p.set_authentication_data(auth_data);
                for id in ids {
                    p.push_subscription_identifier(SubscriptionId::new(id).unwrap());
                }
                for (name, value) in users {
                    p.push_user_property(name, value);
                }
                p
            },
        )
    }

    /// Drops what `context` does not allow, so that what is left is a valid section there.
    fn restrict(mut p: Properties, context: PropertyContext) -> Properties {
        macro_rules! keep {
            ($($field:ident: $id:ident),*) => {
                $(if !PropertyId::$id.is_allowed_in(context) { p.$field = None; })*
            };
        }
        keep!(
            payload_format_indicator: PayloadFormatIndicator,
            message_expiry_interval: MessageExpiryInterval,
            session_expiry_interval: SessionExpiryInterval,
            server_keep_alive: ServerKeepAlive,
            request_problem_information: RequestProblemInformation,
            will_delay_interval: WillDelayInterval,
            request_response_information: RequestResponseInformation,
            receive_maximum: ReceiveMaximum,
            topic_alias_maximum: TopicAliasMaximum,
            topic_alias: TopicAlias,
            maximum_qos: MaximumQos,
            retain_available: RetainAvailable,
            maximum_packet_size: MaximumPacketSize,
            wildcard_subscription_available: WildcardSubscriptionAvailable,
            subscription_identifier_available: SubscriptionIdentifierAvailable,
            shared_subscription_available: SharedSubscriptionAvailable
        );
        p.entries.retain(|entry| entry.id().is_allowed_in(context));
        if !PropertyId::SubscriptionIdentifier.is_repeatable_in(context) {
            let first = p.subscription_identifiers().next();
            p.clear_subscription_identifiers();
            if let Some(id) = first {
                p.push_subscription_identifier(id);
            }
        }
        if context == PropertyContext::Connect && p.authentication_method().is_none() {
            p.set_authentication_data(None);
        }
        p
    }

    fn any_section() -> impl Strategy<Value = (PropertyContext, Properties)> {
        (
            proptest::sample::select(PropertyContext::ALL.to_vec()),
            any_properties(),
        )
            .prop_map(|(context, p)| (context, restrict(p, context)))
    }

    /// Bytes that look like properties often enough to get past the first check.
    fn property_like_bytes() -> impl Strategy<Value = Vec<u8>> {
        let ids: Vec<u8> = (0..=0x2A)
            .filter(|&id| PropertyId::from_u32(id).is_some())
            .map(|id| id as u8)
            .collect();
        proptest::collection::vec(
            prop_oneof![
                any::<u8>(),
                proptest::sample::select(ids),
                Just(0u8),
                Just(1u8)
            ],
            0..48,
        )
        .prop_map(|mut bytes| {
            // Mostly a Property Length that fits what follows.
            let len = u8::try_from(bytes.len().saturating_sub(1)).unwrap();
            if let Some(first) = bytes.first_mut() {
                if *first % 4 != 0 {
                    *first = len;
                }
            }
            bytes
        })
    }

    proptest! {
        #[test]
        fn valid_sections_round_trip_at_their_exact_length((context, properties) in any_section()) {
            let mut buf = BytesMut::new();
            properties.encode(context, &mut buf).unwrap();
            prop_assert_eq!(buf.len(), properties.encoded_len());
            // Something after the section is left alone.
            buf.put_u8(0xEE);
            let wire = buf.freeze();
            let (decoded, used) = Properties::decode(context, &wire).unwrap();
            prop_assert_eq!(used, wire.len() - 1);
            prop_assert_eq!(&decoded, &properties);
            // Every strict prefix of the section is refused, never misread.
            for cut in 0..used {
                prop_assert!(Properties::decode(context, &wire.slice(..cut)).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_what_decodes_encodes_again(
            context in proptest::sample::select(PropertyContext::ALL.to_vec()),
            bytes in property_like_bytes(),
        ) {
            let input = Bytes::from(bytes);
            if let Ok((properties, used)) = Properties::decode(context, &input) {
                prop_assert!(used <= input.len());
                let mut buf = BytesMut::new();
                properties.encode(context, &mut buf).unwrap();
                let (again, _) = Properties::decode(context, &buf.freeze()).unwrap();
                prop_assert_eq!(again, properties);
            } else if let Err(error) = Properties::decode(context, &input) {
                prop_assert!(error.reason_code().is_error());
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}
