//! What the test proxies ([`Socks5Proxy`](crate::Socks5Proxy), [`HttpProxy`](crate::HttpProxy))
//! share: a listener on a free loopback port, a thread per connection, the targets clients asked
//! for, the relay once a tunnel is open, and a drop that closes every connection and joins every
//! thread.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::port;

/// A listener serving each connection on a thread of its own with a handler.
pub(crate) struct ProxyServer<T> {
    addr: SocketAddr,
    listener: TcpListener,
    connections: Arc<Connections<T>>,
    accept_thread: Option<JoinHandle<()>>,
}

/// What the connections of one proxy share: the targets they were asked for, and their sockets
/// and threads, to close and join when the proxy is dropped.
pub(crate) struct Connections<T> {
    stopping: AtomicBool,
    targets: Mutex<Vec<T>>,
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Connections<T> {
    /// Records a target a client asked for.
    pub(crate) fn record(&self, target: T) {
        lock(&self.targets).push(target);
    }

    /// Copies bytes both ways between `client` and `upstream` until both ends closed.
    pub(crate) fn relay(&self, client: TcpStream, upstream: TcpStream) -> io::Result<()> {
        lock(&self.sockets).push(upstream.try_clone()?);
        let (client_reader, upstream_writer) = (client.try_clone()?, upstream.try_clone()?);
        let upward = thread::Builder::new()
            .name("test-proxy-up".into())
            .spawn(move || copy_then_close(client_reader, upstream_writer))?;
        copy_then_close(upstream, client);
        let _ = upward.join();
        Ok(())
    }
}

/// Copies until the end of `from`, then ends `to`'s write side.
fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

impl<T: Clone + Send + 'static> ProxyServer<T> {
    /// Listens on a free 127.0.0.1 port; `serve` handles each connection on its own thread
    /// (named `name`).
    ///
    /// # Panics
    ///
    /// If no port can be bound or no thread spawned.
    pub(crate) fn start(
        name: &'static str,
        serve: impl Fn(TcpStream, &Connections<T>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        let listener = port::bind_unused();
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the {name}'s address: {e}"));
        let connections = Arc::new(Connections {
            stopping: AtomicBool::new(false),
            targets: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_thread = {
            let listener = listener
                .try_clone()
                .unwrap_or_else(|e| panic!("cannot duplicate the {name}'s listener: {e}"));
            let connections = Arc::clone(&connections);
            let serve = Arc::new(serve);
            thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(name, &listener, &connections, &serve))
                .unwrap_or_else(|e| panic!("cannot spawn the {name}'s accept thread: {e}"))
        };
        Self {
            addr,
            listener,
            connections,
            accept_thread: Some(accept_thread),
        }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every target recorded so far, in order.
    pub(crate) fn targets(&self) -> Vec<T> {
        lock(&self.connections.targets).clone()
    }
}

fn accept_loop<T: Send + 'static>(
    name: &'static str,
    listener: &TcpListener,
    connections: &Arc<Connections<T>>,
    serve: &Arc<impl Fn(TcpStream, &Connections<T>) -> io::Result<()> + Send + Sync + 'static>,
) {
    for client in listener.incoming() {
        if connections.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if let Ok(copy) = client.try_clone() {
            lock(&connections.sockets).push(copy);
        }
        let (for_thread, serve) = (Arc::clone(connections), Arc::clone(serve));
        let spawned = thread::Builder::new()
            .name(format!("{name}-connection"))
            .spawn(move || {
                let _ = serve(client, &for_thread);
            });
        if let Ok(thread) = spawned {
            lock(&connections.threads).push(thread);
        }
    }
}

impl<T> Drop for ProxyServer<T> {
    fn drop(&mut self) {
        self.connections.stopping.store(true, Ordering::SeqCst);
        if rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Read).is_err() {
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        }
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        for socket in lock(&self.connections.sockets).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = lock(&self.connections.threads).drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}
