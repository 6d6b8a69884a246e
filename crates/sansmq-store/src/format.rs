//! The bytes of a session log: a file header, then records, each framed and checksummed. The
//! layout is in the [crate docs](crate#the-file-format).

use bytes::{BufMut, Bytes, BytesMut};
use sansmq::client::{InflightMessage, SessionRecord, SessionSnapshot};
use sansmq::packet::{
    PacketId, Properties, PropertyContext, Publish, QoS, RetainHandling, SubscribeFilter,
};
use sansmq::{TopicFilter, TopicName};

/// The first bytes of every log file: a name and the format's version.
pub(crate) const MAGIC: &[u8; 8] = b"SANSMQ\x00\x01";

/// A record's frame before its body: length, body checksum, header checksum.
pub(crate) const HEADER_LEN: usize = 12;

const ACCEPTED: u8 = 1;
const SENT: u8 = 2;
const RELEASED: u8 = 3;
const COMPLETED: u8 = 4;
const INCOMING_HELD: u8 = 5;
const INCOMING_RELEASED: u8 = 6;
const SUBSCRIBED: u8 = 7;
const UNSUBSCRIBED: u8 = 8;
const SESSION_LOST: u8 = 9;
const SNAPSHOT: u8 = 10;
const SENT_AT_MOST_ONCE: u8 = 11;

/// A record too big for its 32-bit length (a snapshot of gigabytes of messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

/// Appends `record`, framed, to `out`. On an error `out` is unchanged.
pub(crate) fn encode(record: &SessionRecord, out: &mut Vec<u8>) -> Result<(), TooLarge> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    encode_body(record, out);
    let body = out.get(start + HEADER_LEN..).unwrap_or_default();
    let Ok(len) = u32::try_from(body.len()) else {
        let len = body.len();
        out.truncate(start);
        return Err(TooLarge(len));
    };
    let mut first = [0; 8];
    let (len_bytes, crc_bytes) = first.split_at_mut(4);
    len_bytes.copy_from_slice(&len.to_le_bytes());
    crc_bytes.copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    let check = crc32fast::hash(&first).to_le_bytes();
    if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
        let (head, tail) = slot.split_at_mut(8);
        head.copy_from_slice(&first);
        tail.copy_from_slice(&check);
    }
    Ok(())
}

fn encode_body(record: &SessionRecord, out: &mut Vec<u8>) {
    match record {
        SessionRecord::Accepted(publish) => {
            out.put_u8(ACCEPTED);
            put_message(publish, out);
        }
        SessionRecord::Sent => out.put_u8(SENT),
        SessionRecord::SentAtMostOnce => out.put_u8(SENT_AT_MOST_ONCE),
        SessionRecord::Released(id) => put_id(RELEASED, *id, out),
        SessionRecord::Completed(id) => put_id(COMPLETED, *id, out),
        SessionRecord::IncomingHeld(id) => put_id(INCOMING_HELD, *id, out),
        SessionRecord::IncomingReleased(id) => put_id(INCOMING_RELEASED, *id, out),
        SessionRecord::Subscribed(s) => {
            out.put_u8(SUBSCRIBED);
            put_subscription(s, out);
        }
        SessionRecord::Unsubscribed(filter) => {
            out.put_u8(UNSUBSCRIBED);
            put_filter(filter, out);
        }
        SessionRecord::SessionLost => out.put_u8(SESSION_LOST),
        SessionRecord::Snapshot(snapshot) => {
            out.put_u8(SNAPSHOT);
            put_count(snapshot.inflight.len(), out);
            for m in &snapshot.inflight {
                out.put_u8(u8::from(m.released));
                put_message(&m.publish, out);
            }
            put_count(snapshot.queued.len(), out);
            for publish in &snapshot.queued {
                put_message(publish, out);
            }
            put_count(snapshot.awaiting_release.len(), out);
            for id in &snapshot.awaiting_release {
                out.put_u16_le(id.get());
            }
            put_count(snapshot.subscriptions.len(), out);
            for s in &snapshot.subscriptions {
                put_subscription(s, out);
            }
        }
    }
}

