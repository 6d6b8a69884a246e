//! [`Shell`]: the IO around the [`Supervisor`], behind the client's one lock. It opens the
//! transports the supervisor asks for (DNS off the IO thread, Happy Eyeballs, TLS), writes and
//! reads them, closes them, and hands the supervisor's events to the application. Both the IO
//! thread and application threads drive it, so a publish writes straight to the socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Waker};
use rustls::ClientConfig;
use sansmq::packet::QoS;
use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};
use sansmq_driver::{ConnectOptions, Error, ServerUri};

use crate::DeliveryToken;
use crate::callback::{CallbackEvent, Handoff, lock};
use crate::completion::Completion;
use crate::dialer::{Dialed, Dialer, Lookup};
use crate::transport::{ReadOutcome, Transport};

/// Bytes read per socket read, and about as many per turn of the IO loop.
const READ_BUFFER: usize = 64 * 1024;
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
}

/// A transport being opened.
enum Opening {
    /// The host is being resolved, off the IO thread.
    Resolving { uri: ServerUri, lookup: Lookup },
    /// Its addresses are being tried.
    Dialing(Dialer),
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
    read_buf: Box<[u8]>,
    /// The socket may hold unread bytes: reading stopped at its budget or for held callbacks.
    pub(crate) read_more: bool,
    /// The callback thread is blocked in a call on this client (a token's `wait`, `subscribe`):
    /// reading must not pause for callbacks then, or what it waits for is never read.
    pub(crate) callback_blocked: bool,
}

impl Shell {
    pub(crate) fn new(
        options: ConnectOptions,
        registry: Registry,
        waker: Arc<Waker>,
        handoff: Handoff,
    ) -> Result<Self, Error> {
        let tls = match options.uses_tls() {
            true => Some(sansmq_driver::tls::client_config(options.tls_options())?),
            false => None,
        };
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
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            read_more: false,
            callback_blocked: false,
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
        result = result.and_then(|()| transport.flush_tls());
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
    pub(crate) fn read(&mut self, now: Instant) {
        self.read_more = false;
        if self.transport.is_none() {
            return;
        }
        if !self.may_read(now) {
            self.read_more = true;
            return;
        }
        let budget = match self.handoff.is_clear() || self.callback_blocked {
            true => self.read_buf.len(),
            false => DUE_READ_BUDGET,
        };
        let Some(transport) = &mut self.transport else {
            return;
        };
        let sup = &mut self.sup;
        // Stop as soon as the supervisor is done with this socket (a refused CONNACK, a protocol
        // violation): what follows, even its end of stream, no longer concerns it, and reporting
        // that end would be taken for the end of the next transport it has asked for.
        let outcome = transport.read(&mut self.read_buf, budget, |bytes| {
            sup.handle_received(now, bytes);
            sup.wants_read()
        });
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
            Some(Opening::Dialing(dialer)) => dialer.poll_timeout(),
            _ => None,
        };
        let retry = self.handoff.retry().map(|after| now + after);
        [self.sup.poll_timeout(), dial, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long the IO thread may sleep.
    pub(crate) fn poll_wait(&self, now: Instant) -> Option<Duration> {
        if self.read_more && self.may_read(now) {
            // Unread bytes wait: only look for other events on the way.
            return Some(Duration::ZERO);
        }
        self.next_wakeup(now)
            .map(|at| at.saturating_duration_since(now))
    }

    fn open(&mut self, now: Instant, uri: ServerUri) {
        self.drop_socket();
        let lookup = Lookup::start(&uri, &self.waker);
        self.opening = Some(Opening::Resolving { uri, lookup });
        self.advance_opening(now);
    }

    /// Moves the opening transport on (after a wake-up, a dial socket's event, or its timer): from
    /// the resolved addresses to the dial, from the dial to a [`Transport`], or to a failure that
    /// names every address tried.
    pub(crate) fn advance_opening(&mut self, now: Instant) {
        let dialed = match &mut self.opening {
            None => return,
            Some(Opening::Resolving { uri, lookup }) => match lookup.poll() {
                None => return,
                Some(Err(error)) => Dialed::Failed(error),
                Some(Ok(addresses)) => {
                    tracing::debug!(%uri, ?addresses, "resolved");
                    let mut dialer = Dialer::new(now, uri.clone(), addresses);
                    let dialed = dialer.advance(now, &self.registry);
                    self.opening = Some(Opening::Dialing(dialer));
                    dialed
                }
            },
            Some(Opening::Dialing(dialer)) => dialer.advance(now, &self.registry),
        };
        let opened = match (dialed, self.opening.take()) {
            (Dialed::Pending, opening) => {
                self.opening = opening;
                return;
            }
            (Dialed::Failed(error), _) => Err(error),
            (Dialed::Connected(socket), Some(Opening::Dialing(dialer))) => {
                // Small packets (acks, pings) must not wait for Nagle's algorithm.
                let _ = socket.set_nodelay(true);
                let tls = self.tls.as_ref().filter(|_| dialer.uri().tls);
                Transport::new(socket, tls, &dialer.uri().host)
            }
            (Dialed::Connected(_), _) => return,
        };
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
        if let Some(Opening::Dialing(mut dialer)) = self.opening.take() {
            dialer.abandon(&self.registry);
        }
        if let Some(mut transport) = self.transport.take() {
            let _ = self.registry.deregister(transport.socket());
            let _ = transport.socket().shutdown(std::net::Shutdown::Both);
        }
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
                token.complete(result);
                if acknowledged && lock(&self.handoff.dispatch).callback.is_some() {
                    self.handoff.send(CallbackEvent::DeliveryComplete(token));
                }
            }
            Event::Completed(Completed::Connect(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Subscribe(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Unsubscribe(waiter, result)) => waiter.complete(result),
            Event::Completed(Completed::Disconnect(waiter, result)) => waiter.complete(result),
        }
    }

    /// The client is closing: every waiter fails, the socket closes, and the callback thread ends
    /// once it has run what it was given.
    pub(crate) fn shut_down(&mut self, now: Instant) {
        self.sup.shut_down(now);
        self.drive(now);
        self.drop_socket();
        self.handoff.close();
    }
}
