//! SUBSCRIBE (MQTT 3.8): the client asks for messages matching topic filters.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{HeldProperties, impl_properties};
use super::{
    DecodeError, EncodeBody, EncodeError, PacketId, PacketType, PropertyContext, Protocol, QoS,
    impl_encode, v5_only, wire,
};
use crate::topic::TopicFilter;

/// Whether the server sends retained messages when a subscription is made (MQTT 5.0 section
/// 3.8.3.1, bits 4 and 5 of the Subscription Options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send them at subscribe time, as MQTT 3.1.1 always does.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist.
    SendAtNewSubscribe = 1,
    /// 2: never send them at subscribe time.
    DoNotSend = 2,
}

/// One topic filter of a SUBSCRIBE and its options: the maximum QoS asked for it, and in MQTT 5
/// No Local, Retain As Published and Retain Handling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: TopicFilter,
    /// The highest QoS the client wants messages at.
    pub qos: QoS,
    /// MQTT 5: do not send this client the messages it publishes itself (not allowed on a shared
    /// subscription, MQTT-3.8.3-4).
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// MQTT 5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

const NO_LOCAL: u8 = 0b0000_0100;
const RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING: u8 = 0b0011_0000;

impl SubscribeFilter {
    /// `filter` at `qos`, with MQTT 3.1.1's behaviour for the MQTT 5 options.
    pub const fn new(filter: TopicFilter, qos: QoS) -> Self {
        Self {
            filter,
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    /// Whether any MQTT 5 option differs from MQTT 3.1.1's behaviour.
    #[inline]
    fn has_v5_options(&self) -> bool {
        self.v5_options() != 0
    }

    /// Not 0 when an MQTT 5 option differs from MQTT 3.1.1's behaviour. Bitwise, so a
    /// SUBSCRIBE's filters are checked without a branch each.
    #[inline]
    fn v5_options(&self) -> u8 {
        u8::from(self.no_local) | u8::from(self.retain_as_published) | self.retain_handling as u8
    }

    /// The Subscription Options byte (MQTT 5.0 figure 3-12); only the QoS in MQTT 3.1.1.
    #[inline]
    fn options_byte(&self) -> u8 {
        let mut byte = self.qos as u8 | ((self.retain_handling as u8) << 4);
        if self.no_local {
            byte |= NO_LOCAL;
        }
        if self.retain_as_published {
            byte |= RETAIN_AS_PUBLISHED;
        }
        byte
    }

    /// Reads MQTT 5's Subscription Options byte after `filter`.
    fn from_options_v5(filter: TopicFilter, byte: u8) -> Result<Self, DecodeError> {
        // MQTT-3.8.3-5: reserved bits 7-6 are 0; QoS 3 and Retain Handling 3 are Protocol
        // Errors (MQTT 5.0 section 3.8.3.1).
        let retain_handling = match (byte & RETAIN_HANDLING) >> 4 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtNewSubscribe,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidSubscriptionOptions { filter, byte }),
        };
        let (Some(qos), 0) = (QoS::from_u8(byte & 0b11), byte & 0b1100_0000) else {
            return Err(DecodeError::InvalidSubscriptionOptions { filter, byte });
        };
        let no_local = byte & NO_LOCAL != 0;
        if no_local && filter.is_shared() {
            return Err(DecodeError::NoLocalOnSharedSubscription { filter }); // MQTT-3.8.3-4
        }
        Ok(Self {
            filter,
            qos,
            no_local,
            retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }
}

/// A request for messages on one or more topic filters; in MQTT 5 with properties (a Subscription
/// Identifier, User Properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Identifier the SUBACK will carry.
    pub packet_id: PacketId,
    /// At least one filter (MQTT-3.8.3-3).
    pub filters: Vec<SubscribeFilter>,
    properties: HeldProperties,
}

impl Subscribe {
    /// A SUBSCRIBE to one filter.
    pub fn new(packet_id: PacketId, filter: TopicFilter, qos: QoS) -> Self {
        Self::with_filters(packet_id, vec![SubscribeFilter::new(filter, qos)])
    }

