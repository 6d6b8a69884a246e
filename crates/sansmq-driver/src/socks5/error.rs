//! [`Socks5Error`]: why a SOCKS5 handshake failed, and the proxy's [`ReplyCode`]s.

use std::fmt;

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
