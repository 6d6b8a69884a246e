//! [`Message`]: a received application message.

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{PacketId, Publish, QoS};

/// A message from the broker; the payload shares the read buffer (no copy).
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
    /// Which broker session delivered it (counted by the client): an acknowledgement is only
    /// valid in the session that delivered the message. After `session_present = 0` the broker
    /// may reuse the identifier for a new message, which a late ack would otherwise acknowledge
    /// before the application saw it.
    pub(crate) session: u64,
}

impl From<Publish> for Message {
    fn from(p: Publish) -> Self {
        Self {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retained: p.retain,
            duplicate: p.dup,
            id: p.packet_id,
            session: 0,
        }
    }
}
