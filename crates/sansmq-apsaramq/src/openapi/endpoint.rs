//! [`OpenApiEndpoint`]: where OpenAPI requests go, a region's public endpoint or any URL (the
//! local broker's, say).

use std::fmt;
use std::net::IpAddr;

use super::error::OpenApiError;

/// The base URL OpenAPI requests are sent to: `http` or `https`, a host, an optional port and a
/// path ending in `/`, without query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiEndpoint {
    /// The whole base URL, ending in `/`.
    url: String,
    /// The host as written (an IPv6 address without its brackets).
    host: String,
}

impl OpenApiEndpoint {
    /// The public endpoint of ApsaraMQ for MQTT's OpenAPI in `region` (`cn-hangzhou`,
    /// `ap-southeast-1`, ...): `https://onsmqtt.<region>.aliyuncs.com/`. A region id is lower-case
    /// letters, digits and `-`.
    ///
    /// ```
    /// use sansmq_apsaramq::openapi::OpenApiEndpoint;
    ///
    /// let endpoint = OpenApiEndpoint::region("cn-hangzhou").unwrap();
    /// assert_eq!(endpoint.as_str(), "https://onsmqtt.cn-hangzhou.aliyuncs.com/");
    /// assert!(OpenApiEndpoint::region("cn hangzhou").is_err());
    /// ```
    pub fn region(region: &str) -> Result<Self, OpenApiError> {
        let valid = !region.is_empty()
            && region.len() <= 63
            && !region.starts_with('-')
            && !region.ends_with('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(OpenApiError::InvalidEndpoint {
                endpoint: region.to_owned(),
                reason: "is not a region id (lower-case letters, digits and '-', as in cn-hangzhou)",
            });
        }
        let host = format!("onsmqtt.{region}.aliyuncs.com");
        Ok(Self {
            url: format!("https://{host}/"),
            host,
        })
    }

    /// Any endpoint, given as an `http://` or `https://` URL with a host: the local broker's
    /// (`http://127.0.0.1:8080/`), a proxy's or another region's. A missing path becomes `/`;
    /// user info, a query or a fragment are refused.
    ///
    /// ```
    /// use sansmq_apsaramq::openapi::OpenApiEndpoint;
    ///
    /// let local = OpenApiEndpoint::url("http://127.0.0.1:1234").unwrap();
    /// assert_eq!(local.as_str(), "http://127.0.0.1:1234/");
    /// assert!(OpenApiEndpoint::url("ftp://example.com/").is_err());
    /// assert!(OpenApiEndpoint::url("http:///path").is_err());
    /// ```
    pub fn url(url: &str) -> Result<Self, OpenApiError> {
        let refuse = |reason| OpenApiError::InvalidEndpoint {
            endpoint: url.to_owned(),
            reason,
        };
        let rest = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            rest
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            rest
        } else {
            return Err(refuse("must start with http:// or https://"));
        };
        if url.contains(['?', '#']) {
            return Err(refuse(
                "must not have a query or fragment (the request's parameters go there)",
            ));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("must not contain spaces or control characters"));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            // The user info may be a password: the error does not repeat it.
            let scheme = url.get(..url.len() - rest.len()).unwrap_or_default();
            return Err(OpenApiError::InvalidEndpoint {
                endpoint: format!("{scheme}***@{host}{path}"),
                reason: "must not carry user info (the AccessKey signs each request instead)",
            });
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(refuse("has an IPv6 address without its closing ']'"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(refuse("has a bracketed host that is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(refuse("has something other than ':port' after ']'")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(refuse("has no host"));
        }
        if let Some(port) = port {
            if port.parse::<u16>().map_or(true, |port| port == 0) {
                return Err(refuse("has a port that is not a number from 1 to 65535"));
            }
        }
        let path = if path.is_empty() { "/" } else { path };
        let slash = if path.ends_with('/') { "" } else { "/" };
        let scheme_len = url.len() - rest.len();
        let scheme = url
            .get(..scheme_len)
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(Self {
            url: format!("{scheme}{authority}{path}{slash}"),
            host: host.to_owned(),
        })
    }

    /// The base URL, ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, without port or brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host is this machine (`localhost` or a loopback address): such requests skip
    /// any proxy set in the environment.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OpenApiEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `s` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_make_the_public_endpoint() {
        let endpoint = OpenApiEndpoint::region("ap-southeast-1").unwrap();
        assert_eq!(
            endpoint.as_str(),
            "https://onsmqtt.ap-southeast-1.aliyuncs.com/"
        );
        assert_eq!(endpoint.host(), "onsmqtt.ap-southeast-1.aliyuncs.com");
        assert!(!endpoint.is_loopback());
        for bad in [
            "",
            "CN-HANGZHOU",
            "cn.hangzhou",
            "cn/x",
            "-cn",
            "cn-",
            "cn_hz",
        ] {
            let error = OpenApiEndpoint::region(bad).unwrap_err().to_string();
            assert!(error.contains("region id"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn urls_are_normalised() {
        for (given, url, host) in [
            (
                "http://127.0.0.1:1234",
                "http://127.0.0.1:1234/",
                "127.0.0.1",
            ),
            (
                "http://127.0.0.1:1234/",
                "http://127.0.0.1:1234/",
                "127.0.0.1",
            ),
            (
                "HTTPS://Example.com/api",
                "https://Example.com/api/",
                "Example.com",
            ),
            ("http://[::1]:80/", "http://[::1]:80/", "::1"),
            ("http://[::1]", "http://[::1]/", "::1"),
            ("https://localhost/", "https://localhost/", "localhost"),
        ] {
            let endpoint = OpenApiEndpoint::url(given).unwrap();
            assert_eq!((endpoint.as_str(), endpoint.host()), (url, host), "{given}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://LOCALHOST/",
            "http://127.8.9.1/",
        ] {
            assert!(OpenApiEndpoint::url(url).unwrap().is_loopback(), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "https://onsmqtt.cn-hangzhou.aliyuncs.com/",
        ] {
            assert!(!OpenApiEndpoint::url(url).unwrap().is_loopback(), "{url}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, reason) in [
            ("127.0.0.1:1234", "http:// or https://"),
            ("ftp://host/", "http:// or https://"),
            ("http://", "no host"),
            ("http:///x", "no host"),
            ("http://:80/", "no host"),
            ("http://host:/", "port"),
            ("http://host:0/", "port"),
            ("http://host:65536/", "port"),
            ("http://host:http/", "port"),
            ("http://host/?a=b", "query"),
            ("http://host/#x", "query or fragment"),
            ("http://ho st/", "spaces"),
            ("http://[::1/", "closing ']'"),
            ("http://[nope]/", "IPv6"),
            ("http://[::1]x/", "':port'"),
        ] {
            let error = OpenApiEndpoint::url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
            assert!(error.contains(&format!("{url:?}")), "{url}: {error}");
        }
        let error = OpenApiEndpoint::url("http://user:pw@host/x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("user info"), "{error}");
        assert!(error.contains("\"http://***@host/x\""), "{error}");
        assert!(!error.contains("pw"), "{error}");
    }
}
