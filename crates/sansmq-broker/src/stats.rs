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
    /// Bytes read from clients and not yet parsed into packets (a partial packet each at most).
    pub incoming_bytes: usize,
    /// Encoded bytes waiting to be written to clients, over all connections.
    pub outgoing_bytes: usize,
    /// QoS 1/2 messages waiting in session queues, over all sessions.
    pub queued_messages: usize,
    /// Bytes of topic and payload held by queued and inflight messages, over all sessions.
    pub held_bytes: usize,
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
    /// QoS 1/2 messages waiting to be sent.
    pub queued_messages: usize,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight_messages: usize,
    /// Bytes of topic and payload held by queued and inflight messages.
    pub held_bytes: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Messages lost to the limits: QoS 0 ones dropped while the connection's output was full and
    /// QoS 1/2 ones refused by a full session queue.
    pub dropped: u64,
}
