//! [`Task`]: the one background task that owns the transport and the [`Supervisor`]. It `select!`s
//! over the transport, the bounded command channel, a transport being opened, room in the
//! application's streams and one `Sleep` reset to the supervisor's next deadline; nothing else runs
//! per message or per timer. Every decision (which server, when to retry, what completes a
//! request) is the supervisor's: the task opens and closes what its actions ask, moves bytes, and
//! hands its events to the application.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use sansmq::packet::Properties;
use sansmq_driver::channel;
use sansmq_driver::supervisor::{Action, Completed, Event as Lifecycle, Rejected};
use sansmq_driver::tls::ClientConfig;

use crate::command::{self, Command, Replies, Reply, Supervisor};
use crate::dispatch::Dispatch;
use crate::transport::{Io, Route, Transport};
use crate::{ConnectOptions, Error, Event};

/// Commands taken from the channel per turn: they are all given to the supervisor before the next
/// write, so a burst of publishes leaves in one syscall.
const COMMAND_BATCH: usize = 256;

/// Room for commands kept between timers; what a burst made beyond it is given back when a timer
/// fires.
const IDLE_BATCH: usize = 4;

/// The transport the task holds, if any.
enum Link {
    None,
    /// Being opened: DNS, TCP and TLS.
    Opening(Pin<Box<dyn Future<Output = Result<Transport, Error>> + Send>>),
    Open(Transport),
}

/// The background task's state.
pub(crate) struct Task {
    supervisor: Supervisor,
    tls: Option<Arc<ClientConfig>>,
    /// The bind address and proxy of every connection.
    route: Route,
    commands: channel::Receiver<Command>,
    link: Link,
    dispatch: Dispatch,
    /// A publish the core's queue had no room for while connected. Taking commands pauses until
    /// acknowledgements make room, so a full queue fills the bounded channel and `publish` waits
    /// (backpressure) instead of failing.
    stalled: Option<command::Publish>,
    /// Commands of the same batch that came after the stalled publish, in order.
    backlog: VecDeque<Command>,
    /// Read by [`Client::is_connected`](crate::Client::is_connected).
    connected: Arc<AtomicBool>,
}

impl Task {
    pub(crate) fn new(
        options: Arc<ConnectOptions>,
        commands: channel::Receiver<Command>,
        dispatch: Dispatch,
        connected: Arc<AtomicBool>,
    ) -> Result<Self, Error> {
        let tls = options.tls_config()?;
        let route = Route {
            local: options.local_address(),
            proxy: options.proxy_options().cloned(),
            websocket_headers: options.websocket_headers().into(),
        };
        Ok(Self {
            supervisor: Supervisor::new(options)?,
            tls,
            route,
            commands,
            link: Link::None,
            dispatch,
            stalled: None,
            backlog: VecDeque::new(),
            connected,
        })
    }

