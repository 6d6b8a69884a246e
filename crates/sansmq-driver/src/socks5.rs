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

/// Why a SOCKS5 handshake failed: what the proxy refused or sent wrong, or a target or login that
/// SOCKS5 cannot carry. Messages never show the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The broker's host name is longer than the 255 bytes a DOMAINNAME holds.
    #[error("the broker's host name is {len} bytes long; SOCKS5 carries at most 255")]
    HostTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The user name or password is longer than the 255 bytes RFC 1929 allows, or the user name
    /// is empty.
    #[error(
        "the proxy {field} is {len} bytes long; SOCKS5 takes at most 255 (a user name at least 1)"
    )]
    LoginTooLong {
        /// `"user name"` or `"password"`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The peer does not speak SOCKS5: its answer started with another version.
    #[error("the proxy answered with version {version}, not SOCKS5 (is it a SOCKS5 proxy?)")]
    NotSocks5 {
        /// The version byte it sent.
        version: u8,
    },
    /// The proxy accepts none of the authentication methods offered (`0xFF`).
    #[error(
        "the proxy accepts none of the offered authentication methods ({offered}){hint}",
        hint = if *.login_offered { "" } else { "; it may need a user name and password" }
    )]
    NoAcceptableMethod {
        /// What was offered, e.g. `no authentication, user name/password`.
        offered: &'static str,
        /// Whether a login was offered.
        login_offered: bool,
    },
    /// The proxy chose an authentication method that was not offered.
    #[error("the proxy chose authentication method {method:#04x}, which was not offered")]
    UnexpectedMethod {
        /// The method it chose.
        method: u8,
    },
    /// The proxy refused the user name and password (RFC 1929 status not 0).
    #[error("the proxy refused the user name {username:?} or its password (status {status:#04x})")]
    LoginRefused {
        /// The user name sent.
        username: String,
        /// The status the proxy answered.
        status: u8,
    },
    /// The proxy would not connect to the broker: its reply code, and the broker asked for.
    #[error("the proxy could not connect to {target}: {code}")]
    ConnectFailed {
        /// The broker as asked for, `host:port`.
        target: String,
        /// The proxy's reply code.
        code: ReplyCode,
    },
    /// The proxy's reply to CONNECT names an address type that does not exist.
    #[error("the proxy's reply has address type {atyp:#04x}, which SOCKS5 does not define")]
    BadAddressType {
        /// The address type byte.
        atyp: u8,
    },
    /// Bytes arrived after the proxy's reply while nothing was yet sent to the broker: they
    /// cannot be the broker's (an MQTT broker and a TLS server both wait for the client).
    #[error("the proxy sent bytes past its reply to CONNECT, before the client said anything")]
    UnexpectedData,
    /// The proxy closed the connection before the handshake ended.
    #[error("the proxy closed the connection during the SOCKS5 handshake")]
    Closed,
}

/// A SOCKS5 reply code other than success (RFC 1928 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyCode {
    /// `0x01` general SOCKS server failure.
    GeneralFailure,
    /// `0x02` connection not allowed by ruleset.
    NotAllowed,
    /// `0x03` network unreachable.
    NetworkUnreachable,
    /// `0x04` host unreachable (also what proxies answer when the name does not resolve).
    HostUnreachable,
    /// `0x05` connection refused.
    ConnectionRefused,
    /// `0x06` TTL expired.
    TtlExpired,
    /// `0x07` command not supported.
    CommandNotSupported,
    /// `0x08` address type not supported.
    AddressTypeNotSupported,
    /// A code RFC 1928 does not define.
    Other(u8),
}

impl ReplyCode {
    /// The reply code for a reply byte; `None` for `0x00`, success.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x00 => return None,
            0x01 => Self::GeneralFailure,
            0x02 => Self::NotAllowed,
            0x03 => Self::NetworkUnreachable,
            0x04 => Self::HostUnreachable,
            0x05 => Self::ConnectionRefused,
            0x06 => Self::TtlExpired,
            0x07 => Self::CommandNotSupported,
            0x08 => Self::AddressTypeNotSupported,
            other => Self::Other(other),
        })
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::GeneralFailure => 0x01,
            Self::NotAllowed => 0x02,
            Self::NetworkUnreachable => 0x03,
            Self::HostUnreachable => 0x04,
            Self::ConnectionRefused => 0x05,
            Self::TtlExpired => 0x06,
            Self::CommandNotSupported => 0x07,
            Self::AddressTypeNotSupported => 0x08,
            Self::Other(byte) => byte,
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::GeneralFailure => "general SOCKS server failure",
            Self::NotAllowed => "connection not allowed by the proxy's rules",
            Self::NetworkUnreachable => "network unreachable",
            Self::HostUnreachable => "host unreachable (or its name did not resolve)",
            Self::ConnectionRefused => "connection refused",
            Self::TtlExpired => "TTL expired",
            Self::CommandNotSupported => "command not supported",
            Self::AddressTypeNotSupported => "address type not supported",
            Self::Other(_) => "an undefined reply code",
        };
        write!(f, "{what} (reply {:#04x})", self.byte())
    }
}

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
mod tests {
    use super::*;

