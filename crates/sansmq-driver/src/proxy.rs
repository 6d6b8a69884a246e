//! [`ProxyOptions`]: a proxy to reach the broker through, as mosquitto_pub/sub's
//! `--proxy socks5h://[user[:password]@]host[:port]` names it, or an HTTP proxy
//! (`http://[user[:password]@]host[:port]`, our extension), given or read from the environment
//! ([`ProxyOptions::from_env`]).
//!
//! The client connects to the proxy instead of the broker, asks it (with the [`socks5`](crate::socks5)
//! or [`http_connect`](crate::http_connect) handshake, see [`ProxyHandshake`](crate::ProxyHandshake))
//! for a connection to the broker's host name, which the proxy resolves, and then speaks TLS and
//! MQTT over that connection as it would over a direct one: the TLS server name is still the
//! broker's.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The port of a SOCKS proxy when its URL names none (RFC 1928 section 3).
pub const SOCKS_PORT: u16 = 1080;
/// The port of an HTTP proxy when its URL names none: 1080, as curl assumes for every proxy but
/// `https://` ones (HTTP itself names no proxy port).
pub const HTTP_PROXY_PORT: u16 = 1080;

/// The proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyProtocol {
    /// SOCKS5 (RFC 1928) with the broker's host name resolved by the proxy (`socks5h://`), and
    /// user name/password authentication (RFC 1929) when a login is given.
    Socks5h,
    /// An HTTP proxy's CONNECT method (RFC 9110 section 9.3.6), with Basic authentication
    /// (RFC 7617) when a login is given: `http://` URLs. mosquitto has no such option.
    HttpConnect,
}

impl fmt::Display for ProxyProtocol {
    /// `SOCKS5` or `HTTP`, as errors name a proxy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Socks5h => "SOCKS5",
            Self::HttpConnect => "HTTP",
        })
    }
}

/// A user name and password for the proxy. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyLogin {
    /// The user name.
    pub username: String,
    /// The password; empty when the URL gave none (`socks5h://user@host`).
    pub password: String,
}

impl fmt::Debug for ProxyLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyLogin")
            .field("username", &self.username)
            .field("password", &crate::REDACTED)
            .finish()
    }
}

/// Where the proxy is and how to log in to it: from a URL
/// (`"socks5h://user:secret@proxy:1080".parse()`) or [`ProxyOptions::socks5h`].
///
/// ```
/// use sansmq_driver::ProxyOptions;
///
/// let proxy: ProxyOptions = "socks5h://alice:s%40cret@proxy.example".parse()?;
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 1080));
/// assert_eq!(proxy.login().map(|l| l.password.as_str()), Some("s@cret"));
/// assert!(!format!("{proxy:?}").contains("cret"));
/// assert_eq!(proxy.to_string(), "socks5h://alice:***@proxy.example:1080");
/// # Ok::<(), sansmq_driver::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    protocol: ProxyProtocol,
    host: String,
    port: u16,
    login: Option<ProxyLogin>,
}

impl ProxyOptions {
    /// A SOCKS5 proxy at `host:port`, without a login.
    pub fn socks5h(host: impl Into<String>, port: u16) -> Self {
        Self {
            protocol: ProxyProtocol::Socks5h,
            host: host.into(),
            port,
            login: None,
        }
    }

    /// An HTTP proxy at `host:port` (CONNECT), without a login.
    pub fn http(host: impl Into<String>, port: u16) -> Self {
        Self {
            protocol: ProxyProtocol::HttpConnect,
            host: host.into(),
            port,
            login: None,
        }
    }

    /// Logs in to the proxy with this user name and password (RFC 1929 for SOCKS5, Basic
    /// authentication for HTTP).
    #[must_use]
    pub fn with_login(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.login = Some(ProxyLogin {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// The proxy protocol.
    pub fn protocol(&self) -> ProxyProtocol {
        self.protocol
    }

    /// The proxy's host name or IP address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, an IPv6 address in brackets: how errors name the proxy.
    pub fn address(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }

    /// The login, if any.
    pub fn login(&self) -> Option<&ProxyLogin> {
        self.login.as_ref()
    }
}

impl FromStr for ProxyOptions {
    type Err = Error;

    /// Parses `socks5h://[user[:password]@]host[:port]` as mosquitto does, or
    /// `http://[user[:password]@]host[:port]` for an HTTP proxy: the port defaults to 1080, and `%XX` escapes in the user name and password are decoded (a password holding `@`
    /// or `:` is written `%40`, `%3A`). Other schemes, an empty host or user name, a second `@`, a
    /// port that is not 1 to 65535 are refused, naming the URL with its password hidden.
    fn from_str(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::invalid_proxy(url, why);
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            invalid("expected socks5h:// or http://[user[:password]@]host[:port]")
        })?;
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "socks5h" => ProxyProtocol::Socks5h,
            "http" => ProxyProtocol::HttpConnect,
            _ => {
                return Err(invalid(&format!(
                    "unsupported proxy protocol {scheme:?}; socks5h:// and http:// are (the \
                     proxy resolves the broker's name)"
                )));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (login, address) = match rest.split_once('@') {
            Some((login, address)) => (Some(login), address),
            None => (None, rest),
        };
        if address.contains('@') {
            return Err(invalid("more than one '@'"));
        }
        let login = login
            .map(|login| {
                let (user, password) = login.split_once(':').unwrap_or((login, ""));
                if user.is_empty() {
                    return Err(invalid("the user name before '@' is empty"));
                }
                Ok(ProxyLogin {
                    username: percent_decode(user)
                        .ok_or_else(|| invalid("a bad %-escape in the user name"))?,
                    password: percent_decode(password)
                        .ok_or_else(|| invalid("a bad %-escape in the password"))?,
                })
            })
            .transpose()?;
        let (host, port) =
            match address.strip_prefix('[') {
                Some(bracketed) => {
                    let (host, after) = bracketed
                        .split_once(']')
                        .ok_or_else(|| invalid("unclosed '[' in IPv6 address"))?;
                    match after {
                        "" => (host, None),
                        _ => (
                            host,
                            Some(after.strip_prefix(':').ok_or_else(|| {
                                invalid("expected ':port' after the IPv6 address")
                            })?),
                        ),
                    }
                }
                None => match address.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (address, None),
                },
            };
        if host.is_empty() {
            return Err(invalid("the proxy host is empty"));
        }
        if host.contains(['/', '?', '#', ' ']) {
            return Err(invalid("the proxy URL holds a path or white space"));
        }
        let port = match port {
            None => match protocol {
                ProxyProtocol::Socks5h => SOCKS_PORT,
                ProxyProtocol::HttpConnect => HTTP_PROXY_PORT,
            },
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| invalid("the proxy port must be a number from 1 to 65535"))?,
        };
        Ok(Self {
            protocol,
            host: host.to_owned(),
            port,
            login,
        })
    }
}

