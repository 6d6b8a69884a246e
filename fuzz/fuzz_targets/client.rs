//! `client`: the client session state machine, [`sansmq::Client`], driven by an arbitrary sequence of
//! commands, received bytes, partial writes, clock moves and transport closes, and checked against a
//! model after every single input.
//!
//! # Input layout
//!
//! `[config: 8 bytes] [action]*`. A missing byte reads as 0; the run ends where the input does.
//!
//! Config (index 0 of every table is an ordinary setting, so zero bytes make a sane client):
//! - byte 0, flags: `0x01` manual acks, `0x02` clean session off, `0x04` [`UnackedPolicy::Discard`],
//!   `0x08` MQTT 3.1, `0x10` a will, `0x20` a user name, `0x40` a password, `0x80` empty client id;
//! - byte 1: max inflight `[2, 1, 3, 4, 8, 20, 1, 0][b & 7]`; will QoS `(b >> 3) % 3`, will retain
//!   `b & 0x20`; `0x40` MQTT 5 (see [MQTT 5](#mqtt-5); it wins over the 3.1 flag);
//! - byte 2: max queued `[4, 0, 1, 2, 3, 8, 100, 1000][b & 7]`; MQTT 5: our Receive Maximum
//!   `[absent, 1, 2, 3][(b >> 3) & 3]`;
//! - byte 3: max transmit buffer `[256, 0, 1, 16, 64, 1024, 64 Ki, 256 Ki][b & 7]`; MQTT 5: our
//!   Topic Alias Maximum `(b >> 3) & 3`;
//! - byte 4: max outgoing packet size `[4096, 2, 8, 16, 32, 64, 300, 1 Mi][b & 7]`; MQTT 5:
//!   `outgoing_topic_aliases` `[default, 0, 1, 2][(b >> 3) & 3]`;
//! - byte 5: max incoming packet size `[4096, 2, 4, 8, 16, 64, 300, 1 Mi][b & 7]`;
//! - byte 6: keep-alive `[10 s, 0, 0.5 s, 1 s, 2 s, 60 s, 65,535 s, Duration::MAX][b & 7]` (the
//!   last is refused by `connect`), ping timeout `TIMES[(b >> 3) & 7]`;
//! - byte 7: CONNACK timeout `TIMES[b & 7]`; with
//!   `TIMES = [5 s, 0, 1 ms, 100 ms, 1 s, 2 s, 10 s, Duration::MAX]` (a deadline past what `Instant`
//!   holds is no deadline).
//!
//! Actions: an opcode byte (`% 14`), then its operands.
//!
//! | op | action | operands |
//! |----|--------|----------|
//! | 0  | `connect` | |
//! | 1  | `publish` | `f` (QoS `(f & 3) % 3`, retain `f & 4`, topic `TOPICS[(f >> 3) & 7]`), payload length `L`; MQTT 5: then `e`, the Message Expiry Interval |
//! | 2  | `subscribe` | `n` (`n & 3` filters, 0 tests the empty list), then per filter `b` (`FILTERS[b & 7]`, QoS `(b >> 3) % 3`) |
//! | 3  | `unsubscribe` | `n`, then per filter `b` (`FILTERS[b & 7]`) |
//! | 4  | `ack` | `s`: odd = a held incoming message (`s >> 1` picks it), even = the id in the next 2 bytes |
//! | 5  | `disconnect` | drain `b * 100 ms` (0: none; `0xFF`: `Duration::MAX`) |
//! | 6  | `resubscribe` | |
//! | 7  | receive random bytes (only while `wants_read()`, see below) | length `n`, delivery `d`, then `n` bytes |
//! | 8  | receive a well-formed packet | kind `k` and its operands (listed at `Harness::incoming_packet`), delivery `d` |
//! | 9  | the driver wrote `n` bytes (`handle_transmitted`) | `n` (`0xF0..`: everything pending, else `n` itself, which may be more than is pending) |
//! | 10 | the clock moves | milliseconds, 2 bytes big-endian |
//! | 11 | `handle_timeout` now (maybe early: harmless) | |
//! | 12 | jump to `poll_timeout()` and `handle_timeout` | `b`: odd = 1 ms before it instead (early) |
//! | 13 | `handle_closed` | |
//!
//! Payload length `L`: `L < 0xC0` is itself, else `(L - 0xBF) * 128`. Delivery `d`: pieces of
//! `d & 0x3F` bytes (0: all at once); `d & 0x40` reads through `read_buffer` + `handle_read` instead
//! of `handle_received`; `d & 0x80` lets one call carry several packets ("coalesced"; otherwise the
//! bytes are also cut where a frame ends, so one call completes at most one packet, and each
//! packet's effects are checked on their own). Packet identifiers in incoming packets come from an
//! id selector `s`: `s & 3` = 0 one of our outgoing ids, 1 an id the broker used before, 2 a small
//! id `1 + (s >> 2) % 8`, 3 the next 2 bytes (0 reads as 1).
//!
//! Each piece is one read, and the harness is a driver that obeys [`Client::wants_read`]: while it
//! is false (the transmit buffer holds `max_transmit_buffer` bytes or more) the piece and the rest
//! of the action's bytes are not read (they would wait in the socket; the fuzzer moves on).
//!
//! Set `SANSMQ_FUZZ_TRACE=1` to print every action and event (to read a crash artifact).
//!
//! # MQTT 5
//!
//! With config byte 1 `& 0x40` the client speaks MQTT 5 (otherwise nothing below applies, and a
//! 3.1/3.1.1 input reads and checks exactly as without it). The target then decodes what the
//! client writes, and what it receives, as MQTT 5, and encodes the broker's packets with
//! `encode_in(Protocol::Mqtt5)`. Op 8 reads more operands (listed at `Harness::incoming_packet`):
//! CONNACK terms (Receive Maximum 1..=4, Maximum Packet Size 16/40/100, Topic Alias Maximum 1..=3,
//! Server Keep Alive 0/1/5 s, Maximum QoS 0 or 1, Retain Available 0, Wildcard Subscription
//! Available 0, each sometimes absent) or a refusal Reason Code; Reason Codes on PUBACK, PUBREC
//! (failures among them), PUBREL, PUBCOMP and UNSUBACK; SUBACK refusals other than 0x80; a
//! server DISCONNECT with a Reason Code; incoming PUBLISH with a Topic Alias 1..=4, setting it or
//! using it alone; AUTH (kind 14; the target sets no authenticator).
//!
//! The model adds: the CONNECT carries our limits as properties; `negotiated()` holds the last
//! CONNACK's terms (reset at `connect`); the window is `min(max_inflight,
//! Receive Maximum)` and nothing goes out over `min(max_outgoing_packet_size, Maximum Packet
//! Size)`, which `publish`/`subscribe`/`unsubscribe` refuse up front (`PacketTooLarge` with that
//! maximum), as they refuse a QoS over Maximum QoS, a retained message without Retain Available,
//! and a wildcard filter without Wildcard Subscription Available (restores at CONNACK too); a
//! message taken before the CONNACK (queued or unacknowledged) that its terms refuse is given up
//! as `Event::Unsendable` with the error `publish` would give, never sent; first sends respect Maximum QoS and Retain Available (MQTT-3.2.2-11, -14); the
//! Server Keep Alive replaces ours (PINGREQ, stall limit, `poll_timeout()`); every Topic Alias the
//! client writes is at most `min(outgoing_topic_aliases, Topic Alias Maximum)`, a PUBLISH without
//! its topic uses an alias set earlier on the same connection, and each PUBLISH, its alias
//! resolved, is checked as above (so a resent message must set its alias again); incoming aliases
//! resolve to the topic set on this connection and reach the application as topics, an alias over
//! our maximum ends the connection with `TopicAliasAboveMaximum` (0x94), an unknown one with
//! `UnknownTopicAlias` (0x82); a new QoS 1/2 message beyond our Receive Maximum (unacknowledged:
//! QoS 2 awaiting PUBREL, QoS 1 whose ack is held; a re-sent copy with DUP is not new) with `ReceiveMaximumExceeded` (0x93); a
//! PUBACK/PUBREC failure Reason Code completes the message as `PublishRefused` with that code (no
//! PUBREL; a failed PUBREC for a released message is ignored); SUBACK refusals are
//! `SubscribeRefused { reason_code }`; a refusing CONNACK is `ConnectRefused`, a server
//! DISCONNECT `ServerDisconnected`, an AUTH a protocol violation; on a malformed packet or a
//! protocol violation the transmit buffer is cleared and holds exactly one DISCONNECT with the
//! fault's Reason Code (0x82 Protocol Error for a code DISCONNECT cannot carry). Op 1 reads one more operand
//! `e`: a Message Expiry Interval `[-, 1, 2, 60][e & 3]` seconds (`publish_with`); every send
//! (first or again) carries what is left of it (in whole seconds rounded up, at least 1), the
//! session keeps it as published, and a queued message whose interval passed is given up as
//! `Event::Expired` when the client comes to it (the messages behind it go out; a drain may end
//! on it).
//!
//! A SUBSCRIBE or UNSUBSCRIBE made before a CONNACK whose Maximum Packet Size it exceeds is given
//! up as `Event::RequestUnsendable`, never sent (MQTT-3.2.2-15; found by this target).
//!
//! # What is checked, after every input
//!
//! The target keeps a model of what the client owes: the outgoing messages `publish` returned (in
//! call order; sent or queued; which connection sent them; PUBREC'd or PUBREL'd), the pending
//! SUBSCRIBE/UNSUBSCRIBE, the granted subscriptions, the incoming QoS 2 identifiers awaiting
//! PUBREL, the acknowledgements held for the application, the connection state and the deadlines.
//! Incoming bytes are also decoded by the target (same size limit), so it knows each packet the
//! client processed and predicts the effects that follow from MQTT and the documented behaviour.
//!
//! - No panic.
//! - Bounds: `inflight_len() <= max_inflight`, `queued_len() <= max_queued`, and the transmit buffer
//!   stays under the bound below.
//! - Output: every byte the client appends to `poll_transmit` is whole, valid packets (each step's
//!   new bytes decode with nothing left over); bytes already exposed are never rewritten (only
//!   consumed from the front, replaced by `connect`, or dropped when a fault or `handle_closed`
//!   ends the transport);
//!   the bytes the driver writes, fed to a `PacketDecoder` that lives as long as the connection
//!   (across partial writes, reset at `connect`), decode without error to the same packets.
//! - Protocol: CONNECT first on each connection and only there; nothing but DISCONNECT before CONNACK
//!   accepted it; nothing after DISCONNECT; only packets a client may send; every QoS 1/2 PUBLISH
//!   carries the identifier `publish` returned for that very message (so never the id of another
//!   unacknowledged PUBLISH, SUBSCRIBE or UNSUBSCRIBE) and is sent at most once per connection,
//!   never after its PUBREL; DUP is never set on QoS 0, never on a first send, and always on a
//!   resend, whatever CONNACK's session present said (MQTT-3.3.1-1); first sends go out in
//!   `publish` call order
//!   (queued messages keep their order); nothing waits in the queue that has room to go; after CONNACK
//!   the unacknowledged PUBLISH/PUBREL go out first, in their original order (MQTT-4.4.0-1): every
//!   PUBREL, and PUBLISHes while the window (perhaps smaller now) has room, the rest held and sent
//!   again in order, before any queued message, as acknowledgements make room (MQTT-3.3.4-9); then
//!   every pending SUBSCRIBE/UNSUBSCRIBE; a QoS 0 PUBLISH is only appended while fewer than
//!   `max_transmit_buffer` bytes are pending; PUBLISH/SUBSCRIBE/UNSUBSCRIBE are at most
//!   `max_outgoing_packet_size`; PUBREL only for our QoS 2 message the broker PUBREC'd (and again
//!   after every CONNACK, whatever session present said, MQTT-4.4.0-1); PUBCOMP only for a PUBREL
//!   received; no second PUBREL, PUBCOMP or repeated PUBREC for an identifier while one appended
//!   earlier is not wholly written (it answers the repeat); PUBACK/PUBREC exactly as owed: at once
//!   in automatic mode, in manual mode
//!   only after `ack`, in arrival order (MQTT-4.6.0-2; a PUBREC repeated for a re-sent QoS 2
//!   message queues behind the acks held for earlier messages), and as soon as they can go; acks
//!   held from before a CONNACK with `session_present = 0` are void; PINGREQ only from
//!   `handle_timeout`.
//! - Commands: `connect`, `publish` (including `QueueFull` and whether it goes out at once),
//!   `subscribe`/`unsubscribe`/`resubscribe` (sent at once when connected, else after the next
//!   CONNACK), `ack` and `disconnect` succeed or fail exactly as the model says;
//!   every returned identifier is not in use by another outgoing PUBLISH/SUBSCRIBE/UNSUBSCRIBE.
//! - Events: exactly one `Disconnected` per connection that ended, with the reason the model
//!   predicts (malformed bytes, protocol violations, refusals, timeouts, closes, requests);
//!   `Connected` once per CONNACK accepted; `Message` exactly for the PUBLISHes the client must
//!   deliver (QoS 0 and 1 always, except a QoS 1 re-sent while its ack is held in manual mode; QoS 2
//!   unless its id awaits PUBREL; neither kind of state survives `session_present = 0`, after which
//!   the broker may reuse identifiers for new messages); `Published` only for an
//!   identifier `publish` returned and not completed, with its QoS, at its PUBACK/PUBCOMP and never
//!   at a reconnect; `Dropped` only under the discard policy, for every message in flight at a
//!   CONNACK with `session_present = 0`; `Subscribed` and
//!   `Unsubscribed` for the request they answer with its filters and the granted codes;
//!   `subscriptions()` equals the model's granted set; with `restore_subscriptions`, a CONNACK
//!   the policy covers brings `Resubscribing` for exactly the granted filters no pending SUBSCRIBE
//!   asks for, with an identifier not in use, and that SUBSCRIBE is sent.
//! - Session records (the client records everything, `SessionRecording::All`): the records of
//!   every input, applied in order to a `SessionSnapshot`, give exactly `snapshot()` (DUP aside:
//!   a record keeps the flag its message was accepted with), so a store fed them restores the
//!   session any input left.
//! - Time: `poll_timeout()` is exactly the model's next deadline (CONNACK timeout, PINGREQ due,
//!   PINGRESP due counted from when the PINGREQ was wholly written, drain deadline, and the stall
//!   limit: keep-alive, or the ping timeout with keep-alive off, after the driver last took bytes
//!   or bytes arrived in an empty buffer, while bytes are pending); `handle_timeout` sends PINGREQ,
//!   ends the connection (`TransmitStalled` first, then `KeepAliveTimeout`) or finishes a drain
//!   exactly when due, and leaves `poll_timeout()` in the future (no busy loop); a drain ends as
//!   soon as nothing is left to acknowledge.
//!
//! # The transmit-buffer bound
//!
//! `max_transmit_buffer` holds back QoS 0 messages, and the driver stops reading at it
//! ([`Client::wants_read`], checked to be exactly "fewer than `max_transmit_buffer` bytes
//! pending"); everything else the client must send whatever the driver does with the buffer. From
//! an input after which fewer than `max_transmit_buffer` bytes were pending (or since `connect`),
//! what the buffer can hold is:
//! - CONNECT (`connect_len`), one PINGREQ (a further one needs a PINGRESP, counted below) and one
//!   DISCONNECT: `connect_len + 4`;
//! - what was pending then, and QoS 0 messages: one is only appended while fewer than
//!   `max_transmit_buffer` bytes are pending, so all of it is under `max_transmit_buffer +
//!   max_outgoing_packet_size`;
//! - the window: `max_inflight` PUBLISH or PUBREL (resent at CONNACK, or sent fresh), each at most
//!   `max(max_outgoing_packet_size, 4)`; a further window message needs a PUBACK/PUBCOMP to free a
//!   slot, counted below;
//! - per incoming packet processed, one answer of at most 4 bytes (PUBACK, PUBREC, PUBREL,
//!   PUBCOMP, or the PINGREQ a PINGRESP allows), plus `max(max_outgoing_packet_size, 4)` for each
//!   PUBACK/PUBCOMP (the message it lets out of the queue);
//! - each SUBSCRIBE/UNSUBSCRIBE command, its size; at CONNACK, the size of every pending request
//!   (resent) plus 4 bytes per acknowledgement held for the application; at each `ack`, 4 bytes
//!   per held acknowledgement (they may all go out).
//!
//! The check adds these up and starts again from zero after every input that leaves fewer than
//! `max_transmit_buffer` bytes pending. A read happens only then, so what the peer makes the
//! client queue is bounded by one read's answers (4 bytes per packet, one answer per identifier
//! for repeats): a broker that keeps sending and never reads cannot grow the buffer past
//! `max_transmit_buffer` + that + the fixed part, however long it goes on. Only the application's
//! own commands can add more.

