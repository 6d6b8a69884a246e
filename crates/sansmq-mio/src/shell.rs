//! [`Shell`]: the IO around the [`Supervisor`], behind the client's one lock. It opens the
//! transports the supervisor asks for (DNS off the IO thread, Happy Eyeballs, TLS), writes and
//! reads them, closes them, and hands the supervisor's events to the application. Both the IO
//! thread and application threads drive it, so a publish writes straight to the socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Waker};
use sansmq::packet::QoS;
use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};
use sansmq_driver::tls::ClientConfig;
use sansmq_driver::{ConnectOptions, Error, Message, ReadSize, ServerUri};

use crate::DeliveryToken;
use crate::callback::{CallbackEvent, Handoff, lock};
use crate::completion::Completion;
use crate::dialer::{Dialed, Dialer, Lookup, SOCKET};
use crate::proxying::Proxying;
use crate::socket::Socket;
use crate::transport::{ReadOutcome, Transport};

/// The most bytes per socket read (reads start at [`ReadSize::MIN`] and grow while they fill the
/// buffer), and about as many per turn of the IO loop.
const MAX_READ: usize = 64 * 1024;
/// Bytes read at most, despite held callbacks, when a timer is due: enough to reach a PINGRESP
/// behind a backlog, bounded so a flood cannot grow the held callbacks without limit.
const DUE_READ_BUDGET: usize = 1024 * 1024;

/// What the application waits on, per request.
#[derive(Debug)]
pub(crate) struct Waiters;

impl Requests for Waiters {
    type Connect = Completion<Result<bool, Error>>;
    type Publish = DeliveryToken;
    type Subscribe = Completion<Result<Vec<QoS>, Error>>;
    type Unsubscribe = Completion<Result<(), Error>>;
    type Disconnect = Completion<Result<(), Error>>;
    type Request = Completion<Result<Message, Error>>;
}

/// A transport to the broker at `uri` being opened.
struct Opening {
    uri: ServerUri,
    stage: Stage,
}

/// How far opening has come.
enum Stage {
    /// The host (the broker's, or its proxy's) is being resolved, off the IO thread.
    Resolving(Lookup),
    /// Its addresses are being tried.
    Dialing(Dialer),
    /// Connected to the proxy, which is asked for the broker.
    Proxying(Proxying),
}

/// The supervisor and its IO.
pub(crate) struct Shell {
    pub(crate) sup: Supervisor<Waiters>,
    transport: Option<Transport>,
    opening: Option<Opening>,
    tls: Option<Arc<ClientConfig>>,
    registry: Registry,
    /// Wakes the IO thread (from a DNS thread).
    waker: Arc<Waker>,
    /// [`Action::ShutdownWrite`] came: shut the write side once the TLS records are out, and
    /// read (discarding) until the broker's end of stream.
    closing: bool,
    write_shut: bool,
    pub(crate) handoff: Handoff,
    /// What the socket is read into, then copied into the supervisor's read buffer: sized by
    /// `read_size`, so an idle client holds 512 bytes.
    read_buf: Vec<u8>,
    read_size: ReadSize,
    /// The socket may hold unread bytes: reading stopped at its budget or for held callbacks.
    pub(crate) read_more: bool,
    /// Delivery tokens completed while the lock is held, completed by whoever releases it
    /// ([`take_finished`](Self::take_finished)): a publisher waiting on its token would otherwise
    /// wake only to wait for the lock, and wake once per message instead of once per batch.
    finished: Vec<(DeliveryToken, Result<(), Error>)>,
    /// The callback thread is blocked in a call on this client (a token's `wait`, `subscribe`):
    /// reading must not pause for callbacks then, or what it waits for is never read.
    pub(crate) callback_blocked: bool,
    /// When whoever polls wakes up at the latest, as it last reckoned before polling (or as a
    /// call that woke it earlier left it): a call that leaves the next wake-up before it must wake
    /// the poller, and one that does not need not.
    pub(crate) armed: Option<Instant>,
}

impl Shell {
    pub(crate) fn new(
        options: ConnectOptions,
        registry: Registry,
        waker: Arc<Waker>,
        handoff: Handoff,
    ) -> Result<Self, Error> {
        let tls = options.tls_config()?;
        Ok(Self {
            sup: Supervisor::new(options)?,
            transport: None,
            opening: None,
            tls,
            registry,
            waker,
            closing: false,
            write_shut: false,
            handoff,
            read_buf: Vec::new(),
            read_size: ReadSize::new(MAX_READ),
            finished: Vec::new(),
            read_more: false,
            callback_blocked: false,
            armed: None,
        })
    }