    fn login(user: &str, password: &str) -> ProxyLogin {
        ProxyLogin {
            username: user.into(),
            password: password.into(),
        }
    }

    /// Takes what the handshake has to send.
    fn sent(handshake: &mut Socks5Handshake) -> Vec<u8> {
        let bytes = handshake.poll_transmit().to_vec();
        handshake.handle_transmitted(bytes.len());
        bytes
    }

    /// A handshake without login whose greeting was answered "no authentication" and whose
    /// CONNECT went out.
    fn at_reply(host: &str) -> Socks5Handshake {
        let mut handshake = Socks5Handshake::new(host, 1883, None).unwrap();
        sent(&mut handshake);
        handshake.handle_received(&[5, 0]).unwrap();
        sent(&mut handshake);
        handshake
    }

    #[test]
    fn a_host_name_goes_as_a_domain_name_for_the_proxy_to_resolve() {
        let mut handshake = Socks5Handshake::new("broker.example", 8883, None).unwrap();
        assert_eq!(sent(&mut handshake), [5, 1, 0]);
        assert!(
            handshake.poll_transmit().is_empty(),
            "one request at a time"
        );
        handshake.handle_received(&[5, 0]).unwrap();
        let mut expected = vec![5, 1, 0, 3, 14];
        expected.extend_from_slice(b"broker.example");
        expected.extend_from_slice(&8883u16.to_be_bytes());
        assert_eq!(sent(&mut handshake), expected);
        assert!(handshake.bound_address().is_none());
    }

    #[test]
    fn ip_addresses_go_as_addresses() {
        let mut v4 = Socks5Handshake::new("10.1.2.3", 1, None).unwrap();
        sent(&mut v4);
        v4.handle_received(&[5, 0]).unwrap();
        assert_eq!(sent(&mut v4), [5, 1, 0, 1, 10, 1, 2, 3, 0, 1]);
        let mut v6 = Socks5Handshake::new("::1", 1, None).unwrap();
        sent(&mut v6);
        v6.handle_received(&[5, 0]).unwrap();
        let connect = sent(&mut v6);
        assert_eq!(connect[..4], [5, 1, 0, 4]);
        assert_eq!(connect.len(), 4 + 16 + 2);
        assert_eq!(v6.target(), "[::1]:1");
    }

    #[test]
    fn a_successful_reply_gives_the_bound_address_in_any_split() {
        let reply = [5, 0, 0, 1, 192, 0, 2, 7, 0x07, 0x5b];
        for split in 0..reply.len() {
            let mut handshake = at_reply("broker");
            let (a, b) = reply.split_at(split);
            handshake.handle_received(a).unwrap();
            assert!(handshake.bound_address().is_none() || b.is_empty());
            handshake.handle_received(b).unwrap();
            assert_eq!(
                handshake.bound_address(),
                Some(&BoundAddress::Ip("192.0.2.7:1883".parse().unwrap())),
                "split at {split}"
            );
        }
        let mut v6 = at_reply("broker");
        let mut reply = vec![5, 0, 0, 4];
        reply.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        reply.extend_from_slice(&[0, 80]);
        v6.handle_received(&reply).unwrap();
        assert_eq!(
            v6.bound_address(),
            Some(&BoundAddress::Ip("[::1]:80".parse().unwrap()))
        );
        let mut named = at_reply("broker");
        named
            .handle_received(&[5, 0, 0, 3, 5, b'p', b'r', b'o', b'x', b'y', 0, 81])
            .unwrap();
        assert_eq!(
            named.bound_address(),
            Some(&BoundAddress::Domain("proxy".into(), 81))
        );
    }

