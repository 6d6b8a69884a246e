//! [`ProxyOptions::from_env`]: the proxy the usual environment variables name for a broker, as
//! curl reads them, for clients that opt in
//! ([`ConnectOptions::proxy_from_env`](crate::ConnectOptions::proxy_from_env)).
//!
//! - `https_proxy`/`HTTPS_PROXY` for TLS URIs (`ssl://`, `mqtts://`, `wss://`), `http_proxy`/
//!   `HTTP_PROXY` for plain ones (`tcp://`, `ws://`), then `all_proxy`/`ALL_PROXY`; the lower-case
//!   name first, empty values skipped, a value without a scheme taken as `http://` (curl's rules);
//!   `socks5h://` and `http://` values are understood.
//! - `no_proxy`/`NO_PROXY`: a list separated by commas or white space; `*` alone bypasses every
//!   host; a name matches itself and its subdomains, with or without a leading dot
//!   (`example.com` and `.example.com` both match `example.com` and `mqtt.example.com`, as curl
//!   7.86 and later); an IP address matches itself, `10.0.0.0/8` or `fd00::/8` the addresses of
//!   the range (curl's CIDR); `host:port` or `[v6]:port` matches that port only (curl ignores
//!   ports; Go's `httpproxy` honours them). Case does not matter.
//! - `unix://` URIs never go through a proxy.

use std::net::IpAddr;

use crate::{Error, ProxyOptions, ServerUri};

impl ProxyOptions {
    /// The proxy the process environment names for `uri` (see the module's rules), `None` when
    /// none does or `no_proxy` exempts it. A value that does not parse is an error naming the
    /// variable (and never the password it may hold).
    pub fn from_env(uri: &ServerUri) -> Result<Option<Self>, Error> {
        Self::from_env_with(uri, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables from `lookup` instead of the process
    /// environment (for tests, or a configuration of your own).
    pub fn from_env_with(
        uri: &ServerUri,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        if uri.unix_socket.is_some() {
            return Ok(None);
        }
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                let value = lookup(name)?;
                let value = value.trim();
                (!value.is_empty()).then(|| (name, value.to_owned()))
            })
        };
        let scheme_names: &[&'static str] = match uri.tls {
            true => &["https_proxy", "HTTPS_PROXY"],
            false => &["http_proxy", "HTTP_PROXY"],
        };
        let Some((name, value)) =
            first(scheme_names).or_else(|| first(&["all_proxy", "ALL_PROXY"]))
        else {
            return Ok(None);
        };
        if let Some((_, no_proxy)) = first(&["no_proxy", "NO_PROXY"]) {
            if bypasses(&no_proxy, &uri.host, uri.port) {
                return Ok(None);
            }
        }
        let url = match value.contains("://") {
            true => value,
            false => format!("http://{value}"),
        };
        url.parse().map(Some).map_err(|error| match error {
            Error::InvalidProxy { url, reason } => Error::InvalidProxy {
                url,
                reason: format!("{reason} (from ${name})"),
            },
            other => other,
        })
    }
}

/// Whether the `no_proxy` list exempts `host:port`.
fn bypasses(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (entry, entry_port) = split_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let entry = entry.trim_matches('.').to_ascii_lowercase();
            if let Some(ip) = host_ip {
                return matches_ip(&entry, ip);
            }
            !entry.is_empty()
                && (host == entry
                    || host
                        .strip_suffix(entry.as_str())
                        .is_some_and(|rest| rest.ends_with('.')))
        })
}