#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sansmq::client::{
    DEFAULT_OUTGOING_TOPIC_ALIASES, ProtocolViolation, RestoreSubscriptions, ServerReason,
    SessionRecording, SessionSnapshot, SubscribeRefused, UnackedPolicy,
};
use sansmq::packet::{
    Auth, ConnAck, Connect, ConnectReturnCode, Disconnect, EncodeError, FrameHeader, LastWill,
    Packet, PacketDecoder, PacketId, PacketType, Password, Properties, PropertyContext, Protocol,
    PubAck, PubComp, PubRec, PubRel, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter,
    SubscribeReturnCode, UnsubAck, Unsubscribe,
};
use sansmq::{
    Client, CommandError, Config, DisconnectReason, Event, MqttString, TopicFilter, TopicName,
};

const OPS: u8 = 14;
const TIMES: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::MAX,
];
const TOPICS: [&str; 6] = [
    "a",
    "a/b",
    "sport/tennis/player1",
    "$SYS/uptime",
    "/",
    "é/ü",
];
const FILTERS: [&str; 8] = [
    "a",
    "a/+",
    "#",
    "a/#",
    "+/+",
    "sport/tennis/#",
    "$SYS/#",
    "+",
];
/// Decodes whatever the client writes: no limit but the protocol's.
const ANY_SIZE: usize = usize::MAX;

fn trace_on() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SANSMQ_FUZZ_TRACE").is_some())
}

/// A packet for the trace: a PUBLISH without its payload bytes.
fn brief(p: &Packet) -> String {
    match p {
        Packet::Publish(p) => format!(
            "PUBLISH {:?} dup={} retain={} topic={:?} id={:?} payload={}B",
            p.qos,
            p.dup,
            p.retain,
            p.topic(),
            p.packet_id.map(PacketId::get),
            p.payload().len()
        ),
        other => format!("{other:?}"),
    }
}

fn brief_event(e: &Event) -> String {
    match e {
        Event::Message(p) => format!("Message({})", brief(&Packet::Publish(p.clone()))),
        other => format!("{other:?}"),
    }
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if trace_on() {
            eprintln!($($arg)*);
        }
    };
}

/// The fuzzer's bytes, read front to back; past the end every byte reads as 0.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn topic(sel: u8) -> TopicName {
    let name = match usize::from(sel & 7) {
        6 => "x".repeat(40),
        7 => "t/".repeat(100),
        i => TOPICS[i].to_owned(),
    };
    TopicName::try_from(name).expect("the topic table is valid")
}

fn filter(sel: u8) -> TopicFilter {
    TopicFilter::try_from(FILTERS[usize::from(sel & 7)]).expect("the filter table is valid")
}

fn payload(len: u8) -> Bytes {
    let len = if len < 0xC0 {
        usize::from(len)
    } else {
        (usize::from(len) - 0xBF) * 128
    };
    Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>())
}

fn qos(b: u8) -> QoS {
    QoS::from_u8(b % 3).expect("0, 1 or 2")
}

fn config(input: &mut Input<'_>) -> Config {
    let [f, b1, b2, b3, b4, b5, b6, b7]: [u8; 8] = std::array::from_fn(|_| input.byte());
    let client_id = if f & 0x80 != 0 { "" } else { "fuzz" };
    let mut c = Config::new(MqttString::try_from(client_id).expect("valid client id"));
    // Recording changes nothing the client does; it is checked against `snapshot()`.
    c.session_recording = SessionRecording::All;
    c.manual_acks = f & 0x01 != 0;
    c.clean_session = f & 0x02 == 0;
    c.unacked_policy = if f & 0x04 != 0 {
        UnackedPolicy::Discard
    } else {
        UnackedPolicy::Resend
    };
    c.protocol = if b1 & 0x40 != 0 {
        Protocol::Mqtt5
    } else if f & 0x08 != 0 {
        Protocol::Mqtt31
    } else {
        Protocol::Mqtt311
    };
    if c.protocol.is_v5() {
        // Bits no table above reads: the MQTT 5 limits of our own side.
        c.receive_maximum = NonZeroU16::new([0, 1, 2, 3][usize::from((b2 >> 3) & 3)]);
        c.topic_alias_maximum = u16::from((b3 >> 3) & 3);
        c.outgoing_topic_aliases =
            [DEFAULT_OUTGOING_TOPIC_ALIASES, 0, 1, 2][usize::from((b4 >> 3) & 3)];
    }
    if f & 0x10 != 0 {
        c.will = Some(LastWill {
            topic: TopicName::try_from("will/fuzz").expect("valid topic"),
            payload: Bytes::from_static(b"gone"),
            qos: qos(b1 >> 3),
            retain: b1 & 0x20 != 0,
            properties: Default::default(),
        });
    }
    if f & 0x20 != 0 {
        c.username = Some(MqttString::try_from("user").expect("valid user name"));
    }
    if f & 0x40 != 0 {
        c.password = Some(Password::from("secret"));
    }
    c.max_inflight = [2, 1, 3, 4, 8, 20, 1, 0][usize::from(b1 & 7)];
    c.max_queued = [4, 0, 1, 2, 3, 8, 100, 1000][usize::from(b2 & 7)];
    c.max_transmit_buffer = [256, 0, 1, 16, 64, 1024, 64 << 10, 256 << 10][usize::from(b3 & 7)];
    c.max_outgoing_packet_size = [4096, 2, 8, 16, 32, 64, 300, 1 << 20][usize::from(b4 & 7)];
    c.max_packet_size = [4096, 2, 4, 8, 16, 64, 300, 1 << 20][usize::from(b5 & 7)];
    c.keep_alive = [
        ms(10_000),
        Duration::ZERO,
        ms(500),
        ms(1_000),
        ms(2_000),
        ms(60_000),
        ms(65_535_000),
        Duration::MAX,
    ][usize::from(b6 & 7)];
    c.ping_timeout = TIMES[usize::from((b6 >> 3) & 7)];
    c.connack_timeout = TIMES[usize::from(b7 & 7)];
    c.restore_subscriptions = match (b7 >> 3) % 3 {
        0 => RestoreSubscriptions::Never,
        1 => RestoreSubscriptions::WhenSessionLost,
        _ => RestoreSubscriptions::Always,
    };
    c
}

/// The CONNECT the client must send for `c` (read from the config at `connect`), or why
/// `connect` must refuse.
fn expected_connect(c: &Config) -> Result<Connect, CommandError> {
    let secs = c
        .keep_alive
        .as_secs()
        .checked_add(u64::from(c.keep_alive.subsec_nanos() > 0));
    let Some(Ok(keep_alive)) = secs.map(u16::try_from) else {
        return Err(CommandError::InvalidConfig(""));
    };
    // MQTT 5 allows a password without a user name.
    if c.max_inflight == 0
        || c.max_transmit_buffer == 0
        || (c.password.is_some() && c.username.is_none() && !c.protocol.is_v5())
    {
        return Err(CommandError::InvalidConfig(""));
    }
    let mut properties = Properties::new();
    if c.protocol.is_v5() {
        // The limits the session enforces (no Session Expiry Interval set: 3.1.1's meaning).
        properties.session_expiry_interval = (!c.clean_session).then_some(u32::MAX);
        properties.receive_maximum = c.receive_maximum;
        properties.maximum_packet_size = u32::try_from(c.max_packet_size)
            .ok()
            .and_then(NonZeroU32::new);
        properties.topic_alias_maximum = Some(c.topic_alias_maximum).filter(|&max| max != 0);
    }
    let connect = Connect {
        protocol: c.protocol,
        keep_alive,
        clean_session: c.clean_session,
        client_id: c.client_id.clone(),
        will: c.will.clone(),
        username: c.username.clone(),
        password: c.password.clone(),
        properties,
    };
    let mut scratch = BytesMut::new();
    connect.encode(&mut scratch)?;
    Ok(connect)
}

// ---- the model ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Closed,
    AwaitingConnAck,
    Connected,
    Draining,
}

/// What the last accepting CONNACK settled (MQTT 5; unrestricted in 3.1.1, and from `connect`
/// until the CONNACK), as [`Client::negotiated`] keeps it.
#[derive(Debug, Clone)]
struct Terms {
    receive_maximum: u16,
    maximum_packet_size: Option<usize>,
    topic_alias_maximum: u16,
    server_keep_alive: Option<Duration>,
    maximum_qos: QoS,
    retain_available: bool,
    wildcards_available: bool,
}

impl Terms {
    const UNRESTRICTED: Self = Self {
        receive_maximum: u16::MAX,
        maximum_packet_size: None,
        topic_alias_maximum: 0,
        server_keep_alive: None,
        maximum_qos: QoS::ExactlyOnce,
        retain_available: true,
        wildcards_available: true,
    };

    fn from_connack(p: &Properties) -> Self {
        Self {
            receive_maximum: p.receive_maximum.map_or(u16::MAX, NonZeroU16::get),
            maximum_packet_size: p.maximum_packet_size.map(|n| n.get() as usize),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            server_keep_alive: p.server_keep_alive.map(|s| Duration::from_secs(s.into())),
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            wildcards_available: p.wildcard_subscription_available.unwrap_or(true),
        }
    }
}

/// Where the keep-alive exchange stands (as the client keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    Idle,
    /// PINGREQ appended, not wholly written: no PINGRESP is awaited yet.
    Unwritten,
    /// PINGREQ written: PINGRESP due by then (`None`: too far to represent).
    Awaiting(Option<Instant>),
}

/// A QoS 1/2 message `publish` returned an identifier for, not yet completed.
#[derive(Debug)]
struct OutMessage {
    /// As given to `publish` (DUP clear).
    publish: Publish,
    /// The connection that last sent it; 0 while it waits in the queue.
    sent_on: u32,
    /// First-send order, for the resend order after CONNACK.
    seq: u64,
    /// MQTT 5: when its Message Expiry Interval ends (every send carries what is left of it).
    expires: Option<Instant>,
    /// QoS 2: PUBREC processed (the client is in the release stage: only PUBREL and PUBCOMP remain).
    released: bool,
    /// The window had no room for it at the last CONNACK (a smaller Receive Maximum): not sent
    /// again on this connection yet; it goes before any queued message as room frees.
    held: bool,
}

#[derive(Debug)]
enum Request {
    Subscribe(Vec<SubscribeFilter>),
    Unsubscribe(Vec<TopicFilter>),
}

/// A received QoS 1/2 message whose acknowledgement the application holds (manual acks).
#[derive(Debug)]
struct Held {
    id: PacketId,
    qos: QoS,
    acked: bool,
    /// MQTT 5: counts against our Receive Maximum (QoS 1, not a re-sent copy).
    counted: bool,
}

/// What the current connection's outgoing bytes have been so far.
struct Stream {
    /// Decodes the bytes the driver wrote, across partial writes.
    wire: PacketDecoder,
    /// Packets appended to the transmit buffer and not yet (wholly) written, in order.
    unwritten: VecDeque<Packet>,
    /// Set when a fault dropped the unwritten bytes: the connection's byte stream is cut.
    cut: bool,
    packets: usize,
    /// CONNACK accepted this connection.
    connacked: bool,
    disconnect_sent: bool,
    /// Identifiers of the unacknowledged QoS 1/2 messages sent on this connection.
    published: BTreeSet<u16>,
    /// Identifiers of the pending SUBSCRIBE/UNSUBSCRIBE sent on this connection.
    requested: BTreeSet<u16>,
    /// Bytes the transmit buffer may hold beyond the fixed part of the bound (see the module doc).
    credit: usize,
    /// MQTT 5: the topics the client's PUBLISHes set Topic Aliases to on this connection.
    aliases: BTreeMap<u16, TopicName>,
}