/// `%XX` escapes decoded; `None` for a `%` not followed by two hex digits or bytes that are not
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        if byte != b'%' {
            bytes.push(byte);
            continue;
        }
        let hex = rest.get(..2)?;
        let hex = std::str::from_utf8(hex).ok()?;
        bytes.push(u8::from_str_radix(hex, 16).ok()?);
        rest = rest.get(2..)?;
    }
    String::from_utf8(bytes).ok()
}

impl fmt::Display for ProxyOptions {
    /// The URL, its password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.protocol {
            ProxyProtocol::Socks5h => "socks5h://",
            ProxyProtocol::HttpConnect => "http://",
        })?;
        if let Some(login) = &self.login {
            write!(f, "{}:{}@", login.username, crate::REDACTED)?;
        }
        f.write_str(&self.address())
    }
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("login", &self.login)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> ProxyOptions {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn accepts_the_url_forms_mosquitto_accepts() {
        let proxy = parse("socks5h://proxy");
        assert_eq!((proxy.host(), proxy.port()), ("proxy", 1080));
        assert!(proxy.login().is_none());

        let proxy = parse("socks5h://proxy:9050");
        assert_eq!((proxy.host(), proxy.port()), ("proxy", 9050));

        let proxy = parse("socks5h://alice@proxy:9050");
        let login = proxy.login().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "")
        );

        let proxy = parse("socks5h://alice:secret@proxy");
        let login = proxy.login().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "secret")
        );
        assert_eq!(proxy.port(), 1080);

        let proxy = parse("socks5h://a%20b:p%40ss%3Aword@[::1]:1081");
        let login = proxy.login().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("a b", "p@ss:word")
        );
        assert_eq!((proxy.host(), proxy.port()), ("::1", 1081));
        assert_eq!(proxy.to_string(), "socks5h://a b:***@[::1]:1081");
    }

    #[test]
    fn refuses_what_mosquitto_refuses_naming_the_url_without_its_password() {
        for (bad, why) in [
            ("socks5://proxy", "unsupported proxy protocol \"socks5\""),
            ("https://proxy:3128", "unsupported proxy protocol"),
            ("proxy:1080", "expected socks5h://"),
            ("socks5h://", "host is empty"),
            ("socks5h://alice:secret@", "host is empty"),
            ("socks5h://:secret@proxy", "user name before '@' is empty"),
            ("socks5h://a:secret@b@proxy", "more than one '@'"),
            ("socks5h://proxy:0", "1 to 65535"),
            ("socks5h://proxy:65536", "1 to 65535"),
            ("socks5h://proxy:x", "1 to 65535"),
            ("socks5h://a:secret%zz@proxy", "%-escape in the password"),
            ("socks5h://proxy/path", "path"),
        ] {
            let error = bad.parse::<ProxyOptions>().unwrap_err();
            let message = error.to_string();
            assert!(message.contains(why), "{bad}: {message}");
            assert!(message.starts_with("proxy URL \""), "{bad}: {message}");
            assert!(!message.contains("secret"), "{bad}: {message}");
            assert!(matches!(error, Error::InvalidProxy { .. }), "{error:?}");
        }
    }

    #[test]
    fn http_urls_name_an_http_connect_proxy_on_port_1080_by_default() {
        let proxy = parse("http://proxy");
        assert_eq!(proxy.protocol(), ProxyProtocol::HttpConnect);
        assert_eq!((proxy.host(), proxy.port()), ("proxy", HTTP_PROXY_PORT));
        let proxy = parse("HTTP://bob:p%40ss@[::1]:3128/");
        assert_eq!((proxy.host(), proxy.port()), ("::1", 3128));
        assert_eq!(proxy.login().map(|l| l.password.as_str()), Some("p@ss"));
        assert_eq!(proxy.to_string(), "http://bob:***@[::1]:3128");
        assert_eq!(parse("http://p:3128"), ProxyOptions::http("p", 3128));
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let http = ProxyOptions::http("proxy", 3128).with_login("alice", "S3CRET");
        let proxy = ProxyOptions::socks5h("proxy", 1080).with_login("alice", "S3CRET");
        for shown in [
            format!("{proxy:?}"),
            proxy.to_string(),
            format!("{http:?}"),
            http.to_string(),
        ] {
            assert!(!shown.contains("S3CRET"), "{shown}");
            assert!(shown.contains("alice"), "{shown}");
        }
    }
}
