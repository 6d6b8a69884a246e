//! Codec benches: sansmq against rumqttc's `mqttbytes::v4` codec (MQTT 3.1.1) and its
//! `v5::mqttbytes` codec (MQTT 5), side by side in one run.
//!
//! Run with `cargo bench -p sansmq-benches --bench codec` (or `cargo xtask bench`). Every case is one
//! criterion group holding two functions, `sansmq` and `rumqttc`, that do the same work, with
//! `Throughput::Bytes` of the frame (or of the whole stream):
//!
//! - **decode**: `Packet::read(&mut BytesMut, max)` on both sides (for MQTT 5, sansmq's
//!   `Packet::read_in(Protocol::Mqtt5, ..)` against rumqttc's `v5::mqttbytes::v5::Packet::read`),
//!   each iteration on a fresh `BytesMut` holding identical bytes, prepared as a read loop prepares
//!   its buffer (see [`input`]): a plain buffer the bytes were appended to, never split, so not
//!   shared. The buffers are made in `iter_batched_ref`'s untimed setup and dropped after the
//!   timed loop. Everything the decoder does is timed: finding the frame, splitting it off the
//!   buffer (for a buffer not yet shared, `bytes` allocates its shared header here, on both
//!   sides), parsing and validating. Dropping the decoded packet is timed too, as a client pays
//!   for it: rumqttc's 3.1.1 codec frees the topic `String` it allocated (its MQTT 5 codec keeps
//!   the topic as `Bytes`, but frees the `String`s of User Properties), sansmq releases the one
//!   reference count its PUBLISH holds (and the boxed properties of an MQTT 5 PUBLISH that has
//!   some). The mixed stream is one such buffer holding 1,000 frames: its first split shares it,
//!   the others bump a count.
//!
//!   Until December 2026 the setup split one byte off each buffer first, so the timed split only
//!   bumped a reference count. A read loop whose packets are gone by its next read does reuse a
//!   shared buffer that way, but one whose packets are still held (queued, or handed to the
//!   application) gets a new, unshared buffer and pays the allocation per read; the bench now
//!   times that, the less flattering case, for both libraries.
//! - **encode**: each library's own encoder for the packet type (`Publish::encode` against
//!   `Publish::write`, and so on; the `Packet` enums for the mixed stream; for MQTT 5
//!   `Publish::encode_in(Protocol::Mqtt5, ..)` against rumqttc's v5 `Publish::write`) into one
//!   `BytesMut` that is cleared before each iteration and keeps its capacity, so neither side
//!   allocates.
//!
//! Before anything is timed, [`PacketPair::checked_wire`] (for MQTT 5
//! [`sansmq_benches::V5PacketPair::checked_wire`]) asserts for every fixture that both libraries
//! encode it to the same bytes and decode each other's bytes back to the same packet.
//!
//! The MQTT 5 cases are PUBLISH at QoS 1 with 16 B and 1 KiB payloads, three ways: no properties
//! (`v5_publish_qos1_16B`), a Topic Alias (`…_alias`), and a Topic Alias with three User
//! Properties (`…_alias_3_user_props`); the topic stays in the frame beside the alias (see
//! [`sansmq_benches::publish_v5`]). Both libraries write properties in ascending identifier order,
//! so their frames are identical byte for byte and the check needs no looser comparison.
//!
//! Batches: `BatchSize::SmallInput` would put a tenth of a sample's iterations in one batch, which
//! for a decode of tens of nanoseconds is hundreds of thousands of input copies: gigabytes at
//! 64 KiB, and even for small frames far more than the caches hold, so the timed loop would mostly
//! measure cache misses on inputs written long before. [`batch`] bounds a batch to about
//! [`BATCH_BYTES`] of input instead (8 to 1,024 iterations), which keeps the inputs warm, as a
//! buffer the socket has just filled is, and keeps the timer's cost per batch small (a few
//! nanoseconds per iteration at 8, the same on both sides). The floor was 32 until December 2026:
//! 2 MiB of 64 KiB frames, the size of this machine's L2, so that case timed cache misses on frame
//! headers written 2 MiB earlier (about 20 ns on both sides).

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rumqttc::mqttbytes::v4 as r;
use rumqttc::v5::mqttbytes::v5 as r5;
use sansmq::packet::{self as s, Protocol};
use sansmq_benches::{
    MAX_PACKET_SIZE, PacketPair, V5_MAX_PACKET_SIZE, V5Properties, checked_stream, mixed_stream,
};

