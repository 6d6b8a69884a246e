//! # sansmq: an MQTT 3.1/3.1.1 client engine without IO
//!
//! `sansmq` is the protocol half of an MQTT client: it turns bytes into packets and packets into
//! bytes, and (as the session layer grows) commands, received bytes and the current time into bytes
//! to send, events and the next deadline. It never opens a socket, spawns a thread or reads a clock:
//! a driver does that, so the same engine serves a blocking client, an async one, an embedded loop or
//! a fuzzer.
//!
//! ## The codec loop
//!
//! A driver reads into a [`PacketDecoder`](packet::PacketDecoder), drains whole packets from it,
//! and encodes what it sends into one buffer it writes as a whole:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use sansmq::packet::{Connect, Packet, PacketDecoder, PacketId, PubAck, Publish, QoS};
//! use sansmq::{MqttString, TopicName};
//!
//! // Outgoing: encode packets back to back into one buffer, then write it in one call.
//! let mut outgoing = BytesMut::new();
//! Connect::new(MqttString::try_from("sensor-17").unwrap()).encode(&mut outgoing).unwrap();
//!
//! // Incoming: whatever the transport read, cut anywhere.
//! let mut incoming = BytesMut::new();
//! let mut publish = Publish::new(TopicName::try_from("cmd/led").unwrap(), Bytes::from_static(b"on"));
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(1);
//! publish.encode(&mut incoming).unwrap();
//!
//! let mut decoder = PacketDecoder::new(256 * 1024);
//! let (first, second) = incoming.split_at(3);
//! for read in [first, second] {
//!     decoder.extend_from_slice(read);
//!     while let Some(packet) = decoder.next_packet().expect("a broken stream closes the connection") {
//!         if let Packet::Publish(p) = packet {
//!             assert_eq!(&p.payload[..], b"on"); // a slice of the read buffer, not a copy
//!             if let Some(id) = p.packet_id {
//!                 PubAck::new(id).encode(&mut outgoing).unwrap();
//!             }
//!         }
//!     }
//! }
//! assert_eq!(outgoing.len(), 2 + 10 + 11 + 4);
//! ```
//!
//! ## Rules enforced
//!
//! Decoding refuses everything MQTT 3.1.1 calls malformed, with a [`DecodeError`](packet::DecodeError)
//! naming the rule; encoding refuses to produce such a packet, with an
//! [`EncodeError`](packet::EncodeError). Strings are [`MqttString`], topics [`TopicName`] and
//! [`TopicFilter`], validated once when made.

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