fn put_id(kind: u8, id: PacketId, out: &mut Vec<u8>) {
    out.put_u8(kind);
    out.put_u16_le(id.get());
}

/// A count of items; a session holds far fewer than 2^32 (identifiers are 16-bit, the queue is
/// bounded by memory long before), and a longer list makes the record too large anyway.
fn put_count(n: usize, out: &mut Vec<u8>) {
    out.put_u32_le(u32::try_from(n).unwrap_or(u32::MAX));
}

/// Message flag: MQTT 5 properties follow the payload.
const HAS_PROPERTIES: u8 = 0b1_0000;

fn put_message(publish: &Publish, out: &mut Vec<u8>) {
    let mut flags = publish.qos as u8 | u8::from(publish.retain) << 2 | u8::from(publish.dup) << 3;
    // A message the client accepted has properties a PUBLISH may carry, so this cannot fail;
    // if it did, the message would be kept without them rather than not at all.
    let mut properties = BytesMut::new();
    if !publish.properties().is_empty()
        && publish
            .properties()
            .encode(PropertyContext::Publish, &mut properties)
            .is_ok()
    {
        flags |= HAS_PROPERTIES;
    }
    out.put_u8(flags);
    out.put_u16_le(publish.packet_id.map_or(0, PacketId::get));
    // MQTT bounds a topic to 65,535 bytes and a payload to 256 MiB: the casts cannot truncate.
    let topic = publish.topic_bytes();
    out.put_u16_le(u16::try_from(topic.len()).unwrap_or(u16::MAX));
    out.put_slice(topic);
    let payload = publish.payload();
    out.put_u32_le(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(payload);
    out.put_slice(&properties);
}

/// A subscription as MQTT 5's Subscription Options byte and its filter.
fn put_subscription(s: &SubscribeFilter, out: &mut Vec<u8>) {
    let options = s.qos as u8
        | u8::from(s.no_local) << 2
        | u8::from(s.retain_as_published) << 3
        | (s.retain_handling as u8) << 4;
    out.put_u8(options);
    put_filter(&s.filter, out);
}

fn put_filter(filter: &TopicFilter, out: &mut Vec<u8>) {
    let bytes = filter.as_str().as_bytes();
    out.put_u16_le(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.put_slice(bytes);
}

/// What the bytes at one offset of a log hold.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole record whose checksums match, and the length of its frame.
    Record { body: Bytes, len: usize },
    /// Fewer bytes than the frame needs: a write the process did not finish.
    Incomplete,
    /// The header's checksum fails: the record's length cannot be trusted.
    BadHeader,
    /// The body's checksum fails; by its (checked) length the record is `len` bytes long.
    BadBody { len: usize },
}

/// Reads the frame at the start of `bytes` (not empty).
pub(crate) fn frame(bytes: &Bytes) -> Frame {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Frame::Incomplete;
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3, h0, h1, h2, h3] = *header;
    let first = [l0, l1, l2, l3, c0, c1, c2, c3];
    if crc32fast::hash(&first) != u32::from_le_bytes([h0, h1, h2, h3]) {
        return Frame::BadHeader;
    }
    let Ok(body_len) = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])) else {
        return Frame::Incomplete;
    };
    let Some(body) = rest.get(..body_len) else {
        return Frame::Incomplete;
    };
    let len = HEADER_LEN + body_len;
    if crc32fast::hash(body) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Frame::BadBody { len };
    }
    Frame::Record {
        // In range: `body` above is these bytes.
        body: bytes.slice(HEADER_LEN..len),
        len,
    }
}

