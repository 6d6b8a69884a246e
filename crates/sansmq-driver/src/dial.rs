//! [`Dial`]: which of a broker's addresses to connect to, and when — Happy Eyeballs (RFC 8305) as
//! a sans-IO plan that each driver carries out with its own sockets.
//!
//! A host name often resolves to several addresses, IPv6 and IPv4: `localhost` to `::1` and
//! `127.0.0.1`, where a broker may listen on only one of them. Using the first address alone made
//! `connect` fail against a broker that was up. So a driver:
//!
//! 1. resolves the host (without blocking its event loop) and hands every address to
//!    [`Dial::new`], which orders them alternating the address families, starting with the
//!    resolver's first choice (RFC 8305 section 4);
//! 2. starts a connection attempt to each address [`Dial::poll_start`] returns: the first at once,
//!    the next one when an earlier one failed (a refused address costs no wait) or
//!    [`ATTEMPT_DELAY`] after the previous start while earlier attempts are still pending (section
//!    5), waking up at [`Dial::poll_timeout`] for that;
//! 3. reports each failed attempt with [`Dial::handle_failed`];
//! 4. keeps the first attempt that connects and drops the others, or, once every address failed,
//!    fails with [`Dial::failure`], which names each address and why it failed.
//!
//! The whole dial runs within the connect timeout, which the driver enforces.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::{Error, ServerUri, deadline_after};

/// How long an attempt has alone before the next address is tried as well (RFC 8305 section 5
/// recommends 250 ms).
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The attempts to one broker's addresses: those not started yet, those in progress, those failed.
#[derive(Debug, Clone)]
pub struct Dial {
    /// Addresses not tried yet, in the order to try them.
    waiting: VecDeque<SocketAddr>,
    /// Attempts started and not finished.
    in_progress: Vec<SocketAddr>,
    /// When the next address is tried even though earlier attempts are still in progress.
    next_start: Instant,
    /// Each failed attempt and why, in the order they failed.
    failed: Vec<(SocketAddr, String)>,
}

impl Dial {
    /// A dial over `addresses` as the resolver returned them, starting at `now`.
    pub fn new(now: Instant, addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        Self {
            waiting: interleave_families(addresses),
            in_progress: Vec::new(),
            next_start: now,
            failed: Vec::new(),
        }
    }

    /// The address to start connecting to now, if one is due; call again until `None`.
    pub fn poll_start(&mut self, now: Instant) -> Option<SocketAddr> {
        if !self.in_progress.is_empty() && now < self.next_start {
            return None;
        }
        let address = self.waiting.pop_front()?;
        self.in_progress.push(address);
        self.next_start = deadline_after(now, ATTEMPT_DELAY);
        Some(address)
    }

    /// When to call [`poll_start`](Self::poll_start) again: the next address is due then. `None`
    /// when nothing is waiting, or while waiting depends on an attempt's outcome only.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.waiting.is_empty() && !self.in_progress.is_empty()).then_some(self.next_start)
    }

    /// The attempt to `address` failed at `now` for `reason`: the next address is due at once.
    pub fn handle_failed(&mut self, now: Instant, address: SocketAddr, reason: impl fmt::Display) {
        self.in_progress.retain(|a| *a != address);
        self.failed.push((address, reason.to_string()));
        self.next_start = now;
    }

    /// Addresses whose attempts are in progress.
    pub fn in_progress(&self) -> &[SocketAddr] {
        &self.in_progress
    }

    /// Once every address failed, the error to report: for `uri`, each address and why, on one
    /// line (`connecting to tcp://localhost:1883: [::1]:1883: Connection refused (os error 111);
    /// 127.0.0.1:1883: …`), or a resolution error when the host had no address at all. `None`
    /// while an attempt is in progress or an address waits.
    #[must_use]
    pub fn failure(&self, uri: &ServerUri) -> Option<Error> {
        if !self.waiting.is_empty() || !self.in_progress.is_empty() {
            return None;
        }
        if self.failed.is_empty() {
            return Some(Error::Dns {
                host: uri.host.clone(),
                reason: "no address".into(),
            });
        }
        let mut reason = String::new();
        for (address, why) in &self.failed {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            let _ = write!(reason, "{address}: {why}");
        }
        Some(Error::Io {
            context: format!("connecting to {uri}"),
            reason,
        })
    }
}

