//! [`Message`]: a received application message.

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{PacketId, Publish, QoS};

/// A message from the broker; the payload shares the read buffer (no copy).
///
/// With [`ClientBuilder::manual_acks`](crate::ClientBuilder::manual_acks), a QoS 1/2 message is
/// acknowledged to the broker only once you call [`Client::ack`](crate::Client::ack) with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: TopicName,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// Whether it is a retained message (sent because it was stored, not just published).
    pub retained: bool,
    /// Whether the broker says it may have delivered it before.
    pub duplicate: bool,
    /// The broker's packet identifier (QoS 1/2).
    pub id: Option<PacketId>,
    /// Which session the identifier belongs to (see [`AckKey`]).
    pub(crate) session: u64,
}

/// What the background task needs to acknowledge a message: its identifier, and the session it
/// arrived in. After a reconnect with `session_present = 0` the broker reuses identifiers, so an
/// acknowledgement from the earlier session must not be applied to a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckKey {
    pub(crate) id: PacketId,
    pub(crate) session: u64,
}

impl Message {
    pub(crate) fn new(publish: Publish, session: u64) -> Self {
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retained: publish.retain,
            duplicate: publish.dup,
            id: publish.packet_id,
            session,
        }
    }

    /// The key to acknowledge it with, for QoS 1/2.
    pub(crate) fn ack_key(&self) -> Option<AckKey> {
        self.id.map(|id| AckKey {
            id,
            session: self.session,
        })
    }
}
