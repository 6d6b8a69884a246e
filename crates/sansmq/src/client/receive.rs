//! How the client answers each packet the broker sends.

use std::time::Instant;

use super::event::{DisconnectReason, Event, ProtocolViolation, ServerReason, SubscribeRefused};
use super::incoming::PendingAck;
use super::negotiated::Negotiated;
use super::outgoing::Receipt;
use super::session_log::SessionRecord;
use super::topic_alias::AliasFault;
use super::unwritten_acks::AckKind;
use super::{Client, Ping, State};
use crate::packet::{
    Auth, ConnAck, ConnectReturnCode, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish,
    QoS, ReasonCode, SubAck, SubscribeFilter, SubscribeReturnCode,
};

impl Client {
    /// Small enough for the read loop (`process`) to inline: the packets of a message exchange
    /// are handled here, everything else out of line, in
    /// [`handle_other_packet`](Self::handle_other_packet). With every arm in one function, as
    /// MQTT 5 made it, the call cost an MQTT 3.1.1 QoS 2 receive about 40 instructions.
    #[inline]
    pub(super) fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.state == State::AwaitingConnAck {
            return self.handle_packet_before_connack(now, packet);
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(now, publish),
            Packet::PubAck(mut ack) => {
                let packet_id = ack.packet_id;
                if self.outgoing.acknowledge(packet_id).is_some() {
                    if ack.reason_code.is_error() {
                        let reason = ServerReason::new(ack.reason_code, ack.take_properties());
                        self.refused(now, packet_id, QoS::AtLeastOnce, reason);
                    } else {
                        self.complete(now, packet_id, QoS::AtLeastOnce);
                    }
                } // an unknown PUBACK is a late duplicate: nothing to do
            }
            Packet::PubRec(mut rec) if rec.reason_code.is_error() => {
                // MQTT 5.0 section 4.3.3: a failed PUBREC ends the exchange; no PUBREL.
                let packet_id = rec.packet_id;
                if self.outgoing.abandon(packet_id).is_some() {
                    let reason = ServerReason::new(rec.reason_code, rec.take_properties());
                    self.refused(now, packet_id, QoS::ExactlyOnce, reason);
                }
            }
            Packet::PubRec(PubRec { packet_id, .. }) => match self.outgoing.receive(packet_id) {
                Some(Receipt::Released) => {
                    self.record(SessionRecord::Released(packet_id));
                    self.send_ack(now, AckKind::PubRel, packet_id);
                }
                Some(Receipt::AlreadyReleased) => self.send_ack(now, AckKind::PubRel, packet_id),
                None => {}
            },
            Packet::PubRel(PubRel { packet_id, .. }) => {
                // Answered even for an unknown identifier, so the broker can finish its side
                // (e.g. after we lost state); the identifier is free for a new message now.
                if self.incoming.release(packet_id) {
                    self.record(SessionRecord::IncomingReleased(packet_id));
                }
                self.send_ack(now, AckKind::PubComp, packet_id);
            }
            Packet::PubComp(PubComp { packet_id, .. }) => {
                if self.outgoing.complete(packet_id).is_some() {
                    self.complete(now, packet_id, QoS::ExactlyOnce);
                }
            }
            other => self.handle_other_packet(now, other),
        }
    }

    /// The first packet of a connection: CONNACK, or AUTH in MQTT 5's enhanced authentication.
    #[inline(never)]
    fn handle_packet_before_connack(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::ConnAck(connack) => self.on_connack(now, connack),
            Packet::Auth(auth) => self.on_auth(now, auth),
            other => self.fail(DisconnectReason::ProtocolViolation(
                ProtocolViolation::ExpectedConnAck(other.packet_type()),
            )), // MQTT-3.2.0-1
        }
    }

    /// [`handle_packet`](Self::handle_packet) for packets that are not part of a message
    /// exchange.
    #[inline(never)]
    fn handle_other_packet(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::SubAck(suback) => self.on_suback(suback),
            Packet::UnsubAck(unsuback) => {
                if let Some(unsubscribe) = self.subscriptions.take_unsubscribe(unsuback.packet_id) {
                    for filter in unsubscribe.filters {
                        self.subscriptions.remove(&filter);
                        self.record(SessionRecord::Unsubscribed(filter));
                    }
                    self.ids.free(unsuback.packet_id);
                    self.events.push_back(Event::Unsubscribed {
                        packet_id: unsuback.packet_id,
                    });
                }
            }
            Packet::PingResp => self.ping = Ping::Idle,
            Packet::Auth(auth) => self.on_auth(now, auth),
            Packet::Disconnect(mut disconnect) if self.protocol().is_v5() => {
                let reason =
                    ServerReason::new(disconnect.reason_code, disconnect.take_properties());
                self.fail(DisconnectReason::ServerDisconnected(reason));
            }
            Packet::ConnAck(_)
            | Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect(_)
            // Never here: `handle_packet` takes these.
            | Packet::Publish(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_) => {
                let violation = ProtocolViolation::UnexpectedPacket(packet.packet_type());
                self.fail(DisconnectReason::ProtocolViolation(violation));
            }
        }
    }

    fn on_connack(&mut self, now: Instant, mut connack: ConnAck) {
        self.connack_deadline = None;
        self.incoming.connection_started(self.protocol().is_v5());
        if self.protocol().is_v5() {
            if connack.reason_code != ReasonCode::Success {
                let reason = ServerReason::new(connack.reason_code, connack.take_properties());
                self.fail(DisconnectReason::ConnectRefused(reason));
                return;
            }
            let properties = connack.take_properties();
            if let Err(why) = self.finish_authentication(&properties) {
                let violation = ProtocolViolation::Authentication(why);
                return self.fail(DisconnectReason::ProtocolViolation(violation));
            }
            self.negotiated = Negotiated::from_connack(&self.config, properties);
            if let Some(assigned) = &self.negotiated.assigned_client_identifier {
                self.assigned_client_id = Some(assigned.clone());
            }
            let aliases = self
                .config
                .outgoing_topic_aliases
                .min(self.negotiated.topic_alias_maximum);
            self.aliases_out.reset(aliases);
        } else if connack.code != ConnectReturnCode::Accepted {
            self.fail(DisconnectReason::Refused(connack.code));
            return;
        }
        self.events.push_back(Event::Connected {
            session_present: connack.session_present,
        });
        // Queued before `resume`, which sends it ahead of the messages queued while disconnected.
        self.restore_subscriptions(now, connack.session_present);
        self.state = State::Connected;
        self.resume(now, connack.session_present);
    }

    fn on_publish(&mut self, now: Instant, mut publish: Publish) {
        // An MQTT 3.1.1 message has neither a Topic Alias nor a Receive Maximum to check: one
        // test here, and the MQTT 5 checks out of line, keep its path as it was.
        if self.protocol().is_v5() && !self.accept_publish_v5(&mut publish) {
            return;
        }
        let manual = self.config.manual_acks;
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                if manual {
                    if self.incoming.is_pending(id) {
                        return; // re-sent before the application acknowledged it: delivered already
                    }
                    self.hold_ack(id, QoS::AtLeastOnce, publish.dup);
                } else {
                    self.send(now, &Packet::PubAck(PubAck::new(id)));
                }
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.incoming.is_held(id) {
                    // Re-sent before PUBREL: delivered already; repeat PUBREC unless the application
                    // has not acknowledged it yet (its PUBREC is still held) or a PUBREC for it
                    // still waits to be written (it answers this copy too).
                    if !manual {
                        self.send_ack(now, AckKind::PubRec, id);
                    } else if !self.incoming.is_pending(id)
                        && !self.acks.contains(AckKind::PubRec, id)
                    {
                        // Already acknowledged: the repeat queues behind acknowledgements held for
                        // messages that arrived before it, so acks keep arrival order (MQTT-4.6.0-2/3).
                        self.incoming.push_ack(PendingAck {
                            packet_id: id,
                            qos: QoS::ExactlyOnce,
                            acked: true,
                            counted: false,
                        });
                        self.flush_acks(now);
                    }
                    return;
                }
                self.incoming.hold(id);
                if manual {
                    // Recorded when the application acknowledges it (`Client::ack`).
                    self.hold_ack(id, QoS::ExactlyOnce, publish.dup);
                } else {
                    self.record(SessionRecord::IncomingHeld(id));
                    self.send_ack_always(now, AckKind::PubRec, id);
                }
            }
            _ => {} // QoS 0 (the decoder guarantees an id exactly for QoS 1/2)
        }
        self.events.push_back(Event::Message(publish));
    }

    /// MQTT 5: an AUTH, a step of the enhanced authentication the client started (MQTT 5.0 section
    /// 4.12): a challenge to answer, or the success of a re-authentication.
    fn on_auth(&mut self, now: Instant, mut auth: Auth) {
        let expected = self.state == State::AwaitingConnAck || self.reauthenticating;
        let result = match self.authenticator.as_mut() {
            None => Err("AUTH from a server the client did not authenticate with".to_owned()),
            Some(_) if !expected => Err("AUTH outside an authentication exchange".to_owned()),
            Some(authenticator) => {
                let properties = auth.take_properties();
                let method = properties.authentication_method().map(|m| m.as_str());
                if method != Some(authenticator.method()) {
                    // MQTT-4.12.0-5 (the method stays the same through the exchange)
                    Err(format!(
                        "AUTH for method {method:?}, the client uses {:?}",
                        authenticator.method()
                    ))
                } else {
                    let data = properties.authentication_data();
                    match auth.reason_code {
                        ReasonCode::ContinueAuthentication => authenticator
                            .respond(data)
                            .map(Some)
                            .map_err(|e| e.to_string()),
                        ReasonCode::Success if self.reauthenticating => authenticator
                            .finish(data)
                            .map(|()| None)
                            .map_err(|e| e.to_string()),
                        other => Err(format!(
                            "AUTH {other} where the client expects 0x18 or a success"
                        )),
                    }
                }
            }
        };
        match result {
            Ok(Some(response)) => {
                if let Some(authenticator) = self.authenticator.as_deref() {
                    let auth = super::auth_packet(
                        authenticator,
                        ReasonCode::ContinueAuthentication,
                        response,
                    );
                    self.send(now, &Packet::Auth(auth));
                }
            }
            Ok(None) => {
                self.reauthenticating = false;
                self.events.push_back(Event::Reauthenticated);
            }
            Err(why) => {
                let violation = ProtocolViolation::Authentication(why);
                self.fail(DisconnectReason::ProtocolViolation(violation));
            }
        }
    }

    /// MQTT 5: an accepting CONNACK ends the authentication the CONNECT started; the
    /// authenticator checks the server's final data.
    fn finish_authentication(&mut self, connack: &crate::packet::Properties) -> Result<(), String> {
        let Some(authenticator) = self.authenticator.as_mut() else {
            return Ok(());
        };
        let method = connack.authentication_method().map(|m| m.as_str());
        if method.is_some_and(|m| m != authenticator.method()) {
            return Err(format!(
                "CONNACK for method {method:?}, the client uses {:?}",
                authenticator.method()
            ));
        }
        authenticator
            .finish(connack.authentication_data())
            .map_err(|e| e.to_string())
    }

    /// MQTT 5: resolves the Topic Alias of an incoming `publish` and checks it against our
    /// Receive Maximum; false when the message ended the connection.
    #[inline(never)]
    fn accept_publish_v5(&mut self, publish: &mut Publish) -> bool {
        if let Some(alias) = publish.properties().topic_alias {
            // MQTT 5: the alias is this connection's business; the application sees the topic.
            let topic = (!publish.topic_bytes().is_empty()).then(|| publish.topic_name());
            match self.aliases_in.resolve(alias, topic) {
                Ok(topic) => {
                    if publish.topic_bytes().is_empty() {
                        publish.set_topic(topic);
                    }
                    publish.properties_mut().topic_alias = None;
                }
                Err(AliasFault::AboveMaximum) => {
                    let violation = ProtocolViolation::TopicAliasAboveMaximum {
                        alias: alias.get(),
                        maximum: self.config.topic_alias_maximum,
                    };
                    self.fail(DisconnectReason::ProtocolViolation(violation));
                    return false;
                }
                Err(AliasFault::Unknown) => {
                    let violation = ProtocolViolation::UnknownTopicAlias(alias.get());
                    self.fail(DisconnectReason::ProtocolViolation(violation));
                    return false;
                }
            }
        }
        if publish.qos != QoS::AtMostOnce && self.receive_maximum_reached(publish) {
            let maximum = self
                .config
                .receive_maximum
                .map_or(u16::MAX, |max| max.get());
            let violation = ProtocolViolation::ReceiveMaximumExceeded { maximum };
            self.fail(DisconnectReason::ProtocolViolation(violation)); // MQTT-3.3.4-9
            return false;
        }
        true
    }

    /// MQTT 5: whether `publish`, a QoS 1/2 message, is one more than our Receive Maximum allows
    /// unacknowledged. A re-sent copy is not a new one.
    fn receive_maximum_reached(&self, publish: &Publish) -> bool {
        let Some(id) = publish.packet_id else {
            return false;
        };
        // A copy (DUP) is not a new message: the server counted it when it first sent it, and
        // may have our acknowledgement already.
        if publish.dup || self.incoming.is_held(id) || self.incoming.is_pending(id) {
            return false;
        }
        let maximum = self
            .config
            .receive_maximum
            .map_or(u16::MAX, |max| max.get());
        self.incoming.unacknowledged() >= usize::from(maximum)
    }

    /// MQTT 5: the server refused a message with a failure Reason Code: it is done.
    fn refused(&mut self, now: Instant, packet_id: PacketId, qos: QoS, reason: ServerReason) {
        self.record(SessionRecord::Completed(packet_id));
        self.ids.free(packet_id);
        self.events.push_back(Event::PublishRefused {
            packet_id,
            qos,
            reason,
        });
        self.lift_barrier(now, packet_id);
        self.pump(now);
    }

    /// Holds the acknowledgement of a message until the application gives it. A QoS 1 message
    /// counts against our Receive Maximum unless it is a re-sent copy (`dup`); a QoS 2 one is
    /// counted while its identifier is held instead.
    fn hold_ack(&mut self, packet_id: PacketId, qos: QoS, dup: bool) {
        self.incoming.push_ack(PendingAck {
            packet_id,
            qos,
            acked: false,
            counted: qos == QoS::AtLeastOnce && !dup,
        });
    }

    fn on_suback(&mut self, suback: SubAck) {
        let Some(subscribe) = self.subscriptions.take_subscribe(suback.packet_id) else {
            return; // not ours (or already answered)
        };
        if subscribe.filters.len() != suback.return_codes.len() {
            let violation = ProtocolViolation::SubAckCount {
                packet_id: suback.packet_id,
                expected: subscribe.filters.len(),
                received: suback.return_codes.len(),
            };
            self.subscriptions.pending_subscribe.push(subscribe);
            self.fail(DisconnectReason::ProtocolViolation(violation));
            return;
        }
        self.ids.free(suback.packet_id);
        let identifier = subscribe.properties().subscription_identifiers().next();
        let mut results = Vec::with_capacity(subscribe.filters.len());
        for (requested, code) in subscribe.filters.into_iter().zip(suback.return_codes) {
            let result = match code {
                SubscribeReturnCode::Success(qos) => {
                    let granted = SubscribeFilter {
                        qos,
                        ..requested.clone()
                    };
                    let identifiers = &mut self.subscriptions.identifiers;
                    match identifier {
                        Some(id) => identifiers.insert(requested.filter.clone(), id),
                        None => identifiers.remove(&requested.filter),
                    };
                    self.subscriptions
                        .active
                        .insert(requested.filter.clone(), granted.clone());
                    self.record(SessionRecord::Subscribed(granted));
                    Ok(qos)
                }
                SubscribeReturnCode::Failure | SubscribeReturnCode::Refused(_) => {
                    let refused = SubscribeRefused {
                        reason_code: code.reason_code(),
                    };
                    if self.subscriptions.remove(&requested.filter).is_some() {
                        self.record(SessionRecord::Unsubscribed(requested.filter.clone()));
                    }
                    Err(refused)
                }
            };
            results.push((requested.filter, result));
        }
        self.events.push_back(Event::Subscribed {
            packet_id: suback.packet_id,
            results,
        });
    }

    /// An outgoing QoS 1/2 message is done: free its identifier, report it, let the queue move.
    fn complete(&mut self, now: Instant, packet_id: PacketId, qos: QoS) {
        self.record(SessionRecord::Completed(packet_id));
        self.ids.free(packet_id);
        self.events.push_back(Event::Published { packet_id, qos });
        self.lift_barrier(now, packet_id);
        self.pump(now);
    }
}