/// The broker's `addresses` a socket bound to `local` can reach: those of its family (an IPv4
/// socket cannot connect to an IPv6 address). All of them without a bound address. None left is
/// an error that names the bound address and what the broker's host resolved to.
pub fn reachable_from(
    uri: &ServerUri,
    addresses: Vec<SocketAddr>,
    local: Option<IpAddr>,
) -> Result<Vec<SocketAddr>, Error> {
    let Some(local) = local else {
        return Ok(addresses);
    };
    let (reachable, other): (Vec<_>, Vec<_>) = addresses
        .into_iter()
        .partition(|address| address.is_ipv4() == local.is_ipv4());
    if reachable.is_empty() && !other.is_empty() {
        let family = if local.is_ipv4() { "IPv4" } else { "IPv6" };
        let resolved: Vec<String> = other.iter().map(ToString::to_string).collect();
        return Err(Error::Io {
            context: format!("connecting to {uri} from {local}"),
            reason: format!(
                "the broker has no {family} address (it resolved to {})",
                resolved.join(", ")
            ),
        });
    }
    Ok(reachable)
}

/// What to dial to reach the broker at `uri`: the broker itself, or the proxy as a `tcp://`
/// endpoint of its own (so that resolving and dialing it name the proxy).
pub fn dial_target(uri: &ServerUri, proxy: Option<&crate::ProxyOptions>) -> ServerUri {
    match proxy {
        Some(proxy) => ServerUri {
            host: proxy.host().to_owned(),
            port: proxy.port(),
            tls: false,
            unix_socket: None,
            websocket_path: None,
        },
        None => uri.clone(),
    }
}

/// A failure to dial `proxy` on the way to `uri`, said so: `connecting to SOCKS5 proxy
/// 127.0.0.1:1080 (for tcp://broker:1883): 127.0.0.1:1080: Connection refused`.
pub fn via_proxy(error: Error, proxy: &crate::ProxyOptions, uri: &ServerUri) -> Error {
    match error {
        Error::Io { reason, .. } => Error::Io {
            context: format!(
                "connecting to {} proxy {} (for {uri})",
                proxy.protocol(),
                proxy.address()
            ),
            reason,
        },
        other => other,
    }
}

