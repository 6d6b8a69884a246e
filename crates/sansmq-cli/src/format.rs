//! `sub -F FORMAT`: mosquitto_sub 2.0's output templates, byte for byte.
//!
//! A [`Template`] is parsed once from the `-F` text and then writes each message. It knows
//! mosquitto_sub's three kinds of markup:
//! - `%` conversions, with mosquitto's optional `-` (left-align), `0` (zero-pad), width and
//!   `.precision` between the `%` and the letter (`%-10t`, `%08l`, `%.5t`);
//! - `@` followed by a `strftime` conversion letter for the local time the message arrived
//!   (`@H:@M:@S`), `@N` for its nanoseconds and `@@` for a literal `@`;
//! - backslash escapes `\\ \0 \a \e \n \r \t \v`.
//!
//! The MQTT 5 property conversions print a message's properties as mosquitto_sub 2.0 does: `%A`
//! Topic Alias, `%C` Content Type, `%D` Correlation Data (raw), `%E` Message Expiry Interval,
//! `%F` Payload Format Indicator, `%P` User Properties (`name:value` separated by spaces), `%R`
//! Response Topic, `%S` Subscription Identifier; and `%j`/`%J` hold them in a `"properties"`
//! object. A property the message lacks (every one of an MQTT 3.1.1 message) prints what
//! mosquitto prints then: blanks as wide as the field for the numbers and the content type,
//! nothing for the others.
//!
//! mosquitto's own quirks are kept, because scripts see them: a width also *truncates* a
//! payload (`%3p` of `hello` is `hel`), a hex payload's width counts whole bytes only (`%5x` of
//! one byte prints five blanks), `%-p` and `%-x` without a width add as many blanks as the
//! payload has bytes, and widths and precisions count bytes, not characters.

mod json;
mod strftime;

use std::io::{self, Write};

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use sansmq::packet::Properties;

use crate::output::Printed;
use json::Value;

/// The largest width or precision: what mosquitto reads into a C `int`.
const LARGEST_WIDTH: usize = i32::MAX as usize;

/// A parsed `-F` template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    /// `--pretty`: `%j` and `%J` print an object's members on lines of their own.
    pretty: bool,
    /// The zone of the times printed by `%I`, `%j`, `%J` and `@`, the process's local one as
    /// for mosquitto (`TZ`, else `/etc/localtime`).
    zone: TimeZone,
}

/// Why a `-F` text is refused; mosquitto_sub refuses the same texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// A `%` with its flags, width or precision but no conversion letter after them.
    #[error(
        "-F {format:?}: {spec:?} at the end needs a conversion letter (such as %p, %t); write %% for a literal %"
    )]
    IncompleteConversion { format: String, spec: String },
    /// A `%` followed by a letter mosquitto_sub does not know.
    #[error(
        "-F {format:?}: unknown conversion {spec:?}; known are %% %A %C %D %E %F %I %j %J %l %m %P %p %q %R %r %S %t %U %x %X"
    )]
    UnknownConversion { format: String, spec: String },
    /// A width or precision past what mosquitto takes (a C `int`).
    #[error("-F {format:?}: the width or precision in {spec:?} is larger than {LARGEST_WIDTH}")]
    WidthTooLarge { format: String, spec: String },
    /// An `@` at the very end.
    #[error(
        "-F {format:?}: '@' at the end needs a strftime letter (such as @H); write @@ for a literal @"
    )]
    IncompleteTime { format: String },
    /// A `\` followed by a byte that is no escape mosquitto_sub knows.
    #[error(r"-F {format:?}: unknown escape {escape:?}; known are \\ \0 \a \e \n \r \t \v")]
    UnknownEscape { format: String, escape: String },
    /// A `\` at the very end.
    #[error(r"-F {format:?}: '\' at the end needs an escape letter (such as \n); write \\ for a literal \")]
    IncompleteEscape { format: String },
}

/// A `%J` payload that is not JSON: mosquitto_sub prints this on stderr (the rest of the
/// template is printed as usual).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error: Message payload is not valid JSON on topic {topic}.")]
pub(crate) struct PayloadNotJson {
    /// The message's topic.
    pub(crate) topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes printed as they are (text, resolved escapes, `@@`).
    Literal(Vec<u8>),
    /// A `%` conversion.
    Field(Field, Spec),
    /// `@` and a `strftime` letter; `N` is the nanoseconds.
    Time(u8),
}