/// Decodes a record's body (whose checksum matched). The error says what is wrong with it.
pub(crate) fn decode(body: Bytes) -> Result<SessionRecord, &'static str> {
    let mut r = Reader(body);
    let record = match r.u8()? {
        ACCEPTED => SessionRecord::Accepted(r.message()?),
        SENT => SessionRecord::Sent,
        SENT_AT_MOST_ONCE => SessionRecord::SentAtMostOnce,
        RELEASED => SessionRecord::Released(r.id()?),
        COMPLETED => SessionRecord::Completed(r.id()?),
        INCOMING_HELD => SessionRecord::IncomingHeld(r.id()?),
        INCOMING_RELEASED => SessionRecord::IncomingReleased(r.id()?),
        SUBSCRIBED => SessionRecord::Subscribed(r.subscription()?),
        UNSUBSCRIBED => SessionRecord::Unsubscribed(r.filter()?),
        SESSION_LOST => SessionRecord::SessionLost,
        SNAPSHOT => {
            let mut snapshot = SessionSnapshot::default();
            for _ in 0..r.u32()? {
                let released = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err("a released flag is neither 0 nor 1"),
                };
                let publish = r.message()?;
                snapshot
                    .inflight
                    .push(InflightMessage { publish, released });
            }
            for _ in 0..r.u32()? {
                snapshot.queued.push(r.message()?);
            }
            for _ in 0..r.u32()? {
                snapshot.awaiting_release.push(r.id()?);
            }
            for _ in 0..r.u32()? {
                snapshot.subscriptions.push(r.subscription()?);
            }
            SessionRecord::Snapshot(snapshot)
        }
        _ => return Err("unknown record kind"),
    };
    if !r.0.is_empty() {
        return Err("bytes after the record's fields");
    }
    Ok(record)
}

