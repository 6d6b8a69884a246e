//! One seed's scenario: the client's configuration, the broker's and the network's behaviour, the
//! workload and the faults, all drawn from the seed.

use std::time::Duration;

use sansmq::client::{SessionRecording, UnackedPolicy};
use sansmq::packet::{Protocol, QoS};

use std::num::{NonZeroU16, NonZeroU32};

use crate::link::Dir;
use crate::model_broker::{BrokerParams, ServerV5};
use sansmq_sim_support::Rng;

/// A topic of the workload and the filter the client subscribes to it with.
#[derive(Debug, Clone)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) filter: String,
    pub(crate) requested: QoS,
}

/// One publish of the workload; its sequence number is its index.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// When the application publishes it (after the first SUBACK).
    pub(crate) at: Duration,
    pub(crate) topic: usize,
    pub(crate) qos: QoS,
    /// Payload bytes after the 8-byte sequence number.
    pub(crate) pad: usize,
    /// MQTT 5: its Message Expiry Interval in seconds (a queued message past it is given up).
    pub(crate) expiry: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Break the connection after this many more bytes in `dir` (anywhere: mid-packet too).
    Cut { dir: Dir, after: usize },
    /// The same on the next connection, from its first byte (CONNECT, CONNACK, the resume burst).
    CutNext { dir: Dir, after: usize },
    /// Reset the connection now; what is in flight is lost.
    Reset,
    /// Bytes vanish from now on and nobody is told (only keep-alive can tell).
    Blackhole,
    /// Traffic is slower for a while.
    Spike { extra: Duration, lasting: Duration },
    /// The broker goes down for `down`, keeping its sessions or losing them.
    BrokerRestart { keep: bool, down: Duration },
    /// The broker refuses the next CONNECTs (code 3, server unavailable).
    Refuse { count: u32 },
    /// The application disconnects (waiting up to `drain` for its messages), and reconnects later.
    Disconnect { drain: Duration },
    /// The application's process restarts: a new client from the old one's snapshot (an exact
    /// one, as if a perfect store had kept it).
    ClientRestart,
    /// The application's process crashes: a new client from the session its store replays, made
    /// only of the records that were durable (synced) then; the records still buffered may be
    /// lost, all or some. Only with [`Scenario::session_recording`] on.
    ClientCrash,
    /// The broker stops reading the connection and floods it with packets that each want an
    /// answer; the client must end it, its memory bounded meanwhile. With `full`, the socket
    /// buffers between them are full already (the client can write nothing more): the end must be
    /// `TransmitStalled`; otherwise a PINGREQ may still fit in them, and `KeepAliveTimeout` is
    /// right too.
    StopReading { full: bool },
}

#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) protocol: Protocol,
    pub(crate) clean_session: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) connack_timeout: Duration,
    pub(crate) max_inflight: u16,
    pub(crate) max_queued: usize,
    pub(crate) max_transmit_buffer: usize,
    pub(crate) manual_acks: bool,
    pub(crate) policy: UnackedPolicy,
    /// Which session changes the client records for the driver's store.
    pub(crate) session_recording: SessionRecording,
    pub(crate) topics: Vec<TopicSpec>,
    pub(crate) messages: Vec<Planned>,
    pub(crate) faults: Vec<(Duration, Fault)>,
    /// When the application subscribes to or unsubscribes from an unrelated filter.
    pub(crate) noise: Vec<Duration>,
    pub(crate) broker: BrokerParams,
    /// The client's socket: bytes in flight, largest write, percent of reads split.
    pub(crate) net_capacity: usize,
    pub(crate) net_max_write: usize,
    pub(crate) net_split_percent: u64,
    /// Faults and the workload happen before this; then a quiet period lets everything finish.
    pub(crate) fault_phase: Duration,
    /// Manual acks come this long (in ms) after the message.
    pub(crate) ack_delay_ms: (u64, u64),
    /// The client is fed reads that complete at most one packet each (bytes are still cut anywhere
    /// inside packets); this makes the order of its acks against arrivals checkable.
    pub(crate) one_packet_reads: bool,
    /// Reconnect this long (in ms) after a disconnection.
    pub(crate) backoff_ms: (u64, u64),
    /// MQTT 5 seeds: the client's side of the session's limits (the server's are in
    /// [`BrokerParams::v5`]).
    pub(crate) v5: Option<ClientV5>,
}