/// What a `%` conversion prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `%%`
    Percent,
    /// `%A`: the MQTT 5 Topic Alias (blanks without one).
    TopicAlias,
    /// `%C`: the MQTT 5 Content Type (blanks without one).
    ContentType,
    /// `%D`: the MQTT 5 Correlation Data, raw (nothing without it).
    CorrelationData,
    /// `%E`: the MQTT 5 Message Expiry Interval left (blanks without one).
    MessageExpiry,
    /// `%F`: the MQTT 5 Payload Format Indicator (blanks without one).
    PayloadFormat,
    /// `%P`: the MQTT 5 User Properties, `name:value` separated by spaces.
    UserProperties,
    /// `%R`: the MQTT 5 Response Topic (nothing without one).
    ResponseTopic,
    /// `%S`: the first MQTT 5 Subscription Identifier (blanks without one).
    SubscriptionId,
    /// `%I`: ISO 8601 local time, `2026-12-05T02:09:34+0000`.
    Iso8601,
    /// `%j`: the message as JSON, the payload as a string.
    Json,
    /// `%J`: the message as JSON, the payload as the JSON it holds.
    JsonPayload,
    /// `%l`: the payload's length in bytes.
    Length,
    /// `%m`: the packet identifier, 0 for QoS 0.
    MessageId,
    /// `%p`: the payload.
    Payload,
    /// `%q`: the QoS.
    Qos,
    /// `%r`: 1 if retained, else 0.
    Retain,
    /// `%t`: the topic.
    Topic,
    /// `%U`: Unix time with nanoseconds, `1796356011.123456789`.
    UnixTime,
    /// `%x`, `%X`: the payload in lower- or upper-case hex.
    Hex { upper: bool },
}

/// Flags, width and precision between a `%` and its letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    /// `-`: pad on the right.
    left: bool,
    /// `0`: pad numbers (and the blanks and payloads that honour it) with zeros.
    zero: bool,
    /// The field width; 0 for none.
    width: usize,
    /// `.N`: at most N bytes of a text.
    precision: Option<usize>,
}

/// Parses a `-F` text; `pretty` is `--pretty`. The local time zone is looked up once, here.
pub(crate) fn parse(format: &str, pretty: bool) -> Result<Template, TemplateError> {
    Ok(Template {
        pieces: pieces(format)?,
        pretty,
        zone: TimeZone::system(),
    })
}

fn pieces(format: &str) -> Result<Vec<Piece>, TemplateError> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'%' => {
                let (piece, length) = conversion(format, at)?;
                match piece {
                    Piece::Field(Field::Percent, _) => literal.push(b'%'),
                    piece => {
                        flush(&mut pieces, &mut literal);
                        pieces.push(piece);
                    }
                }
                at += length;
            }
            b'@' => {
                let letter = *bytes
                    .get(at + 1)
                    .ok_or_else(|| TemplateError::IncompleteTime {
                        format: format.to_owned(),
                    })?;
                if letter == b'@' {
                    literal.push(b'@');
                } else {
                    flush(&mut pieces, &mut literal);
                    pieces.push(Piece::Time(letter));
                }
                at += 2;
            }
            b'\\' => {
                let letter = *bytes
                    .get(at + 1)
                    .ok_or_else(|| TemplateError::IncompleteEscape {
                        format: format.to_owned(),
                    })?;
                let escaped = escape(letter).ok_or_else(|| TemplateError::UnknownEscape {
                    format: format.to_owned(),
                    escape: character_at(format, at, at + 1),
                })?;
                literal.push(escaped);
                at += 2;
            }
            _ => {
                literal.push(byte);
                at += 1;
            }
        }
    }
    flush(&mut pieces, &mut literal);
    Ok(pieces)
}

