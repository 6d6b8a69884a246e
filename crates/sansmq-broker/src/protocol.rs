//! What the broker does with each packet a client sends.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use mio::Token;
use sansmq::TopicName;
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    SubAck, Subscribe, SubscribeReturnCode, UnsubAck, Unsubscribe,
};

use crate::apsaramq::{UPLOAD_TOKEN_TOPIC, client_id_problem, parse_upload_token};
use crate::auth::{self, Grant};
use crate::connection::{Client, Phase};
use crate::router::{pump, resend_inflight};
use crate::server::{CloseReason, Server};
use crate::session::{Message, Session};
use crate::tokens;

impl Server {
    /// Handles one decoded packet from `token`'s connection.
    pub(crate) fn handle_packet(&mut self, token: Token, packet: Packet, now: Instant) {
        let connected = self.conns.get(&token).is_some_and(|c| c.client().is_some());
        match packet {
            Packet::Connect(connect) if !connected => self.handle_connect(token, *connect, now),
            // MQTT-3.1.0-2: a second CONNECT is a protocol violation.
            Packet::Connect(_) => self.protocol_error(token, "second CONNECT"),
            // MQTT-3.1.0-1: the first packet must be CONNECT.
            other if !connected => {
                let why = format!("{} before CONNECT", other.packet_type());
                self.protocol_error(token, &why);
            }
            Packet::Publish(publish) => self.handle_publish(token, publish),
            Packet::PubAck(ack) => {
                self.with_session(token, |session, _| session.handle_puback(ack.packet_id));
                self.pump(token);
            }
            Packet::PubRec(rec) => {
                self.with_session(token, |session, conn| {
                    // The id stays in use until PUBCOMP; PUBREL answers a PUBREC we expect.
                    if session.handle_pubrec(rec.packet_id) {
                        conn.send(PubRel::new(rec.packet_id));
                    }
                });
            }
            Packet::PubRel(rel) => {
                self.with_session(token, |session, conn| {
                    // Forget the id and answer PUBCOMP, even for an id already forgotten (a
                    // PUBREL resent after our PUBCOMP was lost).
                    session.incoming_qos2.remove(&rel.packet_id);
                    conn.send(PubComp::new(rel.packet_id));
                });
            }
            Packet::PubComp(comp) => {
                self.with_session(token, |session, _| session.handle_pubcomp(comp.packet_id));
                self.pump(token);
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(token, subscribe),
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(token, unsubscribe),
            Packet::PingReq => {
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(Packet::PingResp); // MQTT-3.12.4-1
                }
            }
            Packet::Disconnect(_) => {
                if let Some(client) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
                    client.will = None; // MQTT-3.14.4-3
                }
                self.close(token, CloseReason::Disconnect);
            }
            // The decoder speaks MQTT 3.1.1, which refuses AUTH before it gets here.
            Packet::Auth(_) => self.protocol_error(token, "AUTH outside MQTT 5"),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                let why = format!("{} is a server-to-client packet", packet.packet_type());
                self.protocol_error(token, &why);
            }
        }
    }

    fn protocol_error(&mut self, token: Token, why: &str) {
        self.close(token, CloseReason::Protocol(why.to_owned()));
    }

    fn policy_error(&mut self, token: Token, why: String) {
        self.close(token, CloseReason::Policy(why));
    }

    /// Runs `f` on the session and connection of `token`, if it is connected.
    fn with_session<R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut Session, &mut crate::connection::Connection) -> R,
    ) -> Option<R> {
        let conn = self.conns.get_mut(&token)?;
        let client_id = &conn.client()?.client_id;
        let session = self.sessions.get_mut(client_id)?;
        Some(f(session, conn))
    }

    fn handle_connect(&mut self, token: Token, connect: Connect, now: Instant) {
        if connect.protocol.is_v5() {
            // MQTT 5 sessions are not served yet: answer as an MQTT 3.1.1 server does to a level
            // it does not support (MQTT-3.1.2-2), and close.
            tracing::info!(client_id = %connect.client_id, "MQTT 5 CONNECT refused");
            return self.refuse(token, ConnectReturnCode::UnacceptableProtocolVersion, now);
        }
        let mut client_id = connect.client_id.as_str().to_owned();
        let mut grant = Grant::ALL;
        if let Some(mode) = &self.config.apsaramq {
            if let Some(problem) = client_id_problem(&client_id) {
                tracing::info!(client_id, problem, "ApsaraMQ client id refused");
                return self.refuse(token, ConnectReturnCode::IdentifierRejected, now);
            }
            if connect.will.is_some() {
                tracing::info!(client_id, "ApsaraMQ does not support will messages");
                return self.refuse(token, ConnectReturnCode::NotAuthorized, now);
            }
            let username = connect.username.as_ref().map(|u| u.as_str());
            let password = connect.password.as_ref().map(|p| &p.0[..]);
            let wall_clock = SystemTime::now();
            match auth::verify(
                mode,
                &self.tokens,
                wall_clock,
                &client_id,
                username,
                password,
            ) {
                Ok(granted) => grant = granted,
                Err(code) => return self.refuse(token, code, now),
            }
        }
        let will_topic = connect.will.as_ref().map(|will| will.topic.as_str());
        if let Some(Err(error)) = will_topic.map(|topic| self.topic_limits().check(topic)) {
            tracing::info!(client_id, %error, "will topic refused");
            return self.refuse(token, ConnectReturnCode::NotAuthorized, now);
        }
        if client_id.is_empty() {
            // MQTT-3.1.3-8: an empty id needs clean session (and MQTT 3.1 does not allow one).
            if !connect.clean_session || connect.protocol == sansmq::packet::Protocol::Mqtt31 {
                return self.refuse(token, ConnectReturnCode::IdentifierRejected, now);
            }
            client_id = self.generate_client_id(); // MQTT-3.1.3-6
        }
        // A new session past the limit: refused with 0x03, server unavailable (MQTT-3.2.2-5:
        // the connection is then closed). Resuming or replacing a session adds none.
        let max_sessions = self.config.max_sessions;
        if max_sessions != 0
            && self.sessions.len() >= max_sessions
            && !self.sessions.contains_key(&client_id)
        {
            self.sessions_refused = self.sessions_refused.saturating_add(1);
            tracing::warn!(
                client_id,
                sessions = self.sessions.len(),
                "CONNECT refused: max_sessions reached"
            );
            return self.refuse(token, ConnectReturnCode::ServerUnavailable, now);
        }
        // MQTT-3.1.4-2: a client id already connected: the older connection is closed.
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.connection) {
            self.close(old, CloseReason::TakenOver);
        }
        if connect.clean_session {
            self.remove_session(&client_id); // MQTT-3.1.2-6
        }
        // MQTT-3.2.2-2, MQTT-3.2.2-3.
        let session_present = !connect.clean_session && self.sessions.contains_key(&client_id);
        let limits = self.limits();
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let session = self.sessions.entry(client_id.clone()).or_insert_with(|| {
            Session::new(
                client_id.clone(),
                connect.clean_session,
                self.queue_limits.clone(),
                self.drops.clone(),
            )
        });
        session.clean = connect.clean_session;
        session.connection = Some(token);
        tracing::info!(
            peer = %conn.peer,
            client_id,
            clean_session = connect.clean_session,
            session_present,
            keep_alive = connect.keep_alive,
            "client connected"
        );
        conn.phase = Phase::Connected(Client {
            client_id,
            clean_session: connect.clean_session,
            // MQTT-3.1.2-24: close after 1.5 x keep-alive without a packet.
            keep_alive_limit: (connect.keep_alive != 0)
                .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500)),
            will: connect.will.map(Box::new),
            grant,
        });
        conn.send(ConnAck::new(ConnectReturnCode::Accepted).with_session_present(session_present));
        if session_present {
            resend_inflight(session, conn);
        }
        pump(session, conn, limits);
    }

    fn handle_publish(&mut self, token: Token, publish: Publish) {
        let Some(client) = self.conns.get(&token).and_then(|c| c.client()) else {
            return;
        };
        // MQTT 3.1.1 has no way to refuse one PUBLISH but closing the connection.
        if let Err(error) = self.topic_limits().check(publish.topic()) {
            return self.close(token, CloseReason::TopicLimit(error));
        }
        if let Some(mode) = &self.config.apsaramq {
            let topic_len = publish.topic().chars().count();
            let problem = if topic_len > mode.max_topic_len {
                Some(format!(
                    "topic of {topic_len} characters, over {}",
                    mode.max_topic_len
                ))
            } else if publish.payload().len() > mode.max_payload {
                Some(format!(
                    "payload of {} bytes, over {}",
                    publish.payload().len(),
                    mode.max_payload
                ))
            } else if publish.retain {
                Some("retained messages are not supported".to_owned())
            } else if publish.qos == QoS::ExactlyOnce && !client.clean_session {
                Some("QoS 2 is not supported with clean session 0".to_owned())
            } else if publish.topic() == UPLOAD_TOKEN_TOPIC {
                return self.handle_upload_token(token, &publish);
            } else if !client.grant.may_publish(publish.topic()) {
                Some(format!(
                    "no W token reaching {:?} (publishing needs one)",
                    publish.topic()
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return self.policy_error(token, problem);
            }
        }
        // Copied out of the read buffer: see `Message`.
        let message = Message {
            topic: own_topic(&publish.topic_name()),
            payload: Bytes::copy_from_slice(publish.payload()),
            qos: publish.qos,
            retain: publish.retain,
        };
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                self.route(message);
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(PubAck::new(id)); // MQTT-4.3.2-2
                }
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // MQTT-4.3.3-2: deliver once, however often the client resends before PUBREL.
                let fresh = self
                    .with_session(token, |session, _| session.incoming_qos2.insert(id))
                    .unwrap_or(false);
                if fresh {
                    self.route(message);
                }
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(PubRec::new(id));
                }
            }
            _ => self.route(message),
        }
    }

    /// `$SYS/uploadToken`: a Token login holds the new token, valid for its AccessKey, in place of
    /// the one of its type, and gets the PUBACK; an invalid token closes the connection.
    fn handle_upload_token(&mut self, token: Token, publish: &Publish) {
        let Some(mode) = &self.config.apsaramq else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(client) = conn.client_mut() else {
            return;
        };
        let (new_token, kind) = match parse_upload_token(publish.payload()) {
            Ok(parsed) => parsed,
            Err(why) => return self.policy_error(token, format!("uploadToken: {why}")),
        };
        match &mut client.grant.token_login {
            Some(login) => {
                let now = SystemTime::now();
                let key_id = &login.access_key_id;
                match tokens::check(mode, &self.tokens, key_id, kind, &new_token, now) {
                    Ok(held) => {
                        tracing::info!(client_id = %client.client_id, %kind, "token uploaded");
                        login.hold(held);
                    }
                    Err(refusal) => {
                        return self.policy_error(token, format!("uploadToken: {refusal}"));
                    }
                }
            }
            None => {
                tracing::debug!(client_id = %client.client_id, "uploadToken from a non-token login ignored");
            }
        }
        if let Some(id) = publish.packet_id {
            conn.send(PubAck::new(id));
        }
    }

    fn handle_subscribe(&mut self, token: Token, subscribe: Subscribe) {
        let Some(client) = self.conns.get(&token).and_then(|c| c.client()) else {
            return;
        };
        if let Some(mode) = &self.config.apsaramq {
            let mut problem = None;
            for f in &subscribe.filters {
                let len = f.filter.as_str().chars().count();
                if !client.grant.may_subscribe(f.filter.as_str()) {
                    problem = Some(format!(
                        "no R token covering {:?} (subscribing needs one)",
                        f.filter.as_str()
                    ));
                } else if len > mode.max_topic_len {
                    problem = Some(format!(
                        "topic filter of {len} characters, over {}",
                        mode.max_topic_len
                    ));
                } else if f.qos == QoS::ExactlyOnce && !client.clean_session {
                    problem = Some("QoS 2 is not supported with clean session 0".to_owned());
                }
            }
            if let Some(problem) = problem {
                return self.policy_error(token, problem);
            }
        }
        let limits = self.limits();
        let topic_limits = self.topic_limits();
        let max_subscriptions = self.config.max_subscriptions;
        let client_id = client.client_id.clone();
        // Every QoS is granted as asked, within the subscription and topic limits; codes in the
        // filters' order (MQTT-3.8.4-5).
        let mut return_codes = Vec::with_capacity(subscribe.filters.len());
        for f in &subscribe.filters {
            let Some(session) = self.sessions.get(&client_id) else {
                return;
            };
            let known = session.subscriptions.iter().any(|s| s.filter == f.filter);
            if let Err(error) = topic_limits.check(f.filter.as_str()) {
                tracing::info!(client_id, %error, "subscription refused");
                return_codes.push(SubscribeReturnCode::Failure);
            } else if known
                || max_subscriptions == 0
                || session.subscriptions.len() < max_subscriptions
            {
                self.add_subscription(&client_id, &f.filter, f.qos);
                return_codes.push(SubscribeReturnCode::Success(f.qos));
            } else {
                tracing::info!(client_id, filter = %f.filter, "subscription limit reached");
                return_codes.push(SubscribeReturnCode::Failure);
            }
        }
        let (Some(conn), Some(session)) = (
            self.conns.get_mut(&token),
            self.sessions.get_mut(&client_id),
        ) else {
            return;
        };
        conn.send(SubAck::new(subscribe.packet_id, return_codes.clone())); // MQTT-3.8.4-1
        // MQTT-3.3.1-6: every matching retained message, with RETAIN 1 (MQTT-3.3.1-8). They are
        // queued whatever their QoS and go out as the connection takes them: a subscription to
        // many retained messages gets them all, not what fits in one output buffer.
        let granted = subscribe.filters.iter().zip(&return_codes);
        for (f, _) in granted.filter(|(_, code)| **code != SubscribeReturnCode::Failure) {
            for message in self.retained.matching(&f.filter) {
                let qos = message.qos.min(f.qos);
                let _ = session.enqueue_retained(message.with(qos, true)); // a refusal is logged
            }
        }
        pump(session, conn, limits);
    }

    fn handle_unsubscribe(&mut self, token: Token, unsubscribe: Unsubscribe) {
        let Some(client) = self.conns.get(&token).and_then(|c| c.client()) else {
            return;
        };
        let client_id = client.client_id.clone();
        for filter in &unsubscribe.filters {
            self.remove_subscription(&client_id, filter);
        }
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.send(UnsubAck::new(unsubscribe.packet_id)); // MQTT-3.10.4-4
        }
    }
}

/// A copy of `topic` that owns its bytes.
fn own_topic(topic: &TopicName) -> TopicName {
    // Re-validating a valid topic cannot fail; keep the original (a slice) if it somehow does.
    TopicName::from_bytes(Bytes::copy_from_slice(topic.as_bytes()))
        .unwrap_or_else(|_| topic.clone())
}
