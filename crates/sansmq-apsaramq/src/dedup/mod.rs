//! Idempotent consumption: a [`Deduplicator`] that lets each message through once, however often
//! it arrives. This is the answer to the ApsaraMQ quick-start's advice to "implement
//! deduplication to ensure idempotent consumption".
//!
//! ## Why messages arrive more than once
//!
//! QoS 1 is *at least once*. ApsaraMQ re-delivers a QoS 1 message its consumer has not
//! acknowledged every 5–10 s while it is connected, and again after a reconnect; a publisher that
//! missed a PUBACK sends its message again. sansmq's clients already drop a re-delivery of a
//! message whose acknowledgement they still hold, so a handler that is merely slow is not called
//! twice for one delivery. Copies still reach the application when:
//!
//! - the publisher sent the message again (its own retry, or its session resent after a lost
//!   PUBACK): a new MQTT message as far as the broker is concerned;
//! - the acknowledgement was lost (the connection dropped after the application acknowledged but
//!   before the broker had the PUBACK), or crossed a re-delivery on the wire;
//! - a new client, or a new process, takes over the session after the previous one handled the
//!   message but did not acknowledge it (it crashed, or was closed).
//!
//! **MQTT packet ids cannot tell these copies apart**: the id belongs to one hop and one
//! session, a publisher's resend is a new message to the broker with an id of the broker's
//! choosing, and a re-delivery on a new connection may carry another id; meanwhile a different
//! message may reuse an id that was acknowledged. The key has to come from the message itself:
//!
//! - **a message id header** (its format is at [`tag`]): the publisher tags each payload with
//!   [`MessageIds::tag`] (ids `<client id>:<random>:<sequence>`, unique per publisher) or
//!   [`tag`] (an id of yours); the consumer's [`Deduplicator`] reads the id and strips the
//!   header. It works with any body, binary or empty, and a payload without the header is
//!   recognised as such;
//! - **a key function** ([`Deduplicator::with_key_fn`]) for bodies that already carry an id, such
//!   as a JSON field. It is asked about payloads without the header.
//!
//! A payload with neither is [`Seen::Unkeyed`]: it is handed on whole, every time.
//!
//! ## The window
//!
//! A [`Deduplicator`] remembers each key from its first sighting for `max_age`, or until
//! `max_keys` newer keys pushed it out, whichever comes first; seeing it again does not extend
//! that. **A key seen again after it left the window is treated as new** (and remembered anew):
//! size the window to outlast the re-deliveries you expect (ApsaraMQ's come every 5–10 s; a
//! consumer down for an hour gets its backlog an hour late). Each check is O(1) (amortised, plus
//! hashing the key). Memory is strictly bounded: at most `max_keys` keys of at most
//! [`MAX_KEY_LEN`] bytes each, plus at most about 160 bytes per key of table space (growth
//! headroom included), so under `max_keys × 450` bytes in all: with the default 10 000 keys,
//! under 4.5 MB, and about 2.6 MB at most for generated ids (about 100 bytes). The window lives in
//! memory: a new process starts with an empty one.
//!
//! Time is an input: [`Deduplicator::check`] takes `now`, so tests and simulations drive it on
//! their own clock; [`Deduplicator::check_message`] reads `Instant::now()`.
//!
//! ## Publishing side
//!
//! ```no_run
//! # #[cfg(feature = "mio")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sansmq_apsaramq::dedup::MessageIds;
//! use sansmq_apsaramq::{AccessKey, AuthMode, ClientId, Endpoint, QoS, apsaramq_options};
//!
//! let endpoint = Endpoint::public("mqtt-cn-test")?;
//! let client_id = ClientId::new("GID_test", "publisher-1")?;
//! let auth = AuthMode::signature(AccessKey::from_env()?, endpoint.instance_id());
//! let client = sansmq_mio::Client::new(apsaramq_options(&endpoint.tcp_uri(), &client_id, auth)?)?;
//! client.connect()?;
//!
//! let mut ids = MessageIds::new(&client_id);
//! for n in 0..10 {
//!     let payload = ids.tag(format!("reading {n}"));
//!     // On a failure, publishing the same `payload` again keeps its id: the consumer sees it once.
//!     client.publish("parent/testMq4Iot", payload, QoS::AtLeastOnce, false)?.wait()?;
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mio"))]
//! # fn main() {}
//! ```
//!
//! ## Consuming side, blocking client
//!
//! [`ApsaraMqEvents::deduplicate`](crate::ApsaraMqEvents::deduplicate) wraps the callback in
//! [`Deduplicated`]: `message_arrived` runs once per message id, with the header stripped, for
//! subscribed and point-to-point messages alike; duplicates are acknowledged without a call
//! (with manual acknowledgements, acknowledge them in [`Deduplicated::on_duplicate`]); token
//! notices and the other callbacks pass through. ([`Deduplicated`] wraps a plain
//! [`sansmq_mio::Callback`] the same way.)
//!
//! ```no_run
//! # #[cfg(feature = "mio")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sansmq_apsaramq::dedup::Deduplicator;
//! use sansmq_apsaramq::{ApsaraMqCallback, ApsaraMqEvents, ClientId, MessageKind};
//! use sansmq_mio::Message;
//!
//! struct Orders;
//!
//! impl ApsaraMqCallback for Orders {
//!     fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
//!         // Once per message id; `message.payload` is the body without the header.
//!         println!("{topic} ({kind:?}): {:?}", message.payload);
//!     }
//! }
//!
//! let client_id = ClientId::new("GID_test", "consumer-1")?;
//! # let options = sansmq_mio::ConnectOptions::new("tcp://127.0.0.1:1883", client_id.as_str())?;
//! let client = sansmq_mio::Client::new(options)?;
//! client.set_callback(
//!     ApsaraMqEvents::new(Orders, "parent", client_id).deduplicate(Deduplicator::default()),
//! );
//! client.connect()?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mio"))]
//! # fn main() {}
//! ```
//!
//! ## Consuming side, async client
//!
//! [`Deduplicator::check_message`] says whether a message is new and gives its body. With manual
//! acknowledgements, **acknowledge duplicates too**: acknowledgements go out in arrival order, so
//! one left out holds back all those after it, and the broker keeps re-delivering it.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sansmq_tokio::Error> {
//! use sansmq_apsaramq::dedup::{Deduplicator, Seen};
//! use sansmq_tokio::{Client, ConnectOptions, QoS};
//!
//! # let options = ConnectOptions::new("tcp://127.0.0.1:1883", "GID_test@@@consumer-2")?;
//! let (client, mut events) = Client::builder(options).manual_acks(true).build()?;
//! client.connect().await?;
//! client.subscribe(&[("parent/testMq4Iot", QoS::AtLeastOnce)]).await?;
//!
//! let mut dedup = Deduplicator::default();
//! while let Some(message) = events.next_message().await {
//!     match dedup.check_message(&message) {
//!         Seen::New { body, .. } | Seen::Unkeyed { body } => println!("{body:?}"),
//!         Seen::Duplicate { key } => println!("again: {key:?}"),
//!         _ => {}
//!     }
//!     client.ack(&message).await?; // new or not
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! A message is remembered when it is first checked. If handling it fails and you want the next
//! delivery handled again, [`Deduplicator::forget`] its key (and do not acknowledge it).