impl Stream {
    fn new(protocol: Protocol) -> Self {
        Self {
            wire: PacketDecoder::with_protocol(ANY_SIZE, protocol),
            unwritten: VecDeque::new(),
            cut: false,
            packets: 0,
            connacked: false,
            disconnect_sent: false,
            published: BTreeSet::new(),
            requested: BTreeSet::new(),
            credit: 0,
            aliases: BTreeMap::new(),
        }
    }
}

/// What one input must produce, besides the standing invariants.
#[derive(Default)]
struct Expect {
    /// Events that must come, in this order (all events but the `may_*` ones below).
    events: VecDeque<Event>,
    /// A drain may finish (`Disconnected { Requested }`, DISCONNECT).
    may_finish_drain: bool,
    /// Packets that must be appended to the transmit buffer (any order, among others).
    required: Vec<Packet>,
    /// After CONNACK: the first packets appended must be exactly these.
    resend_prefix: Option<Vec<Packet>>,
    /// The packet types appended must be exactly these.
    exact: Option<Vec<PacketType>>,
    /// A connection was open before the input.
    was_open: bool,
    /// `handle_transmitted` consumed this many bytes.
    consumed: usize,
    /// `connect` started a new connection (the transmit buffer was replaced).
    new_stream: bool,
    /// A fault ends the connection (the transmit buffer is dropped).
    fault: bool,
    /// `handle_closed`: whatever was pending belonged to the dead transport and is dropped.
    drop_transmit: bool,
    /// MQTT 5: the fault leaves exactly one DISCONNECT with this Reason Code to be written.
    fault_disconnect: Option<ReasonCode>,
    /// `publish` said the message goes out at once.
    send_now: bool,
    /// A CONNACK restores these granted filters (`Event::Resubscribing`, whose identifier only
    /// the client knows).
    restore: Option<Vec<SubscribeFilter>>,
    credit: usize,
}

struct Harness {
    client: Client,
    cfg: Config,
    connect: Result<Connect, CommandError>,
    /// Fixed part of the transmit-buffer bound.
    bound_base: usize,
    now: Instant,
    conn: Conn,
    conn_no: u32,
    session_present: bool,
    /// The transmit buffer after the previous input.
    prev: Vec<u8>,
    stream: Stream,
    /// The bytes received on this connection and not yet a whole packet; `None` once the client
    /// stopped reading (a fault).
    incoming: Option<BytesMut>,
    /// Messages `publish` accepted and not yet sent, in call order (the client's queue).
    unsent: VecDeque<Publish>,
    /// MQTT 5: when each queued message expires (beside `unsent`).
    unsent_expiry: VecDeque<Option<Instant>>,
    /// MQTT 5: `Expired`/`Unsendable` owed for queued messages given up before a later one went
    /// out.
    given_up: VecDeque<Event>,
    pubs: BTreeMap<u16, OutMessage>,
    seq: u64,
    requests: BTreeMap<u16, Request>,
    /// Filters the broker granted.
    active: BTreeMap<TopicFilter, QoS>,
    held: VecDeque<Held>,
    /// Incoming QoS 2 identifiers delivered, PUBREL not processed yet (this session).
    awaiting_release: BTreeSet<u16>,
    /// The identifiers of `awaiting_release` received since the current connection's CONNACK.
    held_this_connection: BTreeSet<u16>,
    /// Identifiers the broker used, for the id selector.
    recent_in: VecDeque<u16>,
    connack_deadline: Option<Instant>,
    last_sent: Instant,
    ping: Ping,
    /// Since when the pending bytes have waited with none written (see `Client`'s stall limit).
    stall_from: Instant,
    drain_deadline: Option<Instant>,
    /// The session the client's records describe so far.
    recorded: SessionSnapshot,
    /// What the last CONNACK settled.
    terms: Terms,
    /// MQTT 5: the topics the broker set its Topic Aliases to on this connection.
    aliases_in: BTreeMap<u16, TopicName>,
}

fn id_of(v: u16) -> PacketId {
    PacketId::new(v).unwrap_or(PacketId::MIN)
}

fn server_reason(reason_code: ReasonCode, properties: &Properties) -> ServerReason {
    ServerReason {
        reason_code,
        properties: Box::new(properties.clone()),
    }
}

/// MQTT 5: an AUTH to a client without an authenticator (the target sets none).
fn unasked_auth() -> DisconnectReason {
    DisconnectReason::ProtocolViolation(ProtocolViolation::Authentication(
        "AUTH from a server the client did not authenticate with".to_owned(),
    ))
}

impl Harness {
    fn new(cfg: Config, now: Instant) -> Self {
        let protocol = cfg.protocol;
        let connect = expected_connect(&cfg);
        let connect_len = connect.as_ref().map_or(0, Connect::encoded_len);
        let max_out = cfg.max_outgoing_packet_size.max(4);
        let bound_base = connect_len
            + 4
            + cfg.max_transmit_buffer
            + cfg.max_outgoing_packet_size
            + usize::from(cfg.max_inflight) * max_out;
        Self {
            client: Client::new(cfg.clone()),
            cfg,
            connect,
            bound_base,
            now,
            conn: Conn::Closed,
            conn_no: 0,
            session_present: false,
            prev: Vec::new(),
            stream: Stream::new(protocol),
            incoming: None,
            unsent: VecDeque::new(),
            unsent_expiry: VecDeque::new(),
            given_up: VecDeque::new(),
            pubs: BTreeMap::new(),
            seq: 0,
            requests: BTreeMap::new(),
            active: BTreeMap::new(),
            held: VecDeque::new(),
            awaiting_release: BTreeSet::new(),
            held_this_connection: BTreeSet::new(),
            recent_in: VecDeque::new(),
            connack_deadline: None,
            last_sent: now,
            ping: Ping::Idle,
            stall_from: now,
            drain_deadline: None,
            recorded: SessionSnapshot::default(),
            terms: Terms::UNRESTRICTED,
            aliases_in: BTreeMap::new(),
        }
    }

    fn protocol(&self) -> Protocol {
        self.cfg.protocol
    }

    fn v5(&self) -> bool {
        self.cfg.protocol.is_v5()
    }

    /// The largest packet the client may send now: ours, and the server's Maximum Packet Size.
    fn max_send(&self) -> usize {
        self.terms
            .maximum_packet_size
            .map_or(self.cfg.max_outgoing_packet_size, |max| {
                max.min(self.cfg.max_outgoing_packet_size)
            })
    }

    /// Our QoS 1/2 messages sent on this connection or an earlier one and not held at the last
    /// CONNACK: what the server's Receive Maximum counts.
    fn unacknowledged_out(&self) -> usize {
        self.pubs
            .values()
            .filter(|m| m.sent_on != 0 && !m.held)
            .count()
    }

    /// The window: ours, and the server's Receive Maximum.
    fn window(&self) -> usize {
        usize::from(self.cfg.max_inflight.min(self.terms.receive_maximum))
    }

    /// The keep-alive in force: the server's Server Keep Alive when it sent one, else ours.
    fn keep_alive(&self) -> Duration {
        self.terms.server_keep_alive.unwrap_or(self.cfg.keep_alive)
    }

    /// How long a PINGREQ waits for PINGRESP: ours, but at most half a Server Keep Alive.
    fn ping_timeout(&self) -> Duration {
        match self.terms.server_keep_alive {
            Some(server) if !server.is_zero() => self.cfg.ping_timeout.min(server / 2),
            _ => self.cfg.ping_timeout,
        }
    }

    /// Incoming QoS 1/2 messages not acknowledged yet, as our Receive Maximum counts them.
    /// What counts against our Receive Maximum: QoS 2 identifiers held since this connection's
    /// CONNACK (one held from before may belong to a session lost unnoticed, which no PUBREL will
    /// free), and QoS 1 messages whose ack is held.
    fn unacknowledged_in(&self) -> usize {
        self.held_this_connection.len() + self.held.iter().filter(|h| h.counted).count()
    }

    fn max_out(&self) -> usize {
        self.cfg.max_outgoing_packet_size.max(4)
    }

    /// When PINGREQ is due (keep-alive on, nothing outstanding).
    fn ping_due(&self) -> Option<Instant> {
        let keep_alive = self.keep_alive();
        if keep_alive.is_zero() {
            return None;
        }
        self.last_sent.checked_add(keep_alive)
    }

    /// When the pending bytes, none of them written, end the connection: the keep-alive after
    /// `stall_from` (the ping timeout with keep-alive off; never when that is zero too).
    fn stall_deadline(&self) -> Option<Instant> {
        if self.prev.is_empty() {
            return None;
        }
        let keep_alive = self.keep_alive();
        let limit = if keep_alive.is_zero() {
            self.ping_timeout()
        } else {
            keep_alive
        };
        if limit.is_zero() {
            return None;
        }
        self.stall_from.checked_add(limit)
    }

    /// Whether `packet` (an acknowledgement) waits in the transmit buffer, appended before this
    /// input and not wholly written, or is owed by this input already: it answers a repeat too.
    fn ack_pending(&self, ex: &Expect, packet: &Packet) -> bool {
        self.stream.unwritten.contains(packet) || ex.required.contains(packet)
    }

    fn id_in_use(&self, id: PacketId) -> bool {
        self.pubs.contains_key(&id.get()) || self.requests.contains_key(&id.get())
    }

    /// An identifier for an incoming packet, from selector `s`.
    fn pick_id(&self, s: u8, input: &mut Input<'_>) -> PacketId {
        let small = || id_of(1 + u16::from(s >> 2) % 8);
        let pick = |ids: Vec<u16>| {
            if ids.is_empty() {
                small()
            } else {
                id_of(ids[usize::from(s >> 2) % ids.len()])
            }
        };
        match s & 3 {
            0 => pick(
                self.pubs
                    .keys()
                    .chain(self.requests.keys())
                    .copied()
                    .collect(),
            ),
            1 => pick(self.recent_in.iter().copied().collect()),
            2 => small(),
            _ => id_of(input.u16()),
        }
    }

    // ---- model transitions ----

    fn close(&mut self) {
        self.conn = Conn::Closed;
        self.connack_deadline = None;
        self.ping = Ping::Idle;
        self.drain_deadline = None;
        self.incoming = None;
    }

    fn fault(&mut self, ex: &mut Expect, reason: DisconnectReason) {
        if self.v5() {
            // MQTT 5.0 section 4.13: the server's fault is named in a DISCONNECT.
            // A code DISCONNECT cannot carry (0x84, for a CONNECT of an unknown protocol) is
            // named as the Protocol Error it is on a client's connection.
            ex.fault_disconnect = match &reason {
                DisconnectReason::Malformed(e) => Some(e.reason_code()),
                DisconnectReason::ProtocolViolation(v) => Some(v.reason_code()),
                _ => None,
            }
            .map(|code| {
                if code.is_valid_in(PropertyContext::Disconnect) {
                    code
                } else {
                    ReasonCode::ProtocolError
                }
            });
        }
        ex.events.push_back(Event::Disconnected { reason });
        ex.fault = true;
        self.close();
    }

    fn finish_drain(&mut self, ex: &mut Expect) {
        ex.events.push_back(Event::Disconnected {
            reason: DisconnectReason::Requested,
        });
        ex.required.push(Packet::Disconnect(Disconnect::new()));
        self.close();
    }

    /// Outgoing message `id` is done (acknowledged, or given up): its identifier may come back, even
    /// on this connection, for another message.
    fn complete(&mut self, id: u16) {
        self.pubs.remove(&id);
        self.stream.published.remove(&id);
    }

    /// Request `id` was answered: its identifier may come back for another request.
    fn answered(&mut self, id: u16) {
        self.requests.remove(&id);
        self.stream.requested.remove(&id);
    }

    /// After an outgoing message completed: a drain ends when nothing is left.
    fn after_completion(&mut self, ex: &mut Expect) {
        ex.credit += self.max_out();
        if self.conn == Conn::Draining {
            if self.pubs.is_empty() && self.unsent.is_empty() {
                self.finish_drain(ex);
            } else if self.only_expired_left() {
                // Only QoS 0 messages wait, or messages past their expiry; whether they all fit in
                // the transmit buffer (or expire) now decides.
                ex.may_finish_drain = true;
            }
        }
    }

    /// Every QoS 1/2 message left is queued and will be given up when the client comes to it
    /// (vacuously: none is left).
    fn only_expired_left(&self) -> bool {
        self.pubs.iter().all(|(&id, m)| {
            m.sent_on == 0
                && self
                    .unsent
                    .iter()
                    .zip(&self.unsent_expiry)
                    .any(|(p, &e)| p.packet_id == Some(id_of(id)) && self.doomed(p, e).is_some())
        })
    }

    /// MQTT 5: why the client gives queued message `p` (expiring at `expires`) up instead of
    /// sending it: its expiry passed (`Expired`), or the server's terms refuse it
    /// (`Unsendable`, MQTT-3.2.2-11, -14, -15).
    fn doomed(&self, p: &Publish, expires: Option<Instant>) -> Option<Event> {
        let topic = p.topic_name();
        let packet_id = p.packet_id;
        if expires.is_some_and(|at| at <= self.now) {
            return Some(Event::Expired { topic, packet_id });
        }
        let error = self.refused_by_terms(p)?;
        Some(Event::Unsendable {
            topic,
            packet_id,
            error: Box::new(error),
        })
    }

    /// MQTT 5: what `publish` would refuse `p` for under the terms of the last CONNACK.
    fn refused_by_terms(&self, p: &Publish) -> Option<CommandError> {
        if !self.v5() {
            return None;
        }
        if p.qos > self.terms.maximum_qos {
            return Some(CommandError::QosNotSupported {
                requested: p.qos,
                maximum: self.terms.maximum_qos,
            });
        }
        if p.retain && !self.terms.retain_available {
            return Some(CommandError::RetainNotSupported);
        }
        let size = p.encoded_len_in(Protocol::Mqtt5);
        (size > self.max_send()).then(|| {
            CommandError::Encode(EncodeError::PacketTooLarge {
                size,
                max: self.max_send(),
            })
        })
    }

