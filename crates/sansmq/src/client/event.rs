//! What the client reports to the application: [`Event`]s and why a connection ended
//! ([`DisconnectReason`]).

use std::fmt;

use crate::packet::{
    ConnectReturnCode, DecodeError, PacketId, PacketType, Properties, Publish, QoS, ReasonCode,
    SubscribeFilter,
};
use crate::string::MqttString;
use crate::topic::{TopicFilter, TopicName};

/// Something the application should know, drained with [`Client::poll_event`](super::Client::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// CONNACK accepted the connection. With `session_present` the broker resumed a kept session;
    /// without it, it started afresh (and has forgotten earlier subscriptions).
    Connected {
        /// The broker's session-present flag.
        session_present: bool,
    },
    /// A message arrived. It is delivered whether or not it matches a subscription (ApsaraMQ's
    /// point-to-point messages arrive unsubscribed). With
    /// [`manual_acks`](super::Config::manual_acks) a QoS 1/2 message must be acknowledged with
    /// [`Client::ack`](super::Client::ack) and its `packet_id`.
    Message(Publish),
    /// The broker has a QoS 1 message (PUBACK) or finished a QoS 2 exchange (PUBCOMP).
    Published {
        /// The identifier [`Client::publish`](super::Client::publish) returned.
        packet_id: PacketId,
        /// The message's QoS.
        qos: QoS,
    },
    /// MQTT 5: the server refused a QoS 1/2 message with a failure Reason Code in its PUBACK or
    /// PUBREC (such as 0x87 Not authorized or 0x97 Quota exceeded). The message is done; it is not
    /// sent again.
    PublishRefused {
        /// The identifier [`Client::publish`](super::Client::publish) returned.
        packet_id: PacketId,
        /// The message's QoS.
        qos: QoS,
        /// The server's Reason Code and Reason String.
        reason: ServerReason,
    },
    /// MQTT 5: a message waited in the queue longer than its Message Expiry Interval and was
    /// given up unsent (MQTT 5.0 section 3.3.2.3.3).
    Expired {
        /// Where it was to be published.
        topic: TopicName,
        /// The identifier `publish` returned for a QoS 1/2 message.
        packet_id: Option<PacketId>,
    },
    /// MQTT 5: a message the client took before it knew the server's terms (before CONNACK, or
    /// from a restored session), which the server's CONNACK then refused: a QoS above its Maximum
    /// QoS, a retained message without Retain Available, a packet over its Maximum Packet Size.
    /// It is given up unsent (MQTT-3.2.2-11, -14, -15); the error says which term.
    Unsendable {
        /// Where it was to be published.
        topic: TopicName,
        /// The identifier `publish` returned for a QoS 1/2 message.
        packet_id: Option<PacketId>,
        /// The term it breaks, as `publish` would have refused it; boxed, so that an `Event`
        /// stays the size of a message.
        error: Box<super::CommandError>,
    },
    /// MQTT 5: a SUBSCRIBE or UNSUBSCRIBE made before CONNACK (or awaiting its answer across a
    /// reconnect) is bigger than the server's Maximum Packet Size: it is given up unsent
    /// (MQTT-3.2.2-15) and no `Subscribed` or `Unsubscribed` will come for it. Ask again with
    /// fewer filters.
    RequestUnsendable {
        /// The identifier `subscribe` or `unsubscribe` returned.
        packet_id: PacketId,
        /// The size and the limit.
        error: super::CommandError,
    },
    /// A QoS 1/2 message was given up under [`UnackedPolicy::Discard`](super::UnackedPolicy).
    Dropped {
        /// The identifier [`Client::publish`](super::Client::publish) returned.
        packet_id: PacketId,
    },
    /// SUBACK: one result per filter, in the SUBSCRIBE's order.
    Subscribed {
        /// The identifier [`Client::subscribe`](super::Client::subscribe) returned.
        packet_id: PacketId,
        /// The granted QoS per filter, or the failure (return code 0x80).
        results: Vec<(TopicFilter, Result<QoS, SubscribeRefused>)>,
    },
    /// Right after [`Event::Connected`]: the client subscribes again to what the broker granted
    /// before ([`Config::restore_subscriptions`](super::Config::restore_subscriptions)), in the
    /// SUBSCRIBE `packet_id`, which goes out before the messages queued while disconnected. Its
    /// SUBACK comes as [`Event::Subscribed`]. Filters an unanswered SUBSCRIBE (sent again after
    /// CONNACK) already asks for are left out, so none is asked twice.
    Resubscribing {
        /// The SUBSCRIBE's identifier.
        packet_id: PacketId,
        /// The filters it asks for, with the QoS each was granted before.
        filters: Vec<SubscribeFilter>,
    },
    /// UNSUBACK.
    Unsubscribed {
        /// The identifier [`Client::unsubscribe`](super::Client::unsubscribe) returned.
        packet_id: PacketId,
    },
    /// MQTT 5: a re-authentication ([`Client::reauthenticate`](super::Client::reauthenticate))
    /// succeeded.
    Reauthenticated,
    /// The connection is over; the session (unacknowledged messages, queue, subscriptions) is kept
    /// for the next [`Client::connect`](super::Client::connect).
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// The broker refused one filter of a SUBSCRIBE: SUBACK return code 0x80, or in MQTT 5 any
/// failure Reason Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeRefused {
    /// The SUBACK's code for the filter: 0x80 (Unspecified error, MQTT 3.1.1's only refusal) or an
    /// MQTT 5 failure such as 0x87 Not authorized or 0xA2 Wildcard Subscriptions not supported.
    pub reason_code: ReasonCode,
}

