//! `properties`: MQTT 5 property sections (section 2.2.2) decoded from arbitrary bytes, for every
//! kind of packet that carries one.
//!
//! The first byte picks the packet kind (`PropertyContext::ALL`), the rest is the section: its
//! Variable Byte Integer length, then the properties.
//!
//! Checks that:
//! - decoding never panics, and consumes no more than the input;
//! - a refusal names a Reason Code that is an error (0x80 or above), the one the session sends
//!   in its DISCONNECT;
//! - what decodes is valid for its packet kind and encodes again, to exactly `encoded_len()`
//!   bytes, which decode to the same properties (a sender's over-long lengths and property order
//!   are not kept, what they say is).

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sansmq::packet::{Properties, PropertyContext};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, section)) = data.split_first() else {
        return;
    };
    let context = PropertyContext::ALL[usize::from(kind) % PropertyContext::ALL.len()];
    let input = Bytes::copy_from_slice(section);
    let properties = match Properties::decode(context, &input) {
        Ok((properties, used)) => {
            assert!(
                used <= input.len(),
                "{context}: used {used} of {}",
                input.len()
            );
            properties
        }
        Err(error) => {
            assert!(
                error.reason_code().is_error(),
                "{context}: {error} gives a success code"
            );
            return;
        }
    };
    let mut wire = BytesMut::new();
    properties
        .encode(context, &mut wire)
        .unwrap_or_else(|e| panic!("{context}: decoded {properties:?} does not encode: {e}"));
    assert_eq!(
        wire.len(),
        properties.encoded_len(),
        "{context}: {properties:?}"
    );
    let wire = wire.freeze();
    let (again, used) = Properties::decode(context, &wire)
        .unwrap_or_else(|e| panic!("{context}: re-encoded {properties:?} does not decode: {e}"));
    assert_eq!(used, wire.len());
    assert_eq!(again, properties, "{context}");
});