    /// A SUBSCRIBE to `filters`, without properties.
    pub const fn with_filters(packet_id: PacketId, filters: Vec<SubscribeFilter>) -> Self {
        Self {
            packet_id,
            filters,
            properties: HeldProperties::EMPTY,
        }
    }

    /// Parses a SUBSCRIBE body. Brokers decode one per client and subscription change, so the loop
    /// reads the slices directly rather than through nom, and sizes the filter list once.
    pub(crate) fn decode(v5: bool, body: &Bytes) -> Result<Self, DecodeError> {
        let too_short = || DecodeError::BodyTooShort {
            packet_type: PacketType::Subscribe,
            remaining_length: body.len(),
        };
        let Some((&id, mut rest)) = body.split_first_chunk::<2>() else {
            return Err(too_short());
        };
        let packet_id = PacketId::new(u16::from_be_bytes(id)).ok_or(DecodeError::ZeroPacketId {
            packet_type: PacketType::Subscribe,
        })?;
        let mut properties = HeldProperties::EMPTY;
        if v5 {
            (rest, properties) = wire::properties_at(body, PropertyContext::Subscribe, rest)?;
        }
        let mut filters = Vec::with_capacity(count_filters(rest));
        while let Some((&len, after_len)) = rest.split_first_chunk::<2>() {
            let Some((raw, after)) =
                after_len.split_at_checked(usize::from(u16::from_be_bytes(len)))
            else {
                return Err(too_short());
            };
            let filter = TopicFilter::from_bytes(body.slice_ref(raw))
                .map_err(DecodeError::InvalidTopicFilter)?;
            let Some((&byte, after)) = after.split_first() else {
                return Err(too_short());
            };
            let subscription = if v5 {
                SubscribeFilter::from_options_v5(filter, byte)?
            } else {
                // MQTT-3.8.3-4: reserved bits 7-2 must be 0 and QoS must be 0, 1 or 2.
                match QoS::from_u8(byte) {
                    Some(qos) => SubscribeFilter::new(filter, qos),
                    None => return Err(DecodeError::InvalidRequestedQos { filter, byte }),
                }
            };
            filters.push(subscription);
            rest = after;
        }
        if !rest.is_empty() {
            return Err(too_short()); // one byte: a length prefix cut short
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            }); // MQTT-3.8.3-3
        }
        Ok(Self {
            packet_id,
            filters,
            properties,
        })
    }
}

impl_properties!(Subscribe, PropertyContext::Subscribe);

/// How many filters a SUBSCRIBE's payload holds, counted by their length prefixes (each followed by
/// the filter and a QoS byte); a truncated last one counts too, and decoding then refuses it.
fn count_filters(mut rest: &[u8]) -> usize {
    let mut count = 0;
    while let Some((&len, after_len)) = rest.split_first_chunk::<2>() {
        count += 1;
        let skip = usize::from(u16::from_be_bytes(len)) + 1;
        rest = after_len.get(skip..).unwrap_or_default();
    }
    count
}

impl EncodeBody for Subscribe {
    const PACKET_TYPE: PacketType = PacketType::Subscribe;

    #[inline]
    fn remaining_len(&self, protocol: Protocol) -> usize {
        let header = if protocol.is_v5() {
            2usize.saturating_add(self.properties.encoded_len())
        } else {
            2
        };
        self.filters.iter().fold(header, |len, f| {
            len.saturating_add(wire::prefixed_len(f.filter.as_bytes()))
                .saturating_add(1)
        })
    }

