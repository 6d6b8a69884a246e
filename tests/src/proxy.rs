//! [`FaultProxy`]: a TCP proxy between a client and a broker that cuts or black-holes the
//! connection on command.

mod cutter;
mod link;

use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cutter::Cutter;
use link::Shared;

use crate::port;

/// A TCP proxy on `127.0.0.1:<free port>` in front of an upstream address (a broker), for tests
/// that break the network on purpose.
///
/// Each accepted connection gets its own upstream connection and a thread copying bytes each way
/// (blocking reads: an idle proxy uses no CPU). Commands act on the connections live at the time:
///
/// - [`cut`](Self::cut) resets them all, both ways, at once (a broker crash or a dropped NAT
///   entry); the client reads EOF or gets a connection-reset error, and may connect again;
/// - [`set_black_hole`](Self::set_black_hole) keeps them open but silently drops every byte in
///   both directions (a dead link that TCP does not notice): only keep-alive can detect it. The
///   end of a stream is swallowed too: when the broker gives up on a silent client, the client is
///   not told;
/// - [`cut_every`](Self::cut_every) cuts them periodically from a background thread.
///
/// While the upstream is down (a stopped broker), connections are accepted and then reset.
/// Dropping the proxy closes the listener and every connection, and joins all its threads.
///
/// ```
/// use std::time::Duration;
/// use sansmq_e2e::{FaultProxy, Mosquitto};
///
/// let broker = Mosquitto::start();
/// let proxy = FaultProxy::start(broker.addr());
/// // ... connect a client to proxy.url() instead of broker.url() ...
/// proxy.cut_every(Duration::from_millis(300));
/// proxy.stop_cutting();
/// assert_eq!(proxy.connections_accepted(), 0);
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    /// Kept to shut it down on drop.
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    cutter: Mutex<Option<Cutter>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free 127.0.0.1 port.
    ///
    /// # Panics
    ///
    /// If no port can be bound or no thread spawned.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = port::bind_unused();
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the proxy's address: {e}"));
        let shared = Arc::new(Shared::default());
        let accept_listener = listener
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the proxy's listener: {e}"));
        let accept_thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(&accept_listener, &shared, upstream))
                .unwrap_or_else(|e| panic!("cannot spawn the proxy's accept thread: {e}"))
        };
        Self {
            addr,
            upstream,
            listener,
            shared,
            accept_thread: Some(accept_thread),
            cutter: Mutex::new(None),
        }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where the proxy connects.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The proxy as a client URI: `tcp://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.addr.port())
    }

    /// The proxy as a TLS client URI, `ssl://127.0.0.1:port`, for a proxy in front of a TLS
    /// listener ([`Mosquitto::tls_addr`](crate::Mosquitto::tls_addr)): TLS passes through it
    /// untouched, and the broker's certificate is valid for `127.0.0.1`.
    pub fn tls_url(&self) -> String {
        format!("ssl://127.0.0.1:{}", self.addr.port())
    }

    /// Resets every live connection, both ways, at once; returns how many there were. The proxy
    /// goes on accepting new connections.
    pub fn cut(&self) -> usize {
        self.shared.cut()
    }

    /// While on, live and new connections stay open but every byte is silently dropped, both
    /// ways, and a side that closes meanwhile is not seen closing by the other. Bytes dropped are
    /// gone: turning it off resumes the streams wherever they are (which only makes sense if
    /// nothing was sent meanwhile), except that a connection whose other side closed while dark
    /// is reset by the first bytes sent into it.
    pub fn set_black_hole(&self, on: bool) {
        self.shared.black_hole.store(on, Ordering::SeqCst);
    }

    /// Whether the black hole is on.
    pub fn is_black_hole(&self) -> bool {
        self.shared.black_hole.load(Ordering::SeqCst)
    }

    /// Cuts every live connection about every `period` (± 20 % jitter) from a background thread,
    /// until [`stop_cutting`](Self::stop_cutting) or drop. Replaces a previous `cut_every`.
    pub fn cut_every(&self, period: Duration) {
        let mut cutter = self.lock_cutter();
        // Stop the old cutter before starting the new one, so two never run at once.
        drop(cutter.take());
        *cutter = Some(Cutter::start(Arc::clone(&self.shared), period));
    }

    /// Stops periodic cutting and waits for its thread to end; no cut happens after this returns.
    pub fn stop_cutting(&self) {
        drop(self.lock_cutter().take());
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open through the proxy now (accepted, connected upstream, not yet closed).
    pub fn live_connections(&self) -> usize {
        self.shared.live()
    }

    /// Cuts made so far, by [`cut`](Self::cut) or [`cut_every`](Self::cut_every), including those
    /// that found no connection to cut.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections closed by cuts so far.
    pub fn connections_cut(&self) -> u64 {
        self.shared.connections_cut.load(Ordering::SeqCst)
    }

    fn lock_cutter(&self) -> MutexGuard<'_, Option<Cutter>> {
        self.cutter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop_cutting();
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Stop listening now, and wake the accept loop so that it sees `stopping`. Shutting the
        // socket down rather than just closing it matters: a child process being spawned by
        // another test holds a copy of every descriptor until it execs, and a listener closed in
        // that window would go on accepting connections.
        if rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Read).is_err() {
            // Not Linux: wake accept() with a connection instead.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        }
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        self.shared.cut_all();
        self.shared.join_links();
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("black_hole", &self.is_black_hole())
            .field("live_connections", &self.live_connections())
            .field("connections_accepted", &self.connections_accepted())
            .field("cuts", &self.cuts())
            .finish_non_exhaustive()
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, upstream: SocketAddr) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                shared.spawn_link(client, upstream);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}
