//! [`Config`]: everything a [`Client`](super::Client) needs to know before it connects.

use std::num::NonZeroU16;
use std::time::Duration;

use crate::packet::{LastWill, Password, Properties, Protocol};
use crate::string::MqttString;

/// The default largest incoming packet: 1 MiB.
///
/// Big enough not to surprise anyone sending JSON documents, images or firmware chunks (rumqttc's
/// 10 KiB default is a known complaint), small enough that one connection cannot be made to buffer
/// hundreds of megabytes (MQTT allows 256 MiB). Raise it when your broker sends bigger messages.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// The default window of unacknowledged QoS 1/2 PUBLISHes: 20.
///
/// mosquitto (up to 2.0 at least) disconnects an MQTT 3.1.1 client with more than 20 incoming QoS 2
/// messages awaiting PUBREL (`max_inflight_messages 20`); a larger default would break QoS 2 against
/// a stock mosquitto. Brokers with larger limits go faster with a larger window.
pub const DEFAULT_MAX_INFLIGHT: u16 = 20;

/// What to do with unacknowledged QoS 1/2 messages when the broker answers a (re)connect with
/// `session_present = 0`, i.e. it has no record of them (also after a connect with
/// [`clean_session`](Config::clean_session)).
///
/// After a CONNACK with `session_present = 1` every unacknowledged message goes out again whatever
/// the policy, as below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnackedPolicy {
    /// Send every unacknowledged message again, in its original order (MQTT-4.4.0-1): each
    /// PUBLISH with DUP = 1 (MQTT-3.3.1-1: the broker may have received it before it lost the
    /// session), each PUBREL (a QoS 2 message whose PUBREC had arrived) with its original packet
    /// identifier, which a broker that lost the session answers with PUBCOMP (MQTT-4.3.3). A
    /// message is reported [`Published`](super::Event::Published) only at its PUBACK (QoS 1) or
    /// PUBCOMP (QoS 2), never at the reconnect. At-least-once holds; a QoS 2 message whose
    /// PUBLISH reached the lost session but whose PUBREC did not reach us may be taken twice,
    /// which MQTT cannot prevent once the broker forgets the session.
    #[default]
    Resend,
    /// Give up every unacknowledged message, those awaiting PUBCOMP too: each is reported as
    /// [`Event::Dropped`](super::Event::Dropped) and nothing of it is sent again. Messages still in
    /// the queue (never sent) are kept and sent as usual.
    Discard,
}

/// When the client subscribes again, by itself, to the filters the broker granted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestoreSubscriptions {
    /// Never: the application subscribes again itself.
    #[default]
    Never,
    /// When the broker lost the session (CONNACK `session_present = 0`).
    WhenSessionLost,
    /// After every CONNACK.
    Always,
}

/// Which changes of the session the client reports as
/// [`SessionRecord`](super::SessionRecord)s ([`Client::poll_session_record`](super::Client::poll_session_record)),
/// for a driver to keep in a session store so that the session outlives the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionRecording {
    /// None: the session lives in memory only.
    #[default]
    Off,
    /// Every change, the queue of messages not sent yet (the offline queue) included: a message
    /// is recorded when `publish` accepts it.
    All,
    /// Every change but the queue: a message is recorded when it goes out, so messages that wait
    /// in the queue when the process ends are lost with it, and `publish` of a message that has
    /// to wait records nothing (one store write fewer per queued message). Messages a store
    /// restored into the queue are still recorded as they leave it.
    ExceptQueue,
}

/// The default most Topic Aliases the client uses on a connection: 32 (fewer if the server
/// allows fewer).
///
/// Each alias keeps one topic on both sides; 32 covers a device publishing to a handful of
/// telemetry topics, whose every message after the first then carries a 3-byte alias instead of
/// its topic, and bounds what a program publishing to many topics holds.
pub const DEFAULT_OUTGOING_TOPIC_ALIASES: u16 = 32;

