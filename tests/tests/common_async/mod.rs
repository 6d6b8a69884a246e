//! What the async client's end-to-end tests share on top of `common` (options, `Tally`,
//! `seq_payload`, which serve both clients): waiting on an [`Events`] stream with a timeout, and
//! connecting while a fault is in progress.
//!
//! Each `tests/tokio_*.rs` file is its own crate and uses part of this module.
#![allow(dead_code)]

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
