//! Alibaba Cloud's RPC-style request signature (`SignatureMethod=HMAC-SHA1`,
//! `SignatureVersion=1.0`), which every OpenAPI request carries in its `Signature` parameter:
//!
//! 1. each parameter name and value is percent-encoded ([`percent_encode`]: RFC 3986's
//!    unreserved characters `A-Z a-z 0-9 - _ . ~` kept, every other UTF-8 byte as `%XY` in upper
//!    case, so a space is `%20` and `*` is `%2A`);
//! 2. the pairs, `Signature` left out, are sorted by encoded name and joined as
//!    `name=value&name=value` (the canonicalised query);
//! 3. StringToSign is `METHOD&%2F&` followed by the canonicalised query, percent-encoded again
//!    ([`string_to_sign`]);
//! 4. the signature is Base64(HMAC-SHA1(key = AccessKey secret + `"&"`, StringToSign))
//!    ([`sign`]); a server checks it with [`verify`].
//!
//! It needs no feature: the client (feature `openapi`) signs with it, and the local broker checks
//! requests with it.
//!
//! ```
//! use sansmq_apsaramq::openapi::signature;
//!
//! let mut params = vec![
//!     ("Action", "QueryToken"),
//!     ("InstanceId", "mqtt-cn-local"),
//!     ("Token", "LzMT+XLFl5s/YWJ/MlDz4t/Lq5HC1iGU1P28HAMaxYxn8aQbALNtml7QZKl9L9kPe6LqUb95tEVo+zUqOogs1q5EBxT8BlrE"),
//! ];
//! let signature = signature::sign("GET", &params, "secret");
//! params.push(("Signature", &signature));
//! assert!(signature::verify("GET", &params, "secret"));
//! assert!(!signature::verify("GET", &params, "another secret"));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;

/// The name of the parameter that carries the signature, left out of what is signed.
pub const SIGNATURE_PARAM: &str = "Signature";

/// What [`percent_encode`] encodes: everything but RFC 3986's unreserved characters.
const POP_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `value` as Alibaba Cloud's signature wants: `A-Z a-z 0-9 - _ . ~` as they are,
/// every other byte of its UTF-8 as `%XY` with upper-case hex (a space is `%20`, never `+`; `*`
/// is `%2A`).
///
/// ```
/// use sansmq_apsaramq::openapi::signature::percent_encode;
///
/// assert_eq!(percent_encode("a b*c~d/é"), "a%20b%2Ac~d%2F%C3%A9");
/// ```
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, POP_ENCODE_SET).to_string()
}

/// The canonicalised query: the pairs other than `Signature`, encoded, sorted by encoded name
/// (then by encoded value, should a name repeat), joined by `&`.
fn canonicalised_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| *name != SIGNATURE_PARAM)
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// The string the signature is computed over: `METHOD&%2F&` and the percent-encoded canonicalised
/// query of `params` (any `Signature` among them is left out). `method` is the HTTP method in
/// upper case, `GET` or `POST`.
///
/// ```
/// use sansmq_apsaramq::openapi::signature::string_to_sign;
///
/// assert_eq!(
///     string_to_sign("GET", &[("Version", "2020-04-20"), ("Action", "ApplyToken")]),
///     "GET&%2F&Action%3DApplyToken%26Version%3D2020-04-20",
/// );
/// ```
pub fn string_to_sign(method: &str, params: &[(&str, &str)]) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonicalised_query(params))
    )
}

/// The HMAC-SHA1 keyed with `access_key_secret` and `&`, fed StringToSign.
fn mac(method: &str, params: &[(&str, &str)], access_key_secret: &str) -> Hmac<Sha1> {
    let key = format!("{access_key_secret}&");
    // HMAC accepts a key of any length (RFC 2104 hashes long keys), so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign(method, params).as_bytes());
    mac
}

