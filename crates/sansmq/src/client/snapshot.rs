//! [`SessionSnapshot`]: the session state as plain data, to keep it across a process restart.

use super::outgoing::{Inflight, Queued, Stage};
use super::{Client, CommandError, Config};
use crate::packet::{PacketId, Publish, SubscribeFilter};

/// An unacknowledged outgoing QoS 1/2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflightMessage {
    /// The message, with its packet identifier.
    pub publish: Publish,
    /// QoS 2: PUBREC arrived and PUBREL was sent; only PUBCOMP is missing.
    pub released: bool,
}

/// Everything a session holds besides the connection: what a persistent store saves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSnapshot {
    /// Unacknowledged QoS 1/2 messages, in the order they were first sent.
    pub inflight: Vec<InflightMessage>,
    /// Messages not sent yet, in order; QoS 1/2 ones carry their identifier.
    pub queued: Vec<Publish>,
    /// Incoming QoS 2 identifiers whose PUBREL has not arrived (their messages were delivered, and
    /// in manual-ack mode acknowledged by the application).
    pub awaiting_release: Vec<PacketId>,
    /// The subscriptions the broker granted.
    pub subscriptions: Vec<SubscribeFilter>,
}

impl Client {
    /// The session state now. Acknowledgements held for the application (manual-ack mode) and
    /// requests awaiting an answer are not included: the broker re-sends the messages they belong
    /// to, and a resumed client asks again. So a QoS 2 message the application has not
    /// acknowledged is not held: its re-sent copy is delivered to the resumed client.
    pub fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            inflight: self
                .outgoing
                .inflight
                .iter()
                .map(|m| InflightMessage {
                    publish: m.publish.clone(),
                    released: m.stage == Stage::Released,
                })
                .collect(),
            queued: self
                .outgoing
                .queued
                .iter()
                .map(|queued| queued.publish.clone())
                .collect(),
            awaiting_release: self
                .incoming
                .awaiting_release()
                .filter(|&id| !self.incoming.is_unacked_exactly_once(id))
                .collect(),
            subscriptions: self.subscriptions.active.values().cloned().collect(),
        }
    }

    /// A disconnected client that resumes `snapshot` at its first [`connect`](Client::connect).
    ///
    /// Fails with [`CommandError::InvalidConfig`] if the snapshot is inconsistent: a QoS 1/2
    /// message without an identifier, a QoS 0 one with one, or an identifier used twice.
    pub fn with_session(config: Config, snapshot: SessionSnapshot) -> Result<Self, CommandError> {
        let mut client = Client::new(config);
        let invalid = CommandError::InvalidConfig(
            "session snapshot: a QoS 1/2 message lacks a unique packet identifier",
        );
        for message in snapshot.inflight {
            let id = message.publish.packet_id.ok_or(invalid.clone())?;
            if message.publish.qos == crate::packet::QoS::AtMostOnce || !client.ids.insert(id) {
                return Err(invalid);
            }
            let stage = if message.released {
                Stage::Released
            } else {
                Stage::Published
            };
            client.outgoing.inflight.push_back(Inflight {
                publish: message.publish,
                stage,
                expires: None,
            });
        }
        for publish in snapshot.queued {
            let qos0 = publish.qos == crate::packet::QoS::AtMostOnce;
            match publish.packet_id {
                None if qos0 => {}
                Some(id) if !qos0 && client.ids.insert(id) => {}
                _ => return Err(invalid),
            }
            client.outgoing.queued.push_back(Queued::new(publish));
        }
        client.recorded_queued = client.outgoing.queued.len();
        for id in snapshot.awaiting_release {
            client.incoming.hold(id);
        }
        for s in snapshot.subscriptions {
            client.subscriptions.active.insert(s.filter.clone(), s);
        }
        Ok(client)
    }
}
