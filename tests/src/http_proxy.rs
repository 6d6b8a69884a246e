//! [`HttpProxy`]: a small HTTP proxy that serves CONNECT only (RFC 9110 section 9.3.6), with an
//! optional Basic login, that records what clients asked it to connect to and can refuse every
//! request with a chosen status.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::proxy_server::{Connections, ProxyServer};

/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// An HTTP CONNECT proxy on `127.0.0.1:<free port>`, a thread per connection.
///
/// It answers `407` to a request without the right `Proxy-Authorization: Basic` when it demands
/// a login, `502` when it cannot connect to the target, the chosen status when made with
/// [`refusing`](Self::refusing), and otherwise `200` and relays bytes both ways. Dropping it
/// closes every connection and joins its threads.
pub struct HttpProxy {
    server: ProxyServer<String>,
    login: Option<(String, String)>,
}

/// What every connection is answered.
#[derive(Debug, Clone)]
struct Policy {
    /// The expected `Proxy-Authorization` value, `Basic <base64>`.
    authorization: Option<String>,
    /// A status line to answer every CONNECT with, e.g. `502 Bad Gateway`.
    refusal: Option<&'static str>,
}

impl HttpProxy {
    /// A proxy that takes any client.
    ///
    /// # Panics
    ///
    /// If no port can be bound or no thread spawned.
    pub fn start() -> Self {
        Self::launch(None, None)
    }

    /// A proxy that demands this user name and password (Basic).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn with_login(username: &str, password: &str) -> Self {
        Self::launch(Some((username.to_owned(), password.to_owned())), None)
    }

    /// A proxy that answers every CONNECT with `status_line` (e.g. `"502 Bad Gateway"`), after
    /// recording its target.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn refusing(status_line: &'static str) -> Self {
        Self::launch(None, Some(status_line))
    }

    fn launch(login: Option<(String, String)>, refusal: Option<&'static str>) -> Self {
        let policy = Policy {
            authorization: login.as_ref().map(|(user, password)| {
                format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
            }),
            refusal,
        };
        let server = ProxyServer::start("http-proxy", move |client, connections| {
            serve(client, connections, &policy)
        });
        Self { server, login }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The proxy URL without a login: `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr().port())
    }

    /// The proxy URL with the login it demands (without one if it demands none).
    pub fn url_with_login(&self) -> String {
        match &self.login {
            Some((user, password)) => {
                format!("http://{user}:{password}@127.0.0.1:{}", self.addr().port())
            }
            None => self.url(),
        }
    }

    /// The target (`host:port`) of every CONNECT so far, in order, whether it was served or not.
    pub fn targets(&self) -> Vec<String> {
        self.server.targets()
    }
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("addr", &self.addr())
            .field("login", &self.login.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// One client: its request head, the answer, then bytes copied both ways.
fn serve(
    mut client: TcpStream,
    connections: &Connections<String>,
    policy: &Policy,
) -> io::Result<()> {
    let head = read_head(&mut client)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if method != "CONNECT" {
        return answer(&mut client, "405 Method Not Allowed");
    }
    connections.record(target.to_owned());
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    if let Some(expected) = &policy.authorization {
        if authorization.as_ref() != Some(expected) {
            return answer(&mut client, "407 Proxy Authentication Required");
        }
    }
    if let Some(refusal) = policy.refusal {
        return answer(&mut client, refusal);
    }
    let upstream = target.to_socket_addrs().ok().and_then(|addresses| {
        addresses
            .into_iter()
            .find_map(|a| TcpStream::connect(a).ok())
    });
    let Some(upstream) = upstream else {
        return answer(&mut client, "502 Bad Gateway");
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    connections.relay(client, upstream)
}

/// Answers with `status_line` and no body, then closes.
fn answer(client: &mut TcpStream, status_line: &str) -> io::Result<()> {
    let authenticate = match status_line.starts_with("407") {
        true => "Proxy-Authenticate: Basic realm=\"sansmq-e2e\"\r\n",
        false => "",
    };
    write!(
        client,
        "HTTP/1.1 {status_line}\r\n{authenticate}Content-Length: 0\r\n\r\n"
    )?;
    client.shutdown(Shutdown::Write)
}

/// The request head up to its blank line, read a byte at a time so that nothing of the tunnel
/// is taken with it.
fn read_head(client: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
        client.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
