//! `decode_fragments`: a byte stream fed to `PacketDecoder` in fuzzer-chosen pieces.
//!
//! Checks that how the stream is cut changes nothing: fed piece by piece (draining `next_packet()`
//! after each piece), fed whole, and read whole with `Packet::read` (`Packet::read_in` for MQTT 5),
//! it gives the same packets, then the same error or none, and, without an error, the same number of bytes left buffered. After an
//! error, `next_packet()` keeps returning it.
//!
//! Input layout: `[protocol] [control] [cut sizes] [stream]`.
//! - The low bit of `protocol` picks what the stream is read as: 0 is MQTT 3.1.1
//!   (`PacketDecoder::new`, `Packet::read`), 1 is MQTT 5 (`PacketDecoder::with_protocol(..,
//!   Protocol::Mqtt5)`, `Packet::read_in(Protocol::Mqtt5, ..)`); the other bits are ignored.
//! - `control & 0x0F` is how many cut-size bytes follow. Piece lengths cycle through them; a 0 feeds
//!   an empty piece. No cut sizes, or only zeros, means one byte at a time.
//! - `control >> 4` picks the maximum packet size: 0 is 1 MiB, `k` is `32 * k` bytes, so frames over
//!   the limit (refused from the fixed header, even while the body is still arriving) get exercised.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sansmq::packet::{DecodeError, Packet, PacketDecoder, Protocol};

/// What decoding a whole stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    packets: Vec<Packet>,
    /// The error that broke the stream, if one did.
    error: Option<DecodeError>,
    /// Bytes still buffered at the end (an incomplete frame), when there was no error; after an
    /// error the piecewise decoder stops being fed, so it would not compare.
    buffered: Option<usize>,
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, input)) = input.split_first() else {
        return;
    };
    let protocol = if selector & 1 == 0 {
        Protocol::Mqtt311
    } else {
        Protocol::Mqtt5
    };
    let Some((&control, rest)) = input.split_first() else {
        return;
    };
    let cut_count = usize::from(control & 0x0F).min(rest.len());
    let max_packet_size = match control >> 4 {
        0 => 1024 * 1024,
        k => 32 * usize::from(k),
    };
    let (cuts, stream) = rest.split_at(cut_count);

    let whole = at_once(protocol, stream, max_packet_size);
    assert_eq!(
        read_whole(protocol, stream, max_packet_size),
        whole,
        "Packet::read_in disagrees with PacketDecoder"
    );
    assert_eq!(
        in_pieces(protocol, stream, cuts, max_packet_size),
        whole,
        "cut at {cuts:?}"
    );
});

/// The whole stream in one `extend_from_slice`.
fn at_once(protocol: Protocol, stream: &[u8], max_packet_size: usize) -> Outcome {
    let mut decoder = decoder(protocol, max_packet_size);
    decoder.extend_from_slice(stream);
    let mut packets = Vec::new();
    match drain(&mut decoder, &mut packets) {
        Ok(()) => Outcome {
            packets,
            error: None,
            buffered: Some(decoder.buffered_len()),
        },
        Err(error) => Outcome {
            packets,
            error: Some(error),
            buffered: None,
        },
    }
}

/// The stream in pieces whose lengths cycle through `cuts`, draining the decoder after each.
fn in_pieces(protocol: Protocol, stream: &[u8], cuts: &[u8], max_packet_size: usize) -> Outcome {
    let one_at_a_time = cuts.iter().all(|&c| c == 0);
    let mut sizes = cuts.iter().map(|&c| usize::from(c)).cycle();
    let mut decoder = decoder(protocol, max_packet_size);
    let mut packets = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let size = if one_at_a_time {
            1
        } else {
            sizes.next().unwrap_or(1)
        };
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        decoder.extend_from_slice(piece);
        if let Err(error) = drain(&mut decoder, &mut packets) {
            return Outcome {
                packets,
                error: Some(error),
                buffered: None,
            };
        }
    }
    Outcome {
        packets,
        error: None,
        buffered: Some(decoder.buffered_len()),
    }
}

/// A decoder for `protocol`: the 3.1.1 one a 3.1.1 client makes with `PacketDecoder::new`, which
/// must report that protocol.
fn decoder(protocol: Protocol, max_packet_size: usize) -> PacketDecoder {
    let decoder = if protocol == Protocol::Mqtt311 {
        PacketDecoder::new(max_packet_size)
    } else {
        PacketDecoder::with_protocol(max_packet_size, protocol)
    };
    assert_eq!(decoder.protocol(), protocol);
    decoder
}

/// Takes packets off `decoder` until it needs more bytes or fails; a failure must stick.
fn drain(decoder: &mut PacketDecoder, packets: &mut Vec<Packet>) -> Result<(), DecodeError> {
    loop {
        match decoder.next_packet() {
            Ok(Some(packet)) => packets.push(packet),
            Ok(None) => return Ok(()),
            Err(error) => {
                decoder.extend_from_slice(&[0xC0, 0x00]); // a PINGREQ cannot repair the stream
                assert_eq!(
                    decoder.next_packet(),
                    Err(error.clone()),
                    "error not remembered"
                );
                return Err(error);
            }
        }
    }
}

/// The whole stream read with `Packet::read` (`read_in` for MQTT 5), which re-parses the fixed header on every call.
fn read_whole(protocol: Protocol, stream: &[u8], max_packet_size: usize) -> Outcome {
    let mut buf = BytesMut::from(stream);
    let mut packets = Vec::new();
    loop {
        let read = if protocol == Protocol::Mqtt311 {
            Packet::read(&mut buf, max_packet_size)
        } else {
            Packet::read_in(protocol, &mut buf, max_packet_size)
        };
        match read {
            Ok(Some(packet)) => packets.push(packet),
            Ok(None) => {
                return Outcome {
                    packets,
                    error: None,
                    buffered: Some(buf.len()),
                };
            }
            Err(error) => {
                return Outcome {
                    packets,
                    error: Some(error),
                    buffered: None,
                };
            }
        }
    }
}