/// Input bytes copied for one timed batch of a decode bench.
const BATCH_BYTES: usize = 512 << 10;

/// Packets in the mixed-stream cases.
const STREAM_PACKETS: usize = 1000;

/// Iterations per batch for decoding `input_len` bytes: see the crate docs.
fn batch(input_len: usize) -> BatchSize {
    BatchSize::NumIterations((BATCH_BYTES / input_len.max(1)).clamp(8, 1024) as u64)
}

/// A fresh read buffer holding `wire`, as a read loop leaves it: a plain `BytesMut` that the bytes
/// were appended to, as [`sansmq::packet::PacketDecoder::extend_from_slice`] appends a read to an
/// empty buffer. It was never split, so it is not shared yet: the decoder's split pays the
/// allocation `bytes` makes when a buffer is first shared.
fn input(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(wire);
    buf
}

fn single_packets(c: &mut Criterion) {
    for len in [16, 1024, 64 * 1024] {
        let name = match len {
            16 => "publish_qos1_16B".to_owned(),
            _ => format!("publish_qos1_{}KiB", len / 1024),
        };
        let publish = sansmq_benches::publish(len);
        let wire = publish.clone().into_packets().checked_wire();
        decode(
            c,
            &name,
            &wire,
            |buf| s::Packet::read(buf, MAX_PACKET_SIZE),
            |buf| r::Packet::read(buf, MAX_PACKET_SIZE),
        );
        encode(
            c,
            &name,
            wire.len(),
            |buf| black_box(&publish.sansmq).encode(buf),
            |buf| black_box(&publish.rumqttc).write(buf),
        );
    }

    let connect = sansmq_benches::connect();
    let wire = connect.clone().into_packets().checked_wire();
    decode(
        c,
        "connect",
        &wire,
        |buf| s::Packet::read(buf, MAX_PACKET_SIZE),
        |buf| r::Packet::read(buf, MAX_PACKET_SIZE),
    );
    encode(
        c,
        "connect",
        wire.len(),
        |buf| black_box(&connect.sansmq).encode(buf),
        |buf| black_box(&connect.rumqttc).write(buf),
    );

    let subscribe = sansmq_benches::subscribe();
    let wire = subscribe.clone().into_packets().checked_wire();
    decode(
        c,
        "subscribe_10_filters",
        &wire,
        |buf| s::Packet::read(buf, MAX_PACKET_SIZE),
        |buf| r::Packet::read(buf, MAX_PACKET_SIZE),
    );
    encode(
        c,
        "subscribe_10_filters",
        wire.len(),
        |buf| black_box(&subscribe.sansmq).encode(buf),
        |buf| black_box(&subscribe.rumqttc).write(buf),
    );
}

/// MQTT 5 PUBLISH at QoS 1: 16 B and 1 KiB payloads, each without properties, with a Topic Alias,
/// and with a Topic Alias and three User Properties.
fn v5_publish(c: &mut Criterion) {
    for len in [16, 1024] {
        let size = match len {
            16 => "16B".to_owned(),
            _ => format!("{}KiB", len / 1024),
        };
        for (properties, suffix) in [
            (V5Properties::None, ""),
            (V5Properties::TopicAlias, "_alias"),
            (
                V5Properties::TopicAliasAndUserProperties,
                "_alias_3_user_props",
            ),
        ] {
            let name = format!("v5_publish_qos1_{size}{suffix}");
            let publish = sansmq_benches::publish_v5(len, properties);
            let wire = publish.clone().into_packets().checked_wire();
            decode(
                c,
                &name,
                &wire,
                |buf| s::Packet::read_in(Protocol::Mqtt5, buf, MAX_PACKET_SIZE),
                |buf| r5::Packet::read(buf, Some(V5_MAX_PACKET_SIZE)),
            );
            encode(
                c,
                &name,
                wire.len(),
                |buf| black_box(&publish.sansmq).encode_in(Protocol::Mqtt5, buf),
                |buf| black_box(&publish.rumqttc).write(buf),
            );
        }
    }
}

