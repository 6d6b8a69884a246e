//! [`TlsFront`]: TLS termination with the [`TestPki`] server certificate in front of a plain
//! listener (e.g. a [`WsBridge`](crate::WsBridge), for `wss://`), relaying the decrypted bytes
//! both ways. One thread per connection, non-blocking sockets polled every millisecond.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use crate::TestPki;

/// A TLS listener on a free 127.0.0.1 port whose connections lead, decrypted, to `upstream`.
/// Stops when dropped.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Terminates TLS with `pki`'s server certificate (for `localhost` and `127.0.0.1`).
    ///
    /// # Panics
    ///
    /// If the certificate does not load or no loopback port can be bound.
    pub fn start(pki: &TestPki, upstream: SocketAddr) -> Self {
        let chain = CertificateDer::pem_slice_iter(pki.server_cert_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the test server certificate");
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes())
            .expect("the test server key");
        let provider = rustls::crypto::ring::default_provider();
        let config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("the default versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server configuration");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (config, stop) = (Arc::clone(&config), Arc::clone(&stop));
                            thread::spawn(move || {
                                let Ok(conn) = ServerConnection::new(config) else {
                                    return;
                                };
                                let Ok(upstream) = TcpStream::connect(upstream) else {
                                    return;
                                };
                                relay(conn, client, upstream, &stop);
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Moves bytes until either side ends or the front stops.
fn relay(
    mut conn: ServerConnection,
    mut client: TcpStream,
    mut upstream: TcpStream,
    stop: &AtomicBool,
) {
    if client.set_nonblocking(true).is_err() || upstream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let mut buf = vec![0_u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut moved = false;
        match conn.read_tls(&mut client) {
            Ok(0) => return,
            Ok(_) => {
                moved = true;
                if conn.process_new_packets().is_err() {
                    let _ = conn.write_tls(&mut client);
                    return;
                }
                loop {
                    match conn.reader().read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if write_all(&mut upstream, &buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(_) => break, // WouldBlock: nothing more decrypted
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        match upstream.read(&mut buf) {
            Ok(0) => {
                conn.send_close_notify();
                let _ = flush_tls(&mut conn, &mut client);
                return;
            }
            Ok(n) => {
                moved = true;
                if conn.writer().write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if flush_tls(&mut conn, &mut client).is_err() {
            return;
        }
        if !moved {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Writes what rustls has to send, waiting while the socket is full.
fn flush_tls(conn: &mut ServerConnection, client: &mut TcpStream) -> std::io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(client) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `write_all` on a non-blocking socket.
fn write_all(socket: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match socket.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
