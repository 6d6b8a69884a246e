//! nom parsers for MQTT's primitive fields, over an exact, already-framed body.
//!
//! Parsers run on `&[u8]` slices of the body's [`Bytes`]; strings and payloads become
//! `body.slice_ref(..)`, sharing the buffer rather than copying.

use bytes::{BufMut, Bytes, BytesMut};
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u8, be_u16};
use nom::{IResult, Parser};

use super::properties::HeldProperties;
use super::{DecodeError, PacketId, PacketType, Properties, PropertyContext, ReasonCode};
use crate::string::MqttString;
use crate::topic::{TopicFilter, TopicName};

/// A parser's failure: the body ran out, or a field broke a rule.
#[derive(Debug)]
pub(crate) enum WireError {
    /// A complete parser wanted more bytes than the body has.
    Truncated,
    /// A field was read but is invalid.
    Invalid(DecodeError),
}

impl<I> ParseError<I> for WireError {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        Self::Truncated
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type WireResult<'a, T> = IResult<&'a [u8], T, WireError>;

/// Fails the parse with `error`; no alternative is tried.
pub(crate) fn fail<'a, T>(error: DecodeError) -> WireResult<'a, T> {
    Err(nom::Err::Failure(WireError::Invalid(error)))
}

/// Runs `parser` over the whole `body` and turns nom's outcome into a [`DecodeError`]: bytes left
/// over are [`DecodeError::TrailingBytes`], running out is [`DecodeError::BodyTooShort`].
pub(crate) fn parse_body<'a, T>(
    packet_type: PacketType,
    body: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> WireResult<'a, T>,
) -> Result<T, DecodeError> {
    match parser(body) {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(DecodeError::TrailingBytes {
            packet_type,
            extra: rest.len(),
        }),
        Err(nom::Err::Error(WireError::Invalid(e)) | nom::Err::Failure(WireError::Invalid(e))) => {
            Err(e)
        }
        Err(_) => Err(DecodeError::BodyTooShort {
            packet_type,
            remaining_length: body.len(),
        }),
    }
}

pub(crate) fn u8(input: &[u8]) -> WireResult<'_, u8> {
    be_u8(input)
}

pub(crate) fn u16(input: &[u8]) -> WireResult<'_, u16> {
    be_u16(input)
}

/// A non-zero packet identifier (MQTT-2.3.1-1).
pub(crate) fn packet_id(packet_type: PacketType) -> impl Fn(&[u8]) -> WireResult<'_, PacketId> {
    move |input| {
        let (rest, id) = be_u16(input)?;
        match PacketId::new(id) {
            Some(id) => Ok((rest, id)),
            None => fail(DecodeError::ZeroPacketId { packet_type }),
        }
    }
}

/// Two-byte length, then that many bytes (MQTT 1.5.3 strings and binary fields).
pub(crate) fn length_prefixed(input: &[u8]) -> WireResult<'_, &[u8]> {
    nom::multi::length_data(be_u16).parse(input)
}

/// Binary data: a `Bytes` slice of `body`.
pub(crate) fn binary<'a>(body: &'a Bytes) -> impl Fn(&'a [u8]) -> WireResult<'a, Bytes> {
    move |input| {
        let (rest, raw) = length_prefixed(input)?;
        Ok((rest, body.slice_ref(raw)))
    }
}

/// A UTF-8 string field named `field` (for errors), sharing `body`.
pub(crate) fn string<'a>(
    body: &'a Bytes,
    field: &'static str,
) -> impl Fn(&'a [u8]) -> WireResult<'a, MqttString> {
    move |input| {
        let (rest, raw) = length_prefixed(input)?;
        match MqttString::from_bytes(body.slice_ref(raw)) {
            Ok(s) => Ok((rest, s)),
            Err(error) => fail(DecodeError::InvalidString { field, error }),
        }
    }
}

/// A topic name, sharing `body`.
pub(crate) fn topic_name<'a>(body: &'a Bytes) -> impl Fn(&'a [u8]) -> WireResult<'a, TopicName> {
    move |input| {
        let (rest, raw) = length_prefixed(input)?;
        match TopicName::from_bytes(body.slice_ref(raw)) {
            Ok(topic) => Ok((rest, topic)),
            Err(e) => fail(DecodeError::InvalidTopicName(e)),
        }
    }
}

/// A topic filter, sharing `body`.
pub(crate) fn topic_filter<'a>(
    body: &'a Bytes,
) -> impl Fn(&'a [u8]) -> WireResult<'a, TopicFilter> {
    move |input| {
        let (rest, raw) = length_prefixed(input)?;
        match TopicFilter::from_bytes(body.slice_ref(raw)) {
            Ok(filter) => Ok((rest, filter)),
            Err(e) => fail(DecodeError::InvalidTopicFilter(e)),
        }
    }
}

/// An MQTT 5 property section for `context`, sharing `body`; an empty one allocates nothing.
pub(crate) fn properties<'a>(
    body: &'a Bytes,
    context: PropertyContext,
) -> impl Fn(&'a [u8]) -> WireResult<'a, HeldProperties> {
    move |input| match properties_at(body, context, input) {
        Ok(parsed) => Ok(parsed),
        Err(error) => fail(error),
    }
}

/// [`properties`] for the parsers that read slices directly: the rest of `input` and the section.
#[inline]
pub(crate) fn properties_at<'a>(
    body: &Bytes,
    context: PropertyContext,
    input: &'a [u8],
) -> Result<(&'a [u8], HeldProperties), DecodeError> {
    // The common case: Property Length 0.
    if let Some((0, rest)) = input.split_first() {
        return Ok((rest, HeldProperties::EMPTY));
    }
    let (properties, used) = Properties::decode_slice(context, body, input)?;
    Ok((
        input.get(used..).unwrap_or_default(),
        HeldProperties::new(properties),
    ))
}

/// A Reason Code that `packet_type` (whose properties go in `context`) may carry (MQTT 5.0
/// section 2.4).
pub(crate) fn reason_code(
    packet_type: PacketType,
    context: PropertyContext,
) -> impl Fn(&[u8]) -> WireResult<'_, ReasonCode> {
    move |input| {
        let (rest, code) = be_u8(input)?;
        match ReasonCode::from_u8(code) {
            Some(reason) if reason.is_valid_in(context) => Ok((rest, reason)),
            _ => fail(DecodeError::InvalidReasonCode { packet_type, code }),
        }
    }
}

/// Encoded size of a length-prefixed field.
pub(crate) fn prefixed_len(bytes: &[u8]) -> usize {
    2usize.saturating_add(bytes.len())
}

/// Writes a length-prefixed field whose length the packet's validation (or its type) bounds to
/// `u16::MAX`.
#[inline]
pub(crate) fn put_prefixed(buf: &mut BytesMut, bytes: &[u8]) {
    // A plain cast: the bound holds, so it never truncates, and clamping would write a wrong
    // prefix all the same if it did not. The clamp cost three instructions a field, fifteen in a
    // CONNECT with a will and credentials.
    buf.put_u16(bytes.len() as u16);
    buf.put_slice(bytes);
}