/// `host:port` or `[v6]:port` into the host and the port; anything else is all host.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = entry.strip_prefix('[') {
        if let Some((ip, rest)) = bracketed.split_once(']') {
            return (ip, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.split_once(':') {
        // One colon: a port; more: an IPv6 address without brackets.
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Whether `entry`, an address or a CIDR range, holds `ip`.
fn matches_ip(entry: &str, ip: IpAddr) -> bool {
    let (address, bits) = match entry.split_once('/') {
        Some((address, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (address, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(network) = address.parse::<IpAddr>() else {
        return false;
    };
    match (network, ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) => {
            same_prefix(u32::from(network).into(), u32::from(ip).into(), 32, bits)
        }
        (IpAddr::V6(network), IpAddr::V6(ip)) => {
            same_prefix(u128::from(network), u128::from(ip), 128, bits)
        }
        _ => false,
    }
}

/// Whether the first `bits` (all `width` when `None`) of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, width: u32, bits: Option<u32>) -> bool {
    let bits = bits.unwrap_or(width).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    a.checked_shr(shift) == b.checked_shr(shift)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ProxyProtocol;

    fn proxy_for(uri: &str, env: &[(&str, &str)]) -> Result<Option<ProxyOptions>, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let uri: ServerUri = uri.parse().unwrap();
        ProxyOptions::from_env_with(&uri, |name| env.get(name).cloned())
    }

    fn host_of(found: Result<Option<ProxyOptions>, Error>) -> Option<String> {
        found.unwrap().map(|p| p.address())
    }

    #[test]
    fn tls_uris_take_https_proxy_and_plain_ones_http_proxy() {
        let env = [
            ("https_proxy", "http://secure:1"),
            ("http_proxy", "http://plain:2"),
        ];
        assert_eq!(
            host_of(proxy_for("ssl://b:8883", &env)),
            Some("secure:1".into())
        );
        assert_eq!(
            host_of(proxy_for("wss://b/mqtt", &env)),
            Some("secure:1".into())
        );
        assert_eq!(
            host_of(proxy_for("tcp://b:1883", &env)),
            Some("plain:2".into())
        );
        assert_eq!(
            host_of(proxy_for("ws://b/mqtt", &env)),
            Some("plain:2".into())
        );
    }

    #[test]
    fn upper_case_names_count_and_lower_case_ones_come_first() {
        let upper = [("HTTPS_PROXY", "http://upper:1")];
        assert_eq!(
            host_of(proxy_for("ssl://b", &upper)),
            Some("upper:1".into())
        );
        let both = [
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:2"),
        ];
        assert_eq!(host_of(proxy_for("tcp://b", &both)), Some("lower:2".into()));
    }

    #[test]
    fn all_proxy_is_the_fallback_and_empty_values_are_unset() {
        let env = [("http_proxy", " "), ("ALL_PROXY", "socks5h://socks:1080")];
        let proxy = proxy_for("tcp://b", &env).unwrap().unwrap();
        assert_eq!(proxy.protocol(), ProxyProtocol::Socks5h);
        assert_eq!(host_of(proxy_for("tcp://b", &[])), None);
        assert_eq!(
            host_of(proxy_for("tcp://b", &[("https_proxy", "http://s:1")])),
            None
        );
    }

    #[test]
    fn a_value_without_a_scheme_is_an_http_proxy() {
        let proxy = proxy_for("tcp://b", &[("http_proxy", "corp-proxy:3128")])
            .unwrap()
            .unwrap();
        assert_eq!(proxy, ProxyOptions::http("corp-proxy", 3128));
    }

    #[test]
    fn a_bad_value_names_the_variable_but_not_the_password() {
        let error = proxy_for("tcp://b", &[("http_proxy", "ftp://u:S3CRET@p")]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("$http_proxy"), "{message}");
        assert!(!message.contains("S3CRET"), "{message}");
    }

    #[test]
    fn unix_sockets_never_use_a_proxy() {
        assert_eq!(
            host_of(proxy_for("unix:///run/mqtt.sock", &[("all_proxy", "p:1")])),
            None
        );
    }

    /// Whether `no_proxy` exempts the broker at `uri` from `all_proxy`.
    fn exempt(no_proxy: &str, uri: &str) -> bool {
        let env = [("all_proxy", "http://p:1"), ("no_proxy", no_proxy)];
        proxy_for(uri, &env).unwrap().is_none()
    }

    #[test]
    fn no_proxy_star_exempts_every_host() {
        assert!(exempt("*", "tcp://anything.example"));
        assert!(
            !exempt("*.example.com", "tcp://a.example.com"),
            "no wildcards but a lone *"
        );
    }

    #[test]
    fn no_proxy_names_match_themselves_and_their_subdomains_with_or_without_a_dot() {
        for entry in ["example.com", ".example.com", "EXAMPLE.com."] {
            assert!(exempt(entry, "tcp://example.com"), "{entry}");
            assert!(exempt(entry, "tcp://mqtt.example.com"), "{entry}");
            assert!(exempt(entry, "tcp://MQTT.Example.Com."), "{entry}");
            assert!(!exempt(entry, "tcp://notexample.com"), "{entry}");
            assert!(!exempt(entry, "tcp://example.com.evil"), "{entry}");
        }
    }

    #[test]
    fn no_proxy_is_a_list_separated_by_commas_or_spaces() {
        assert!(exempt(
            "localhost, internal.example , 10.0.0.1",
            "tcp://internal.example"
        ));
        assert!(exempt(
            "localhost internal.example",
            "tcp://internal.example"
        ));
        assert!(!exempt("localhost,,", "tcp://internal.example"));
        let upper = [
            ("all_proxy", "http://p:1"),
            ("NO_PROXY", "internal.example"),
        ];
        assert!(
            proxy_for("tcp://internal.example", &upper)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn no_proxy_ip_addresses_and_ranges_match_addresses() {
        assert!(exempt("127.0.0.1", "tcp://127.0.0.1"));
        assert!(!exempt("127.0.0.1", "tcp://127.0.0.2"));
        assert!(exempt("10.0.0.0/8", "tcp://10.20.30.40"));
        assert!(!exempt("10.0.0.0/8", "tcp://11.0.0.1"));
        assert!(exempt("::1", "tcp://[::1]"));
        assert!(exempt("fd00::/8", "tcp://[fd12::7]"));
        assert!(!exempt("fd00::/8", "tcp://[fe80::1]"));
        assert!(exempt("0.0.0.0/0", "tcp://192.0.2.1"));
        assert!(
            !exempt("127.0.0.1", "tcp://localhost"),
            "names and addresses are not resolved"
        );
    }

    #[test]
    fn no_proxy_ports_match_that_port_only() {
        assert!(exempt("broker.example:1883", "tcp://broker.example:1883"));
        assert!(!exempt("broker.example:1883", "ssl://broker.example:8883"));
        assert!(exempt("[::1]:1883", "tcp://[::1]:1883"));
        assert!(!exempt("[::1]:1883", "tcp://[::1]:1884"));
        assert!(exempt("127.0.0.1:1883", "tcp://127.0.0.1:1883"));
    }

    #[test]
    fn connect_options_read_the_environment_only_when_asked_and_keep_a_given_proxy() {
        let env = |name: &str| (name == "http_proxy").then(|| "http://envproxy:3128".to_owned());
        let options = crate::ConnectOptions::new("tcp://b:1883", "id").unwrap();
        assert!(options.proxy_options().is_none(), "never read unless asked");
        let options = options.proxy_from_env_with(env).unwrap();
        assert_eq!(
            options.proxy_options(),
            Some(&ProxyOptions::http("envproxy", 3128))
        );
        let given = ProxyOptions::socks5h("mine", 1080);
        let options = crate::ConnectOptions::new("tcp://b:1883", "id")
            .unwrap()
            .proxy(given.clone())
            .proxy_from_env_with(env)
            .unwrap();
        assert_eq!(options.proxy_options(), Some(&given));
    }
}
