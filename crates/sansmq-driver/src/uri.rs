//! [`ServerUri`]: where to connect, as Paho spells it: `tcp://host:1883`, `ssl://host:8883`, and the
//! `mqtt://` / `mqtts://` synonyms.

use std::fmt;
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
}

impl FromStr for ServerUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidUri {
            uri: uri.to_owned(),
            reason: why.to_owned(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host[:port], e.g. tcp://broker:1883"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => false,
            "ssl" | "tls" | "mqtts" => true,
            other => {
                return Err(invalid(&format!(
                    "unknown scheme {other:?}; use tcp://, mqtt://, ssl:// or mqtts://"
                )));
            }
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') {
            return Err(invalid(
                "a path is not supported (WebSocket is not implemented)",
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // [::1]:1883
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in IPv6 address"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| invalid(&format!("port {p:?} is not a number from 0 to 65535")))?,
            None if tls => 8883,
            None => 1883,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    fn refuses_what_it_cannot_do() {
        for bad in [
            "broker:1883",
            "ws://h:80",
            "tcp://:1883",
            "tcp://h:99999",
            "tcp://h/mqtt",
        ] {
            let error = bad.parse::<ServerUri>().unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
    }
}