fn flush(pieces: &mut Vec<Piece>, literal: &mut Vec<u8>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

/// `format` from `start` to the end of the character at `last` (which may take several bytes).
fn character_at(format: &str, start: usize, last: usize) -> String {
    let end = format
        .get(last..)
        .and_then(|rest| rest.chars().next())
        .map_or(last + 1, |c| last + c.len_utf8());
    String::from_utf8_lossy(format.as_bytes().get(start..end).unwrap_or_default()).into_owned()
}

/// The byte a backslash escape stands for; `None` for one mosquitto_sub refuses.
fn escape(letter: u8) -> Option<u8> {
    match letter {
        b'\\' => Some(b'\\'),
        b'0' => Some(0),
        b'a' => Some(0x07),
        b'e' => Some(0x1b),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        _ => None,
    }
}

/// Reads the `%` conversion starting at `start`: `%[-|0][width][.precision]letter`. Returns it
/// and its length in bytes.
fn conversion(format: &str, start: usize) -> Result<(Piece, usize), TemplateError> {
    let bytes = format.as_bytes();
    let mut at = start + 1;
    let mut spec = Spec::default();
    match bytes.get(at) {
        Some(b'-') => {
            spec.left = true;
            at += 1;
        }
        Some(b'0') => {
            spec.zero = true;
            at += 1;
        }
        _ => {}
    }
    // After `-`, a `0` reads as the start of the width for mosquitto's check and as the zero
    // flag when printing: `%-05l` is left-aligned and padded with blanks, width 5.
    if spec.left && bytes.get(at) == Some(&b'0') {
        spec.zero = true;
    }
    let spec_text = |end: usize| {
        String::from_utf8_lossy(bytes.get(start..end).unwrap_or_default()).into_owned()
    };
    let too_large = |digits_start: usize| {
        let digits = bytes.get(digits_start..).unwrap_or_default();
        TemplateError::WidthTooLarge {
            format: format.to_owned(),
            spec: spec_text(
                digits_start + digits.iter().take_while(|b| b.is_ascii_digit()).count(),
            ),
        }
    };
    let (width, digits) =
        number(bytes.get(at..).unwrap_or_default()).ok_or_else(|| too_large(at))?;
    spec.width = width;
    at += digits;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let (precision, digits) =
            number(bytes.get(at..).unwrap_or_default()).ok_or_else(|| too_large(at))?;
        spec.precision = Some(precision);
        at += digits;
    }
    let Some(&letter) = bytes.get(at) else {
        return Err(TemplateError::IncompleteConversion {
            format: format.to_owned(),
            spec: spec_text(at),
        });
    };
    let field = match letter {
        b'%' => Field::Percent,
        b'A' => Field::TopicAlias,
        b'C' => Field::ContentType,
        b'D' => Field::CorrelationData,
        b'E' => Field::MessageExpiry,
        b'F' => Field::PayloadFormat,
        b'P' => Field::UserProperties,
        b'R' => Field::ResponseTopic,
        b'S' => Field::SubscriptionId,
        b'I' => Field::Iso8601,
        b'j' => Field::Json,
        b'J' => Field::JsonPayload,
        b'l' => Field::Length,
        b'm' => Field::MessageId,
        b'p' => Field::Payload,
        b'q' => Field::Qos,
        b'r' => Field::Retain,
        b't' => Field::Topic,
        b'U' => Field::UnixTime,
        b'x' => Field::Hex { upper: false },
        b'X' => Field::Hex { upper: true },
        _ => {
            return Err(TemplateError::UnknownConversion {
                format: format.to_owned(),
                spec: character_at(format, start, at),
            });
        }
    };
    Ok((Piece::Field(field, spec), at + 1 - start))
}

/// The decimal number at the start of `digits` and how many bytes it took; 0 and 0 when there
/// is none, `None` when it is larger than [`LARGEST_WIDTH`].
fn number(digits: &[u8]) -> Option<(usize, usize)> {
    let length = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut value = 0_usize;
    for &digit in digits.get(..length)? {
        value = value
            .checked_mul(10)?
            .checked_add(usize::from(digit - b'0'))?;
        if value > LARGEST_WIDTH {
            return None;
        }
    }
    Some((value, length))
}

