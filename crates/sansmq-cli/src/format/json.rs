//! JSON as mosquitto_sub 2.0 prints it for `%j` and `%J`: it builds the object with cJSON 1.7
//! and, for `%J`, parses the payload with cJSON. Both sides are reproduced here because their
//! output is what scripts see: cJSON accepts more than RFC 8259 (any byte up to space as
//! whitespace, `01`, `+` in exponents, raw control characters in strings), keeps duplicate keys
//! and their order, prints numbers as C's `%.15g` (or `%.17g` when 15 digits do not give the
//! number back), cuts strings at a NUL, and indents `--pretty` output with tabs.

/// How deep arrays and objects may nest in a payload (cJSON's `CJSON_NESTING_LIMIT`).
const NESTING_LIMIT: usize = 1000;

/// A JSON value as cJSON holds it: strings and keys are bytes (not necessarily UTF-8), members
/// keep their order and their duplicates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(Vec<u8>),
    Array(Vec<Value>),
    Object(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// A string value from raw bytes.
    pub(crate) fn string(bytes: &[u8]) -> Self {
        Self::String(bytes.to_vec())
    }

    /// Appends the value's text: on one line, or (`pretty`) with an object's members on lines of
    /// their own, indented by tabs, as `--pretty` prints them.
    pub(crate) fn write(&self, out: &mut Vec<u8>, pretty: bool) {
        self.write_at(out, pretty, 0);
    }

    fn write_at(&self, out: &mut Vec<u8>, pretty: bool, depth: usize) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(true) => out.extend_from_slice(b"true"),
            Self::Bool(false) => out.extend_from_slice(b"false"),
            Self::Number(number) => write_number(out, *number),
            Self::String(bytes) => write_string(out, bytes),
            Self::Array(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.extend_from_slice(if pretty { b", " } else { b"," });
                    }
                    // An array counts as a level for the indentation of objects inside it.
                    item.write_at(out, pretty, depth + 1);
                }
                out.push(b']');
            }
            Self::Object(members) => {
                let inner = depth + 1;
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (index, (key, value)) in members.iter().enumerate() {
                    if pretty {
                        out.extend(std::iter::repeat_n(b'\t', inner));
                    }
                    write_string(out, key);
                    out.extend_from_slice(if pretty { b":\t" } else { b":" });
                    value.write_at(out, pretty, inner);
                    if index + 1 < members.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    out.extend(std::iter::repeat_n(b'\t', depth));
                }
                out.push(b'}');
            }
        }
    }
}

