//! One proxied connection: two pumps copying bytes each way, and the registry that lets the proxy
//! cut every live connection at once.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the proxy waits for the upstream to accept a connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy's threads share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Set once, when the proxy is dropped.
    pub(super) stopping: AtomicBool,
    pub(super) black_hole: AtomicBool,
    pub(super) accepted: AtomicU64,
    pub(super) cuts: AtomicU64,
    pub(super) connections_cut: AtomicU64,
    links: Mutex<Links>,
}

#[derive(Debug, Default)]
struct Links {
    next_id: u64,
    /// Handles on the sockets of every live connection, to shut them down from outside.
    live: HashMap<u64, Link>,
    /// The thread serving each connection, joined when the proxy is dropped.
    threads: Vec<JoinHandle<()>>,
}

/// The two sockets of a proxied connection.
#[derive(Debug)]
struct Link {
    client: TcpStream,
    upstream: TcpStream,
}

impl Shared {
    /// Serves a connection the proxy accepted, on a thread of its own.
    pub(super) fn spawn_link(self: &Arc<Self>, client: TcpStream, upstream: SocketAddr) {
        let shared = Arc::clone(self);
        let thread = thread::Builder::new()
            .name("fault-proxy-link".into())
            .spawn(move || shared.serve(client, upstream))
            .unwrap_or_else(|e| panic!("cannot spawn a proxy thread: {e}"));
        let mut links = self.lock_links();
        links.threads.retain(|thread| !thread.is_finished());
        links.threads.push(thread);
    }

    /// [`cut_all`](Self::cut_all), counted as a cut.
    pub(super) fn cut(&self) -> usize {
        let cut = self.cut_all();
        self.cuts.fetch_add(1, Ordering::SeqCst);
        self.connections_cut.fetch_add(cut as u64, Ordering::SeqCst);
        cut
    }

    /// Closes every live connection both ways, abruptly: SO_LINGER 0 makes the close a reset, and
    /// bytes still in flight are discarded. Returns how many connections were cut.
    pub(super) fn cut_all(&self) -> usize {
        let cut: Vec<Link> = self
            .lock_links()
            .live
            .drain()
            .map(|(_, link)| link)
            .collect();
        for link in &cut {
            link.abort();
        }
        cut.len()
    }

    /// Joins every connection thread; call once the accept loop has ended and links are cut.
    pub(super) fn join_links(&self) {
        let threads = std::mem::take(&mut self.lock_links().threads);
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Connections being served now.
    pub(super) fn live(&self) -> usize {
        self.lock_links().live.len()
    }

    fn serve(&self, client: TcpStream, upstream: SocketAddr) {
        let upstream = match TcpStream::connect_timeout(&upstream, UPSTREAM_CONNECT_TIMEOUT) {
            Ok(upstream) => upstream,
            Err(_) => {
                // Upstream down (a stopped broker): the client sees its connection reset.
                abort(&client);
                return;
            }
        };
        // Small MQTT packets must not wait for Nagle's algorithm on either hop.
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let Some(id) = self.register(&client, &upstream) else {
            abort(&client);
            abort(&upstream);
            return;
        };
        let dark_end = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| self.pump(&upstream, &client, &dark_end));
            self.pump(&client, &upstream, &dark_end);
        });
        self.lock_links().live.remove(&id);
    }

    /// Adds a connection to the live set, unless the proxy is stopping.
    fn register(&self, client: &TcpStream, upstream: &TcpStream) -> Option<u64> {
        let link = Link {
            client: client.try_clone().ok()?,
            upstream: upstream.try_clone().ok()?,
        };
        let mut links = self.lock_links();
        // Checked under the lock that `cut_all` takes, so a stopping proxy misses no connection.
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let id = links.next_id;
        links.next_id += 1;
        links.live.insert(id, link);
        Some(id)
    }

    /// Copies `from` to `to` until either side closes or is cut, dropping the bytes while the
    /// black hole is on. Blocks in `read`: an idle connection costs no CPU.
    ///
    /// A black hole swallows the end of a stream too, as a dead link would: if `from` closes
    /// while it is on, `to` is not told (its owner must notice by itself, with keep-alive), and
    /// `dark_end` is set so that the first bytes that come the other way once the link is back
    /// reset the connection, as the peer's TCP would.
    fn pump(&self, mut from: &TcpStream, mut to: &TcpStream, dark_end: &AtomicBool) {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if self.black_hole.load(Ordering::SeqCst) {
                continue;
            }
            if dark_end.load(Ordering::SeqCst) {
                abort(from);
                abort(to);
                return;
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        if self.black_hole.load(Ordering::SeqCst) {
            dark_end.store(true, Ordering::SeqCst);
            return;
        }
        // One side is gone: end the other direction too, which wakes the other pump.
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }

    fn lock_links(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Link {
    fn abort(&self) {
        abort(&self.client);
        abort(&self.upstream);
    }
}

/// Resets a connection: SO_LINGER 0 turns the final close into an RST, and the shutdown wakes any
/// thread blocked reading or writing it (which then drops its handle, the last one).
fn abort(stream: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}
