//! What is MQTT 5's alone in the broker: CONNACK's properties, Topic Aliases, refusing one
//! PUBLISH with a Reason Code, DISCONNECT from the client, and the properties a message keeps.

use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::Token;
use sansmq::MqttString;
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, Properties, PropertyContext, PubAck, PubRec,
    Publish, QoS, ReasonCode,
};

use crate::connection::Phase;
use crate::protocol::own_topic;
use crate::server::{CLOSE_LINGER, CloseReason, Server};
use crate::session::{Message, Mqtt5Parts};

impl Server {
    /// The keep-alive the client gets: its own, or for MQTT 5 the broker's cap when it asks for
    /// more or for none (sent as Server Keep Alive, MQTT-3.2.2-21).
    pub(crate) fn granted_keep_alive(&self, connect: &Connect) -> u16 {
        if !connect.protocol.is_v5() {
            return connect.keep_alive;
        }
        let cap = match (&self.config.apsaramq, self.config.max_keep_alive) {
            (Some(_), 0) => APSARAMQ_MAX_KEEP_ALIVE,
            (Some(_), cap) => cap.min(APSARAMQ_MAX_KEEP_ALIVE),
            (None, cap) => cap,
        };
        match (cap, connect.keep_alive) {
            (0, asked) => asked,
            (cap, 0) => cap,
            (cap, asked) => asked.min(cap),
        }
    }

    /// An accepting MQTT 5 CONNACK: what this broker allows, where it differs from what a client
    /// assumes when a property is absent (MQTT 5.0 section 3.2.2.3).
    pub(crate) fn connack_v5(
        &self,
        connect: &Connect,
        client_id: &str,
        assigned_id: bool,
        keep_alive: u16,
    ) -> ConnAck {
        let mut connack = ConnAck::new(ConnectReturnCode::Accepted);
        let properties = connack.properties_mut();
        if let Some(max) =
            NonZeroU16::new(self.config.receive_maximum).filter(|m| m.get() != u16::MAX)
        {
            properties.receive_maximum = Some(max);
        }
        if let Some(max) = u32::try_from(self.config.max_packet_size)
            .ok()
            .and_then(NonZeroU32::new)
        {
            properties.maximum_packet_size = Some(max); // the client must not send more
        }
        if self.config.topic_alias_maximum != 0 {
            properties.topic_alias_maximum = Some(self.config.topic_alias_maximum);
        }
        if keep_alive != connect.keep_alive {
            properties.server_keep_alive = Some(keep_alive); // MQTT-3.2.2-21
        }
        if assigned_id {
            // MQTT-3.2.2-16: the client learns the id it was given.
            properties.set_assigned_client_identifier(MqttString::try_from(client_id).ok());
        }
        if self.config.apsaramq.is_some() {
            properties.retain_available = Some(false); // ApsaraMQ keeps no retained messages
        }
        // No shared subscriptions here: a `$share/` filter is refused (MQTT 5.0 section 4.8.2).
        properties.shared_subscription_available = Some(false);
        connack
    }

    /// Refuses an MQTT 5 CONNECT with `code` (MQTT-3.2.2-8), then closes (MQTT-3.2.2-7).
    pub(crate) fn refuse_v5(&mut self, token: Token, code: ReasonCode, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        tracing::info!(peer = %conn.peer, %code, "CONNECT refused");
        conn.send(ConnAck::from_reason_code(code));
        conn.phase = Phase::Closing {
            deadline: now + CLOSE_LINGER,
        };
    }

