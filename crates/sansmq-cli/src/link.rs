//! What happened to the connection while a command waited: a broker that closes the connection
//! right after a PUBLISH or SUBSCRIBE may be refusing it (ApsaraMQ does this for a topic the client
//! may not use), which deserves a better message than a timeout — but only when the client's own
//! diagnosis says so: a killed broker, a reset or a malformed packet is no refusal.

use std::net::{TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sansmq::DisconnectReason;
use sansmq::packet::DecodeError;
use sansmq_mio::{Callback, Diagnosis, Error};

use crate::connect::Setup;

/// How long the check whether the broker still accepts connections may wait for each address.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the connection was lost, shared with the client's callback. The first loss is the telling
/// one (after a refused request, reconnects that fail the same way are only echoes), unless a
/// later verdict says the broker is down: that explains the first loss better.
#[derive(Debug, Clone, Default)]
pub(crate) struct LostCause(Arc<Mutex<Option<Error>>>);

impl LostCause {
    /// Why the connection was lost, if it was.
    pub(crate) fn get(&self) -> Option<Error> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records `cause`: the first one, or one that says the broker is down.
    pub(crate) fn set(&self, cause: &Error) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() || matches!(cause, Error::ClosedByBroker(Diagnosis::BrokerDown { .. })) {
            *kept = Some(cause.clone());
        }
    }
}

/// A callback recording lost connections, and once `announce` is set saying so on stderr (a
/// `sub` that reconnects by itself would otherwise just go quiet). Before that, a failing request
/// reports the loss itself, in one line.
#[derive(Debug)]
pub(crate) struct Watcher {
    pub(crate) lost: LostCause,
    pub(crate) uri: String,
    pub(crate) announce: Arc<AtomicBool>,
}

impl Callback for Watcher {
    fn connect_complete(&self, reconnect: bool, _server_uri: &str) {
        if reconnect && self.announce.load(Ordering::Relaxed) {
            eprintln!("sansmq: reconnected to {}", self.uri);
        }
    }

    fn connection_lost(&self, cause: &Error) {
        self.lost.set(cause);
        // The command ends on an oversized packet, rather than reconnect to meet it again.
        if self.announce.load(Ordering::Relaxed) && packet_too_large(cause).is_none() {
            eprintln!(
                "sansmq: warning: connection to {} lost: {cause}; reconnecting",
                self.uri
            );
        }
    }
}

/// The error for a `request` ("publish", "subscribe") that failed because the connection was
/// lost, `cause` saying how. Only a loss the client diagnosed as a refusal of the topic
/// ([`Diagnosis::NotAuthorised`]) gets the hint about permissions.
pub(crate) fn closed_after(request: &str, setup: &Setup, cause: &Error) -> anyhow::Error {
    if let Error::ClosedByBroker(Diagnosis::NotAuthorised { .. }) = cause {
        // A broker being killed closes its connections too: if it is gone now, that explains the
        // close better than the topic.
        if let Some(reason) = refused_now(&setup.uri) {
            return anyhow::anyhow!(
                "the broker closed the connection right after the {request}, and a new \
                 connection to {} failed ({reason}): the broker is probably down or \
                 unreachable (the close was not about the topic)",
                setup.uri
            );
        }
    }
    let hint = match cause {
        Error::ClosedByBroker(Diagnosis::NotAuthorised { .. }) if setup.apsaramq => format!(
            "ApsaraMQ closes the connection of a client that may not {request} there: check \
             that the parent topic exists in the instance and that the login may {request} \
             (a token of type {})",
            if request == "publish" {
                "W or RW"
            } else {
                "R or RW"
            }
        ),
        Error::ClosedByBroker(Diagnosis::NotAuthorised { .. }) => {
            format!("the broker may not allow this client to {request} there; -d shows more")
        }
        // These say what happened themselves: the broker is down, a duplicate client id...
        Error::ClosedByBroker(_) => return anyhow::anyhow!("the connection was lost: {cause}"),
        // ...a packet the broker should not have sent ("connection lost: malformed packet...").
        Error::ConnectionLost(
            DisconnectReason::Malformed(_) | DisconnectReason::ProtocolViolation(_),
        ) => return anyhow::anyhow!("{cause}"),
        _ => "the broker closed the connection, or is down or unreachable".to_owned(),
    };
    anyhow::anyhow!("the connection was lost: {cause}; {hint}")
}

/// The size and the limit, when the connection was lost to a packet over the size limit
/// (`--max-packet-size`).
pub(crate) fn packet_too_large(cause: &Error) -> Option<(usize, usize)> {
    match cause {
        Error::ConnectionLost(DisconnectReason::Malformed(DecodeError::PacketTooLarge {
            size,
            max,
        })) => Some((*size, *max)),
        _ => None,
    }
}

/// Why a TCP connection to the broker at `uri` fails now, or `None` when one succeeds (or the
/// address does not resolve to anything to try).
fn refused_now(uri: &str) -> Option<String> {
    let address = uri.split_once("://").map_or(uri, |(_, address)| address);
    let addresses = match address.to_socket_addrs() {
        Ok(addresses) => addresses,
        Err(error) => return Some(error.to_string()),
    };
    let mut failure = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, PROBE_TIMEOUT) {
            Ok(_) => return None,
            Err(error) => failure = Some(error.to_string()),
        }
    }
    failure
}