    /// The Message Expiry Interval a message expiring at `at` is sent with now: what is left, in
    /// whole seconds rounded up, at least 1.
    fn expiry_left(&self, at: Instant) -> u32 {
        let left = at.saturating_duration_since(self.now);
        let secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// A queued message goes out after the ones before it that the client gives up as it comes
    /// to them.
    fn give_up_queue_front(&mut self) {
        while self.give_up_one() {}
    }

    /// The queued message at the front is given up if it is doomed; whether it was.
    fn give_up_one(&mut self) -> bool {
        let (Some(front), Some(&expires)) = (self.unsent.front(), self.unsent_expiry.front())
        else {
            return false;
        };
        let Some(event) = self.doomed(front, expires) else {
            return false;
        };
        let (Some(publish), _) = (self.unsent.pop_front(), self.unsent_expiry.pop_front()) else {
            return false;
        };
        if let Some(id) = publish.packet_id {
            self.complete(id.get());
        }
        self.given_up.push_back(event);
        true
    }

    /// The client processes `packet` (the model's side).
    fn process(&mut self, ex: &mut Expect, packet: Packet) {
        trace!("    <- {}", brief(&packet));
        ex.credit += 4;
        if self.conn == Conn::AwaitingConnAck {
            match packet {
                Packet::ConnAck(connack) if self.v5() => {
                    if connack.reason_code == ReasonCode::Success {
                        self.terms = Terms::from_connack(connack.properties());
                        self.on_connack(ex, connack.session_present);
                    } else {
                        let reason = server_reason(connack.reason_code, connack.properties());
                        self.fault(ex, DisconnectReason::ConnectRefused(reason));
                    }
                }
                Packet::Auth(_) => self.fault(ex, unasked_auth()),
                Packet::ConnAck(ConnAck {
                    session_present,
                    code: ConnectReturnCode::Accepted,
                    ..
                }) => self.on_connack(ex, session_present),
                Packet::ConnAck(ConnAck { code, .. }) => {
                    self.fault(ex, DisconnectReason::Refused(code));
                }
                other => self.fault(
                    ex,
                    DisconnectReason::ProtocolViolation(ProtocolViolation::ExpectedConnAck(
                        other.packet_type(),
                    )),
                ),
            }
            return;
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(ex, publish),
            Packet::PubAck(ack) => {
                let packet_id = ack.packet_id;
                let id = packet_id.get();
                match self.pubs.get(&id) {
                    Some(m) if m.publish.qos == QoS::AtLeastOnce && m.sent_on != 0 => {
                        self.complete(id);
                        ex.events.push_back(if ack.reason_code.is_error() {
                            Event::PublishRefused {
                                packet_id,
                                qos: QoS::AtLeastOnce,
                                reason: server_reason(ack.reason_code, ack.properties()),
                            }
                        } else {
                            Event::Published {
                                packet_id,
                                qos: QoS::AtLeastOnce,
                            }
                        });
                        self.after_completion(ex);
                    }
                    _ => {} // queued, not ours, or QoS 2: ignored
                }
            }
            Packet::PubRec(rec) if rec.reason_code.is_error() => {
                // MQTT 5.0 section 4.3.3: the exchange ends here, without PUBREL; only a
                // message not released yet is refused (a late one for a released message is
                // ignored).
                let packet_id = rec.packet_id;
                let id = packet_id.get();
                if self.pubs.get(&id).is_some_and(|m| {
                    m.publish.qos == QoS::ExactlyOnce && m.sent_on != 0 && !m.released
                }) {
                    self.complete(id);
                    ex.events.push_back(Event::PublishRefused {
                        packet_id,
                        qos: QoS::ExactlyOnce,
                        reason: server_reason(rec.reason_code, rec.properties()),
                    });
                    self.after_completion(ex);
                }
            }
            Packet::PubRec(PubRec { packet_id, .. }) => {
                if let Some(m) = self.pubs.get_mut(&packet_id.get())
                    && m.publish.qos == QoS::ExactlyOnce
                    && m.sent_on != 0
                {
                    m.released = true;
                    m.held = false; // the server has it: no need to send it again
                    // One PUBREL per identifier waits to be written, however often PUBREC comes.
                    let pubrel = Packet::PubRel(PubRel::new(packet_id));
                    if !self.ack_pending(ex, &pubrel) {
                        ex.required.push(pubrel);
                    }
                }
            }
            Packet::PubRel(PubRel { packet_id, .. }) => {
                self.awaiting_release.remove(&packet_id.get());
                self.held_this_connection.remove(&packet_id.get());
                let pubcomp = Packet::PubComp(PubComp::new(packet_id));
                if !self.ack_pending(ex, &pubcomp) {
                    ex.required.push(pubcomp);
                }
            }
            Packet::PubComp(PubComp { packet_id, .. }) => {
                let id = packet_id.get();
                if self
                    .pubs
                    .get(&id)
                    .is_some_and(|m| m.publish.qos == QoS::ExactlyOnce && m.released)
                {
                    self.complete(id);
                    ex.events.push_back(Event::Published {
                        packet_id,
                        qos: QoS::ExactlyOnce,
                    });
                    self.after_completion(ex);
                }
            }
            Packet::SubAck(suback) => self.on_suback(ex, suback),
            Packet::UnsubAck(UnsubAck { packet_id, .. }) => {
                if let Some(Request::Unsubscribe(filters)) = self.requests.get(&packet_id.get()) {
                    for f in filters {
                        self.active.remove(f);
                    }
                    self.answered(packet_id.get());
                    ex.events.push_back(Event::Unsubscribed { packet_id });
                }
            }
            Packet::PingResp => self.ping = Ping::Idle,
            Packet::Auth(_) => self.fault(ex, unasked_auth()),
            Packet::Disconnect(disconnect) if self.v5() => {
                let reason = server_reason(disconnect.reason_code, disconnect.properties());
                self.fault(ex, DisconnectReason::ServerDisconnected(reason));
            }
            other => {
                let violation = ProtocolViolation::UnexpectedPacket(other.packet_type());
                self.fault(ex, DisconnectReason::ProtocolViolation(violation));
            }
        }
    }

    fn on_connack(&mut self, ex: &mut Expect, session_present: bool) {
        ex.events.push_back(Event::Connected { session_present });
        self.held_this_connection.clear();
        self.stream.connacked = true;
        self.conn = Conn::Connected;
        self.connack_deadline = None;
        self.session_present = session_present;
        for m in self.pubs.values_mut() {
            m.held = false;
        }
        let mut inflight: Vec<(u64, u16)> = self
            .pubs
            .iter()
            .filter(|(_, m)| m.sent_on != 0)
            .map(|(&id, m)| (m.seq, id))
            .collect();
        inflight.sort_unstable();
        if !session_present {
            // The broker forgot the session: no PUBREL comes for its earlier messages, and the
            // acknowledgements held for them would answer nothing (or a new message that reuses
            // an identifier), so they are void. Our messages all go out again (PUBLISH with
            // DUP=1, PUBREL: complete only at PUBCOMP), unless the policy gives them up.
            self.awaiting_release.clear();
            self.held_this_connection.clear();
            self.held.clear();
            if self.cfg.unacked_policy == UnackedPolicy::Discard {
                for &(_, id) in &inflight {
                    ex.events.push_back(Event::Dropped {
                        packet_id: id_of(id),
                    });
                }
                inflight.clear();
            }
            let keep: BTreeSet<u16> = inflight.iter().map(|&(_, id)| id).collect();
            let gone: Vec<u16> = self
                .pubs
                .iter()
                .filter(|(id, m)| m.sent_on != 0 && !keep.contains(id))
                .map(|(&id, _)| id)
                .collect();
            for id in gone {
                self.complete(id);
            }
        }
        // MQTT 5: a message this server's terms refuse is given up rather than sent again.
        inflight.retain(|&(_, id)| {
            let m = &self.pubs[&id];
            let Some(error) = (!m.released)
                .then(|| self.refused_by_terms(&m.publish))
                .flatten()
            else {
                return true;
            };
            ex.events.push_back(Event::Unsendable {
                topic: m.publish.topic_name(),
                packet_id: Some(id_of(id)),
                error: Box::new(error),
            });
            self.complete(id);
            false
        });
        // Every PUBREL again, and the PUBLISHes in first-send order while the window (now
        // perhaps smaller: this server's Receive Maximum) has room; the rest are held
        // (MQTT-3.3.4-9).
        let released = inflight
            .iter()
            .filter(|&&(_, id)| self.pubs[&id].released)
            .count();
        let mut room = self.window().saturating_sub(released);
        inflight.retain(|&(_, id)| {
            let Some(m) = self.pubs.get_mut(&id) else {
                return false;
            };
            if m.released {
                return true;
            }
            if room == 0 {
                m.held = true;
                return false;
            }
            room -= 1;
            true
        });
        let resend = inflight
            .iter()
            .map(|&(_, id)| {
                let m = &self.pubs[&id];
                if m.released {
                    Packet::PubRel(PubRel::new(id_of(id)))
                } else {
                    let mut publish = m.publish.clone();
                    publish.dup = true;
                    if let Some(at) = m.expires {
                        publish.properties_mut().message_expiry_interval =
                            Some(self.expiry_left(at));
                    }
                    Packet::Publish(publish)
                }
            })
            .collect();
        ex.resend_prefix = Some(resend);
        if self.v5() {
            // A request made before this CONNACK that its Maximum Packet Size refuses is given
            // up unsent (MQTT-3.2.2-15), reported subscriptions first, each kind by identifier.
            let max = self.max_send();
            let mut oversized: Vec<(bool, u16, usize)> = Vec::new();
            for (&id, request) in &self.requests {
                let (unsubscribe, size) = match request {
                    Request::Subscribe(filters) => (
                        false,
                        Subscribe::with_filters(id_of(id), filters.clone())
                            .encoded_len_in(Protocol::Mqtt5),
                    ),
                    Request::Unsubscribe(filters) => (
                        true,
                        Unsubscribe::new(id_of(id), filters.clone())
                            .encoded_len_in(Protocol::Mqtt5),
                    ),
                };
                if size > max {
                    oversized.push((unsubscribe, id, size));
                }
            }
            oversized.sort_unstable();
            for (_, id, size) in oversized {
                ex.events.push_back(Event::RequestUnsendable {
                    packet_id: id_of(id),
                    error: CommandError::Encode(EncodeError::PacketTooLarge { size, max }),
                });
                self.answered(id);
            }
        }
        for (&id, request) in &self.requests {
            let packet = match request {
                Request::Subscribe(filters) => {
                    Packet::Subscribe(Subscribe::with_filters(id_of(id), filters.clone()))
                }
                Request::Unsubscribe(filters) => {
                    Packet::Unsubscribe(Unsubscribe::new(id_of(id), filters.clone()))
                }
            };
            ex.credit += packet.encoded_len_in(self.protocol());
            ex.required.push(packet);
        }
        ex.credit += 4 * self.held.len();
        let restores = match self.cfg.restore_subscriptions {
            RestoreSubscriptions::WhenSessionLost => !session_present,
            RestoreSubscriptions::Always => true,
            _ => false,
        };
        if restores {
            // What the SUBSCRIBEs sent again above do not ask for already.
            let asked = |filter: &TopicFilter| {
                self.requests.values().any(|r| {
                    matches!(r, Request::Subscribe(fs) if fs.iter().any(|f| f.filter == *filter))
                })
            };
            let filters: Vec<SubscribeFilter> = self
                .active
                .iter()
                .filter(|(f, _)| !asked(f))
                .map(|(f, &q)| SubscribeFilter::new(f.clone(), q))
                .collect();
            let size = Subscribe::with_filters(PacketId::MIN, filters.clone())
                .encoded_len_in(self.protocol());
            // The restore is a `subscribe` under the terms this CONNACK set.
            let refused =
                !self.terms.wildcards_available && filters.iter().any(|f| f.filter.has_wildcards());
            if !filters.is_empty() && size <= self.max_send() && !refused {
                ex.restore = Some(filters);
            }
        }
    }

    /// The restore a CONNACK announced: a request like any SUBSCRIBE from now on.
    fn take_restore(&mut self, ex: &mut Expect, events: &mut Vec<Event>, what: &str) {
        let at = events
            .iter()
            .position(|e| matches!(e, Event::Resubscribing { .. }));
        let announced = at.map(|i| events.remove(i));
        match (ex.restore.take(), announced) {
            (None, None) => {}
            (Some(want), Some(Event::Resubscribing { packet_id, filters })) => {
                assert_eq!(filters, want, "{what}: the filters restored");
                assert!(
                    !self.id_in_use(packet_id),
                    "{what}: the restore took packet id {packet_id}, which is in use"
                );
                let packet = Subscribe::with_filters(packet_id, filters);
                ex.credit += packet.encoded_len_in(self.protocol());
                self.requests
                    .insert(packet_id.get(), Request::Subscribe(packet.filters.clone()));
                ex.required.push(Packet::Subscribe(packet));
            }
            (want, got) => panic!("{what}: restore {got:?}, expected one for {want:?}"),
        }
    }

    fn on_publish(&mut self, ex: &mut Expect, mut publish: Publish) {
        if let Some(alias) = publish.properties().topic_alias {
            // MQTT 5: the alias is resolved before the application sees the message.
            let a = alias.get();
            if a > self.cfg.topic_alias_maximum {
                let violation = ProtocolViolation::TopicAliasAboveMaximum {
                    alias: a,
                    maximum: self.cfg.topic_alias_maximum,
                };
                return self.fault(ex, DisconnectReason::ProtocolViolation(violation));
            }
            if publish.topic_bytes().is_empty() {
                let Some(topic) = self.aliases_in.get(&a) else {
                    let violation = ProtocolViolation::UnknownTopicAlias(a);
                    return self.fault(ex, DisconnectReason::ProtocolViolation(violation));
                };
                publish.set_topic(topic.clone());
            } else {
                self.aliases_in.insert(a, publish.topic_name());
            }
            publish.properties_mut().topic_alias = None;
        }
        // A re-sent copy (DUP) is not a new message: the server counted it when it first sent it.
        if self.v5()
            && !publish.dup
            && let Some(id) = publish.packet_id
            && !self.awaiting_release.contains(&id.get())
            && !self.held.iter().any(|h| h.id == id)
        {
            let maximum = self.cfg.receive_maximum.map_or(u16::MAX, NonZeroU16::get);
            if self.unacknowledged_in() >= usize::from(maximum) {
                // MQTT-3.3.4-9
                let violation = ProtocolViolation::ReceiveMaximumExceeded { maximum };
                return self.fault(ex, DisconnectReason::ProtocolViolation(violation));
            }
        }
        let manual = self.cfg.manual_acks;
        if let Some(id) = publish.packet_id {
            self.recent_in.push_back(id.get());
            if self.recent_in.len() > 16 {
                self.recent_in.pop_front();
            }
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                if manual {
                    // Re-sent before the application acknowledged it: delivered already.
                    if self.held.iter().any(|h| h.id == id) {
                        return;
                    }
                    self.hold(id, QoS::AtLeastOnce, publish.dup);
                } else {
                    ex.required.push(Packet::PubAck(PubAck::new(id)));
                }
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if self.awaiting_release.contains(&id.get()) {
                    // Re-sent before PUBREL: not delivered again; PUBREC again, unless the
                    // application has not acknowledged it yet or a PUBREC for it still waits to
                    // be written. In manual mode the repeat waits behind the acknowledgements
                    // held for earlier messages (MQTT-4.6.0-2).
                    let pubrec = Packet::PubRec(PubRec::new(id));
                    if !manual {
                        if !self.ack_pending(ex, &pubrec) {
                            ex.required.push(pubrec);
                        }
                    } else if !self.held.iter().any(|h| h.id == id)
                        && !self.stream.unwritten.contains(&pubrec)
                    {
                        self.hold(id, QoS::ExactlyOnce, publish.dup);
                        if let Some(h) = self.held.back_mut() {
                            h.acked = true;
                        }
                        ex.credit += 4 * self.held.len();
                    }
                    return;
                }
                self.awaiting_release.insert(id.get());
                self.held_this_connection.insert(id.get());
                if manual {
                    self.hold(id, QoS::ExactlyOnce, publish.dup);
                } else {
                    ex.required.push(Packet::PubRec(PubRec::new(id)));
                }
            }
            _ => {}
        }
        ex.events.push_back(Event::Message(publish));
    }

