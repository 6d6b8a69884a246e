//! `decode`: arbitrary bytes read as a packet stream with `Packet::read_in`, until it errs or wants
//! more, in MQTT 3.1.1 or MQTT 5.
//!
//! Input layout: `[protocol] [stream]`. The low bit of the first byte picks the protocol the stream
//! is read and re-encoded in: 0 is MQTT 3.1.1 (`Packet::read`, `encode`), 1 is MQTT 5
//! (`Packet::read_in(Protocol::Mqtt5, ..)`, `encode_in(Protocol::Mqtt5, ..)`); the other bits are
//! ignored.
//!
//! Checks that decoding never panics and that it is lossless. Every packet that decodes:
//! - encodes without error, and `encode` appends exactly `encoded_len()` bytes;
//! - decodes again, alone, to an equal packet;
//! - in MQTT 3.1.1, encodes to the frame it was read from, byte for byte, except the remaining
//!   length, which the decoder accepts in more bytes than needed (MQTT 3.1.1 section 2.2.3 does
//!   not forbid it) and the encoder writes in as few as possible;
//! - in MQTT 5, where the frame has more than one form (an acknowledgement's Reason Code 0x00
//!   written out or left off, properties in any order, Variable Byte Integers in more bytes than
//!   needed), keeps its first byte, encodes to no more bytes than the frame, and encoding the
//!   packet decoded from those bytes gives the same bytes again. (The target's first minutes found
//!   an AUTH of a Reason Code alone, without the Property Length MQTT 5.0 section 3.15.2.1
//!   requires, which the decoder took and the encoder wrote one byte longer; the decoder now
//!   refuses it as malformed.)
//!
//! A CONNECT is decoded by the protocol its own level names and encodes as that protocol, so a
//! level-5 CONNECT gets the MQTT 5 checks in a 3.1.1 stream and a level-4 one the 3.1.1 checks in
//! an MQTT 5 stream.
//!
//! Also: `Ok(None)` leaves the buffer alone, and the re-encoded stream decodes to the same packets.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sansmq::packet::{FrameHeader, Packet, Protocol};

/// Large enough for anything the fuzzer makes, small enough that a wild length is refused.
const MAX_PACKET_SIZE: usize = 1024 * 1024;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let protocol = if selector & 1 == 0 {
        Protocol::Mqtt311
    } else {
        Protocol::Mqtt5
    };

    let mut buf = BytesMut::from(data);
    let mut offset = 0; // where the next frame starts in `data`
    let mut packets = Vec::new();
    let mut reencoded = BytesMut::new();
    loop {
        let header = FrameHeader::parse_in(protocol, &buf, MAX_PACKET_SIZE);
        let packet = match Packet::read_in(protocol, &mut buf, MAX_PACKET_SIZE) {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                assert_eq!(buf.len(), data.len() - offset, "Ok(None) consumed bytes");
                break;
            }
            Err(_) => break,
        };
        let header = header
            .expect("Packet::read_in decoded a frame whose header does not parse")
            .expect("Packet::read_in decoded a frame whose header is incomplete");
        let frame = &data[offset..offset + header.frame_len()];
        offset += header.frame_len();
        assert_eq!(
            buf.len(),
            data.len() - offset,
            "Packet::read_in did not consume exactly the frame"
        );

        let start = reencoded.len();
        if let Err(error) = packet.encode_in(protocol, &mut reencoded) {
            panic!("{packet:?} decoded but does not encode as {protocol}: {error}");
        }
        let written = &reencoded[start..];
        assert_eq!(
            written.len(),
            packet.encoded_len_in(protocol),
            "encoded_len_in() is not what encode_in appended for {packet:?}"
        );
        if protocol == Protocol::Mqtt311 {
            // The functions a 3.1.1 client calls agree with the `_in` ones.
            let mut plain = BytesMut::new();
            assert_eq!(packet.encode(&mut plain), Ok(()));
            assert_eq!(
                &plain[..],
                written,
                "encode differs from encode_in(Mqtt311)"
            );
            assert_eq!(packet.encoded_len(), written.len());
        }
        let written_header = FrameHeader::parse_in(protocol, written, MAX_PACKET_SIZE)
            .expect("re-encoded header is invalid")
            .expect("re-encoded header is incomplete");
        assert_eq!(written_header.frame_len(), written.len());
        assert_eq!(written[0], frame[0], "first byte changed for {packet:?}");

        let mut again = BytesMut::from(written);
        let decoded = Packet::read_in(protocol, &mut again, MAX_PACKET_SIZE);
        assert_eq!(decoded, Ok(Some(packet.clone())));
        assert!(again.is_empty());

        let speaks_v5 = match &packet {
            Packet::Connect(connect) => connect.protocol.is_v5(),
            _ => protocol.is_v5(),
        };
        if speaks_v5 {
            assert!(
                written.len() <= frame.len(),
                "{packet:?} re-encodes to {} bytes, longer than its {}-byte frame",
                written.len(),
                frame.len()
            );
            let mut twice = BytesMut::new();
            if let Ok(Some(decoded)) = decoded {
                assert_eq!(decoded.encode_in(protocol, &mut twice), Ok(()));
            }
            assert_eq!(
                &twice[..],
                written,
                "encoding is not idempotent for {packet:?}"
            );
        } else {
            assert_eq!(
                &written[written_header.header_len()..],
                &frame[header.header_len()..],
                "body changed for {packet:?}"
            );
        }
        packets.push(packet);
    }

    let mut decoded_again = Vec::new();
    while let Some(packet) = Packet::read_in(protocol, &mut reencoded, MAX_PACKET_SIZE)
        .expect("a re-encoded stream does not decode")
    {
        decoded_again.push(packet);
    }
    assert!(
        reencoded.is_empty(),
        "bytes left over in a re-encoded stream"
    );
    assert_eq!(decoded_again, packets);
});
