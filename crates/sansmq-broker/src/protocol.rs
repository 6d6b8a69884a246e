//! What the broker does with each packet a client sends.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use mio::Token;
use sansmq::TopicName;
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Packet, Protocol, PubAck, PubComp, PubRec, PubRel,
    Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeReturnCode, UnsubAck,
    Unsubscribe,
};

use crate::apsaramq::{UPLOAD_TOKEN_TOPIC, client_id_problem, parse_upload_token};
use crate::auth::{self, Grant};
use crate::connection::{Client, Phase};
use crate::mqtt5::own_properties;
use crate::router::{pump, resend_inflight, with_subscription_ids};
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
            Packet::Publish(publish) => self.handle_publish(token, publish, now),
            Packet::PubAck(ack) => {
                self.with_session(token, |session, _| session.handle_puback(ack.packet_id));
                self.pump(token);
            }
            Packet::PubRec(rec) if rec.reason_code.is_error() => {
                // MQTT 5: a PUBREC with an error code ends the exchange (section 4.3.3).
                self.with_session(token, |session, _| {
                    session.handle_pubrec_refused(rec.packet_id)
                });
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
                    // PUBREL resent after our PUBCOMP was lost): MQTT 5 says so with 0x92.
                    let known = session.incoming_qos2.remove(&rel.packet_id);
                    if known || !conn.protocol.is_v5() {
                        conn.send(PubComp::new(rel.packet_id));
                    } else {
                        let code = ReasonCode::PacketIdentifierNotFound;
                        conn.send(PubComp::with_reason_code(rel.packet_id, code));
                    }
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
            Packet::Disconnect(disconnect) => self.handle_disconnect(token, &disconnect),
            // Only MQTT 5 decodes AUTH; enhanced authentication is not offered (CONNECT with an
            // Authentication Method is accepted without it), so AUTH is a Protocol Error.
            Packet::Auth(_) => self.protocol_error(token, "AUTH without enhanced authentication"),
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
        let v5 = connect.protocol.is_v5();
        if let Some(conn) = self.conns.get_mut(&token) {
            // Every answer, a refusing CONNACK included, is encoded in the client's protocol.
            conn.protocol = connect.protocol;
        }
        if v5 && connect.properties.authentication_method().is_some() {
            // Enhanced authentication is not offered (MQTT 5.0 section 4.12).
            return self.refuse_v5(token, ReasonCode::BadAuthenticationMethod, now);
        }
        let mut client_id = connect.client_id.as_str().to_owned();
        let mut grant = Grant::ALL;
        if let Some(mode) = &self.config.apsaramq {
            if let Some(problem) = client_id_problem(&client_id) {
                tracing::info!(client_id, problem, "ApsaraMQ client id refused");
                return self.refuse(token, ConnectReturnCode::IdentifierRejected, now);
            }
            if let Some(will) = &connect.will {
                tracing::info!(client_id, "ApsaraMQ does not support will messages");
                // MQTT-3.2.2-13 (MQTT 5): a retained will, with Retain Available 0, gets 0x9A;
                // any other will gets 0x87 Not authorized, what MQTT 3.1.1 clients get (0x05).
                if v5 && will.retain {
                    return self.refuse_v5(token, ReasonCode::RetainNotSupported, now);
                }
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
            if v5 {
                return self.refuse_v5(token, ReasonCode::TopicNameInvalid, now);
            }
            return self.refuse(token, ConnectReturnCode::NotAuthorized, now);
        }
        let mut assigned_id = false;
        if client_id.is_empty() {
            // MQTT-3.1.3-8: an empty id needs clean session (and MQTT 3.1 does not allow one);
            // MQTT 5 allows it with either Clean Start (MQTT-3.1.3-6).
            if !v5 && (!connect.clean_session || connect.protocol == Protocol::Mqtt31) {
                return self.refuse(token, ConnectReturnCode::IdentifierRejected, now);
            }
            client_id = self.generate_client_id(); // MQTT-3.1.3-6
            assigned_id = true;
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
        // MQTT-3.1.4-2: a client id already connected: the older connection is closed (MQTT 5:
        // with DISCONNECT 0x8E Session taken over, MQTT-3.1.4-3).
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.connection) {
            self.close(old, CloseReason::TakenOver);
        }
        // MQTT 5: Session Expiry Interval 0 (or absent) ends the session with the connection,
        // as MQTT 3.1.1's clean session does (MQTT-3.1.2-23).
        let session_expiry = if v5 {
            connect.properties.session_expiry_interval.unwrap_or(0)
        } else {
            0
        };
        let discard_at_end = if v5 {
            session_expiry == 0
        } else {
            connect.clean_session
        };
        self.take_delayed_will(&client_id, connect.clean_session);
        if connect.clean_session {
            self.remove_session(&client_id); // MQTT-3.1.2-6 (MQTT 5: Clean Start, MQTT-3.1.2-4)
        }
        // MQTT-3.2.2-2, MQTT-3.2.2-3.
        let session_present = !connect.clean_session && self.sessions.contains_key(&client_id);
        let limits = self.limits();
        let keep_alive = self.granted_keep_alive(&connect);
        let receive_maximum = self.config.receive_maximum;
        let topic_alias_maximum = self.config.topic_alias_maximum;
        let connack = if v5 {
            self.connack_v5(&connect, &client_id, assigned_id, keep_alive)
        } else {
            ConnAck::new(ConnectReturnCode::Accepted)
        };
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if v5 {
            conn.receive_maximum = connect
                .properties
                .receive_maximum
                .map_or(usize::MAX, |max| usize::from(max.get()));
            conn.max_packet_size = connect
                .properties
                .maximum_packet_size
                .and_then(|max| usize::try_from(max.get()).ok())
                .unwrap_or(usize::MAX);
        }
        let session = self.sessions.entry(client_id.clone()).or_insert_with(|| {
            Session::new(
                client_id.clone(),
                discard_at_end,
                self.queue_limits.clone(),
                self.drops.clone(),
            )
        });
        session.clean = discard_at_end;
        // MQTT 3.1.1 keeps a session that is not clean for ever.
        session.expiry = (v5 && session_expiry != u32::MAX)
            .then(|| Duration::from_secs(u64::from(session_expiry)));
        session.expires_at = None;
        session.connection = Some(token);
        tracing::info!(
            peer = %conn.peer,
            client_id,
            protocol = %connect.protocol,
            clean_session = connect.clean_session,
            session_expiry,
            session_present,
            keep_alive,
            "client connected"
        );
        conn.phase = Phase::Connected(Client {
            client_id,
            clean_session: discard_at_end,
            // MQTT-3.1.2-24 (MQTT 5: MQTT-3.1.2-22): close after 1.5 x keep-alive without a
            // packet.
            keep_alive_limit: (keep_alive != 0)
                .then(|| Duration::from_millis(u64::from(keep_alive) * 1500)),
            will: connect.will.map(Box::new),
            grant,
            session_expiry,
            topic_aliases: HashMap::new(),
            topic_alias_maximum,
            receive_maximum: match receive_maximum {
                0 => usize::from(u16::MAX),
                max => usize::from(max),
            },
        });
        conn.send(connack.with_session_present(session_present));
        if session_present {
            resend_inflight(session, conn, limits);
        }
        pump(session, conn, limits);
    }

    fn handle_publish(&mut self, token: Token, mut publish: Publish, now: Instant) {
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        let v5 = conn.protocol.is_v5();
        if v5 {
            if let Err(reason) = self.resolve_topic_alias(token, &mut publish) {
                return self.close(token, reason);
            }
        }
        let Some(client) = self.conns.get(&token).and_then(|c| c.client()) else {
            return;
        };
        if let Err(error) = self.topic_limits().check(publish.topic()) {
            if v5 {
                // MQTT 5 refuses one PUBLISH in its acknowledgement (0x90 Topic Name invalid;
                // a QoS 0 one has none and is dropped).
                tracing::info!(client_id = %client.client_id, %error, "PUBLISH refused");
                return self.refuse_publish(token, &publish, ReasonCode::TopicNameInvalid);
            }
            // MQTT 3.1.1 has no way to refuse one PUBLISH but closing the connection.
            return self.close(token, CloseReason::TopicLimit(error));
        }
        if let Some(mode) = &self.config.apsaramq {
            let topic_len = publish.topic().chars().count();
            let problem = if topic_len > mode.max_topic_len {
                Some((
                    ReasonCode::TopicNameInvalid,
                    format!(
                        "topic of {topic_len} characters, over {}",
                        mode.max_topic_len
                    ),
                ))
            } else if publish.payload().len() > mode.max_payload {
                Some((
                    ReasonCode::PacketTooLarge,
                    format!(
                        "payload of {} bytes, over {}",
                        publish.payload().len(),
                        mode.max_payload
                    ),
                ))
            } else if publish.retain {
                // Retain Available 0 forbids a retained PUBLISH (MQTT-3.2.2-14): DISCONNECT 0x9A.
                Some((
                    ReasonCode::RetainNotSupported,
                    "retained messages are not supported".to_owned(),
                ))
            } else if publish.qos == QoS::ExactlyOnce && !client.clean_session {
                Some((
                    ReasonCode::QosNotSupported,
                    "QoS 2 is not supported with clean session 0".to_owned(),
                ))
            } else if publish.topic() == UPLOAD_TOKEN_TOPIC {
                return self.handle_upload_token(token, &publish);
            } else if !client.grant.may_publish(publish.topic()) {
                let why = format!(
                    "no W token reaching {:?} (publishing needs one)",
                    publish.topic()
                );
                if v5 {
                    // MQTT 5 refuses the one PUBLISH: 0x87 Not authorized.
                    tracing::info!(client_id = %client.client_id, why, "PUBLISH refused");
                    return self.refuse_publish(token, &publish, ReasonCode::NotAuthorized);
                }
                Some((ReasonCode::NotAuthorized, why))
            } else {
                None
            };
            if let Some((code, problem)) = problem {
                if v5 {
                    return self.close(
                        token,
                        CloseReason::Violation(code, format!("ApsaraMQ rule: {problem}")),
                    );
                }
                return self.policy_error(token, problem);
            }
        }
        let publisher = client.client_id.clone();
        let incoming_max = client.receive_maximum;
        // Copied out of the read buffer: see `Message`.
        let mut message = Message::new(
            own_topic(&publish.topic_name()),
            Bytes::copy_from_slice(publish.payload()),
            publish.qos,
            publish.retain,
        );
        if v5 {
            own_properties(&mut message, publish.take_properties(), now);
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                let matched = self.route_from(message, Some(&publisher));
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(PubAck::with_reason_code(id, delivered_code(v5, matched))); // MQTT-4.3.2-2
                }
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let waiting = self
                    .with_session(token, |session, _| {
                        (
                            session.incoming_qos2.len(),
                            session.incoming_qos2.contains(&id),
                        )
                    })
                    .unwrap_or_default();
                if v5 && !waiting.1 && waiting.0 >= incoming_max {
                    // MQTT-3.3.4-7: no more QoS 2 messages awaiting PUBREL than our Receive
                    // Maximum; more is 0x93 Receive Maximum exceeded.
                    return self.close(
                        token,
                        CloseReason::Violation(
                            ReasonCode::ReceiveMaximumExceeded,
                            format!("more than the Receive Maximum of {incoming_max} QoS 2 messages awaiting PUBREL"),
                        ),
                    );
                }
                // MQTT-4.3.3-2: deliver once, however often the client resends before PUBREL.
                let fresh = self
                    .with_session(token, |session, _| session.incoming_qos2.insert(id))
                    .unwrap_or(false);
                // A resent one was routed the first time: Success then.
                let matched = !fresh || self.route_from(message, Some(&publisher));
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(PubRec::with_reason_code(id, delivered_code(v5, matched)));
                }
            }
            _ => {
                self.route_from(message, Some(&publisher));
            }
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
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        let v5 = conn.protocol.is_v5();
        let Some(client) = conn.client() else {
            return;
        };
        // MQTT 5: refusals by filter, with a Reason Code each (MQTT-3.9.3-1).
        let mut refused: Vec<Option<ReasonCode>> = vec![None; subscribe.filters.len()];
        if let Some(mode) = &self.config.apsaramq {
            let mut problem = None;
            for (f, refusal) in subscribe.filters.iter().zip(&mut refused) {
                let len = f.filter.as_str().chars().count();
                if !client.grant.may_subscribe(f.filter.as_str()) {
                    let why = format!(
                        "no R token covering {:?} (subscribing needs one)",
                        f.filter.as_str()
                    );
                    if v5 {
                        tracing::info!(client_id = %client.client_id, why, "subscription refused");
                        *refusal = Some(ReasonCode::NotAuthorized);
                    } else {
                        problem = Some((ReasonCode::NotAuthorized, why));
                    }
                } else if len > mode.max_topic_len {
                    problem = Some((
                        ReasonCode::TopicFilterInvalid,
                        format!(
                            "topic filter of {len} characters, over {}",
                            mode.max_topic_len
                        ),
                    ));
                } else if f.qos == QoS::ExactlyOnce && !client.clean_session {
                    problem = Some((
                        ReasonCode::QosNotSupported,
                        "QoS 2 is not supported with clean session 0".to_owned(),
                    ));
                }
            }
            if let Some((code, problem)) = problem {
                if v5 {
                    return self.close(
                        token,
                        CloseReason::Violation(code, format!("ApsaraMQ rule: {problem}")),
                    );
                }
                return self.policy_error(token, problem);
            }
        }
        let subscription_id = if v5 {
            subscribe.properties().subscription_identifiers().next()
        } else {
            None
        };
        let limits = self.limits();
        let topic_limits = self.topic_limits();
        let max_subscriptions = self.config.max_subscriptions;
        let client_id = client.client_id.clone();
        // Every QoS is granted as asked, within the subscription and topic limits; codes in the
        // filters' order (MQTT-3.8.4-5).
        let mut return_codes = Vec::with_capacity(subscribe.filters.len());
        // Whether each granted subscription is new (for Retain Handling 1).
        let mut new = Vec::with_capacity(subscribe.filters.len());
        for (f, refusal) in subscribe.filters.iter().zip(refused) {
            let Some(session) = self.sessions.get(&client_id) else {
                return;
            };
            let known = session.subscriptions.iter().any(|s| s.filter == f.filter);
            let code = if let Some(code) = refusal {
                SubscribeReturnCode::Refused(code)
            } else if v5 && f.filter.is_shared() {
                // Shared Subscription Available is 0: MQTT 5.0 section 3.9.3, 0x9E.
                tracing::info!(client_id, filter = %f.filter, "shared subscription refused");
                SubscribeReturnCode::Refused(ReasonCode::SharedSubscriptionsNotSupported)
            } else if let Err(error) = topic_limits.check(f.filter.as_str()) {
                tracing::info!(client_id, %error, "subscription refused");
                match v5 {
                    true => SubscribeReturnCode::Refused(ReasonCode::TopicFilterInvalid),
                    false => SubscribeReturnCode::Failure,
                }
            } else if known
                || max_subscriptions == 0
                || session.subscriptions.len() < max_subscriptions
            {
                let is_new = self.add_subscription(&client_id, f, subscription_id);
                new.push(is_new);
                SubscribeReturnCode::Success(f.qos)
            } else {
                tracing::info!(client_id, filter = %f.filter, "subscription limit reached");
                match v5 {
                    true => SubscribeReturnCode::Refused(ReasonCode::QuotaExceeded),
                    false => SubscribeReturnCode::Failure,
                }
            };
            if code.is_failure() {
                new.push(false);
            }
            return_codes.push(code);
        }
        let (Some(conn), Some(session)) = (
            self.conns.get_mut(&token),
            self.sessions.get_mut(&client_id),
        ) else {
            return;
        };
        conn.send(SubAck::new(subscribe.packet_id, return_codes.clone())); // MQTT-3.8.4-1
        // MQTT-3.3.1-6: every matching retained message, with RETAIN 1 (MQTT-3.3.1-8), unless
        // MQTT 5's Retain Handling says otherwise (MQTT-3.3.1-9 to MQTT-3.3.1-11). They are
        // queued whatever their QoS and go out as the connection takes them: a subscription to
        // many retained messages gets them all, not what fits in one output buffer.
        let granted = subscribe.filters.iter().zip(&return_codes).zip(new);
        for ((f, _), is_new) in granted.filter(|((_, code), _)| !code.is_failure()) {
            let send = match f.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendAtNewSubscribe => is_new,
                RetainHandling::DoNotSend => false,
            };
            if !send {
                continue;
            }
            for message in self.retained.matching(&f.filter) {
                if message.expired_now() {
                    continue; // MQTT-3.3.2-5
                }
                let mut copy = message.with(message.qos.min(f.qos), true);
                with_subscription_ids(&mut copy, subscription_id.into_iter().collect());
                let _ = session.enqueue_retained(copy); // a refusal is logged
            }
        }
        pump(session, conn, limits);
    }

    fn handle_unsubscribe(&mut self, token: Token, unsubscribe: Unsubscribe) {
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        let v5 = conn.protocol.is_v5();
        let Some(client) = conn.client() else {
            return;
        };
        let client_id = client.client_id.clone();
        let mut codes = Vec::new();
        for filter in &unsubscribe.filters {
            let had = self.remove_subscription(&client_id, filter);
            if v5 {
                // MQTT-3.11.3-1: one Reason Code per filter.
                codes.push(match had {
                    true => ReasonCode::Success,
                    false => ReasonCode::NoSubscriptionExisted,
                });
            }
        }
        if let Some(conn) = self.conns.get_mut(&token) {
            // MQTT-3.10.4-4
            conn.send(UnsubAck::with_reason_codes(unsubscribe.packet_id, codes));
        }
    }
}

/// The Reason Code of a PUBACK or PUBREC: MQTT 5 says 0x10 No matching subscribers when the
/// message reached no session (MQTT 5.0 section 3.4.2.1); MQTT 3.1.1 has only success.
fn delivered_code(v5: bool, matched: bool) -> ReasonCode {
    if v5 && !matched {
        ReasonCode::NoMatchingSubscribers
    } else {
        ReasonCode::Success
    }
}

/// A copy of `topic` that owns its bytes.
pub(crate) fn own_topic(topic: &TopicName) -> TopicName {
    // Re-validating a valid topic cannot fail; keep the original (a slice) if it somehow does.
    TopicName::from_bytes(Bytes::copy_from_slice(topic.as_bytes()))
        .unwrap_or_else(|_| topic.clone())
}
