//! [`Task`]: the one background task that owns the socket and the core. It `select!`s over the
//! socket, the bounded command channel, room in the application's streams, a connection attempt in
//! progress and one `Sleep` reset to the next deadline; nothing else runs per message or per
//! timer.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use sansmq::{CommandError, TopicFilter};
use sansmq_driver::resubscription::{Join, granted_qos};
use sansmq_driver::{Backoff, Closing, ConnectOptions, Diagnostics, Operation, ServerRotation};
use tokio::sync::mpsc;

use crate::command::{self, Command};
use crate::dispatch::Dispatch;
use crate::transport::{Io, Transport};
use crate::waiters::{Waiters, Written};
use crate::{Error, Message};

/// Commands taken from the channel per turn: they are all put into the core before the next
/// write, so a burst of publishes leaves in one syscall.
const COMMAND_BATCH: usize = 256;

/// A connection attempt in progress: DNS, TCP and TLS.
pub(crate) type Opening = Pin<Box<dyn Future<Output = Result<Transport, Error>> + Send>>;

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Not connected and not trying.
    Idle,
    /// Opening the transport, then awaiting CONNACK (the core's timer bounds that).
    Connecting,
    /// CONNACK accepted.
    Connected,
    /// Lost; the next automatic attempt is due then.
    Reconnecting { at: Instant },
}

