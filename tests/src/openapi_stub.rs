//! A stand-in for Alibaba Cloud's OpenAPI endpoint, for testing OpenAPI clients (the library's
//! `OpenApiClient`, `sansmq token`) on answers the local broker never gives: canned service
//! errors, slow or malformed answers. Each connection carries one request; the test decides the
//! answer and gets back what was asked, to check its parameters and signature.
//!
//! For the real thing, the broker in ApsaraMQ mode serves the same operations
//! (`ApsaraMqMode::openapi_bind`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sansmq_apsaramq::openapi::signature;

/// A request as the stub received it: method, path and decoded query parameters.
#[derive(Debug, Clone)]
pub struct OpenApiRequest {
    /// `GET`, say.
    pub method: String,
    /// The path before the query, e.g. `/`.
    pub path: String,
    /// The query's parameters, percent-decoded, in order.
    pub params: Vec<(String, String)>,
}

impl OpenApiRequest {
    /// The value of parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether its `Signature` is Alibaba Cloud's RPC signature of the rest with `secret`.
    pub fn is_signed_with(&self, secret: &str) -> bool {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        signature::verify(&self.method, &params, secret)
    }
}

/// Serves `connections` connections on 127.0.0.1, one request each, answering with the HTTP
/// status and JSON body `answer` makes of the request. Returns the endpoint URL
/// (`http://127.0.0.1:PORT/`) and a handle that joins to the requests received.
pub fn serve_openapi(
    connections: usize,
    answer: impl Fn(&OpenApiRequest) -> (u16, String) + Send + 'static,
) -> (String, JoinHandle<Vec<OpenApiRequest>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the OpenAPI stub");
    let url = format!(
        "http://{}/",
        listener.local_addr().expect("the stub's address")
    );
    let handle = thread::spawn(move || {
        let mut received = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().expect("a connection to the stub");
            let request = read_request(&stream);
            let (status, body) = answer(&request);
            write_answer(&stream, status, &body);
            received.push(request);
        }
        received
    });
    (url, handle)
}

/// An endpoint that accepts one connection and answers nothing for `hold`, then hangs up: for
/// testing client timeouts. Returns its URL and a handle that joins once it hung up.
pub fn serve_silence(hold: Duration) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the silent stub");
    let url = format!(
        "http://{}/",
        listener.local_addr().expect("the stub's address")
    );
    let handle = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            thread::sleep(hold);
            drop(stream);
        }
    });
    (url, handle)
}

/// What the service answers a request whose signature does not verify.
pub fn signature_mismatch() -> (u16, String) {
    (
        400,
        r#"{"RequestId":"RID-SIG","HostId":"onsmqtt.local","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}"#.to_owned(),
    )
}

fn read_request(stream: &TcpStream) -> OpenApiRequest {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("a request line");
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    // Headers, up to the blank line; the clients send GET, without a body.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .expect("UTF-8 parameters")
            .into_owned()
    };
    let params = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect();
    OpenApiRequest {
        method,
        path: path.to_owned(),
        params,
    }
}

fn write_answer(mut stream: &TcpStream, status: u16, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The client may have given up (a timeout test): nothing to do then.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}
