//! ApsaraMQ mode's local OpenAPI: the token operations of ApsaraMQ for MQTT's API (version
//! 2020-04-20) — `ApplyToken`, `QueryToken` and `RevokeToken` — over HTTP, checked like the cloud
//! service checks them (Alibaba Cloud's RPC signature with an AccessKey of the mode, a fresh
//! timestamp and nonce), so an application server can be rehearsed without an account.
//!
//! Requests are HTTP/1.1 GET with the parameters in the query string, or POST with them in an
//! `application/x-www-form-urlencoded` body; each connection carries one request and is closed
//! after the response. Responses are JSON, errors with the service's shape:
//! `{"RequestId":…,"HostId":…,"Code":…,"Message":…}` and an HTTP status of 400 or 404.
//!
//! It runs on the broker's own thread, like the MQTT connections, so a revocation reaches the
//! clients holding the token at once.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::{Interest, Token};
use percent_encoding::percent_decode_str;
use sansmq::TopicFilter;
use sansmq_apsaramq::openapi::signature;
use serde_json::json;

use crate::apsaramq::{ApsaraMqMode, TokenKind};
use crate::server::Server;
use crate::tokens::{IssuedToken, TokenRegistry};

/// The API version the operations belong to.
const API_VERSION: &str = "2020-04-20";
/// The largest request taken, head and body.
const MAX_REQUEST: usize = 64 * 1024;
/// Exchanges served at once; a connection past them is closed at once, so that the API's memory
/// stays under this times [`MAX_REQUEST`] (4 MiB) whatever connects.
pub(crate) const MAX_EXCHANGES: usize = 64;
/// How long a connection may take to send its request and read the response.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How far a request's timestamp may be from the broker's clock, and how long its nonce is
/// remembered, as the service does.
const TIMESTAMP_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest token lifetime `ApplyToken` grants, as the service.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Topics in one token's resources, as the service.
const MAX_RESOURCES: usize = 100;

/// One HTTP request and its response, on its own connection.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    deadline: Instant,
}

impl HttpExchange {
    pub(crate) fn new(stream: TcpStream, now: Instant) -> Self {
        Self {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            deadline: now + EXCHANGE_TIMEOUT,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads what arrived; `Ok(true)` once the peer closed its side.
    fn read_available(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.input
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    if self.input.len() > MAX_REQUEST {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the response; `Ok(true)` once all of it is written.
    fn write_pending(&mut self) -> io::Result<bool> {
        while let Some(rest) = self.output.get(self.written..).filter(|r| !r.is_empty()) {
            match self.stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// A whole request, parsed.
#[derive(Debug)]
struct Request {
    method: String,
    host: String,
    params: Vec<(String, String)>,
}

/// An API answer: the HTTP status and the JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: serde_json::Value,
}

impl Answer {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "Code": code, "Message": message.into() }),
        }
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::error(400, "InvalidParameter", message)
    }
}

/// The signature nonces seen within [`TIMESTAMP_WINDOW`], so that a request cannot be replayed.
#[derive(Debug, Default)]
pub(crate) struct SeenNonces {
    seen: HashMap<String, Instant>,
}

impl SeenNonces {
    /// Records `nonce`; `false` if it was used within the window.
    fn first_use(&mut self, nonce: &str, now: Instant) -> bool {
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) < TIMESTAMP_WINDOW);
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_owned(), now);
        true
    }
}

impl Server {
    /// Serves the exchange on `token` as far as its socket allows, and ends it when done.
    pub(crate) fn serve_http(&mut self, token: Token, now: Instant) {
        let Some(exchange) = self.http.get_mut(&token) else {
            return;
        };
        if exchange.output.is_empty() {
            let closed = match exchange.read_available() {
                Ok(closed) => closed,
                Err(error) => {
                    tracing::debug!(%error, "OpenAPI connection failed");
                    return self.end_http(token);
                }
            };
            let request = match parse_request(&exchange.input) {
                Ok(Some(request)) => Ok(request),
                Ok(None) if exchange.input.len() > MAX_REQUEST => Err(Answer::error(
                    413,
                    "RequestTooLarge",
                    format!("the request is over {MAX_REQUEST} bytes"),
                )),
                Ok(None) if closed => return self.end_http(token),
                Ok(None) => return, // more to come
                Err(answer) => Err(answer),
            };
            let (host, answer) = match request {
                Ok(request) => {
                    let answer = self.answer(&request, now);
                    (request.host, answer)
                }
                Err(answer) => ("localhost".to_owned(), answer),
            };
            let Some(exchange) = self.http.get_mut(&token) else {
                return;
            };
            exchange.output = render(answer, &host);
            let registry = self.poll.registry();
            if let Err(error) = registry.reregister(&mut exchange.stream, token, Interest::WRITABLE)
            {
                tracing::debug!(%error, "OpenAPI connection failed");
                return self.end_http(token);
            }
        }
        let Some(exchange) = self.http.get_mut(&token) else {
            return;
        };
        match exchange.write_pending() {
            Ok(false) => {}
            Ok(true) => self.end_http(token),
            Err(error) => {
                tracing::debug!(%error, "OpenAPI connection failed");
                self.end_http(token);
            }
        }
    }

