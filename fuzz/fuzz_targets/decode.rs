//! `decode`: arbitrary bytes read as a packet stream with `Packet::read`, until it errs or wants more.
//!
//! Checks that decoding never panics and that it is lossless. Every packet that decodes:
//! - encodes without error, and `encode` appends exactly `encoded_len()` bytes;
//! - encodes to the frame it was read from, byte for byte, except the remaining length, which the
//!   decoder accepts in more bytes than needed (MQTT 3.1.1 section 2.2.3 does not forbid it) and the
//!   encoder writes in as few as possible;
//! - decodes again, alone, to an equal packet.
//!
//! Also: `Ok(None)` leaves the buffer alone, and the re-encoded stream decodes to the same packets.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sansmq::packet::{FrameHeader, Packet};

/// Large enough for anything the fuzzer makes, small enough that a wild length is refused.
const MAX_PACKET_SIZE: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut offset = 0; // where the next frame starts in `data`
    let mut packets = Vec::new();
    let mut reencoded = BytesMut::new();
    loop {
        let header = FrameHeader::parse(&buf, MAX_PACKET_SIZE);
        let packet = match Packet::read(&mut buf, MAX_PACKET_SIZE) {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                assert_eq!(buf.len(), data.len() - offset, "Ok(None) consumed bytes");
                break;
            }
            Err(_) => break,
        };
        let header = header
            .expect("Packet::read decoded a frame whose header does not parse")
            .expect("Packet::read decoded a frame whose header is incomplete");
        let frame = &data[offset..offset + header.frame_len()];
        offset += header.frame_len();
        assert_eq!(
            buf.len(),
            data.len() - offset,
            "Packet::read did not consume exactly the frame"
        );

        let start = reencoded.len();
        if let Err(error) = packet.encode(&mut reencoded) {
            panic!("{packet:?} decoded but does not encode: {error}");
        }
        let written = &reencoded[start..];
        assert_eq!(
            written.len(),
            packet.encoded_len(),
            "encoded_len() is not what encode appended for {packet:?}"
        );
        let written_header = FrameHeader::parse(written, MAX_PACKET_SIZE)
            .expect("re-encoded header is invalid")
            .expect("re-encoded header is incomplete");
        assert_eq!(written_header.frame_len(), written.len());
        assert_eq!(written[0], frame[0], "first byte changed for {packet:?}");
        assert_eq!(
            &written[written_header.header_len()..],
            &frame[header.header_len()..],
            "body changed for {packet:?}"
        );

        let mut again = BytesMut::from(written);
        assert_eq!(
            Packet::read(&mut again, MAX_PACKET_SIZE),
            Ok(Some(packet.clone()))
        );
        assert!(again.is_empty());
        packets.push(packet);
    }

    let mut decoded_again = Vec::new();
    while let Some(packet) =
        Packet::read(&mut reencoded, MAX_PACKET_SIZE).expect("a re-encoded stream does not decode")
    {
        decoded_again.push(packet);
    }
    assert!(
        reencoded.is_empty(),
        "bytes left over in a re-encoded stream"
    );
    assert_eq!(decoded_again, packets);
});
