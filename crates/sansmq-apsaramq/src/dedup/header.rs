//! The message id header: [`tag`] puts a [`MessageId`] in front of a payload, [`untag`] reads it
//! back and gives the body; [`MessageIds`] makes ids unique per publisher.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{IdError, Key};
use crate::ClientId;

/// The bytes every header starts with: 0xFF, `MQID`, and the format version.
pub const HEADER_MAGIC: [u8; 6] = [0xFF, b'M', b'Q', b'I', b'D', 1];

/// The longest [`MessageId`], in bytes.
pub const MAX_ID_LEN: usize = 255;

/// An application message id: 1 to 255 visible ASCII characters (`!` to `~`), unique per message
/// of a publisher. A resent message keeps its id, so consumers can tell it from a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// Checks `id`: 1 to [`MAX_ID_LEN`] bytes of visible ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        check_id(id.as_bytes())?;
        Ok(Self(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&MessageId> for Key {
    fn from(id: &MessageId) -> Self {
        Key::from_checked(id.0.as_bytes())
    }
}

fn check_id(id: &[u8]) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            len: id.len(),
            max: MAX_ID_LEN,
        });
    }
    match id.iter().position(|b| !b.is_ascii_graphic()) {
        Some(position) => Err(IdError::NotVisibleAscii {
            position,
            byte: id.get(position).copied().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// Why a payload has no readable header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The payload does not start with [`HEADER_MAGIC`]'s first five bytes: it was not tagged.
    #[error("no message id header")]
    Missing,
    /// A header of a format version this crate does not know.
    #[error("message id header of version {0}; this reader knows version 1")]
    UnknownVersion(u8),
    /// The header says the id is longer than what follows, or the length byte is missing.
    #[error("message id header cut short: {len} bytes, the header needs {needed}")]
    Truncated {
        /// The payload's length.
        len: usize,
        /// The length the header announces (magic, length byte and id).
        needed: usize,
    },
    /// The id is empty or not visible ASCII.
    #[error("message id header with a bad id: {0}")]
    BadId(IdError),
}

/// `body` with `id`'s header in front, ready to publish. The header takes 7 bytes plus the id:
///
/// ```text
/// offset  0      1..5     5          6         7 .. 7+n         7+n ..
///         0xFF   "MQID"   version 1  n (1-255) the id, n bytes  the body, untouched
/// ```
///
/// The id is visible ASCII (`!` to `~`). The length prefix makes the header unambiguous whatever
/// the body holds, even a body that starts with a header of its own (only the outer one is read).
/// A payload that does not start with the 6 bytes `FF 4D 51 49 44 01` ([`HEADER_MAGIC`]) has no
/// header: no UTF-8 text does (0xFF never occurs in UTF-8), so neither does JSON; a binary
/// payload that does by chance must also carry a length byte and that many visible ASCII bytes
/// to be taken for one. (A consumer whose publishers never tag can rule it out:
/// [`Deduplicator::without_headers`](super::Deduplicator::without_headers).)
///
/// ```
/// use sansmq_apsaramq::dedup::{MessageId, tag, untag};
///
/// let id = MessageId::new("order-17").unwrap();
/// let payload = tag(&id, b"\x00\xffany bytes");
/// let (read, body) = untag(&payload).unwrap();
/// assert_eq!(read, id);
/// assert_eq!(&body[..], b"\x00\xffany bytes");
/// ```
pub fn tag(id: &MessageId, body: &[u8]) -> Bytes {
    let id = id.0.as_bytes();
    let mut out = BytesMut::with_capacity(HEADER_MAGIC.len() + 1 + id.len() + body.len());
    out.put_slice(&HEADER_MAGIC);
    // A MessageId is at most 255 bytes, so its length fits in the byte.
    out.put_u8(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.put_slice(id);
    out.put_slice(body);
    out.freeze()
}

/// Reads the header [`tag`] wrote: the id and the body after it (a slice of `payload`, no copy).
///
/// A payload without the header is [`HeaderError::Missing`]; one that starts like a header but
/// does not hold a whole, valid one is one of the other errors. Either way, use the whole payload
/// as the body: nothing was stripped.
pub fn untag(payload: &Bytes) -> Result<(MessageId, Bytes), HeaderError> {
    let (magic, version) = HEADER_MAGIC.split_at(HEADER_MAGIC.len() - 1);
    if !payload.starts_with(magic) {
        return Err(HeaderError::Missing);
    }
    let at_version = magic.len();
    match payload.get(at_version) {
        Some(v) if version.first() == Some(v) => {}
        Some(&v) => return Err(HeaderError::UnknownVersion(v)),
        None => {
            return Err(HeaderError::Truncated {
                len: payload.len(),
                needed: HEADER_MAGIC.len() + 1,
            });
        }
    }
    let at_len = HEADER_MAGIC.len();
    let Some(&id_len) = payload.get(at_len) else {
        return Err(HeaderError::Truncated {
            len: payload.len(),
            needed: at_len + 1,
        });
    };
    let body_start = at_len + 1 + usize::from(id_len);
    let Some(id) = payload.get(at_len + 1..body_start) else {
        return Err(HeaderError::Truncated {
            len: payload.len(),
            needed: body_start,
        });
    };
    check_id(id).map_err(HeaderError::BadId)?;
    // Visible ASCII is UTF-8.
    let id = String::from_utf8_lossy(id).into_owned();
    Ok((MessageId(id), payload.slice(body_start..)))
}

/// Makes [`MessageId`]s unique per publisher, `<client id>:<random>:<sequence>`: the client id
/// tells publishers apart, 64 random bits (drawn per `MessageIds`) tell apart the runs of one
/// publisher (a restart starts the sequence again), and the sequence counts from 1.
///
/// ```
/// use sansmq_apsaramq::ClientId;
/// use sansmq_apsaramq::dedup::{MessageIds, untag};
///
/// let mut ids = MessageIds::new(&ClientId::new("GID_demo", "publisher-1").unwrap());
/// let payload = ids.tag(b"hello");
/// let (id, body) = untag(&payload).unwrap();
/// assert!(id.as_str().starts_with("GID_demo@@@publisher-1:"));
/// assert!(id.as_str().ends_with(":1"));
/// assert_eq!(&body[..], b"hello");
/// assert_ne!(ids.next_id(), id);
/// ```
///
/// Not `Clone`: two copies would hand out the same ids, and a consumer would drop the second
/// message of each pair as a duplicate. Share one (behind a `Mutex`) or make one per task.
#[derive(Debug)]
pub struct MessageIds {
    prefix: String,
    next: u64,
}

impl MessageIds {
    /// Ids for the publisher `client_id`.
    pub fn new(client_id: &ClientId) -> Self {
        Self {
            prefix: format!("{}:{:016x}", client_id.as_str(), fastrand::u64(..)),
            next: 1,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> MessageId {
        let id = format!("{}:{}", self.prefix, self.next);
        self.next = self.next.wrapping_add(1);
        // A client id is at most 64 visible ASCII characters, so the id has at most
        // 64 + 1 + 16 + 1 + 20 = 102 of them.
        MessageId(id)
    }

    /// `body` tagged with the next id ([`tag`]). To resend a message, publish the same tagged
    /// payload again: the id must not change.
    pub fn tag(&mut self, body: impl AsRef<[u8]>) -> Bytes {
        tag(&self.next_id(), body.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MessageId {
        MessageId::new(s).unwrap()
    }

    #[test]
    fn the_header_is_the_documented_bytes() {
        assert_eq!(
            &tag(&id("ab"), b"xy")[..],
            b"\xffMQID\x01\x02abxy",
            "magic, version, length, id, body"
        );
    }

    #[test]
    fn round_trips_any_body() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let looks_like_a_header = tag(&id("inner"), b"inner body");
        for body in [
            &b""[..],
            b"x",
            &all_bytes,
            &HEADER_MAGIC,
            &looks_like_a_header,
            b"\xffMQID\x01\xff",
        ] {
            let payload = tag(&id("outer-1"), body);
            let (read, rest) = untag(&payload).unwrap();
            assert_eq!(read, id("outer-1"));
            assert_eq!(&rest[..], body, "only the outer header is stripped");
        }
    }

    #[test]
    fn the_longest_id_round_trips() {
        let long = id(&"~".repeat(MAX_ID_LEN));
        let (read, body) = untag(&tag(&long, b"b")).unwrap();
        assert_eq!(read, long);
        assert_eq!(&body[..], b"b");
    }

    #[test]
    fn payloads_without_the_header_are_recognised() {
        for payload in [
            &b""[..],
            b"hello",
            br#"{"id":1}"#,
            b"\xffMQI",
            b"\xfeMQID\x01\x01a",
            b"\x00\xffMQID\x01\x01a",
        ] {
            assert_eq!(
                untag(&Bytes::copy_from_slice(payload)),
                Err(HeaderError::Missing),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        let cases: [(&[u8], HeaderError); 6] = [
            (b"\xffMQID", HeaderError::Truncated { len: 5, needed: 7 }),
            (b"\xffMQID\x02\x01a", HeaderError::UnknownVersion(2)),
            (
                b"\xffMQID\x01",
                HeaderError::Truncated { len: 6, needed: 7 },
            ),
            (
                b"\xffMQID\x01\x05abc",
                HeaderError::Truncated {
                    len: 10,
                    needed: 12,
                },
            ),
            (b"\xffMQID\x01\x00body", HeaderError::BadId(IdError::Empty)),
            (
                b"\xffMQID\x01\x02a b",
                HeaderError::BadId(IdError::NotVisibleAscii {
                    position: 1,
                    byte: b' ',
                }),
            ),
        ];
        for (payload, error) in cases {
            assert_eq!(
                untag(&Bytes::copy_from_slice(payload)),
                Err(error),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn message_ids_are_checked() {
        assert_eq!(MessageId::new(""), Err(IdError::Empty));
        assert_eq!(
            MessageId::new("x".repeat(256)),
            Err(IdError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(
            MessageId::new("a\nb"),
            Err(IdError::NotVisibleAscii {
                position: 1,
                byte: b'\n'
            })
        );
        assert!(MessageId::new("é").is_err());
        assert_eq!(
            MessageId::new("GID_a@@@b:1").unwrap().as_str(),
            "GID_a@@@b:1"
        );
    }

    #[test]
    fn generated_ids_are_unique_per_publisher_and_run() {
        let client = ClientId::new("GID_test", "device-001").unwrap();
        let mut first = MessageIds::new(&client);
        let mut second = MessageIds::new(&client);
        let a: Vec<MessageId> = (0..3).map(|_| first.next_id()).collect();
        let b = second.next_id();
        assert!(a[0].as_str().starts_with("GID_test@@@device-001:"));
        assert!(a[0].as_str().ends_with(":1"));
        assert!(a[2].as_str().ends_with(":3"));
        assert_ne!(a[0], a[1]);
        assert_ne!(
            a[0], b,
            "another run of the same publisher draws another random part"
        );
        let longest = ClientId::new("GID_x", &"d".repeat(56)).unwrap();
        let mut ids = MessageIds::new(&longest);
        ids.next = u64::MAX;
        // Even the longest client id and sequence make a valid id.
        assert!(MessageId::new(ids.next_id().as_str()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_id_and_body_round_trip(
            id in "[!-~]{1,255}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let id = MessageId::new(id).unwrap();
            let (read, rest) = untag(&tag(&id, &body)).unwrap();
            proptest::prop_assert_eq!(read, id);
            proptest::prop_assert_eq!(&rest[..], &body[..]);
        }

        /// Whatever comes in: no panic, and a header read back is a valid one.
        #[test]
        fn arbitrary_payloads_never_panic(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            with_magic in proptest::bool::ANY,
        ) {
            let mut payload = if with_magic { HEADER_MAGIC.to_vec() } else { Vec::new() };
            payload.extend(tail);
            let payload = Bytes::from(payload);
            if let Ok((id, body)) = untag(&payload) {
                proptest::prop_assert!(MessageId::new(id.as_str()).is_ok());
                proptest::prop_assert_eq!(tag(&id, &body), payload);
            }
        }
    }
}
