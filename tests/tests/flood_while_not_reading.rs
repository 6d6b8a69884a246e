//! A broker that never reads what the client sends must not grow the client, nor keep it on a
//! dead connection.
//!
//! - Floods of packets that each ask for an acknowledgement (PUBREL, or one QoS 2 PUBLISH re-sent
//!   with DUP over and over): an acknowledgement for an id still unwritten is not queued twice
//!   (the core keeps one per id) and the drivers stop reading while the transmit buffer is full
//!   ([`sansmq::Client::wants_read`]), so the process stays small however much the broker sends.
//! - A client whose own messages the broker never reads ends the connection once nothing could be
//!   written for the keep-alive interval ([`DisconnectReason::TransmitStalled`]).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::DisconnectReason;
use sansmq::packet::{Packet, PacketId, PubRel, Publish, QoS};
use sansmq_e2e::{Peer, ScriptedBroker};

use common::options;

/// The keep-alive of the clients whose messages the broker never reads: a transmit buffer that
/// nothing drains for this long ends the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// What each flooding broker sends.
const FLOOD_BYTES: usize = 128 * 1024 * 1024;

/// How much the test process may grow while every test of this file floods its client at once:
/// each client holds its buffers and one read's worth, whatever the broker sends (before the
/// fixes each grew by about what it was sent, and kept it after the connection closed).
const GROWTH_BOUND: usize = 64 * 1024 * 1024;

/// The test process's resident memory, from `/proc/self/status`.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// No byte written for this long: the broker's writes are blocked (a client that stopped
/// reading).
const STALL: Duration = Duration::from_secs(5);
/// How long a flood may take before the test gives up.
const FLOOD_TIME: Duration = Duration::from_secs(120);

fn pubrel() -> Packet {
    Packet::PubRel(PubRel::new(PacketId::MIN))
}

fn duplicate_qos2_publish() -> Packet {
    Packet::Publish({
        let mut publish = Publish::new(
            "flood/t".try_into().expect("a valid topic"),
            Bytes::from_static(b"again"),
        );
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = Some(PacketId::MIN);
        publish.dup = true;
        publish
    })
}

/// QoS 1 PUBLISHes with every packet id in turn, over and over: each is a new delivery that the
/// application acknowledges at once, so each queues its own PUBACK, and only the drivers' read
/// gate ([`sansmq::Client::wants_read`]) bounds what waits to be written.
fn qos1_publishes_with_every_id() -> Vec<u8> {
    let mut wire = bytes::BytesMut::new();
    for id in 1..=u16::MAX {
        let publish = Packet::Publish({
            let mut publish = Publish::new("f".try_into().expect("a valid topic"), Bytes::new());
            publish.qos = QoS::AtLeastOnce;
            publish.packet_id = PacketId::new(id);
            publish
        });
        publish.encode(&mut wire).expect("a PUBLISH encodes");
    }
    wire.to_vec()
}

/// What the broker can write to a client that stopped reading with a full transmit buffer: the
/// client's socket receive buffer (which grows up to `tcp_rmem`'s maximum while it reads fast),
/// plus the PUBLISHes whose PUBACKs fill the kernel's send buffer (`tcp_wmem`'s maximum) and
/// the 256 KiB transmit buffer (a 7-byte PUBLISH per 4-byte PUBACK), with room to spare.
fn read_gate_bound() -> usize {
    let sysctl_max = |name: &str, default: usize| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(default)
    };
    let receive = sysctl_max("tcp_rmem", 6 * 1024 * 1024);
    let send = sysctl_max("tcp_wmem", 4 * 1024 * 1024);
    receive + 2 * (send + 256 * 1024) + 8 * 1024 * 1024
}

/// A broker that accepts, then floods `packets` (whole packets, sent over and over) and reports
/// how many bytes it got out.
fn flooding_broker(packets: Vec<u8>) -> (ScriptedBroker, Receiver<usize>) {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let packets = Arc::new(packets);
    let broker = ScriptedBroker::start(move |mut peer: Peer| {
        if peer.index() > 0 || peer.accept().is_none() {
            return;
        }
        let written = peer.flood(&packets, FLOOD_BYTES, STALL);
        let _ = tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(written);
        peer.close();
    });
    (broker, rx)
}