    /// Closes exchanges past their deadline.
    pub(crate) fn expire_http(&mut self, now: Instant) {
        let late: Vec<Token> = self
            .http
            .iter()
            .filter(|(_, exchange)| exchange.deadline <= now)
            .map(|(token, _)| *token)
            .collect();
        for token in late {
            tracing::debug!("OpenAPI connection timed out");
            self.end_http(token);
        }
    }

    fn end_http(&mut self, token: Token) {
        if let Some(mut exchange) = self.http.remove(&token) {
            let _ = self.poll.registry().deregister(&mut exchange.stream);
        }
    }

    /// Checks a request like the service and carries out its operation.
    fn answer(&mut self, request: &Request, now: Instant) -> Answer {
        let Some(mode) = &self.config.apsaramq else {
            return Answer::error(404, "InvalidAction.NotFound", "ApsaraMQ mode is off");
        };
        let wall_clock = SystemTime::now();
        let params = match Params::new(&request.params) {
            Ok(params) => params,
            Err(answer) => return answer,
        };
        if let Err(answer) = authenticate(mode, request, &params, wall_clock) {
            return answer;
        }
        let nonce = params.get("SignatureNonce").unwrap_or_default();
        if !self.nonces.first_use(nonce, now) {
            return Answer::error(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            );
        }
        let action = params.get("Action").unwrap_or_default();
        let instance = match params.require("InstanceId") {
            Ok(instance) if instance == mode.instance_id() => instance,
            Ok(instance) => {
                return Answer::error(
                    404,
                    "InvalidInstanceId.NotFound",
                    format!(
                        "instance {instance} does not exist (this broker is {})",
                        mode.instance_id()
                    ),
                );
            }
            Err(answer) => return answer,
        };
        let access_key_id = params.get("AccessKeyId").unwrap_or_default();
        let answer = match action {
            "ApplyToken" => apply_token(
                &mut self.tokens,
                &params,
                access_key_id,
                instance,
                wall_clock,
            ),
            "QueryToken" => params.require("Token").map(|value| {
                let valid = self.tokens.get(value).is_some_and(|token| {
                    token.instance_id == instance && !token.revoked && token.expires_at > wall_clock
                });
                Answer {
                    status: 200,
                    body: json!({ "TokenStatus": valid }),
                }
            }),
            "RevokeToken" => params.require("Token").map(|value| {
                // Revoking a token that was never issued (or is gone) succeeds too: the token
                // is not valid afterwards either way.
                if self.tokens.revoke(value) {
                    tracing::info!(access_key_id, "token revoked");
                }
                Answer {
                    status: 200,
                    body: json!({}),
                }
            }),
            other => Err(Answer::error(
                404,
                "InvalidAction.NotFound",
                format!(
                    "unknown action {other:?}: this broker serves ApplyToken, QueryToken and RevokeToken"
                ),
            )),
        };
        if action == "RevokeToken" {
            self.check_held_tokens(); // holders learn at once
        }
        answer.unwrap_or_else(|answer| answer)
    }
}

/// A request's parameters, each at most once.
struct Params<'a> {
    all: &'a [(String, String)],
}

impl<'a> Params<'a> {
    fn new(all: &'a [(String, String)]) -> Result<Self, Answer> {
        for (index, (name, _)) in all.iter().enumerate() {
            if all.iter().skip(index + 1).any(|(other, _)| other == name) {
                return Err(Answer::invalid_parameter(format!("{name} is given twice")));
            }
        }
        Ok(Self { all })
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.all
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn require(&self, name: &str) -> Result<&'a str, Answer> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(Answer::error(
                400,
                "MissingParameter",
                format!("the parameter {name} is required"),
            )),
        }
    }
}

