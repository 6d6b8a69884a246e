//! What [`Broker::stats`](crate::Broker::stats) reports.

/// A snapshot of the broker's state, for tests and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Open network connections, connected or not yet.
    pub connections: usize,
    /// Sessions: those of connected clients plus persistent ones of offline clients.
    pub sessions: usize,
    /// Topics holding a retained message.
    pub retained_messages: usize,
    /// What the retained messages count for against
    /// [`BrokerConfig::max_retained_bytes`](crate::BrokerConfig::max_retained_bytes).
    pub retained_bytes: usize,
    /// Messages that could not be retained because a retained-message limit was reached.
    pub retained_refused: u64,
    /// Memory of the connections' read buffers, which hold a partial packet each at most,
    /// against [`BrokerConfig::max_incoming_bytes`](crate::BrokerConfig::max_incoming_bytes).
    pub incoming_bytes: usize,
    /// Encoded bytes waiting to be written to clients, over all connections.
    pub outgoing_bytes: usize,
    /// Messages waiting in session queues, over all sessions.
    pub queued_messages: usize,
    /// What queued and inflight messages count for over all sessions, against
    /// [`BrokerConfig::max_total_queued_bytes`](crate::BrokerConfig::max_total_queued_bytes).
    pub held_bytes: usize,
    /// QoS 1/2 messages dropped because a queue limit was reached, since the broker started
    /// (sessions that have ended included). The publisher was acknowledged for each: this is
    /// the count of acknowledged messages some subscriber did not get.
    pub dropped: u64,
    /// QoS 0 messages dropped because a subscriber's output buffer was full, since the broker
    /// started.
    pub dropped_qos0: u64,
    /// CONNECTs refused with `0x03` because
    /// [`BrokerConfig::max_sessions`](crate::BrokerConfig::max_sessions) was reached.
    pub sessions_refused: u64,
    /// One entry per session, sorted by client id.
    pub clients: Vec<ClientStats>,
}

impl BrokerStats {
    /// The entry of `client_id`, if it has a session.
    pub fn client(&self, client_id: &str) -> Option<&ClientStats> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// One session's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// The client id.
    pub client_id: String,
    /// Whether a connection uses the session now.
    pub connected: bool,
    /// Encoded bytes waiting to be written to this client's connection.
    pub outgoing_bytes: usize,
    /// Messages waiting to be sent: QoS 1/2 ones, and retained QoS 0 ones for a new
    /// subscription.
    pub queued_messages: usize,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight_messages: usize,
    /// What queued and inflight messages count for: topic, payload and the bookkeeping of each.
    pub held_bytes: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// QoS 1/2 messages this session lost to a queue limit (each also logged).
    pub dropped: u64,
    /// QoS 0 messages this session lost while its connection's output was full.
    pub dropped_qos0: u64,
}
