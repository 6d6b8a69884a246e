//! Routing: from a published message to the sessions that get it, and from a session's queue to
//! its connection.

use mio::Token;
use sansmq::TopicFilter;
use sansmq::packet::{PubRel, Publish, QoS};

use crate::apsaramq::p2p_target;
use crate::connection::Connection;
use crate::server::Server;
use crate::session::{Inflight, Message, Session, Stage};
use crate::topic_limits::TopicLimits;

/// The per-session limits delivery works within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_inflight: usize,
}

impl Server {
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            // 0 is no limit: then only the 65 535 packet ids bound the window.
            max_inflight: match self.config.max_inflight {
                0 => usize::MAX,
                limit => limit,
            },
        }
    }

    pub(crate) fn topic_limits(&self) -> TopicLimits {
        TopicLimits::new(&self.config)
    }

    /// Subscribes `client_id`'s session to `filter` at `qos`, replacing the QoS of a subscription
    /// to the same filter (MQTT-3.8.4-3), in the session and in the routing index.
    pub(crate) fn add_subscription(&mut self, client_id: &str, filter: &TopicFilter, qos: QoS) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.subscribe(filter.clone(), qos);
            self.subscriptions.insert(filter, client_id.to_owned(), qos);
        }
    }

    /// Ends `client_id`'s subscription to `filter`, if it has one.
    pub(crate) fn remove_subscription(&mut self, client_id: &str, filter: &TopicFilter) {
        if let Some(session) = self.sessions.get_mut(client_id) {
            session.unsubscribe(filter);
            self.subscriptions.remove(filter, client_id);
        }
    }

    /// Discards `client_id`'s session and takes its subscriptions out of the routing index.
    pub(crate) fn remove_session(&mut self, client_id: &str) -> Option<Session> {
        let session = self.sessions.remove(client_id)?;
        for subscription in &session.subscriptions {
            self.subscriptions.remove(&subscription.filter, client_id);
        }
        Some(session)
    }

    /// Routes an application message: retains it if asked, then hands it to every session with a
    /// matching subscription, or in ApsaraMQ mode to the one client a P2P topic names.
    pub(crate) fn route(&mut self, message: Message) {
        if message.retain && !self.retained.store(message.clone()) {
            tracing::warn!(topic = %message.topic, "retained message store full; not retained");
        }
        let limits = self.limits();
        // MQTT-3.3.1-9: a message sent on to current subscribers has RETAIN 0.
        let message = message.with(message.qos, false);
        if self.config.apsaramq.is_some() {
            if let Some(target) = p2p_target(message.topic.as_str()) {
                match self.sessions.get_mut(target) {
                    Some(session) => {
                        let conn = session.connection.and_then(|t| self.conns.get_mut(&t));
                        deliver(session, conn, message, limits);
                    }
                    None => tracing::debug!(target, "P2P message for an unknown client dropped"),
                }
                return;
            }
        }
        // One copy per session, at the highest QoS of its matching subscriptions.
        for (client_id, granted) in self.subscriptions.subscribers(&message.topic) {
            let Some(session) = self.sessions.get_mut(client_id) else {
                // The index only holds live sessions' subscriptions (`remove_session`).
                tracing::error!(client_id, "subscription of a removed session");
                continue;
            };
            let conn = session.connection.and_then(|t| self.conns.get_mut(&t));
            // MQTT-3.3.5-1: at the lower of the published and the granted QoS.
            let qos = granted.min(message.qos);
            deliver(session, conn, message.with(qos, false), limits);
        }
    }

    /// Sends more of `token`'s session queue if its window and output buffer allow.
    pub(crate) fn pump(&mut self, token: Token) {
        let limits = self.limits();
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(client) = conn.client() else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&client.client_id) {
            pump(session, conn, limits);
        }
    }
}

/// Hands `message` to `session`: a QoS 0 message goes out at once if the connection has room and
/// is dropped (and counted) otherwise, also while offline: QoS 0 is never queued, except behind
/// queued QoS 0 retained messages, to keep a topic's messages in order. A QoS 1/2 message joins
/// the bounded session queue and goes out as the inflight window and output buffer allow.
pub(crate) fn deliver(
    session: &mut Session,
    conn: Option<&mut Connection>,
    message: Message,
    limits: Limits,
) {
    if message.qos == QoS::AtMostOnce {
        match conn {
            Some(conn) if session.has_queued_qos0() => {
                let _ = session.enqueue(message); // a refusal is counted and logged
                pump(session, conn, limits);
            }
            Some(conn) if conn.has_room() => conn.send(publish(&message, None, false)),
            Some(_) => session.drop_qos0(),
            None => {}
        }
        return;
    }
    let at_once = conn.as_ref().is_some_and(|c| c.has_room())
        && session.queued_len() == 0
        && session.inflight.len() < limits.max_inflight;
    if at_once {
        session.enqueue_to_send(message);
    } else {
        let _ = session.enqueue(message); // a refusal is counted and logged
    }
    if let Some(conn) = conn {
        pump(session, conn, limits);
    }
}

/// Sends queued messages while the connection has room: QoS 0 ones at once, QoS 1/2 ones into
/// the inflight window.
pub(crate) fn pump(session: &mut Session, conn: &mut Connection, limits: Limits) {
    while conn.has_room() {
        let Some(next) = session.peek_queued() else {
            return;
        };
        if next.qos == QoS::AtMostOnce {
            if let Some(message) = session.pop_queued() {
                conn.send(publish(&message, None, false));
            }
            continue;
        }
        if session.inflight.len() >= limits.max_inflight {
            return;
        }
        let Some(id) = session.allocate_id() else {
            return;
        };
        let Some(message) = session.pop_queued() else {
            return;
        };
        conn.send(publish(&message, Some(id), false));
        session.inflight.push_back(Inflight {
            id,
            message,
            stage: Stage::Published,
            unacked_since: None,
        });
    }
}

/// On a resumed session, sends every unacknowledged message again in its original order: PUBLISH
/// with DUP 1 (MQTT-3.3.1-1) or PUBREL, whichever it waits for (MQTT-4.4.0-1).
pub(crate) fn resend_inflight(session: &mut Session, conn: &mut Connection) {
    for entry in &mut session.inflight {
        entry.unacked_since = None; // the redelivery timer starts again from this send
        match entry.stage {
            Stage::Published => conn.send(publish(&entry.message, Some(entry.id), true)),
            Stage::Released => conn.send(PubRel::new(entry.id)),
        }
    }
}

pub(crate) fn publish(
    message: &Message,
    packet_id: Option<sansmq::packet::PacketId>,
    dup: bool,
) -> Publish {
    let mut publish = Publish::new(message.topic.clone(), message.payload.clone());
    publish.dup = dup;
    publish.qos = message.qos;
    publish.retain = message.retain;
    publish.packet_id = packet_id;
    publish
}