impl Template {
    /// The same template with `--pretty` set or not.
    pub(crate) fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }

    /// The same template printing times in `zone` rather than the local one.
    #[cfg(test)]
    fn in_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    /// Writes one message as the template says, without a line end (`sub` adds one unless
    /// `-N`), in one `write_all`; `out` is not flushed. `now` is when the message arrived. For
    /// a payload that is not JSON each `%J` prints nothing and is returned, for stderr, as
    /// mosquitto_sub does.
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        message: &Printed<'_>,
        now: Timestamp,
    ) -> io::Result<Vec<PayloadNotJson>> {
        let mut text = Vec::new();
        let mut not_json = Vec::new();
        let mut local_time = None;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => text.extend_from_slice(bytes),
                Piece::Time(letter) => {
                    let time = local_time.get_or_insert_with(|| now.to_zoned(self.zone.clone()));
                    if *letter == b'N' {
                        text.extend_from_slice(
                            format!("{:09}", time.subsec_nanosecond()).as_bytes(),
                        );
                    } else {
                        strftime::write_conversion(&mut text, *letter, time);
                    }
                }
                Piece::Field(field, spec) => {
                    let time = || now.to_zoned(self.zone.clone());
                    if let Err(error) = self.write_field(&mut text, *field, *spec, message, time) {
                        not_json.push(error);
                    }
                }
            }
        }
        out.write_all(&text)?;
        Ok(not_json)
    }

    fn write_field(
        &self,
        out: &mut Vec<u8>,
        field: Field,
        spec: Spec,
        message: &Printed<'_>,
        time: impl FnOnce() -> Zoned,
    ) -> Result<(), PayloadNotJson> {
        match field {
            Field::Percent => out.push(b'%'),
            Field::TopicAlias => {
                let alias = message.properties.topic_alias.map(|a| i64::from(a.get()));
                write_number_property(out, alias, spec);
            }
            Field::MessageExpiry => {
                // mosquitto prints it as a C `int`: past 2^31 - 1 it turns negative.
                let expiry = message
                    .properties
                    .message_expiry_interval
                    .map(|seconds| i64::from(seconds as i32));
                write_number_property(out, expiry, spec);
            }
            Field::PayloadFormat => {
                let format = message
                    .properties
                    .payload_format_indicator
                    .map(|format| format as i64);
                write_number_property(out, format, spec);
            }
            Field::SubscriptionId => {
                let id = message
                    .properties
                    .subscription_identifiers()
                    .next()
                    .map(|id| i64::from(id.get()));
                write_number_property(out, id, spec);
            }
            Field::ContentType => match message.properties.content_type() {
                Some(content_type) => write_text(out, content_type.as_bytes(), spec),
                None => out.extend(std::iter::repeat_n(b' ', spec.width)),
            },
            Field::CorrelationData => {
                if let Some(data) = message.properties.correlation_data() {
                    out.extend_from_slice(data);
                }
            }
            Field::ResponseTopic => {
                if let Some(topic) = message.properties.response_topic() {
                    write_text(out, topic.as_bytes(), spec);
                }
            }
            Field::UserProperties => {
                for (index, (name, value)) in message.properties.user_properties().enumerate() {
                    if index > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(name.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(value.as_bytes());
                }
            }
            Field::Iso8601 => {
                // strftime's `%FT%T%z`.
                let time = time();
                let mut iso = strftime::date_and_time(&time);
                strftime::write_conversion(&mut iso, b'z', &time);
                write_text(out, &iso, spec);
            }
            Field::Json | Field::JsonPayload => {
                let payload = if message.payload.is_empty() {
                    // libmosquitto hands over no payload at all then.
                    Value::Null
                } else if field == Field::Json {
                    Value::string(message.payload)
                } else {
                    json::parse(message.payload).ok_or_else(|| PayloadNotJson {
                        topic: message.topic.to_owned(),
                    })?
                };
                json_object(message, &time(), payload).write(out, self.pretty);
            }
            Field::Length => {
                // Payloads are below 256 MiB (MQTT's remaining length).
                write_number(
                    out,
                    i64::try_from(message.payload.len()).unwrap_or(i64::MAX),
                    spec,
                );
            }
            Field::MessageId => {
                let id = message.id.map_or(0, |id| id.get());
                write_number(out, id, spec);
            }
            Field::Payload => write_payload(out, message.payload, None, spec),
            Field::Qos => out.push(b'0' + message.qos as u8),
            Field::Retain => out.push(if message.retain { b'1' } else { b'0' }),
            Field::Topic => write_text(out, message.topic.as_bytes(), spec),
            Field::UnixTime => {
                let time = time();
                let seconds = time.timestamp().as_second();
                let nanos = time.subsec_nanosecond();
                out.extend_from_slice(format!("{seconds}.{nanos:09}").as_bytes());
            }
            Field::Hex { upper } => write_payload(out, message.payload, Some(upper), spec),
        }
        Ok(())
    }
}

/// mosquitto_sub's JSON object for `%j`/`%J`, its members in mosquitto's order; `mid` only
/// for QoS 1 and 2.
fn json_object(message: &Printed<'_>, time: &Zoned, payload: Value) -> Value {
    // mosquitto writes a `Z` *and* the offset: `2026-12-05T02:09:34.720470Z+0000`.
    let mut tst = strftime::date_and_time(time);
    tst.extend_from_slice(format!(".{:06}Z", time.subsec_nanosecond() / 1000).as_bytes());
    strftime::write_conversion(&mut tst, b'z', time);
    let number = |n: u16| Value::Number(f64::from(n));
    let mut members = vec![
        (b"tst".to_vec(), Value::String(tst)),
        (b"topic".to_vec(), Value::string(message.topic.as_bytes())),
        (b"qos".to_vec(), number(u16::from(message.qos as u8))),
        (b"retain".to_vec(), number(u16::from(message.retain))),
        (
            b"payloadlen".to_vec(),
            // Payloads are below 256 MiB (MQTT's remaining length), exact in an f64.
            Value::Number(message.payload.len() as f64),
        ),
    ];
    if let Some(id) = message.id {
        members.push((b"mid".to_vec(), number(id.get())));
    }
    if !message.properties.is_empty() {
        members.push((b"properties".to_vec(), json_properties(message.properties)));
    }
    members.push((b"payload".to_vec(), payload));
    Value::Object(members)
}

