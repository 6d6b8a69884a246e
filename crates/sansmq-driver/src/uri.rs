//! [`ServerUri`]: where to connect, as Paho spells it: `tcp://host:1883`, `ssl://host:8883`, the
//! `mqtt://` / `mqtts://` synonyms, `ws://host:80/mqtt` and `wss://host:443/mqtt` (MQTT over
//! WebSocket, RFC 6455), and `unix:///path/to/socket` (a Unix domain socket, as Paho C).

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
    /// For `ws://` and `wss://` URIs, the path (and query) of the WebSocket upgrade request:
    /// `/mqtt` when the URI has none, as EMQX, HiveMQ, ApsaraMQ and Paho expect. MQTT then
    /// travels in WebSocket binary frames (subprotocol `mqtt`) over TCP, or TLS for `wss://`.
    pub websocket_path: Option<String>,
}

/// The WebSocket path of a `ws://host` URI that names none.
pub const DEFAULT_WEBSOCKET_PATH: &str = "/mqtt";

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
            websocket_path: None,
        })
    }
}

impl FromStr for ServerUri {
    type Err = Error;

    /// Parses `scheme://host[:port]`, and `ws[s]://host[:port][/path[?query]]`. Anything else is
    /// refused with an error naming the URI (its password, if it holds one, replaced by `***`):
    /// another scheme, a path outside WebSocket, a login, a host that is empty or holds
    /// characters no host name has, more than one `:` outside brackets, a port that is empty, 0
    /// or past 65535. Default ports: 1883, 8883 with TLS, 80 for `ws://`, 443 for `wss://`.
    fn from_str(uri: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::invalid_uri(uri, why);
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host[:port], e.g. tcp://broker:1883"))?;
        let (tls, websocket) = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => (false, false),
            "ssl" | "tls" | "mqtts" => (true, false),
            "ws" => (false, true),
            "wss" => (true, true),
            "unix" => return Self::parse_unix(uri, rest),
            other => {
                return Err(invalid(&format!(
                    "unknown scheme {other:?}; use tcp://, mqtt://, ssl://, mqtts://, ws://, \
                     wss:// or unix://"
                )));
            }
        };
        if rest.contains('@') {
            return Err(invalid(
                "a user name or password in the URI is not supported; give them with \
                 ConnectOptions::credentials",
            ));
        }
        let (authority, websocket_path) = match rest.find(['/', '?', '#']) {
            Some(at) if websocket => {
                let path = &rest[at..];
                if path.contains('#') {
                    return Err(invalid("a WebSocket path has no fragment ('#')"));
                }
                if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(&format!("the WebSocket path holds {bad:?}")));
                }
                let path = match path.strip_prefix('?') {
                    Some(query) => format!("/?{query}"),
                    None => path.to_owned(),
                };
                (&rest[..at], Some(path))
            }
            None if websocket => (rest, Some(DEFAULT_WEBSOCKET_PATH.to_owned())),
            _ => {
                let authority = rest.trim_end_matches('/');
                if authority.contains(['/', '?', '#']) {
                    return Err(invalid(
                        "a path is only for WebSocket URIs (ws://host/mqtt, wss://host/mqtt)",
                    ));
                }
                (authority, None)
            }
        };
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
            None => match (websocket, tls) {
                (true, true) => 443,
                (true, false) => 80,
                (false, true) => 8883,
                (false, false) => 1883,
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
            unix_socket: None,
            websocket_path,
        })
    }
}

impl ServerUri {
    /// The whole URL of a `ws://` or `wss://` URI's upgrade request, query included; `None` for
    /// other URIs. Display shows the query as `?***` instead: it may carry a signature or a
    /// token (AWS IoT's presigned URLs do), and Display is what errors and logs print.
    pub fn websocket_url(&self) -> Option<String> {
        let path = self.websocket_path.as_deref()?;
        let scheme = if self.tls { "wss" } else { "ws" };
        Some(match self.host.contains(':') {
            true => format!("{scheme}://[{}]:{}{path}", self.host, self.port),
            false => format!("{scheme}://{}:{}{path}", self.host, self.port),
        })
    }
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.unix_socket {
            return write!(f, "unix://{}", path.display());
        }
        let scheme = match (self.websocket_path.is_some(), self.tls) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, true) => "ssl",
            (false, false) => "tcp",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)?;
        }
        match self.websocket_path.as_deref().map(|p| p.split_once('?')) {
            Some(Some((path, _query))) => write!(f, "{path}?***"),
            Some(None) => f.write_str(self.websocket_path.as_deref().unwrap_or_default()),
            None => Ok(()),
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
            ("http://h:80", "unknown scheme"),
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
            ("ws://h/mqtt#top", "fragment"),
            ("ws://h/a b", "path holds ' '"),
            ("ws://:80/mqtt", "host is empty"),
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
    fn websocket_uris_carry_their_path_and_default_ports() {
        let uri: ServerUri = "ws://broker.example".parse().unwrap();
        assert_eq!(
            (
                uri.host.as_str(),
                uri.port,
                uri.tls,
                uri.websocket_path.as_deref()
            ),
            ("broker.example", 80, false, Some("/mqtt"))
        );
        assert_eq!(uri.to_string(), "ws://broker.example:80/mqtt");
        let uri: ServerUri = "WSS://[::1]/mqtt/ws?token=a%20b".parse().unwrap();
        assert_eq!(
            (
                uri.host.as_str(),
                uri.port,
                uri.tls,
                uri.websocket_path.as_deref()
            ),
            ("::1", 443, true, Some("/mqtt/ws?token=a%20b"))
        );
        // The query may hold a secret: Display hides it, the upgrade's URL keeps it.
        assert_eq!(uri.to_string(), "wss://[::1]:443/mqtt/ws?***");
        assert_eq!(
            uri.websocket_url().as_deref(),
            Some("wss://[::1]:443/mqtt/ws?token=a%20b")
        );
        let root: ServerUri = "ws://h:8080/".parse().unwrap();
        assert_eq!(
            (root.port, root.websocket_path.as_deref()),
            (8080, Some("/"))
        );
        let query: ServerUri = "ws://h:8080?x=1".parse().unwrap();
        assert_eq!(query.websocket_path.as_deref(), Some("/?x=1"));
        assert_eq!("tcp://h".parse::<ServerUri>().unwrap().websocket_path, None);
        assert_eq!(
            "tcp://h".parse::<ServerUri>().unwrap().websocket_url(),
            None
        );
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
