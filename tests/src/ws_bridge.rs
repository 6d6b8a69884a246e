//! [`WsBridge`]: MQTT over WebSocket in front of a TCP broker (mosquitto), for the WebSocket
//! transports' tests. Debian's mosquitto 2.0.11 cannot open a `protocol websockets` listener, and
//! websockify refuses clients that offer only the `mqtt` subprotocol, so the bridge is ours, on
//! tungstenite (the WebSocket implementation of the Rust ecosystem): it accepts the upgrade,
//! records what the client asked for, and relays binary frames to and from the broker's TCP port,
//! cutting the broker's bytes into frames as a test asks.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

/// How the broker's bytes become WebSocket frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One frame per read from the broker.
    AsRead,
    /// Frames of at most this many bytes: an MQTT packet split over several frames.
    Split(usize),
    /// The broker's bytes gathered for this long into one frame: several packets in one frame.
    Coalesce(Duration),
}

/// What one client's upgrade request held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The request path and query (`/mqtt`).
    pub path: String,
    /// The subprotocols offered (`Sec-WebSocket-Protocol`), in order.
    pub protocols: Vec<String>,
    /// Every header, name in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
}

/// A WebSocket listener on a free 127.0.0.1 port relaying to `upstream`. It answers with the
/// `mqtt` subprotocol when offered (and refuses a client that offers subprotocols without
/// `mqtt`), records every upgrade request, sends a ping every `ping_every` when asked, and counts
/// the pongs that come back. Stops when dropped.
#[derive(Debug)]
pub struct WsBridge {
    addr: SocketAddr,
    upgrades: Arc<Mutex<Vec<Upgrade>>>,
    pongs: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// The settings of a bridge's connections.
#[derive(Debug, Clone, Copy)]
struct Relay {
    upstream: SocketAddr,
    framing: Framing,
    ping_every: Option<Duration>,
}

impl WsBridge {
    /// Relays to `upstream`, one frame per read.
    pub fn start(upstream: SocketAddr) -> Self {
        Self::start_with(upstream, Framing::AsRead, None)
    }

    /// Relays to `upstream` with `framing`, pinging each client every `ping_every`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn start_with(
        upstream: SocketAddr,
        framing: Framing,
        ping_every: Option<Duration>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the WebSocket bridge");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bridge's address");
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let pongs = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let relay = Relay {
            upstream,
            framing,
            ping_every,
        };
        let acceptor = {
            let (upgrades, pongs, stop) =
                (Arc::clone(&upgrades), Arc::clone(&pongs), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (upgrades, pongs, stop) =
                                (Arc::clone(&upgrades), Arc::clone(&pongs), Arc::clone(&stop));
                            thread::spawn(move || {
                                serve(client, relay, &upgrades, &pongs, &stop);
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
            upgrades,
            pongs,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Every upgrade request so far, in the order clients connected.
    pub fn upgrades(&self) -> Vec<Upgrade> {
        self.upgrades
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Pongs received from clients, in answer to the bridge's pings.
    pub fn pongs(&self) -> usize {
        self.pongs.load(Ordering::Relaxed)
    }
}

impl Drop for WsBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One client: the upgrade, then the relay until either side ends.
// The upgrade callback's error type is tungstenite's HTTP response, large by its nature.
#[allow(clippy::result_large_err)]
fn serve(
    client: TcpStream,
    relay: Relay,
    upgrades: &Mutex<Vec<Upgrade>>,
    pongs: &AtomicUsize,
    stop: &AtomicBool,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let record = |request: &Request, mut response: Response| {
        let protocols: Vec<String> = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
            .filter(|p| !p.is_empty())
            .collect();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        upgrades
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Upgrade {
                path,
                protocols: protocols.clone(),
                headers,
            });
        if protocols.iter().any(|p| p == "mqtt") {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
        } else if !protocols.is_empty() {
            let mut refusal = tungstenite::handshake::server::ErrorResponse::new(Some(
                "offer the mqtt subprotocol".to_owned(),
            ));
            *refusal.status_mut() = tungstenite::http::StatusCode::BAD_REQUEST;
            return Err(refusal);
        }
        Ok(response)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(client, record) else {
        return;
    };
    let Ok(mut broker) = TcpStream::connect(relay.upstream) else {
        let _ = ws.close(None);
        let _ = ws.flush();
        return;
    };
    let _ = broker.set_nonblocking(true);
    let _ = broker.set_nodelay(true);
    // Short reads on the client's socket: one thread serves both directions.
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(2)));
    pump(&mut ws, &mut broker, relay, pongs, stop);
}

/// Relays until either side closes or the bridge stops.
fn pump(
    ws: &mut WebSocket<TcpStream>,
    broker: &mut TcpStream,
    relay: Relay,
    pongs: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut buf = vec![0_u8; 64 * 1024];
    let mut pending = Vec::new();
    let mut gathering_since: Option<Instant> = None;
    let mut last_ping = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match ws.read() {
            Ok(Message::Binary(bytes)) => {
                if broker.set_nonblocking(false).is_err() || broker.write_all(&bytes).is_err() {
                    break;
                }
                let _ = broker.set_nonblocking(true);
            }
            Ok(Message::Pong(_)) => {
                pongs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) => {
                // tungstenite answers the close on the next flush.
                let _ = ws.flush();
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        let mut broker_closed = false;
        match broker.read(&mut buf) {
            Ok(0) => broker_closed = true,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                gathering_since.get_or_insert_with(Instant::now);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => broker_closed = true,
        }
        let due = match relay.framing {
            Framing::Coalesce(window) => {
                broker_closed || gathering_since.is_some_and(|since| since.elapsed() >= window)
            }
            Framing::AsRead | Framing::Split(_) => true,
        };
        if due && !pending.is_empty() {
            let chunk = match relay.framing {
                Framing::Split(size) => size.max(1),
                Framing::AsRead | Framing::Coalesce(_) => pending.len(),
            };
            for frame in pending.chunks(chunk) {
                if ws.send(Message::Binary(frame.to_vec().into())).is_err() {
                    return;
                }
            }
            pending.clear();
            gathering_since = None;
        }
        if let Some(every) = relay.ping_every {
            if last_ping.elapsed() >= every {
                last_ping = Instant::now();
                if ws.send(Message::Ping(Vec::new().into())).is_err() {
                    return;
                }
            }
        }
        if broker_closed {
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
    }
}
