//! Routing: from a published message to the sessions that get it, and from a session's queue to
//! its connection.

use std::sync::Arc;

use mio::Token;
use sansmq::TopicFilter;
use sansmq::packet::{PacketId, Protocol, PubRel, Publish, QoS, SubscribeFilter, SubscriptionId};

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

    /// Subscribes `client_id`'s session with `options`, replacing a subscription to the same
    /// filter (MQTT-3.8.4-3), in the session and in the routing index; returns whether the
    /// subscription is new.
    pub(crate) fn add_subscription(
        &mut self,
        client_id: &str,
        options: &SubscribeFilter,
        id: Option<SubscriptionId>,
    ) -> bool {
        match self.sessions.get_mut(client_id) {
            Some(session) => {
                let new = session.subscribe(options.clone(), id);
                self.subscriptions
                    .insert(&options.filter, client_id.to_owned(), options.qos);
                new
            }
            None => false,
        }
    }

    /// Ends `client_id`'s subscription to `filter`; returns whether it had one.
    pub(crate) fn remove_subscription(&mut self, client_id: &str, filter: &TopicFilter) -> bool {
        match self.sessions.get_mut(client_id) {
            Some(session) => {
                let had = session.unsubscribe(filter);
                self.subscriptions.remove(filter, client_id);
                had
            }
            None => false,
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
    /// `publisher` is the client id that sent it, which MQTT 5's No Local keeps from that
    /// client's own subscriptions.
    ///
    /// Returns whether it reached any session (for MQTT 5's 0x10 No matching subscribers).
    pub(crate) fn route_from(&mut self, message: Message, publisher: Option<&str>) -> bool {
        let published_retain = message.retain;
        if message.retain && !self.retained.store(message.clone()) {
            tracing::warn!(topic = %message.topic, "retained message store full; not retained");
        }
        let limits = self.limits();
        // MQTT-3.3.1-9: a message sent on to current subscribers has RETAIN 0.
        let message = message.with(message.qos, false);
        if self.config.apsaramq.is_some() {
            if let Some(target) = p2p_target(message.topic.as_str()) {
                return match self.sessions.get_mut(target) {
                    Some(session) => {
                        let conn = session.connection.and_then(|t| self.conns.get_mut(&t));
                        deliver(session, conn, message, limits);
                        true
                    }
                    None => {
                        tracing::debug!(target, "P2P message for an unknown client dropped");
                        false
                    }
                };
            }
        }
        let mut matched = false;
        // One copy per session, at the highest QoS of its matching subscriptions.
        for (client_id, granted) in self.subscriptions.subscribers(&message.topic) {
            let Some(session) = self.sessions.get_mut(client_id) else {
                // The index only holds live sessions' subscriptions (`remove_session`).
                tracing::error!(client_id, "subscription of a removed session");
                continue;
            };
            let copy = if session.has_options {
                match copy_for(session, &message, published_retain, publisher) {
                    Some(copy) => copy,
                    None => continue,
                }
            } else {
                // MQTT-3.3.5-1: at the lower of the published and the granted QoS.
                message.with(granted.min(message.qos), false)
            };
            let conn = session.connection.and_then(|t| self.conns.get_mut(&t));
            deliver(session, conn, copy, limits);
            matched = true;
        }
        matched
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

/// The copy of `message` for a session whose subscriptions have MQTT 5 options, from every
/// subscription of its that matches: `None` if No Local leaves none (MQTT-3.8.3-3); else at
/// the highest of their QoS (MQTT-3.3.4-2, within the published QoS, MQTT-3.3.5-1), with RETAIN
/// as published if one asked for Retain As Published (MQTT-3.3.1-12, 3.3.1-13), and with their
/// Subscription Identifiers (MQTT-3.3.4-3, MQTT-3.3.4-5).
fn copy_for(
    session: &Session,
    message: &Message,
    published_retain: bool,
    publisher: Option<&str>,
) -> Option<Message> {
    let own = publisher == Some(session.client_id.as_str());
    let mut qos: Option<QoS> = None;
    let mut retain = false;
    let mut ids = Vec::new();
    for subscription in &session.subscriptions {
        if !subscription.filter.matches(&message.topic) || (subscription.no_local && own) {
            continue;
        }
        qos = Some(qos.map_or(subscription.qos, |q| q.max(subscription.qos)));
        retain |= subscription.retain_as_published && published_retain;
        if let Some(id) = session.subscription_ids.get(&subscription.filter) {
            ids.push(*id);
        }
    }
    let mut copy = message.with(qos?.min(message.qos), retain);
    with_subscription_ids(&mut copy, ids);
    Some(copy)
}

/// Adds Subscription Identifiers to a copy of a message's properties.
pub(crate) fn with_subscription_ids(message: &mut Message, ids: Vec<SubscriptionId>) {
    if ids.is_empty() {
        return;
    }
    let mut v5 = message.v5.as_deref().cloned().unwrap_or_default();
    for id in ids {
        v5.properties.push_subscription_identifier(id);
    }
    message.v5 = Some(Arc::new(v5));
}

/// How many unacknowledged QoS 1/2 messages `conn` may have: the broker's window, within the
/// client's Receive Maximum (MQTT-3.3.4-9).
fn window(conn: &Connection, limits: Limits) -> usize {
    limits.max_inflight.min(conn.receive_maximum)
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
            Some(conn) if conn.has_room() => {
                send_publish(conn, &message, None, false);
            }
            Some(_) => session.drop_qos0(),
            None => {}
        }
        return;
    }
    let at_once = conn
        .as_ref()
        .is_some_and(|c| c.has_room() && session.inflight.len() < window(c, limits))
        && session.queued_len() == 0;
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
///
/// A message whose Message Expiry Interval ran out while it waited is dropped (MQTT-3.3.2-5), and
/// so is one larger than the client's Maximum Packet Size (MQTT-3.1.2-25), as if sent.
pub(crate) fn pump(session: &mut Session, conn: &mut Connection, limits: Limits) {
    let window = window(conn, limits);
    while conn.has_room() {
        // Messages held back at a resumed session's Receive Maximum go first, as room comes.
        if session.unsent > 0 && session.inflight.len().saturating_sub(session.unsent) < window {
            send_unsent(session, conn);
            continue;
        }
        let Some(next) = session.peek_queued() else {
            return;
        };
        if next.qos == QoS::AtMostOnce {
            if let Some(message) = session.pop_queued() {
                if !message.expired_now() {
                    send_publish(conn, &message, None, false);
                }
            }
            continue;
        }
        if session.inflight.len() >= window {
            return;
        }
        if next.expired_now() {
            if let Some(message) = session.pop_queued() {
                tracing::debug!(client_id = %session.client_id, topic = %message.topic, "expired message dropped");
                session.forget(&message);
            }
            continue;
        }
        let Some(id) = session.allocate_id() else {
            return;
        };
        let Some(message) = session.pop_queued() else {
            return;
        };
        if !send_publish(conn, &message, Some(id), false) {
            session.forget(&message);
            continue;
        }
        session.inflight.push_back(Inflight {
            id,
            message,
            stage: Stage::Published,
            unacked_since: None,
        });
    }
}

/// On a resumed session, sends every unacknowledged message again in its original order: PUBLISH
/// with DUP 1 (MQTT-3.3.1-1) or PUBREL, whichever it waits for (MQTT-4.4.0-1). Past the window
/// (an MQTT 5 client's Receive Maximum may be lower than on its last connection, MQTT-3.3.4-9)
/// PUBLISHes are held back at [`Stage::Unsent`] and sent by [`pump`] as acknowledgements come.
pub(crate) fn resend_inflight(session: &mut Session, conn: &mut Connection, limits: Limits) {
    let window = window(conn, limits);
    let mut sent = 0usize;
    let mut unsent = 0usize;
    let mut too_large = Vec::new();
    for entry in &mut session.inflight {
        entry.unacked_since = None; // the redelivery timer starts again from this send
        match entry.stage {
            Stage::Published | Stage::Unsent if sent >= window => {
                entry.stage = Stage::Unsent;
                unsent += 1;
            }
            Stage::Published | Stage::Unsent => {
                entry.stage = Stage::Published;
                if !send_publish(conn, &entry.message, Some(entry.id), true) {
                    too_large.push(entry.id);
                }
                sent += 1;
            }
            Stage::Released => {
                conn.send(PubRel::new(entry.id));
                sent += 1;
            }
        }
    }
    session.unsent = unsent;
    for id in too_large {
        session.drop_inflight(id); // MQTT-3.1.2-25: as if sent
    }
}

/// Sends the oldest message held back at [`Stage::Unsent`], with DUP 1.
fn send_unsent(session: &mut Session, conn: &mut Connection) {
    session.unsent = session.unsent.saturating_sub(1);
    let Some(entry) = session
        .inflight
        .iter_mut()
        .find(|entry| entry.stage == Stage::Unsent)
    else {
        session.unsent = 0;
        return;
    };
    entry.stage = Stage::Published;
    let id = entry.id;
    if !send_publish(conn, &entry.message, Some(id), true) {
        session.drop_inflight(id); // MQTT-3.1.2-25: as if sent
    }
}

/// Sends `message` to `conn` in its protocol; `false` if it is larger than the client's Maximum
/// Packet Size and so not sent (MQTT-3.1.2-25).
pub(crate) fn send_publish(
    conn: &mut Connection,
    message: &Message,
    packet_id: Option<PacketId>,
    dup: bool,
) -> bool {
    let publish = publish(message, packet_id, dup, conn.protocol);
    if conn.protocol.is_v5() && publish.encoded_len_in(conn.protocol) > conn.max_packet_size {
        tracing::debug!(peer = %conn.peer, topic = %message.topic, "message over the client's Maximum Packet Size dropped");
        return false;
    }
    conn.send(publish);
    true
}

/// The PUBLISH of `message` in `protocol`: for MQTT 5 with its properties, the Message Expiry
/// Interval being what is left of it (MQTT-3.3.2-6); for MQTT 3.1.1 without.
pub(crate) fn publish(
    message: &Message,
    packet_id: Option<PacketId>,
    dup: bool,
    protocol: Protocol,
) -> Publish {
    let mut publish = Publish::new(message.topic.clone(), message.payload.clone());
    publish.dup = dup;
    publish.qos = message.qos;
    publish.retain = message.retain;
    publish.packet_id = packet_id;
    if protocol.is_v5() {
        if let Some(v5) = &message.v5 {
            let mut properties = v5.properties.clone();
            if v5.expires_at.is_some() {
                properties.message_expiry_interval =
                    message.remaining_expiry(std::time::Instant::now());
            }
            publish.set_properties(properties);
        }
    }
    publish
}
