//! What happened to the connection while a command waited: a broker that closes the connection
//! right after a PUBLISH or SUBSCRIBE is refusing it (ApsaraMQ does this for a topic the client may
//! not use), which deserves a better message than a timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sansmq_mio::{Callback, Error};

use crate::connect::Setup;

/// Why the connection was first lost, shared with the client's callback. The first loss is the
/// telling one: after a refused request, reconnects that fail the same way are only echoes.
#[derive(Debug, Clone, Default)]
pub(crate) struct LostCause(Arc<Mutex<Option<String>>>);

impl LostCause {
    /// Why the connection was lost, if it was.
    pub(crate) fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, cause: &Error) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| cause.to_string());
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
        if self.announce.load(Ordering::Relaxed) {
            eprintln!(
                "sansmq: warning: connection to {} lost: {cause}; reconnecting",
                self.uri
            );
        }
    }
}

/// The error for a `request` ("publish", "subscribe") after which the broker closed the
/// connection, `cause` saying how.
pub(crate) fn closed_after(request: &str, setup: &Setup, cause: &str) -> anyhow::Error {
    let hint = if setup.apsaramq {
        format!(
            "ApsaraMQ closes the connection of a client that may not {request} there: check \
             that the parent topic exists in the instance and that the login may {request} \
             (a token of type {})",
            if request == "publish" {
                "W or RW"
            } else {
                "R or RW"
            }
        )
    } else {
        format!("the broker may not allow this client to {request} there; -d shows more")
    };
    anyhow::anyhow!("the connection was lost: {cause}; {hint}")
}
