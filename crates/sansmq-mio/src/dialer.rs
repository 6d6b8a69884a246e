//! Opening a connection without blocking the IO thread: [`Lookup`] resolves the broker's host on a
//! short-lived thread of its own, and [`Dialer`] carries out a [`Dial`] (Happy Eyeballs, RFC 8305)
//! with non-blocking sockets on the client's `mio::Poll`.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token, Waker};
use sansmq_driver::Dial;

use crate::socket::connect_tcp;
use crate::{Error, ServerUri};

/// The mio token of the waker that application and DNS threads use to interrupt `poll`.
pub(crate) const WAKER: Token = Token(0);
/// The mio token of the broker connection.
pub(crate) const SOCKET: Token = Token(1);
/// The first mio token of connection attempts.
const FIRST_ATTEMPT: usize = 2;

/// A host name being resolved.
///
/// `getaddrinfo` blocks, for as long as the resolver takes (seconds when a DNS server does not
/// answer), and has no non-blocking form in std. On the IO thread it would stall every other
/// client duty — keep-alives, acknowledgements, timeouts — so a thread of its own resolves and
/// wakes the poll when done. An IP address needs no thread. A lookup that is no longer wanted is
/// dropped: its thread finishes on its own and its answer goes nowhere.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The addresses, known at once (an IP address) or received.
    Done(Result<Vec<SocketAddr>, Error>),
    /// The resolver thread's answer for `host` comes to `rx`.
    Waiting {
        host: String,
        rx: Receiver<Result<Vec<SocketAddr>, Error>>,
    },
}

impl Lookup {
    /// Starts resolving `host` (the broker's, or its proxy's); `waker` wakes the IO thread when
    /// the answer is in.
    pub(crate) fn start(host: &str, port: u16, waker: &Arc<Waker>) -> Self {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Self::Done(Ok(vec![SocketAddr::new(ip, port)]));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let (name, host) = (host.to_owned(), host.to_owned());
        let waker = Arc::clone(waker);
        let spawned = thread::Builder::new()
            .name("sansmq-dns".into())
            .spawn(move || {
                let resolved = resolve(&host, port);
                if tx.send(resolved).is_ok() {
                    let _ = waker.wake();
                }
            });
        match spawned {
            Ok(_) => Self::Waiting { host: name, rx },
            Err(e) => Self::Done(Err(Error::io("starting the DNS thread", &e))),
        }
    }

    /// The addresses, once resolved.
    pub(crate) fn poll(&mut self) -> Option<Result<Vec<SocketAddr>, Error>> {
        match self {
            Self::Done(result) => Some(std::mem::replace(result, Ok(Vec::new()))),
            Self::Waiting { host, rx } => match rx.try_recv() {
                Ok(result) => Some(result),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(Error::Dns {
                    host: host.clone(),
                    reason: "the resolver thread ended without an answer".into(),
                })),
            },
        }
    }
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| Error::Dns {
            host: host.to_owned(),
            reason: e.to_string(),
        })
}

/// One connection attempt in progress.
#[derive(Debug)]
struct Attempt {
    address: SocketAddr,
    socket: TcpStream,
}

/// What a [`Dialer`] has come to.
#[derive(Debug)]
pub(crate) enum Dialed {
    /// Attempts are in progress: wait for socket events or [`Dialer::poll_timeout`].
    Pending,
    /// This socket connected, now registered as [`SOCKET`]; the other attempts were dropped.
    Connected(TcpStream),
    /// Every address failed.
    Failed(Error),
}

/// Non-blocking connection attempts to a broker's addresses, started as its [`Dial`] says.
#[derive(Debug)]
pub(crate) struct Dialer {
    uri: ServerUri,
    /// The local address each attempt's socket is bound to, if any.
    local: Option<IpAddr>,
    plan: Dial,
    attempts: Vec<Attempt>,
    next_token: usize,
}

impl Dialer {
    /// A dial to `uri` (the broker, or its proxy) at `addresses`, from `local` when given.
    pub(crate) fn new(
        now: Instant,
        uri: ServerUri,
        addresses: Vec<SocketAddr>,
        local: Option<IpAddr>,
    ) -> Self {
        Self {
            uri,
            local,
            plan: Dial::new(now, addresses),
            attempts: Vec::new(),
            next_token: FIRST_ATTEMPT,
        }
    }

    /// Moves the dial on: collects the attempts that finished (call after any socket event or at
    /// [`poll_timeout`](Self::poll_timeout)) and starts those now due.
    pub(crate) fn advance(&mut self, now: Instant, registry: &Registry) -> Dialed {
        loop {
            if let Some((socket, address)) = self.collect(now, registry) {
                return self.connected(registry, socket, address);
            }
            let mut started = false;
            while let Some(address) = self.plan.poll_start(now) {
                tracing::debug!(uri = %self.uri, %address, "trying");
                started = true;
                if let Err(e) = self.start(address, registry) {
                    self.plan.handle_failed(now, address, e);
                }
            }
            if let Some(error) = self.plan.failure(&self.uri) {
                return Dialed::Failed(error);
            }
            if !started {
                return Dialed::Pending;
            }
            // A fresh attempt may already have an answer (a refusal on loopback is immediate).
        }
    }

