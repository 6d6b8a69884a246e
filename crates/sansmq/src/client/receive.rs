//! How the client answers each packet the broker sends.

use std::time::Instant;

use super::event::{DisconnectReason, Event, ProtocolViolation, SubscribeRefused};
use super::incoming::PendingAck;
use super::outgoing::Receipt;
use super::session_log::SessionRecord;
use super::unwritten_acks::AckKind;
use super::{Client, Ping, State};
use crate::packet::{
    ConnAck, ConnectReturnCode, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    SubAck, SubscribeFilter, SubscribeReturnCode,
};

impl Client {
    pub(super) fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.state == State::AwaitingConnAck {
            match packet {
                Packet::ConnAck(connack) => self.on_connack(now, connack),
                other => self.fail(DisconnectReason::ProtocolViolation(
                    ProtocolViolation::ExpectedConnAck(other.packet_type()),
                )), // MQTT-3.2.0-1
            }
            return;
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(now, publish),
            Packet::PubAck(PubAck { packet_id, .. }) => {
                if self.outgoing.acknowledge(packet_id).is_some() {
                    self.complete(now, packet_id, QoS::AtLeastOnce);
                } // an unknown PUBACK is a late duplicate: nothing to do
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
            Packet::SubAck(suback) => self.on_suback(suback),
            Packet::UnsubAck(unsuback) => {
                if let Some(unsubscribe) = self.subscriptions.take_unsubscribe(unsuback.packet_id) {
                    for filter in unsubscribe.filters {
                        self.subscriptions.active.remove(&filter);
                        self.record(SessionRecord::Unsubscribed(filter));
                    }
                    self.ids.free(unsuback.packet_id);
                    self.events.push_back(Event::Unsubscribed {
                        packet_id: unsuback.packet_id,
                    });
                }
            }
            Packet::PingResp => self.ping = Ping::Idle,
            Packet::ConnAck(_)
            | Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect(_)
            | Packet::Auth(_) => {
                let violation = ProtocolViolation::UnexpectedPacket(packet.packet_type());
                self.fail(DisconnectReason::ProtocolViolation(violation));
            }
        }
    }

    fn on_connack(&mut self, now: Instant, connack: ConnAck) {
        self.connack_deadline = None;
        if connack.code != ConnectReturnCode::Accepted {
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

    fn on_publish(&mut self, now: Instant, publish: Publish) {
        let manual = self.config.manual_acks;
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                if manual {
                    if self.incoming.is_pending(id) {
                        return; // re-sent before the application acknowledged it: delivered already
                    }
                    self.hold_ack(id, QoS::AtLeastOnce);
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
                        });
                        self.flush_acks(now);
                    }
                    return;
                }
                self.incoming.hold(id);
                if manual {
                    // Recorded when the application acknowledges it (`Client::ack`).
                    self.hold_ack(id, QoS::ExactlyOnce);
                } else {
                    self.record(SessionRecord::IncomingHeld(id));
                    self.send_ack_always(now, AckKind::PubRec, id);
                }
            }
            _ => {} // QoS 0 (the decoder guarantees an id exactly for QoS 1/2)
        }
        self.events.push_back(Event::Message(publish));
    }

    fn hold_ack(&mut self, packet_id: PacketId, qos: QoS) {
        self.incoming.push_ack(PendingAck {
            packet_id,
            qos,
            acked: false,
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
        let mut results = Vec::with_capacity(subscribe.filters.len());
        for (requested, code) in subscribe.filters.into_iter().zip(suback.return_codes) {
            let result = match code {
                SubscribeReturnCode::Success(qos) => {
                    self.subscriptions
                        .active
                        .insert(requested.filter.clone(), qos);
                    self.record(SessionRecord::Subscribed(SubscribeFilter::new(
                        requested.filter.clone(),
                        qos,
                    )));
                    Ok(qos)
                }
                SubscribeReturnCode::Failure | SubscribeReturnCode::Refused(_) => {
                    if self
                        .subscriptions
                        .active
                        .remove(&requested.filter)
                        .is_some()
                    {
                        self.record(SessionRecord::Unsubscribed(requested.filter.clone()));
                    }
                    Err(SubscribeRefused)
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
