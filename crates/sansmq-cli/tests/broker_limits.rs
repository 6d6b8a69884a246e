//! `sansmq broker`'s limit flags reach the broker.

mod common;

use std::io::{ErrorKind, Read as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{BrokerProcess, run};

#[test]
fn max_sessions_flag_refuses_a_connect_past_it() {
    let broker = BrokerProcess::start(&["--max-sessions", "1"]);
    let port = broker.port();
    // A persistent session stays after its client leaves, and fills the broker.
    let first = run(&[
        "pub", "-p", port, "-i", "keeper", "-c", "-t", "t", "-m", "x", "-q", "1",
    ]);
    assert_eq!(first.code, Some(0), "{first:#?}");
    let second = run(&["pub", "-p", port, "-i", "other", "-t", "t", "-m", "x"]);
    assert_ne!(second.code, Some(0), "{second:#?}");
    let error = second.error_line().to_lowercase();
    assert!(error.contains("unavailable"), "{error}");
}

#[test]
fn connect_timeout_flag_closes_a_connection_that_sends_nothing() {
    let broker = BrokerProcess::start(&["--connect-timeout", "1"]);
    let mut idle = TcpStream::connect(&broker.addr).unwrap();
    // Well under the 10 s default, so only the flag can close it in time.
    idle.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    // Closed (end of stream, or reset), rather than still open when the read times out.
    let closed = match idle.read(&mut byte) {
        Ok(read) => read == 0,
        Err(error) => !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    };
    assert!(closed, "still open after {:?}", started.elapsed());
}

#[test]
fn mqtt_5_flags_reach_the_connack() {
    let broker = BrokerProcess::start(&[
        "--receive-maximum",
        "7",
        "--topic-alias-maximum",
        "3",
        "--max-keep-alive",
        "30",
    ]);
    let mut client = TcpStream::connect(&broker.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // MQTT 5 CONNECT: Clean Start, keep-alive 60 s, no properties, client id "k".
    let connect = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'k',
    ];
    std::io::Write::write_all(&mut client, &connect).unwrap();
    let mut decoder =
        sansmq::packet::PacketDecoder::with_protocol(1 << 16, sansmq::packet::Protocol::Mqtt5);
    let mut buf = [0u8; 256];
    let connack = loop {
        if let Some(packet) = decoder.next_packet().unwrap() {
            break packet;
        }
        let read = client.read(&mut buf).unwrap();
        assert!(read > 0, "closed before CONNACK");
        decoder.extend_from_slice(&buf[..read]);
    };
    let sansmq::packet::Packet::ConnAck(connack) = connack else {
        panic!("not a CONNACK: {connack:?}");
    };
    let p = connack.properties();
    assert_eq!(p.receive_maximum.map(|m| m.get()), Some(7));
    assert_eq!(p.topic_alias_maximum, Some(3));
    assert_eq!(p.server_keep_alive, Some(30), "60 s asked, 30 s the most");
}
