//! What the client reports to the application: [`Event`]s and why a connection ended
//! ([`DisconnectReason`]).

use std::fmt;

use crate::packet::{
    ConnectReturnCode, DecodeError, PacketId, PacketType, Publish, QoS, SubscribeFilter,
};
use crate::topic::TopicFilter;

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
    /// The connection is over; the session (unacknowledged messages, queue, subscriptions) is kept
    /// for the next [`Client::connect`](super::Client::connect).
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// The broker refused one filter of a SUBSCRIBE (SUBACK return code 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeRefused;

impl fmt::Display for SubscribeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the broker refused the subscription (SUBACK 0x80)")
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
    /// The broker refused the connection with this CONNACK code.
    Refused(ConnectReturnCode),
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
