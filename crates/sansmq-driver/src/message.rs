//! [`Message`]: a received application message, as every driver hands it to the application.

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{PacketId, Properties, Publish, QoS, SubscriptionId};

/// The properties of a message that has none (every MQTT 3.1.1 message).
static NO_PROPERTIES: Properties = Properties::new();

/// A message from the broker; the payload shares the read buffer (no copy).
///
/// With manual acknowledgements, a QoS 1/2 message is acknowledged to the broker only once the
/// application says so with it (its [`AckKey`]).
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
    /// MQTT 5 properties, boxed when there are any, so that a 3.1.1 message carries no more
    /// than a null pointer for them.
    properties: Option<Box<Properties>>,
    /// Which broker session delivered it (see [`AckKey`]).
    session: u64,
}

/// What acknowledging a message needs: its identifier and the broker session it arrived in. After
/// a reconnect with `session_present = 0` the broker may reuse identifiers for new messages, so an
/// acknowledgement from the earlier session must not be applied to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckKey {
    /// The message's packet identifier.
    pub id: PacketId,
    session: u64,
}

impl Message {
    /// The message `publish`, delivered in broker session number `session` (counted by the
    /// supervisor).
    pub(crate) fn new(mut publish: Publish, session: u64) -> Self {
        let (qos, retained, duplicate, id) =
            (publish.qos, publish.retain, publish.dup, publish.packet_id);
        let properties = publish.take_boxed_properties();
        let (topic, payload) = publish.into_parts();
        Self {
            topic,
            payload,
            qos,
            retained,
            duplicate,
            id,
            properties,
            session,
        }
    }

    /// MQTT 5 properties: Payload Format Indicator, Message Expiry Interval (what is left of it),
    /// Content Type, Response Topic, Correlation Data, User Properties, Subscription
    /// Identifiers. Empty for MQTT 3.1.1. A Topic Alias the broker used is resolved already and
    /// not among them.
    pub fn properties(&self) -> &Properties {
        self.properties.as_deref().unwrap_or(&NO_PROPERTIES)
    }

    /// MQTT 5: the Subscription Identifiers of the subscriptions it matched (none for a
    /// subscription made without one).
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = SubscriptionId> + '_ {
        self.properties().subscription_identifiers()
    }

    /// The key to acknowledge it with; `None` for QoS 0.
    #[must_use]
    pub fn ack_key(&self) -> Option<AckKey> {
        self.id.map(|id| AckKey {
            id,
            session: self.session,
        })
    }
}

impl AckKey {
    /// Whether this key belongs to broker session `session`.
    pub(crate) fn is_of_session(&self, session: u64) -> bool {
        self.session == session
    }
}

impl From<Publish> for Message {
    /// A message of the first broker session (for tests and tools that build messages).
    fn from(publish: Publish) -> Self {
        Self::new(publish, 0)
    }
}