    #[inline]
    fn validate(&self, protocol: Protocol) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            }); // MQTT-3.8.3-3
        }
        // A tight pass first; the rules about the options only when some filter has them.
        if self.filters.iter().any(SubscribeFilter::has_v5_options) {
            v5_only(
                protocol,
                PacketType::Subscribe,
                "subscription options",
                true,
            )?;
            if let Some(f) = self
                .filters
                .iter()
                .find(|f| f.no_local && f.filter.is_shared())
            {
                return Err(EncodeError::NoLocalOnSharedSubscription {
                    filter: f.filter.clone(),
                }); // MQTT-3.8.3-4
            }
        }
        v5_only(
            protocol,
            PacketType::Subscribe,
            "properties",
            !self.properties.is_empty(),
        )?;
        self.properties.validate(PropertyContext::Subscribe)
    }

    /// In MQTT 3.1.1 one pass over the filters sums their lengths and gathers their options:
    /// a second pass only to find no MQTT 5 option cost a SUBSCRIBE of ten filters about 4% of its
    /// encoding. Whatever MQTT 3.1.1 refuses (no filter, an option, properties) is left to
    /// [`validate`](EncodeBody::validate) to name.
    #[inline]
    fn checked_remaining_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if protocol.is_v5() {
            self.validate(protocol)?;
            return Ok(self.remaining_len(protocol));
        }
        let (len, options) = self
            .filters
            .iter()
            .fold((2usize, 0u8), |(len, options), f| {
                let len = len
                    .saturating_add(wire::prefixed_len(f.filter.as_bytes()))
                    .saturating_add(1);
                (len, options | f.v5_options())
            });
        if self.filters.is_empty() || options != 0 || !self.properties.is_empty() {
            self.validate(protocol)?;
        }
        Ok(len)
    }

    #[inline]
    fn write_body(&self, protocol: Protocol, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if protocol.is_v5() {
            self.properties.write(buf);
            for f in &self.filters {
                wire::put_prefixed(buf, f.filter.as_bytes());
                buf.put_u8(f.options_byte());
            }
        } else {
            // Validation made sure an MQTT 3.1.1 filter's options are its QoS alone.
            for f in &self.filters {
                wire::put_prefixed(buf, f.filter.as_bytes());
                buf.put_u8(f.qos as u8);
            }
        }
    }
}

impl_encode!(Subscribe);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MqttString;
    use crate::packet::Properties;

    fn filter(qos: QoS) -> SubscribeFilter {
        SubscribeFilter::new(TopicFilter::try_from("a/+").unwrap(), qos)
    }

    /// The one-pass length of an MQTT 3.1.1 SUBSCRIBE refuses what `validate` refuses, with its
    /// errors, and writes nothing then.
    #[test]
    fn mqtt311_refuses_mqtt5_parts_and_no_filters() {
        let id = PacketId::new(7).unwrap();
        let not_in_311 = |part| EncodeError::NotInProtocol {
            packet_type: PacketType::Subscribe,
            part,
            protocol: Protocol::Mqtt311,
        };
        let mut with_option = filter(QoS::AtLeastOnce);
        with_option.retain_handling = RetainHandling::DoNotSend;
        let mut properties = Properties::new();
        let name = MqttString::try_from("k").unwrap();
        properties.push_user_property(name.clone(), name);
        let cases = [
            (
                Subscribe::with_filters(id, Vec::new()),
                EncodeError::NoTopicFilters {
                    packet_type: PacketType::Subscribe,
                },
            ),
            (
                Subscribe::with_filters(id, vec![filter(QoS::ExactlyOnce), with_option]),
                not_in_311("subscription options"),
            ),
            (
                Subscribe::with_filters(id, vec![filter(QoS::AtMostOnce)])
                    .with_properties(properties),
                not_in_311("properties"),
            ),
        ];
        for (subscribe, error) in cases {
            let mut buf = BytesMut::new();
            assert_eq!(subscribe.encode(&mut buf), Err(error));
            assert!(buf.is_empty());
        }
        let plain =
            Subscribe::with_filters(id, vec![filter(QoS::AtMostOnce), filter(QoS::ExactlyOnce)]);
        let mut buf = BytesMut::new();
        assert_eq!(plain.encode(&mut buf), Ok(()));
        assert_eq!(
            &buf[..],
            b"\x82\x0e\x00\x07\x00\x03a/+\x00\x00\x03a/+\x02".as_slice()
        );
        assert_eq!(buf.len(), plain.encoded_len());
    }
}
