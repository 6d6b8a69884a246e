//! Abusive clients all at once against a broker with small limits: trickled huge PUBLISHes, many
//! offline sessions with fan-out, a retained-message flood and a session flood. The broker's
//! accounted memory stays within its limits, a polite client is served throughout, and every
//! acknowledged message is either delivered or counted as dropped.

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{TestClient, connect_packet, eventually};
use sansmq::packet::{ConnectReturnCode, Packet, PubAck, Publish, QoS};
use sansmq_broker::{BrokerConfig, BrokerStats, start};

const MAX_INCOMING: usize = 1024 * 1024;
const MAX_QUEUED: usize = 1024 * 1024;
const MAX_RETAINED: usize = 1024 * 1024;
const MAX_SESSIONS: usize = 300;
const TRICKLERS: usize = 40;
const OFFLINE: usize = 200;
const FAN_OUT: usize = 50;
const POLITE: usize = 100;

/// Resident memory of this process (the broker runs in it), from /proc.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Checks the accounted numbers against the limits.
fn check_limits(stats: &BrokerStats, connections: usize) {
    // Small packets are always read (under 64 KiB per connection), and one big packet bigger
    // than the limit may arrive alone.
    let incoming_allowance = 64 * 1024 * connections + 2 * 1024 * 1024;
    assert!(
        stats.incoming_bytes <= MAX_INCOMING + incoming_allowance,
        "incoming {}",
        stats.incoming_bytes
    );
    // Messages sent at once to a client that keeps up are counted but not refused: the polite
    // subscriber's inflight window at most.
    assert!(
        stats.held_bytes <= MAX_QUEUED + 20 * 1024,
        "queued {}",
        stats.held_bytes
    );
    assert!(
        stats.retained_bytes <= MAX_RETAINED,
        "retained {}",
        stats.retained_bytes
    );
    assert!(
        stats.sessions <= MAX_SESSIONS,
        "sessions {}",
        stats.sessions
    );
}