    /// Runs until every [`Client`](crate::Client) handle is dropped. The state is boxed on its
    /// own: as the argument of an `async fn` it would sit in the future twice (the argument and
    /// the local it moves into), which made an idle client's task 7 KiB.
    pub(crate) async fn run(mut self: Box<Self>) {
        // Grows with a burst of commands, and is given back at the next timer.
        let mut batch = Vec::new();
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            self.settle(Instant::now());
            let deadline = self.supervisor.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            let read = self.supervisor.wants_read() && !self.behind_application();
            let intake = self.stalled.is_none() && self.backlog.is_empty();
            let Self {
                supervisor,
                link,
                commands,
                dispatch,
                ..
            } = &mut *self;
            tokio::select! {
                // Behind a stalled publish only the urgent commands are taken, out of turn.
                n = poll_fn(|cx| if intake {
                    commands.poll_recv_many(cx, &mut batch, COMMAND_BATCH)
                } else {
                    commands.poll_recv_first(cx, Command::is_urgent).map(|command| {
                        batch.extend(command);
                        batch.len()
                    })
                }) => {
                    if n == 0 {
                        break; // every handle is gone
                    }
                    let now = Instant::now();
                    for command in batch.drain(..) {
                        self.command(now, command);
                    }
                }
                io = poll_fn(|cx| match link {
                    Link::Opening(opening) => opening.as_mut().poll(cx).map(Io::Opened),
                    Link::Open(transport) => transport.poll_io(cx, supervisor, read),
                    Link::None => Poll::Pending,
                }), if !matches!(link, Link::None) => self.on_io(Instant::now(), io),
                () = dispatch.room(), if dispatch.has_held() => {
                    self.dispatch.release(&mut self.supervisor, Instant::now());
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    // A timer (keep-alive at the latest) is when a burst's room is given back.
                    if batch.capacity() > IDLE_BATCH {
                        batch = Vec::new();
                    }
                    self.commands.shrink();
                    self.dispatch.shrink();
                    self.on_timer(Instant::now());
                }
            }
        }
        tracing::debug!("all client handles dropped; the client task ends");
        // Every waiter is answered with `Error::Closed`, and the transport dropped.
        self.supervisor.shut_down(Instant::now());
        self.settle(Instant::now());
    }

    /// Follows up the last input: a stalled publish once there is room, the supervisor's actions,
    /// then its events.
    fn settle(&mut self, now: Instant) {
        if let Some(publish) = self.stalled.take() {
            self.publish(now, publish);
            while self.stalled.is_none() {
                let Some(command) = self.backlog.pop_front() else {
                    break;
                };
                self.command(now, command);
            }
        }
        while let Some(action) = self.supervisor.poll_action() {
            match action {
                Action::Open { uri } => {
                    self.link = Link::Opening(Box::pin(Transport::open(
                        uri,
                        self.tls.clone(),
                        self.route.clone(),
                    )));
                }
                Action::ShutdownWrite => {
                    if let Link::Open(transport) = &mut self.link {
                        transport.shut_down_writing();
                    }
                }
                Action::Close => self.link = Link::None,
            }
        }
        // Before the answers go out: who awaits `connect` or `disconnect` sees the new state.
        self.connected
            .store(self.supervisor.is_connected(), Ordering::Relaxed);
        while let Some(event) = self.supervisor.poll_event() {
            self.on_event(now, event);
        }
    }

    /// A supervisor's event: an answer for a waiter, or something for the application's streams.
    fn on_event(&mut self, now: Instant, event: Lifecycle<Replies>) {
        let event = match event {
            Lifecycle::Completed(completed) => return answer(completed),
            Lifecycle::Message(message) => {
                return self.dispatch.message(&mut self.supervisor, now, message);
            }
            Lifecycle::Connected {
                uri,
                session_present,
                requested,
                ..
            } => match requested {
                true => Event::Connected {
                    session_present,
                    uri: uri.to_string(),
                },
                false => Event::Reconnected {
                    session_present,
                    uri: uri.to_string(),
                },
            },
            Lifecycle::ConnectionLost { cause, .. } => Event::ConnectionLost { cause },
            Lifecycle::WaitingForCredentials { cause } => Event::WaitingForCredentials { cause },
        };
        self.dispatch.event(&mut self.supervisor, now, event);
    }

    /// The application's streams are backed up **and** nothing the application awaits needs the
    /// broker's answer: then reading pauses. A task that awaits a PUBACK while not reading its
    /// messages would otherwise wait forever (the PUBACK sits behind the unread messages).
    fn behind_application(&self) -> bool {
        self.supervisor.is_connected()
            && self.dispatch.is_backed_up()
            && !self.supervisor.awaits_broker()
    }

    fn on_io(&mut self, now: Instant, io: Io) {
        match io {
            Io::Progress => {}
            Io::Opened(Ok(transport)) => {
                self.link = Link::Open(transport);
                self.supervisor.handle_opened(now);
            }
            Io::Opened(Err(error)) => {
                self.link = Link::None;
                self.supervisor.handle_open_failed(now, error);
            }
            Io::Ended(error) => {
                self.link = Link::None;
                self.supervisor.handle_closed(now, error);
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.behind_application() && self.supervisor.wants_read() {
            // Reading is paused for a slow application, but a PINGRESP may wait behind the
            // messages: read what is there before the keep-alive is judged, without registering
            // for more. (A broker that does not read our acks gets no such favour.)
            if let Link::Open(transport) = &mut self.link {
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(io) = transport.poll_io(&mut cx, &mut self.supervisor, true) {
                    self.on_io(now, io);
                }
            }
        }
        self.supervisor.handle_timeout(now);
    }

    fn command(&mut self, now: Instant, command: Command) {
        if self.stalled.is_some() && !command.is_urgent() {
            // Behind a stalled publish: keep the order.
            self.backlog.push_back(command);
            return;
        }
        match command {
            Command::Connect(reply) => {
                if let Err(rejected) = self.supervisor.connect(now, reply) {
                    refuse(rejected);
                }
            }
            Command::Publish(publish) => self.publish(now, publish),
            Command::Subscribe {
                filters,
                properties,
                route,
                reply,
            } => {
                let first = filters.first().map(|f| f.filter.clone());
                let properties = properties.map_or_else(Properties::new, |p| *p);
                match self
                    .supervisor
                    .subscribe_with_properties(now, filters, properties, reply)
                {
                    Ok(()) => {
                        if let (Some(filter), Some(tx)) = (first, route) {
                            self.dispatch.add_route(filter, tx);
                        }
                    }
                    Err(rejected) => refuse(rejected),
                }
            }
            Command::Unsubscribe { filters, reply } => {
                let ended = filters.clone();
                match self.supervisor.unsubscribe(now, filters, reply) {
                    Ok(()) => self.dispatch.remove_routes(&ended),
                    Err(rejected) => refuse(rejected),
                }
            }
            Command::Request {
                topic,
                payload,
                qos,
                properties,
                reply,
            } => {
                let requested =
                    self.supervisor
                        .request(now, topic, qos, payload, *properties, reply);
                if let Err(rejected) = requested {
                    refuse(rejected);
                }
            }
            Command::Ack { key, reply } => {
                let _ = reply.send(self.supervisor.ack(now, key));
            }
            Command::Reauthenticate { reply } => {
                let _ = reply.send(self.supervisor.reauthenticate(now));
            }
            Command::Disconnect { drain, reply } => self.supervisor.disconnect(now, drain, reply),
        }
    }

    /// Gives a message to the supervisor, or stalls it while its queue is full.
    fn publish(&mut self, now: Instant, publish: command::Publish) {
        if self.supervisor.is_queue_full() {
            self.stalled = Some(publish);
            return;
        }
        let command::Publish {
            topic,
            payload,
            qos,
            retain,
            barrier,
            properties,
            reply,
        } = publish;
        let sent = match (barrier, properties) {
            (true, _) => self
                .supervisor
                .publish_barrier(now, topic, payload, reply)
                .map(Some),
            (false, None) => self
                .supervisor
                .publish(now, topic, qos, retain, payload, reply),
            (false, Some(properties)) => self.supervisor.publish_with_properties(
                now,
                topic,
                qos,
                retain,
                payload,
                *properties,
                reply,
            ),
        };
        if let Err(rejected) = sent {
            rejected.waiter.send(Err(rejected.error));
        }
    }
}

/// A request is over: its future resolves (unless it was dropped, which is nobody's concern).
fn answer(completed: Completed<Replies>) {
    match completed {
        Completed::Connect(reply, result) => drop(reply.send(result)),
        Completed::Publish(reply, _, result) => reply.send(result),
        Completed::Unsubscribe(reply, result) | Completed::Disconnect(reply, result) => {
            drop(reply.send(result))
        }
        Completed::Subscribe(reply, result) => drop(reply.send(result)),
        Completed::Request(reply, result) => drop(reply.send(result)),
    }
}

/// A command refused at once: its future resolves with why.
fn refuse<T>(rejected: Rejected<Reply<T>>) {
    let _ = rejected.waiter.send(Err(rejected.error));
}
