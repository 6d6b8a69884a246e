//! [`Connection`]: the future that owns the transport and drives the supervisor.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;
use std::{fmt, io};

use futures_io::{AsyncRead, AsyncWrite};
use sansmq_driver::channel::{self, TrySendError};
use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};

use crate::client::{Command, Reply};
use crate::{Error, QoS, Runtime};

/// Events held back from a full [`Events`](crate::Events) past which QoS 0 messages are dropped.
const HELD_LIMIT: usize = 8 * crate::client::EVENT_CAPACITY;
/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 16 * 1024;
/// Rounds of work in one poll before the connection lets other tasks run.
const BUDGET: usize = 64;

/// The waiters this client gives the supervisor: its calls' reply channels.
#[derive(Debug)]
pub struct Replies;

impl Requests for Replies {
    type Connect = Reply<bool>;
    type Publish = Reply<()>;
    type Subscribe = Reply<Vec<QoS>>;
    type Unsubscribe = Reply<()>;
    type Disconnect = Reply<()>;
    type Request = Reply<crate::Message>;
}

pub(crate) type Sup = Supervisor<Replies>;
type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The client's connection: a future that opens, writes, reads and closes streams as the
/// supervisor asks, until the last [`Client`](crate::Client) is dropped. Spawn it.
#[must_use = "the client does nothing unless its connection is spawned"]
pub struct Connection<R: Runtime> {
    pub(crate) supervisor: Sup,
    pub(crate) runtime: R,
    pub(crate) commands: channel::Receiver<Command>,
    pub(crate) events: channel::PollSender<crate::Event>,
    /// Events that do not fit in [`Events`](crate::Events) yet.
    pub(crate) held: VecDeque<crate::Event>,
    pub(crate) opening: Option<Boxed<io::Result<R::Stream>>>,
    /// The open stream, and whether [`Action::ShutdownWrite`] is still to be done on it.
    pub(crate) stream: Option<(R::Stream, bool)>,
    /// The alarm, and the deadline it is set for.
    pub(crate) sleep: Option<(Instant, Boxed<()>)>,
    pub(crate) connected: Arc<AtomicBool>,
}

impl<R: Runtime> fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.supervisor.fmt(f)
    }
}

