//! What the mio client's end-to-end scenarios share: options with patient timeouts, a callback
//! that reports everything it sees on a channel, and a tally of received sequence numbers.
//!
//! Each `tests/mio_*.rs` file is its own crate and uses part of this module.
#![allow(dead_code)]

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sansmq::packet::PacketId;
use sansmq_mio::{Callback, ConnectOptions, DeliveryToken, Error, Message};

pub(crate) use sansmq_e2e::PATIENCE;

/// Options for `uri` with time-to-wait and connect timeout suited to a loaded machine.
pub(crate) fn options(uri: &str, client_id: &str) -> ConnectOptions {
    ConnectOptions::new(uri, client_id)
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
        .time_to_wait(PATIENCE)
        .connect_timeout(Duration::from_secs(10))
}

/// Asserts that `error` is a TLS failure whose message says the broker's certificate has an
/// unknown issuer.
pub(crate) fn assert_unknown_issuer(error: &Error) {
    match error {
        Error::Tls(message) => assert!(
            message.contains("UnknownIssuer") || message.to_lowercase().contains("unknown issuer"),
            "{message}"
        ),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// Asserts that `error` is a TLS failure saying the certificate is not valid for the name the
/// client connected to (the test PKI's certificate names `broker.invalid`, not 127.0.0.1).
pub(crate) fn assert_wrong_name(error: &Error) {
    match error {
        Error::Tls(message) => {
            assert!(message.contains("not valid for name"), "{message}");
            assert!(message.contains("127.0.0.1"), "{message}");
            assert!(message.contains("broker.invalid"), "{message}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// What a [`Recorder`] saw, in the order the callback thread ran it.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// `connect_complete(reconnect, uri)`.
    Connected { reconnect: bool, uri: String },
    /// `connection_lost(cause)`, and when.
    Lost { cause: Error, at: Instant },
    /// `message_arrived(topic, message)`.
    Message(Message),
    /// `delivery_complete(token)`.
    Delivered(Option<PacketId>),
}

/// A [`Callback`] that sends everything to a channel.
#[derive(Debug)]
pub(crate) struct Recorder {
    tx: Mutex<Sender<Seen>>,
}

impl Recorder {
    /// A recorder and the receiving end of what it sees.
    pub(crate) fn new() -> (Self, Events) {
        let (tx, rx) = mpsc::channel();
        (Self { tx: Mutex::new(tx) }, Events { rx })
    }

    fn send(&self, seen: Seen) {
        // The test may have stopped listening: nothing to do then.
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(seen);
    }
}

impl Callback for Recorder {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.send(Seen::Connected {
            reconnect,
            uri: server_uri.to_owned(),
        });
    }

    fn connection_lost(&self, cause: &Error) {
        self.send(Seen::Lost {
            cause: cause.clone(),
            at: Instant::now(),
        });
    }

    fn message_arrived(&self, _topic: &str, message: &Message) {
        self.send(Seen::Message(message.clone()));
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        self.send(Seen::Delivered(token.message_id()));
    }
}

/// The events a [`Recorder`] saw.
#[derive(Debug)]
pub(crate) struct Events {
    rx: Receiver<Seen>,
}

impl Events {
    /// The next event for which `pick` returns something, skipping the others; `None` after
    /// `timeout`.
    pub(crate) fn find<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(seen) => {
                    if let Some(found) = pick(seen) {
                        return Some(found);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The next `connect_complete`'s `(reconnect, uri)`.
    pub(crate) fn connected(&self, timeout: Duration) -> Option<(bool, String)> {
        self.find(timeout, |seen| match seen {
            Seen::Connected { reconnect, uri } => Some((reconnect, uri)),
            _ => None,
        })
    }

    /// The next `connection_lost`'s cause and time.
    pub(crate) fn lost(&self, timeout: Duration) -> Option<(Error, Instant)> {
        self.find(timeout, |seen| match seen {
            Seen::Lost { cause, at } => Some((cause, at)),
            _ => None,
        })
    }

    /// The next message.
    pub(crate) fn message(&self, timeout: Duration) -> Option<Message> {
        self.find(timeout, |seen| match seen {
            Seen::Message(message) => Some(message),
            _ => None,
        })
    }

    /// Everything seen so far, without waiting.
    pub(crate) fn drain(&self) -> Vec<Seen> {
        self.rx.try_iter().collect()
    }
}

/// What a no-loss run delivered ([`Tally::check_delivery`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// Messages sent (the end marker not counted).
    pub(crate) sent: usize,
    /// Distinct messages received (the end marker not counted).
    pub(crate) distinct: usize,
    /// Messages received more than once, counting each extra copy.
    pub(crate) duplicates: usize,
}

/// How often each sequence number `0..expected` arrived; shared between a callback and the test.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    inner: Arc<Mutex<TallyInner>>,
}

#[derive(Debug)]
struct TallyInner {
    counts: Vec<u32>,
    distinct: usize,
    total: usize,
    /// Arrivals whose number was lower than the highest seen before (reordering or duplicates).
    out_of_order: usize,
    highest: Option<u32>,
    strangers: usize,
}

impl Tally {
    /// A tally of numbers `0..expected`.
    pub(crate) fn new(expected: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(TallyInner {
                counts: vec![0; expected],
                distinct: 0,
                total: 0,
                out_of_order: 0,
                highest: None,
                strangers: 0,
            })),
        }
    }

    /// Records a payload made by [`seq_payload`].
    pub(crate) fn record(&self, payload: &[u8]) {
        let mut inner = self.lock();
        inner.total += 1;
        let Some(n) = parse_seq(payload) else {
            inner.strangers += 1;
            return;
        };
        match inner.counts.get_mut(n as usize) {
            Some(count) => {
                *count += 1;
                if *count == 1 {
                    inner.distinct += 1;
                }
            }
            None => {
                inner.strangers += 1;
                return;
            }
        }
        if inner.highest.is_some_and(|h| n < h) {
            inner.out_of_order += 1;
        }
        inner.highest = inner.highest.max(Some(n));
    }

    /// Distinct numbers received.
    pub(crate) fn distinct(&self) -> usize {
        self.lock().distinct
    }

    /// `(distinct, total, out_of_order, strangers)`.
    pub(crate) fn summary(&self) -> (usize, usize, usize, usize) {
        let inner = self.lock();
        (
            inner.distinct,
            inner.total,
            inner.out_of_order,
            inner.strangers,
        )
    }

    /// Reports a no-loss run that sent `0..n` and then the end marker `n` (`how` says how it went),
    /// and asserts that every number arrived (`complete`: the wait for them all succeeded) and
    /// nothing else did.
    pub(crate) fn check_delivery(
        &self,
        label: &str,
        n: u32,
        complete: bool,
        how: &str,
    ) -> Delivery {
        let (distinct, total, out_of_order, strangers) = self.summary();
        let delivery = Delivery {
            sent: n as usize,
            distinct: distinct.saturating_sub(1), // the marker is not one of the messages
            duplicates: total - strangers - distinct,
        };
        println!(
            "{label}: {} sent, {} distinct received, {} duplicates ({out_of_order} arrived after a \
             higher number) {how}",
            delivery.sent, delivery.distinct, delivery.duplicates,
        );
        if delivery.duplicates > 0 {
            println!(
                "{label}: duplicated (number, times): {:?}",
                self.duplicated(20)
            );
        }
        assert!(
            complete,
            "{label}: {} missing, the first: {:?}",
            n as usize + 1 - distinct,
            self.missing(20)
        );
        assert_eq!(
            strangers, 0,
            "{label}: payloads that are not sequence numbers"
        );
        delivery
    }

    /// Up to `limit` numbers never received.
    pub(crate) fn missing(&self, limit: usize) -> Vec<usize> {
        let inner = self.lock();
        inner
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| n)
            .take(limit)
            .collect()
    }

    /// Up to `limit` numbers received more than once, with their counts.
    pub(crate) fn duplicated(&self, limit: usize) -> Vec<(usize, u32)> {
        let inner = self.lock();
        inner
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 1)
            .map(|(n, c)| (n, *c))
            .take(limit)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TallyInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The payload carrying sequence number `n` (8 decimal digits, readable in a broker log).
pub(crate) fn seq_payload(n: u32) -> Vec<u8> {
    format!("{n:08}").into_bytes()
}

fn parse_seq(payload: &[u8]) -> Option<u32> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}
