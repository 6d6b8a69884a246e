//! [`ScriptedBroker`]: a fake broker whose every connection runs a test's script, for behaviour no
//! real broker shows on demand (ApsaraMQ's token notices, closing on a forbidden topic) and for
//! checking exactly what a client sends and when.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sansmq::packet::{ConnAck, ConnectReturnCode, Packet, PacketDecoder};

/// A listener on a free 127.0.0.1 port that runs `script` on a thread for each connection.
#[derive(Debug)]
pub struct ScriptedBroker {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ScriptedBroker {
    /// Starts listening; `script` gets each accepted connection.
    pub fn start(script: impl Fn(Peer) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a scripted broker");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let acceptor = {
            let connections = Arc::clone(&connections);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let index = connections.fetch_add(1, Ordering::SeqCst);
                            let script = Arc::clone(&script);
                            thread::spawn(move || script(Peer::new(stream, index)));
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
            connections,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `tcp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One client connection as a script sees it: packets in, packets out.
#[derive(Debug)]
pub struct Peer {
    stream: TcpStream,
    decoder: PacketDecoder,
    index: usize,
    closed: bool,
}

impl Peer {
    fn new(stream: TcpStream, index: usize) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            decoder: PacketDecoder::new(1024 * 1024),
            index,
            closed: false,
        }
    }

    /// Which connection this is, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The next packet, waiting at most `limit`; `None` on a timeout, a close or a decode error
    /// ([`is_closed`](Self::is_closed) tells them apart).
    pub fn recv_within(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = Instant::now() + limit;
        let mut buf = [0; 4096];
        loop {
            match self.decoder.next_packet() {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(_) => {
                    self.closed = true;
                    return None;
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return None;
            }
            match self.stream.read(&mut buf) {
                Ok(n) if n > 0 => self.decoder.extend_from_slice(buf.get(..n)?),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                _ => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    /// Whether the client closed the connection (or sent something undecodable).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next packet, waiting up to 10 s.
    pub fn recv(&mut self) -> Option<Packet> {
        self.recv_within(Duration::from_secs(10))
    }

    /// Sends `packet`; false when the client is gone.
    pub fn send(&mut self, packet: &Packet) -> bool {
        let mut wire = BytesMut::new();
        packet.encode(&mut wire).is_ok() && self.stream.write_all(&wire).is_ok()
    }

    /// Reads CONNECT and accepts it; the CONNECT, or `None` when the client sent something else.
    pub fn accept(&mut self) -> Option<sansmq::packet::Connect> {
        match self.recv()? {
            Packet::Connect(connect) => {
                self.send(&Packet::ConnAck(
                    ConnAck::new(ConnectReturnCode::Accepted).with_session_present(false),
                ));
                Some(*connect)
            }
            _ => None,
        }
    }

    /// Sends `packets` (the encoding of one or more whole packets) over and over without reading
    /// anything, as a hostile broker does, until `limit` bytes are out or no byte could be
    /// written for `stall` (the client stopped reading and TCP's window closed). Returns the
    /// bytes written. The socket's send buffer is made small first, so the count says what the
    /// client took, not what the kernel buffered here.
    pub fn flood(&mut self, packets: &[u8], limit: usize, stall: Duration) -> usize {
        if packets.is_empty() {
            return 0;
        }
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&self.stream, 16 * 1024);
        if self.stream.set_write_timeout(Some(stall)).is_err() {
            return 0;
        }
        let mut written = 0;
        let mut offset = 0;
        while written < limit {
            match self.stream.write(packets.get(offset..).unwrap_or_default()) {
                Ok(n) if n > 0 => {
                    written += n;
                    offset = (offset + n) % packets.len();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break, // a timeout (blocked), a close or an error
            }
        }
        written
    }

    /// Sends `bytes` as they are (garbage, a packet cut short); false when the client is gone.
    pub fn send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Ends the connection with a reset (RST) instead of a FIN, as a crashing host or a broker
    /// killed with unread data in its socket does.
    pub fn reset(self) {
        let _ = rustix::net::sockopt::set_socket_linger(&self.stream, Some(Duration::ZERO));
    }

    /// Closes the connection as a broker does: a FIN, after anything sent.
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