/// mosquitto_sub's `"properties"` object. mosquitto prints the properties in the order they
/// came in the PUBLISH, which sansmq does not keep: they are printed in the order mosquitto (the
/// broker) forwards those of a publisher that sends them by identifier, as sansmq and most
/// clients do: Subscription Identifiers first (the broker adds them), then Payload Format
/// Indicator, Content Type, Response Topic, Correlation Data, Topic Alias, User Properties (one
/// object, duplicate names kept), and the Message Expiry Interval last (the broker replaces it
/// with what is left of it).
fn json_properties(properties: &Properties) -> Value {
    let number = |n: u32| Value::Number(f64::from(n));
    let mut members = Vec::new();
    for id in properties.subscription_identifiers() {
        members.push((b"subscription-identifier".to_vec(), number(id.get())));
    }
    if let Some(format) = properties.payload_format_indicator {
        members.push((b"payload-format-indicator".to_vec(), number(format as u32)));
    }
    if let Some(content_type) = properties.content_type() {
        members.push((
            b"content-type".to_vec(),
            Value::string(content_type.as_bytes()),
        ));
    }
    if let Some(topic) = properties.response_topic() {
        members.push((b"response-topic".to_vec(), Value::string(topic.as_bytes())));
    }
    if let Some(data) = properties.correlation_data() {
        members.push((b"correlation-data".to_vec(), Value::string(data)));
    }
    if let Some(alias) = properties.topic_alias {
        members.push((b"topic-alias".to_vec(), number(alias.get().into())));
    }
    let users: Vec<(Vec<u8>, Value)> = properties
        .user_properties()
        .map(|(name, value)| (name.as_bytes().to_vec(), Value::string(value.as_bytes())))
        .collect();
    if !users.is_empty() {
        members.push((b"user-properties".to_vec(), Value::Object(users)));
    }
    if let Some(seconds) = properties.message_expiry_interval {
        members.push((b"message-expiry-interval".to_vec(), number(seconds)));
    }
    Value::Object(members)
}

/// An MQTT 5 number property as mosquitto_sub prints it: the number, or without it blanks (or
/// with the `0` flag zeros) as wide as the field.
fn write_number_property(out: &mut Vec<u8>, value: Option<i64>, spec: Spec) {
    match value {
        Some(value) => write_number(out, value, spec),
        None => {
            let pad = if spec.zero { b'0' } else { b' ' };
            out.extend(std::iter::repeat_n(pad, spec.width));
        }
    }
}

