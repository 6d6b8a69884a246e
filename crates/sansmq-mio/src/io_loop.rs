//! The IO thread: waits on the socket, the waker and the earliest deadline, and feeds the core.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::client::Shared;
use crate::session::SOCKET;

/// The token of the waker that application threads use to interrupt `poll`.
pub(crate) const WAKER: Token = Token(0);

/// Runs until the client is closed. No busy loop: between events it sleeps until the next deadline
/// (keep-alive, CONNACK, reconnect), so an idle client costs nothing between pings.
pub(crate) fn run(mut poll: Poll, shared: &Arc<Shared>) {
    let mut events = Events::with_capacity(16);
    loop {
        let timeout = {
            let inner = shared.lock();
            if inner.read_more && inner.can_read(Instant::now()) {
                // Unread bytes wait: only look for other events on the way.
                Some(Duration::ZERO)
            } else {
                let deadline = inner
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()));
                match (deadline, inner.callback_retry()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!(%e, "poll failed; the client stops");
                break;
            }
        }
        let mut inner = shared.lock();
        if shared.closed.load(Ordering::SeqCst) {
            inner.shut_down();
            break;
        }
        let now = Instant::now();
        inner.release_callbacks();
        let mut read = false;
        for event in &events {
            // The waker's token needs nothing (the DNS answer is picked up below), nor do
            // connection attempts' tokens: `advance_opening` checks every attempt.
            if event.token() == SOCKET {
                if event.is_writable() {
                    inner.on_writable(now);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    inner.on_readable(now);
                    read = true;
                }
            }
        }
        if !read && inner.read_more && inner.can_read(now) {
            // Reading stopped at its budget or paused for callbacks; edge-triggered readiness
            // will not repeat.
            inner.on_readable(now);
        }
        inner.advance_opening(now);
        inner.on_timeout(now);
        inner.process_events(now);
    }
}