    #[test]
    fn every_failure_reply_code_is_typed_and_names_the_broker() {
        for (byte, code, words) in [
            (1, ReplyCode::GeneralFailure, "general SOCKS server failure"),
            (2, ReplyCode::NotAllowed, "not allowed"),
            (3, ReplyCode::NetworkUnreachable, "network unreachable"),
            (4, ReplyCode::HostUnreachable, "host unreachable"),
            (5, ReplyCode::ConnectionRefused, "connection refused"),
            (6, ReplyCode::TtlExpired, "TTL expired"),
            (7, ReplyCode::CommandNotSupported, "command not supported"),
            (
                8,
                ReplyCode::AddressTypeNotSupported,
                "address type not supported",
            ),
            (0x42, ReplyCode::Other(0x42), "undefined reply code"),
        ] {
            let mut handshake = at_reply("broker.example");
            let error = handshake
                .handle_received(&[5, byte, 0, 1, 0, 0, 0, 0, 0, 0])
                .unwrap_err();
            assert_eq!(
                error,
                Socks5Error::ConnectFailed {
                    target: "broker.example:1883".into(),
                    code
                }
            );
            let message = error.to_string();
            assert!(message.contains(words), "{message}");
            assert!(
                message.contains(&format!("(reply {byte:#04x})")),
                "{message}"
            );
            assert!(
                message.starts_with("the proxy could not connect to broker.example:1883: "),
                "{message}"
            );
            assert!(handshake.bound_address().is_none());
        }
    }

