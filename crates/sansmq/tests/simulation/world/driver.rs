//! The driver half of [`World`]: what a real driver around the client does, plus the faults that
//! happen to it. It drains events after every input, reconnects after `Disconnected` with a
//! backoff, subscribes again when the session may be gone, publishes the workload (backing off on
//! `QueueFull`), and in manual-ack mode acknowledges messages after a delay, in whatever order the
//! delays give. Its process may restart cleanly (from the client's snapshot) or crash (from what
//! its session store made durable).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use sansmq::client::{DisconnectReason, Event, SessionRecording, SessionSnapshot};
use sansmq::packet::{
    ConnectReturnCode, EncodeError, Properties, QoS, ReasonCode, SubscribeFilter,
};
use sansmq::{Client, CommandError, TopicFilter};

use super::World;
use crate::invariants::{Check, ensure};
use crate::scenario::Fault;

impl World {
    /// Scheduled actions due now: faults, reconnects, publishes, manual acks.
    pub(super) fn due(&mut self) -> Result<bool, String> {
        let now = self.now;
        let mut progress = false;
        if self.broker_up_at.is_some_and(|t| t <= now) {
            self.broker_up_at = None;
            self.broker.up = true;
            self.trace(|| "broker up".into());
            progress = true;
        }
        while self.faults.front().is_some_and(|f| self.start + f.0 <= now) {
            let (_, fault) = self.faults.pop_front().expect("checked");
            self.apply_fault(fault)?;
            progress = true;
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.reconnect()?;
            progress = true;
        }
        if self.subscribed && self.publish_retry_at.is_none_or(|t| t <= now) {
            self.publish_retry_at = None;
            while self.next_msg < self.sc.messages.len()
                && self.start + self.sc.messages[self.next_msg].at <= now
            {
                progress = true;
                if !self.publish_next()? {
                    break;
                }
            }
        }
        if self.acks.iter().any(|a| a.0 <= now) {
            let (ready, later): (Vec<_>, Vec<_>) = self.acks.drain(..).partition(|a| a.0 <= now);
            self.acks = later;
            for (_, id, _) in ready {
                self.bump("manual acks");
                self.client
                    .ack(now, id)
                    .map_err(|e| format!("ack({id}) of a delivered message failed: {e}"))?;
                self.client_io(0)?;
            }
            progress = true;
        }
        while self.noise.front().is_some_and(|&n| self.start + n <= now) {
            self.noise.pop_front();
            self.noise_request()?;
            progress = true;
        }
        Ok(progress)
    }

    /// Publishes the next message of the workload; false if the client pushed back.
    fn publish_next(&mut self) -> Result<bool, String> {
        let seq = self.next_msg;
        let m = self.sc.messages[seq].clone();
        let payload = Bytes::from(self.sc.payload(seq));
        let topic = self.topics[m.topic].clone();
        let result = match m.expiry {
            Some(secs) => {
                let mut properties = Properties::new();
                properties.message_expiry_interval = Some(secs);
                self.client
                    .publish_with(self.now, topic, m.qos, false, payload, properties)
            }
            None => self.client.publish(self.now, topic, m.qos, false, payload),
        };
        match result {
            Ok(id) => {
                // `Ok` counts once the store holds the message.
                self.persist()?;
                self.trace(|| format!("app: publish #{seq} {} -> id {id:?}", m.qos));
                self.ledger.published(&self.sc, seq, id, self.now)?;
                self.next_msg += 1;
                self.client_io(0)?;
                Ok(true)
            }
            Err(CommandError::QosNotSupported { requested, maximum })
                if self.sc.qos2_refused() && requested == QoS::ExactlyOnce =>
            {
                // The server's Maximum QoS 1: the application learns it at once.
                ensure!(
                    maximum == QoS::AtLeastOnce,
                    "publish #{seq} refused for Maximum QoS {maximum}; the server said 1"
                );
                self.trace(|| {
                    format!("app: publish #{seq} {requested} refused: QoS not supported")
                });
                self.ledger.not_supported(&self.sc, seq)?;
                self.next_msg += 1;
                Ok(true)
            }
            Err(CommandError::Encode(EncodeError::PacketTooLarge { size, max }))
                if self.sc.server_maximum_packet_size() == Some(max) =>
            {
                // Too large for the server's Maximum Packet Size: the application learns it at
                // once.
                self.trace(|| format!("app: publish #{seq} refused: {size} bytes, above {max}"));
                self.ledger.too_large(&self.sc, seq, max)?;
                self.next_msg += 1;
                Ok(true)
            }
            Err(CommandError::QueueFull { .. } | CommandError::NotConnected) => {
                // Backpressure (or draining before a disconnect): try again a little later.
                self.bump("publish pushed back");
                let wait = self.rng.millis(10, 500);
                self.publish_retry_at = Some(self.now + wait);
                Ok(false)
            }
            Err(e) => Err(format!("publish #{seq} failed: {e}")),
        }
    }