/// Client session settings. Start from [`Config::new`] and change the fields you need.
///
/// Every duration may be as long as `Duration::MAX` (so may the drain of
/// [`Client::disconnect`](super::Client::disconnect)): a deadline past what
/// [`Instant`](std::time::Instant) can represent is no deadline, never a panic.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The client identifier. May be empty with `clean_session`; the broker then assigns one
    /// (MQTT-3.1.3-6).
    pub client_id: MqttString,
    /// Start with a fresh session and have the broker discard it at disconnect. With `false` the
    /// broker keeps subscriptions and queued messages for this client id.
    pub clean_session: bool,
    /// Send a PINGREQ when nothing was sent for this long (MQTT-3.1.2-23); zero disables keep-alive.
    /// Whole seconds, at most 65,535 (18 h 12 min 15 s); `connect` refuses more.
    ///
    /// Also the longest the transmit buffer may hold bytes of which the driver can write none
    /// before the connection ends with
    /// [`DisconnectReason::TransmitStalled`](super::DisconnectReason::TransmitStalled).
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP, counted from when the PINGREQ was written, before giving the
    /// connection up. With keep-alive off, the transmit-stall limit instead (zero: no limit).
    pub ping_timeout: Duration,
    /// How long to wait for CONNACK after CONNECT.
    pub connack_timeout: Duration,
    /// MQTT 3.1.1 (default), 3.1 or 5.
    pub protocol: Protocol,
    /// User name.
    pub username: Option<MqttString>,
    /// Password (needs a user name; MQTT-3.1.2-22). Never shown by `Debug`.
    pub password: Option<Password>,
    /// The will message.
    pub will: Option<LastWill>,
    /// Window of QoS 1/2 PUBLISHes sent and not yet acknowledged; more wait in the queue.
    pub max_inflight: u16,
    /// Messages waiting to be sent (window full, disconnected, or the transmit buffer full); past
    /// this, `publish` fails with [`CommandError::QueueFull`](super::CommandError::QueueFull).
    pub max_queued: usize,
    /// Largest incoming packet, fixed header included; a bigger one ends the connection with
    /// [`DecodeError::PacketTooLarge`](crate::packet::DecodeError::PacketTooLarge) before its body
    /// is buffered.
    pub max_packet_size: usize,
    /// Largest outgoing packet; `publish` refuses bigger ones up front.
    pub max_outgoing_packet_size: usize,
    /// Bytes encoded and not yet taken by the driver beyond which QoS 0 messages wait in the queue
    /// instead of being encoded and the driver stops reading
    /// ([`Client::wants_read`](super::Client::wants_read)), so a stalled socket cannot grow memory.
    pub max_transmit_buffer: usize,
    /// The policy for unacknowledged messages after `session_present = 0`.
    pub unacked_policy: UnackedPolicy,
    /// The application acknowledges received QoS 1/2 messages with
    /// [`Client::ack`](super::Client::ack); acks still go out in arrival order (MQTT-4.6.0-2).
    pub manual_acks: bool,
    /// Subscribe again to the filters the broker granted before, in one SUBSCRIBE that goes out
    /// right after CONNACK, before the messages queued while disconnected: a message published to
    /// one's own subscription during a reconnect is not missed. Announced by
    /// [`Event::Resubscribing`](super::Event::Resubscribing).
    pub restore_subscriptions: RestoreSubscriptions,
    /// Which changes of the session to report as records for a session store; off by default.
    pub session_recording: SessionRecording,
    /// MQTT 5: how long, in seconds, the server keeps the session after the connection ends
    /// (`u32::MAX`: never expires). `None` keeps MQTT 3.1.1's meaning of
    /// [`clean_session`](Self::clean_session): 0 with it (the session ends with the connection),
    /// `u32::MAX` without it (the server keeps the session). In MQTT 5 `clean_session` is Clean
    /// Start: whether the connection starts a new session.
    pub session_expiry_interval: Option<u32>,
    /// MQTT 5: how many QoS 1/2 messages the server may send us unacknowledged (Receive Maximum);
    /// `None` leaves it out, which means 65,535. A server that sends more ends the connection with
    /// Reason Code 0x93.
    pub receive_maximum: Option<NonZeroU16>,
    /// MQTT 5: how many Topic Aliases the server may set for the messages it sends us; 0 (the
    /// default) lets it use none. A PUBLISH with an alias above it ends the connection with 0x94.
    pub topic_alias_maximum: u16,
    /// MQTT 5: the most Topic Aliases the client sets for the messages it sends, capped by the
    /// server's Topic Alias Maximum; 0 turns aliasing off. The most recently used topics keep
    /// their alias; see [`DEFAULT_OUTGOING_TOPIC_ALIASES`].
    pub outgoing_topic_aliases: u16,
    /// MQTT 5: further CONNECT properties: User Properties, Request Response Information,
    /// Request Problem Information, Authentication Method and Data. Session Expiry Interval,
    /// Receive Maximum, Maximum Packet Size and Topic Alias Maximum come from the fields above
    /// (and [`max_packet_size`](Self::max_packet_size)), whatever this says.
    pub connect_properties: Properties,
}

impl Config {
    /// Defaults: MQTT 3.1.1, clean session, keep-alive 60 s, ping timeout 10 s, CONNACK timeout
    /// 10 s, window [`DEFAULT_MAX_INFLIGHT`], 1,000 queued messages, packets up to
    /// [`DEFAULT_MAX_PACKET_SIZE`] both ways, automatic acks, [`UnackedPolicy::Resend`], no session
    /// records.
    pub fn new(client_id: MqttString) -> Self {
        Self {
            client_id,
            clean_session: true,
            keep_alive: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(10),
            connack_timeout: Duration::from_secs(10),
            protocol: Protocol::Mqtt311,
            username: None,
            password: None,
            will: None,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_queued: 1000,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_outgoing_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_transmit_buffer: 256 * 1024,
            unacked_policy: UnackedPolicy::Resend,
            manual_acks: false,
            restore_subscriptions: RestoreSubscriptions::Never,
            session_recording: SessionRecording::Off,
            session_expiry_interval: None,
            receive_maximum: None,
            topic_alias_maximum: 0,
            outgoing_topic_aliases: DEFAULT_OUTGOING_TOPIC_ALIASES,
            connect_properties: Properties::new(),
        }
    }

    /// The Session Expiry Interval a CONNECT asks for; see
    /// [`session_expiry_interval`](Self::session_expiry_interval).
    pub(crate) fn effective_session_expiry(&self) -> u32 {
        match self.session_expiry_interval {
            Some(secs) => secs,
            None if self.clean_session => 0,
            None => u32::MAX,
        }
    }

    /// Keep-alive in the seconds CONNECT carries, rounded up so it never exceeds what the broker
    /// is told.
    pub(crate) fn keep_alive_secs(&self) -> Option<u16> {
        let secs = self
            .keep_alive
            .as_secs()
            .checked_add(u64::from(self.keep_alive.subsec_nanos() > 0))?;
        u16::try_from(secs).ok()
    }
}
