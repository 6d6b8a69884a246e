//! [`OpenApiClient`]: signs each request with the AccessKey and sends it as an HTTP GET.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use super::API_VERSION;
use super::endpoint::OpenApiEndpoint;
use super::error::OpenApiError;
use super::request::{self, ApplyToken, Call, IssuedToken};
use super::signature::{self, percent_encode};
use crate::credentials::AccessKey;

/// The largest answer read: the operations answer a few hundred bytes.
const MAX_ANSWER: u64 = 64 * 1024;

/// The HTTP method requests are sent with, and signed for.
const METHOD: &str = "GET";

/// A client of ApsaraMQ for MQTT's OpenAPI: issues ([`apply_token`](Self::apply_token)), checks
/// ([`query_token`](Self::query_token)) and revokes ([`revoke_token`](Self::revoke_token))
/// tokens.
///
/// Each call is one signed HTTP GET that blocks until the answer or the timeout (10 s unless set
/// with [`timeout`](Self::timeout)). Requests to a loopback endpoint skip any proxy from the
/// environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` otherwise apply). `Debug` shows the
/// endpoint and the AccessKey ID, never the secret.
///
/// The HTTP client, ureq, logs through the `log` crate; at `trace` level its records hold the
/// whole request, token and signature included: keep the `ureq` and `ureq_proto` targets at
/// `debug` or quieter (`sansmq` does). Clones share their connections.
#[derive(Clone)]
pub struct OpenApiClient {
    access_key: AccessKey,
    endpoint: OpenApiEndpoint,
    timeout: Duration,
    agent: ureq::Agent,
}

impl OpenApiClient {
    /// How long a call waits for its answer unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client signing with `access_key` and sending to `endpoint`.
    pub fn new(access_key: AccessKey, endpoint: OpenApiEndpoint) -> Self {
        let agent = agent(&endpoint, Self::DEFAULT_TIMEOUT);
        Self {
            access_key,
            endpoint,
            timeout: Self::DEFAULT_TIMEOUT,
            agent,
        }
    }

    /// Bounds each call, from connecting to the last byte of the answer, by `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.agent = agent(&self.endpoint, timeout);
        self.timeout = timeout;
        self
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &OpenApiEndpoint {
        &self.endpoint
    }

    /// Has the service issue a token (`ApplyToken`); the request is checked first (see
    /// [`ApplyToken`]).
    pub fn apply_token(&self, request: &ApplyToken) -> Result<IssuedToken, OpenApiError> {
        let call = request.call(SystemTime::now())?;
        let (status, body) = self.send(&call)?;
        request::parse_apply(&call, request, status, &body)
    }

    /// Whether the service holds `token` valid on `instance_id` (`QueryToken`): `false` for an
    /// expired, revoked or unknown token.
    pub fn query_token(&self, instance_id: &str, token: &str) -> Result<bool, OpenApiError> {
        let call = request::token_call("QueryToken", instance_id, token)?;
        let (status, body) = self.send(&call)?;
        request::parse_query(&call, status, &body)
    }

    /// Revokes `token` on `instance_id` (`RevokeToken`): clients using it are told
    /// (`$SYS/tokenInvalidNotice`) and disconnected.
    pub fn revoke_token(&self, instance_id: &str, token: &str) -> Result<(), OpenApiError> {
        let call = request::token_call("RevokeToken", instance_id, token)?;
        let (status, body) = self.send(&call)?;
        request::parse_revoke(&call, status, &body)
    }

    /// Signs `call` now with a fresh nonce, sends it, and returns the answer's status and body.
    fn send(&self, call: &Call) -> Result<(u16, String), OpenApiError> {
        let query = signed_query(
            call,
            &self.access_key,
            &nonce(),
            &timestamp(SystemTime::now()),
        );
        let url = format!("{}?{query}", self.endpoint);
        let transport = |error: ureq::Error| self.transport_error(call, error, &query);
        let mut answer = self.agent.get(&url).call().map_err(transport)?;
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(transport)?;
        Ok((status, body))
    }

    /// A failed exchange as an [`OpenApiError`]; the message never holds the query (nor so the
    /// signature or a token).
    fn transport_error(&self, call: &Call, error: ureq::Error, query: &str) -> OpenApiError {
        let timed_out = match &error {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == io::ErrorKind::TimedOut,
            _ => false,
        };
        if timed_out {
            return OpenApiError::Timeout {
                operation: call.operation,
                endpoint: self.endpoint.to_string(),
                timeout: self.timeout,
            };
        }
        let message = match &error {
            // These quote the URL, query included.
            ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
                "the HTTP client refused the URL".to_owned()
            }
            ureq::Error::BodyExceedsLimit(_) => {
                format!("the answer is longer than {MAX_ANSWER} bytes")
            }
            ureq::Error::Io(io) => io.to_string().replace(query, "***"),
            other => other.to_string().replace(query, "***"),
        };
        OpenApiError::Transport {
            operation: call.operation,
            endpoint: self.endpoint.to_string(),
            message,
        }
    }
}