    /// Subscribes to or unsubscribes from an unrelated filter, so SUBSCRIBE and UNSUBSCRIBE
    /// share packet ids with the workload's PUBLISHes.
    fn noise_request(&mut self) -> Check {
        if !self.client.is_connected() {
            return Ok(());
        }
        let filter = TopicFilter::try_from(format!("noise/{}", self.rng.below(3))).unwrap();
        let subscribed = self.client.subscriptions().any(|(f, _)| *f == filter);
        let result = if subscribed {
            self.client.unsubscribe(self.now, vec![filter]).map(|_| ())
        } else {
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][self.rng.usize(0, 2)];
            self.client
                .subscribe(self.now, vec![SubscribeFilter::new(filter, qos)])
                .map(|_| ())
        };
        result.map_err(|e| format!("noise (un)subscribe failed: {e}"))?;
        self.bump("noise requests");
        self.client_io(0)?;
        Ok(())
    }

    fn reconnect(&mut self) -> Check {
        if !self.broker.up {
            // Connection refused: try again later.
            self.bump("connection refused (broker down)");
            let wait = self.backoff() + Duration::from_millis(100);
            self.reconnect_at = Some(self.now + wait);
            return Ok(());
        }
        let conn = self.net.open(&mut self.rng);
        self.broker.accept(self.now, conn);
        self.conn = Some(conn);
        self.connack_seen = false;
        self.ping_outstanding = false;
        self.ack_order.connection();
        self.client_aliases.clear();
        self.unacked_out.clear();
        if let Some((dir, after)) = self.cut_next.take() {
            self.net.arm_cut(conn, dir, after);
        }
        self.opened.insert(conn, self.now);
        self.trace(|| format!("driver: open conn {conn}, connect"));
        self.bump("connects");
        self.client
            .connect(self.now)
            .map_err(|e| format!("connect failed: {e}"))?;
        self.tx_seen = 0; // CONNECT replaced what was left
        self.client_io(0)?;
        Ok(())
    }

    fn apply_fault(&mut self, fault: Fault) -> Check {
        let conn = self.conn;
        self.trace(|| format!("FAULT {fault:?} on conn {conn:?}"));
        let now = self.now;
        // Another fault may end the stalled connection its own way.
        self.stalled = None;
        match fault {
            Fault::Cut { dir, after } => {
                if let Some(conn) = self.conn {
                    self.bump("fault: cut armed");
                    self.net.arm_cut(conn, dir, after);
                }
            }
            Fault::CutNext { dir, after } => {
                self.bump("fault: cut armed on the next connection");
                self.cut_next = Some((dir, after));
            }
            Fault::Reset => {
                if let Some(conn) = self.conn {
                    self.bump("fault: reset");
                    self.net.break_conn(now, conn, &mut self.rng);
                }
            }
            Fault::Blackhole => {
                if let Some(conn) = self.conn {
                    self.bump("fault: black hole");
                    self.net.blackhole(conn);
                }
            }
            Fault::Spike { extra, lasting } => {
                if let Some(conn) = self.conn {
                    self.bump("fault: latency spike");
                    self.net.spike(conn, now + lasting, extra);
                }
            }
            Fault::BrokerRestart { keep, down } => {
                if self.broker.up {
                    self.bump(if keep {
                        "fault: broker restart keeping sessions"
                    } else {
                        "fault: broker restart losing sessions"
                    });
                    for conn in self.broker.restart(keep) {
                        self.net.break_conn(now, conn, &mut self.rng);
                    }
                    self.broker.out.clear();
                    self.broker_up_at = Some(now + down);
                    self.broker_io()?;
                }
            }
            Fault::Refuse { count } => {
                self.bump("fault: refuse connects");
                self.broker.refuse += count;
            }
            Fault::Disconnect { drain } => {
                if self.client.is_connected() {
                    self.bump("fault: app disconnects");
                    self.client
                        .disconnect(now, drain)
                        .map_err(|e| format!("disconnect failed: {e}"))?;
                    self.client_io(0)?;
                }
            }
            Fault::ClientRestart => self.restart_client()?,
            Fault::ClientCrash => self.crash_client()?,
            Fault::StopReading { full } => {
                if let Some(conn) = self.conn.filter(|_| self.client.is_connected()) {
                    if let Some(in_flight) = self.net.stop_broker_reads(conn, full) {
                        self.bump(if full {
                            "fault: broker stops reading, socket full"
                        } else {
                            "fault: broker stops reading"
                        });
                        self.broker.stop_reading(now, conn);
                        // A PINGREQ written before (or bytes in flight, which may hold one) is
                        // never read: its missing PINGRESP may speak first.
                        let strict = full && !in_flight && !self.ping_outstanding;
                        self.stalled = Some((conn, strict));
                    }
                }
            }
        }
        Ok(())
    }

    /// The application's process restarts cleanly: the OS closes its socket, and a new client
    /// resumes from the old one's snapshot (what a perfect store would have kept; a real one
    /// writes it as its last record).
    fn restart_client(&mut self) -> Check {
        self.bump("fault: client restart from snapshot");
        let snapshot = self.client.snapshot();
        let recording = self.sc.session_recording;
        if recording != SessionRecording::Off {
            self.store.check_replays_to(&snapshot, recording)?;
            self.store.compact(snapshot.clone());
        }
        self.new_process(snapshot)
    }

    /// The application's process crashes: the OS closes its socket, and a new client resumes the
    /// session its store replays, from the records that were durable and those of the buffered
    /// ones the OS happened to write.
    fn crash_client(&mut self) -> Check {
        self.bump("fault: client crash from store");
        let recording = self.sc.session_recording;
        self.store
            .check_replays_to(&self.client.snapshot(), recording)?;
        let buffered = self.store.buffered();
        // Mostly all of the buffer is lost; otherwise the OS wrote some of it.
        let flushed = if self.rng.percent(50) {
            0
        } else {
            self.rng.usize(0, buffered)
        };
        let (session, replayed) = self.store.crash(flushed)?;
        self.trace(|| {
            format!(
                "store: crash: {replayed} records replayed, {} of {buffered} buffered lost: \
                 {} in flight, {} queued",
                buffered - flushed,
                session.inflight.len(),
                session.queued.len()
            )
        });
        self.count("store: records replayed at a crash", replayed as u64);
        self.count(
            "store: records lost at a crash",
            (buffered - flushed) as u64,
        );
        self.ledger.crashed(&self.sc, &session)?;
        self.new_process(session)
    }

    /// A new process resumes `session` in a new client.
    fn new_process(&mut self, session: SessionSnapshot) -> Check {
        let config = self.client.config().clone();
        if let Some(conn) = self.conn.take() {
            self.net.close(self.now, conn, true);
        }
        self.client = Client::with_session(config, session)
            .map_err(|e| format!("a session did not restore: {e}"))?;
        // The application's own state went with its process, and it cannot know whether its
        // predecessor's last CONNECT was answered. What it had not acknowledged comes again.
        for (_, _, seq) in self.acks.drain(..) {
            self.ledger.abandoned(seq);
        }
        self.sub_pending = None;
        self.uncertain = true;
        self.ack_order.forget();
        self.ack_order.transmit_reset();
        self.tx_seen = 0;
        let wait = self.backoff();
        self.reconnect_at = Some(self.now + wait);
        Ok(())
    }

    pub(super) fn on_event(&mut self, event: Event) -> Check {
        match event {
            Event::Connected { session_present } => {
                self.trace(|| format!("client: Connected session_present={session_present}"));
                self.bump(if session_present {
                    "connected, session present"
                } else {
                    "connected, no session"
                });
                self.connack_seen = true;
                let epoch = self.ledger.attached_epoch();
                if !session_present {
                    // The client forgets the lost session's QoS 2 ids and held acks, and the
                    // application knows not to acknowledge what it received before.
                    self.stale_held.clear();
                    self.acks.clear();
                    self.ack_order.forget();
                } else if epoch != self.seen_epoch {
                    // The session the client resumed is not the one it last saw: a session was
                    // created by a CONNECT whose CONNACK never reached it. Neither the client
                    // nor the application can know; what they hold is stale.
                    self.bump("unnoticed session losses (CONNACK lost)");
                    let seen = self.seen_epoch;
                    self.trace(|| format!("UNNOTICED: session {epoch} replaced {seen}"));
                    self.stale_held = self
                        .client
                        .snapshot()
                        .awaiting_release
                        .into_iter()
                        .collect();
                    self.ack_order.set_aside();
                }
                self.seen_epoch = epoch;
                if (!session_present || self.uncertain)
                    && self.client.subscriptions().next().is_some()
                {
                    self.client
                        .resubscribe(self.now)
                        .map_err(|e| format!("resubscribe failed: {e}"))?;
                    self.bump("resubscribes");
                }
                self.uncertain = false;
                self.subscribe_missing()?;
            }
            Event::Message(p) => {
                self.trace(|| {
                    format!(
                        "client: Message {} {} id {:?} dup={} #{:?}",
                        p.topic(),
                        p.qos,
                        p.packet_id,
                        p.dup,
                        p.payload_bytes()
                            .get(..8)
                            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
                    )
                });
                let seq = self.ledger.delivered(&self.sc, &p)?;
                if self.sc.manual_acks {
                    if let Some(id) = p.packet_id {
                        let (lo, hi) = self.sc.ack_delay_ms;
                        let at = self.now + self.rng.millis(lo, hi);
                        self.acks.push((at, id, seq));
                    }
                }
            }
            Event::Published { packet_id, qos } => {
                self.trace(|| format!("client: Published id {packet_id} {qos}"));
                self.ledger.completed(&self.sc, packet_id, qos)?;
            }
            Event::PublishRefused {
                packet_id,
                qos,
                reason,
            } => {
                self.trace(|| {
                    format!(
                        "client: PublishRefused id {packet_id} {qos} {:?}",
                        reason.reason_code
                    )
                });
                self.bump("v5: PublishRefused");
                self.ledger.refused(&self.sc, packet_id, qos)?;
            }
            Event::Expired { topic, packet_id } => {
                self.trace(|| format!("client: Expired {topic} id {packet_id:?}"));
                self.bump("v5: Expired");
                self.ledger.expired(&self.sc, packet_id, self.now)?;
            }
            Event::Unsendable {
                topic,
                packet_id,
                error,
            } => {
                self.trace(|| format!("client: Unsendable {topic} id {packet_id:?}: {error}"));
                self.bump("v5: Unsendable");
                self.ledger.unsendable(&self.sc, packet_id, &error)?;
            }
            Event::Dropped { packet_id } => {
                self.trace(|| format!("client: Dropped id {packet_id}"));
                self.ledger.dropped(&self.sc, packet_id)?;
            }
            Event::Subscribed { packet_id, results } => {
                self.trace(|| format!("client: Subscribed id {packet_id} {results:?}"));
                for (filter, result) in &results {
                    let Some(t) = self
                        .sc
                        .topics
                        .iter()
                        .position(|t| t.filter == filter.as_str())
                    else {
                        // Noise: granted, unless this broker refuses it.
                        let refused = self
                            .sc
                            .broker
                            .v5
                            .as_ref()
                            .is_some_and(|v5| v5.refuse_filter)
                            && filter.as_str() == crate::model_broker::REFUSED_FILTER;
                        match result {
                            Err(r) if refused => ensure!(
                                r.reason_code == ReasonCode::NotAuthorized,
                                "SUBACK for {filter:?}: {r}, the broker refused with 0x87"
                            ),
                            Ok(_) if !refused => {}
                            other => {
                                return Err(format!(
                                    "SUBACK for {filter:?}: {other:?}, the broker refused it: \
                                     {refused}"
                                ));
                            }
                        }
                        if refused {
                            self.bump("v5: SubscribeRefused (checked)");
                        }
                        continue;
                    };
                    let granted = self.sc.granted(t);
                    ensure!(
                        *result == Ok(granted),
                        "SUBACK for {filter:?}: {result:?}, the broker grants {granted}"
                    );
                }
                if self.sub_pending == Some(packet_id) {
                    self.sub_pending = None;
                }
                if !self.subscribed && self.missing_filters().is_empty() {
                    self.subscribed = true;
                    self.trace(|| "app: subscribed, the workload starts".into());
                }
            }
            Event::Unsubscribed { packet_id } => {
                self.trace(|| format!("client: Unsubscribed id {packet_id}"));
            }
            Event::Disconnected { reason } => self.on_disconnected(reason)?,
            other => return Err(format!("unexpected event {other:?}")),
        }
        Ok(())
    }

    fn missing_filters(&self) -> Vec<SubscribeFilter> {
        let have: BTreeSet<&str> = self
            .client
            .subscriptions()
            .map(|(f, _)| f.as_str())
            .collect();
        self.sc
            .topics
            .iter()
            .filter(|t| !have.contains(t.filter.as_str()))
            .map(|t| {
                SubscribeFilter::new(
                    TopicFilter::try_from(t.filter.as_str()).unwrap(),
                    t.requested,
                )
            })
            .collect()
    }

    /// Subscribes to the workload's filters the client does not hold yet.
    fn subscribe_missing(&mut self) -> Check {
        if self.sub_pending.is_some() {
            return Ok(()); // re-sent by the client on every reconnect until answered
        }
        let missing = self.missing_filters();
        if !missing.is_empty() {
            let id = self
                .client
                .subscribe(self.now, missing)
                .map_err(|e| format!("subscribe failed: {e}"))?;
            self.sub_pending = Some(id);
        }
        Ok(())
    }

    fn on_disconnected(&mut self, reason: DisconnectReason) -> Check {
        self.trace(|| format!("client: Disconnected {reason:?}"));
        let name = match &reason {
            DisconnectReason::Requested => "disconnected: requested",
            DisconnectReason::TransportClosed => "disconnected: transport closed",
            DisconnectReason::KeepAliveTimeout => "disconnected: keep-alive timeout",
            DisconnectReason::TransmitStalled => "disconnected: transmit stalled",
            DisconnectReason::ConnAckTimeout => "disconnected: CONNACK timeout",
            DisconnectReason::Refused(ConnectReturnCode::ServerUnavailable) => {
                "disconnected: refused"
            }
            DisconnectReason::ConnectRefused(r)
                if r.reason_code == ReasonCode::ServerUnavailable =>
            {
                "disconnected: refused (MQTT 5)"
            }
            DisconnectReason::ServerDisconnected(r)
                if r.reason_code == ReasonCode::KeepAliveTimeout =>
            {
                "disconnected: server DISCONNECT, keep-alive timeout (MQTT 5)"
            }
            // The CONNECT of a connection the client gave up (a crash, a CONNACK timeout) may
            // reach the broker after the next one's, and take the session over from it.
            DisconnectReason::ServerDisconnected(r)
                if r.reason_code == ReasonCode::SessionTakenOver =>
            {
                "disconnected: server DISCONNECT, session taken over (MQTT 5)"
            }
            // A session lost unnoticed leaves the client holding QoS 2 identifiers no PUBREL will
            // free, which count against its Receive Maximum while the new session's broker, not
            // knowing them, fills its own count (an MQTT limit: neither side can tell).
            DisconnectReason::ProtocolViolation(
                sansmq::client::ProtocolViolation::ReceiveMaximumExceeded { .. },
            ) if !self.stale_held.is_empty() => {
                "disconnected: our Receive Maximum, with identifiers of a session lost unnoticed"
            }
            other => return Err(format!("the client gave up the connection: {other}")),
        };
        self.bump(name);
        let refused = matches!(
            reason,
            DisconnectReason::Refused(_) | DisconnectReason::ConnectRefused(_)
        );
        if !self.connack_seen && !refused {
            self.uncertain = true;
        }
        if let Some((stalled, strict)) = self.stalled.take() {
            let expected = reason == DisconnectReason::TransmitStalled
                || (!strict && reason == DisconnectReason::KeepAliveTimeout);
            ensure!(
                self.conn != Some(stalled) || expected,
                "the broker stopped reading conn {stalled} (nothing written could reach it: \
                 {strict}), which ended with {reason:?}, not TransmitStalled"
            );
            if self.conn == Some(stalled) && strict {
                self.bump("stopped reading, nothing in flight: ended TransmitStalled");
            }
        }
        if let Some(conn) = self.conn.take() {
            let opened = self.opened.get(&conn).copied();
            if let (Some(quiet), Some(opened)) = (self.quiet_since, opened) {
                ensure!(
                    opened < quiet || reason == DisconnectReason::Requested,
                    "connection {conn}, opened after the faults ended, was lost: {reason}"
                );
            }
            // What is left (the DISCONNECT after a requested disconnect) goes out, then close.
            self.tap_transmit()?;
            if let Some(bytes) = self.client.poll_transmit() {
                let n = self.net.client_write(self.now, conn, bytes, &mut self.rng);
                self.client.handle_transmitted(self.now, n);
                self.tx_seen = self.tx_seen.saturating_sub(n);
                self.ack_order.written(n);
            }
            self.net.close(self.now, conn, true);
        }
        let mut wait = self.backoff();
        if reason == DisconnectReason::Requested {
            wait += self.rng.millis(500, 5000);
        }
        self.reconnect_at = Some(self.now + wait);
        Ok(())
    }
}
