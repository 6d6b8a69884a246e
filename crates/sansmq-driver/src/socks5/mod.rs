//! [`Socks5Handshake`]: the client side of a SOCKS5 proxy's handshake (RFC 1928, with RFC 1929
//! user name/password authentication) as a sans-IO state machine, run by each driver on a fresh
//! connection to the proxy before TLS and MQTT start.
//!
//! 1. [`Socks5Handshake::new`] queues the greeting; the driver writes what
//!    [`poll_transmit`](Socks5Handshake::poll_transmit) returns, reporting each write with
//!    [`handle_transmitted`](Socks5Handshake::handle_transmitted);
//! 2. it hands every byte it reads from the proxy to
//!    [`handle_received`](Socks5Handshake::handle_received), which queues the next request (the
//!    login, then CONNECT) or fails with a [`Socks5Error`] that says what the proxy refused;
//! 3. once [`bound_address`](Socks5Handshake::bound_address) is `Some`, the connection leads to
//!    the broker: nothing more of the handshake is read, so the next byte read is the broker's.
//!
//! The broker's host name goes to the proxy as a DOMAINNAME, so the proxy resolves it (`socks5h`);
//! an IP address goes as an IPv4 or IPv6 address, as mosquitto sends them.
//!
//! ```
//! use sansmq_driver::socks5::{BoundAddress, Socks5Handshake};
//!
//! let mut handshake = Socks5Handshake::new("broker.example", 1883, None)?;
//! assert_eq!(handshake.poll_transmit(), [5, 1, 0]); // version 5, one method: no authentication
//! handshake.handle_transmitted(3);
//! handshake.handle_received(&[5, 0])?; // the proxy chose no authentication
//! let connect = handshake.poll_transmit().to_vec();
//! assert_eq!(connect[..5], [5, 1, 0, 3, 14]); // CONNECT to a 14-byte domain name
//! handshake.handle_transmitted(connect.len());
//! handshake.handle_received(&[5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40])?; // succeeded
//! assert_eq!(
//!     handshake.bound_address(),
//!     Some(&BoundAddress::Ip("127.0.0.1:40000".parse().unwrap()))
//! );
//! # Ok::<(), sansmq_driver::socks5::Socks5Error>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::proxy::ProxyLogin;

mod error;

pub use error::{ReplyCode, Socks5Error};

/// SOCKS protocol version 5.
const VERSION: u8 = 5;
/// The version of the user name/password sub-negotiation (RFC 1929).
const LOGIN_VERSION: u8 = 1;
/// Authentication methods (RFC 1928 section 3).
const NO_AUTHENTICATION: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHODS: u8 = 0xFF;
/// The CONNECT command (RFC 1928 section 4).
const CONNECT: u8 = 0x01;
/// Address types (RFC 1928 section 5).
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAINNAME: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// The address the proxy connected from, as its reply to CONNECT gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundAddress {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A host name and port.
    Domain(String, u16),
}

/// Where the handshake is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The greeting is sent: the proxy's method choice (2 bytes) is due.
    Method,
    /// The login is sent: its status (2 bytes) is due.
    Login,
    /// CONNECT is sent: the reply is due.
    Reply,
    /// The connection to the broker is up.
    Done(BoundAddress),
    /// It failed; nothing more is read.
    Failed,
}

/// The SOCKS5 client handshake for one connection; see the [module docs](self).
#[derive(Clone)]
pub struct Socks5Handshake {
    state: State,
    /// The CONNECT request, sent once the method (and login) is settled.
    connect: Vec<u8>,
    target: String,
    login: Option<ProxyLogin>,
    /// Bytes to write, from `written` on.
    outgoing: Vec<u8>,
    written: usize,
    /// The proxy's bytes not yet parsed.
    incoming: Vec<u8>,
}

