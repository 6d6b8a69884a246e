//! [`ServerRotation`]: which broker to try next. `connect` tries each server URI once, in order;
//! automatic reconnects go on round the list.

use crate::ServerUri;

/// The position in the list of server URIs, and how many tries the current `connect` has left.
#[derive(Debug, Clone, Default)]
pub struct ServerRotation {
    next: usize,
    tries_left: usize,
}

impl ServerRotation {
    /// An application `connect` over `servers`: start from the first, one try each.
    pub fn start(&mut self, servers: &[ServerUri]) {
        self.next = 0;
        self.tries_left = servers.len();
    }

    /// The URI to try now (`None` for an empty list), counting the try.
    pub fn next<'a>(&mut self, servers: &'a [ServerUri]) -> Option<&'a ServerUri> {
        self.tries_left = self.tries_left.saturating_sub(1);
        let uri = servers.get(self.next % servers.len().max(1))?;
        self.next = (self.next + 1) % servers.len();
        Some(uri)
    }

    /// Whether the current `connect` has URIs left to try after a failure.
    pub fn tries_left(&self) -> bool {
        self.tries_left > 0
    }

    /// No more tries for the current `connect` (it was abandoned).
    pub fn stop(&mut self) {
        self.tries_left = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(n: u16) -> Vec<ServerUri> {
        (0..n)
            .map(|i| format!("tcp://h{i}:1883").parse().unwrap())
            .collect()
    }

    #[test]
    fn connect_tries_each_uri_once_then_reconnects_go_round() {
        let servers = uris(3);
        let mut rotation = ServerRotation::default();
        rotation.start(&servers);
        let mut tried = Vec::new();
        loop {
            tried.push(rotation.next(&servers).unwrap().host.clone());
            if !rotation.tries_left() {
                break;
            }
        }
        assert_eq!(tried, ["h0", "h1", "h2"]);
        // Reconnects continue round the list.
        assert_eq!(rotation.next(&servers).unwrap().host, "h0");
        assert_eq!(rotation.next(&servers).unwrap().host, "h1");
        rotation.start(&servers);
        assert_eq!(rotation.next(&servers).unwrap().host, "h0");
        rotation.stop();
        assert!(!rotation.tries_left());
        assert!(rotation.next(&[]).is_none());
    }
}