/// A string in quotes, escaped as cJSON escapes it, ending at the first NUL (cJSON's strings are
/// C strings). Bytes from 0x80 up are copied as they are, UTF-8 or not.
fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &byte in bytes.iter().take_while(|&&b| b != 0) {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..0x20 => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// A number as cJSON prints it: `%1.15g`, or `%1.17g` when reading the 15 digits back does not
/// give (nearly) the same number; `null` for infinity and NaN.
fn write_number(out: &mut Vec<u8>, number: f64) {
    if !number.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let short = c_general(number, 15);
    let round_trips = short
        .parse::<f64>()
        .is_ok_and(|back| nearly_equal(back, number));
    if round_trips {
        out.extend_from_slice(short.as_bytes());
    } else {
        out.extend_from_slice(c_general(number, 17).as_bytes());
    }
}

/// cJSON's `compare_double`: equal within one epsilon relative to the larger magnitude.
fn nearly_equal(a: f64, b: f64) -> bool {
    let larger = a.abs().max(b.abs());
    (a - b).abs() <= larger * f64::EPSILON
}

/// C's `printf("%.{precision}g", number)` for a finite number: `precision` significant digits,
/// in scientific notation when the exponent is below -4 or at least `precision`, trailing zeros
/// removed.
fn c_general(number: f64, precision: usize) -> String {
    if number == 0.0 {
        return if number.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{:.*e}", precision.saturating_sub(1), number);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let precision_exponent = i64::try_from(precision).unwrap_or(i64::MAX);
    if exponent < -4 || exponent >= precision_exponent {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_fraction(mantissa),
            exponent.unsigned_abs()
        )
    } else {
        // Here -4 <= exponent < precision, so the decimals are 0..=precision + 3.
        let decimals = usize::try_from(precision_exponent - 1 - exponent).unwrap_or(0);
        trim_fraction(&format!("{number:.decimals$}")).to_owned()
    }
}

/// `1.500` → `1.5`, `2.000` → `2`; a number without a fraction is left alone.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Parses a payload as mosquitto_sub's `%J` does (cJSON, whole payload, one value, whitespace
/// around it allowed); `None` when cJSON would refuse it.
pub(crate) fn parse(payload: &[u8]) -> Option<Value> {
    // cJSON reads the payload as a C string: a NUL ends it early, and mosquitto then finds the
    // parse did not reach the payload's end.
    if payload.contains(&0) {
        return None;
    }
    let mut parser = Parser {
        input: payload,
        at: 0,
        depth: 0,
    };
    // A UTF-8 byte order mark is skipped, but only in front of at least one more byte.
    if payload.len() >= 4 && payload.starts_with(b"\xef\xbb\xbf") {
        parser.at = 3;
    }
    parser.skip_whitespace();
    let value = parser.value()?;
    parser.skip_whitespace();
    (parser.at == payload.len()).then_some(value)
}

/// A cursor over a NUL-free payload; past the end reads as NUL, as in cJSON.
struct Parser<'a> {
    input: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.input.get(self.at).copied().unwrap_or(0)
    }

    fn rest(&self) -> &[u8] {
        self.input.get(self.at..).unwrap_or_default()
    }

    /// cJSON skips every byte from 1 to 32 (space), not only JSON's four whitespace bytes.
    fn skip_whitespace(&mut self) {
        while self.at < self.input.len() && self.peek() <= b' ' {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        for (literal, value) in [
            (&b"null"[..], Value::Null),
            (b"false", Value::Bool(false)),
            (b"true", Value::Bool(true)),
        ] {
            if self.rest().starts_with(literal) {
                self.at += literal.len();
                return Some(value);
            }
        }
        match self.peek() {
            b'"' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            b'[' => self.nested(Self::array_items).map(Value::Array),
            b'{' => self.nested(Self::object_members).map(Value::Object),
            _ => None,
        }
    }

    /// Runs `items` one level deeper, refusing to go past the nesting limit.
    fn nested<T>(&mut self, items: fn(&mut Self) -> Option<T>) -> Option<T> {
        if self.depth >= NESTING_LIMIT {
            return None;
        }
        self.depth += 1;
        let parsed = items(self);
        self.depth -= 1;
        parsed
    }

    /// The items of an array; the cursor is on `[`.
    fn array_items(&mut self) -> Option<Vec<Value>> {
        self.at += 1;
        self.skip_whitespace();
        let mut items = Vec::new();
        if self.peek() != b']' {
            loop {
                self.skip_whitespace();
                items.push(self.value()?);
                self.skip_whitespace();
                if self.peek() != b',' {
                    break;
                }
                self.at += 1;
            }
            if self.peek() != b']' {
                return None;
            }
        }
        self.at += 1;
        Some(items)
    }

    /// The members of an object; the cursor is on `{`.
    fn object_members(&mut self) -> Option<Vec<(Vec<u8>, Value)>> {
        self.at += 1;
        self.skip_whitespace();
        let mut members = Vec::new();
        if self.peek() != b'}' {
            loop {
                self.skip_whitespace();
                let key = self.string()?;
                self.skip_whitespace();
                if self.peek() != b':' {
                    return None;
                }
                self.at += 1;
                self.skip_whitespace();
                members.push((key, self.value()?));
                self.skip_whitespace();
                if self.peek() != b',' {
                    break;
                }
                self.at += 1;
            }
            if self.peek() != b'}' {
                return None;
            }
        }
        self.at += 1;
        Some(members)
    }

    /// A string's bytes; the cursor must be on its opening quote. Anything but `\` and `"` is
    /// taken as it is, control characters and invalid UTF-8 included.
    fn string(&mut self) -> Option<Vec<u8>> {
        if self.peek() != b'"' {
            return None;
        }
        let body_start = self.at + 1;
        let body = self.input.get(body_start..)?;
        // Find the closing quote first, stepping over every escaped byte.
        let mut end = 0;
        loop {
            match body.get(end)? {
                b'"' => break,
                b'\\' => end += 2,
                _ => end += 1,
            }
        }
        let body = body.get(..end)?;
        let mut bytes = Vec::with_capacity(body.len());
        let mut at = 0;
        while let Some(&byte) = body.get(at) {
            if byte != b'\\' {
                bytes.push(byte);
                at += 1;
                continue;
            }
            let escaped = body.get(at + 1).copied().unwrap_or(0);
            let unescaped = match escaped {
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'"' | b'\\' | b'/' => escaped,
                b'u' => {
                    at += utf16_escape(body.get(at..)?, &mut bytes)?;
                    continue;
                }
                _ => return None,
            };
            bytes.push(unescaped);
            at += 2;
        }
        self.at = body_start + end + 1;
        Some(bytes)
    }

    /// A number: the run of `0-9 + - e E .` bytes, of which the longest prefix that C's `strtod`
    /// reads is the number. (cJSON 1.7.15 read at most 63 bytes; Debian's, patched for
    /// CVE-2023-26819, reads the whole run, as later cJSON releases do.)
    fn number(&mut self) -> Option<f64> {
        let candidate: Vec<u8> = self
            .rest()
            .iter()
            .copied()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.'))
            .collect();
        let length = strtod_prefix(&candidate);
        let text = std::str::from_utf8(candidate.get(..length)?).ok()?;
        let number = text.parse::<f64>().ok()?;
        self.at += length;
        Some(number)
    }
}

