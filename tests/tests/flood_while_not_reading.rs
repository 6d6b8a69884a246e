//! A broker that floods the client with packets that each ask for an acknowledgement (PUBREL, or
//! one QoS 2 PUBLISH re-sent with DUP over and over) and never reads those acknowledgements:
//! both clients stop reading once their transmit buffer is full, so TCP's window stops the broker
//! after a bounded number of bytes instead of the client's memory growing without end.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Packet, PacketId, PubRel, Publish, QoS};
use sansmq_e2e::{Peer, ScriptedBroker};

use common::options;

/// What a client that stopped reading may have taken: its transmit buffer (256 KiB) and one
/// read's worth of packets beyond it, plus what the kernel buffers for it on the way (its socket
/// receive buffer grows up to `tcp_rmem`'s maximum while the client reads fast).
fn bound() -> usize {
    kernel_receive_buffer_max() + 4 * 1024 * 1024
}

/// The broker gives up once this much is out: a client that never stops reading takes it all.
fn flood_limit() -> usize {
    2 * bound()
}

/// Linux's `net.ipv4.tcp_rmem` maximum (32 MiB on the test machines; 6 MiB is the kernel default).
fn kernel_receive_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(6 * 1024 * 1024)
}

/// No byte written for this long: the broker's writes are blocked.
const STALL: Duration = Duration::from_secs(2);
/// How long a flood may take before the test gives up.
const FLOOD_TIME: Duration = Duration::from_secs(120);

fn pubrel() -> Packet {
    Packet::PubRel(PubRel {
        packet_id: PacketId::MIN,
    })
}

fn duplicate_qos2_publish() -> Packet {
    Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "flood/t".try_into().expect("a valid topic"),
        packet_id: Some(PacketId::MIN),
        payload: Bytes::from_static(b"again"),
    })
}

/// A broker that accepts, then floods `packet` and reports how many bytes it got out.
fn flooding_broker(packet: fn() -> Packet) -> (ScriptedBroker, Receiver<usize>) {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let broker = ScriptedBroker::start(move |mut peer: Peer| {
        if peer.index() > 0 || peer.accept().is_none() {
            return;
        }
        let written = peer.flood(&packet(), flood_limit(), STALL);
        let _ = tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(written);
        peer.close();
    });
    (broker, rx)
}

fn assert_blocked(written: usize, what: &str) {
    assert!(
        written < bound(),
        "{what}: the broker wrote {written} bytes without reading and was never blocked"
    );
}

fn mio_flood(packet: fn() -> Packet, what: &str) {
    let (broker, written) = flooding_broker(packet);
    let client = sansmq_mio::Client::new(options(&broker.url(), "flooded-mio")).unwrap();
    // The application takes the one message at once, so its PUBRECs may go out.
    let _messages = client.messages(16);
    client.connect().unwrap();
    let written = written.recv_timeout(FLOOD_TIME).expect("the flood ends");
    assert_blocked(written, what);
    client.close();
}

fn tokio_flood(packet: fn() -> Packet, what: &str) {
    let (broker, written) = flooding_broker(packet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let (client, _events) =
        sansmq_tokio::Client::new(options(&broker.url(), "flooded-tokio")).unwrap();
    runtime.block_on(client.connect()).unwrap();
    let written = written.recv_timeout(FLOOD_TIME).expect("the flood ends");
    assert_blocked(written, what);
    drop(client);
}

#[test]
fn the_mio_client_stops_reading_pubrels_it_cannot_acknowledge() {
    mio_flood(pubrel, "PUBREL flood");
}

#[test]
fn the_mio_client_stops_reading_a_qos2_publish_resent_without_end() {
    mio_flood(duplicate_qos2_publish, "duplicate QoS 2 PUBLISH flood");
}

#[test]
fn the_tokio_client_stops_reading_pubrels_it_cannot_acknowledge() {
    tokio_flood(pubrel, "PUBREL flood");
}

#[test]
fn the_tokio_client_stops_reading_a_qos2_publish_resent_without_end() {
    tokio_flood(duplicate_qos2_publish, "duplicate QoS 2 PUBLISH flood");
}