#[cfg(feature = "mio")]
mod callback;
mod header;
mod window;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq_driver::Message;

#[cfg(feature = "mio")]
pub use callback::Deduplicated;
pub use header::{HEADER_MAGIC, HeaderError, MAX_ID_LEN, MessageId, MessageIds, tag, untag};

use window::Window;

/// The longest [`Key`], in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// How many keys [`Deduplicator::default`] remembers.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// How long [`Deduplicator::default`] remembers a key: 10 minutes, many times ApsaraMQ's 5–10 s
/// re-delivery interval.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// What identifies a message to a [`Deduplicator`]: 1 to [`MAX_KEY_LEN`] bytes. Cheap to clone.
///
/// Empty keys are refused: a missing field read as `""` would otherwise make every message after
/// the first a "duplicate".
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(Arc<[u8]>);

impl Key {
    /// A key of `bytes`: 1 to [`MAX_KEY_LEN`] of them.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, IdError> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return Err(IdError::Empty);
        }
        if bytes.len() > MAX_KEY_LEN {
            return Err(IdError::TooLong {
                len: bytes.len(),
                max: MAX_KEY_LEN,
            });
        }
        Ok(Self::from_checked(bytes))
    }

    /// A key of bytes already known to be a valid key (a [`MessageId`]'s).
    fn from_checked(bytes: &[u8]) -> Self {
        Self(Arc::from(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(\"{}\")", self.0.escape_ascii())
    }
}

/// Why an id or key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Nothing at all.
    #[error("empty message id")]
    Empty,
    /// Too many bytes.
    #[error("message id of {len} bytes, over {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A [`MessageId`] byte that is not visible ASCII (`!` to `~`).
    #[error("message id byte {byte:#04x} at {position} is not visible ASCII ('!' to '~')")]
    NotVisibleAscii {
        /// Where.
        position: usize,
        /// The byte.
        byte: u8,
    },
}

