//! # sansmq: an MQTT 3.1, 3.1.1 and 5.0 client engine without IO
//!
//! `sansmq` is the protocol half of an MQTT client: a [`Client`] state machine that turns commands,
//! bytes received and the current time into bytes to send, [`Event`]s and the next deadline. It never
//! opens a socket, spawns a thread or reads a clock: a driver does that, so the same engine serves a
//! blocking client, an async one, an embedded loop, a simulation or a fuzzer.
//!
//! **Looking for a ready client?** You need not write a driver: [`sansmq-mio`] is a blocking
//! client with Paho's API (callbacks, delivery tokens, automatic reconnect), [`sansmq-tokio`] an
//! async one whose `publish(..).await` resolves at the broker's acknowledgement, and
//! [`sansmq-apsaramq`] adds Alibaba Cloud ApsaraMQ for MQTT's logins and rules to either. Each
//! re-exports the types of this crate it uses (`QoS`, `TopicName`, ...), so depend on it alone.
//! The `sansmq` command (crate `sansmq-cli`) publishes and subscribes from a shell.
//!
//! [`sansmq-mio`]: https://docs.rs/sansmq-mio
//! [`sansmq-tokio`]: https://docs.rs/sansmq-tokio
//! [`sansmq-apsaramq`]: https://docs.rs/sansmq-apsaramq
//!
//! ## Run loop
//!
//! A driver owns the transport and the clock, and repeats four steps. Inputs are `handle_*` methods
//! and commands; after each, drain the outputs (`poll_*`).
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpStream;
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use sansmq::packet::QoS;
//! use sansmq::{Client, Config, Event, MqttString, TopicName};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut socket = TcpStream::connect("127.0.0.1:1883")?;
//! let mut client = Client::new(Config::new(MqttString::try_from("sensor-17")?));
//! client.connect(Instant::now())?; // queues CONNECT
//! let mut buf = vec![0; 64 * 1024];
//! loop {
//!     // 1. Events: what happened, and the place to issue commands.
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::Connected { .. } => {
//!                 let topic = TopicName::try_from("sensors/17/temp")?;
//!                 let payload = Bytes::from_static(b"21.5");
//!                 client.publish(Instant::now(), topic, QoS::AtLeastOnce, false, payload)?;
//!             }
//!             Event::Published { .. } => client.disconnect(Instant::now(), Duration::ZERO)?,
//!             Event::Disconnected { reason } => {
//!                 // Write out what is left (DISCONNECT after a requested disconnect), then close.
//!                 if let Some(bytes) = client.poll_transmit() {
//!                     socket.write_all(bytes)?;
//!                 }
//!                 println!("disconnected: {reason}");
//!                 return Ok(());
//!             }
//!             _ => {}
//!         }
//!     }
//!     // 2. Transmit: many packets coalesce into one write; partial writes are fine.
//!     while let Some(bytes) = client.poll_transmit() {
//!         let n = socket.write(bytes)?;
//!         client.handle_transmitted(Instant::now(), n);
//!     }
//!     // 3. Wait for bytes, but no longer than the next deadline (keep-alive, CONNACK...).
//!     let timeout = client.poll_timeout().map(|at| at.saturating_duration_since(Instant::now()));
//!     socket.set_read_timeout(timeout.map(|t| t.max(Duration::from_millis(1))))?;
//!     // 4. Feed what happened back in.
//!     match socket.read(&mut buf) {
//!         Ok(0) => client.handle_closed(Instant::now()),
//!         Ok(n) => client.handle_received(Instant::now(), &buf[..n]),
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!             client.handle_timeout(Instant::now())
//!         }
//!         Err(_) => client.handle_closed(Instant::now()),
//!     }
//! }
//! # }
//! ```
//!
//! After [`Event::Disconnected`] the session (unacknowledged QoS 1/2 messages, the queue,
//! subscriptions) is still in the `Client`: open a new transport and call [`Client::connect`] again
//! to resume it. After the CONNACK every unacknowledged PUBLISH goes out again with DUP=1 and every
//! PUBREL again, in their original order, whatever the broker's session-present flag says
//! (MQTT-4.4.0-1; [`UnackedPolicy`](client::UnackedPolicy) can give them up instead when the broker
//! lost the session). `examples/tcp_driver.rs` is this loop as a complete program.
//!
//! ## MQTT 5
//!
//! Set [`Config::protocol`] to [`Protocol::Mqtt5`](packet::Protocol::Mqtt5) and the same client
//! speaks MQTT 5.0. CONNECT carries the limits the session enforces ([`Config::receive_maximum`],
//! [`Config::topic_alias_maximum`], the Maximum Packet Size from [`Config::max_packet_size`],
//! [`Config::session_expiry_interval`]) and [`Config::connect_properties`]; the CONNACK's terms
//! ([`Client::negotiated`]) bound the window, the packet size and the Topic Aliases the client
//! sets, replace the keep-alive, and make the client refuse locally what the server said it cannot
//! take. Messages carry [`Properties`](packet::Properties) both ways
//! ([`Client::publish_with`], [`Event::Message`]), Topic Aliases are handled on both sides, and
//! the server's failure Reason Codes come back as events ([`Event::PublishRefused`],
//! [`SubscribeRefused`](client::SubscribeRefused), [`DisconnectReason::ConnectRefused`],
//! [`DisconnectReason::ServerDisconnected`]). Enhanced authentication is an
//! [`Authenticator`](client::Authenticator).
//!
//! ```
//! use std::time::Instant;
//!
//! use sansmq::packet::{Properties, Protocol, QoS};
//! use sansmq::{Client, Config, MqttString, TopicName};
//!
//! let mut config = Config::new(MqttString::try_from("sensor-17").unwrap());
//! config.protocol = Protocol::Mqtt5;
//! config.session_expiry_interval = Some(3600); // keep the session an hour after a drop
//! config.topic_alias_maximum = 8; // let the server alias the topics it sends
//! let mut client = Client::new(config);
//! let now = Instant::now();
//! client.connect(now).unwrap();
//!
//! // A request: the reply comes to `replies/17`, tagged with the correlation data.
//! let mut properties = Properties::new();
//! properties.set_response_topic(Some(TopicName::try_from("replies/17").unwrap()));
//! properties.set_correlation_data(Some("req-1".into()));
//! properties.message_expiry_interval = Some(30); // useless after 30 s: given up if still queued
//! let topic = TopicName::try_from("requests/thermostat").unwrap();
//! client.publish_with(now, topic, QoS::AtLeastOnce, false, "get", properties).unwrap();
//! assert_eq!(client.queued_len(), 1); // sent after the CONNACK
//! ```
//!
//! ## The codec
//!
//! [`packet`] holds every control packet of MQTT 3.1.1 and 5.0 (and CONNECT in 3.1 form) with a
//! strict, zero-copy codec told the [`Protocol`](packet::Protocol) it speaks (`decode_in`,
//! `encode_in`; the functions without `_in` speak 3.1.1): a
//! [`PacketDecoder`](packet::PacketDecoder) turns bytes cut anywhere into packets
//! whose topics and payloads are slices of the read buffer, and each packet encodes in one pass:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use sansmq::packet::{Packet, PacketDecoder, PacketId, PubAck, Publish, QoS};
//! use sansmq::TopicName;
//!
//! let mut wire = BytesMut::new();
//! let mut publish = Publish::new(TopicName::try_from("cmd/led").unwrap(), Bytes::from_static(b"on"));
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(1);
//! publish.encode(&mut wire).unwrap();
//! PubAck::new(PacketId::new(1).unwrap()).encode(&mut wire).unwrap();
//!
//! let mut decoder = PacketDecoder::new(256 * 1024);
//! let mut packets = Vec::new();
//! for read in wire.chunks(3) {
//!     decoder.extend_from_slice(read);
//!     while let Some(packet) = decoder.next_packet().expect("a broken stream closes the connection") {
//!         packets.push(packet);
//!     }
//! }
//! assert_eq!(packets, [Packet::Publish(publish), Packet::PubAck(PubAck::new(PacketId::new(1).unwrap()))]);
//! ```
//!
//! Decoding refuses everything MQTT 3.1.1 calls malformed, with a [`DecodeError`](packet::DecodeError)
//! naming the rule; encoding refuses to produce such a packet, with an
//! [`EncodeError`](packet::EncodeError). Strings are [`MqttString`], topics [`TopicName`] and
//! [`TopicFilter`], validated once when made.
//!
//! ## Errors say who failed
//!
//! A command returns [`CommandError`] only for local misuse (not connected, queue full, packet too
//! large). Everything the broker does wrong (malformed bytes, protocol violations, silence past the
//! keep-alive) ends the connection with one [`Event::Disconnected`] whose [`DisconnectReason`] says
//! precisely why; nothing from the network can make the library panic.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod client;
pub mod packet;
mod string;
pub mod topic;

pub use client::{Client, CommandError, Config, DisconnectReason, Event};
pub use string::{MAX_STRING_LEN, MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};

/// The README's examples, compiled as doc tests so that what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