    fn hold(&mut self, id: PacketId, qos: QoS, dup: bool) {
        self.held.push_back(Held {
            id,
            qos,
            acked: false,
            counted: qos == QoS::AtLeastOnce && !dup,
        });
    }

    fn on_suback(&mut self, ex: &mut Expect, suback: SubAck) {
        let id = suback.packet_id.get();
        let Some(Request::Subscribe(filters)) = self.requests.get(&id) else {
            return;
        };
        if filters.len() != suback.return_codes.len() {
            let violation = ProtocolViolation::SubAckCount {
                packet_id: suback.packet_id,
                expected: filters.len(),
                received: suback.return_codes.len(),
            };
            self.fault(ex, DisconnectReason::ProtocolViolation(violation));
            return;
        }
        let Some(Request::Subscribe(filters)) = self.requests.remove(&id) else {
            return;
        };
        self.stream.requested.remove(&id);
        let mut results = Vec::new();
        for (requested, code) in filters.into_iter().zip(suback.return_codes) {
            let result = match code {
                SubscribeReturnCode::Success(q) => {
                    self.active.insert(requested.filter.clone(), q);
                    Ok(q)
                }
                SubscribeReturnCode::Failure | SubscribeReturnCode::Refused(_) => {
                    self.active.remove(&requested.filter);
                    if self.v5() {
                        Err(SubscribeRefused {
                            reason_code: code.reason_code(),
                        })
                    } else {
                        Err(SubscribeRefused::UNSPECIFIED)
                    }
                }
            };
            results.push((requested.filter, result));
        }
        ex.events.push_back(Event::Subscribed {
            packet_id: suback.packet_id,
            results,
        });
    }

    /// Takes the whole packets out of the received bytes and processes them, as the client does.
    fn process_incoming(&mut self, ex: &mut Expect) {
        let max = self.cfg.max_packet_size;
        let protocol = self.protocol();
        while self.conn != Conn::Closed {
            let Some(buf) = self.incoming.as_mut() else {
                return;
            };
            let result = match FrameHeader::parse_in(protocol, buf, max) {
                Ok(Some(h)) if buf.len() >= h.frame_len() => Packet::read_in(protocol, buf, max),
                Ok(_) => return,
                Err(e) => Err(e),
            };
            match result {
                Ok(Some(packet)) => self.process(ex, packet),
                Ok(None) => panic!("target bug: a whole frame read as incomplete"),
                Err(e) => {
                    trace!("    <- malformed: {e:?}");
                    self.fault(ex, DisconnectReason::Malformed(e));
                }
            }
        }
    }

    /// How many of `bytes` to give the client in the next call: up to the end of the first frame
    /// whose type is in `cut_after` (each such packet is the last one of its call), or all of them.
    fn next_cut(&self, bytes: &[u8], cut_after: &[PacketType]) -> usize {
        let Some(buf) = &self.incoming else {
            return bytes.len();
        };
        let mut probe = buf.to_vec();
        probe.extend_from_slice(bytes);
        let mut at = 0;
        while let Ok(Some(h)) =
            FrameHeader::parse_in(self.protocol(), &probe[at..], self.cfg.max_packet_size)
        {
            let end = at + h.frame_len();
            if end > probe.len() {
                break;
            }
            if cut_after.contains(&h.packet_type()) {
                return (end - buf.len()).clamp(1, bytes.len());
            }
            at = end;
        }
        bytes.len()
    }

    // ---- actions ----

    fn expect(&self) -> Expect {
        Expect {
            was_open: self.conn != Conn::Closed,
            ..Expect::default()
        }
    }

    fn run(&mut self, input: &mut Input<'_>) {
        while !input.is_empty() {
            let op = input.byte() % OPS;
            match op {
                0 => self.do_connect(),
                1 => {
                    let f = input.byte();
                    let len = input.byte();
                    // MQTT 5: a Message Expiry Interval, in seconds.
                    let expiry = if self.v5() {
                        [None, Some(1), Some(2), Some(60)][usize::from(input.byte() & 3)]
                    } else {
                        None
                    };
                    self.do_publish(qos(f & 3), f & 4 != 0, topic(f >> 3), payload(len), expiry);
                }
                2 => {
                    let n = input.byte() & 3;
                    let filters = (0..n)
                        .map(|_| {
                            let b = input.byte();
                            SubscribeFilter::new(filter(b), qos(b >> 3))
                        })
                        .collect();
                    self.do_subscribe(Some(filters));
                }
                3 => {
                    let n = input.byte() & 3;
                    let filters = (0..n).map(|_| filter(input.byte())).collect();
                    self.do_unsubscribe(filters);
                }
                4 => {
                    let s = input.byte();
                    let id = if s & 1 != 0 && !self.held.is_empty() {
                        self.held[usize::from(s >> 1) % self.held.len()].id
                    } else if s & 1 != 0 {
                        PacketId::MIN
                    } else {
                        id_of(input.u16())
                    };
                    self.do_ack(id);
                }
                5 => {
                    let b = input.byte();
                    let drain = if b == 0xFF {
                        Duration::MAX
                    } else {
                        ms(u64::from(b) * 100)
                    };
                    self.do_disconnect(drain);
                }
                6 => self.do_subscribe(None),
                7 => {
                    let n = input.byte();
                    let delivery = input.byte();
                    let bytes = input.take(usize::from(n)).to_vec();
                    self.do_receive(&bytes, delivery);
                }
                8 => {
                    let (packet, alias) = self.incoming_packet(input);
                    let delivery = input.byte();
                    let mut bytes = BytesMut::new();
                    match (&packet, alias) {
                        (Packet::Publish(p), Some((alias, with_topic))) => {
                            trace!("  (Topic Alias {alias}, with its topic: {with_topic})");
                            p.encode_aliased(alias, with_topic, &mut bytes)
                        }
                        _ if self.v5() => packet.encode_in(Protocol::Mqtt5, &mut bytes),
                        _ => packet.encode(&mut bytes),
                    }
                    .expect("the target builds valid packets");
                    trace!("  (packet {})", brief(&packet));
                    self.do_receive(&bytes, delivery);
                }
                9 => {
                    let b = input.byte();
                    let n = if b >= 0xF0 {
                        self.prev.len()
                    } else {
                        usize::from(b)
                    };
                    self.do_transmitted(n);
                }
                10 => {
                    let d = ms(u64::from(input.u16()));
                    trace!("> clock +{d:?}");
                    self.now += d;
                }
                11 => self.do_timeout(),
                12 => {
                    let early = input.byte() & 1 != 0;
                    if let Some(at) = self.client.poll_timeout() {
                        let at = if early { at - ms(1) } else { at };
                        self.now = self.now.max(at);
                    }
                    self.do_timeout();
                }
                _ => self.do_closed(),
            }
        }
    }

    /// A well-formed packet, as a broker (or a confused peer) would send it. Kind `k % 14`:
    /// - 0 CONNACK, `b`: return code `b & 0x0F` (6 and up read as 0, accepted), session present
    ///   `b & 0x10` (only with 0);
    /// - 1 PUBLISH, `f`: QoS `(f & 3) % 3`, DUP `f & 4` (QoS 1/2), retain `f & 8`, topic
    ///   `TOPICS[(f >> 4) & 7]`; then an id selector (QoS 1/2) and a payload length;
    /// - 2 PUBACK, 3 PUBREC, 4 PUBREL, 5 PUBCOMP, 7 UNSUBACK: an id selector;
    /// - 6 SUBACK: an id selector, `c` (`c & 0x80` clear: as many return codes as the pending
    ///   SUBSCRIBE with that id has filters; else `(c & 3) + 1`), then a byte per code (`& 3`: 0..2
    ///   grant that QoS, 3 is the failure 0x80);
    /// - 8 PINGRESP;
    /// - 9 CONNECT, 10 SUBSCRIBE, 11 UNSUBSCRIBE, 12 PINGREQ, 13 DISCONNECT: packets only a client
    ///   sends.
    ///
    /// In MQTT 5 the kind is `k % 15`, and:
    /// - 0 CONNACK reads `b`, `p1`, `p2`: `b & 0x0F` of 10 and up refuses with `[0x80, 0x84, 0x85,
    ///   0x86, 0x87, 0x88][(b & 0x0F) - 10]`, else it accepts, session present `b & 0x10`, with
    ///   Receive Maximum `[-, 1, 2, 3, 4, -, -, -][p1 & 7]`, Maximum Packet Size `[-, 16, 40,
    ///   100][(p1 >> 3) & 3]`, Topic Alias Maximum `(p1 >> 5) & 3` (0: absent), Retain Available 0
    ///   if `p1 & 0x80`, Server Keep Alive `[-, 0, 1, 5][p2 & 3]` seconds, Maximum QoS 1 if `p2 & 4`
    ///   else 0 if `p2 & 8`, Wildcard Subscription Available 0 if `p2 & 0x10`;
    /// - 1 PUBLISH reads `a` after the payload length: `a & 4` sets Topic Alias `1 + ((a >> 3) & 3)`,
    ///   sent without the topic if `a & 0x20`;
    /// - 2 PUBACK, 3 PUBREC read `c` after the id: Reason Code `[0x00, 0x00, 0x10, 0x80, 0x87, 0x91,
    ///   0x97, 0x99][c & 7]`; 4 PUBREL, 5 PUBCOMP: 0x92 if `c & 7 == 7`; 7 UNSUBACK: one code, 0x11
    ///   if `c & 1`;
    /// - 6 SUBACK: a code byte `b` with `b & 3 == 3` refuses with `[0x80, 0x87, 0x8F, 0xA2][(b >> 2)
    ///   & 3]`;
    /// - 13 DISCONNECT reads `d`: Reason Code `[0x00, 0x8B, 0x8E, 0x89][d & 3]`;
    /// - 14 AUTH reads `d`: 0x18 Continue authentication if `d & 1 == 0`, else 0x00.
    fn incoming_packet(&self, input: &mut Input<'_>) -> (Packet, Option<(NonZeroU16, bool)>) {
        let v5 = self.v5();
        let kind = input.byte() % if v5 { 15 } else { 14 };
        let mut alias = None;
        let packet = match kind {
            0 if v5 => {
                let b = input.byte();
                let p1 = input.byte();
                let p2 = input.byte();
                if b & 0x0F >= 10 {
                    const REFUSALS: [ReasonCode; 6] = [
                        ReasonCode::UnspecifiedError,
                        ReasonCode::UnsupportedProtocolVersion,
                        ReasonCode::ClientIdentifierNotValid,
                        ReasonCode::BadUserNameOrPassword,
                        ReasonCode::NotAuthorized,
                        ReasonCode::ServerUnavailable,
                    ];
                    Packet::ConnAck(ConnAck::from_reason_code(
                        REFUSALS[usize::from(b & 0x0F) - 10],
                    ))
                } else {
                    let mut props = Properties::new();
                    props.receive_maximum =
                        NonZeroU16::new([0, 1, 2, 3, 4, 0, 0, 0][usize::from(p1 & 7)]);
                    props.maximum_packet_size =
                        NonZeroU32::new([0, 16, 40, 100][usize::from((p1 >> 3) & 3)]);
                    props.topic_alias_maximum = Some(u16::from((p1 >> 5) & 3)).filter(|&n| n != 0);
                    props.retain_available = (p1 & 0x80 != 0).then_some(false);
                    props.server_keep_alive =
                        [None, Some(0), Some(1), Some(5)][usize::from(p2 & 3)];
                    props.maximum_qos = if p2 & 4 != 0 {
                        Some(QoS::AtLeastOnce)
                    } else if p2 & 8 != 0 {
                        Some(QoS::AtMostOnce)
                    } else {
                        None
                    };
                    props.wildcard_subscription_available = (p2 & 0x10 != 0).then_some(false);
                    Packet::ConnAck(
                        ConnAck::from_reason_code(ReasonCode::Success)
                            .with_session_present(b & 0x10 != 0)
                            .with_properties(props),
                    )
                }
            }
            0 => {
                let b = input.byte();
                let code = ConnectReturnCode::from_u8(if b & 0x0F < 6 { b & 0x0F } else { 0 })
                    .unwrap_or(ConnectReturnCode::Accepted);
                Packet::ConnAck(
                    ConnAck::new(code)
                        .with_session_present(b & 0x10 != 0 && code == ConnectReturnCode::Accepted),
                )
            }
            1 => {
                let f = input.byte();
                let q = qos(f & 3);
                let packet_id = if q == QoS::AtMostOnce {
                    None
                } else {
                    let s = input.byte();
                    Some(self.pick_id(s, input))
                };
                let len = input.byte();
                if v5 {
                    let a = input.byte();
                    if a & 4 != 0 {
                        let n = NonZeroU16::new(1 + u16::from((a >> 3) & 3)).expect("1 to 4");
                        alias = Some((n, a & 0x20 == 0));
                    }
                }
                Packet::Publish({
                    let mut publish = Publish::new(topic(f >> 4), payload(len));
                    publish.qos = q;
                    publish.packet_id = packet_id;
                    publish.dup = f & 4 != 0 && q != QoS::AtMostOnce;
                    publish.retain = f & 8 != 0;
                    publish
                })
            }
            2..=5 | 7 if v5 => {
                let s = input.byte();
                let id = self.pick_id(s, input);
                let c = usize::from(input.byte() & 7);
                const PUB: [ReasonCode; 8] = [
                    ReasonCode::Success,
                    ReasonCode::Success,
                    ReasonCode::NoMatchingSubscribers,
                    ReasonCode::UnspecifiedError,
                    ReasonCode::NotAuthorized,
                    ReasonCode::PacketIdentifierInUse,
                    ReasonCode::QuotaExceeded,
                    ReasonCode::PayloadFormatInvalid,
                ];
                let found = if c == 7 {
                    ReasonCode::PacketIdentifierNotFound
                } else {
                    ReasonCode::Success
                };
                match kind {
                    2 => Packet::PubAck(PubAck::with_reason_code(id, PUB[c])),
                    3 => Packet::PubRec(PubRec::with_reason_code(id, PUB[c])),
                    4 => Packet::PubRel(PubRel::with_reason_code(id, found)),
                    5 => Packet::PubComp(PubComp::with_reason_code(id, found)),
                    _ => Packet::UnsubAck(UnsubAck::with_reason_codes(
                        id,
                        vec![if c & 1 == 0 {
                            ReasonCode::Success
                        } else {
                            ReasonCode::NoSubscriptionExisted
                        }],
                    )),
                }
            }
            2..=5 | 7 => {
                let s = input.byte();
                let id = self.pick_id(s, input);
                match kind {
                    2 => Packet::PubAck(PubAck::new(id)),
                    3 => Packet::PubRec(PubRec::new(id)),
                    4 => Packet::PubRel(PubRel::new(id)),
                    5 => Packet::PubComp(PubComp::new(id)),
                    _ => Packet::UnsubAck(UnsubAck::new(id)),
                }
            }
            6 => {
                let s = input.byte();
                let id = self.pick_id(s, input);
                let c = input.byte();
                let count = match self.requests.get(&id.get()) {
                    Some(Request::Subscribe(filters)) if c & 0x80 == 0 => filters.len(),
                    _ => usize::from(c & 3) + 1,
                };
                let return_codes = (0..count)
                    .map(|_| {
                        let b = input.byte();
                        match b & 3 {
                            3 if v5 => [
                                SubscribeReturnCode::Failure,
                                SubscribeReturnCode::Refused(ReasonCode::NotAuthorized),
                                SubscribeReturnCode::Refused(ReasonCode::TopicFilterInvalid),
                                SubscribeReturnCode::Refused(
                                    ReasonCode::WildcardSubscriptionsNotSupported,
                                ),
                            ][usize::from((b >> 2) & 3)],
                            3 => SubscribeReturnCode::Failure,
                            q => SubscribeReturnCode::Success(qos(q)),
                        }
                    })
                    .collect();
                Packet::SubAck(SubAck::new(id, return_codes))
            }
            8 => Packet::PingResp,
            9 => Packet::Connect(Box::new(Connect::new(
                MqttString::try_from("peer").expect("valid client id"),
            ))),
            10 => Packet::Subscribe(Subscribe::new(PacketId::MIN, filter(0), QoS::AtMostOnce)),
            11 => Packet::Unsubscribe(Unsubscribe::new(PacketId::MIN, vec![filter(1)])),
            12 => Packet::PingReq,
            13 if v5 => Packet::Disconnect(Disconnect::with_reason_code(
                [
                    ReasonCode::NORMAL_DISCONNECTION,
                    ReasonCode::ServerShuttingDown,
                    ReasonCode::SessionTakenOver,
                    ReasonCode::ServerBusy,
                ][usize::from(input.byte() & 3)],
            )),
            13 => Packet::Disconnect(Disconnect::new()),
            _ => Packet::Auth(Auth::new(if input.byte() & 1 == 0 {
                ReasonCode::ContinueAuthentication
            } else {
                ReasonCode::Success
            })),
        };
        (packet, alias)
    }