/// An MQTT 5 seed's client configuration.
#[derive(Debug, Clone)]
pub(crate) struct ClientV5 {
    /// Our Receive Maximum: the broker's window to us is capped by it.
    pub(crate) receive_maximum: Option<NonZeroU16>,
    /// Our Topic Alias Maximum: the aliases the broker may set on its PUBLISHes.
    pub(crate) topic_alias_maximum: u16,
    /// The aliases the client sets on its own PUBLISHes (capped by the server's maximum).
    pub(crate) outgoing_topic_aliases: u16,
}

impl Scenario {
    /// The seed's scenario; with `v5`, an MQTT 5 session whose limits are drawn from that second
    /// stream (so the first draws exactly what an MQTT 3.1.1 seed draws).
    pub(crate) fn generate(rng: &mut Rng, v5: Option<&mut Rng>) -> Self {
        let keep_alive = if rng.percent(15) {
            Duration::ZERO
        } else {
            Duration::from_secs(rng.range(2, 30))
        };
        let max_qos =
            [QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtMostOnce][rng.weighted(&[85, 10, 5])];
        let topics = (0..rng.usize(1, 4))
            .map(|i| {
                let name = format!("sim/{i}/m");
                let filter = match rng.below(3) {
                    0 => name.clone(),
                    1 => format!("sim/{i}/+"),
                    _ => format!("sim/{i}/#"),
                };
                let requested = [QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtMostOnce]
                    [rng.weighted(&[70, 20, 10])];
                TopicSpec {
                    name,
                    filter,
                    requested,
                }
            })
            .collect::<Vec<_>>();
        let session_recording = [
            SessionRecording::Off,
            SessionRecording::All,
            SessionRecording::ExceptQueue,
        ][rng.weighted(&[40, 40, 20])];
        let fault_phase = Duration::from_secs(rng.range(20, 300));
        let phase_ms = fault_phase.as_millis() as u64;
        // QoS mix: some seeds lean on one level.
        let qos_weights: [u64; 3] = match rng.below(4) {
            0 => [1, 1, 1],
            1 => [1, 6, 1],
            2 => [1, 1, 6],
            _ => [0, 1, 1],
        };
        let mut messages: Vec<Planned> = (0..rng.usize(5, 150))
            .map(|_| Planned {
                at: Duration::from_millis(rng.range(0, phase_ms)),
                topic: rng.usize(0, topics.len() - 1),
                qos: [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
                    [rng.weighted(&qos_weights)],
                pad: if rng.percent(15) {
                    rng.usize(100, 700)
                } else {
                    rng.usize(0, 40)
                },
                expiry: None,
            })
            .collect();
        if rng.percent(20) {
            // A burst: everything at once, to fill the window and the queue.
            let at = messages.first().map_or(Duration::ZERO, |m| m.at);
            for m in &mut messages {
                m.at = at;
            }
        }
        messages.sort_by_key(|m| m.at);

        let fault_count = if rng.percent(5) { 0 } else { rng.usize(1, 16) };
        let mut faults: Vec<(Duration, Fault)> = (0..fault_count)
            .map(|_| {
                // Strictly inside the phase: the quiet period has no faults at all.
                let at = Duration::from_millis(rng.range(0, phase_ms - 1));
                let blackhole = if keep_alive.is_zero() { 0 } else { 5 };
                // Without records there is no store to restart from.
                let crash = if session_recording == SessionRecording::Off {
                    0
                } else {
                    5
                };
                let kind = rng.weighted(&[25, 10, 10, blackhole, 8, 12, 5, 5, 5, 2, crash]);
                let dir = if rng.percent(50) {
                    Dir::ToBroker
                } else {
                    Dir::ToClient
                };
                let fault = match kind {
                    0 => Fault::Cut {
                        dir,
                        after: if rng.percent(80) {
                            rng.usize(0, 120)
                        } else {
                            rng.usize(0, 3000)
                        },
                    },
                    1 => Fault::CutNext {
                        dir,
                        after: rng.usize(0, 200),
                    },
                    2 => Fault::Reset,
                    3 => Fault::Blackhole,
                    4 => Fault::Spike {
                        extra: rng.millis(100, 3000),
                        lasting: rng.millis(100, 10_000),
                    },
                    5 => Fault::BrokerRestart {
                        keep: rng.percent(60),
                        down: rng.millis(0, 5000),
                    },
                    6 => Fault::Refuse {
                        count: rng.range(1, 3) as u32,
                    },
                    7 => Fault::Disconnect {
                        drain: if rng.percent(50) {
                            Duration::ZERO
                        } else {
                            rng.millis(1, 5000)
                        },
                    },
                    8 => Fault::ClientRestart,
                    9 => Fault::StopReading {
                        full: rng.percent(50),
                    },
                    _ => Fault::ClientCrash,
                };
                (at, fault)
            })
            .collect();
        faults.sort_by_key(|f| f.0);
        let mut noise: Vec<Duration> = (0..rng.usize(0, 4))
            .map(|_| Duration::from_millis(rng.range(0, phase_ms)))
            .collect();
        noise.sort();

        let protocol = if rng.percent(10) {
            Protocol::Mqtt31
        } else {
            Protocol::Mqtt311
        };
        let mut sc = Self {
            protocol,
            clean_session: rng.percent(15),
            keep_alive,
            ping_timeout: Duration::from_secs(rng.range(2, 5)),
            connack_timeout: Duration::from_secs(rng.range(2, 10)),
            max_inflight: rng.range(1, 30) as u16,
            max_queued: if rng.percent(20) {
                rng.usize(1, 5)
            } else {
                rng.usize(10, 200)
            },
            max_transmit_buffer: rng.usize(64, 8192),
            manual_acks: rng.percent(25),
            policy: if rng.percent(10) {
                UnackedPolicy::Discard
            } else {
                UnackedPolicy::Resend
            },
            session_recording,
            topics,
            messages,
            faults,
            noise,
            broker: BrokerParams {
                max_qos,
                window: rng.usize(1, 20),
                route_on_pubrel: rng.percent(30),
                resend_every: rng
                    .percent(30)
                    .then(|| Duration::from_secs(rng.range(5, 10))),
                v5: None,
            },
            net_capacity: [1024, 4096, 65536][rng.usize(0, 2)],
            net_max_write: rng.usize(1, 1500),
            net_split_percent: rng.range(0, 50),
            fault_phase,
            ack_delay_ms: (0, rng.range(0, 1500)),
            one_packet_reads: rng.percent(70),
            backoff_ms: (0, rng.range(0, 3000)),
            v5: None,
        };
        if let Some(rng) = v5 {
            sc.make_v5(rng);
        }
        sc
    }

    /// Turns the seed into an MQTT 5 one: the limits both sides announce, and how the broker uses
    /// Reason Codes and Topic Aliases.
    fn make_v5(&mut self, rng: &mut Rng) {
        self.protocol = Protocol::Mqtt5;
        // Small Receive Maximums matter most: they, not `max_inflight`, make the window.
        let receive_maximum = |rng: &mut Rng| match rng.weighted(&[60, 25, 15]) {
            0 => NonZeroU16::new(rng.range(1, 5) as u16),
            1 => NonZeroU16::new(rng.range(6, 40) as u16),
            _ => None,
        };
        self.v5 = Some(ClientV5 {
            receive_maximum: receive_maximum(rng),
            topic_alias_maximum: rng.range(0, 4) as u16,
            outgoing_topic_aliases: if rng.percent(20) {
                0
            } else {
                rng.range(1, 6) as u16
            },
        });
        // Some messages expire: those still queued when their interval has passed.
        let expiring = [0, 10, 40][rng.weighted(&[50, 30, 20])];
        for m in &mut self.messages {
            if rng.percent(expiring) {
                m.expiry = Some(rng.range(1, 20) as u32);
            }
        }
        // The largest PUBLISH the client sends must fit, and sometimes only just; so must its
        // largest SUBSCRIBE (CONNECT goes out before the limit is known).
        let smallest = self.largest_v5_publish().max(self.largest_v5_subscribe()) as u32;
        let maximum_packet_size = rng.percent(60).then(|| {
            let slack = if rng.percent(50) {
                rng.range(0, 8)
            } else {
                rng.range(0, 2000)
            };
            NonZeroU32::new(smallest + slack as u32).expect("above zero")
        });
        self.broker.v5 = Some(ServerV5 {
            receive_maximum: receive_maximum(rng),
            maximum_packet_size,
            topic_alias_maximum: rng.range(0, 4) as u16,
            server_keep_alive: rng.percent(20).then(|| rng.range(2, 30) as u16),
            maximum_qos_1: rng.percent(10),
            refuse_percent: [0, 5, 30][rng.weighted(&[40, 40, 20])],
            refuse_salt: rng.next_u64(),
            aliases_to_client: rng.percent(70),
            refuse_filter: false,
        });
        // Sometimes the limit cuts through the workload: some messages are too large to publish,
        // and one sits right at it, where a Topic Alias (3 bytes) makes the difference.
        if rng.percent(15) && !self.messages.is_empty() {
            let at = rng.usize(0, self.messages.len() - 1);
            let size = self.v5_publish_size(at, false) + rng.usize(0, 3);
            let size = size.max(self.largest_v5_subscribe()) as u32;
            if let Some(v5) = &mut self.broker.v5 {
                v5.maximum_packet_size = NonZeroU32::new(size);
            }
        }
        let refuse_filter = rng.percent(30);
        if let Some(v5) = &mut self.broker.v5 {
            v5.refuse_filter = refuse_filter;
        }
    }

    /// The largest PUBLISH of the workload in MQTT 5: with its topic and a Topic Alias.
    fn largest_v5_publish(&self) -> usize {
        let pad = self.messages.iter().map(|m| m.pad).max().unwrap_or(0);
        let topic = self.topics.iter().map(|t| t.name.len()).max().unwrap_or(0);
        let expiry = if self.messages.iter().any(|m| m.expiry.is_some()) {
            5
        } else {
            0
        };
        // topic, identifier, property length, Topic Alias and Message Expiry Interval, sequence
        // number and pad.
        let remaining = 2 + topic + 2 + 1 + 3 + expiry + 8 + pad;
        let length_bytes = if remaining < 128 { 1 } else { 2 };
        1 + length_bytes + remaining
    }

    /// The largest SUBSCRIBE the client sends in MQTT 5: the one that restores every filter,
    /// the workload's and the noise's (`noise/0` to `noise/2`).
    fn largest_v5_subscribe(&self) -> usize {
        let filters: usize = self.topics.iter().map(|t| 2 + t.filter.len() + 1).sum();
        let noise = 3 * (2 + "noise/0".len() + 1);
        // fixed header, identifier, property length, filters with their options.
        2 + 2 + 1 + filters + noise
    }

    /// MQTT 5: the size of message `seq`'s PUBLISH, with its topic, and a Topic Alias or not.
    pub(crate) fn v5_publish_size(&self, seq: usize, alias: bool) -> usize {
        let m = &self.messages[seq];
        let properties = if m.expiry.is_some() { 5 } else { 0 } + if alias { 3 } else { 0 };
        let id = if m.qos == QoS::AtMostOnce { 0 } else { 2 };
        let remaining = 2 + self.topics[m.topic].name.len() + id + 1 + properties + 8 + m.pad;
        let length_bytes = if remaining < 128 { 1 } else { 2 };
        1 + length_bytes + remaining
    }

    /// MQTT 5: the server's Maximum Packet Size, if it has one.
    pub(crate) fn server_maximum_packet_size(&self) -> Option<usize> {
        let v5 = self.broker.v5.as_ref()?;
        v5.maximum_packet_size.map(|m| m.get() as usize)
    }

    /// MQTT 5 and the server's Maximum QoS is 1: `publish` at QoS 2 fails.
    pub(crate) fn qos2_refused(&self) -> bool {
        self.broker.v5.as_ref().is_some_and(|v5| v5.maximum_qos_1)
    }

    /// The QoS the broker grants for topic `t`.
    pub(crate) fn granted(&self, t: usize) -> QoS {
        self.topics[t].requested.min(self.broker.max_qos)
    }

    /// The payload of message `seq`: its sequence number, then a pattern.
    pub(crate) fn payload(&self, seq: usize) -> Vec<u8> {
        let pad = self.messages[seq].pad;
        let mut payload = Vec::with_capacity(8 + pad);
        payload.extend_from_slice(&(seq as u64).to_be_bytes());
        payload.extend((0..pad).map(|i| (seq + i) as u8));
        payload
    }

    /// The largest packet either side sends (a PUBLISH with the biggest payload).
    pub(crate) fn max_packet(&self) -> usize {
        let payload = self.messages.iter().map(|m| 8 + m.pad).max().unwrap_or(8);
        // fixed header (≤ 5) + topic (2 + len) + id (2) + payload, with room for CONNECT/SUBSCRIBE;
        // in MQTT 5 the properties too (length, Topic Alias; the broker's acks are smaller).
        let properties = if self.protocol.is_v5() { 1 + 3 } else { 0 };
        (5 + 2 + 16 + 2 + properties + payload).max(256)
    }
}
