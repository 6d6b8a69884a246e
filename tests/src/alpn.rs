//! [`AlpnProbe`]: a TLS MQTT endpoint that records the ALPN protocols each client offers, for what
//! mosquitto 2.0 cannot show (its listeners have no ALPN setting).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::BytesMut;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::Acceptor;
use sansmq::packet::{ConnAck, ConnectReturnCode, Packet, PacketDecoder};

use crate::TestPki;

/// What one client's ClientHello offered, and what the handshake settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlpnOffer {
    /// The protocols offered, in the client's order; empty when it sent no ALPN extension.
    pub offered: Vec<Vec<u8>>,
    /// The protocol both sides agreed on, if the handshake completed with one.
    pub negotiated: Option<Vec<u8>>,
}

/// A listener on a free 127.0.0.1 port that speaks TLS with the [`TestPki`]'s server certificate,
/// supports the ALPN protocols it was given, records every ClientHello's offer, and accepts every
/// CONNECT (answering PINGREQs) until the client leaves.
#[derive(Debug)]
pub struct AlpnProbe {
    addr: SocketAddr,
    offers: Arc<Mutex<Vec<AlpnOffer>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl AlpnProbe {
    /// Starts listening. With `supported` empty the server ignores ALPN; otherwise a client that
    /// offers none of them is refused with TLS's `no_application_protocol` alert.
    ///
    /// # Panics
    ///
    /// If the PKI's server files do not load or no port can be bound.
    pub fn start(pki: &TestPki, supported: &[&[u8]]) -> Self {
        Self::start_restricted(pki, supported, rustls::DEFAULT_VERSIONS, &[])
    }

    /// [`start`](Self::start) with a server that speaks only `versions` and, when `suites` is not
    /// empty, only those cipher suites: to see which a client offers.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), or when no suite of `suites` fits `versions`.
    pub fn start_restricted(
        pki: &TestPki,
        supported: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: &[rustls::CipherSuite],
    ) -> Self {
        let chain = CertificateDer::pem_slice_iter(pki.server_cert_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the test server certificate");
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem().as_bytes())
            .expect("the test server key");
        let mut provider = rustls::crypto::ring::default_provider();
        if !suites.is_empty() {
            provider
                .cipher_suites
                .retain(|s| suites.contains(&s.suite()));
        }
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .expect("the protocol versions fit the suites")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server configuration");
        config.alpn_protocols = supported.iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the ALPN probe");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let offers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (offers, stop) = (Arc::clone(&offers), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (offers, config) = (Arc::clone(&offers), Arc::clone(&config));
                            thread::spawn(move || serve(stream, &config, &offers));
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
            offers,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `ssl://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ssl://{}", self.addr)
    }

    /// What every client offered so far, in the order they connected.
    pub fn offers(&self) -> Vec<AlpnOffer> {
        self.offers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for AlpnProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection: read the ClientHello, record its offer, finish the handshake, then play a
/// broker that accepts the CONNECT.
fn serve(mut tcp: TcpStream, config: &Arc<ServerConfig>, offers: &Mutex<Vec<AlpnOffer>>) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        match acceptor.read_tls(&mut tcp) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err(_) => return,
        }
    };
    let offered: Vec<Vec<u8>> = accepted
        .client_hello()
        .alpn()
        .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    let record = |negotiated: Option<Vec<u8>>| {
        offers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(AlpnOffer {
                offered: offered.clone(),
                negotiated,
            });
    };
    let mut connection = match accepted.into_connection(Arc::clone(config)) {
        Ok(connection) => connection,
        Err((_, mut alert)) => {
            // No protocol in common: tell the client why, as a real server does.
            record(None);
            let _ = alert.write_all(&mut tcp);
            return;
        }
    };
    while connection.is_handshaking() {
        if connection.complete_io(&mut tcp).is_err() {
            record(None);
            return;
        }
    }
    record(connection.alpn_protocol().map(<[u8]>::to_vec));
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut decoder = PacketDecoder::new(64 * 1024);
    let mut buf = [0; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.extend_from_slice(&buf[..n]);
        while let Ok(Some(packet)) = decoder.next_packet() {
            let mut wire = BytesMut::new();
            match packet {
                Packet::Connect(_) => Packet::ConnAck(
                    ConnAck::new(ConnectReturnCode::Accepted).with_session_present(false),
                )
                .encode(&mut wire),
                Packet::PingReq => Packet::PingResp.encode(&mut wire),
                Packet::Disconnect(_) => return,
                _ => continue,
            }
            .expect("a CONNACK or PINGRESP encodes");
            if stream
                .write_all(&wire)
                .and_then(|()| stream.flush())
                .is_err()
            {
                return;
            }
        }
    }
}