impl fmt::Debug for Socks5Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The outgoing bytes may hold the password.
        f.debug_struct("Socks5Handshake")
            .field("state", &self.state)
            .field("target", &self.target)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl Socks5Handshake {
    /// A handshake asking the proxy for a connection to `host:port`, logging in with `login` if
    /// the proxy asks for it; the greeting is queued. Fails when SOCKS5 cannot carry the host name
    /// or the login (over 255 bytes).
    pub fn new(host: &str, port: u16, login: Option<&ProxyLogin>) -> Result<Self, Socks5Error> {
        if let Some(login) = login {
            // RFC 1929: the user name takes 1 to 255 bytes, the password 0 to 255.
            check_length(&login.username, "user name", 1)?;
            check_length(&login.password, "password", 0)?;
        }
        let mut connect = vec![VERSION, CONNECT, 0];
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                connect.push(ATYP_IPV4);
                connect.extend_from_slice(&ip.octets());
            }
            Ok(IpAddr::V6(ip)) => {
                connect.push(ATYP_IPV6);
                connect.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                // socks5h: the proxy resolves the name.
                let len = u8::try_from(host.len())
                    .ok()
                    .filter(|&len| len > 0)
                    .ok_or(Socks5Error::HostTooLong { len: host.len() })?;
                connect.push(ATYP_DOMAINNAME);
                connect.push(len);
                connect.extend_from_slice(host.as_bytes());
            }
        }
        connect.extend_from_slice(&port.to_be_bytes());
        // As mosquitto: with a login, offer it beside no authentication and let the proxy choose.
        let outgoing = match login {
            Some(_) => vec![VERSION, 2, NO_AUTHENTICATION, USERNAME_PASSWORD],
            None => vec![VERSION, 1, NO_AUTHENTICATION],
        };
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        Ok(Self {
            state: State::Method,
            connect,
            target,
            login: login.cloned(),
            outgoing,
            written: 0,
            incoming: Vec::new(),
        })
    }

    /// The bytes to write to the proxy now; empty when there are none. Report what was written
    /// with [`handle_transmitted`](Self::handle_transmitted).
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        self.outgoing.get(self.written..).unwrap_or_default()
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were written.
    pub fn handle_transmitted(&mut self, n: usize) {
        self.written = self.written.saturating_add(n).min(self.outgoing.len());
    }

    /// Bytes read from the proxy, in any split. Queues the next request when an answer is
    /// complete; an error ends the handshake, and the driver closes the connection.
    pub fn handle_received(&mut self, bytes: &[u8]) -> Result<(), Socks5Error> {
        if matches!(self.state, State::Failed) {
            return Err(Socks5Error::Closed);
        }
        if let State::Done(_) = self.state {
            return self.fail(Socks5Error::UnexpectedData);
        }
        self.incoming.extend_from_slice(bytes);
        let result = self.advance();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// The proxy closed the connection: the error to report.
    pub fn handle_closed(&mut self) -> Socks5Error {
        self.state = State::Failed;
        Socks5Error::Closed
    }

    /// Once the proxy has connected to the broker, the address it connected from; `None` before.
    #[must_use]
    pub fn bound_address(&self) -> Option<&BoundAddress> {
        match &self.state {
            State::Done(bound) => Some(bound),
            _ => None,
        }
    }

    /// The broker asked for, `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn fail(&mut self, error: Socks5Error) -> Result<(), Socks5Error> {
        self.state = State::Failed;
        Err(error)
    }

    /// Parses every complete answer in `incoming`.
    fn advance(&mut self) -> Result<(), Socks5Error> {
        loop {
            let consumed = match self.state {
                State::Method => self.on_method()?,
                State::Login => self.on_login()?,
                State::Reply => self.on_reply()?,
                State::Done(_) | State::Failed => 0,
            };
            if consumed == 0 {
                break;
            }
            self.incoming.drain(..consumed.min(self.incoming.len()));
        }
        if matches!(self.state, State::Done(_)) && !self.incoming.is_empty() {
            return Err(Socks5Error::UnexpectedData);
        }
        Ok(())
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        self.outgoing = bytes;
        self.written = 0;
    }

    /// The method selection: `VER METHOD`.
    fn on_method(&mut self) -> Result<usize, Socks5Error> {
        let Some(&[version, method]) = self.incoming.get(..2) else {
            return Ok(0);
        };
        check_version(version)?;
        match (method, &self.login) {
            (NO_AUTHENTICATION, _) => {
                self.queue(self.connect.clone());
                self.state = State::Reply;
            }
            (USERNAME_PASSWORD, Some(login)) => {
                // RFC 1929: VER ULEN UNAME PLEN PASSWD; the lengths were checked in `new`.
                let mut request = vec![LOGIN_VERSION];
                for field in [&login.username, &login.password] {
                    request.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
                    request.extend_from_slice(field.as_bytes());
                }
                self.queue(request);
                self.state = State::Login;
            }
            (NO_ACCEPTABLE_METHODS, login) => {
                return Err(Socks5Error::NoAcceptableMethod {
                    offered: match login {
                        Some(_) => "no authentication, user name/password",
                        None => "no authentication",
                    },
                    login_offered: login.is_some(),
                });
            }
            (method, _) => return Err(Socks5Error::UnexpectedMethod { method }),
        }
        Ok(2)
    }

    /// The login status: `VER STATUS`, 0 for success.
    fn on_login(&mut self) -> Result<usize, Socks5Error> {
        let Some(&[_version, status]) = self.incoming.get(..2) else {
            return Ok(0);
        };
        // Proxies differ in the version byte they echo (1, or 5): only the status matters.
        if status != 0 {
            return Err(Socks5Error::LoginRefused {
                username: self
                    .login
                    .as_ref()
                    .map(|l| l.username.clone())
                    .unwrap_or_default(),
                status,
            });
        }
        self.queue(self.connect.clone());
        self.state = State::Reply;
        Ok(2)
    }

    /// The reply to CONNECT: `VER REP RSV ATYP BND.ADDR BND.PORT`.
    fn on_reply(&mut self) -> Result<usize, Socks5Error> {
        let Some(&[version, reply, _reserved, atyp]) = self.incoming.get(..4) else {
            return Ok(0);
        };
        check_version(version)?;
        if let Some(code) = ReplyCode::from_byte(reply) {
            return Err(Socks5Error::ConnectFailed {
                target: self.target.clone(),
                code,
            });
        }
        let address_len = match atyp {
            ATYP_IPV4 => 4,
            ATYP_IPV6 => 16,
            ATYP_DOMAINNAME => match self.incoming.get(4) {
                Some(&len) => 1 + usize::from(len),
                None => return Ok(0),
            },
            atyp => return Err(Socks5Error::BadAddressType { atyp }),
        };
        let total = 4 + address_len + 2;
        let (Some(address), Some(&[high, low])) = (
            self.incoming.get(4..4 + address_len),
            self.incoming.get(4 + address_len..total),
        ) else {
            return Ok(0);
        };
        let port = u16::from_be_bytes([high, low]);
        let bound = match (atyp, address) {
            (ATYP_IPV4, &[a, b, c, d]) => {
                BoundAddress::Ip(SocketAddr::from((Ipv4Addr::new(a, b, c, d), port)))
            }
            (ATYP_IPV6, octets) => {
                let octets: [u8; 16] = octets.try_into().unwrap_or_default();
                BoundAddress::Ip(SocketAddr::from((Ipv6Addr::from(octets), port)))
            }
            (_, name) => BoundAddress::Domain(
                String::from_utf8_lossy(name.get(1..).unwrap_or_default()).into_owned(),
                port,
            ),
        };
        self.state = State::Done(bound);
        Ok(total)
    }
}

fn check_version(version: u8) -> Result<(), Socks5Error> {
    match version {
        VERSION => Ok(()),
        version => Err(Socks5Error::NotSocks5 { version }),
    }
}

/// Whether `value` fits a length byte and holds at least `min` bytes.
fn check_length(value: &str, field: &'static str, min: usize) -> Result<(), Socks5Error> {
    match (min..=usize::from(u8::MAX)).contains(&value.len()) {
        true => Ok(()),
        false => Err(Socks5Error::LoginTooLong {
            field,
            len: value.len(),
        }),
    }
}

#[cfg(test)]
mod tests;
