//! [`ServerUri`]: where to connect, as Paho spells it: `tcp://host:1883`, `ssl://host:8883`, the
//! `mqtt://` / `mqtts://` synonyms, and `unix:///path/to/socket` (a Unix domain socket, as Paho C).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// A broker address with its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUri {
    /// Host name or IP address (also the TLS server name).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether to speak TLS.
    pub tls: bool,
    /// For `unix://` URIs, the path of the broker's Unix domain socket; `host` is then `localhost`
    /// and `port` 0, and nothing is resolved or dialed over TCP.
    pub unix_socket: Option<PathBuf>,
}

/// The longest Unix socket path the kernel takes: `sun_path` holds 108 bytes on Linux, one of them
/// the terminating NUL.
const MAX_UNIX_PATH: usize = 107;

impl ServerUri {
    /// `unix://PATH` (`unix:///run/mosquitto.sock` for an absolute path).
    fn parse_unix(uri: &str, path: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::invalid_uri(uri, why);
        if path.is_empty() {
            return Err(invalid(
                "the socket path is empty; write unix:///path/to/socket",
            ));
        }
        if path.contains('\0') {
            return Err(invalid("the socket path holds a NUL byte"));
        }
        if path.len() > MAX_UNIX_PATH {
            return Err(invalid(&format!(
                "the socket path is {} bytes long; a Unix socket path has at most {MAX_UNIX_PATH}",
                path.len()
            )));
        }
        Ok(Self {
            host: "localhost".to_owned(),
            port: 0,
            tls: false,
            unix_socket: Some(PathBuf::from(path)),
        })
    }
}

impl FromStr for ServerUri {
    type Err = Error;

    /// Parses `scheme://host[:port]`. Anything else is refused with an error naming the URI (its
    /// password, if it holds one, replaced by `***`): another scheme, a path, a login, a host
    /// that is empty or holds characters no host name has, more than one `:` outside brackets, a
    /// port that is empty, 0 or past 65535.
    fn from_str(uri: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::invalid_uri(uri, why);
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host[:port], e.g. tcp://broker:1883"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => false,
            "ssl" | "tls" | "mqtts" => true,
            "unix" => return Self::parse_unix(uri, rest),
            other => {
                return Err(invalid(&format!(
                    "unknown scheme {other:?}; use tcp://, mqtt://, ssl://, mqtts:// or unix://"
                )));
            }
        };
        if rest.contains('@') {
            return Err(invalid(
                "a user name or password in the URI is not supported; give them with \
                 ConnectOptions::credentials",
            ));
        }
        let authority = rest.trim_end_matches('/');
        if authority.contains(['/', '?', '#']) {
            return Err(invalid(
                "a path is not supported (WebSocket is not implemented)",
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // [::1]:1883
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in IPv6 address"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid("brackets must hold an IPv6 address, e.g. [::1]"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("expected ':port' after the IPv6 address"))?,
                ),
            };
            (host, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if port.is_some_and(|port| port.contains(':')) {
                return Err(invalid(
                    "more than one ':' (write an IPv6 address in brackets: tcp://[::1]:1883)",
                ));
            }
            if host.is_empty() {
                return Err(invalid("the host is empty"));
            }
            if let Some(bad) = host
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
            {
                return Err(invalid(&format!(
                    "the host holds {bad:?}; a host name has letters, digits, '-', '.' and '_'"
                )));
            }
            (host, port)
        };
        let port = match port {
            Some("") => return Err(invalid("the port after ':' is empty")),
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
            None if tls => 8883,
            None => 1883,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
            unix_socket: None,
        })
    }
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.unix_socket {
            return write!(f, "unix://{}", path.display());
        }
        let scheme = if self.tls { "ssl" } else { "tcp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paho_style_uris() {
        let uri: ServerUri = "tcp://broker.example:1884".parse().unwrap();
        assert_eq!(
            (uri.host.as_str(), uri.port, uri.tls),
            ("broker.example", 1884, false)
        );
        let uri: ServerUri = "ssl://broker.example".parse().unwrap();
        assert_eq!((uri.port, uri.tls), (8883, true));
        let uri: ServerUri = "mqtt://[::1]".parse().unwrap();
        assert_eq!((uri.host.as_str(), uri.port), ("::1", 1883));
        assert_eq!(uri.to_string(), "tcp://[::1]:1883");
        assert!("mqtts://h:8884".parse::<ServerUri>().unwrap().tls);
    }

    #[test]
    fn refuses_what_it_cannot_do_naming_the_uri() {
        for (bad, why) in [
            ("broker:1883", "expected scheme://"),
            ("ws://h:80", "unknown scheme"),
            ("tcp://:1883", "host is empty"),
            ("tcp://", "host is empty"),
            ("tcp://h:99999", "1 to 65535"),
            ("tcp://h:0", "1 to 65535"),
            ("tcp://h:-1", "1 to 65535"),
            ("tcp://h:", "empty"),
            ("tcp://h:1883:1884", "more than one ':'"),
            ("tcp://host:port:extra", "more than one ':'"),
            ("tcp://::1", "more than one ':'"),
            ("tcp://[::1]x", "':port'"),
            ("tcp://[::1]:x", "1 to 65535"),
            ("tcp://[nope]:1883", "IPv6"),
            ("tcp://[::1", "unclosed"),
            ("tcp://h/mqtt", "path"),
            ("tcp://h?x=1", "path"),
            ("tcp://bro ker:1883", "host holds ' '"),
            ("tcp://h\u{0}:1883", "host holds"),
        ] {
            let error = bad.parse::<ServerUri>().unwrap_err();
            let message = error.to_string();
            // The URI is quoted as Debug quotes it (control characters escaped).
            assert!(message.contains(&format!("{bad:?}")), "{bad}: {message}");
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn a_unix_uri_names_the_socket_path() {
        let uri: ServerUri = "unix:///run/mosquitto/broker.sock".parse().unwrap();
        assert_eq!(
            uri.unix_socket.as_deref(),
            Some(std::path::Path::new("/run/mosquitto/broker.sock"))
        );
        assert!(!uri.tls);
        assert_eq!(uri.to_string(), "unix:///run/mosquitto/broker.sock");
        let relative: ServerUri = "unix://broker.sock".parse().unwrap();
        assert_eq!(relative.to_string(), "unix://broker.sock");
        assert!(
            "tcp://h:1883"
                .parse::<ServerUri>()
                .unwrap()
                .unix_socket
                .is_none()
        );
    }

    #[test]
    fn a_unix_uri_without_a_usable_path_is_refused() {
        let long = format!("unix:///{}", "a".repeat(107));
        for (bad, why) in [
            ("unix://", "path is empty"),
            ("unix://a\u{0}b", "NUL"),
            (long.as_str(), "at most 107"),
        ] {
            let message = bad.parse::<ServerUri>().unwrap_err().to_string();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn a_login_in_the_uri_is_refused_without_its_password() {
        for uri in [
            "tcp://user:S3CRET@broker:1883",
            "ssl://user:S3CRET@broker:99999",
            "tcp://user:S3CRET@broker:1:2",
            "mqtt://user:S3/CRET@h",
            "user:S3CRET@broker:1883",
        ] {
            let error = uri.parse::<ServerUri>().unwrap_err();
            let (message, debug) = (error.to_string(), format!("{error:?}"));
            assert!(!message.contains("S3"), "{message}");
            assert!(!debug.contains("S3"), "{debug}");
            assert!(message.contains("user:***@"), "{message}");
        }
    }
}