/// A number as C's `%d`, `%-*d`, `%0*d` or `%*d` prints it.
fn write_number(out: &mut Vec<u8>, value: impl Into<i64>, spec: Spec) {
    let value: i64 = value.into();
    let width = spec.width;
    let text = if spec.left {
        format!("{value:<width$}")
    } else if spec.zero {
        format!("{value:0width$}")
    } else {
        format!("{value:width$}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A text as C's `%*.*s` prints it: at most `precision` bytes, padded with blanks to `width`
/// bytes (right-aligned unless `-`). Bytes, not characters: a precision may cut a UTF-8
/// character, as mosquitto's does.
fn write_text(out: &mut Vec<u8>, text: &[u8], spec: Spec) {
    let shown = spec
        .precision
        .map_or(text, |precision| text.get(..precision).unwrap_or(text));
    let padding = std::iter::repeat_n(b' ', spec.width.saturating_sub(shown.len()));
    if spec.left {
        out.extend_from_slice(shown);
        out.extend(padding);
    } else {
        out.extend(padding);
        out.extend_from_slice(shown);
    }
}

/// The payload as mosquitto's `%p` (`hex` = `None`) or `%x`/`%X` prints it, quirks included: a
/// width cuts the payload to that many bytes (hex: to half as many, rounded down), padding is
/// the `0` flag's zeros or blanks on the left but always blanks on the right, and with `-` but
/// no width the payload is followed by one blank per byte. The precision is ignored.
fn write_payload(out: &mut Vec<u8>, payload: &[u8], hex: Option<bool>, spec: Spec) {
    let width = spec.width;
    let (shown, padding) = if width > 0 {
        let mut shown = payload.len().min(width);
        let printed_width = if hex.is_some() {
            shown /= 2;
            shown * 2
        } else {
            shown
        };
        (shown, width - printed_width)
    } else {
        // mosquitto's padding is `width - length` here, negative; C's printf pads a negative
        // width on the right, so only `-` shows it.
        (payload.len(), if spec.left { payload.len() } else { 0 })
    };
    let bytes = payload.get(..shown).unwrap_or(payload);
    if !spec.left {
        let pad = if spec.zero { b'0' } else { b' ' };
        out.extend(std::iter::repeat_n(pad, padding));
    }
    match hex {
        None => out.extend_from_slice(bytes),
        Some(upper) => {
            for byte in bytes {
                let digits = if upper {
                    format!("{byte:02X}")
                } else {
                    format!("{byte:02x}")
                };
                out.extend_from_slice(digits.as_bytes());
            }
        }
    }
    if spec.left {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
}

#[cfg(test)]
mod tests {
    use sansmq::packet::{PacketId, QoS};

    use super::*;

    /// 2026-12-04 03:46:51.012345678 UTC, a Friday.
    fn now() -> Timestamp {
        Timestamp::new(1_796_356_011, 12_345_678).unwrap()
    }

    static NO_PROPERTIES: Properties = Properties::new();

    fn message<'a>(topic: &'a str, payload: &'a [u8]) -> Printed<'a> {
        Printed {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: false,
            id: None,
            properties: &NO_PROPERTIES,
        }
    }

    fn written_in(format: &str, pretty: bool, zone: &str, message: &Printed<'_>) -> Vec<u8> {
        let template = parse(format, pretty)
            .unwrap()
            .in_zone(TimeZone::posix(zone).unwrap());
        let mut out = Vec::new();
        let not_json = template.write(&mut out, message, now()).unwrap();
        assert_eq!(not_json, [], "{format:?}");
        out
    }

    fn written(format: &str, message: &Printed<'_>) -> Vec<u8> {
        written_in(format, false, "UTC0", message)
    }

    fn hello() -> Printed<'static> {
        message("a/b", b"hello")
    }

    // The expected bytes below are what mosquitto_sub 2.0.11 printed for the same format and
    // message (retained, QoS 0 unless said otherwise), without its line end.

    #[test]
    fn topic_payload_length_qos_retain_and_percent() {
        let retained = Printed {
            retain: true,
            ..hello()
        };
        assert_eq!(
            written("%t|%p|%l|%q|%r|%m|%%", &retained),
            b"a/b|hello|5|0|1|0|%"
        );
    }

    #[test]
    fn message_id_is_the_packet_id_and_0_at_qos_0() {
        let qos2 = Printed {
            qos: QoS::ExactlyOnce,
            id: PacketId::new(1),
            ..hello()
        };
        assert_eq!(written("%m|%5m|%05m|%q", &qos2), b"1|    1|00001|2");
        assert_eq!(written("%m|%3m", &hello()), b"0|  0");
    }

    #[test]
    fn mqtt5_properties_print_blanks_or_nothing() {
        assert_eq!(written("%A|%C|%D|%E|%F|%P|%R|%S", &hello()), b"|||||||");
        assert_eq!(
            written("%5A|%05E|%-5F|%-05S|%5C|%05C|%5D|%5P|%5R", &hello()),
            b"     |00000|     |00000|     |     |||"
        );
    }

    /// The properties mosquitto_pub -D sent in the expected outputs below, with Subscription
    /// Identifier 7 from the subscription.
    fn with_properties() -> Properties {
        let mut properties = Properties::new();
        properties.push_subscription_identifier(sansmq::packet::SubscriptionId::new(7).unwrap());
        properties.payload_format_indicator = Some(sansmq::packet::PayloadFormat::Utf8);
        properties.message_expiry_interval = Some(100);
        properties.set_content_type(Some("text/plain".try_into().unwrap()));
        properties.set_response_topic(Some("rt/1".try_into().unwrap()));
        properties.set_correlation_data(Some(bytes::Bytes::from_static(b"co rr")));
        properties.push_user_property("a".try_into().unwrap(), "b".try_into().unwrap());
        properties.push_user_property("a".try_into().unwrap(), "c".try_into().unwrap());
        properties
    }

    #[test]
    fn mqtt5_properties_print_as_mosquitto_prints_them() {
        let properties = with_properties();
        let hi = Printed {
            properties: &properties,
            ..message("z/1", b"hi")
        };
        assert_eq!(
            written(
                "%A|%C|%D|%E|%F|%P|%R|%S|%5A|%05E|%-5F|%-05S|%12C|%-12.4C|%5D|%5P|%8R|%-8.2R|%03S",
                &hi
            ),
            b"|text/plain|co rr|100|1|a:b a:c|rt/1|7|     |00100|1    |7    |  text/plain|text        \
|co rr|a:b a:c|    rt/1|rt      |007"
        );
        assert_eq!(
            written_in("%j", true, "UTC0", &hi),
            b"{\n\t\"tst\":\t\"2026-12-04T03:46:51.012345Z+0000\",\n\t\"topic\":\t\"z/1\",\n\
\t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t2,\n\t\"properties\":\t{\n\
\t\t\"subscription-identifier\":\t7,\n\t\t\"payload-format-indicator\":\t1,\n\
\t\t\"content-type\":\t\"text/plain\",\n\t\t\"response-topic\":\t\"rt/1\",\n\
\t\t\"correlation-data\":\t\"co rr\",\n\t\t\"user-properties\":\t{\n\
\t\t\t\"a\":\t\"b\",\n\t\t\t\"a\":\t\"c\"\n\t\t},\n\
\t\t\"message-expiry-interval\":\t100\n\t},\n\t\"payload\":\t\"hi\"\n}"
        );
    }

    #[test]
    fn message_expiry_past_a_c_int_prints_negative_as_mosquitto_does() {
        let mut properties = Properties::new();
        properties.message_expiry_interval = Some(u32::MAX);
        let message = Printed {
            properties: &properties,
            ..hello()
        };
        assert_eq!(written("%E", &message), b"-1");
    }

    #[test]
    fn numbers_take_width_alignment_and_zeros_but_no_precision() {
        assert_eq!(
            written("%5l|%-5l|%05l|%-05l|%.1l|%5.1q", &hello()),
            b"    5|5    |00005|5    |5|0"
        );
    }

    #[test]
    fn payload_width_pads_and_truncates_and_precision_is_ignored() {
        assert_eq!(
            written("%10p|%-10p|%010p|%3p|%.2p|%-05p|%-p|%05p", &hello()),
            b"     hello|hello     |00000hello|hel|hello|hello|hello     |hello"
        );
    }

    #[test]
    fn hex_payload_width_counts_whole_bytes() {
        assert_eq!(
            written("%x|%X|%4x|%5X|%-4x|%012x|%-x|%-012x|%-10X", &hello()),
            b"68656c6c6f|68656C6C6F|6865| 6865|6865|000000006865|68656c6c6f     |6865        |6865      "
        );
        // One byte does not fit a width of 5 as two hex digits at mosquitto's count: blanks.
        assert_eq!(
            written("%5x|%10x", &message("t", b"A")),
            b"     |          "
        );
        assert_eq!(written("%10x|", &message("t", b"abc")), b"        61|");
    }

    #[test]
    fn widths_and_precisions_count_bytes_of_multibyte_text() {
        let text = message("héllo/wörld", "ünï".as_bytes());
        assert_eq!(
            written(
                "%10t|%-10t|%.2t|%.3t|%8.3t|%-8.3t|%5p|%2p|%l|%014t|%-014.1t",
                &text
            ),
            b"h\xc3\xa9llo/w\xc3\xb6rld|h\xc3\xa9llo/w\xc3\xb6rld|h\xc3|h\xc3\xa9|     h\xc3\xa9|\
h\xc3\xa9     |\xc3\xbcn\xc3\xaf|\xc3\xbc|5| h\xc3\xa9llo/w\xc3\xb6rld|h             "
        );
    }

    #[test]
    fn non_utf8_payloads_are_copied_and_hexed_byte_by_byte() {
        let binary = message("t", &[0xff, 0x00, 0xfe, 0x80]);
        assert_eq!(
            written("%p|%x|%X|%l|%3p|%-6p|%6x", &binary),
            b"\xff\x00\xfe\x80|ff00fe80|FF00FE80|4|\xff\x00\xfe|\xff\x00\xfe\x80  |  ff00"
        );
    }

    #[test]
    fn empty_payloads_print_nothing_or_zero() {
        let empty = message("t", b"");
        assert_eq!(
            written("[%p][%x][%l][%5p][%-3p][%-p]", &empty),
            b"[][][0][     ][   ][]"
        );
    }

    #[test]
    fn escapes_and_literal_at_signs() {
        assert_eq!(
            written(r"\\|\0|\a|\e|\n|\r|\t|\v|@@|a@@b", &hello()),
            b"\\|\x00|\x07|\x1b|\n|\r|\t|\x0b|@|a@b"
        );
    }

    #[test]
    fn iso_time_is_local_and_takes_width_and_precision() {
        assert_eq!(written("%I", &hello()), b"2026-12-04T03:46:51+0000");
        assert_eq!(
            written("%10.2I|%-12.10I", &hello()),
            b"        20|2026-12-04  "
        );
        assert_eq!(
            written_in("%I", false, "ABC-5:30", &hello()),
            b"2026-12-04T09:16:51+0530"
        );
    }

    #[test]
    fn unix_time_has_nine_decimals_and_ignores_width() {
        assert_eq!(
            written("%U|%25.3U", &hello()),
            b"1796356011.012345678|1796356011.012345678"
        );
    }

    #[test]
    fn at_conversions_are_local_strftime_and_at_n_is_nanoseconds() {
        assert_eq!(
            written_in(
                "@Y-@m-@d @H:@M:@S.@N @z @Z @s @Q",
                false,
                "ABC-5:30",
                &hello()
            ),
            b"2026-12-04 09:16:51.012345678 +0530 ABC 1796356011 %Q"
        );
    }

    #[test]
    fn json_escapes_the_payload_and_has_mid_only_above_qos_0() {
        let quoted = message("a/\"b\"", b"a\"b\\c\n\x01\xff");
        assert_eq!(
            written("%j", &quoted),
            b"{\"tst\":\"2026-12-04T03:46:51.012345Z+0000\",\"topic\":\"a/\\\"b\\\"\",\"qos\":0,\
\"retain\":0,\"payloadlen\":8,\"payload\":\"a\\\"b\\\\c\\n\\u0001\xff\"}"
        );
        let qos1 = Printed {
            qos: QoS::AtLeastOnce,
            retain: true,
            id: PacketId::new(7),
            ..message("t", b"x")
        };
        assert_eq!(
            written("%j", &qos1),
            b"{\"tst\":\"2026-12-04T03:46:51.012345Z+0000\",\"topic\":\"t\",\"qos\":1,\
\"retain\":1,\"payloadlen\":1,\"mid\":7,\"payload\":\"x\"}"
        );
    }

    #[test]
    fn json_payload_stops_at_a_nul_and_is_null_when_empty() {
        assert_eq!(
            written("%j", &message("t", b"ab\0cd")),
            b"{\"tst\":\"2026-12-04T03:46:51.012345Z+0000\",\"topic\":\"t\",\"qos\":0,\
\"retain\":0,\"payloadlen\":5,\"payload\":\"ab\"}"
        );
        for format in ["%j", "%J"] {
            assert_eq!(
                written(format, &message("t", b"")),
                b"{\"tst\":\"2026-12-04T03:46:51.012345Z+0000\",\"topic\":\"t\",\"qos\":0,\
\"retain\":0,\"payloadlen\":0,\"payload\":null}"
            );
        }
    }

    #[test]
    fn json_payload_conversion_embeds_the_payload_reprinted() {
        assert_eq!(
            written("%J", &message("t", br#" {"a": [1, 2.50], "b":{}} "#)),
            b"{\"tst\":\"2026-12-04T03:46:51.012345Z+0000\",\"topic\":\"t\",\"qos\":0,\
\"retain\":0,\"payloadlen\":26,\"payload\":{\"a\":[1,2.5],\"b\":{}}}"
        );
    }

    #[test]
    fn pretty_json_indents_with_tabs() {
        assert_eq!(
            written_in("%J", true, "UTC0", &message("t", br#"{"a":[1,{}],"b":{}}"#)),
            b"{\n\t\"tst\":\t\"2026-12-04T03:46:51.012345Z+0000\",\n\t\"topic\":\t\"t\",\n\
\t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t19,\n\t\"payload\":\t{\n\
\t\t\"a\":\t[1, {\n\t\t\t}],\n\t\t\"b\":\t{\n\t\t}\n\t}\n}"
        );
    }

    #[test]
    fn a_payload_that_is_not_json_prints_the_rest_and_is_reported() {
        let template = parse("<%J>%t%J", false).unwrap();
        let mut out = Vec::new();
        let not_json = template
            .write(&mut out, &message("a/b", b"{oops"), now())
            .unwrap();
        assert_eq!(out, b"<>a/b");
        let reported: Vec<String> = not_json.iter().map(ToString::to_string).collect();
        assert_eq!(
            reported,
            ["Error: Message payload is not valid JSON on topic a/b."; 2]
        );
    }

    #[test]
    fn unknown_conversions_and_escapes_are_refused_as_mosquitto_does() {
        let refused = |format: &str| parse(format, false).unwrap_err();
        assert_eq!(
            refused("a %y"),
            TemplateError::UnknownConversion {
                format: "a %y".into(),
                spec: "%y".into()
            }
        );
        assert_eq!(
            refused("%-5.2é"),
            TemplateError::UnknownConversion {
                format: "%-5.2é".into(),
                spec: "%-5.2é".into()
            }
        );
        assert_eq!(
            refused("%0-5p"),
            TemplateError::UnknownConversion {
                format: "%0-5p".into(),
                spec: "%0-".into()
            }
        );
        assert_eq!(
            refused(r"\z"),
            TemplateError::UnknownEscape {
                format: r"\z".into(),
                escape: r"\z".into()
            }
        );
    }

    #[test]
    fn dangling_markup_is_refused() {
        let refused = |format: &str| parse(format, false).unwrap_err();
        for (format, spec) in [
            ("%", "%"),
            ("x%-", "%-"),
            ("%05", "%05"),
            ("%5.", "%5."),
            ("%.3", "%.3"),
        ] {
            assert_eq!(
                refused(format),
                TemplateError::IncompleteConversion {
                    format: format.into(),
                    spec: spec.into()
                }
            );
        }
        assert_eq!(
            refused("@"),
            TemplateError::IncompleteTime { format: "@".into() }
        );
        assert_eq!(
            refused("a\\"),
            TemplateError::IncompleteEscape {
                format: "a\\".into()
            }
        );
    }

    #[test]
    fn widths_beyond_a_c_int_are_refused() {
        assert_eq!(
            parse("%2147483648p", false).unwrap_err(),
            TemplateError::WidthTooLarge {
                format: "%2147483648p".into(),
                spec: "%2147483648".into()
            }
        );
        assert!(parse("%.99999999999t", false).is_err());
        assert!(parse("%2147483647.2147483647t", false).is_ok());
    }

    #[test]
    fn error_messages_name_the_format_and_the_fix() {
        assert_eq!(
            parse("%y", false).unwrap_err().to_string(),
            "-F \"%y\": unknown conversion \"%y\"; known are %% %A %C %D %E %F %I %j %J %l %m %P %p %q %R %r %S %t %U %x %X"
        );
        assert_eq!(
            parse("50%", false).unwrap_err().to_string(),
            "-F \"50%\": \"%\" at the end needs a conversion letter (such as %p, %t); write %% for a literal %"
        );
    }
}
