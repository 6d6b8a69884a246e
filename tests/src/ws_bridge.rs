//! [`WsBridge`]: MQTT over WebSocket in front of a TCP broker (mosquitto), for the WebSocket
//! transports' tests. Debian's mosquitto 2.0.11 cannot open a `protocol websockets` listener, and
//! websockify refuses clients that offer only the `mqtt` subprotocol, so the bridge is ours, on
//! tungstenite (the WebSocket implementation of the Rust ecosystem): it accepts the upgrade,
//! records what the client asked for, and relays binary frames to and from the broker's TCP port,
//! cutting the broker's bytes into frames as a test asks. [`WsBridge::start_tls`] serves `wss://`
//! with the test PKI's server certificate.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::TestPki;

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
    closes: Arc<AtomicUsize>,
    client_frames: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    tls: bool,
}

/// The settings of a bridge's connections.
#[derive(Debug, Clone)]
struct Relay {
    upstream: SocketAddr,
    framing: Framing,
    ping_every: Option<Duration>,
    /// `wss://`: TLS with this server configuration under the WebSocket.
    tls: Option<Arc<ServerConfig>>,
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
        Self::launch(Relay {
            upstream,
            framing,
            ping_every,
            tls: None,
        })
    }

    /// A `wss://` bridge: TLS with `pki`'s server certificate (it names `localhost` and
    /// `127.0.0.1`) under the WebSocket, relaying to `upstream` with `framing`.
    ///
    /// # Panics
    ///
    /// If the PKI's server files do not load or no loopback port can be bound.
    pub fn start_tls(upstream: SocketAddr, pki: &TestPki, framing: Framing) -> Self {
        let chain = CertificateDer::pem_slice_iter(pki.server_cert_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the test server certificate");
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes())
            .expect("the test server key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server configuration");
        Self::launch(Relay {
            upstream,
            framing,
            ping_every: None,
            tls: Some(Arc::new(config)),
        })
    }

    fn launch(relay: Relay) -> Self {
        let tls = relay.tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the WebSocket bridge");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bridge's address");
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let pongs = Arc::new(AtomicUsize::new(0));
        let closes = Arc::new(AtomicUsize::new(0));
        let client_frames = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (upgrades, pongs, stop) =
                (Arc::clone(&upgrades), Arc::clone(&pongs), Arc::clone(&stop));
            let closes = Arc::clone(&closes);
            let client_frames = Arc::clone(&client_frames);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (upgrades, pongs, stop) =
                                (Arc::clone(&upgrades), Arc::clone(&pongs), Arc::clone(&stop));
                            let relay = relay.clone();
                            let closes = Arc::clone(&closes);
                            let client_frames = Arc::clone(&client_frames);
                            thread::spawn(move || {
                                let tally = Tally {
                                    pongs: &pongs,
                                    closes: &closes,
                                    client_frames: &client_frames,
                                };
                                serve(client, relay, &upgrades, tally, &stop);
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
            closes,
            client_frames,
            stop,
            acceptor: Some(acceptor),
            tls,
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port><path>`, or `wss://` for a bridge started with
    /// [`start_tls`](Self::start_tls).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
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

    /// Binary frames received from clients, over all connections.
    pub fn client_frames(&self) -> usize {
        self.client_frames.load(Ordering::Relaxed)
    }

    /// Close frames clients sent on their own, before any from the bridge (a client's own close
    /// handshake).
    pub fn closes(&self) -> usize {
        self.closes.load(Ordering::Relaxed)
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

/// What a connection counts for the bridge.
#[derive(Debug, Clone, Copy)]
struct Tally<'a> {
    pongs: &'a AtomicUsize,
    closes: &'a AtomicUsize,
    client_frames: &'a AtomicUsize,
}

/// One client: the upgrade, then the relay until either side ends.
// The upgrade callback's error type is tungstenite's HTTP response, large by its nature.
#[allow(clippy::result_large_err)]
fn serve(
    client: TcpStream,
    relay: Relay,
    upgrades: &Mutex<Vec<Upgrade>>,
    tally: Tally<'_>,
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
    match &relay.tls {
        None => {
            let Ok(ws) = tungstenite::accept_hdr(client, record) else {
                return;
            };
            relay_to_broker(ws, |ws| ws.get_ref(), &relay, tally, stop);
        }
        Some(config) => {
            let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
            let Ok(connection) = ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            let stream = StreamOwned::new(connection, client);
            let Ok(ws) = tungstenite::accept_hdr(stream, record) else {
                return;
            };
            relay_to_broker(ws, |ws| &ws.get_ref().sock, &relay, tally, stop);
        }
    }
}

/// Connects to the broker and relays; `socket` finds the client's TCP socket under the stream.
fn relay_to_broker<S: Read + Write>(
    mut ws: WebSocket<S>,
    socket: impl Fn(&WebSocket<S>) -> &TcpStream,
    relay: &Relay,
    tally: Tally<'_>,
    stop: &AtomicBool,
) {
    let Ok(mut broker) = TcpStream::connect(relay.upstream) else {
        let _ = ws.close(None);
        let _ = ws.flush();
        return;
    };
    let _ = broker.set_nonblocking(true);
    let _ = broker.set_nodelay(true);
    // Short reads on the client's socket: one thread serves both directions.
    let _ = socket(&ws).set_read_timeout(Some(Duration::from_millis(2)));
    pump(&mut ws, &mut broker, relay, tally, stop);
}

/// Relays until either side closes or the bridge stops.
fn pump<S: Read + Write>(
    ws: &mut WebSocket<S>,
    broker: &mut TcpStream,
    relay: &Relay,
    tally: Tally<'_>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0_u8; 64 * 1024];
    let mut pending = Vec::new();
    let mut gathering_since: Option<Instant> = None;
    let mut last_ping = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match ws.read() {
            Ok(Message::Binary(bytes)) => {
                tally.client_frames.fetch_add(1, Ordering::Relaxed);
                if broker.set_nonblocking(false).is_err() || broker.write_all(&bytes).is_err() {
                    break;
                }
                let _ = broker.set_nonblocking(true);
            }
            Ok(Message::Pong(_)) => {
                tally.pongs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(_)) => {
                tally.closes.fetch_add(1, Ordering::Relaxed);
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
            close_after_the_broker(ws, tally);
            return;
        }
    }
}

/// The broker closed: what the client sent before (its own Close right after DISCONNECT, say) is
/// read first, for a short while, so that its Close counts as its own; then the bridge closes.
fn close_after_the_broker<S: Read + Write>(ws: &mut WebSocket<S>, tally: Tally<'_>) {
    let drain_until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < drain_until {
        match ws.read() {
            Ok(Message::Close(_)) => {
                tally.closes.fetch_add(1, Ordering::Relaxed);
                let _ = ws.flush();
                return;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}