/// The common parameters and the signature, checked as the service checks them.
fn authenticate(
    mode: &ApsaraMqMode,
    request: &Request,
    params: &Params<'_>,
    now: SystemTime,
) -> Result<(), Answer> {
    for name in [
        "Action",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Version",
    ] {
        params.require(name)?;
    }
    let format = params.get("Format").unwrap_or("JSON");
    if !format.eq_ignore_ascii_case("JSON") {
        return Err(Answer::invalid_parameter(format!(
            "Format {format} is not supported here: use JSON"
        )));
    }
    if params.get("SignatureMethod") != Some("HMAC-SHA1") {
        return Err(Answer::error(
            400,
            "InvalidSignatureMethod",
            "SignatureMethod must be HMAC-SHA1",
        ));
    }
    if params.get("SignatureVersion") != Some("1.0") {
        return Err(Answer::error(
            400,
            "InvalidSignatureVersion",
            "SignatureVersion must be 1.0",
        ));
    }
    if params.get("Version") != Some(API_VERSION) {
        return Err(Answer::error(
            400,
            "InvalidVersion",
            format!("Version must be {API_VERSION}"),
        ));
    }
    let timestamp = params.get("Timestamp").unwrap_or_default();
    let Ok(at) = timestamp.parse::<jiff::Timestamp>() else {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Format",
            format!("Timestamp {timestamp:?} is not yyyy-MM-ddTHH:mm:ssZ"),
        ));
    };
    let at = SystemTime::from(at);
    let skew = now
        .duration_since(at)
        .or_else(|_| at.duration_since(now))
        .unwrap_or_default();
    if skew > TIMESTAMP_WINDOW {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Expired",
            format!("Timestamp {timestamp} is more than 15 minutes from the server's clock"),
        ));
    }
    let key_id = params.get("AccessKeyId").unwrap_or_default();
    let Some(secret) = mode.access_keys.get(key_id) else {
        return Err(Answer::error(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    };
    let pairs: Vec<(&str, &str)> = request
        .params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    if !signature::verify(&request.method, &pairs, secret) {
        return Err(Answer::error(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    Ok(())
}

/// `ApplyToken`: `Resources` (comma-separated topic filters, at most 100), `Actions` (`R`, `W`
/// or `R,W`) and `ExpireTime` (ms since the epoch, within 30 days).
fn apply_token(
    registry: &mut TokenRegistry,
    params: &Params<'_>,
    access_key_id: &str,
    instance_id: &str,
    now: SystemTime,
) -> Result<Answer, Answer> {
    let resources: Vec<String> = params
        .require("Resources")?
        .split(',')
        .map(|resource| resource.trim().to_owned())
        .collect();
    if resources.len() > MAX_RESOURCES {
        return Err(Answer::invalid_parameter(format!(
            "Resources names {} topics; a token reaches at most {MAX_RESOURCES}",
            resources.len()
        )));
    }
    if let Some(bad) = resources
        .iter()
        .find(|resource| TopicFilter::try_from(resource.as_str()).is_err())
    {
        return Err(Answer::invalid_parameter(format!(
            "Resources: {bad:?} is not a topic or topic filter"
        )));
    }
    let actions = match params.require("Actions")? {
        "R" => TokenKind::Read,
        "W" => TokenKind::Write,
        "R,W" | "W,R" => TokenKind::ReadWrite,
        other => {
            return Err(Answer::invalid_parameter(format!(
                "Actions is {other:?}; use R, W or R,W"
            )));
        }
    };
    let expire_time = params.require("ExpireTime")?;
    let expires_at = expire_time
        .parse::<u64>()
        .ok()
        .and_then(|ms| SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .ok_or_else(|| {
            Answer::invalid_parameter(format!(
                "ExpireTime {expire_time:?} is not milliseconds since the epoch"
            ))
        })?;
    // The service also wants at least 60 seconds; this broker takes any future time, so that
    // a test can watch a token expire.
    let lifetime = expires_at.duration_since(now).unwrap_or_default();
    if lifetime.is_zero() || lifetime > MAX_TOKEN_LIFETIME {
        return Err(Answer::invalid_parameter(
            "ExpireTime must be in the future and at most 30 days away",
        ));
    }
    let value = registry
        .issue(IssuedToken {
            access_key_id: access_key_id.to_owned(),
            instance_id: instance_id.to_owned(),
            resources,
            actions,
            expires_at,
            revoked: false,
        })
        .map_err(|error| Answer::error(500, "InternalError", format!("no randomness: {error}")))?;
    tracing::info!(access_key_id, %actions, ?lifetime, "token issued");
    Ok(Answer {
        status: 200,
        body: json!({ "Token": value }),
    })
}

/// Parses a whole request out of `input`: `Ok(None)` while it is incomplete.
fn parse_request(input: &[u8]) -> Result<Option<Request>, Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(Answer::error(
                400,
                "BadRequest",
                format!("not HTTP: {error}"),
            ));
        }
    };
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let content_length = match header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(len)) => len,
        Some(Err(_)) => return Err(Answer::error(400, "BadRequest", "bad Content-Length")),
    };
    if header("transfer-encoding").is_some() {
        return Err(Answer::error(
            400,
            "BadRequest",
            "send the body with a Content-Length",
        ));
    }
    let Some(body) = input.get(head_len..head_len.saturating_add(content_length)) else {
        return Ok(None);
    };
    let method = head.method.unwrap_or_default().to_owned();
    let target = head.path.unwrap_or_default();
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let mut params = decode_form(query, false)?;
    match method.as_str() {
        "GET" => {}
        "POST" => {
            let body = std::str::from_utf8(body)
                .map_err(|_| Answer::invalid_parameter("the body is not UTF-8"))?;
            params.extend(decode_form(body, true)?);
        }
        other => {
            return Err(Answer::error(
                405,
                "MethodNotAllowed",
                format!("{other}: use GET or POST"),
            ));
        }
    }
    Ok(Some(Request {
        host: header("host").unwrap_or("localhost").to_owned(),
        method,
        params,
    }))
}