/// RFC 8305 section 4: alternate the address families, starting with the family of the resolver's
/// first choice (which already ordered them by RFC 6724), so that one broken family costs one
/// [`ATTEMPT_DELAY`], not one per address. Duplicates are dropped.
fn interleave_families(addresses: impl IntoIterator<Item = SocketAddr>) -> VecDeque<SocketAddr> {
    let mut unique: Vec<SocketAddr> = Vec::new();
    for address in addresses {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    let Some(first) = unique.first() else {
        return VecDeque::new();
    };
    let preferred_v6 = first.is_ipv6();
    let (mut preferred, mut other): (VecDeque<_>, VecDeque<_>) = unique
        .into_iter()
        .partition(|a| a.is_ipv6() == preferred_v6);
    let mut ordered = VecDeque::with_capacity(preferred.len() + other.len());
    while !preferred.is_empty() || !other.is_empty() {
        ordered.extend(preferred.pop_front());
        ordered.extend(other.pop_front());
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn starts(dial: &mut Dial, now: Instant) -> Vec<SocketAddr> {
        std::iter::from_fn(|| dial.poll_start(now)).collect()
    }

    #[test]
    fn families_alternate_from_the_resolvers_first_choice() {
        let v6 = ["[::1]:1883", "[2001:db8::1]:1883", "[2001:db8::2]:1883"].map(addr);
        let v4 = ["127.0.0.1:1883", "192.0.2.1:1883"].map(addr);
        let ordered: Vec<_> = interleave_families([v6[0], v6[1], v6[2], v4[0], v4[1]]).into();
        assert_eq!(ordered, [v6[0], v4[0], v6[1], v4[1], v6[2]]);
        let ordered: Vec<_> = interleave_families([v4[0], v4[1], v6[0], v4[0]]).into();
        assert_eq!(ordered, [v4[0], v6[0], v4[1]], "IPv4 first, no duplicate");
        assert!(interleave_families([]).is_empty());
    }

    #[test]
    fn attempts_are_staggered_while_earlier_ones_are_pending() {
        let start = Instant::now();
        let (a, b, c) = (addr("[::1]:1"), addr("127.0.0.1:1"), addr("[::2]:1"));
        let mut dial = Dial::new(start, [a, c, b]);
        assert_eq!(starts(&mut dial, start), [a], "one at a time");
        assert_eq!(dial.poll_timeout(), Some(start + ATTEMPT_DELAY));
        let early = start + ATTEMPT_DELAY - Duration::from_millis(1);
        assert!(dial.poll_start(early).is_none());

        let second = start + ATTEMPT_DELAY;
        assert_eq!(starts(&mut dial, second), [b], "the other family next");
        assert_eq!(dial.poll_timeout(), Some(second + ATTEMPT_DELAY));
        assert_eq!(starts(&mut dial, second + ATTEMPT_DELAY), [c]);
        assert_eq!(dial.poll_timeout(), None, "nothing left to start");
        assert_eq!(dial.in_progress(), [a, b, c]);
        assert!(dial.failure(&"tcp://h:1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_failed_attempt_moves_on_at_once() {
        let start = Instant::now();
        let (a, b) = (addr("[::1]:1883"), addr("127.0.0.1:1883"));
        let mut dial = Dial::new(start, [a, b]);
        assert_eq!(dial.poll_start(start), Some(a));
        let refused = start + Duration::from_millis(2);
        dial.handle_failed(refused, a, "Connection refused");
        assert_eq!(dial.poll_start(refused), Some(b), "no 250 ms wait");
        assert!(
            dial.failure(&"tcp://localhost:1883".parse().unwrap())
                .is_none()
        );
    }

    #[test]
    fn the_failure_names_every_address_and_why() {
        let start = Instant::now();
        let (a, b) = (addr("[::1]:1883"), addr("127.0.0.1:1883"));
        let mut dial = Dial::new(start, [a, b]);
        let uri = "tcp://localhost:1883".parse().unwrap();
        while let Some(address) = dial.poll_start(start) {
            dial.handle_failed(start, address, format!("refused by {}", address.ip()));
        }
        let error = dial.failure(&uri).expect("all failed");
        assert_eq!(
            error.to_string(),
            "connecting to tcp://localhost:1883: [::1]:1883: refused by ::1; \
             127.0.0.1:1883: refused by 127.0.0.1"
        );
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
    }

    #[test]
    fn a_bound_socket_tries_only_addresses_of_its_family() {
        let uri = "tcp://localhost:1883".parse().unwrap();
        let (v6, v4) = (addr("[::1]:1883"), addr("127.0.0.1:1883"));
        let v4_local = Some("127.0.0.1".parse().unwrap());
        assert_eq!(reachable_from(&uri, vec![v6, v4], v4_local).unwrap(), [v4]);
        assert_eq!(reachable_from(&uri, vec![v6, v4], None).unwrap(), [v6, v4]);
        let error = reachable_from(&uri, vec![v6], v4_local).unwrap_err();
        assert_eq!(
            error.to_string(),
            "connecting to tcp://localhost:1883 from 127.0.0.1: the broker has no IPv4 address \
             (it resolved to [::1]:1883)"
        );
    }

    #[test]
    fn no_address_at_all_is_a_resolution_error() {
        let dial = Dial::new(Instant::now(), []);
        let error = dial.failure(&"tcp://nowhere:1883".parse().unwrap());
        assert!(
            matches!(&error, Some(Error::Dns { host, .. }) if host == "nowhere"),
            "{error:?}"
        );
    }
}