/// What a [`Deduplicator`] made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Seen {
    /// First seen within the window: handle `body` (the payload without its header).
    New {
        /// The message's key, now remembered.
        key: Key,
        /// The payload without the header (a slice of it, no copy).
        body: Bytes,
    },
    /// Seen within the window already: acknowledge it, do not handle it again.
    Duplicate {
        /// The message's key.
        key: Key,
    },
    /// No header and no key from the key function: it cannot be told apart, so handle `body`
    /// (the whole payload) every time.
    Unkeyed {
        /// The whole payload.
        body: Bytes,
    },
}

impl Seen {
    /// The body to handle; `None` for a duplicate.
    pub fn into_body(self) -> Option<Bytes> {
        match self {
            Self::New { body, .. } | Self::Unkeyed { body } => Some(body),
            Self::Duplicate { .. } => None,
        }
    }

    /// Whether the message was seen before.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate { .. })
    }
}

/// A key function: the key of a payload without the header, from its topic and bytes.
type KeyFn = Box<dyn Fn(&str, &[u8]) -> Option<Key> + Send + Sync>;

/// Remembers the keys of recent messages, bounded by count and by age (see the [module
/// docs](self)), to let each message through once.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use sansmq_apsaramq::dedup::{Deduplicator, MessageId, Seen, tag};
///
/// let mut dedup = Deduplicator::new(1000, Duration::from_secs(60));
/// let payload = tag(&MessageId::new("m-1").unwrap(), b"body");
/// let now = Instant::now();
/// assert!(matches!(dedup.check(now, "t", &payload), Seen::New { .. }));
/// assert!(dedup.check(now, "t", &payload).is_duplicate());
/// // A minute later the key has left the window: new again.
/// let later = now + Duration::from_secs(60);
/// assert!(matches!(dedup.check(later, "t", &payload), Seen::New { .. }));
/// ```
pub struct Deduplicator {
    window: Window,
    headers: bool,
    key_fn: Option<KeyFn>,
}

impl fmt::Debug for Deduplicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deduplicator")
            .field("window", &self.window)
            .field("headers", &self.headers)
            .field("key_fn", &self.key_fn.is_some())
            .finish()
    }
}

impl Default for Deduplicator {
    /// [`DEFAULT_MAX_KEYS`] keys for [`DEFAULT_MAX_AGE`], keys from the header.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS, DEFAULT_MAX_AGE)
    }
}

impl Deduplicator {
    /// Remembers up to `max_keys` keys, each for `max_age` from its first sighting; keys come
    /// from the message id header. A `max_keys` of 0 or a zero `max_age` remembers nothing (every
    /// keyed message is new).
    pub fn new(max_keys: usize, max_age: Duration) -> Self {
        Self {
            window: Window::new(max_keys, max_age),
            headers: true,
            key_fn: None,
        }
    }

    /// Takes the key of payloads without the header from `key_fn(topic, payload)`; `None` makes
    /// the message [`Seen::Unkeyed`]. Its keys share the window with header ids: keep them
    /// distinct if a consumer gets both (a prefix does).
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use sansmq_apsaramq::dedup::{Deduplicator, Key, Seen};
    ///
    /// // Bodies like `{"orderId":"A-17",...}`.
    /// let mut dedup = Deduplicator::default().with_key_fn(|_topic, body| {
    ///     let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    ///     Key::new(json.get("orderId")?.as_str()?).ok()
    /// });
    /// let body = br#"{"orderId":"A-17","qty":2}"#.to_vec().into();
    /// let now = Instant::now();
    /// assert!(matches!(dedup.check(now, "orders", &body), Seen::New { .. }));
    /// assert!(dedup.check(now, "orders", &body).is_duplicate());
    /// ```
    #[must_use]
    pub fn with_key_fn(
        mut self,
        key_fn: impl Fn(&str, &[u8]) -> Option<Key> + Send + Sync + 'static,
    ) -> Self {
        self.key_fn = Some(Box::new(key_fn));
        self
    }