/// `name=value&…`, percent-decoded (and `+` as a space in a form body).
fn decode_form(text: &str, form: bool) -> Result<Vec<(String, String)>, Answer> {
    let decode = |part: &str| {
        let part = if form {
            part.replace('+', " ")
        } else {
            part.to_owned()
        };
        percent_decode_str(&part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| Answer::invalid_parameter("a parameter is not UTF-8"))
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The HTTP response for `answer`, with a request id (and, for errors, the host) in the body.
fn render(answer: Answer, host: &str) -> Vec<u8> {
    let mut body = answer.body;
    if let Some(object) = body.as_object_mut() {
        object.insert("RequestId".to_owned(), json!(request_id()));
        if answer.status != 200 {
            object.insert("HostId".to_owned(), json!(host));
        }
    }
    let body = body.to_string();
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    };
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        answer.status,
        body.len()
    )
    .into_bytes()
}

/// A request id in the service's form (`5C8AADD0-6A95-436D-AFA0-3405CCE3A1B2`).
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return "00000000-0000-0000-0000-000000000000".to_owned();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_a_query_or_a_form_body() {
        let get = b"GET /?Action=QueryToken&Token=a%2Bb%3D HTTP/1.1\r\nHost: h:1\r\n\r\n";
        let request = parse_request(get).unwrap().unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.host, "h:1");
        assert_eq!(
            request.params,
            [
                ("Action".to_owned(), "QueryToken".to_owned()),
                ("Token".to_owned(), "a+b=".to_owned())
            ]
        );
        let body = "Action=ApplyToken&Resources=a%2Fb%2Cc+d";
        let post = format!(
            "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let request = parse_request(post.as_bytes()).unwrap().unwrap();
        assert_eq!(
            request.params[1],
            ("Resources".to_owned(), "a/b,c d".to_owned())
        );
        // Incomplete head or body: wait for more.
        assert!(parse_request(b"GET / HTTP/1.1\r\n").unwrap().is_none());
        assert!(
            parse_request(&post.as_bytes()[..post.len() - 1])
                .unwrap()
                .is_none()
        );
        // Not HTTP, or a method the API does not take.
        assert_eq!(
            parse_request(b"\x16\x03\x01 hello\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_request(b"PUT / HTTP/1.1\r\n\r\n").unwrap_err().status,
            405
        );
    }

    proptest::proptest! {
        /// Whatever a peer sends, parsing answers (a request, "more", or an error) and never
        /// panics.
        #[test]
        fn any_bytes_parse_without_panicking(input in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_request(&input);
        }

        #[test]
        fn any_request_line_and_form_parse_without_panicking(target in "[ -~]{0,64}", body in "[ -~%+&=]{0,64}") {
            let request = format!(
                "POST /{target} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = parse_request(request.as_bytes());
        }
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        let params = [
            ("Token".to_owned(), "a".to_owned()),
            ("Token".to_owned(), "b".to_owned()),
        ];
        assert_eq!(Params::new(&params).err().map(|a| a.status), Some(400));
    }

    #[test]
    fn nonces_are_single_use_within_the_window() {
        let mut nonces = SeenNonces::default();
        let now = Instant::now();
        assert!(nonces.first_use("n1", now));
        assert!(!nonces.first_use("n1", now + Duration::from_secs(1)));
        assert!(nonces.first_use("n2", now));
        assert!(nonces.first_use("n1", now + TIMESTAMP_WINDOW));
    }

    #[test]
    fn errors_carry_the_services_fields() {
        let response = render(
            Answer::error(404, "InvalidAccessKeyId.NotFound", "m"),
            "host:1",
        );
        let text = String::from_utf8(response).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        let body: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["Code"], "InvalidAccessKeyId.NotFound");
        assert_eq!(body["HostId"], "host:1");
        assert_eq!(body["RequestId"].as_str().unwrap().len(), 36);
    }
}