    #[test]
    fn a_login_is_offered_and_sent_when_the_proxy_chooses_it() {
        let login = login("alice", "S3CRET");
        let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login)).unwrap();
        assert_eq!(sent(&mut handshake), [5, 2, 0, 2]);
        handshake.handle_received(&[5, 2]).unwrap();
        let mut expected = vec![1, 5];
        expected.extend_from_slice(b"alice");
        expected.push(6);
        expected.extend_from_slice(b"S3CRET");
        assert_eq!(sent(&mut handshake), expected);
        handshake.handle_received(&[1, 0]).unwrap();
        assert_eq!(sent(&mut handshake)[..4], [5, 1, 0, 3]);
        handshake
            .handle_received(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1])
            .unwrap();
        assert!(handshake.bound_address().is_some());
        assert!(!format!("{handshake:?}").contains("S3CRET"));
    }

    #[test]
    fn a_refused_login_names_the_user_and_never_the_password() {
        let login = login("alice", "S3CRET");
        let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login)).unwrap();
        sent(&mut handshake);
        handshake.handle_received(&[5, 2]).unwrap();
        sent(&mut handshake);
        let error = handshake.handle_received(&[1, 1]).unwrap_err();
        assert_eq!(
            error,
            Socks5Error::LoginRefused {
                username: "alice".into(),
                status: 1
            }
        );
        let message = error.to_string();
        assert!(message.contains("\"alice\""), "{message}");
        assert!(!message.contains("S3CRET"), "{message}");
        assert!(
            handshake.poll_transmit().is_empty(),
            "no CONNECT after a refusal"
        );
        assert_eq!(handshake.handle_received(&[5, 0]), Err(Socks5Error::Closed));
    }

    #[test]
    fn a_proxy_that_wants_a_login_says_so_when_none_was_given() {
        let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
        sent(&mut handshake);
        let error = handshake.handle_received(&[5, 0xFF]).unwrap_err();
        assert!(
            matches!(
                error,
                Socks5Error::NoAcceptableMethod {
                    login_offered: false,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("may need a user name and password"),
            "{error}"
        );
        // A login offered and still refused: no hint to add one.
        let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login("a", "b"))).unwrap();
        sent(&mut handshake);
        let error = handshake.handle_received(&[5, 0xFF]).unwrap_err();
        assert!(!error.to_string().contains("may need"), "{error}");
    }

    #[test]
    fn a_method_not_offered_is_refused() {
        let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
        sent(&mut handshake);
        // User name/password chosen although no login was offered; GSSAPI likewise.
        assert_eq!(
            handshake.handle_received(&[5, 2]),
            Err(Socks5Error::UnexpectedMethod { method: 2 })
        );
        let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
        assert_eq!(
            handshake.handle_received(&[5, 1]),
            Err(Socks5Error::UnexpectedMethod { method: 1 })
        );
    }

    #[test]
    fn a_peer_that_is_not_a_socks5_proxy_is_named_so() {
        let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
        sent(&mut handshake);
        // An MQTT broker dialed as a proxy would answer nothing; an HTTP proxy says "HTTP/1.1".
        assert_eq!(
            handshake.handle_received(b"HTTP/1.1 400"),
            Err(Socks5Error::NotSocks5 { version: b'H' })
        );
        let mut handshake = at_reply("broker");
        assert_eq!(
            handshake.handle_received(&[4, 0x5a, 0, 0]),
            Err(Socks5Error::NotSocks5 { version: 4 })
        );
    }

    #[test]
    fn a_reply_with_an_undefined_address_type_is_refused() {
        let mut handshake = at_reply("broker");
        assert_eq!(
            handshake.handle_received(&[5, 0, 0, 9, 0, 0]),
            Err(Socks5Error::BadAddressType { atyp: 9 })
        );
    }

    #[test]
    fn bytes_past_the_reply_are_refused() {
        let mut handshake = at_reply("broker");
        let error = handshake
            .handle_received(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0x20, 2])
            .unwrap_err();
        assert_eq!(error, Socks5Error::UnexpectedData);
    }

    #[test]
    fn what_socks5_cannot_carry_is_refused_up_front() {
        let long = "h".repeat(256);
        assert_eq!(
            Socks5Handshake::new(&long, 1, None).unwrap_err(),
            Socks5Error::HostTooLong { len: 256 }
        );
        assert!(Socks5Handshake::new(&"h".repeat(255), 1, None).is_ok());
        let error = Socks5Handshake::new("h", 1, Some(&login("u", &"p".repeat(300)))).unwrap_err();
        assert_eq!(
            error,
            Socks5Error::LoginTooLong {
                field: "password",
                len: 300
            }
        );
        assert!(Socks5Handshake::new("h", 1, Some(&login("", "p"))).is_err());
        // An empty password is allowed (`socks5h://user@proxy`).
        assert!(Socks5Handshake::new("h", 1, Some(&login("u", ""))).is_ok());
    }

    /// Feeds `answers` to a handshake with a login, split where `rng` says; the outcome.
    fn outcome(
        answers: &[u8],
        rng: &mut fastrand::Rng,
    ) -> Result<Option<BoundAddress>, Socks5Error> {
        let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login("u", "p"))).unwrap();
        let mut rest = answers;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rng.usize(1..=rest.len()));
            rest = after;
            sent(&mut handshake);
            handshake.handle_received(chunk)?;
        }
        Ok(handshake.bound_address().cloned())
    }

    #[test]
    fn any_answer_in_any_split_gives_one_outcome_and_never_panics() {
        let mut rng = fastrand::Rng::with_seed(1928);
        let valid = [5, 2, 1, 0, 5, 0, 0, 3, 2, b'p', b'x', 0, 80];
        for round in 0..20_000 {
            // Mostly answers that follow the protocol for a while, then anything.
            let mut answers: Vec<u8> = valid[..rng.usize(0..=valid.len())].to_vec();
            for _ in 0..rng.usize(0..8) {
                let byte = match rng.bool() {
                    true => rng.u8(..),
                    false => rng.u8(0..10),
                };
                answers.push(byte);
            }
            let whole = outcome(&answers, &mut fastrand::Rng::with_seed(0));
            let mut one_at_a_time =
                Socks5Handshake::new("broker", 1883, Some(&login("u", "p"))).unwrap();
            let mut bytewise = Ok(());
            for &byte in &answers {
                sent(&mut one_at_a_time);
                bytewise = bytewise.and_then(|()| one_at_a_time.handle_received(&[byte]));
            }
            let bytewise = bytewise.map(|()| one_at_a_time.bound_address().cloned());
            assert_eq!(whole, bytewise, "round {round}: {answers:?}");
            assert_eq!(
                whole,
                outcome(&answers, &mut rng),
                "round {round}: {answers:?}"
            );
        }
        let done = outcome(&valid, &mut rng).unwrap();
        assert_eq!(done, Some(BoundAddress::Domain("px".into(), 80)));
    }

    #[test]
    fn a_close_during_the_handshake_is_an_error() {
        let mut handshake = at_reply("broker");
        assert_eq!(handshake.handle_closed(), Socks5Error::Closed);
        assert!(handshake.bound_address().is_none());
    }
}