/// Decodes one frame per iteration with each library's `read`.
fn decode<SP, RP>(
    c: &mut Criterion,
    name: &str,
    wire: &Bytes,
    mut sansmq: impl FnMut(&mut BytesMut) -> SP,
    mut rumqttc: impl FnMut(&mut BytesMut) -> RP,
) {
    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("sansmq", |b| {
        b.iter_batched_ref(
            || input(wire),
            |buf| {
                let packet = sansmq(black_box(buf));
                black_box(&packet);
            },
            batch(wire.len()),
        );
    });
    group.bench_function("rumqttc", |b| {
        b.iter_batched_ref(
            || input(wire),
            |buf| {
                let packet = rumqttc(black_box(buf));
                black_box(&packet);
            },
            batch(wire.len()),
        );
    });
    group.finish();
}

/// Encodes one packet per iteration into a cleared buffer that keeps its capacity.
fn encode<SE, RE>(
    c: &mut Criterion,
    name: &str,
    frame_len: usize,
    mut sansmq: impl FnMut(&mut BytesMut) -> Result<(), SE>,
    mut rumqttc: impl FnMut(&mut BytesMut) -> Result<usize, RE>,
) {
    let mut group = c.benchmark_group(format!("encode/{name}"));
    group.throughput(Throughput::Bytes(frame_len as u64));
    let mut buf = BytesMut::with_capacity(frame_len);
    group.bench_function("sansmq", |b| {
        b.iter(|| {
            buf.clear();
            let result = sansmq(black_box(&mut buf));
            black_box(&buf);
            result
        });
    });
    group.bench_function("rumqttc", |b| {
        b.iter(|| {
            buf.clear();
            let result = rumqttc(black_box(&mut buf));
            black_box(&buf);
            result
        });
    });
    group.finish();
}

fn stream(c: &mut Criterion) {
    let packets = mixed_stream(STREAM_PACKETS);
    let wire = checked_stream(&packets);
    let (sansmq, rumqttc): (Vec<s::Packet>, Vec<r::Packet>) = packets
        .into_iter()
        .map(|PacketPair { sansmq, rumqttc }| (sansmq, rumqttc))
        .unzip();
    let name = format!("stream_{STREAM_PACKETS}_mixed");

    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("sansmq", |b| {
        b.iter_batched_ref(
            || input(&wire),
            |buf| {
                while let Ok(Some(packet)) = s::Packet::read(black_box(buf), MAX_PACKET_SIZE) {
                    black_box(&packet);
                }
            },
            batch(wire.len()),
        );
    });
    group.bench_function("rumqttc", |b| {
        b.iter_batched_ref(
            || input(&wire),
            |buf| {
                while let Ok(packet) = r::Packet::read(black_box(buf), MAX_PACKET_SIZE) {
                    black_box(&packet);
                }
            },
            batch(wire.len()),
        );
    });
    group.finish();

    let mut group = c.benchmark_group(format!("encode/{name}"));
    group.throughput(Throughput::Bytes(wire.len() as u64));
    let mut buf = BytesMut::with_capacity(wire.len());
    group.bench_function("sansmq", |b| {
        b.iter(|| {
            buf.clear();
            for packet in black_box(&sansmq) {
                if packet.encode(&mut buf).is_err() {
                    break;
                }
            }
            black_box(&buf);
        });
    });
    group.bench_function("rumqttc", |b| {
        b.iter(|| {
            buf.clear();
            for packet in black_box(&rumqttc) {
                if packet.write(&mut buf, MAX_PACKET_SIZE).is_err() {
                    break;
                }
            }
            black_box(&buf);
        });
    });
    group.finish();
}

criterion_group! {
    name = codec;
    // Modest defaults for a small shared machine; criterion's flags override them.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = single_packets, v5_publish, stream
}
criterion_main!(codec);