/// The `Signature` parameter for a request with `params` (a `Signature` among them is ignored):
/// Base64(HMAC-SHA1(`access_key_secret` + `"&"`, [`string_to_sign`])), 28 characters.
pub fn sign(method: &str, params: &[(&str, &str)], access_key_secret: &str) -> String {
    STANDARD.encode(
        mac(method, params, access_key_secret)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `params`, as received, carry exactly one `Signature` and it is the one
/// `access_key_secret` makes for the others. The comparison takes the same time wherever the
/// signatures differ; a signature that is not Base64 is refused.
pub fn verify(method: &str, params: &[(&str, &str)], access_key_secret: &str) -> bool {
    let mut signatures = params.iter().filter(|(name, _)| *name == SIGNATURE_PARAM);
    let (Some((_, signature)), None) = (signatures.next(), signatures.next()) else {
        return false;
    };
    let Ok(signature) = STANDARD.decode(signature) else {
        return false;
    };
    mac(method, params, access_key_secret)
        .verify_slice(&signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alibaba's worked example of the signature (ECS `DescribeRegions` with the AccessKey
    /// `testid` / `testsecret`), as its signature documentation gives it.
    const EXAMPLE: [(&str, &str); 8] = [
        ("TimeStamp", "2016-02-23T12:46:24Z"),
        ("Format", "XML"),
        ("AccessKeyId", "testid"),
        ("Action", "DescribeRegions"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("Version", "2014-05-26"),
        ("SignatureVersion", "1.0"),
    ];
    /// The documented StringToSign. Some copies of the page show the `&` between pairs unencoded
    /// (an HTML rendering that decoded `%26`); the documented signature below is the HMAC of this
    /// string, with `%26`, and not of that one.
    const EXAMPLE_STRING_TO_SIGN: &str = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions\
        %26Format%3DXML%26SignatureMethod%3DHMAC-SHA1\
        %26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0\
        %26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26";
    const EXAMPLE_SIGNATURE: &str = "CT9X0VtwR86fNWSnsc6v8YGOjuE=";

    fn signed(
        params: &[(&'static str, &'static str)],
        signature: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut params = params.to_vec();
        params.push(("Signature", signature));
        params
    }

    #[test]
    fn documented_example_string_to_sign() {
        assert_eq!(string_to_sign("GET", &EXAMPLE), EXAMPLE_STRING_TO_SIGN);
    }

    #[test]
    fn documented_example_signature() {
        assert_eq!(sign("GET", &EXAMPLE, "testsecret"), EXAMPLE_SIGNATURE);
        assert!(verify(
            "GET",
            &signed(&EXAMPLE, EXAMPLE_SIGNATURE),
            "testsecret"
        ));
    }

    #[test]
    fn a_signature_param_is_not_signed() {
        let with = signed(&EXAMPLE, "anything");
        assert_eq!(string_to_sign("GET", &with), EXAMPLE_STRING_TO_SIGN);
        assert_eq!(sign("GET", &with, "testsecret"), EXAMPLE_SIGNATURE);
    }

    #[test]
    fn order_of_params_does_not_matter() {
        let mut reversed = EXAMPLE;
        reversed.reverse();
        assert_eq!(sign("GET", &reversed, "testsecret"), EXAMPLE_SIGNATURE);
    }

    #[test]
    fn verify_refuses_a_changed_param_secret_or_method() {
        let good = signed(&EXAMPLE, EXAMPLE_SIGNATURE);
        assert!(!verify("GET", &good, "testsecret2"));
        assert!(!verify("POST", &good, "testsecret"));
        let mut changed = good.clone();
        changed[2] = ("AccessKeyId", "testid2");
        assert!(!verify("GET", &changed, "testsecret"));
        let mut added = good.clone();
        added.push(("InstanceId", "mqtt-cn-test"));
        assert!(!verify("GET", &added, "testsecret"));
        let removed: Vec<_> = good
            .iter()
            .copied()
            .filter(|(k, _)| *k != "Format")
            .collect();
        assert!(!verify("GET", &removed, "testsecret"));
    }

    #[test]
    fn verify_refuses_a_missing_doubled_or_malformed_signature() {
        assert!(!verify("GET", &EXAMPLE, "testsecret"));
        let mut doubled = signed(&EXAMPLE, EXAMPLE_SIGNATURE);
        doubled.push(("Signature", EXAMPLE_SIGNATURE));
        assert!(!verify("GET", &doubled, "testsecret"));
        assert!(!verify(
            "GET",
            &signed(&EXAMPLE, "not base64!"),
            "testsecret"
        ));
        assert!(!verify("GET", &signed(&EXAMPLE, ""), "testsecret"));
        // The right signature cut short, or with a byte more, is not the signature.
        assert!(!verify(
            "GET",
            &signed(&EXAMPLE, "CT9X0VtwR86fNWSnsc6v8YGO"),
            "testsecret"
        ));
        assert!(!verify(
            "GET",
            &signed(&EXAMPLE, "CT9X0VtwR86fNWSnsc6v8YGOjuEA"),
            "testsecret"
        ));
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("/=&:,"), "%2F%3D%26%3A%2C");
        assert_eq!(percent_encode("%"), "%25");
        assert_eq!(percent_encode("\""), "%22");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("主题"), "%E4%B8%BB%E9%A2%98");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn names_sort_after_encoding_and_values_are_encoded_twice() {
        assert_eq!(
            string_to_sign(
                "POST",
                &[
                    ("b", "x y"),
                    ("a*", "1"),
                    ("a", "R,W"),
                    ("Resources", "t/1")
                ]
            ),
            // Encoded names sort byte-wise: "Resources" < "a" < "a%2A" < "b".
            "POST&%2F&Resources%3Dt%252F1%26a%3DR%252CW%26a%252A%3D1%26b%3Dx%2520y"
        );
    }
}
