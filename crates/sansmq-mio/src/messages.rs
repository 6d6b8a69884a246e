//! [`Messages`]: the pull receiver of [`Client::messages`](crate::Client::messages), whose `recv`
//! reads from the broker itself while nothing is queued.

use std::fmt;
use std::sync::mpsc::{Receiver, RecvError, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::Message;
use crate::io_loop::{IoRun, Shared};

/// The messages no per-subscription handler takes, in arrival order: the receiving half of
/// [`Client::messages`](crate::Client::messages), with the methods of
/// [`std::sync::mpsc::Receiver`].
///
/// A thread waiting in [`recv`](Self::recv) or [`recv_timeout`](Self::recv_timeout) with nothing
/// queued runs the client's IO itself (reads, acks, keep-alive, reconnects) until its message is
/// in, and keeps it while it calls again within a couple of milliseconds. So a message costs one
/// thread's wake-up, not the IO thread's and then the receiver's, as rumqttc's
/// `Connection::iter` and Paho C's `MQTTClient_receive` read on the caller's thread. Afterwards the
/// IO thread takes the IO back, or at once when the client needs it to (a subscribe, a close).
/// One thread runs the IO at a time: while a thread waiting on a
/// [`DeliveryToken`](crate::DeliveryToken) runs it, `recv` waits for what that thread reads. On
/// a client's callback thread `recv` waits like a plain receiver.
///
/// Ends ([`RecvError`]) once the client is closed and the queued messages are taken.
pub struct Messages {
    rx: Receiver<Message>,
    shared: Weak<Shared>,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl Messages {
    pub(crate) fn new(rx: Receiver<Message>, shared: &Arc<Shared>) -> Self {
        Self {
            rx,
            shared: Arc::downgrade(shared),
        }
    }

    /// The next message, waiting as long as it takes.
    pub fn recv(&self) -> Result<Message, RecvError> {
        self.receive(None).map_err(|_| RecvError)
    }

    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        let deadline = sansmq_driver::deadline_after(Instant::now(), timeout);
        self.receive(Some(deadline))
    }

    /// A message if one is queued, without waiting.
    pub fn try_recv(&self) -> Result<Message, TryRecvError> {
        self.rx.try_recv()
    }

    /// Every message, waiting for each, until the client is closed.
    pub fn iter(&self) -> MessagesIter<'_> {
        MessagesIter { messages: self }
    }

    /// The messages queued now, without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = Message> + '_ {
        self.rx.try_iter()
    }

    fn receive(&self, deadline: Option<Instant>) -> Result<Message, RecvTimeoutError> {
        loop {
            let mut received = self.rx.try_recv();
            if let Ok(message) = received {
                return Ok(message);
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(RecvTimeoutError::Timeout);
            }
            let ran = match self.shared.upgrade() {
                Some(shared) => shared.run_io_until(deadline, || {
                    received = self.rx.try_recv();
                    received != Err(TryRecvError::Empty)
                }),
                None => IoRun::Elsewhere,
            };
            match received {
                Ok(message) => return Ok(message),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if let Some(until) = ran.then_wait_until(now, deadline) {
                match self.wait(until) {
                    // The lease of a busy wait, or the deadline, which the loop reports.
                    Err(RecvTimeoutError::Timeout) => {}
                    received => return received,
                }
            }
        }
    }

    /// Waits as a plain receiver, the IO thread reading.
    fn wait(&self, deadline: Option<Instant>) -> Result<Message, RecvTimeoutError> {
        match deadline {
            Some(deadline) => self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now())),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    }
}

/// Every message, waiting for each ([`Messages::iter`]).
#[derive(Debug)]
pub struct MessagesIter<'a> {
    messages: &'a Messages,
}

impl Iterator for MessagesIter<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.messages.recv().ok()
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = Message;
    type IntoIter = MessagesIter<'a>;

    fn into_iter(self) -> MessagesIter<'a> {
        self.iter()
    }
}

/// Every message, waiting for each, until the client is closed.
#[derive(Debug)]
pub struct MessagesIntoIter {
    messages: Messages,
}

impl Iterator for MessagesIntoIter {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.messages.recv().ok()
    }
}

impl IntoIterator for Messages {
    type Item = Message;
    type IntoIter = MessagesIntoIter;

    fn into_iter(self) -> MessagesIntoIter {
        MessagesIntoIter { messages: self }
    }
}