impl<R: Runtime> Future for Connection<R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..BUDGET {
            let Some(took) = this.take_commands(cx) else {
                // Every client is gone: the transport closes and what still waits fails.
                this.supervisor.shut_down(Instant::now());
                this.hand_over(cx);
                return Poll::Ready(());
            };
            // Every step runs each round (`|`, not `||`): each may give the others work.
            let io = this.write(cx).and_then(|wrote| Ok(wrote | this.read(cx)?));
            let io = io.unwrap_or_else(|e| this.closed(Some(e)));
            if !(took | this.act(cx) | io | this.tick(cx) | this.hand_over(cx)) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<R: Runtime> Connection<R> {
    /// Runs the calls' commands while the core's queue has room (a full one leaves them in the
    /// channel, so that calls wait, and takes only an urgent `disconnect` out of turn); `None`
    /// once every client is gone.
    fn take_commands(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let mut took = false;
        // At most a channel's worth per round: calls from other threads could refill it as fast
        // as it is taken, and the stream must be written and read meanwhile.
        for _ in 0..crate::client::COMMAND_CAPACITY {
            let next = if self.supervisor.is_queue_full() {
                self.commands.poll_recv_first(cx, Command::is_urgent)
            } else {
                self.commands.poll_recv(cx)
            };
            match next {
                Poll::Ready(Some(command)) => (command.run)(&mut self.supervisor, Instant::now()),
                Poll::Ready(None) => return None,
                Poll::Pending => break,
            }
            took = true;
        }
        Some(took)
    }

    /// Opens and closes transports as the supervisor asks, and reports how an opening ended.
    fn act(&mut self, cx: &mut Context<'_>) -> bool {
        let mut busy = false;
        while let Some(action) = self.supervisor.poll_action() {
            match action {
                Action::Open { uri } => {
                    self.opening = Some(Box::pin(self.runtime.clone().connect(uri)))
                }
                Action::ShutdownWrite => self.stream.iter_mut().for_each(|s| s.1 = true),
                Action::Close => (self.opening, self.stream) = (None, None),
            }
            busy = true;
        }
        let Some(Poll::Ready(opened)) = self.opening.as_mut().map(|o| o.as_mut().poll(cx)) else {
            return busy;
        };
        self.opening = None;
        match opened {
            Ok(stream) => {
                self.stream = Some((stream, false));
                self.supervisor.handle_opened(Instant::now());
            }
            Err(e) => {
                let error = self.io_error(&e);
                self.supervisor.handle_open_failed(Instant::now(), error);
            }
        }
        true
    }

    /// Writes what the supervisor has to send and flushes it, then shuts the write side down if
    /// asked.
    fn write(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let Some((stream, shutdown)) = &mut self.stream else {
            return Ok(false);
        };
        let mut busy = false;
        while let Some(bytes) = self.supervisor.poll_transmit() {
            match Pin::new(&mut *stream).poll_write(cx, bytes)? {
                Poll::Pending => return Ok(busy),
                Poll::Ready(0) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(n) => self.supervisor.handle_transmitted(Instant::now(), n),
            }
            busy = true;
        }
        let flushed = Pin::new(&mut *stream).poll_flush(cx)?.is_ready();
        if *shutdown && flushed && Pin::new(stream).poll_close(cx)?.is_ready() {
            (*shutdown, busy) = (false, true);
        }
        Ok(busy)
    }

    /// Reads while the supervisor wants to and the application keeps up with
    /// [`Events`](crate::Events) (or awaits an answer only the broker can give).
    fn read(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let wanted = self.supervisor.wants_read();
        let keeps_up = self.held.is_empty() || self.supervisor.awaits_broker();
        let Some((stream, _)) = self.stream.as_mut().filter(|_| wanted && keeps_up) else {
            return Ok(false);
        };
        let mut buffer = [0; READ_CHUNK];
        let Poll::Ready(n) = Pin::new(stream).poll_read(cx, &mut buffer)? else {
            return Ok(false);
        };
        match buffer.get(..n) {
            Some([]) | None => return Ok(self.closed(None)),
            Some(read) => self.supervisor.handle_received(Instant::now(), read),
        }
        Ok(true)
    }

    /// Sleeps until the supervisor's next deadline, then tells it the time has come.
    fn tick(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.supervisor.poll_timeout() else {
            self.sleep = None;
            return false;
        };
        // Set again only for an earlier deadline: for a later one (keep-alive moves on with every
        // write) the alarm rings early, which the supervisor ignores, and is set again then.
        if self.sleep.as_ref().is_none_or(|(at, _)| deadline < *at) {
            let alarm = self.runtime.clone().sleep_until(deadline);
            self.sleep = Some((deadline, Box::pin(alarm)));
        }
        let rang = self.sleep.as_mut().map(|(_, s)| s.as_mut().poll(cx));
        if rang == Some(Poll::Ready(())) {
            self.sleep = None;
            // A timer (keep-alive at the latest) is when a burst's room is given back.
            self.commands.shrink();
            self.events.shrink();
            self.supervisor.handle_timeout(Instant::now());
        }
        rang == Some(Poll::Ready(()))
    }

    /// Gives the calls their results and [`Events`](crate::Events) the events, acknowledging
    /// each message once it is there.
    fn hand_over(&mut self, cx: &mut Context<'_>) -> bool {
        // Before the results: a call that connected sees `is_connected`.
        self.connected
            .store(self.supervisor.is_connected(), Relaxed);
        let mut busy = false;
        while let Some(event) = self.supervisor.poll_event() {
            busy = true;
            match event {
                Event::Completed(done) => complete(done),
                // QoS 0 allows it; held QoS 1/2 messages are bounded by the broker's window.
                Event::Message(m) if m.qos == QoS::AtMostOnce && self.held.len() >= HELD_LIMIT => {
                    tracing::warn!(topic = %m.topic, "application behind: QoS 0 message dropped");
                }
                event => self.held.push_back(event),
            }
        }
        while !self.held.is_empty() {
            let Poll::Ready(room) = self.events.poll_room(cx) else {
                break;
            };
            let Some(event) = self.held.pop_front() else {
                break;
            };
            let key = match &event {
                Event::Message(message) => message.ack_key(),
                _ => None,
            };
            // Without `Events`, messages are acknowledged and discarded.
            if room.is_ok() {
                if let Err(TrySendError::Full(event)) = self.events.try_send(event) {
                    // Not while the connection is the only sender; kept, not acknowledged.
                    self.held.push_front(event);
                    break;
                }
            }
            // Refused only for a session the broker forgot: it expects no ack then.
            drop(key.map(|key| self.supervisor.ack(Instant::now(), key)));
            busy = true;
        }
        busy
    }

    /// The stream ended (`None`: end of stream) or failed: dropped, and reported.
    fn closed(&mut self, error: Option<io::Error>) -> bool {
        (self.opening, self.stream) = (None, None);
        let error = error.map(|e| self.io_error(&e));
        self.supervisor.handle_closed(Instant::now(), error);
        true
    }

    fn io_error(&self, error: &io::Error) -> Error {
        let server = self.supervisor.server();
        let server = server.map(ToString::to_string).unwrap_or_default();
        Error::io(format!("connection to {server}"), error)
    }
}

/// Gives a request's result to its call, if that still waits.
fn complete(done: Completed<Replies>) {
    match done {
        Completed::Connect(reply, result) => drop(reply.send(result)),
        Completed::Subscribe(reply, result) => drop(reply.send(result)),
        Completed::Publish(reply, _, result)
        | Completed::Unsubscribe(reply, result)
        | Completed::Disconnect(reply, result) => drop(reply.send(result)),
        Completed::Request(reply, result) => drop(reply.send(result)),
    }
}