    /// Carries out what the last input asked for: the supervisor's actions, writes, and its
    /// events, until none is left. Actions come first, so that nothing is written to (or reported
    /// of) a socket the supervisor has already closed.
    pub(crate) fn drive(&mut self, now: Instant) {
        loop {
            self.act(now);
            self.write(now);
            // What the writes asked for (shutting down the write side after DISCONNECT).
            let mut busy = self.act(now);
            while let Some(event) = self.sup.poll_event() {
                busy = true;
                self.on_event(now, event);
            }
            if !busy {
                return;
            }
        }
    }

    /// Carries out the supervisor's actions; returns whether there were any.
    fn act(&mut self, now: Instant) -> bool {
        let mut acted = false;
        while let Some(action) = self.sup.poll_action() {
            acted = true;
            match action {
                Action::Open { uri } => self.open(now, uri),
                Action::ShutdownWrite => self.closing = true,
                Action::Close => self.drop_socket(),
            }
        }
        acted
    }

    /// Writes what the supervisor has queued, as far as the socket takes it.
    pub(crate) fn write(&mut self, now: Instant) {
        let Some(transport) = &mut self.transport else {
            return;
        };
        let mut result = Ok(());
        while let Some(bytes) = self.sup.poll_transmit() {
            match transport.write(bytes) {
                Ok(0) => break,
                Ok(n) => self.sup.handle_transmitted(now, n),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        result = result.and_then(|()| transport.flush());
        self.read_more |= transport.take_unread();
        if result.is_ok() && self.closing && !self.write_shut {
            result = transport
                .shut_down_writing()
                .map(|shut| self.write_shut = shut);
        }
        if let Err(error) = result {
            self.transport_ended(now, Some(error));
        }
    }

    /// Reads what the broker sent, unless the application is behind (see
    /// [`may_read`](Self::may_read)), at most about one buffer (or [`DUE_READ_BUDGET`]): the IO
    /// loop then hands the messages on and lets go of the lock before reading on (`read_more`).
    /// Reading until the socket would block starved the callback thread's acks and application
    /// publishes of the lock while a broker streamed a backlog.
    ///
    /// `until_blocked`: read until the socket would block even after a short read (see
    /// [`Transport::read`]).
    pub(crate) fn read(&mut self, now: Instant, until_blocked: bool) {
        self.read_more = false;
        if self.transport.is_none() {
            return;
        }
        if !self.may_read(now) {
            self.read_more = true;
            return;
        }
        let budget = match self.handoff.is_clear() || self.callback_blocked {
            true => MAX_READ,
            false => DUE_READ_BUDGET,
        };
        let Some(transport) = &mut self.transport else {
            return;
        };
        // After a burst, give back what the next reads will not need.
        if self.read_buf.len() > self.read_size.next().saturating_mul(4) {
            self.read_buf.truncate(self.read_size.next());
            self.read_buf.shrink_to_fit();
        }
        let sup = &mut self.sup;
        // Stop as soon as the supervisor is done with this socket (a refused CONNACK, a protocol
        // violation): what follows, even its end of stream, no longer concerns it, and reporting
        // that end would be taken for the end of the next transport it has asked for.
        let outcome = transport.read(
            &mut self.read_buf,
            &mut self.read_size,
            budget,
            until_blocked,
            |bytes| {
                sup.handle_received(now, bytes);
                sup.wants_read()
            },
        );
        self.read_size.shrink(self.sup.read_buffer());
        match outcome {
            Ok(ReadOutcome::Drained) => {}
            Ok(ReadOutcome::More) => self.read_more = true,
            Ok(ReadOutcome::Closed) => self.transport_ended(now, None),
            Err(error) => self.transport_ended(now, Some(error)),
        }
    }

    /// Whether reading may go on now. Not while the supervisor says no (acknowledgements fill the
    /// transmit buffer); and not while callbacks are held back (backpressure), except while the
    /// callback thread waits on this client (it would wait forever), during a requested close,
    /// and when a timer is due: an unread PINGRESP must not end a healthy connection because a
    /// callback is slow (`Callback`'s promise).
    pub(crate) fn may_read(&self, now: Instant) -> bool {
        self.sup.wants_read()
            && (self.handoff.is_clear()
                || self.callback_blocked
                || self.closing
                || self.sup.core().poll_timeout().is_some_and(|t| now >= t))
    }

    /// The socket failed or reached its end: drop it, and tell the supervisor.
    fn transport_ended(&mut self, now: Instant, error: Option<Error>) {
        self.drop_socket();
        self.sup.handle_closed(now, error);
    }

    /// When the IO thread must wake up at the latest: the supervisor's timers, the dial's next
    /// address, held callbacks to offer again.
    pub(crate) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let dial = match &self.opening {
            Some(Opening {
                stage: Stage::Dialing(dialer),
                ..
            }) => dialer.poll_timeout(),
            _ => None,
        };
        let retry = self.handoff.retry().map(|after| now + after);
        [self.sup.poll_timeout(), dial, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long the poller may sleep; it sleeps until [`armed`](Self::armed) at the latest.
    pub(crate) fn poll_wait(&mut self, now: Instant) -> Option<Duration> {
        if self.read_more && self.may_read(now) {
            // Unread bytes wait: only look for other events on the way.
            self.armed = Some(now);
            return Some(Duration::ZERO);
        }
        self.armed = self.next_wakeup(now);
        self.armed.map(|at| at.saturating_duration_since(now))
    }

    /// After a call changed the state: whether the next wake-up is now before the poller's, which
    /// then wakes up and reckons again ([`armed`](Self::armed) becomes the new one, so that calls
    /// until then do not wake it again).
    pub(crate) fn wakes_sooner(&mut self, now: Instant) -> bool {
        let Some(next) = self.next_wakeup(now) else {
            return false;
        };
        if self.armed.is_some_and(|armed| armed <= next) {
            return false;
        }
        self.armed = Some(next);
        true
    }

    fn open(&mut self, now: Instant, uri: ServerUri) {
        self.drop_socket();
        if let Some(path) = &uri.unix_socket {
            let opened = self.open_unix(path).and_then(|socket| {
                let tls = self.tls.as_ref().filter(|_| uri.tls);
                Transport::new(socket, tls, &uri, self.sup.options().websocket_headers())
            });
            self.opened(now, opened);
            return;
        }
        let lookup = match self.sup.options().proxy_options() {
            Some(proxy) => Lookup::start(proxy.host(), proxy.port(), &self.waker),
            None => Lookup::start(&uri.host, uri.port, &self.waker),
        };
        self.opening = Some(Opening {
            uri,
            stage: Stage::Resolving(lookup),
        });
        self.advance_opening(now);
    }

    /// Connects to a broker's Unix socket: done at once, or refused at once.
    #[cfg(unix)]
    fn open_unix(&self, path: &std::path::Path) -> Result<Socket, Error> {
        let context = || format!("connecting to unix://{}", path.display());
        let mut socket =
            mio::net::UnixStream::connect(path).map_err(|e| Error::io(context(), &e))?;
        self.registry
            .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Error::io("registering the socket", &e))?;
        Ok(Socket::Unix(socket))
    }

    #[cfg(not(unix))]
    fn open_unix(&self, path: &std::path::Path) -> Result<Socket, Error> {
        Err(Error::Unsupported {
            option: "unix:// server URI",
            reason: format!("{}: Unix sockets need a Unix system", path.display()),
        })
    }

    /// Moves the opening transport on (after a wake-up, a socket's event, or its timer): from the
    /// resolved addresses to the dial, from the dial to the proxy's handshake (with a proxy) and
    /// to a [`Transport`], or to a failure that names every address tried.
    pub(crate) fn advance_opening(&mut self, now: Instant) {
        let options = self.sup.options();
        let (proxy, local) = (options.proxy_options(), options.local_address());
        // `Ok(None)`: the proxy leads to the broker now; its socket is in the stage.
        let result = loop {
            let Some(opening) = &mut self.opening else {
                return;
            };
            match &mut opening.stage {
                Stage::Resolving(lookup) => match lookup.poll() {
                    None => return,
                    Some(Err(error)) => break Err(error),
                    Some(Ok(addresses)) => {
                        let target = sansmq_driver::dial::dial_target(&opening.uri, proxy);
                        tracing::debug!(uri = %target, ?addresses, "resolved");
                        match sansmq_driver::dial::reachable_from(&target, addresses, local) {
                            Ok(addresses) => {
                                let dialer = Dialer::new(now, target, addresses, local);
                                opening.stage = Stage::Dialing(dialer);
                            }
                            Err(error) => break Err(error),
                        }
                    }
                },
                Stage::Dialing(dialer) => match (dialer.advance(now, &self.registry), proxy) {
                    (Dialed::Pending, _) => return,
                    (Dialed::Failed(error), None) => break Err(error),
                    (Dialed::Failed(error), Some(proxy)) => {
                        break Err(sansmq_driver::dial::via_proxy(error, proxy, &opening.uri));
                    }
                    (Dialed::Connected(socket), None) => break Ok(Some(socket)),
                    (Dialed::Connected(socket), Some(proxy)) => {
                        match Proxying::new(socket, proxy, &opening.uri) {
                            Ok(proxying) => opening.stage = Stage::Proxying(proxying),
                            Err(error) => break Err(error),
                        }
                    }
                },
                Stage::Proxying(proxying) => match proxying.advance() {
                    Ok(false) => return,
                    Ok(true) => break Ok(None),
                    Err(error) => break Err(error),
                },
            }
        };
        let Some(Opening { uri, stage }) = self.opening.take() else {
            return;
        };
        let socket = match (result, stage) {
            (Ok(Some(socket)), _) => Ok(socket),
            (Ok(None), Stage::Proxying(proxying)) => Ok(proxying.into_socket()),
            (Ok(None), _) => return,
            (Err(error), stage) => {
                if let Stage::Proxying(mut proxying) = stage {
                    let _ = self.registry.deregister(proxying.socket());
                }
                Err(error)
            }
        };
        let opened = socket.and_then(|socket| {
            // Small packets (acks, pings) must not wait for Nagle's algorithm.
            let _ = socket.set_nodelay(true);
            // Through a proxy too, TLS names the broker.
            let tls = self.tls.as_ref().filter(|_| uri.tls);
            let headers = self.sup.options().websocket_headers();
            Transport::new(Socket::Tcp(socket), tls, &uri, headers)
        });
        self.opened(now, opened);
    }

    /// Hands the supervisor the opened transport, or why it could not be opened.
    fn opened(&mut self, now: Instant, opened: Result<Transport, Error>) {
        match opened {
            Ok(transport) => {
                self.transport = Some(transport);
                self.sup.handle_opened(now);
            }
            Err(error) => self.sup.handle_open_failed(now, error),
        }
    }

    /// Deregisters and closes the socket, and abandons an opening one.
    fn drop_socket(&mut self) {
        (self.read_more, self.closing, self.write_shut) = (false, false, false);
        match self.opening.take().map(|opening| opening.stage) {
            Some(Stage::Dialing(mut dialer)) => dialer.abandon(&self.registry),
            Some(Stage::Proxying(mut proxying)) => {
                let _ = self.registry.deregister(proxying.socket());
            }
            Some(Stage::Resolving(_)) | None => {}
        }
        if let Some(socket) = self.transport.as_mut().and_then(Transport::socket) {
            let _ = self.registry.deregister(socket);
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.transport = None;
    }

    fn on_event(&mut self, now: Instant, event: Event<Waiters>) {
        match event {
            Event::Connected { uri, reconnect, .. } => {
                let uri = uri.to_string();
                self.handoff
                    .send(CallbackEvent::ConnectComplete { reconnect, uri });
            }
            // Reconnecting waits for credentials: the application hears it as a second loss, with why.
            Event::ConnectionLost { cause, .. } | Event::WaitingForCredentials { cause } => {
                self.handoff.send(CallbackEvent::ConnectionLost(cause));
            }
            Event::Message(message) => {
                if let Some(key) = self.handoff.deliver(message) {
                    let _ = self.sup.ack(now, key);
                }
            }
            Event::Completed(Completed::Publish(token, qos, result)) => {
                let acknowledged = result.is_ok() && qos != QoS::AtMostOnce;
                if acknowledged && lock(&self.handoff.dispatch).callback.is_some() {
                    // `delivery_complete` sees the token complete: complete it first.
                    token.complete(result);
                    self.handoff.send(CallbackEvent::DeliveryComplete(token));
                } else {
                    self.finished.push((token, result));
                }
            }
            Event::Completed(Completed::Connect(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Subscribe(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Unsubscribe(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Disconnect(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Request(waiter, result)) => waiter.complete(result),
        }
    }

    /// The delivery tokens to complete once the lock is released: see [`finish`].
    pub(crate) fn take_finished(&mut self) -> Finished {
        Finished(std::mem::take(&mut self.finished))
    }

    /// The client is closing: every waiter fails, the socket closes, the callback thread ends
    /// once it has run what it was given, and the `messages()` receiver ends once it is emptied.
    pub(crate) fn shut_down(&mut self, now: Instant) {
        self.sup.shut_down(now);
        self.drive(now);
        self.drop_socket();
        self.handoff.close();
        crate::callback::lock(&self.handoff.dispatch).receiver = None;
    }
}

/// Delivery tokens whose result is known, to complete once the shell's lock is released.
#[must_use = "the tokens complete when `finish` is called"]
pub(crate) struct Finished(Vec<(DeliveryToken, Result<(), Error>)>);

impl Finished {
    /// Completes the tokens, waking their waiters once for the whole batch.
    pub(crate) fn finish(self) {
        for (token, result) in self.0 {
            token.complete(result);
        }
    }
}