    /// When the next address is due while attempts are in progress.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.plan.poll_timeout()
    }

    /// Drops every attempt in progress.
    pub(crate) fn abandon(&mut self, registry: &Registry) {
        for mut attempt in self.attempts.drain(..) {
            let _ = registry.deregister(&mut attempt.socket);
        }
    }

    fn start(&mut self, address: SocketAddr, registry: &Registry) -> io::Result<()> {
        let mut socket = connect_tcp(address, self.local)?;
        let token = Token(self.next_token);
        // Tokens of dropped attempts are not reused soon: a late event for one must not be
        // mistaken for another attempt's (it would only cause an extra check, but still).
        self.next_token = self
            .next_token
            .checked_add(1)
            .unwrap_or(FIRST_ATTEMPT)
            .max(FIRST_ATTEMPT);
        registry.register(&mut socket, token, Interest::WRITABLE)?;
        self.attempts.push(Attempt { address, socket });
        Ok(())
    }

    /// Checks every attempt in progress (a few at most): records failures, and takes out the
    /// first that connected.
    fn collect(&mut self, now: Instant, registry: &Registry) -> Option<(TcpStream, SocketAddr)> {
        let mut index = 0;
        while let Some(attempt) = self.attempts.get(index) {
            match connect_result(&attempt.socket) {
                None => index += 1,
                Some(Ok(())) => {
                    let attempt = self.attempts.swap_remove(index);
                    return Some((attempt.socket, attempt.address));
                }
                Some(Err(e)) => {
                    let mut attempt = self.attempts.swap_remove(index);
                    let _ = registry.deregister(&mut attempt.socket);
                    tracing::debug!(uri = %self.uri, address = %attempt.address, %e, "attempt failed");
                    self.plan.handle_failed(now, attempt.address, e);
                }
            }
        }
        None
    }

    fn connected(
        &mut self,
        registry: &Registry,
        mut socket: TcpStream,
        address: SocketAddr,
    ) -> Dialed {
        self.abandon(registry);
        tracing::debug!(uri = %self.uri, %address, "connected");
        match registry.reregister(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE) {
            Ok(()) => Dialed::Connected(socket),
            Err(e) => Dialed::Failed(Error::io("registering the socket", &e)),
        }
    }
}

/// Whether a non-blocking connect finished: `None` while in progress.
fn connect_result(socket: &TcpStream) -> Option<io::Result<()>> {
    match socket.take_error() {
        Ok(Some(e)) | Err(e) => return Some(Err(e)),
        Ok(None) => {}
    }
    match socket.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(e) => Some(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;

    /// Runs a dial to `addresses` on a poll of its own until it ends.
    fn dial(addresses: Vec<SocketAddr>, uri: &str) -> Result<TcpStream, Error> {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(8);
        let mut dialer = Dialer::new(Instant::now(), uri.parse().unwrap(), addresses, None);
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            match dialer.advance(Instant::now(), poll.registry()) {
                Dialed::Connected(socket) => return Ok(socket),
                Dialed::Failed(error) => return Err(error),
                Dialed::Pending => {}
            }
            assert!(Instant::now() < give_up, "the dial did not end");
            let timeout = dialer
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            poll.poll(&mut events, Some(timeout)).unwrap();
        }
    }

    #[test]
    fn a_refused_first_address_falls_through_to_a_listening_one() {
        // The broker listens on IPv4 only; the name resolved to ::1 first (issue 11 item 4).
        let broker = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = broker.local_addr().unwrap().port();
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let socket = dial(vec![v6, v4], &format!("tcp://localhost:{port}")).unwrap();
        assert_eq!(socket.peer_addr().unwrap(), v4);
        let (_, from) = broker.accept().unwrap();
        assert_eq!(from, socket.local_addr().unwrap());
    }

    #[test]
    fn every_address_failing_names_each_one() {
        let port = {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let error = dial(vec![v6, v4], &format!("tcp://localhost:{port}")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "connecting to tcp://localhost:{port}: [::1]:{port}: "
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("; 127.0.0.1:{port}: ")),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }

    #[test]
    fn an_ip_address_needs_no_resolver_thread() {
        let waker = Arc::new(Waker::new(Poll::new().unwrap().registry(), Token(0)).unwrap());
        let mut lookup = Lookup::start("::1", 1883, &waker);
        assert!(matches!(lookup, Lookup::Done(_)));
        let addresses = lookup.poll().unwrap().unwrap();
        assert_eq!(addresses, [SocketAddr::from((Ipv6Addr::LOCALHOST, 1883))]);
    }

    #[test]
    fn a_host_name_is_resolved_on_another_thread_that_wakes_the_poll() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let mut lookup = Lookup::start("localhost", 1883, &waker);
        assert!(matches!(lookup, Lookup::Waiting { .. }), "{lookup:?}");
        let mut events = Events::with_capacity(4);
        let give_up = Instant::now() + Duration::from_secs(10);
        let addresses = loop {
            if let Some(result) = lookup.poll() {
                break result.unwrap();
            }
            assert!(Instant::now() < give_up, "no answer");
            poll.poll(&mut events, Some(Duration::from_secs(1)))
                .unwrap();
        };
        assert!(
            addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 1883),
            "{addresses:?}"
        );
    }
}