/// Reads fields off the front of a body; every read checks the bytes are there, so a count read
/// from the file allocates nothing it has not got the bytes for.
struct Reader(Bytes);

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, &'static str> {
        if self.0.len() < n {
            return Err("a field runs past the end of the record");
        }
        Ok(self.0.split_to(n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes.as_ref()).map_err(|_| "a field runs past the end of the record")
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.array().map(u32::from_le_bytes)
    }

    fn id(&mut self) -> Result<PacketId, &'static str> {
        PacketId::new(self.u16()?).ok_or("packet identifier 0")
    }

    fn message(&mut self) -> Result<Publish, &'static str> {
        let flags = self.u8()?;
        if flags & !0b1_1111 != 0 {
            return Err("unknown message flags");
        }
        let qos = QoS::from_u8(flags & 0b11).ok_or("a QoS that is not 0, 1 or 2")?;
        let packet_id = PacketId::new(self.u16()?);
        let topic_len = usize::from(self.u16()?);
        let topic = TopicName::from_bytes(self.take(topic_len)?).map_err(|_| "an invalid topic")?;
        let payload_len = usize::try_from(self.u32()?).map_err(|_| "a payload too long")?;
        let mut publish = Publish::new(topic, self.take(payload_len)?);
        publish.qos = qos;
        publish.retain = flags & 0b100 != 0;
        publish.dup = flags & 0b1000 != 0;
        publish.packet_id = packet_id;
        if flags & HAS_PROPERTIES != 0 {
            let (properties, used) = Properties::decode(PropertyContext::Publish, &self.0)
                .map_err(|_| "invalid message properties")?;
            self.take(used)?;
            publish.set_properties(properties);
        }
        Ok(publish)
    }

    fn filter(&mut self) -> Result<TopicFilter, &'static str> {
        let len = usize::from(self.u16()?);
        TopicFilter::from_bytes(self.take(len)?).map_err(|_| "an invalid topic filter")
    }

    fn subscription(&mut self) -> Result<SubscribeFilter, &'static str> {
        let options = self.u8()?;
        let qos = QoS::from_u8(options & 0b11).ok_or("a QoS that is not 0, 1 or 2")?;
        let retain_handling = match (options >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtNewSubscribe,
            2 => RetainHandling::DoNotSend,
            _ => return Err("Retain Handling 3"),
        };
        if options & 0b1100_0000 != 0 {
            return Err("unknown subscription options");
        }
        let mut subscription = SubscribeFilter::new(self.filter()?, qos);
        subscription.no_local = options & 0b100 != 0;
        subscription.retain_as_published = options & 0b1000 != 0;
        subscription.retain_handling = retain_handling;
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decoded(bytes: &[u8]) -> Option<Result<SessionRecord, &'static str>> {
        match frame(&Bytes::copy_from_slice(bytes)) {
            Frame::Record { body, .. } => Some(decode(body)),
            _ => None,
        }
    }

    #[test]
    fn a_record_decodes_to_itself_with_its_flags() {
        let mut publish = Publish::new(TopicName::try_from("a").unwrap(), Bytes::from("p"));
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = PacketId::new(65_535);
        publish.retain = true;
        publish.dup = true;
        let record = SessionRecord::Accepted(publish);
        let mut bytes = Vec::new();
        encode(&record, &mut bytes).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 1 + 1 + 2 + 2 + 1 + 4 + 1);
        assert_eq!(decoded(&bytes), Some(Ok(record)));
    }

    #[test]
    fn mqtt5_properties_and_subscription_options_are_kept() {
        let mut properties = Properties::new();
        properties.message_expiry_interval = Some(30);
        properties.set_correlation_data(Some(Bytes::from_static(b"req-1")));
        properties.push_user_property(
            sansmq::MqttString::try_from("k").unwrap(),
            sansmq::MqttString::try_from("v").unwrap(),
        );
        let mut publish = Publish::new(TopicName::try_from("a").unwrap(), Bytes::from("p"))
            .with_properties(properties);
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = PacketId::new(9);
        let mut subscription =
            SubscribeFilter::new(TopicFilter::try_from("chat/#").unwrap(), QoS::ExactlyOnce);
        subscription.no_local = true;
        subscription.retain_as_published = true;
        subscription.retain_handling = RetainHandling::DoNotSend;
        let snapshot = SessionSnapshot {
            inflight: vec![InflightMessage {
                publish: publish.clone(),
                released: false,
            }],
            queued: vec![publish.clone()],
            awaiting_release: vec![],
            subscriptions: vec![subscription.clone()],
        };
        for record in [
            SessionRecord::Accepted(publish),
            SessionRecord::Subscribed(subscription),
            SessionRecord::Snapshot(snapshot),
        ] {
            let mut bytes = Vec::new();
            encode(&record, &mut bytes).unwrap();
            assert_eq!(decoded(&bytes), Some(Ok(record)));
        }
    }

    #[test]
    fn bodies_that_break_the_format_are_refused() {
        let frame_of = |body: &[u8]| {
            let mut bytes = Vec::new();
            let len = u32::try_from(body.len()).unwrap().to_le_bytes();
            let crc = crc32fast::hash(body).to_le_bytes();
            let first: Vec<u8> = len.iter().chain(&crc).copied().collect();
            bytes.extend_from_slice(&first);
            bytes.extend_from_slice(&crc32fast::hash(&first).to_le_bytes());
            bytes.extend_from_slice(body);
            bytes
        };
        let cases: [(&[u8], &str); 6] = [
            (&[], "a field runs past the end of the record"),
            (&[42], "unknown record kind"),
            (&[COMPLETED, 0, 0], "packet identifier 0"),
            (&[SENT, 0], "bytes after the record's fields"),
            (&[SUBSCRIBED, 3, 1, 0, b'a'], "a QoS that is not 0, 1 or 2"),
            (
                &[UNSUBSCRIBED, 3, 0, b'a', b'#', b'b'],
                "an invalid topic filter",
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(decoded(&frame_of(body)), Some(Err(reason)), "{body:?}");
        }
        // A snapshot claiming four billion messages with none there allocates nothing.
        let huge = [SNAPSHOT, 0xff, 0xff, 0xff, 0xff];
        assert!(decoded(&frame_of(&huge)).unwrap().is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = frame(&Bytes::from(bytes.clone()));
            let _ = decode(Bytes::from(bytes));
        }
    }
}