impl SubscribeRefused {
    /// The refusal MQTT 3.1.1 has: 0x80.
    pub const UNSPECIFIED: Self = Self {
        reason_code: ReasonCode::UnspecifiedError,
    };
}

impl fmt::Display for SubscribeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the broker refused the subscription (SUBACK {})",
            self.reason_code
        )
    }
}

/// What an MQTT 5 server said when it refused or ended something: a Reason Code, and the
/// properties that explain it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerReason {
    /// The Reason Code.
    pub reason_code: ReasonCode,
    /// The packet's properties: Reason String, Server Reference, User Properties. Boxed, so that
    /// an [`Event`] stays the size of a message (a `Message` is the event a client handles most,
    /// and every one is moved through that size).
    pub properties: Box<Properties>,
}

impl ServerReason {
    pub(crate) fn new(reason_code: ReasonCode, properties: Properties) -> Self {
        Self {
            reason_code,
            properties: Box::new(properties),
        }
    }

    /// The Reason String, a human-readable diagnosis, if the server sent one.
    pub fn reason_string(&self) -> Option<&MqttString> {
        self.properties.reason_string()
    }

    /// The Server Reference, another server to use (with 0x9C Use another server or 0x9D Server
    /// moved), if the server sent one.
    pub fn server_reference(&self) -> Option<&MqttString> {
        self.properties.server_reference()
    }
}

impl fmt::Debug for ServerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerReason")
            .field("reason_code", &self.reason_code)
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Display for ServerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason_code.fmt(f)?;
        if let Some(reason) = self.reason_string() {
            write!(f, ": {reason}")?;
        }
        if let Some(server) = self.server_reference() {
            write!(f, " (server reference {server})")?;
        }
        Ok(())
    }
}

impl std::error::Error for SubscribeRefused {}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The application asked for it and DISCONNECT was sent.
    Requested,
    /// The driver reported the transport closed (the broker or the network went away).
    TransportClosed,
    /// The broker refused the connection with this MQTT 3.1.1 CONNACK code.
    Refused(ConnectReturnCode),
    /// The MQTT 5 server refused the connection: its CONNACK Reason Code (such as 0x86 Bad User
    /// Name or Password, 0x9C Use another server) with Reason String and Server Reference.
    ConnectRefused(ServerReason),
    /// The MQTT 5 server ended the connection with DISCONNECT: its Reason Code (such as 0x8B Server
    /// shutting down, 0x8E Session taken over) with Reason String and Server Reference.
    ServerDisconnected(ServerReason),
    /// No CONNACK within the configured time.
    ConnAckTimeout,
    /// No PINGRESP within the configured time after PINGREQ was written.
    KeepAliveTimeout,
    /// The broker stopped reading: bytes waited in the transmit buffer and the driver could write
    /// none of them for the keep-alive interval (the ping timeout when keep-alive is off).
    TransmitStalled,
    /// The broker sent bytes that are not valid MQTT, or a packet over the size limit.
    Malformed(DecodeError),
    /// The broker sent a valid packet that breaks the protocol's rules.
    ProtocolViolation(ProtocolViolation),
}