impl fmt::Debug for OpenApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenApiClient")
            .field("access_key", &self.access_key)
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The HTTP agent: error statuses are answers to read (they carry the service's error), one
/// timeout bounds the whole exchange, and loopback endpoints are reached directly.
fn agent(endpoint: &OpenApiEndpoint, timeout: Duration) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("sansmq-apsaramq/", env!("CARGO_PKG_VERSION")));
    if endpoint.is_loopback() {
        config = config.proxy(None);
    }
    config.build().into()
}

/// The query string of `call`: its parameters, the common ones (`Action`, `Format`, `Version`,
/// `AccessKeyId`, `SignatureMethod`, `SignatureVersion`, `SignatureNonce`, `Timestamp`) and the
/// `Signature` over all of them, each name and value percent-encoded.
pub(super) fn signed_query(
    call: &Call,
    access_key: &AccessKey,
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("Action", call.operation),
        ("Format", "JSON"),
        ("Version", API_VERSION),
        ("AccessKeyId", access_key.id()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", timestamp),
    ];
    params.extend(
        call.params
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
    );
    let signature = signature::sign(METHOD, &params, access_key.secret().expose());
    params.push((signature::SIGNATURE_PARAM, &signature));
    let pairs: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect();
    pairs.join("&")
}

/// A fresh `SignatureNonce`: 128 random bits in hex.
fn nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// `Timestamp`: `time` in UTC to the second, `yyyy-MM-ddTHH:mm:ssZ`.
fn timestamp(time: SystemTime) -> String {
    let seconds = jiff::Timestamp::try_from(time)
        .map(|t| t.as_second())
        .unwrap_or_default();
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::credentials::TokenType;

    fn access_key() -> AccessKey {
        AccessKey::new("LTAI5tTestKey", "secretKey123")
    }

    /// The query's pairs, decoded.
    fn decode(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap();
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .unwrap()
                        .into_owned()
                };
                (decode(name), decode(value))
            })
            .collect()
    }

    #[test]
    fn timestamps_are_utc_to_the_second() {
        let time = UNIX_EPOCH + Duration::from_millis(1_456_231_584_750);
        assert_eq!(timestamp(time), "2016-02-23T12:46:24Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn nonces_are_fresh_128_bit_hex() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn queries_carry_every_parameter_and_a_valid_signature() {
        let request = ApplyToken::new(
            "mqtt-cn-test",
            ["parent/a b", "parent/+/c"],
            TokenType::W,
            UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        );
        let call = request.call(UNIX_EPOCH).unwrap();
        let query = signed_query(&call, &access_key(), "n0nce", "2024-01-02T03:04:05Z");
        let pairs = decode(&query);
        let find = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        for (name, value) in [
            ("Action", "ApplyToken"),
            ("Format", "JSON"),
            ("Version", "2020-04-20"),
            ("AccessKeyId", "LTAI5tTestKey"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "n0nce"),
            ("Timestamp", "2024-01-02T03:04:05Z"),
            ("InstanceId", "mqtt-cn-test"),
            ("Resources", "parent/a b,parent/+/c"),
            ("Actions", "W"),
            ("ExpireTime", "2000000000000"),
        ] {
            assert_eq!(find(name), Some(value), "{name}");
        }
        assert_eq!(pairs.len(), 13);
        // The query is URL-safe: spaces, '+' and '/' travel encoded.
        assert!(!query.contains(' ') && !query.contains('+') && !query.contains('/'));

        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert!(signature::verify(METHOD, &borrowed, "secretKey123"));
        assert!(!signature::verify(METHOD, &borrowed, "secretKey124"));
        assert!(!signature::verify("POST", &borrowed, "secretKey123"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let client = OpenApiClient::new(
            AccessKey::new("LTAI5tTestKey", "s3cr3t-value"),
            OpenApiEndpoint::region("cn-hangzhou").unwrap(),
        )
        .timeout(Duration::from_secs(3));
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(
            shown.contains("LTAI5tTestKey") && shown.contains("3s"),
            "{shown}"
        );
    }
}