    fn do_connect(&mut self) {
        trace!("> connect");
        let mut ex = self.expect();
        let result = self.client.connect(self.now);
        trace!("    = {result:?}");
        match result {
            Ok(()) => {
                assert!(
                    self.conn == Conn::Closed && self.connect.is_ok(),
                    "connect succeeded, expected {:?} (connection {:?})",
                    self.connect.as_ref().err(),
                    self.conn
                );
                self.conn = Conn::AwaitingConnAck;
                self.conn_no += 1;
                self.terms = Terms::UNRESTRICTED;
                self.aliases_in.clear();
                self.incoming = Some(BytesMut::new());
                self.connack_deadline = self.now.checked_add(self.cfg.connack_timeout);
                self.last_sent = self.now;
                self.ping = Ping::Idle;
                self.drain_deadline = None;
                ex.new_stream = true;
                ex.exact = Some(vec![PacketType::Connect]);
            }
            Err(e) if self.conn != Conn::Closed => {
                assert_eq!(e, CommandError::AlreadyConnected, "connect while open");
            }
            Err(e) => match &self.connect {
                Err(CommandError::InvalidConfig(_)) => assert!(
                    matches!(e, CommandError::InvalidConfig(_)),
                    "connect: {e:?}, expected InvalidConfig"
                ),
                Err(want) => assert_eq!(&e, want, "connect refused"),
                Ok(_) => panic!("connect refused: {e:?}"),
            },
        }
        self.check(ex, "connect");
    }

    fn do_publish(
        &mut self,
        q: QoS,
        retain: bool,
        topic: TopicName,
        payload: Bytes,
        expiry: Option<u32>,
    ) {
        trace!(
            "> publish {q:?} retain={retain} topic={topic:?} payload={} bytes, expiry {expiry:?} s",
            payload.len()
        );
        let mut ex = self.expect();
        let mut properties = Properties::new();
        properties.message_expiry_interval = expiry;
        let mut publish = {
            let mut publish =
                Publish::new(topic.clone(), payload.clone()).with_properties(properties.clone());
            publish.qos = q;
            publish.packet_id = (q != QoS::AtMostOnce).then_some(PacketId::MIN);
            publish.retain = retain;
            publish
        };
        let size = publish.encoded_len_in(self.protocol());
        let room = match q {
            QoS::AtMostOnce => self.prev.len() < self.cfg.max_transmit_buffer,
            _ => self.client.inflight_len() < self.window(),
        };
        let send_now = self.conn == Conn::Connected && self.unsent.is_empty() && room;
        let result = if self.v5() {
            self.client
                .publish_with(self.now, topic, q, retain, payload, properties)
        } else {
            self.client.publish(self.now, topic, q, retain, payload)
        };
        trace!("    = {result:?}");
        let expected = if self.conn == Conn::Draining {
            Err(CommandError::NotConnected)
        } else if q > self.terms.maximum_qos {
            // MQTT-3.2.2-11
            Err(CommandError::QosNotSupported {
                requested: q,
                maximum: self.terms.maximum_qos,
            })
        } else if retain && !self.terms.retain_available {
            Err(CommandError::RetainNotSupported) // MQTT-3.2.2-14
        } else if size > self.max_send() {
            Err(CommandError::Encode(EncodeError::PacketTooLarge {
                size,
                max: self.max_send(),
            }))
        } else if !send_now && self.unsent.len() >= self.cfg.max_queued {
            Err(CommandError::QueueFull {
                max_queued: self.cfg.max_queued,
            })
        } else {
            Ok(())
        };
        // MQTT 5.0 section 3.3.2.3.3: the message expires by then.
        let expires =
            expiry.and_then(|secs| self.now.checked_add(Duration::from_secs(secs.into())));
        match (expected, result) {
            (Ok(()), Ok(id)) => {
                assert_eq!(
                    id.is_some(),
                    q != QoS::AtMostOnce,
                    "publish returns an id exactly for QoS 1/2"
                );
                publish.packet_id = id;
                if let Some(id) = id {
                    assert!(
                        !self.id_in_use(id),
                        "publish returned packet id {id}, which is in use"
                    );
                    self.pubs.insert(
                        id.get(),
                        OutMessage {
                            publish: publish.clone(),
                            sent_on: 0,
                            seq: 0,
                            expires,
                            released: false,
                            held: false,
                        },
                    );
                }
                self.unsent.push_back(publish);
                self.unsent_expiry.push_back(expires);
                ex.send_now = send_now;
            }
            (Err(want), Err(got)) => assert_eq!(want, got, "publish refused"),
            (want, got) => panic!("publish: got {got:?}, expected {want:?}"),
        }
        self.check(ex, "publish");
    }

