//! What the async client's end-to-end scenarios share on top of `common` (options, `Tally`,
//! `seq_payload`, which serve both clients): waiting on an [`Events`] stream with a timeout,
//! counting connection losses, waiting for a flag without blocking the runtime, and connecting
//! while a fault is in progress.
//!
//! Each `tests/tokio_*.rs` file is its own crate and uses part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sansmq_tokio::{Client, Error, Event, Events, Message};
use tokio::time::{Instant, timeout_at};

use crate::common::PATIENCE;

/// The next event for which `pick` returns something, skipping the others; `None` after `wait`.
pub(crate) async fn find<T>(
    events: &mut Events,
    wait: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        match timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(event) {
                    return Some(found);
                }
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The next message.
pub(crate) async fn message(events: &mut Events, wait: Duration) -> Option<Message> {
    find(events, wait, |event| match event {
        Event::Message(message) => Some(message),
        _ => None,
    })
    .await
}

/// The next `Connected` or `Reconnected`: `(reconnected, session_present, uri)`.
pub(crate) async fn connected(events: &mut Events, wait: Duration) -> Option<(bool, bool, String)> {
    find(events, wait, |event| match event {
        Event::Connected {
            session_present,
            uri,
        } => Some((false, session_present, uri)),
        Event::Reconnected {
            session_present,
            uri,
        } => Some((true, session_present, uri)),
        _ => None,
    })
    .await
}

/// The next `ConnectionLost`'s cause.
pub(crate) async fn lost(events: &mut Events, wait: Duration) -> Option<Error> {
    find(events, wait, |event| match event {
        Event::ConnectionLost { cause } => Some(cause),
        _ => None,
    })
    .await
}

/// Counts `events`' `ConnectionLost`s from now on, on a task of its own that drains the stream
/// (for a client whose messages do not matter, such as a publisher).
pub(crate) fn count_losses(mut events: Events) -> Arc<AtomicUsize> {
    let losses = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&losses);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if matches!(event, Event::ConnectionLost { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    losses
}

/// `sansmq_e2e::wait_until` for async code: polls `condition` (1 ms, then up to 50 ms apart)
/// without blocking a runtime thread; whether it held within `wait`. For flags another thread
/// sets.
pub(crate) async fn until(wait: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Connects, retrying while a fault is in progress (a cut during CONNECT fails `connect`).
pub(crate) async fn connect(client: &Client) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.connect().await {
            Ok(session_present) => return session_present,
            Err(error) => {
                assert!(Instant::now() < deadline, "cannot connect: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