/// How many leading bytes of `text` (made of `0-9 + - e E .` only) C's `strtod` reads as a
/// decimal number: `[+-]digits[.digits][e[+-]digits]`, with at least one mantissa digit and the
/// exponent only when it has digits. 0 when there is no number.
fn strtod_prefix(text: &[u8]) -> usize {
    let digits_from = |from: usize| {
        text.get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(matches!(text.first(), Some(b'+' | b'-')));
    let whole = digits_from(at);
    at += whole;
    let mut fraction = 0;
    if text.get(at) == Some(&b'.') {
        fraction = digits_from(at + 1);
        if whole + fraction > 0 {
            at += 1 + fraction;
        }
    }
    if whole + fraction == 0 {
        return 0;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(text.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits_from(at + 1 + sign);
        if exponent > 0 {
            at += 1 + sign + exponent;
        }
    }
    at
}

/// Decodes `\uXXXX` (or a surrogate pair `\uXXXX\uXXXX`) at the start of `escape`, the rest of a
/// string body, appending UTF-8; returns how many bytes it read. As in cJSON, a non-hex digit
/// makes the whole code 0 (which then ends the string where it is printed), and a lone or
/// reversed surrogate is refused.
fn utf16_escape(escape: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let first = hex4(escape.get(2..6)?);
    if (0xdc00..=0xdfff).contains(&first) {
        return None;
    }
    let (code_point, length) = if (0xd800..=0xdbff).contains(&first) {
        let second = escape.get(6..12)?;
        if !second.starts_with(b"\\u") {
            return None;
        }
        let low = hex4(second.get(2..6)?);
        if !(0xdc00..=0xdfff).contains(&low) {
            return None;
        }
        (0x10000 + (((first & 0x3ff) << 10) | (low & 0x3ff)), 12)
    } else {
        (first, 6)
    };
    // Every value here is a scalar value: surrogates were paired or refused above.
    let character = char::from_u32(code_point)?;
    let mut buffer = [0; 4];
    out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
    Some(length)
}

/// Four hex digits as a number; 0 if any of them is not a hex digit (cJSON's `parse_hex4`).
fn hex4(digits: &[u8]) -> u32 {
    let text = std::str::from_utf8(digits).unwrap_or_default();
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(text, 16).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reprinted(payload: &str, pretty: bool) -> Option<String> {
        let value = parse(payload.as_bytes())?;
        let mut out = Vec::new();
        value.write(&mut out, pretty);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn number(value: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_as_c_percent_15g_and_17g_when_needed() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.0), "-0");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1e10), "10000000000");
        assert_eq!(number(123456789012345.0), "123456789012345");
        assert_eq!(number(1e15), "1e+15");
        assert_eq!(number(1e20), "1e+20");
        assert_eq!(number(1.5e-5), "1.5e-05");
        assert_eq!(number(0.0001), "0.0001");
        assert_eq!(number(-1e300), "-1e+300");
        // Within one epsilon counts as given back: 15 digits do.
        assert_eq!(number(0.1 + 0.2), "0.3");
        // 15 digits lose these, so 17 are printed.
        assert_eq!(number(123_456_789.123_456_79), "123456789.12345679");
        assert_eq!(number(1.1111111111111112e62), "1.1111111111111112e+62");
        assert_eq!(number(f64::INFINITY), "null");
        assert_eq!(number(f64::NAN), "null");
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_bytes_only() {
        let mut out = Vec::new();
        write_string(&mut out, b"a\"b\\c/\x08\x0c\n\r\t\x01\x1f\x7f\xc3\xa9\xff");
        assert_eq!(
            out,
            b"\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\xff\"".to_vec()
        );
    }

    #[test]
    fn strings_end_at_a_nul() {
        let mut out = Vec::new();
        write_string(&mut out, b"ab\0cd");
        assert_eq!(out, b"\"ab\"".to_vec());
    }

    #[test]
    fn compact_output_keeps_order_and_duplicate_keys() {
        assert_eq!(
            reprinted(
                r#" { "b" : 1, "a":[1, 2.50 ,{}], "b":{} ,"n":null,"t":true,"f":false}"#,
                false
            )
            .as_deref(),
            Some(r#"{"b":1,"a":[1,2.5,{}],"b":{},"n":null,"t":true,"f":false}"#)
        );
    }

    #[test]
    fn pretty_output_indents_objects_with_tabs_and_keeps_arrays_on_one_line() {
        assert_eq!(
            reprinted(r#"{"a":[1,{"x":2}],"b":{},"c":{"d":[]}}"#, true).as_deref(),
            Some(
                "{\n\t\"a\":\t[1, {\n\t\t\t\"x\":\t2\n\t\t}],\n\t\"b\":\t{\n\t},\n\t\"c\":\t{\n\t\t\"d\":\t[]\n\t}\n}"
            )
        );
        assert_eq!(reprinted("[]", true).as_deref(), Some("[]"));
        assert_eq!(reprinted("{}", true).as_deref(), Some("{\n}"));
    }

    #[test]
    fn cjson_leniencies_are_accepted() {
        assert_eq!(reprinted("01", false).as_deref(), Some("1"));
        assert_eq!(reprinted("-.5", false).as_deref(), Some("-0.5"));
        assert_eq!(reprinted("1.e2", false).as_deref(), Some("100"));
        assert_eq!(reprinted("1E+2", false).as_deref(), Some("100"));
        assert_eq!(reprinted("\x01\x0b 7 \x1f", false).as_deref(), Some("7"));
        assert_eq!(reprinted("\u{feff}[1]", false).as_deref(), Some("[1]"));
        assert_eq!(
            reprinted("\"tab\there\"", false).as_deref(),
            Some("\"tab\\there\"")
        );
        assert_eq!(reprinted("1e400", false).as_deref(), Some("null"));
        assert_eq!(reprinted("[1,]", false), None);
    }

    #[test]
    fn escapes_decode_to_utf8_and_bad_hex_gives_a_nul() {
        assert_eq!(
            reprinted(r#""\u00e9\ud83d\ude00\/\b""#, false).as_deref(),
            Some("\"é😀/\\b\"")
        );
        assert_eq!(
            reprinted(r#""ab\uZZZZcd""#, false).as_deref(),
            Some("\"ab\"")
        );
        assert_eq!(reprinted(r#""\ude00""#, false), None);
        assert_eq!(reprinted(r#""\ud83d""#, false), None);
        assert_eq!(reprinted(r#""\ud83d\u0041""#, false), None);
        assert_eq!(reprinted(r#""\x""#, false), None);
    }

    #[test]
    fn refusals_match_cjson() {
        for payload in [
            "", " ", "nul", "tru", "+1", ".5", "-", "0x10", "1 2", "[1", "{\"a\"}", "{a:1}",
            "\"open", "'s'", "NaN", "Infinity", "[1]x", "\u{feff}",
        ] {
            assert_eq!(reprinted(payload, false), None, "{payload:?}");
        }
        assert_eq!(parse(b"1\0"), None);
        assert_eq!(parse(b"\"a\xffb\"").map(|_| ()), Some(()));
    }

    #[test]
    fn long_numbers_are_read_whole() {
        assert_eq!(
            reprinted(&"1".repeat(64), false).as_deref(),
            Some("1.1111111111111112e+63")
        );
        assert_eq!(reprinted(&"1".repeat(400), false).as_deref(), Some("null"));
    }

    #[test]
    fn nesting_stops_at_1000_levels() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse(nested(1000).as_bytes()).is_some());
        assert!(parse(nested(1001).as_bytes()).is_none());
    }
}