/// The background task's state.
pub(crate) struct Task {
    pub(crate) core: sansmq::Client,
    pub(crate) options: ConnectOptions,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    commands: mpsc::Receiver<Command>,
    pub(crate) transport: Option<Transport>,
    pub(crate) opening: Option<Opening>,
    pub(crate) link: Link,
    pub(crate) dispatch: Dispatch,
    pub(crate) waiters: Waiters,
    /// A publish the core's queue had no room for while connected. Taking commands pauses until
    /// acknowledgements make room, so a full queue fills the bounded channel and `publish` waits
    /// (backpressure) instead of failing.
    stalled: Option<command::Publish>,
    /// Commands of the same batch that came after the stalled publish, in order.
    backlog: VecDeque<Command>,
    pub(crate) backoff: Backoff,
    pub(crate) servers: ServerRotation,
    pub(crate) ever_connected: bool,
    pub(crate) last_error: Option<Error>,
    /// Explains closes by the broker (a forbidden topic, a duplicate client id).
    pub(crate) diagnostics: Diagnostics,
    /// A requested disconnect is ending the connection (writing DISCONNECT, then waiting for the
    /// broker's end of stream).
    pub(crate) closing: Option<Closing>,
    /// Read by [`Client::is_connected`](crate::Client::is_connected).
    pub(crate) connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Task {
    pub(crate) fn new(
        options: ConnectOptions,
        commands: mpsc::Receiver<Command>,
        dispatch: Dispatch,
        connected: Arc<AtomicBool>,
    ) -> Result<Self, Error> {
        let config = options.core_config()?;
        let tls = if options.uses_tls() {
            Some(sansmq_driver::tls::client_config(options.tls_options())?)
        } else {
            None
        };
        let (min, max) = options
            .reconnect_delays()
            .unwrap_or((Duration::from_secs(1), Duration::from_secs(60)));
        let diagnostics = Diagnostics::new(options.client_id());
        Ok(Self {
            core: sansmq::Client::new(config),
            options,
            tls,
            commands,
            transport: None,
            opening: None,
            link: Link::Idle,
            dispatch,
            waiters: Waiters::default(),
            stalled: None,
            backlog: VecDeque::new(),
            backoff: Backoff::new(min, max),
            servers: ServerRotation::default(),
            ever_connected: false,
            last_error: None,
            diagnostics,
            closing: None,
            connected,
        })
    }

    /// Runs until every [`Client`](crate::Client) handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::with_capacity(COMMAND_BATCH);
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            self.settle(Instant::now());
            let deadline = self.deadline();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            let read = self.may_read();
            let draining = self.closing.is_some_and(|c| c.is_draining());
            let intake = self.stalled.is_none() && self.backlog.is_empty();
            let Self {
                core,
                transport,
                commands,
                opening,
                dispatch,
                ..
            } = &mut self;
            tokio::select! {
                n = commands.recv_many(&mut batch, COMMAND_BATCH), if intake => {
                    if n == 0 {
                        break; // every handle is gone
                    }
                    let now = Instant::now();
                    for command in batch.drain(..) {
                        self.command(now, command);
                    }
                }
                io = poll_fn(|cx| match transport {
                    Some(t) if draining => t.poll_linger(cx),
                    Some(t) => t.poll_io(cx, core, read),
                    None => Poll::Pending,
                }), if transport.is_some() => self.on_io(Instant::now(), io),
                opened = poll_fn(|cx| match opening {
                    Some(f) => f.as_mut().poll(cx),
                    None => Poll::Pending,
                }), if opening.is_some() => {
                    self.opening = None;
                    self.on_opened(Instant::now(), opened);
                }
                () = dispatch.room(), if dispatch.has_held() => {
                    self.dispatch.release(&mut self.core, Instant::now());
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.on_timer(Instant::now());
                }
            }
        }
        self.shut_down();
    }

    /// Handles what the last input produced: the core's events, a stalled publish, QoS 0 writes,
    /// the end of a requested disconnect.
    fn settle(&mut self, now: Instant) {
        self.handle_events(now);
        if let Some(publish) = self.stalled.take() {
            self.publish(now, publish);
            while self.stalled.is_none() {
                let Some(command) = self.backlog.pop_front() else {
                    break;
                };
                self.command(now, command);
            }
            self.handle_events(now);
        }
        self.complete_written();
        let flushed = self
            .transport
            .as_ref()
            .is_some_and(|t| t.is_flushed(&self.core));
        if let Some(closing) = &mut self.closing {
            if self.transport.is_none() {
                self.finish_close(now);
            } else if flushed {
                // DISCONNECT is out: the next poll shuts down the write side (`poll_linger`).
                let _ = closing.handle_flushed(now);
            }
        }
    }

    /// The earliest of the core's timer, the next reconnect and the close deadline.
    fn deadline(&self) -> Option<Instant> {
        let reconnect = match self.link {
            Link::Reconnecting { at } => Some(at),
            _ => None,
        };
        let closing = self.closing.as_ref().map(Closing::deadline);
        [self.core.poll_timeout(), reconnect, closing]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether to read from the broker now: not while the acknowledgements queued for it fill the
    /// transmit buffer ([`sansmq::Client::wants_read`]: a broker that sends and never reads would
    /// grow it without limit; TCP slows the broker down instead), and not while the application
    /// is [behind](Self::behind_application).
    fn may_read(&self) -> bool {
        self.closing.is_none() && self.core.wants_read() && !self.behind_application()
    }

    /// The application's streams are backed up **and** nothing the application awaits needs the
    /// broker's answer: a task that awaits a PUBACK while not reading its messages would
    /// otherwise wait forever (the PUBACK sits behind the unread messages).
    fn behind_application(&self) -> bool {
        self.link == Link::Connected && self.dispatch.is_backed_up() && !self.waiters.await_broker()
    }

    fn on_io(&mut self, now: Instant, io: Io) {
        if self.closing.is_some() && !matches!(io, Io::Progress) {
            // The broker's end of stream (or a failure) during a requested close: it is over.
            self.complete_written();
            self.finish_close(now);
            return;
        }
        match io {
            Io::Progress => {}
            Io::Closed => {
                self.complete_written();
                self.transport_failed(now, None);
            }
            Io::Failed(error) => {
                self.complete_written();
                self.transport_failed(now, Some(error));
            }
        }
    }

    /// Resolves the QoS 0 publishes whose bytes are all written. Also runs before a close is
    /// handled: one `poll_io` can write a message and then read the broker's EOF, and what was
    /// written must not be reported lost with the connection; only what was not written fails.
    fn complete_written(&mut self) {
        let Some(transport) = &self.transport else {
            return;
        };
        self.waiters.complete_written_up_to(transport.written);
        if !self.waiters.written.is_empty()
            && transport.is_flushed(&self.core)
            && self.core.queued_len() == 0
        {
            self.waiters.complete_written();
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.behind_application() && self.closing.is_none() && self.core.wants_read() {
            // Reading is paused for a slow application, but a PINGRESP may wait behind the
            // messages: read what is there before the core judges the keep-alive, without
            // registering for more. (A broker that does not read our acks gets no such favour.)
            if let Some(transport) = &mut self.transport {
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(io) = transport.poll_io(&mut cx, &mut self.core, true) {
                    self.on_io(now, io);
                    self.handle_events(now);
                }
            }
        }
        if self.core.poll_timeout().is_some_and(|at| now >= at) {
            self.core.handle_timeout(now);
        }
        if let Link::Reconnecting { at } = self.link {
            if now >= at {
                self.attempt(now);
            }
        }
        if self.closing.is_some_and(|c| c.is_expired(now)) {
            self.finish_close(now);
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        if self.stalled.is_some()
            && !matches!(command, Command::Ack { .. } | Command::Disconnect { .. })
        {
            // Behind a stalled publish: keep the order.
            self.backlog.push_back(command);
            return;
        }
        match command {
            Command::Connect(reply) => self.start_connect(now, reply),
            Command::Publish(publish) => self.publish(now, publish),
            Command::Subscribe {
                filters,
                route,
                reply,
            } => {
                if self.link == Link::Idle {
                    let _ = reply.send(Err(CommandError::NotConnected.into()));
                    return;
                }
                let first = filters.first().map(|f| f.filter.clone());
                let reply = match self.waiters.restore.join(&filters, reply) {
                    Join::Send(reply) => reply,
                    joined => {
                        // The SUBSCRIBE restoring the session asks for these already.
                        if let (Some(filter), Some(tx)) = (first, route) {
                            self.dispatch.add_route(filter, tx);
                        }
                        if let Join::Granted { waiter, results } = joined {
                            let _ = waiter.send(granted_qos(results));
                        }
                        return;
                    }
                };
                let requested: Vec<TopicFilter> =
                    filters.iter().map(|f| f.filter.clone()).collect();
                match self.core.subscribe(now, filters) {
                    Ok(id) => {
                        for filter in &requested {
                            self.diagnostics
                                .on_sent(now, Operation::Subscribe, filter, Some(id));
                        }
                        if let (Some(filter), Some(tx)) = (first, route) {
                            self.dispatch.add_route(filter, tx);
                        }
                        self.waiters.subscribes.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Unsubscribe { filters, reply } => {
                if self.link == Link::Idle {
                    let _ = reply.send(Err(CommandError::NotConnected.into()));
                    return;
                }
                self.dispatch.remove_routes(&filters);
                self.waiters.restore.on_unsubscribe(&filters);
                match self.core.unsubscribe(now, filters) {
                    Ok(id) => {
                        self.waiters.unsubscribes.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Ack { key, reply } => {
                let result = if self.dispatch.ack(&mut self.core, now, key) {
                    Ok(())
                } else {
                    Err(CommandError::UnknownAck(key.id).into())
                };
                let _ = reply.send(result);
            }
            Command::Disconnect { drain, reply } => self.disconnect(now, drain, reply),
        }
    }

    /// Puts a message into the core, or stalls it while connected with the queue full.
    fn publish(&mut self, now: Instant, publish: command::Publish) {
        let max_queued = self.core.config().max_queued;
        if self.link == Link::Connected && max_queued > 0 && self.core.queued_len() >= max_queued {
            self.stalled = Some(publish);
            return;
        }
        let command::Publish {
            topic,
            payload,
            qos,
            retain,
            barrier,
            reply,
        } = publish;
        let queued = self.core.queued_len();
        let result = if barrier {
            self.core.publish_barrier(now, topic, payload).map(Some)
        } else {
            let sent = self.core.publish(now, topic.clone(), qos, retain, payload);
            if let Ok(id) = sent {
                self.diagnostics
                    .on_sent(now, Operation::Publish, &topic, id);
            }
            sent
        };
        match result {
            Ok(Some(id)) => {
                self.waiters.publishes.insert(id, reply);
            }
            Ok(None) => {
                // Encoded at once (not queued): it ends where the transmit buffer ends now.
                let end = self
                    .transport
                    .as_ref()
                    .filter(|_| self.core.queued_len() == queued)
                    .map(|t| t.written + self.core.poll_transmit().map_or(0, <[u8]>::len) as u64);
                self.waiters.written.push_back(Written { end, reply });
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    fn disconnect(&mut self, now: Instant, drain: Duration, reply: command::Reply<()>) {
        self.servers.stop();
        if self.core.disconnect(now, drain).is_ok() {
            self.waiters.disconnect = Some(reply);
            return;
        }
        // Not connected (perhaps opening a transport or waiting to reconnect): just stop.
        self.opening = None;
        self.transport = None;
        self.link = Link::Idle;
        if let Some(waiter) = self.waiters.connect.take() {
            let _ = waiter.send(Err(Error::Closed));
        }
        let _ = reply.send(Ok(()));
    }

    /// A message for the application.
    pub(crate) fn deliver(&mut self, now: Instant, message: Message) {
        self.dispatch.message(&mut self.core, now, message);
    }

    /// Every handle is gone: close the connection; pending futures resolve with
    /// [`Error::Closed`] as their senders drop.
    fn shut_down(&mut self) {
        tracing::debug!("all client handles dropped; the client task ends");
        self.transport = None;
        self.opening = None;
        self.connected
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
