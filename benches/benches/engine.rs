//! Engine bench: messages through the sans-IO client core alone (no IO), with the broker's answers
//! fed back, and the heap allocations each message costs once warm.
//!
//! Run with `cargo bench -p sansmq-benches --bench engine`. It first prints a table of
//! allocations per message in steady state (a counting global allocator around 100,000 messages
//! after a warm-up), then criterion measures messages per second (`Throughput::Elements`):
//!
//! - `engine/publish/qos{0,1,2}`: `Client::publish`, the PUBLISH taken from `poll_transmit`, the
//!   broker's PUBACK (QoS 1) or PUBREC, then PUBCOMP after the client's PUBREL (QoS 2) fed back,
//!   events drained;
//! - `engine/receive/qos{0,1,2}`: a PUBLISH from the broker (and PUBREL for QoS 2) fed in, the
//!   `Message` event taken, the client's acknowledgements drained.
//!
//! The broker side is precomputed bytes, so what is measured and counted is the client's own work.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sansmq::packet::{ConnAck, ConnectReturnCode, PacketId, Publish, QoS};
use sansmq::{Client, Config, Event, MqttString, TopicName};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// Counts every allocation the process makes.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// A client connected to a broker that is only precomputed answers, on a virtual clock.
struct Engine {
    client: Client,
    now: Instant,
    topic: TopicName,
    payload: Bytes,
    /// Incoming PUBLISH frames (with their PUBREL for QoS 2), one per QoS, ids cycling.
    incoming: [Vec<Bytes>; 3],
    next_incoming: usize,
}

fn ack(packet_type: u8, id: PacketId) -> [u8; 4] {
    let [hi, lo] = id.get().to_be_bytes();
    [packet_type, 0x02, hi, lo]
}

impl Engine {
    #[allow(clippy::disallowed_methods)] // a driver owns the clock; the bench is one
    fn new() -> Self {
        let mut config = Config::new(MqttString::try_from("bench").unwrap());
        config.keep_alive = Duration::ZERO;
        let mut client = Client::new(config);
        let now = Instant::now();
        client.connect(now).unwrap();
        let mut wire = BytesMut::new();
        ConnAck::new(ConnectReturnCode::Accepted)
            .encode(&mut wire)
            .unwrap();
        client.handle_received(now, &wire);
        let mut engine = Self {
            client,
            now,
            topic: TopicName::try_from("sensors/building-7/floor-3/temperature").unwrap(),
            payload: Bytes::from(vec![0x5A; 100]),
            incoming: Default::default(),
            next_incoming: 0,
        };
        engine.drain();
        for (slot, qos) in QOS.into_iter().enumerate() {
            engine.incoming[slot] = (1..=256u16)
                .map(|id| {
                    let mut publish = Publish::new(engine.topic.clone(), engine.payload.clone());
                    publish.qos = qos;
                    let mut wire = BytesMut::new();
                    if qos != QoS::AtMostOnce {
                        publish.packet_id = PacketId::new(id);
                    }
                    publish.encode(&mut wire).unwrap();
                    if qos == QoS::ExactlyOnce {
                        wire.extend_from_slice(&ack(0x62, PacketId::new(id).unwrap()));
                    }
                    wire.freeze()
                })
                .collect();
        }
        engine
    }

    /// Writes everything out and drops the events, as a driver would after each input.
    fn drain(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            let n = black_box(bytes).len();
            self.client.handle_transmitted(self.now, n);
        }
        while let Some(event) = self.client.poll_event() {
            black_box(event);
        }
    }

    fn publish(&mut self, qos: QoS) {
        let id = self
            .client
            .publish(
                self.now,
                self.topic.clone(),
                qos,
                false,
                self.payload.clone(),
            )
            .unwrap();
        self.drain();
        match (qos, id) {
            (QoS::AtLeastOnce, Some(id)) => {
                self.client.handle_received(self.now, &ack(0x40, id));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                self.client.handle_received(self.now, &ack(0x50, id));
                self.drain(); // PUBREL
                self.client.handle_received(self.now, &ack(0x70, id));
            }
            _ => {}
        }
        self.drain();
    }

    fn receive(&mut self, qos: QoS) {
        let frames = &self.incoming[qos as usize];
        let frame = &frames[self.next_incoming % frames.len()];
        self.next_incoming = self.next_incoming.wrapping_add(1);
        self.client.handle_received(self.now, frame);
        while let Some(event) = self.client.poll_event() {
            debug_assert!(matches!(event, Event::Message(_)));
            black_box(event);
        }
        self.drain();
    }
}

/// Allocations per message once warm, for each direction and QoS.
fn print_allocations() {
    const WARM_UP: u64 = 10_000;
    const MEASURED: u64 = 100_000;
    println!("allocations per message, steady state ({MEASURED} messages after {WARM_UP}):");
    for qos in QOS {
        for (direction, run) in [
            ("publish", Engine::publish as fn(&mut Engine, QoS)),
            ("receive", Engine::receive),
        ] {
            let mut engine = Engine::new();
            for _ in 0..WARM_UP {
                run(&mut engine, qos);
            }
            let region = Region::new(GLOBAL);
            for _ in 0..MEASURED {
                run(&mut engine, qos);
            }
            let stats = region.change();
            let allocations = stats.allocations + stats.reallocations;
            println!(
                "  {direction} {qos}: {:.4} allocations/message ({allocations} in all)",
                allocations as f64 / MEASURED as f64
            );
        }
    }
}

fn engine(c: &mut Criterion) {
    print_allocations();
    for (direction, run) in [
        ("publish", Engine::publish as fn(&mut Engine, QoS)),
        ("receive", Engine::receive),
    ] {
        let mut group = c.benchmark_group(format!("engine/{direction}"));
        group.throughput(Throughput::Elements(1));
        for qos in QOS {
            let mut engine = Engine::new();
            group.bench_function(format!("qos{}", qos as u8), |b| {
                b.iter(|| run(&mut engine, qos))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine
}
criterion_main!(benches);
