//! The end-to-end test harness of sansmq: real brokers, broken networks and throwaway
//! certificates, for the tests and benches of every sansmq client.
//!
//! - [`Mosquitto`] starts a private mosquitto for one test on a free 127.0.0.1 port, from a
//!   generated config (users, persistence, limits, a TLS listener), and can kill, stop and restart
//!   it. It never touches a system broker.
//! - [`FaultProxy`] sits between a client and the broker and cuts or black-holes the connection on
//!   command, or cuts it periodically.
//! - [`ScriptedBroker`] runs a test's script for every connection: for what no real broker does on
//!   demand (ApsaraMQ's notices, a close on a forbidden topic) and exact checks of what a client sends.
//! - [`TestPki`] generates a CA, server and client certificates and a wrong CA as PEM files, and
//!   has OpenSSL encrypt the client key.
//! - [`Socks5Proxy`] is a SOCKS5 proxy (optionally with a login) that records what clients asked
//!   it to connect to.
//! - [`AlpnProbe`] is a TLS endpoint that records the ALPN protocols clients offer.
//! - [`WsBridge`] is MQTT over WebSocket in front of a TCP broker: it records the upgrade
//!   requests and cuts the broker's bytes into frames as asked ([`Framing`]).
//! - [`KillLoop`] runs a program again and again, killing it with `SIGKILL` at random moments
//!   (crash tests of session stores).
//! - [`scenario`] is what an e2e scenario needs of a client, implemented for every driver, so
//!   that each behaviour is written once and run against them all.
//!
//! A test that loses its link while talking to a broker:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Duration;
//!
//! use bytes::BytesMut;
//! use sansmq::packet::{Connect, Packet, PacketDecoder};
//! use sansmq_e2e::{FaultProxy, Mosquitto};
//!
//! let broker = Mosquitto::builder().persistence(true).start();
//! let proxy = FaultProxy::start(broker.addr());
//!
//! // A client connects through the proxy (a real test hands `proxy.url()` to a sansmq client).
//! let mut stream = TcpStream::connect(proxy.addr()).unwrap();
//! stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
//! let mut wire = BytesMut::new();
//! Connect::new("doc".try_into().unwrap()).encode(&mut wire).unwrap();
//! stream.write_all(&wire).unwrap();
//! let mut decoder = PacketDecoder::new(1024);
//! let mut buf = [0; 64];
//! let connack = loop {
//!     let n = stream.read(&mut buf).unwrap();
//!     decoder.extend_from_slice(&buf[..n]);
//!     if let Some(packet) = decoder.next_packet().unwrap() {
//!         break packet;
//!     }
//! };
//! assert!(matches!(connack, Packet::ConnAck(ack) if !ack.session_present));
//!
//! // The network fails: the client reads EOF or a reset.
//! assert_eq!(proxy.cut(), 1);
//! assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
//!
//! // So does the broker, and it comes back on the same port with its saved sessions.
//! broker.restart();
//! assert!(broker.is_running());
//! ```
//!
//! Everything is cleaned up on drop: the broker process is killed (printing the end of its log if
//! the test is failing), the proxy's threads end and the temporary directories are removed.
//!
//! mosquitto facts that shape these defaults (2.0.11): it drops messages for a slow subscriber
//! beyond `max_queued_messages` (so the harness sets 0, unlimited), and it disconnects an MQTT 3.1.1
//! publisher with more than `max_inflight_messages` (20) QoS 2 messages awaiting PUBREL.
//!
//! A mosquitto fault a QoS 2 test must allow for (2.0.11, and its source today): at a reconnect,
//! a message whose PUBREL it sent is marked "resend PUBREL"; if the client goes again before that
//! PUBREL is written, the next reconnect marks the message "publish" and mosquitto sends the
//! PUBLISH again after its PUBREL (against MQTT-4.3.3-1). A client that released the identifier
//! at the PUBREL must take that copy as a new message; `sansmq-cli`'s `session_dir` test reads
//! the log to tell these copies apart.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod alpn;
mod certs;
mod http_proxy;
mod kill_loop;
mod mosquitto;
mod openapi_stub;
mod paho;
mod port;
mod proxy;
mod proxy_server;
pub mod scenario;
mod scripted;
mod socks5;
mod wait;
mod ws_bridge;

pub use alpn::{AlpnOffer, AlpnProbe};
pub use certs::{CLIENT_COMMON_NAME, SERVER_NAMES, TestPki};
pub use http_proxy::HttpProxy;
pub use kill_loop::{KillLoop, Life, scale_from_env};
pub use mosquitto::{Mosquitto, MosquittoBuilder};
pub use openapi_stub::{OpenApiRequest, serve_openapi, serve_silence, signature_mismatch};
pub use paho::{python_with_paho, run_paho};
pub use port::free_port;
pub use proxy::FaultProxy;
pub use scripted::{Peer, ScriptedBroker};
pub use socks5::{Socks5Proxy, Socks5Target};
pub use wait::{PATIENCE, wait_until};
pub use ws_bridge::{Framing, Upgrade, WsBridge};
