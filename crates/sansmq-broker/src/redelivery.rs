//! ApsaraMQ mode's periodic re-delivery: a QoS 1 message a connected client has not acknowledged
//! within [`ApsaraMqMode::redelivery_interval`](crate::ApsaraMqMode::redelivery_interval) is sent
//! again, with DUP and its packet id (MQTT-3.3.1-1), as the cloud service does.
//!
//! The timer ticks four times per interval instead of keeping a deadline per message, so sending
//! a message costs nothing extra: a tick stamps the messages it sees for the first time and sends
//! again those stamped at least an interval ago. A message therefore goes again between one and
//! one and a quarter intervals after it was last sent.

use std::time::{Duration, Instant};

use sansmq::packet::QoS;

use crate::connection::Phase;
use crate::router::send_publish;
use crate::server::Server;
use crate::session::Stage;

/// The shortest tick, so a tiny interval cannot make the loop spin.
const MIN_TICK: Duration = Duration::from_millis(5);

impl Server {
    /// How often the redelivery timer ticks, or `None` outside ApsaraMQ mode or with redelivery
    /// off.
    fn redelivery_tick(&self) -> Option<Duration> {
        let interval = self.config.apsaramq.as_ref()?.redelivery_interval;
        (!interval.is_zero()).then(|| (interval / 4).max(MIN_TICK))
    }

    /// When the redelivery timer next ticks, if it runs.
    pub(crate) fn redelivery_deadline(&self) -> Option<Instant> {
        self.redelivery_tick().map(|_| self.next_redelivery)
    }

    /// Sends again the QoS 1 messages connected clients left unacknowledged for an interval.
    pub(crate) fn redeliver(&mut self, now: Instant) {
        let (Some(tick), Some(mode)) = (self.redelivery_tick(), &self.config.apsaramq) else {
            return;
        };
        if now < self.next_redelivery {
            return;
        }
        self.next_redelivery = now + tick;
        let interval = mode.redelivery_interval;
        for session in self.sessions.values_mut() {
            let Some(conn) = session
                .connection
                .and_then(|token| self.conns.get_mut(&token))
            else {
                continue;
            };
            if !matches!(conn.phase, Phase::Connected(_)) {
                continue;
            }
            for entry in &mut session.inflight {
                if entry.stage != Stage::Published || entry.message.qos != QoS::AtLeastOnce {
                    continue;
                }
                match entry.unacked_since {
                    None => entry.unacked_since = Some(now),
                    Some(since) if now.duration_since(since) >= interval && conn.has_room() => {
                        tracing::debug!(
                            client_id = %session.client_id,
                            packet_id = entry.id.get(),
                            "re-delivering an unacknowledged QoS 1 message"
                        );
                        send_publish(conn, &entry.message, Some(entry.id), true);
                        entry.unacked_since = Some(now);
                    }
                    Some(_) => {}
                }
            }
        }
    }
}
