//! [`Diagnostics`]: explaining a broker that hangs up. Brokers such as ApsaraMQ answer a topic the
//! client may not use, or a second client with the same id, by closing the connection without a
//! word. A close alone looks like a network fault; its timing tells the likelier story.
//!
//! The story must not mislead. A broker that is killed or restarted closes its connections too,
//! right after whatever the client last sent. So only a clean close (end of stream) right after
//! the first use of a topic is blamed on that topic at once; a reset is blamed only once the broker
//! proves alive (the next CONNACK, see [`Diagnostics::on_connected`]); and when the next connection
//! attempt is refused or times out, that attempt's error says the broker is probably down
//! ([`Diagnosis::BrokerDown`]), not that the topic was forbidden.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use sansmq::DisconnectReason;
use sansmq::packet::PacketId;

use crate::Error;

/// How soon after the first SUBSCRIBE or PUBLISH to a topic a close by the broker points at that
/// topic. ApsaraMQ closes at once; a network fault this close to it is unlikely.
pub const NOT_AUTHORISED_WINDOW: Duration = Duration::from_secs(1);

/// A connection the broker closed this soon after CONNACK was cut short: two clients with the same
/// id take the connection from each other about as fast as they reconnect.
pub const SHORT_CONNECTION: Duration = Duration::from_secs(10);

/// Short connections in a row that make a duplicate client id the likely cause.
pub const SHORT_CONNECTIONS_FOR_DUPLICATE: u32 = 3;

/// Topics remembered per connection; past this, new topics are not diagnosed (memory stays bounded
/// for clients that publish to ever new topics).
const MAX_TOPICS: usize = 1024;

/// What the client sent that the broker may have refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A SUBSCRIBE.
    Subscribe,
    /// A PUBLISH.
    Publish,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Subscribe => "SUBSCRIBE to",
            Self::Publish => "PUBLISH to",
        })
    }
}

/// The likely reason the broker closed the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// The broker closed the connection right after the first use of a topic.
    NotAuthorised {
        /// What was sent.
        operation: Operation,
        /// The topic name or filter.
        topic: String,
        /// How long after sending it the connection closed.
        after: Duration,
    },
    /// The broker closed the connection right after the first use of a topic, and then the next
    /// connection attempt failed at the transport: the broker is down or unreachable, which
    /// explains the close better than the topic.
    BrokerDown {
        /// What was sent before the close.
        operation: Operation,
        /// The topic name or filter.
        topic: String,
        /// Why the next attempt failed (`connection refused`, a timeout...).
        reason: String,
    },
    /// The broker keeps closing the connection shortly after accepting it.
    DuplicateClientId {
        /// Our client id.
        client_id: String,
        /// Short connections in a row.
        short_connections: u32,
    },
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthorised {
                operation,
                topic,
                after,
            } => write!(
                f,
                "the broker closed the connection {} ms after {operation} {topic:?}: probably not \
                 authorised for topic {topic:?} (check that the topic exists and that this client \
                 may use it)",
                after.as_millis()
            ),
            Self::BrokerDown {
                operation,
                topic,
                reason,
            } => write!(
                f,
                "the broker closed the connection right after {operation} {topic:?} and the next \
                 connection attempt failed ({reason}): the broker is probably down or unreachable \
                 (the close was not about topic {topic:?})"
            ),
            Self::DuplicateClientId {
                client_id,
                short_connections,
            } => write!(
                f,
                "the broker closed the connection shortly after accepting it, {short_connections} \
                 times in a row: probably a duplicate client id (another client is connected as \
                 {client_id:?}, and each takes over from the other)"
            ),
        }
    }
}

/// The first SUBSCRIBE or PUBLISH to a topic in this connection.
#[derive(Debug)]
struct FirstUse {
    operation: Operation,
    topic: String,
    sent_at: Instant,
    /// The packet whose acknowledgement clears the suspicion; `None` for QoS 0 PUBLISH.
    awaiting: Option<PacketId>,
}