    /// `subscribe` with `filters`, or `resubscribe` with `None`.
    fn do_subscribe(&mut self, filters: Option<Vec<SubscribeFilter>>) {
        let mut ex = self.expect();
        let resubscribe = filters.is_none();
        let filters = filters.unwrap_or_else(|| {
            self.active
                .iter()
                .map(|(f, &q)| SubscribeFilter::new(f.clone(), q))
                .collect()
        });
        trace!("> subscribe (resubscribe: {resubscribe}) {filters:?}");
        let packet = Subscribe::with_filters(PacketId::MIN, filters.clone());
        let size = packet.encoded_len_in(self.protocol());
        let result = if resubscribe {
            self.client.resubscribe(self.now)
        } else {
            self.client.subscribe(self.now, filters.clone()).map(Some)
        };
        trace!("    = {result:?}");
        let expected = if resubscribe && filters.is_empty() {
            Ok(false)
        } else if self.conn == Conn::Draining {
            Err(CommandError::NotConnected)
        } else if filters.is_empty() {
            Err(CommandError::Encode(EncodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            }))
        } else if !self.terms.wildcards_available
            && filters.iter().any(|f| f.filter.has_wildcards())
        {
            Err(CommandError::SubscriptionNotSupported(
                "wildcard subscriptions (Wildcard Subscription Available 0)",
            ))
        } else if size > self.max_send() {
            Err(CommandError::Encode(EncodeError::PacketTooLarge {
                size,
                max: self.max_send(),
            }))
        } else {
            Ok(true)
        };
        match (expected, result) {
            (Ok(false), Ok(None)) => {}
            (Ok(true), Ok(Some(id))) => {
                assert!(
                    !self.id_in_use(id),
                    "subscribe returned packet id {id}, which is in use"
                );
                self.requests
                    .insert(id.get(), Request::Subscribe(filters.clone()));
                // Sent now when connected, else kept for the next CONNACK.
                if self.conn == Conn::Connected {
                    ex.required
                        .push(Packet::Subscribe(Subscribe::with_filters(id, filters)));
                }
                ex.credit += size;
            }
            (Err(want), Err(got)) => assert_eq!(want, got, "subscribe refused"),
            (want, got) => panic!("subscribe: got {got:?}, expected {want:?}"),
        }
        self.check(ex, "subscribe");
    }

    fn do_unsubscribe(&mut self, filters: Vec<TopicFilter>) {
        trace!("> unsubscribe {filters:?}");
        let mut ex = self.expect();
        let size = Unsubscribe::new(PacketId::MIN, filters.clone()).encoded_len_in(self.protocol());
        let result = self.client.unsubscribe(self.now, filters.clone());
        trace!("    = {result:?}");
        let expected = if self.conn == Conn::Draining {
            Err(CommandError::NotConnected)
        } else if filters.is_empty() {
            Err(CommandError::Encode(EncodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            }))
        } else if size > self.max_send() {
            Err(CommandError::Encode(EncodeError::PacketTooLarge {
                size,
                max: self.max_send(),
            }))
        } else {
            Ok(())
        };
        match (expected, result) {
            (Ok(()), Ok(id)) => {
                assert!(
                    !self.id_in_use(id),
                    "unsubscribe returned packet id {id}, which is in use"
                );
                self.requests
                    .insert(id.get(), Request::Unsubscribe(filters.clone()));
                if self.conn == Conn::Connected {
                    ex.required
                        .push(Packet::Unsubscribe(Unsubscribe::new(id, filters)));
                }
                ex.credit += size;
            }
            (Err(want), Err(got)) => assert_eq!(want, got, "unsubscribe refused"),
            (want, got) => panic!("unsubscribe: got {got:?}, expected {want:?}"),
        }
        self.check(ex, "unsubscribe");
    }

    fn do_ack(&mut self, id: PacketId) {
        trace!("> ack {id}");
        let mut ex = self.expect();
        let result = self.client.ack(self.now, id);
        trace!("    = {result:?}");
        let held = self
            .held
            .iter_mut()
            .find(|h| h.id == id && !h.acked)
            .filter(|_| self.cfg.manual_acks);
        match (held, result) {
            (Some(h), Ok(())) => {
                h.acked = true;
                ex.credit += 4 * self.held.len();
            }
            (None, Err(e)) => assert_eq!(e, CommandError::UnknownAck(id), "ack refused"),
            (h, got) => panic!("ack {id}: got {got:?}, held acknowledgement: {h:?}"),
        }
        self.check(ex, "ack");
    }

    fn do_disconnect(&mut self, drain: Duration) {
        trace!("> disconnect, drain {drain:?}");
        let mut ex = self.expect();
        let outgoing = self.client.inflight_len() + self.client.queued_len();
        let result = self.client.disconnect(self.now, drain);
        trace!("    = {result:?}");
        match (self.conn, result) {
            (Conn::Closed, Err(e)) => assert_eq!(e, CommandError::NotConnected),
            (Conn::Closed, Ok(())) => panic!("disconnect succeeded without a connection"),
            (_, Err(e)) => panic!("disconnect refused: {e:?} (connection {:?})", self.conn),
            (Conn::Connected, Ok(())) if !drain.is_zero() && outgoing > 0 => {
                self.conn = Conn::Draining;
                self.drain_deadline = self.now.checked_add(drain);
                ex.exact = Some(Vec::new());
            }
            (Conn::Draining, Ok(())) if !drain.is_zero() => {
                self.drain_deadline = self.now.checked_add(drain);
                ex.exact = Some(Vec::new());
            }
            (_, Ok(())) => {
                self.finish_drain(&mut ex);
                ex.exact = Some(vec![PacketType::Disconnect]);
            }
        }
        self.check(ex, "disconnect");
    }

    fn do_receive(&mut self, bytes: &[u8], delivery: u8) {
        let piece = usize::from(delivery & 0x3F);
        let via_read_buffer = delivery & 0x40 != 0;
        let coalesced = delivery & 0x80 != 0;
        trace!(
            "> receive {} bytes: {:02x?}{} (pieces {piece}, read_buffer {via_read_buffer}, coalesced {coalesced})",
            bytes.len(),
            &bytes[..bytes.len().min(32)],
            if bytes.len() > 32 { "..." } else { "" }
        );
        // Each of these packets changes the outgoing state (a resume, a completion, a release) and
        // may make the client send queued messages: the target knows exactly what happened to them
        // when such a packet is the last one of its call.
        let cut_after: &[PacketType] = if coalesced {
            &[
                PacketType::ConnAck,
                PacketType::PubAck,
                PacketType::PubRec,
                PacketType::PubComp,
            ]
        } else {
            &[
                PacketType::Connect,
                PacketType::ConnAck,
                PacketType::Publish,
                PacketType::PubAck,
                PacketType::PubRec,
                PacketType::PubRel,
                PacketType::PubComp,
                PacketType::Subscribe,
                PacketType::SubAck,
                PacketType::Unsubscribe,
                PacketType::UnsubAck,
                PacketType::PingReq,
                PacketType::PingResp,
                PacketType::Disconnect,
            ]
        };
        let pieces: Vec<&[u8]> = if piece == 0 {
            vec![bytes]
        } else {
            bytes.chunks(piece).collect()
        };
        for mut rest in pieces {
            // Each piece is one read; a driver reads only while the client wants it to (the
            // rest stays in the socket, and the fuzzer moves on).
            if !self.client.wants_read() {
                trace!(
                    "  (not reading: {} bytes wait to be written)",
                    self.prev.len()
                );
                break;
            }
            loop {
                let n = self.next_cut(rest, cut_after);
                let (call, after) = rest.split_at(n);
                rest = after;
                let mut ex = self.expect();
                if let Some(buf) = self.incoming.as_mut() {
                    buf.extend_from_slice(call);
                }
                self.process_incoming(&mut ex);
                if via_read_buffer {
                    self.client.read_buffer().extend_from_slice(call);
                    self.client.handle_read(self.now);
                } else {
                    self.client.handle_received(self.now, call);
                }
                self.check(ex, "receive");
                if rest.is_empty() {
                    break;
                }
            }
        }
    }

    fn do_transmitted(&mut self, n: usize) {
        trace!("> transmitted {n} of {}", self.prev.len());
        let ex = Expect {
            consumed: n.min(self.prev.len()),
            // Room in the buffer lets queued QoS 0 messages out, which may end a drain.
            may_finish_drain: self.conn == Conn::Draining && self.only_expired_left(),
            ..self.expect()
        };
        self.client.handle_transmitted(self.now, n);
        self.check(ex, "transmitted");
    }

    fn do_timeout(&mut self) {
        trace!("> timeout at +{:?}", self.now - t0());
        let mut ex = Expect {
            exact: Some(Vec::new()),
            ..self.expect()
        };
        let now = self.now;
        match self.conn {
            Conn::Closed => {}
            Conn::AwaitingConnAck => {
                if self.connack_deadline.is_some_and(|d| now >= d) {
                    self.fault(&mut ex, DisconnectReason::ConnAckTimeout);
                }
            }
            Conn::Connected | Conn::Draining => {
                if self.stall_deadline().is_some_and(|d| now >= d) {
                    self.fault(&mut ex, DisconnectReason::TransmitStalled);
                } else if matches!(self.ping, Ping::Awaiting(Some(d)) if now >= d) {
                    self.fault(&mut ex, DisconnectReason::KeepAliveTimeout);
                } else if self.conn == Conn::Draining
                    && self.drain_deadline.is_some_and(|d| now >= d)
                {
                    self.finish_drain(&mut ex);
                    ex.exact = Some(vec![PacketType::Disconnect]);
                } else if self.ping == Ping::Idle && self.ping_due().is_some_and(|d| now >= d) {
                    ex.exact = Some(vec![PacketType::PingReq]);
                    self.ping = Ping::Unwritten;
                }
            }
        }
        if ex.fault {
            ex.exact = None;
        }
        self.client.handle_timeout(now);
        self.check(ex, "timeout");
        if let Some(next) = self.client.poll_timeout() {
            assert!(
                next > now,
                "handle_timeout left poll_timeout() at {:?}, not after now {:?}: a driver would spin",
                next - t0(),
                now - t0()
            );
        }
    }

    fn do_closed(&mut self) {
        trace!("> closed");
        let mut ex = Expect {
            exact: Some(Vec::new()),
            drop_transmit: true,
            ..self.expect()
        };
        if self.conn != Conn::Closed {
            self.fault(&mut ex, DisconnectReason::TransportClosed);
            ex.exact = None;
        }
        self.client.handle_closed(self.now);
        self.check(ex, "closed");
    }

    // ---- the checks after every input ----

    /// The records this input produced replay, after all the earlier ones, to `snapshot()`.
    fn check_records(&mut self, what: &str) {
        while let Some(record) = self.client.poll_session_record() {
            if let Err(e) = self.recorded.apply(&record) {
                panic!("{what}: record {record:?} does not replay: {e}");
            }
        }
        let without_dup = |mut session: SessionSnapshot| {
            for message in &mut session.inflight {
                message.publish.dup = false;
            }
            session
        };
        assert_eq!(
            without_dup(self.recorded.clone()),
            without_dup(self.client.snapshot()),
            "{what}: the records do not replay to the session"
        );
    }

    fn check(&mut self, mut ex: Expect, what: &str) {
        let mut events: Vec<Event> = std::iter::from_fn(|| self.client.poll_event()).collect();
        for e in &events {
            trace!("    event {}", brief_event(e));
        }
        self.take_restore(&mut ex, &mut events, what);
        let faulted = events.iter().any(|e| {
            matches!(e, Event::Disconnected { reason } if *reason != DisconnectReason::Requested)
        });
        let dropped = faulted || ex.drop_transmit;
        self.check_transmit(&mut ex, dropped, what);
        self.check_events(&mut ex, events, what);
        self.check_state(what);
    }

    /// `dropped`: the input ended the transport (a fault or `handle_closed`), which drops whatever
    /// was waiting to be written.
    fn check_transmit(&mut self, ex: &mut Expect, dropped: bool, what: &str) {
        let cur = self.client.poll_transmit().unwrap_or(&[]).to_vec();
        // What the driver wrote: decodes, across partial writes, to the packets appended before.
        if ex.consumed > 0 && !self.stream.cut {
            let written = &self.prev[..ex.consumed];
            self.stream.wire.extend_from_slice(written);
            loop {
                match self.stream.wire.next_packet() {
                    Ok(Some(p)) => {
                        let appended = self.stream.unwritten.pop_front();
                        assert_eq!(
                            Some(&p),
                            appended.as_ref(),
                            "the bytes written decode to another packet than was appended"
                        );
                        if p == Packet::PingReq && self.ping == Ping::Unwritten {
                            // The broker can answer now: PINGRESP is awaited from here.
                            self.ping = Ping::Awaiting(self.now.checked_add(self.ping_timeout()));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => panic!("the client wrote bytes that do not decode: {e:?}"),
                }
            }
        }
        let new_bytes: &[u8] = if ex.new_stream {
            self.stream = Stream::new(self.protocol());
            &cur
        } else if dropped {
            match ex.fault_disconnect.filter(|_| !ex.drop_transmit) {
                Some(code) => {
                    // MQTT 5: what was pending is dropped, and the DISCONNECT alone waits.
                    let mut want = BytesMut::new();
                    Disconnect::with_reason_code(code)
                        .encode_in(Protocol::Mqtt5, &mut want)
                        .expect("a DISCONNECT Reason Code");
                    assert_eq!(
                        cur,
                        want.to_vec(),
                        "{what}: after a fault the transmit buffer must hold exactly DISCONNECT {code:?}"
                    );
                }
                None => assert!(
                    cur.is_empty(),
                    "{what}: the transport is gone but {} bytes are still to be written",
                    cur.len()
                ),
            }
            self.stream.cut = true;
            self.stream.unwritten.clear();
            &[]
        } else {
            let kept = &self.prev[ex.consumed..];
            assert!(
                cur.starts_with(kept),
                "{what}: bytes the client had exposed in poll_transmit changed (kept {} bytes, now {} bytes)",
                kept.len(),
                cur.len()
            );
            &cur[kept.len()..]
        };
        let base = cur.len() - new_bytes.len();
        if !new_bytes.is_empty() {
            assert!(
                ex.was_open || ex.new_stream,
                "{what}: bytes appended while no connection is open"
            );
        }
        let mut buf = BytesMut::from(new_bytes);
        let mut packets = Vec::new();
        while !buf.is_empty() {
            let offset = base + new_bytes.len() - buf.len();
            let before = buf.len();
            match Packet::read_in(self.protocol(), &mut buf, ANY_SIZE) {
                Ok(Some(p)) => {
                    let size = before - buf.len();
                    if matches!(
                        p,
                        Packet::Publish(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_)
                    ) {
                        let max = self.max_send();
                        assert!(
                            size <= max,
                            "{what}: {:?} of {size} bytes, over {} (max_outgoing_packet_size {}, the server's Maximum Packet Size {:?})",
                            p.packet_type(),
                            self.max_send(),
                            self.cfg.max_outgoing_packet_size,
                            self.terms.maximum_packet_size
                        );
                    }
                    let resolved = self.resolve_alias(&p, what);
                    packets.push((offset, p, resolved));
                }
                Ok(None) => panic!("{what}: the bytes appended end in the middle of a packet"),
                Err(e) => panic!("{what}: the client appended bytes that do not decode: {e:?}"),
            }
        }
        for (_, p, _) in &packets {
            trace!("    -> {}", brief(p));
        }
        if let Some(exact) = &ex.exact
            && !dropped
        {
            let types: Vec<PacketType> = packets.iter().map(|(_, p, _)| p.packet_type()).collect();
            assert_eq!(&types, exact, "{what}: packets appended");
        }
        if let Some(prefix) = ex.resend_prefix.take()
            && !dropped
        {
            let got: Vec<&Packet> = packets
                .iter()
                .take(prefix.len())
                .map(|(_, _, p)| p)
                .collect();
            let want: Vec<&Packet> = prefix.iter().collect();
            assert_eq!(
                got, want,
                "after CONNACK the unacknowledged PUBLISH/PUBREL must go out first, in their original order"
            );
        }
        for (offset, wire, p) in packets {
            self.check_packet(ex, &p, offset, what);
            self.stream.unwritten.push_back(wire);
        }
        if !dropped {
            assert!(
                ex.required.is_empty(),
                "{what}: packets owed but not sent: {:?}",
                ex.required
            );
            if ex.send_now {
                assert!(
                    self.unsent.is_empty(),
                    "publish: the message should have gone out at once"
                );
            }
        }
        // The keep-alive counts from the last packet sent: a CONNACK that sends nothing again
        // leaves it counting from the CONNECT (MQTT-3.1.2-23).
        if !new_bytes.is_empty() || ex.new_stream {
            self.last_sent = self.now;
        }
        // The stall clock restarts when the driver takes bytes, or bytes arrive in an empty buffer.
        let was_empty = self.prev.len() == ex.consumed;
        if ex.new_stream || ex.consumed > 0 || (was_empty && !new_bytes.is_empty()) {
            self.stall_from = self.now;
        }
        // The transmit-buffer bound (see the module doc).
        self.stream.credit += ex.credit;
        let bound = self.bound_base + self.stream.credit;
        assert!(
            cur.len() <= bound,
            "{what}: the transmit buffer holds {} bytes, over the bound {bound}",
            cur.len()
        );
        let under = cur.len() < self.cfg.max_transmit_buffer;
        assert_eq!(
            self.client.wants_read(),
            under,
            "{what}: wants_read() with {} of {} bytes pending",
            cur.len(),
            self.cfg.max_transmit_buffer
        );
        if under {
            // All that is pending fits under the limit the base already counts.
            self.stream.credit = 0;
        }
        self.prev = cur;
    }

    fn check_packet(&mut self, ex: &mut Expect, p: &Packet, offset: usize, what: &str) {
        let st = &mut self.stream;
        assert!(
            !st.disconnect_sent,
            "{what}: {:?} after DISCONNECT",
            p.packet_type()
        );
        if st.packets == 0 {
            assert!(
                matches!(p, Packet::Connect(_)),
                "{what}: the first packet of a connection is {:?}, not CONNECT",
                p.packet_type()
            );
        } else {
            assert!(
                !matches!(p, Packet::Connect(_)),
                "{what}: a second CONNECT on one connection"
            );
        }
        st.packets += 1;
        if !st.connacked {
            assert!(
                matches!(p, Packet::Connect(_) | Packet::Disconnect(_)),
                "{what}: {:?} before CONNACK accepted the connection",
                p.packet_type()
            );
        }
        if let Some(i) = ex.required.iter().position(|r| r == p) {
            ex.required.remove(i);
            if let Packet::Subscribe(s) = p {
                self.stream.requested.insert(s.packet_id.get());
            }
            if let Packet::Unsubscribe(u) = p {
                self.stream.requested.insert(u.packet_id.get());
            }
            if matches!(
                p,
                Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubComp(_)
                    | Packet::Disconnect(_)
                    | Packet::Subscribe(_)
                    | Packet::Unsubscribe(_)
            ) {
                if matches!(p, Packet::Disconnect(_)) {
                    self.stream.disconnect_sent = true;
                }
                return;
            }
        }
        match p {
            Packet::Connect(c) => {
                let want = self.connect.as_ref().expect("connect succeeded");
                assert_eq!(&**c, want, "CONNECT does not carry the configuration");
            }
            Packet::Publish(publish) => self.check_publish(publish, offset, what),
            Packet::PubAck(PubAck { packet_id, .. }) | Packet::PubRec(PubRec { packet_id, .. }) => {
                let q = if matches!(p, Packet::PubAck(_)) {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                let front_ok = self.cfg.manual_acks
                    && self
                        .held
                        .front()
                        .is_some_and(|h| h.id == *packet_id && h.qos == q && h.acked);
                assert!(
                    front_ok,
                    "{what}: {:?} {packet_id} is not owed now (held acknowledgements: {:?})",
                    p.packet_type(),
                    self.held
                );
                self.held.pop_front();
            }
            Packet::PubRel(PubRel { packet_id, .. }) => {
                let m = self.pubs.get(&packet_id.get());
                assert!(
                    m.is_some_and(|m| m.publish.qos == QoS::ExactlyOnce
                        && m.released
                        && m.sent_on != 0),
                    "{what}: PUBREL {packet_id} for no QoS 2 message of ours that the broker PUBREC'd"
                );
            }
            Packet::PubComp(PubComp { packet_id, .. }) => {
                panic!("{what}: PUBCOMP {packet_id} answers no PUBREL")
            }
            Packet::Subscribe(Subscribe {
                packet_id, filters, ..
            }) => {
                let ok = matches!(self.requests.get(&packet_id.get()), Some(Request::Subscribe(f)) if f == filters);
                assert!(ok, "{what}: SUBSCRIBE {packet_id} is not a pending request");
                assert!(
                    self.stream.requested.insert(packet_id.get()),
                    "{what}: SUBSCRIBE {packet_id} sent twice on one connection"
                );
            }
            Packet::Unsubscribe(Unsubscribe {
                packet_id, filters, ..
            }) => {
                let ok = matches!(self.requests.get(&packet_id.get()), Some(Request::Unsubscribe(f)) if f == filters);
                assert!(
                    ok,
                    "{what}: UNSUBSCRIBE {packet_id} is not a pending request"
                );
                assert!(
                    self.stream.requested.insert(packet_id.get()),
                    "{what}: UNSUBSCRIBE {packet_id} sent twice on one connection"
                );
            }
            Packet::PingReq => {
                assert!(
                    ex.exact
                        .as_ref()
                        .is_some_and(|e| e == &[PacketType::PingReq]),
                    "{what}: PINGREQ outside handle_timeout"
                );
                assert!(!self.keep_alive().is_zero(), "PINGREQ with keep-alive off");
            }
            Packet::Disconnect(_) => {
                assert!(ex.may_finish_drain, "{what}: DISCONNECT nobody asked for");
                self.stream.disconnect_sent = true;
            }
            other => panic!(
                "{what}: the client sent {:?}, which only a server sends",
                other.packet_type()
            ),
        }
    }

    /// MQTT 5: `p` as the broker reads it, with its Topic Alias resolved (the alias must be one the
    /// client may use, and one it set on this connection when the topic is left out).
    fn resolve_alias(&mut self, p: &Packet, what: &str) -> Packet {
        let Packet::Publish(publish) = p else {
            return p.clone();
        };
        let Some(alias) = publish.properties().topic_alias else {
            return p.clone();
        };
        let a = alias.get();
        let maximum = self
            .cfg
            .outgoing_topic_aliases
            .min(self.terms.topic_alias_maximum);
        assert!(
            a <= maximum,
            "{what}: Topic Alias {a} over {maximum} (ours {}, the server's {})",
            self.cfg.outgoing_topic_aliases,
            self.terms.topic_alias_maximum
        );
        let mut publish = publish.clone();
        if publish.topic_bytes().is_empty() {
            let Some(topic) = self.stream.aliases.get(&a) else {
                panic!(
                    "{what}: a PUBLISH uses Topic Alias {a}, which no PUBLISH set on this connection"
                );
            };
            publish.set_topic(topic.clone());
        } else {
            self.stream.aliases.insert(a, publish.topic_name());
        }
        publish.properties_mut().topic_alias = None;
        Packet::Publish(publish)
    }

    fn check_publish(&mut self, publish: &Publish, offset: usize, what: &str) {
        if publish
            .packet_id
            .is_none_or(|id| self.pubs.get(&id.get()).is_some_and(|m| m.sent_on == 0))
        {
            // A first send: from the queue's front, once the messages before it are given up,
            // and, at QoS 1/2, after every message held at the CONNACK went out again.
            assert!(
                publish.packet_id.is_none() || self.pubs.values().all(|m| !m.held),
                "{what}: a first send while messages held at CONNACK wait to go again"
            );
            self.give_up_queue_front();
            // MQTT-3.2.2-11, MQTT-3.2.2-14 (a message sent again keeps what it was first sent with).
            assert!(
                publish.qos <= self.terms.maximum_qos
                    && (!publish.retain || self.terms.retain_available),
                "{what}: a first send at {:?} (retain {}) where the server's CONNACK allows QoS up \
                 to {:?} (Retain Available {})",
                publish.qos,
                publish.retain,
                self.terms.maximum_qos,
                self.terms.retain_available
            );
        }
        let Some(id) = publish.packet_id else {
            assert!(!publish.dup, "{what}: DUP on a QoS 0 PUBLISH");
            assert!(
                offset < self.cfg.max_transmit_buffer,
                "{what}: a QoS 0 PUBLISH was appended with {offset} bytes pending, not under max_transmit_buffer {}",
                self.cfg.max_transmit_buffer
            );
            let mut first = self.unsent.pop_front();
            let expires = self.unsent_expiry.pop_front().flatten();
            if let (Some(first), Some(at)) = (first.as_mut(), expires) {
                first.properties_mut().message_expiry_interval = Some(self.expiry_left(at));
            }
            assert_eq!(
                first.as_ref(),
                Some(publish),
                "{what}: a QoS 0 PUBLISH that is not the next message to send"
            );
            return;
        };
        let conn_no = self.conn_no;
        let session_present = self.session_present;
        if self.pubs.get(&id.get()).is_some_and(|m| m.held) {
            // A message held at the CONNACK: the earliest one, and only into room.
            let seq = self.pubs[&id.get()].seq;
            let earliest = self
                .pubs
                .values()
                .filter(|m| m.held)
                .map(|m| m.seq)
                .min();
            assert_eq!(
                earliest,
                Some(seq),
                "{what}: held PUBLISH {id} sent again before one first sent earlier"
            );
            let out = self.unacknowledged_out();
            assert!(
                out < self.window(),
                "{what}: held PUBLISH {id} sent again with {out} unacknowledged, a window of {} \
                 (MQTT-3.3.4-9)",
                self.window()
            );
        }
        let Some(m) = self.pubs.get_mut(&id.get()) else {
            panic!(
                "{what}: PUBLISH with packet id {id}, which no unacknowledged message of ours has"
            );
        };
        let mut original = m.publish.clone();
        original.dup = publish.dup;
        if let Some(at) = m.expires {
            // MQTT 5.0 section 3.3.2.3.3: what is left of the interval (the session keeps it as
            // published).
            let left = at.saturating_duration_since(self.now);
            let secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            original.properties_mut().message_expiry_interval =
                Some(u32::try_from(secs).unwrap_or(u32::MAX));
        }
        assert_eq!(
            publish, &original,
            "{what}: PUBLISH {id} is not the message publish() returned {id} for"
        );
        assert!(
            !m.released,
            "{what}: PUBLISH {id} sent again after its PUBREL"
        );
        assert!(
            self.stream.published.insert(id.get()),
            "{what}: PUBLISH {id} sent twice on one connection"
        );
        if m.sent_on == 0 {
            assert!(!publish.dup, "{what}: DUP on the first send of {id}");
            self.seq += 1;
            m.seq = self.seq;
            let first = self.unsent.pop_front();
            self.unsent_expiry.pop_front();
            assert_eq!(
                first.as_ref().and_then(|p| p.packet_id),
                Some(id),
                "{what}: PUBLISH {id} went out before messages published earlier"
            );
        } else {
            assert!(
                publish.dup,
                "{what}: a re-sent PUBLISH {id} must carry DUP=1 (MQTT-3.3.1-1), whatever \
                 session present ({session_present}) was"
            );
        }
        m.sent_on = conn_no;
        m.held = false;
    }

    fn check_events(&mut self, ex: &mut Expect, events: Vec<Event>, what: &str) {
        for event in events {
            if ex.events.front() == Some(&event) {
                ex.events.pop_front();
                continue;
            }
            match &event {
                Event::Expired { .. } | Event::Unsendable { .. }
                    if self.given_up.front() == Some(&event) =>
                {
                    self.given_up.pop_front();
                }
                Event::Expired { .. } | Event::Unsendable { .. } => {
                    // Given up at the queue's front with nothing sent after it (only one: the
                    // client gives a message up when it has room to send it, and may have none
                    // for the next one).
                    self.give_up_one();
                    assert_eq!(
                        self.given_up.pop_front().as_ref(),
                        Some(&event),
                        "{what}: {event:?} for no queued message the client must give up"
                    );
                }
                Event::Disconnected {
                    reason: DisconnectReason::Requested,
                } if ex.may_finish_drain && self.conn == Conn::Draining => {
                    assert_eq!(
                        self.client.inflight_len() + self.client.queued_len(),
                        0,
                        "{what}: a drain ended with messages left"
                    );
                    ex.may_finish_drain = false;
                    self.close();
                }
                _ => panic!(
                    "{what}: unexpected event {event:?}; expected next: {:?}",
                    ex.events.front()
                ),
            }
        }
        assert!(
            ex.events.is_empty(),
            "{what}: events missing: {:?}",
            ex.events
        );
        assert!(
            self.given_up.is_empty(),
            "{what}: Expired events missing: {:?}",
            self.given_up
        );
    }

    fn check_state(&mut self, what: &str) {
        self.check_records(what);
        let c = &self.client;
        let inflight = c.inflight_len();
        let queued = c.queued_len();
        assert!(
            inflight <= usize::from(self.cfg.max_inflight),
            "{what}: {inflight} messages in flight, over max_inflight {}",
            self.cfg.max_inflight
        );
        assert!(
            queued <= self.cfg.max_queued,
            "{what}: {queued} messages queued, over max_queued {}",
            self.cfg.max_queued
        );
        assert_eq!(queued, self.unsent.len(), "{what}: queued_len()");
        let n = c.negotiated();
        let t = &self.terms;
        assert_eq!(
            (
                n.receive_maximum,
                n.maximum_packet_size.map(|m| m.get() as usize),
                n.topic_alias_maximum,
                n.keep_alive,
                n.maximum_qos,
                n.retain_available,
                n.wildcard_subscription_available,
            ),
            (
                t.receive_maximum,
                t.maximum_packet_size,
                t.topic_alias_maximum,
                self.keep_alive(),
                t.maximum_qos,
                t.retain_available,
                t.wildcards_available,
            ),
            "{what}: negotiated() (Receive Maximum, Maximum Packet Size, Topic Alias Maximum, \
             keep-alive, Maximum QoS, Retain Available, Wildcard Subscription Available)"
        );
        let sent = self.pubs.values().filter(|m| m.sent_on != 0).count();
        assert_eq!(inflight, sent, "{what}: inflight_len()");
        assert_eq!(
            c.is_connected(),
            self.conn == Conn::Connected,
            "{what}: is_connected()"
        );
        let subs: Vec<(TopicFilter, QoS)> =
            c.subscriptions().map(|(f, q)| (f.clone(), q)).collect();
        let active: Vec<(TopicFilter, QoS)> =
            self.active.iter().map(|(f, &q)| (f.clone(), q)).collect();
        assert_eq!(subs, active, "{what}: subscriptions()");
        if matches!(self.conn, Conn::Connected | Conn::Draining) {
            let out = self.unacknowledged_out();
            assert!(
                out >= self.window() || self.pubs.values().all(|m| !m.held),
                "{what}: a message held at CONNACK waits though the window has room ({out} out of {})",
                self.window()
            );
            assert!(
                self.held.front().is_none_or(|h| !h.acked),
                "{what}: an acknowledgement the application gave waits though it could go: {:?}",
                self.held.front()
            );
            if let Some(front) = self.unsent.front() {
                let room = match front.qos {
                    QoS::AtMostOnce => self.prev.len() < self.cfg.max_transmit_buffer,
                    _ => inflight < self.window(),
                };
                assert!(
                    !room,
                    "{what}: a queued message waits though it has room to go ({inflight} in flight, {} bytes pending)",
                    self.prev.len()
                );
            }
        }
        if self.conn == Conn::Draining {
            assert!(
                inflight + queued > 0,
                "{what}: still draining with nothing left to acknowledge"
            );
        }
        let expected = match self.conn {
            Conn::Closed => None,
            Conn::AwaitingConnAck => self.connack_deadline,
            Conn::Connected | Conn::Draining => {
                let keep_alive = match self.ping {
                    Ping::Idle => self.ping_due(),
                    Ping::Unwritten => None,
                    Ping::Awaiting(due) => due,
                };
                [keep_alive, self.drain_deadline, self.stall_deadline()]
                    .into_iter()
                    .flatten()
                    .min()
            }
        };
        assert_eq!(
            c.poll_timeout().map(|t| t - t0()),
            expected.map(|t| t - t0()),
            "{what}: poll_timeout() (as time since start)"
        );
    }
}

/// The virtual clock's origin, read once.
fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let cfg = config(&mut input);
    trace!("config: {cfg:?}");
    let mut harness = Harness::new(cfg, t0());
    harness.run(&mut input);
});