/// `packet` encoded over and over into about 16 KiB, so that one write carries many.
fn encoded(packet: &Packet) -> Vec<u8> {
    let mut one = bytes::BytesMut::new();
    packet.encode(&mut one).expect("the packet encodes");
    one.repeat((16 * 1024 / one.len().max(1)).max(1))
}

/// A runtime for one tokio client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The highest resident memory of this process while `during` runs, sampled every 5 ms.
fn peak_rss_during<T>(during: impl FnOnce() -> T) -> (T, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let sampler = thread::spawn({
        let done = Arc::clone(&done);
        move || {
            let mut peak = rss();
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss());
                thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss())
        }
    });
    let result = during();
    done.store(true, Ordering::Relaxed);
    (result, sampler.join().unwrap_or(usize::MAX))
}

fn assert_small(rss_before: usize, peak: usize, written: usize, what: &str) {
    let grown = peak.saturating_sub(rss_before);
    assert!(
        grown < GROWTH_BOUND,
        "{what}: the process grew by {grown} bytes while {written} bytes were flooded at it"
    );
}

fn mio_flood(packet: fn() -> Packet, what: &str) {
    let (broker, written) = flooding_broker(encoded(&packet()));
    let rss_before = rss();
    let client = sansmq_mio::Client::new(options(&broker.url(), "flooded-mio")).unwrap();
    // The application takes the one message at once, so its PUBRECs may go out.
    let _messages = client.messages(16);
    let (written, peak) = peak_rss_during(|| {
        client.connect().unwrap();
        written.recv_timeout(FLOOD_TIME).expect("the flood ends")
    });
    assert_small(rss_before, peak, written, what);
    client.close();
}

fn tokio_flood(packet: fn() -> Packet, what: &str) {
    let (broker, written) = flooding_broker(encoded(&packet()));
    let rss_before = rss();
    let runtime = runtime();
    let _context = runtime.enter();
    let (client, _events) =
        sansmq_tokio::Client::new(options(&broker.url(), "flooded-tokio")).unwrap();
    let (written, peak) = peak_rss_during(|| {
        runtime.block_on(client.connect()).unwrap();
        written.recv_timeout(FLOOD_TIME).expect("the flood ends")
    });
    assert_small(rss_before, peak, written, what);
    drop(client);
}

#[test]
fn the_mio_client_stays_small_while_flooded_with_pubrels_it_cannot_acknowledge() {
    mio_flood(pubrel, "PUBREL flood");
}

#[test]
fn the_mio_client_stays_small_while_a_qos2_publish_is_resent_without_end() {
    mio_flood(duplicate_qos2_publish, "duplicate QoS 2 PUBLISH flood");
}

#[test]
fn the_tokio_client_stays_small_while_flooded_with_pubrels_it_cannot_acknowledge() {
    tokio_flood(pubrel, "PUBREL flood");
}

#[test]
fn the_tokio_client_stays_small_while_a_qos2_publish_is_resent_without_end() {
    tokio_flood(duplicate_qos2_publish, "duplicate QoS 2 PUBLISH flood");
}

#[test]
fn the_mio_client_stops_reading_while_its_pubacks_cannot_be_written() {
    let (broker, written) = flooding_broker(qos1_publishes_with_every_id());
    let client = sansmq_mio::Client::new(options(&broker.url(), "puback-flood-mio")).unwrap();
    // The application keeps up, so only the transmit buffer can stop reading.
    let messages = client.messages(1024);
    let drain = thread::spawn(move || while messages.recv().is_ok() {});
    client.connect().unwrap();
    let written = written.recv_timeout(FLOOD_TIME).expect("the flood ends");
    let bound = read_gate_bound();
    assert!(
        written < bound,
        "the broker wrote {written} bytes (bound {bound}) without reading a PUBACK: the client \
         kept reading with a full transmit buffer"
    );
    client.close();
    drop(client);
    let _ = drain.join();
}

