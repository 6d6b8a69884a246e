//! What one seed simulates: the client's options, the servers behind its URIs, the pace of the
//! application and of the faults.

use std::time::Duration;

use sansmq_driver::ResubscribePolicy;

use sansmq_sim_support::Rng;

/// How a server URI answers a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Up,
    /// The host name does not resolve.
    NoDns,
    /// Nothing listens: the connection is refused at once.
    Refused,
    /// SYNs vanish: the attempt never completes (the connect timeout ends it).
    BlackHole,
}

#[derive(Debug)]
pub(crate) struct Scenario {
    pub(crate) servers: Vec<Reach>,
    /// Automatic reconnect is on.
    pub(crate) reconnect: bool,
    pub(crate) min_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) keep_alive: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) clean_session: bool,
    pub(crate) resubscribe: ResubscribePolicy,
    pub(crate) max_inflight: u16,
    pub(crate) offline_queue: usize,
    /// Credentials come from a provider whose tokens the faults can invalidate.
    pub(crate) provider: bool,
    /// The highest QoS the brokers grant a subscription (0 or 1: the application always asks
    /// for 2, so a SUBSCRIBE asking for less is a restore).
    pub(crate) max_grant: u8,
    /// One-way network delay range.
    pub(crate) latency: (u64, u64),
    /// Mean gap between application commands, and between faults.
    pub(crate) app_gap: Duration,
    pub(crate) fault_gap: Duration,
    /// How long the application and the faults run before the final disconnect.
    pub(crate) run_for: Duration,
    /// Writes are cut into pieces (partial writes).
    pub(crate) partial_writes: bool,
    /// The seed speaks MQTT 5.0 (else MQTT 3.1.1).
    pub(crate) mqtt5: Option<V5>,
}

/// What an MQTT 5.0 seed asks for, and what its brokers grant.
#[derive(Debug, Clone)]
pub(crate) struct V5 {
    /// The Session Expiry Interval the client asks for, in seconds (`None`: from the clean
    /// session flag, 0 or never).
    pub(crate) session_expiry: Option<u32>,
    /// The brokers' Receive Maximum, by connection (connection id modulo the length): a later
    /// connection may grant fewer than an earlier one whose messages are still in flight.
    pub(crate) receive_maximum: Vec<u16>,
    /// The brokers' Topic Alias Maximum (0: no aliases).
    pub(crate) topic_alias_maximum: u16,
    /// The brokers shorten the Session Expiry Interval to this (said in CONNACK).
    pub(crate) session_expiry_cap: Option<u32>,
    /// Topic aliases the brokers may set on the messages they send the client.
    pub(crate) client_topic_alias_maximum: u16,
    /// How long a request waits for its response.
    pub(crate) time_to_wait: Duration,
    /// The client's Receive Maximum, which the brokers honour.
    pub(crate) client_receive_maximum: Option<u16>,
    /// The brokers' Server Keep Alive, in seconds, which replaces the client's.
    pub(crate) server_keep_alive: Option<u16>,
}

impl V5 {
    fn draw(rng: &mut Rng) -> Self {
        Self {
            session_expiry: match rng.below(5) {
                0 => None,
                1 => Some(0),
                2 => Some(u32::MAX),
                _ => Some(rng.range(1, 120) as u32),
            },
            receive_maximum: (0..rng.range(1, 3))
                .map(|_| rng.range(1, 10) as u16)
                .collect(),
            topic_alias_maximum: *rng.pick(&[0, 0, 1, 3, 10]),
            session_expiry_cap: rng.percent(25).then(|| rng.range(1, 60) as u32),
            client_topic_alias_maximum: *rng.pick(&[0, 0, 2, 5]),
            time_to_wait: rng.millis(500, 20_000),
            client_receive_maximum: rng.percent(50).then(|| rng.range(1, 5) as u16),
            server_keep_alive: rng.percent(25).then(|| rng.range(1, 40) as u16),
        }
    }
}

impl Scenario {
    pub(crate) fn draw(rng: &mut Rng) -> Self {
        let servers = (0..rng.range(1, 4))
            .map(|_| match rng.below(10) {
                0 => Reach::NoDns,
                1 => Reach::Refused,
                2 => Reach::BlackHole,
                _ => Reach::Up,
            })
            .collect();
        let min_delay = rng.millis(100, 2_000);
        let max_delay = min_delay * rng.range(1, 40) as u32;
        Self {
            servers,
            reconnect: rng.percent(85),
            min_delay,
            max_delay,
            keep_alive: Duration::from_secs(rng.range(2, 30)),
            connect_timeout: rng.millis(500, 10_000),
            clean_session: rng.percent(50),
            resubscribe: *rng.pick(&[
                ResubscribePolicy::WhenSessionLost,
                ResubscribePolicy::WhenSessionLost,
                ResubscribePolicy::Always,
                ResubscribePolicy::Never,
            ]),
            max_inflight: rng.range(1, 20) as u16,
            offline_queue: rng.range(1, 50) as usize,
            provider: rng.percent(60),
            max_grant: rng.range(0, 1) as u8,
            latency: {
                let lo = rng.range(0, 50);
                (lo, lo + rng.range(0, 200))
            },
            app_gap: rng.millis(50, 3_000),
            fault_gap: rng.millis(500, 20_000),
            run_for: Duration::from_secs(rng.range(20, 300)),
            partial_writes: rng.percent(30),
            mqtt5: rng.percent(50).then(|| V5::draw(rng)),
        }
    }

    pub(crate) fn uris(&self) -> Vec<String> {
        (0..self.servers.len())
            .map(|i| format!("tcp://broker-{i}.sim:1883"))
            .collect()
    }
}