/// Watches one client's connections and explains closes by the broker. Feed it what the client
/// sends and when connections start and end; it keeps one set of topic names per connection.
#[derive(Debug)]
pub struct Diagnostics {
    client_id: String,
    connected_at: Option<Instant>,
    /// The topics and filters used in this connection, as bytes (looked up without a UTF-8 check).
    used_topics: HashSet<Vec<u8>>,
    /// The topic the last PUBLISH went to, when it is among `used_topics`: a stream of messages
    /// to one topic costs a comparison, not a set lookup ([`is_first_use`](Self::is_first_use)).
    last_published: Vec<u8>,
    first_use: Option<FirstUse>,
    short_connections: u32,
    /// A close right after the first use of a topic, awaiting the next connection attempt's
    /// verdict: a CONNACK says the broker is alive, a refused attempt that it is down.
    suspect: Option<Suspect>,
}

/// A not-authorised suspicion and whether it was reported already.
#[derive(Debug)]
struct Suspect {
    diagnosis: Diagnosis,
    /// The close was a clean end of stream, reported as [`Diagnosis::NotAuthorised`] at once; a
    /// reset was reported as the IO error it is.
    reported: bool,
}

impl Diagnostics {
    /// Diagnostics for the client `client_id`.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            connected_at: None,
            used_topics: HashSet::new(),
            last_published: Vec::new(),
            first_use: None,
            short_connections: 0,
            suspect: None,
        }
    }

    /// CONNACK accepted the connection at `now`. Returns the diagnosis of the previous
    /// connection's end when only this proves it: that connection was reset right after the
    /// first use of a topic, and the broker is alive (log it; the loss itself was reported as the
    /// reset it was).
    pub fn on_connected(&mut self, now: Instant) -> Option<Diagnosis> {
        self.connected_at = Some(now);
        self.used_topics.clear();
        self.last_published.clear();
        self.first_use = None;
        self.suspect
            .take()
            .filter(|suspect| !suspect.reported)
            .map(|suspect| suspect.diagnosis)
    }

    /// A connection attempt failed before CONNACK with `error`: the error to report for it. After
    /// a close right after the first use of a topic, a failure to reach the broker at all
    /// (refused, unreachable, timed out) says the broker is down:
    /// [`Error::ClosedByBroker`] with [`Diagnosis::BrokerDown`].
    pub fn on_connect_failed(&mut self, error: Error) -> Error {
        let Some(suspect) = self.suspect.take() else {
            return error;
        };
        match (suspect.diagnosis, &error) {
            (
                Diagnosis::NotAuthorised {
                    operation, topic, ..
                },
                Error::Io { .. } | Error::Timeout(_),
            ) => Error::ClosedByBroker(Diagnosis::BrokerDown {
                operation,
                topic,
                reason: error.to_string(),
            }),
            // The broker answered (a CONNACK refusal, TLS): it is up; the rest says nothing.
            _ => error,
        }
    }

    /// The client sent `operation` for `topic` at `now`, as packet `awaiting` (`None` for a QoS 0
    /// PUBLISH, which is never acknowledged). Only the first use of a topic in a connection is
    /// remembered, so a steady stream to one topic costs a set lookup.
    pub fn on_sent(
        &mut self,
        now: Instant,
        operation: Operation,
        topic: &str,
        awaiting: Option<PacketId>,
    ) {
        if self.connected_at.is_none() || self.used_topics.contains(topic.as_bytes()) {
            return;
        }
        if self.used_topics.len() < MAX_TOPICS {
            self.used_topics.insert(topic.as_bytes().to_vec());
            self.first_use = Some(FirstUse {
                operation,
                topic: topic.to_owned(),
                sent_at: now,
                awaiting,
            });
        }
    }

    /// Whether a PUBLISH to `topic` now would be remembered by [`on_sent`](Self::on_sent): the
    /// first use of that topic in this connection. A caller asks before it publishes, so that it
    /// keeps the topic for `on_sent` only then; a stream to one topic answers `false` after one
    /// comparison.
    pub fn is_first_use(&mut self, topic: &[u8]) -> bool {
        if self.connected_at.is_none() || self.last_published == topic {
            return false;
        }
        if self.used_topics.contains(topic) {
            self.last_published.clear();
            self.last_published.extend_from_slice(topic);
            return false;
        }
        // Past the limit, `on_sent` remembers nothing new.
        self.used_topics.len() < MAX_TOPICS
    }

    /// The client subscribed again to `filters` after a reconnect, as packet `id`.
    pub fn on_resubscribed<'a>(
        &mut self,
        now: Instant,
        id: PacketId,
        filters: impl IntoIterator<Item = &'a str>,
    ) {
        for filter in filters {
            self.on_sent(now, Operation::Subscribe, filter, Some(id));
        }
    }

    /// The broker acknowledged packet `id` (PUBACK, PUBREC, SUBACK): it accepted that use of the
    /// topic, so a later close is not blamed on it.
    pub fn on_acknowledged(&mut self, id: PacketId) {
        if self
            .first_use
            .as_ref()
            .is_some_and(|first| first.awaiting == Some(id))
        {
            self.first_use = None;
        }
    }

    /// The connection ended at `now` for another reason than the broker closing it (keep-alive
    /// expiry, our own disconnect, a protocol error): nothing to explain.
    pub fn on_ended(&mut self) {
        self.connected_at = None;
        self.first_use = None;
    }

    /// The error a driver reports for the core's `Disconnected { reason }` at `now` (not for a
    /// requested disconnect): the transport's own `transport_error` when the socket failed, a
    /// refusal or timeout as such, and — when the broker closed an `established` connection
    /// (end of stream or reset) and the timing suggests why — [`Error::ClosedByBroker`]. A reset
    /// right after the first use of a topic is reported as the IO error it is: a killed broker
    /// leaves one too. The next [`on_connected`](Self::on_connected) or
    /// [`on_connect_failed`](Self::on_connect_failed) gives the verdict.
    pub fn on_disconnected(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        transport_error: Option<Error>,
        established: bool,
        connect_timeout: Duration,
    ) -> Error {
        if established {
            self.suspect = None; // a suspicion is about the last connection only
        }
        let closed_by_broker = reason == DisconnectReason::TransportClosed
            && matches!(transport_error, None | Some(Error::Io { .. }));
        let mut diagnosis = if closed_by_broker {
            self.on_closed_by_broker(now)
        } else {
            self.on_ended();
            None
        };
        if let Some(suspected @ Diagnosis::NotAuthorised { .. }) = &diagnosis {
            // A clean end of stream is the broker's own doing and may be blamed now; a reset is
            // also what a killed broker leaves behind, so it waits for the broker to prove alive.
            let clean = transport_error.is_none();
            self.suspect = Some(Suspect {
                diagnosis: suspected.clone(),
                reported: clean,
            });
            if !clean {
                diagnosis = None;
            }
        }
        match (diagnosis, reason) {
            (Some(diagnosis), _) if established => Error::ClosedByBroker(diagnosis),
            (_, DisconnectReason::Refused(code)) => Error::Refused(code),
            (_, DisconnectReason::ConnAckTimeout) => Error::Timeout(connect_timeout),
            (_, DisconnectReason::TransportClosed) => {
                transport_error.unwrap_or(Error::ConnectionLost(DisconnectReason::TransportClosed))
            }
            (_, other) => Error::ConnectionLost(other),
        }
    }

    /// The broker closed the connection (end of stream or reset) at `now`: the likely reason, if
    /// the timing suggests one.
    pub fn on_closed_by_broker(&mut self, now: Instant) -> Option<Diagnosis> {
        let connected_at = self.connected_at.take()?;
        let first_use = self.first_use.take();
        if now.saturating_duration_since(connected_at) < SHORT_CONNECTION {
            self.short_connections = self.short_connections.saturating_add(1);
        } else {
            self.short_connections = 0;
        }
        // An unanswered first use right before the close is the stronger evidence: a client
        // re-subscribing to a forbidden filter on every reconnect also makes short connections.
        if let Some(first) = first_use {
            let after = now.saturating_duration_since(first.sent_at);
            if after <= NOT_AUTHORISED_WINDOW {
                return Some(Diagnosis::NotAuthorised {
                    operation: first.operation,
                    topic: first.topic,
                    after,
                });
            }
        }
        (self.short_connections >= SHORT_CONNECTIONS_FOR_DUPLICATE).then(|| {
            Diagnosis::DuplicateClientId {
                client_id: self.client_id.clone(),
                short_connections: self.short_connections,
            }
        })
    }
}