#[test]
fn the_tokio_client_stops_reading_while_its_pubacks_cannot_be_written() {
    let (broker, written) = flooding_broker(qos1_publishes_with_every_id());
    let runtime = runtime();
    let _context = runtime.enter();
    let (client, mut events) =
        sansmq_tokio::Client::new(options(&broker.url(), "puback-flood-tokio")).unwrap();
    // The application keeps up, so only the transmit buffer can stop reading.
    runtime.spawn(async move { while events.recv().await.is_some() {} });
    runtime.block_on(client.connect()).unwrap();
    let written = written.recv_timeout(FLOOD_TIME).expect("the flood ends");
    let bound = read_gate_bound();
    assert!(
        written < bound,
        "the broker wrote {written} bytes (bound {bound}) without reading a PUBACK: the client \
         kept reading with a full transmit buffer"
    );
    drop(client);
}

/// A broker that accepts, then holds the connection without ever reading (its thread is
/// detached: the test does not wait for it).
fn deaf_broker() -> ScriptedBroker {
    ScriptedBroker::start(|mut peer: Peer| {
        if peer.accept().is_some() {
            thread::sleep(FLOOD_TIME);
        }
    })
}

/// More than the kernel buffers between the client and a broker that does not read.
const UNREAD_MESSAGES: usize = 64;

fn big_payload() -> Bytes {
    Bytes::from(vec![0x5a; 256 * 1024])
}

fn assert_stalled(cause: &str, started: Instant, what: &str) {
    assert_eq!(
        cause,
        DisconnectReason::TransmitStalled.to_string(),
        "{what}: the connection ended for another reason"
    );
    let took = started.elapsed();
    assert!(
        took < KEEP_ALIVE * 10,
        "{what}: the stalled connection lasted {took:?} (keep-alive {KEEP_ALIVE:?})"
    );
}

/// Sends the mio client's lost-connection causes.
struct LostCause(Mutex<mpsc::Sender<String>>);

impl sansmq_mio::Callback for LostCause {
    fn connection_lost(&self, cause: &sansmq_mio::Error) {
        let cause = match cause {
            sansmq_mio::Error::ConnectionLost(reason) => reason.to_string(),
            other => format!("{other:?}"),
        };
        let _ = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(cause);
    }
}

#[test]
fn the_mio_client_gives_up_a_broker_that_stops_reading_after_the_keep_alive() {
    let broker = deaf_broker();
    let client =
        sansmq_mio::Client::new(options(&broker.url(), "deaf-broker-mio").keep_alive(KEEP_ALIVE))
            .unwrap();
    let (lost_tx, lost) = mpsc::channel();
    client.set_callback(LostCause(Mutex::new(lost_tx)));
    client.connect().unwrap();
    let started = Instant::now();
    for _ in 0..UNREAD_MESSAGES {
        client
            .publish("deaf/t", big_payload(), QoS::AtMostOnce, false)
            .unwrap();
    }
    let cause = lost
        .recv_timeout(FLOOD_TIME)
        .expect("the connection is lost");
    assert_stalled(&cause, started, "mio");
    client.close();
}

#[test]
fn the_tokio_client_gives_up_a_broker_that_stops_reading_after_the_keep_alive() {
    let broker = deaf_broker();
    let runtime = runtime();
    let _context = runtime.enter();
    let (client, mut events) = sansmq_tokio::Client::new(
        options(&broker.url(), "deaf-broker-tokio").keep_alive(KEEP_ALIVE),
    )
    .unwrap();
    runtime.block_on(client.connect()).unwrap();
    let started = Instant::now();
    let cause = runtime.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..UNREAD_MESSAGES {
            let handle = client
                .publish_later("deaf/t", big_payload(), QoS::AtMostOnce, false)
                .await
                .unwrap();
            handles.push(handle);
        }
        tokio::time::timeout(FLOOD_TIME, async {
            while let Some(event) = events.recv().await {
                if let sansmq_tokio::Event::ConnectionLost { cause } = event {
                    return match cause {
                        sansmq_tokio::Error::ConnectionLost(reason) => reason.to_string(),
                        other => format!("{other:?}"),
                    };
                }
            }
            "the event stream ended".to_owned()
        })
        .await
        .expect("the connection is lost")
    });
    assert_stalled(&cause, started, "tokio");
    drop(client);
}
