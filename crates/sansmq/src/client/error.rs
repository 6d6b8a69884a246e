//! [`CommandError`]: a command the client cannot carry out as asked. Always the caller's side: the
//! broker's faults arrive as [`DisconnectReason`](super::DisconnectReason)s instead.

use std::fmt;

use crate::packet::{EncodeError, PacketId, QoS};

/// A command refused before anything was queued; the session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// `connect` while a connection is open or being opened.
    AlreadyConnected,
    /// The command needs an open connection (SUBSCRIBE, UNSUBSCRIBE, `ack`) or the client is
    /// disconnecting.
    NotConnected,
    /// The queue behind the inflight window holds
    /// [`max_queued`](super::Config::max_queued) messages: back off and retry after
    /// [`Event::Published`](super::Event::Published).
    QueueFull {
        /// The limit.
        max_queued: usize,
    },
    /// Every packet identifier is in use.
    PacketIdsExhausted,
    /// The packet would be bigger than the configured or protocol limit, or breaks a rule of MQTT.
    Encode(EncodeError),
    /// `ack` for an identifier that has no unacknowledged incoming message.
    UnknownAck(PacketId),
    /// The configuration cannot work; the message says which setting and why.
    InvalidConfig(&'static str),
    /// MQTT 5: a QoS above the Maximum QoS the server's CONNACK allows (MQTT-3.2.2-11).
    QosNotSupported {
        /// The QoS asked for.
        requested: QoS,
        /// The server's Maximum QoS.
        maximum: QoS,
    },
    /// MQTT 5: a retained message, and the server's CONNACK says Retain Available 0
    /// (MQTT-3.2.2-14).
    RetainNotSupported,
    /// MQTT 5: the server's CONNACK says it does not support what the SUBSCRIBE asks for
    /// (wildcards, Subscription Identifiers or Shared Subscriptions; MQTT 5.0 section 3.2.2.3).
    SubscriptionNotSupported(&'static str),
    /// A property the client may not send here; the message says which and why.
    PropertyNotAllowed(&'static str),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyConnected => f.write_str("already connected or connecting"),
            Self::NotConnected => f.write_str("not connected"),
            Self::QueueFull { max_queued } => write!(
                f,
                "the outgoing queue is full ({max_queued} messages); retry once some are acknowledged"
            ),
            Self::PacketIdsExhausted => f.write_str("all 65,535 packet identifiers are in use"),
            Self::Encode(e) => e.fmt(f),
            Self::UnknownAck(id) => {
                write!(
                    f,
                    "no unacknowledged incoming message has packet identifier {id}"
                )
            }
            Self::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Self::QosNotSupported { requested, maximum } => write!(
                f,
                "the server takes messages up to {maximum}, not {requested} (MQTT-3.2.2-11)"
            ),
            Self::RetainNotSupported => f.write_str(
                "the server does not support retained messages (Retain Available 0, MQTT-3.2.2-14)",
            ),
            Self::SubscriptionNotSupported(what) => {
                write!(f, "the server does not support {what}")
            }
            Self::PropertyNotAllowed(why) => write!(f, "property not allowed: {why}"),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<EncodeError> for CommandError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}