/// Whether `reason` means the broker broke the protocol (a malformed packet, a packet MQTT does not
/// allow there). Requests awaiting the broker's answer (SUBSCRIBE, UNSUBSCRIBE) then fail at once
/// with that reason: sending them again after a reconnect would most likely meet the same broker
/// fault, and the application would learn of it only when its wait timed out.
pub fn broke_protocol(reason: &DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::Malformed(_) | DisconnectReason::ProtocolViolation(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn id(n: u16) -> Option<PacketId> {
        PacketId::new(n)
    }

    #[test]
    fn an_acknowledged_first_use_is_not_blamed() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        diagnostics.on_connected(t0);
        diagnostics.on_sent(t0, Operation::Subscribe, "ok/#", id(7));
        diagnostics.on_acknowledged(PacketId::MIN);
        diagnostics.on_acknowledged(PacketId::new(7).unwrap_or(PacketId::MIN));
        assert_eq!(diagnostics.on_closed_by_broker(t0 + 10 * MS), None);
    }

    #[test]
    fn a_close_right_after_the_first_subscribe_points_at_its_filter() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("GID_a@@@1");
        diagnostics.on_connected(t0);
        diagnostics.on_sent(
            t0 + 20 * MS,
            Operation::Subscribe,
            "parent/forbidden",
            id(1),
        );
        let diagnosis = diagnostics.on_closed_by_broker(t0 + 25 * MS);
        assert_eq!(
            diagnosis,
            Some(Diagnosis::NotAuthorised {
                operation: Operation::Subscribe,
                topic: "parent/forbidden".into(),
                after: 5 * MS,
            })
        );
        let message = diagnosis.map(|d| d.to_string()).unwrap_or_default();
        assert!(
            message.contains("probably not authorised for topic \"parent/forbidden\""),
            "{message}"
        );
    }

    #[test]
    fn a_topic_already_in_use_is_not_blamed() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        diagnostics.on_connected(t0);
        diagnostics.on_sent(t0, Operation::Publish, "a", None);
        diagnostics.on_sent(t0 + 5000 * MS, Operation::Publish, "a", None);
        assert_eq!(diagnostics.on_closed_by_broker(t0 + 20_000 * MS), None);
    }

    #[test]
    fn only_a_topic_new_to_the_connection_is_a_first_use() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        assert!(
            !diagnostics.is_first_use(b"a"),
            "nothing is remembered before CONNACK"
        );
        diagnostics.on_connected(t0);
        assert!(diagnostics.is_first_use(b"a"));
        diagnostics.on_sent(t0, Operation::Publish, "a", None);
        assert!(!diagnostics.is_first_use(b"a"), "the set has it");
        assert!(!diagnostics.is_first_use(b"a"), "the last topic has it");
        diagnostics.on_sent(t0, Operation::Subscribe, "b/+", id(1));
        assert!(!diagnostics.is_first_use(b"b/+"), "a filter in use counts");
        assert!(diagnostics.is_first_use(b"c"));
        assert!(!diagnostics.is_first_use(b"a"));
        diagnostics.on_ended();
        diagnostics.on_connected(t0 + 1000 * MS);
        assert!(
            diagnostics.is_first_use(b"a"),
            "a new connection starts afresh, the last topic too"
        );
        for i in 0..MAX_TOPICS {
            diagnostics.on_sent(t0, Operation::Publish, &format!("t/{i}"), None);
        }
        assert!(
            !diagnostics.is_first_use(b"d"),
            "past the limit nothing new is remembered"
        );
    }

    #[test]
    fn a_close_long_after_the_first_use_is_not_blamed_on_it() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        diagnostics.on_connected(t0);
        diagnostics.on_sent(t0, Operation::Publish, "a", None);
        assert_eq!(diagnostics.on_closed_by_broker(t0 + 1500 * MS), None);
    }

    #[test]
    fn repeated_short_connections_point_at_a_duplicate_client_id() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("GID_a@@@1");
        let mut results = Vec::new();
        for i in 0..4u32 {
            let start = t0 + i * 3000 * MS;
            diagnostics.on_connected(start);
            results.push(diagnostics.on_closed_by_broker(start + 2000 * MS));
        }
        assert_eq!(results[0], None);
        assert_eq!(results[1], None);
        assert_eq!(
            results[2],
            Some(Diagnosis::DuplicateClientId {
                client_id: "GID_a@@@1".into(),
                short_connections: 3
            })
        );
        assert!(results[3].is_some());
    }

    #[test]
    fn a_forbidden_resubscribe_on_every_reconnect_stays_not_authorised() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        for i in 0..5u32 {
            let start = t0 + i * 1000 * MS;
            diagnostics.on_connected(start);
            diagnostics.on_sent(start, Operation::Subscribe, "p/forbidden", id(1));
            let diagnosis = diagnostics.on_closed_by_broker(start + 5 * MS);
            assert!(
                matches!(diagnosis, Some(Diagnosis::NotAuthorised { .. })),
                "round {i}: {diagnosis:?}"
            );
        }
    }

    #[test]
    fn disconnects_map_to_driver_errors() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(3);
        let mut diagnostics = Diagnostics::new("c");
        diagnostics.on_connected(t0);
        diagnostics.on_sent(t0, Operation::Publish, "p/x", id(1));
        let error = diagnostics.on_disconnected(
            t0 + MS,
            DisconnectReason::TransportClosed,
            None,
            true,
            timeout,
        );
        assert!(matches!(error, Error::ClosedByBroker(_)), "{error:?}");
        let error =
            diagnostics.on_disconnected(t0, DisconnectReason::ConnAckTimeout, None, false, timeout);
        assert!(matches!(error, Error::Timeout(t) if t == timeout));
        let tls = Error::Tls("bad record".into());
        let error = diagnostics.on_disconnected(
            t0,
            DisconnectReason::TransportClosed,
            Some(tls.clone()),
            true,
            timeout,
        );
        assert_eq!(error.to_string(), tls.to_string());
    }

    #[test]
    fn a_long_connection_resets_the_count() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        for (start, length) in [(0, 100), (1000, 100), (2000, 60_000), (70_000, 100)] {
            diagnostics.on_connected(t0 + start * MS);
            assert_eq!(
                diagnostics.on_closed_by_broker(t0 + (start + length) * MS),
                None
            );
        }
    }

    #[test]
    fn closes_that_were_not_the_brokers_are_not_counted() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        for i in 0..5u32 {
            diagnostics.on_connected(t0 + i * 100 * MS);
            diagnostics.on_ended();
        }
        diagnostics.on_connected(t0 + 600 * MS);
        assert_eq!(diagnostics.on_closed_by_broker(t0 + 700 * MS), None);
    }

    fn reset() -> Error {
        Error::Io {
            context: "reading from the broker".into(),
            reason: "Connection reset by peer (os error 104)".into(),
        }
    }

    fn refused() -> Error {
        Error::Io {
            context: "connecting to tcp://127.0.0.1:1883".into(),
            reason: "Connection refused (os error 111)".into(),
        }
    }

    /// Connected at `t0`, subscribed to "p/x" and lost the connection 5 ms later with
    /// `transport_error` (`None`: end of stream).
    fn lost_after_subscribe(
        diagnostics: &mut Diagnostics,
        t0: Instant,
        transport_error: Option<Error>,
    ) -> Error {
        diagnostics.on_connected(t0);
        diagnostics.on_sent(t0, Operation::Subscribe, "p/x", id(1));
        diagnostics.on_disconnected(
            t0 + 5 * MS,
            DisconnectReason::TransportClosed,
            transport_error,
            true,
            Duration::from_secs(3),
        )
    }

    #[test]
    fn a_reset_right_after_the_first_use_is_blamed_only_once_the_broker_proves_alive() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        let error = lost_after_subscribe(&mut diagnostics, t0, Some(reset()));
        assert_eq!(error.to_string(), reset().to_string());
        // The reconnect succeeds: the broker is alive, the reset was probably its answer.
        let confirmed = diagnostics.on_connected(t0 + 1000 * MS);
        assert!(
            matches!(&confirmed, Some(Diagnosis::NotAuthorised { topic, .. }) if topic == "p/x"),
            "{confirmed:?}"
        );
        assert_eq!(diagnostics.on_connected(t0 + 2000 * MS), None);
    }

    #[test]
    fn a_refused_reconnect_after_a_close_says_the_broker_is_down() {
        let t0 = Instant::now();
        for transport_error in [None, Some(reset())] {
            let mut diagnostics = Diagnostics::new("c");
            let _ = lost_after_subscribe(&mut diagnostics, t0, transport_error);
            let error = diagnostics.on_connect_failed(refused());
            match &error {
                Error::ClosedByBroker(Diagnosis::BrokerDown {
                    operation,
                    topic,
                    reason,
                }) => {
                    assert_eq!(*operation, Operation::Subscribe);
                    assert_eq!(topic, "p/x");
                    assert_eq!(reason, &refused().to_string());
                }
                other => panic!("expected the broker to be called down, got {other:?}"),
            }
            let message = error.to_string();
            assert!(
                message.contains("probably down or unreachable"),
                "{message}"
            );
            assert!(!message.contains("not authorised"), "{message}");
            // Later failures are what they are.
            let again = diagnostics.on_connect_failed(refused());
            assert_eq!(again.to_string(), refused().to_string());
        }
    }

    #[test]
    fn a_connect_timeout_after_a_close_says_the_broker_is_down_too() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        let _ = lost_after_subscribe(&mut diagnostics, t0, None);
        let error = diagnostics.on_connect_failed(Error::Timeout(Duration::from_secs(3)));
        assert!(
            matches!(error, Error::ClosedByBroker(Diagnosis::BrokerDown { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn an_answering_broker_is_not_called_down() {
        let t0 = Instant::now();
        let mut diagnostics = Diagnostics::new("c");
        let _ = lost_after_subscribe(&mut diagnostics, t0, None);
        let code = sansmq::packet::ConnectReturnCode::NotAuthorized;
        let error = diagnostics.on_connect_failed(Error::Refused(code));
        assert!(matches!(error, Error::Refused(c) if c == code), "{error:?}");
        // A clean close was reported at once: a CONNACK does not report it again.
        let _ = lost_after_subscribe(&mut diagnostics, t0, None);
        assert_eq!(diagnostics.on_connected(t0 + 1000 * MS), None);
    }

    #[test]
    fn a_failure_without_a_suspicious_close_is_left_alone() {
        let mut diagnostics = Diagnostics::new("c");
        assert_eq!(
            diagnostics.on_connect_failed(refused()).to_string(),
            refused().to_string()
        );
        let t0 = Instant::now();
        diagnostics.on_connected(t0);
        let error = diagnostics.on_disconnected(
            t0 + 5 * MS,
            DisconnectReason::TransportClosed,
            None,
            true,
            Duration::from_secs(3),
        );
        assert!(matches!(error, Error::ConnectionLost(_)), "{error:?}");
        assert_eq!(
            diagnostics.on_connect_failed(refused()).to_string(),
            refused().to_string()
        );
    }

    #[test]
    fn only_protocol_faults_fail_the_requests_at_once() {
        let garbage =
            DisconnectReason::Malformed(sansmq::packet::DecodeError::ReservedPacketType(15));
        assert!(broke_protocol(&garbage));
        assert!(!broke_protocol(&DisconnectReason::TransportClosed));
        assert!(!broke_protocol(&DisconnectReason::KeepAliveTimeout));
    }
}