/// A broker's valid packet at a place MQTT does not allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// The first packet after CONNECT was not CONNACK (MQTT-3.2.0-1).
    ExpectedConnAck(PacketType),
    /// A packet only clients send (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT), or a second
    /// CONNACK.
    UnexpectedPacket(PacketType),
    /// MQTT 5: a PUBLISH with a Topic Alias above the Topic Alias Maximum we sent
    /// (MQTT-3.3.2-10); the client disconnects with 0x94.
    TopicAliasAboveMaximum {
        /// The alias.
        alias: u16,
        /// Our Topic Alias Maximum.
        maximum: u16,
    },
    /// MQTT 5: a PUBLISH without a topic whose Topic Alias no earlier PUBLISH on this connection
    /// set (MQTT 5.0 section 3.3.4); the client disconnects with 0x82.
    UnknownTopicAlias(u16),
    /// MQTT 5: more QoS 1/2 messages unacknowledged than our Receive Maximum (MQTT-3.3.4-9); the
    /// client disconnects with 0x93.
    ReceiveMaximumExceeded {
        /// Our Receive Maximum.
        maximum: u16,
    },
    /// MQTT 5: an AUTH the client did not ask for, or one it cannot answer: no authenticator,
    /// another method, or the authenticator refused the server's data (MQTT 5.0 section 4.12);
    /// the client disconnects with 0x82 Protocol Error or 0x8C Bad authentication method.
    Authentication(String),
    /// SUBACK with a different number of return codes than the SUBSCRIBE had filters (MQTT-3.8.4-5).
    SubAckCount {
        /// The SUBSCRIBE's identifier.
        packet_id: PacketId,
        /// Filters sent.
        expected: usize,
        /// Return codes received.
        received: usize,
    },
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requested => f.write_str("disconnected on request"),
            Self::TransportClosed => f.write_str("the connection was closed"),
            Self::Refused(code) => write!(f, "the broker refused the connection: {code}"),
            Self::ConnectRefused(reason) => {
                write!(f, "the broker refused the connection: {reason}")
            }
            Self::ServerDisconnected(reason) => {
                write!(f, "the broker ended the connection: {reason}")
            }
            Self::ConnAckTimeout => f.write_str("no CONNACK from the broker in time"),
            Self::KeepAliveTimeout => f.write_str("no PINGRESP from the broker in time"),
            Self::TransmitStalled => f.write_str(
                "the broker stopped reading: nothing the client sent could be written within the \
                 keep-alive interval",
            ),
            Self::Malformed(e) => write!(f, "malformed packet from the broker: {e}"),
            Self::ProtocolViolation(v) => write!(f, "protocol violation by the broker: {v}"),
        }
    }
}

impl std::error::Error for DisconnectReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::ProtocolViolation(v) => Some(v),
            _ => None,
        }
    }
}

impl std::error::Error for ProtocolViolation {}

impl ProtocolViolation {
    /// The MQTT 5 Reason Code of the DISCONNECT the client sends for it.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::TopicAliasAboveMaximum { .. } => ReasonCode::TopicAliasInvalid,
            Self::ReceiveMaximumExceeded { .. } => ReasonCode::ReceiveMaximumExceeded,
            _ => ReasonCode::ProtocolError,
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedConnAck(t) => {
                write!(
                    f,
                    "{t} before CONNACK; CONNACK must come first (MQTT-3.2.0-1)"
                )
            }
            Self::UnexpectedPacket(t) => write!(f, "{t} is not a packet a server may send here"),
            Self::TopicAliasAboveMaximum { alias, maximum } => write!(
                f,
                "Topic Alias {alias} is above our Topic Alias Maximum {maximum} (MQTT-3.3.2-10)"
            ),
            Self::UnknownTopicAlias(alias) => write!(
                f,
                "PUBLISH without a topic uses Topic Alias {alias}, which nothing set (MQTT 5.0 section 3.3.4)"
            ),
            Self::ReceiveMaximumExceeded { maximum } => write!(
                f,
                "more than our Receive Maximum of {maximum} QoS 1/2 messages unacknowledged (MQTT-3.3.4-9)"
            ),
            Self::Authentication(why) => write!(f, "enhanced authentication: {why}"),
            Self::SubAckCount {
                packet_id,
                expected,
                received,
            } => write!(
                f,
                "SUBACK {packet_id} has {received} return codes for {expected} filters (MQTT-3.8.4-5)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every received message is moved through the event queue as an `Event`: the rarer events
    /// box what is large so that it stays the size of a message (96 bytes cost the engine's
    /// receive path about 15%).
    #[test]
    fn an_event_is_the_size_of_a_message() {
        use std::mem::size_of;
        assert_eq!(size_of::<Event>(), size_of::<crate::packet::Publish>());
        assert_eq!(size_of::<DisconnectReason>(), 48);
    }
}