#[test]
fn abusive_clients_stay_within_the_limits_and_a_polite_client_is_served() {
    let broker = start(BrokerConfig {
        max_packet_size: 2 * 1024 * 1024,
        max_incoming_bytes: MAX_INCOMING,
        max_total_queued_bytes: MAX_QUEUED,
        max_retained_messages: 0,
        max_retained_bytes: MAX_RETAINED,
        max_sessions: MAX_SESSIONS,
        ..Default::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let rss_before = rss_bytes();

    // The polite pair first, so that they have sessions.
    let (mut polite_sub, _) = TestClient::connect(addr, "polite-sub", true);
    polite_sub.subscribe("polite", QoS::AtLeastOnce);
    let (mut polite_pub, _) = TestClient::connect(addr, "polite-pub", true);

    // Offline persistent sessions that will be fanned out to.
    for i in 0..OFFLINE {
        let (mut client, _) = TestClient::connect(addr, &format!("offline-{i}"), false);
        client.subscribe("fan/#", QoS::AtLeastOnce);
        client.disconnect();
    }

    // Tricklers: each announces a 1.5 MiB PUBLISH and sends it 4 KiB at a time, from one thread.
    let stop = Arc::new(AtomicBool::new(false));
    let (ready, connected) = std::sync::mpsc::channel();
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut streams = Vec::new();
            for i in 0..TRICKLERS {
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut wire = BytesMut::new();
                Packet::from(connect_packet(&format!("trickler-{i}"), true, 0))
                    .encode(&mut wire)
                    .unwrap();
                let mut head = BytesMut::new();
                Publish::new(common::topic("huge"), Bytes::from(vec![0u8; 1536 * 1024]))
                    .encode(&mut head)
                    .unwrap();
                wire.extend_from_slice(&head[..head.len() - 1536 * 1024]);
                stream.write_all(&wire).unwrap();
                stream.set_nonblocking(true).unwrap();
                streams.push(stream);
            }
            let _ = ready.send(());
            let chunk = [0x42u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                for stream in &mut streams {
                    match stream.write(&chunk) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            streams
        })
    };

    connected.recv().unwrap();
    eventually(common::WAIT, "the tricklers connected", || {
        broker.stats().sessions >= OFFLINE + TRICKLERS + 2
    });

    // Retained flood: 300 topics of 8 KiB, three times what the limit holds.
    let (mut flooder, _) = TestClient::connect(addr, "flooder", true);
    let mut wire = BytesMut::new();
    for i in 0..300 {
        let mut publish = Publish::new(
            common::topic(&format!("retained/{i}")),
            Bytes::from(vec![7u8; 8 * 1024]),
        );
        publish.retain = true;
        publish.encode(&mut wire).unwrap();
    }
    flooder.send_raw(&wire);

    // Fan-out to the offline sessions, each message acknowledged to its publisher.
    let (mut fan, _) = TestClient::connect(addr, "fan", true);
    for _ in 0..FAN_OUT {
        fan.publish("fan/out", &[1u8; 1024], QoS::AtLeastOnce);
    }

    // Session flood: past max_sessions, CONNACK 0x03.
    let mut refused = 0;
    let mut extra = Vec::new();
    for i in 0..MAX_SESSIONS {
        let (client, ack) =
            TestClient::connect_with(addr, connect_packet(&format!("extra-{i}"), false, 60));
        match ack.code {
            ConnectReturnCode::Accepted => extra.push(client),
            ConnectReturnCode::ServerUnavailable => refused += 1,
            other => panic!("unexpected CONNACK {other:?}"),
        }
    }
    assert!(refused > 0);

    // The polite client is served all along, and the limits hold while it is.
    let connections = TRICKLERS + extra.len() + 8;
    let start_time = Instant::now();
    for i in 0..POLITE {
        // Bigger than what the fan-out leaves of the queue limit.
        let mut payload = vec![0u8; 2048];
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        polite_pub.publish("polite", &payload, QoS::AtLeastOnce);
        let publish = polite_sub.expect_publish();
        assert_eq!(publish.payload(), &payload[..]);
        polite_sub.send(PubAck::new(publish.packet_id.unwrap()));
        if i % 10 == 0 {
            check_limits(&broker.stats(), connections);
        }
    }
    println!("polite round trips: {POLITE} in {:?}", start_time.elapsed());
    let stats = broker.stats();
    check_limits(&stats, connections);
    assert!(stats.retained_refused > 0, "{stats:?}");
    assert!(stats.sessions_refused > 0);
    assert!(stats.incoming_bytes > 0, "the tricklers are being read");

    // Nothing acknowledged disappeared without a count: every offline session holds or dropped
    // each fan-out message, and the polite subscriber got all of its own.
    for i in 0..OFFLINE {
        let client = stats.client(&format!("offline-{i}")).unwrap();
        let held = client.queued_messages as u64 + client.inflight_messages as u64;
        assert_eq!(held + client.dropped, FAN_OUT as u64, "{client:?}");
    }
    assert!(
        stats.dropped > 0,
        "the fan-out must have hit the queue limit"
    );
    assert_eq!(stats.client("polite-sub").unwrap().dropped, 0);

    let rss_growth = rss_bytes().saturating_sub(rss_before);
    println!(
        "incoming {} B, queued {} B, retained {} B in {} topics, {} sessions; dropped {} \
         (QoS 1/2), {} retained and {} sessions refused; RSS growth {} KiB",
        stats.incoming_bytes,
        stats.held_bytes,
        stats.retained_bytes,
        stats.retained_messages,
        stats.sessions,
        stats.dropped,
        stats.retained_refused,
        stats.sessions_refused,
        rss_growth / 1024
    );
    // The limits sum to a few MiB; the allocator and the test's own clients add some.
    assert!(rss_growth < 64 * 1024 * 1024, "RSS grew {rss_growth} bytes");

    stop.store(true, Ordering::Relaxed);
    drop(trickle.join().unwrap());
    drop(extra);
    eventually(common::WAIT, "the tricklers' buffers released", || {
        broker.stats().incoming_bytes < 64 * 1024
    });
}