    /// Resolves an MQTT 5 PUBLISH's Topic Alias (MQTT 5.0 section 3.3.2.3.4): a topic with an
    /// alias sets it, an empty topic uses it. `Err` closes the connection with that reason.
    pub(crate) fn resolve_topic_alias(
        &mut self,
        token: Token,
        publish: &mut Publish,
    ) -> Result<(), CloseReason> {
        let Some(alias) = publish.properties().topic_alias else {
            return Ok(());
        };
        let Some(client) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) else {
            return Ok(());
        };
        // MQTT-3.3.2-9: an alias above the broker's Topic Alias Maximum (0x94).
        if alias.get() > client.topic_alias_maximum {
            return Err(CloseReason::Violation(
                ReasonCode::TopicAliasInvalid,
                format!(
                    "Topic Alias {alias} over the Topic Alias Maximum {}",
                    client.topic_alias_maximum
                ),
            ));
        }
        if publish.topic().is_empty() {
            match client.topic_aliases.get(&alias) {
                Some(topic) => publish.set_topic(topic.clone()),
                None => {
                    return Err(CloseReason::Violation(
                        ReasonCode::ProtocolError,
                        format!("Topic Alias {alias} used before it was set"),
                    ));
                }
            }
        } else {
            client
                .topic_aliases
                .insert(alias, own_topic(&publish.topic_name()));
        }
        // MQTT-3.3.2-7: an alias means something on this connection only; never forwarded.
        publish.properties_mut().topic_alias = None;
        Ok(())
    }

    /// Refuses one MQTT 5 PUBLISH with `code` in its PUBACK or PUBREC; a QoS 0 one is dropped.
    pub(crate) fn refuse_publish(&mut self, token: Token, publish: &Publish, code: ReasonCode) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => conn.send(PubAck::with_reason_code(id, code)),
            // A refused QoS 2 message ends with this PUBREC (MQTT 5.0 section 4.3.3).
            (QoS::ExactlyOnce, Some(id)) => conn.send(PubRec::with_reason_code(id, code)),
            _ => {}
        }
    }

    /// DISCONNECT from the client: the will is discarded (MQTT-3.14.4-3), unless an MQTT 5
    /// client asks for it with 0x04; an MQTT 5 Session Expiry Interval in it replaces the
    /// CONNECT's, but not from 0 (MQTT 5.0 section 3.14.2.2.2).
    pub(crate) fn handle_disconnect(&mut self, token: Token, disconnect: &Disconnect) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let v5 = conn.protocol.is_v5();
        let Some(client) = conn.client_mut() else {
            return;
        };
        let mut reason = CloseReason::Disconnect;
        if v5 {
            if disconnect.reason_code == ReasonCode::DisconnectWithWillMessage {
                reason = CloseReason::DisconnectWithWill;
            } else {
                client.will = None;
            }
            if let Some(expiry) = disconnect.properties().session_expiry_interval {
                if client.session_expiry == 0 && expiry != 0 {
                    return self.close(
                        token,
                        CloseReason::Violation(
                            ReasonCode::ProtocolError,
                            "a Session Expiry Interval in DISCONNECT after 0 in CONNECT".to_owned(),
                        ),
                    );
                }
                client.session_expiry = expiry;
                let client_id = client.client_id.clone();
                if let Some(session) = self.sessions.get_mut(&client_id) {
                    session.clean = expiry == 0;
                    session.expiry =
                        (expiry != u32::MAX).then(|| Duration::from_secs(u64::from(expiry)));
                }
            }
        } else {
            client.will = None; // MQTT-3.14.4-3
        }
        self.close(token, reason);
    }
}

/// The broker's longest keep-alive in ApsaraMQ mode: 8 minutes.
pub(crate) const APSARAMQ_MAX_KEEP_ALIVE: u16 = 480;

/// Moves a received MQTT 5 PUBLISH's properties into `message`, copied out of the read buffer
/// (they hold slices of it), with the Message Expiry Interval turned into a deadline.
pub(crate) fn own_properties(message: &mut Message, mut properties: Properties, now: Instant) {
    // MQTT-3.3.4-6: a client's PUBLISH has none; the broker adds each subscriber's own.
    properties.clear_subscription_identifiers();
    if properties.is_empty() {
        return;
    }
    let expires_at = properties
        .message_expiry_interval
        .and_then(|secs| now.checked_add(Duration::from_secs(u64::from(secs))));
    // An encode and decode gives properties whose strings share one fresh buffer.
    let mut wire = BytesMut::with_capacity(properties.encoded_len());
    let owned = properties
        .encode(PropertyContext::Publish, &mut wire)
        .ok()
        .and_then(|()| Properties::decode(PropertyContext::Publish, &wire.freeze()).ok())
        .map(|(owned, _)| owned);
    message.v5 = Some(Arc::new(Mqtt5Parts {
        properties: owned.unwrap_or(properties),
        expires_at,
    }));
}