    /// Does not look for the message id header: for consumers whose publishers never tag, so that
    /// no payload is ever taken for a tagged one. Keys then come from the key function only.
    #[must_use]
    pub fn without_headers(mut self) -> Self {
        self.headers = false;
        self
    }

    /// Whether the message `payload` on `topic`, arriving at `now`, is new. A new key is
    /// remembered from `now` on.
    ///
    /// The key is the header's id; a payload without the header, or whose header is malformed
    /// ([`untag`] says why), goes to the key function whole: nothing is stripped from it.
    pub fn check(&mut self, now: Instant, topic: &str, payload: &Bytes) -> Seen {
        let (key, body) = match self.headers.then(|| untag(payload)) {
            Some(Ok((id, body))) => (Some(Key::from(&id)), body),
            // No header, or a broken one: nothing is stripped.
            _ => (
                self.key_fn
                    .as_ref()
                    .and_then(|key_fn| key_fn(topic, payload)),
                payload.clone(),
            ),
        };
        match key {
            None => Seen::Unkeyed { body },
            Some(key) if self.window.insert(now, &key) => Seen::New { key, body },
            Some(key) => Seen::Duplicate { key },
        }
    }

    /// [`check`](Self::check) for a received message, now.
    pub fn check_message(&mut self, message: &Message) -> Seen {
        self.check(Instant::now(), message.topic.as_str(), &message.payload)
    }

    /// Remembers `key` as seen at `now`; false if it already was (within the window). For keys
    /// your code finds itself.
    pub fn insert(&mut self, now: Instant, key: &Key) -> bool {
        self.window.insert(now, key)
    }

    /// Whether `key` is remembered at `now`.
    pub fn contains(&self, now: Instant, key: &Key) -> bool {
        self.window.contains(now, key)
    }

    /// Forgets `key`, so that its next delivery is new (after handling it failed, say); true if it
    /// was remembered.
    pub fn forget(&mut self, key: &Key) -> bool {
        self.window.forget(key)
    }

