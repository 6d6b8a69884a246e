//! Measures one MQTT 3.1.1 publisher relayed to one MQTT 3.1.1 subscriber through an in-process
//! broker: messages per second and the broker thread's CPU per message (from
//! `/proc/self/task/*/stat`, 10 ms ticks). Linux only.
//!
//! ```text
//! cargo run --release -p sansmq-broker --example relay -- [MESSAGES] [PAYLOAD_BYTES] [ROUNDS]
//! ```
//!
//! Build it from two commits (`CARGO_TARGET_DIR` apart) and run them alternately to compare:
//! it uses only `start` and `BrokerConfig`, which every version has.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::MqttString;
use sansmq::packet::{Connect, Packet, PacketDecoder, PacketId, PubAck, Publish, QoS, Subscribe};
use sansmq::{TopicFilter, TopicName};
use sansmq_broker::{BrokerConfig, start};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let messages = arg(0, 200_000);
    let payload = arg(1, 100);
    let rounds = arg(2, 3);
    println!("| QoS | messages | msgs/s | broker CPU µs/msg |");
    println!("|---|---|---|---|");
    for round in 0..rounds {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let (rate, cpu) = run(qos, messages, payload, round);
            println!("| {} | {messages} | {rate:.0} | {cpu:.2} |", qos as u8);
        }
    }
}

/// The broker thread's user + system time.
fn broker_cpu() -> Duration {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("sansmq-broker") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        for index in [11, 12] {
            ticks += fields
                .get(index)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_millis(ticks * 10)
}

fn connect(addr: SocketAddr, client_id: &str) -> (TcpStream, PacketDecoder) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut wire = BytesMut::new();
    let connect = Connect::new(MqttString::try_from(client_id).unwrap());
    connect.encode(&mut wire).unwrap();
    stream.write_all(&wire).unwrap();
    let mut decoder = PacketDecoder::new(1 << 24);
    next(&mut stream, &mut decoder); // CONNACK
    (stream, decoder)
}

fn next(stream: &mut TcpStream, decoder: &mut PacketDecoder) -> Packet {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(packet) = decoder.next_packet().unwrap() {
            return packet;
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed"),
            Ok(n) => decoder.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn run(qos: QoS, messages: usize, payload: usize, round: usize) -> (f64, f64) {
    // No output limit: QoS 0 messages are then never dropped for a subscriber that lags.
    let broker = start(BrokerConfig {
        max_queued_messages: 0,
        max_outgoing_bytes: 0,
        ..BrokerConfig::default()
    })
    .unwrap();
    let addr = broker.local_addr();
    let (mut subscriber, mut sub_decoder) = connect(addr, &format!("sub-{round}"));
    let mut wire = BytesMut::new();
    let filter = TopicFilter::try_from("bench/t").unwrap();
    Subscribe::new(PacketId::new(1).unwrap(), filter, qos)
        .encode(&mut wire)
        .unwrap();
    subscriber.write_all(&wire).unwrap();
    next(&mut subscriber, &mut sub_decoder); // SUBACK

    let (mut publisher, _) = connect(addr, &format!("pub-{round}"));
    // The publisher's PUBACKs are read and dropped, so the broker never waits for it.
    let mut drain = publisher.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while matches!(drain.read(&mut buf), Ok(n) if n > 0) {}
    });
    let body = Bytes::from(vec![0x55u8; payload]);
    let topic = TopicName::try_from("bench/t").unwrap();
    let cpu_before = broker_cpu();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut wire = BytesMut::new();
        for i in 0..messages {
            let mut publish = Publish::new(topic.clone(), body.clone());
            publish.qos = qos;
            if qos != QoS::AtMostOnce {
                publish.packet_id = PacketId::new((i % 65_535) as u16 + 1);
            }
            publish.encode(&mut wire).unwrap();
            if wire.len() >= 64 * 1024 {
                publisher.write_all(&wire).unwrap();
                wire.clear();
            }
        }
        publisher.write_all(&wire).unwrap();
        publisher
    });
    let mut acks = BytesMut::new();
    for _ in 0..messages {
        let Packet::Publish(publish) = next(&mut subscriber, &mut sub_decoder) else {
            panic!("expected PUBLISH");
        };
        if let Some(id) = publish.packet_id {
            PubAck::new(id).encode(&mut acks).unwrap();
        }
        if !acks.is_empty() && sub_decoder.buffered_len() == 0 {
            subscriber.write_all(&acks).unwrap();
            acks.clear();
        }
    }
    let elapsed = started.elapsed();
    let cpu = broker_cpu().saturating_sub(cpu_before);
    drop(sender.join());
    broker.shutdown();
    (
        messages as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / messages as f64,
    )
}