    /// How many keys are remembered (some may be due to leave at the next check).
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.window.clear();
    }

    /// The most keys remembered at once.
    pub fn max_keys(&self) -> usize {
        self.window.max_keys()
    }

    /// How long a key is remembered.
    pub fn max_age(&self) -> Duration {
        self.window.max_age()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn tagged(id: &str, body: &[u8]) -> Bytes {
        tag(&MessageId::new(id).unwrap(), body)
    }

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    /// The key function of a body `id=<key>;...`.
    fn id_field(_topic: &str, body: &[u8]) -> Option<Key> {
        let rest = body.strip_prefix(b"id=")?;
        let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
        Key::new(&rest[..end]).ok()
    }

    #[test]
    fn a_tagged_message_is_new_once_and_its_header_is_stripped() {
        let mut dedup = Deduplicator::default();
        let now = Instant::now();
        let payload = tagged("m-1", b"\x00body");
        assert_eq!(
            dedup.check(now, "t", &payload),
            Seen::New {
                key: key("m-1"),
                body: Bytes::from_static(b"\x00body")
            }
        );
        assert_eq!(
            dedup.check(now, "another/topic", &payload),
            Seen::Duplicate { key: key("m-1") },
            "the id decides, not the topic"
        );
        assert!(matches!(
            dedup.check(now, "t", &tagged("m-2", b"\x00body")),
            Seen::New { .. }
        ));
    }

    #[test]
    fn an_empty_body_is_a_message_like_any() {
        let mut dedup = Deduplicator::default();
        let now = Instant::now();
        let payload = tagged("empty", b"");
        assert_eq!(
            dedup.check(now, "t", &payload).into_body(),
            Some(Bytes::new())
        );
        assert_eq!(dedup.check(now, "t", &payload).into_body(), None);
    }

    #[test]
    fn untagged_payloads_are_unkeyed_every_time_without_a_key_function() {
        let mut dedup = Deduplicator::default();
        let now = Instant::now();
        let payload = Bytes::from_static(b"plain");
        for _ in 0..2 {
            assert_eq!(
                dedup.check(now, "t", &payload),
                Seen::Unkeyed {
                    body: payload.clone()
                }
            );
        }
        assert!(dedup.is_empty());
    }

    #[test]
    fn the_key_function_keys_payloads_without_the_header() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let mut dedup = Deduplicator::default().with_key_fn(move |topic, body| {
            counted.fetch_add(1, Ordering::SeqCst);
            assert_eq!(topic, "orders");
            id_field(topic, body)
        });
        let now = Instant::now();
        let order = Bytes::from_static(b"id=A-17;qty=2");
        assert_eq!(
            dedup.check(now, "orders", &order),
            Seen::New {
                key: key("A-17"),
                body: order.clone()
            }
        );
        assert!(dedup.check(now, "orders", &order).is_duplicate());
        let no_id = Bytes::from_static(b"qty=2");
        assert_eq!(
            dedup.check(now, "orders", &no_id),
            Seen::Unkeyed {
                body: no_id.clone()
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A tagged payload: the header decides, the function is not asked.
        let payload = tagged("m-1", b"id=A-17;qty=2");
        assert!(matches!(
            dedup.check(now, "orders", &payload),
            Seen::New { .. }
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_malformed_header_strips_nothing_and_falls_back_to_the_key_function() {
        let now = Instant::now();
        let broken = Bytes::from_static(b"\xffMQID\x01\x09short");
        let mut plain = Deduplicator::default();
        assert_eq!(
            plain.check(now, "t", &broken),
            Seen::Unkeyed {
                body: broken.clone()
            }
        );
        let mut keyed = Deduplicator::default().with_key_fn(|_, body| Key::new(body).ok());
        assert_eq!(
            keyed.check(now, "t", &broken),
            Seen::New {
                key: Key::new(&broken).unwrap(),
                body: broken.clone()
            }
        );
    }

    #[test]
    fn without_headers_a_tagged_payload_is_left_whole() {
        let mut dedup = Deduplicator::default().without_headers();
        let payload = tagged("m-1", b"body");
        assert_eq!(
            dedup.check(Instant::now(), "t", &payload),
            Seen::Unkeyed {
                body: payload.clone()
            }
        );
    }

    #[test]
    fn the_window_bounds_apply_to_messages() {
        let t0 = Instant::now();
        let mut by_count = Deduplicator::new(2, DEFAULT_MAX_AGE);
        for id in ["a", "b", "c"] {
            assert!(matches!(
                by_count.check(t0, "t", &tagged(id, b"")),
                Seen::New { .. }
            ));
        }
        assert_eq!(by_count.len(), 2);
        assert!(matches!(
            by_count.check(t0, "t", &tagged("a", b"")),
            Seen::New { .. }
        ));

        let mut by_age = Deduplicator::new(100, Duration::from_secs(5));
        assert!(matches!(
            by_age.check(t0, "t", &tagged("a", b"")),
            Seen::New { .. }
        ));
        let later = t0 + Duration::from_secs(5);
        assert!(
            by_age
                .check(later - Duration::from_millis(1), "t", &tagged("a", b""))
                .is_duplicate()
        );
        assert!(matches!(
            by_age.check(later, "t", &tagged("a", b"")),
            Seen::New { .. }
        ));
    }

    #[test]
    fn a_forgotten_key_is_new_again() {
        let mut dedup = Deduplicator::default();
        let now = Instant::now();
        let payload = tagged("m-1", b"body");
        let Seen::New { key, .. } = dedup.check(now, "t", &payload) else {
            panic!("new")
        };
        assert!(dedup.contains(now, &key));
        assert!(dedup.forget(&key));
        assert!(!dedup.contains(now, &key));
        assert!(matches!(dedup.check(now, "t", &payload), Seen::New { .. }));
        dedup.clear();
        assert!(dedup.insert(now, &key));
        assert!(!dedup.insert(now, &key));
    }

    #[test]
    fn keys_are_checked_and_shown_readably() {
        assert_eq!(Key::new(""), Err(IdError::Empty));
        assert_eq!(
            Key::new([7; 256]),
            Err(IdError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(Key::new([0xff; 255]).unwrap().as_bytes().len(), 255);
        assert_eq!(format!("{:?}", key("a\"b")), r#"Key("a\"b")"#);
    }

    #[test]
    fn a_deduplicator_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Deduplicator>();
        send_sync::<Key>();
    }

    #[test]
    fn check_message_reads_topic_and_payload() {
        let publish = sansmq::packet::Publish::new(
            sansmq::TopicName::try_from("t").unwrap(),
            tagged("m-1", b"body"),
        );
        let message = Message::from(publish);
        let mut dedup = Deduplicator::default();
        assert_eq!(
            dedup.check_message(&message).into_body(),
            Some(Bytes::from_static(b"body"))
        );
        assert!(dedup.check_message(&message).is_duplicate());
    }
}
