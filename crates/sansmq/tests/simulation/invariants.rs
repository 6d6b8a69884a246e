//! The ledger: what the application published, what the broker took (its ground truth), what the
//! application received, and when the broker's session was lost; and the guarantees checked on it.
//!
//! # What MQTT promises here, and what it does not
//!
//! The client subscribes to its own topics, so each message travels two legs, both resting on the
//! one broker session: client → broker (the *publish leg*) and broker → client (the *delivery
//! leg*, a copy queued in the session at the granted QoS). While the session is kept, MQTT 3.1.1
//! promises: QoS 1 at least once, QoS 2 exactly once, QoS 0 at most once, on both legs.
//!
//! When the broker loses the session (restart without it, or a clean session ending), everything
//! the session held is gone by definition: the copies queued for the subscriber, the QoS 2
//! identifiers awaiting PUBREL, the subscriptions (until the driver subscribes again). So:
//!
//! - Publish leg, QoS 1: the client's default [`UnackedPolicy::Resend`] sends unacknowledged
//!   messages again, and a message is reported `Published` only on PUBACK, so every `Published`
//!   QoS 1 message was taken by the broker at least once, session loss or not.
//! - Publish leg, QoS 2 across a loss: exactly once cannot hold. A message whose PUBLISH reached
//!   the broker but whose PUBREC did not reach the client looks, to the client, exactly like one
//!   that never arrived; re-sending it (what `Resend` does, with DUP=1 like every re-send,
//!   MQTT-3.3.1-1) may make the broker take it twice, not re-sending it (`Discard`) may lose it.
//!   A message whose PUBREC arrived has its PUBREL sent again after any reconnect (MQTT-4.4.0-1);
//!   a broker that lost the session answers it with PUBCOMP (MQTT 4.3.3), and only that PUBCOMP
//!   makes it `Published` (checked: `Published` for QoS 2 needs a PUBCOMP the client read), even
//!   though a "method A" broker, which routes at PUBREL, lost it with the session. What still
//!   holds: each loss adds at most one copy, so the broker takes a QoS 2 message at most
//!   `1 + losses` times, and exactly once when no loss happened between `publish` and
//!   `Published`.
//! - The client's side of the wire: every PUBLISH it encodes again (after a reconnect, whatever
//!   CONNACK said, or after a restart from its snapshot) carries DUP=1, a first send DUP=0.
//! - Delivery leg: a copy queued in a session that is then lost is gone; only copies whose
//!   session lives on must be delivered. Each copy reaches the application at least once (QoS 1)
//!   or at most once (QoS 0 and 2: the client's QoS 2 identifier set suppresses re-sends).
//!
//! # When the application's process crashes
//!
//! A process that restarts from its session store resumes what the store made durable: the
//! driver syncs before `publish` returns `Ok`, so every QoS 1/2 message `publish` accepted is in
//! the resumed session and the guarantees above hold for it, except a message still waiting in
//! the queue under [`SessionRecording::ExceptQueue`], which nothing recorded: it is lost with the
//! process (as Paho's offline buffer without persistence), and must never have gone out. The
//! store may lose the records it had not synced, which changes what is seen in two ways: a
//! message whose `Completed` was lost comes back and is `Published` again (QoS 1 re-sent as a
//! copy, QoS 2 by its PUBREL again); a queued message whose `Sent` may have been lost is marked as
//! a possible copy, so its first send may carry DUP=1. And as after a clean restart, what the
//! application had received and not acknowledged comes again.
//!
//! # MQTT 5
//!
//! The server may refuse a message with a failure Reason Code in its PUBACK or PUBREC (the model
//! broker refuses the same messages every time): the client reports `PublishRefused` and never
//! sends it again (unless a crash lost its `Completed` record: then it is refused again), and
//! the broker never took it. A server with Maximum QoS 1 makes `publish` at QoS 2 fail at once
//! with `QosNotSupported`, and one above its Maximum Packet Size (with the Topic Alias the session
//! may add) fails as too large. A message with a Message Expiry Interval is `Expired` only if it
//! waited in the queue that long and never went out; one sent later carries no more than its
//! interval. (A crash that loses the records of an expiry puts the message back: it goes out
//! after all, out of order.) Every other guarantee holds as in MQTT 3.1.1.
//!
//! End to end this gives: with no session loss from `publish` on, a QoS 1 message (at the granted
//! QoS) arrives at least once and a QoS 2 one exactly once; across losses, nothing arrives that
//! was not published, and a QoS 2 message arrives at most once per copy the broker took.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sansmq::client::{SessionRecording, SessionSnapshot, UnackedPolicy};
use sansmq::packet::{PacketId, Publish, QoS};

use crate::scenario::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Published,
    Dropped,
    /// Still in the queue, never recorded ([`SessionRecording::ExceptQueue`]), when the process
    /// crashed.
    LostWithProcess,
    /// MQTT 5: the server refused it with a failure Reason Code (`Event::PublishRefused`).
    Refused,
    /// MQTT 5: `publish` failed with `QosNotSupported` (the server's Maximum QoS) or as too
    /// large (its Maximum Packet Size).
    NotSupported,
    /// MQTT 5: given up unsent, its Message Expiry Interval past (`Event::Expired`).
    Expired,
    /// MQTT 5: taken before CONNACK, given up unsent because the server's terms refuse it
    /// (`Event::Unsendable`).
    Unsendable,
}

#[derive(Debug, Default)]
struct Msg {
    /// When `publish` accepted it, and the packet id it returned.
    published: Option<(u64, Option<PacketId>)>,
    /// When `publish` accepted it, on the virtual clock.
    published_at: Option<Instant>,
    /// The broker session the client was (last) attached to then.
    epoch: u64,
    done: Option<(Done, u64)>,
    /// Each time the broker took it: when, in which session, at which QoS the copy for the
    /// subscriber was queued (`None`: no subscription matched).
    accepts: Vec<(u64, u64, Option<QoS>)>,
    /// How many times the client encoded its PUBLISH.
    encoded: u32,
    /// A crash restored it into the queue, marked as a copy of a send whose `Sent` record may
    /// have been lost: its first send may carry DUP=1.
    possible_copy: bool,
    /// Sessions in which a copy was swallowed by a stale QoS 2 identifier (see
    /// [`Ledger::swallowed`]).
    swallowed: Vec<u64>,
    /// When the application received it.
    deliveries: Vec<u64>,
    /// MQTT 5: the broker refused it (with a failure Reason Code) this many times.
    refusals: u32,
    /// MQTT 5: it had `Expired`, unsent, and a crash that lost the records saying so put it back
    /// in the session: it goes out after all, later than the messages published after it.
    revived: bool,
    /// Deliveries the application had not acknowledged (manual-ack mode) when its process
    /// restarted: the client did not hold the message, so the broker's re-sent copy is delivered
    /// again, once per such restart.
    abandoned: usize,
}

/// Totals over a run, to show the checks were not vacuous.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LedgerStats {
    pub(crate) published: [u64; 3],
    pub(crate) deliveries: u64,
    pub(crate) duplicate_deliveries: u64,
    pub(crate) session_losses: u64,
    /// Copies the application had to receive (their session lived on).
    pub(crate) obligations_kept: u64,
    /// Copies lost with their session (allowed).
    pub(crate) obligations_voided: u64,
    pub(crate) exactly_once_checked: u64,
    /// Messages whose first delivery was checked for order.
    pub(crate) order_checked: u64,
    /// PUBLISHes the client encoded again, each checked for DUP=1.
    pub(crate) resent_with_dup: u64,
    /// QoS 2 `Published` events checked to follow a PUBCOMP.
    pub(crate) completed_at_pubcomp: u64,
    /// Copies lost to an identifier the client still held from a session lost unnoticed.
    pub(crate) swallowed: u64,
    pub(crate) dropped: u64,
    /// Messages a crash restored whose `Completed` record it had lost: `Published` again.
    pub(crate) resurrected: u64,
    /// Messages still in the queue, not recorded, when the process crashed.
    pub(crate) lost_with_process: u64,
    /// QoS 1/2 messages in a resumed session after a crash, each checked to be the one published.
    pub(crate) restored: u64,
    /// First sends with DUP=1 of messages a crash restored into the queue.
    pub(crate) first_sends_marked_dup: u64,
    /// MQTT 5: messages reported `PublishRefused`, each checked to be one the broker refused.
    pub(crate) refused: u64,
    /// MQTT 5: QoS 2 messages `publish` refused for the server's Maximum QoS 1.
    pub(crate) not_supported: u64,
    /// MQTT 5: messages `publish` refused as above the server's Maximum Packet Size.
    pub(crate) too_large: u64,
    /// MQTT 5: messages taken before CONNACK and given up as `Unsendable` for its terms.
    pub(crate) unsendable: u64,
    /// MQTT 5: QoS 1/2 messages `Expired`, each checked to have been queued past its interval.
    pub(crate) expired: u64,
    /// MQTT 5: messages the broker took with a Message Expiry Interval, each checked to be at
    /// most the one published.
    pub(crate) expiry_checked: u64,
}

pub(crate) struct Ledger {
    /// Orders everything the ledger hears.
    tick: u64,
    msgs: Vec<Msg>,
    /// The client's QoS 1/2 identifiers in use by the workload, to the message's sequence number.
    outstanding: BTreeMap<PacketId, usize>,
    /// Identifiers of outstanding messages for which the client read a PUBCOMP.
    pubcomp_read: BTreeSet<PacketId>,
    /// Session epoch → when it ended.
    ended: BTreeMap<u64, u64>,
    /// The session the client was last attached to (by an accepted CONNECT).
    attached: u64,
    /// Last sequence number first taken by the broker, per (topic, QoS).
    first_accept: BTreeMap<(usize, QoS), usize>,
    pub(crate) stats: LedgerStats,
}

pub(crate) type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}
pub(crate) use ensure;

impl Ledger {
    pub(crate) fn new(messages: usize) -> Self {
        Self {
            tick: 0,
            msgs: (0..messages).map(|_| Msg::default()).collect(),
            outstanding: BTreeMap::new(),
            pubcomp_read: BTreeSet::new(),
            ended: BTreeMap::new(),
            attached: 0,
            first_accept: BTreeMap::new(),
            stats: LedgerStats::default(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// QoS 1/2 messages not yet `Published` or `Dropped`.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// `publish` returned `id` for message `seq`.
    pub(crate) fn published(
        &mut self,
        sc: &Scenario,
        seq: usize,
        id: Option<PacketId>,
        now: Instant,
    ) -> Check {
        let qos = sc.messages[seq].qos;
        ensure!(
            id.is_some() == (qos != QoS::AtMostOnce),
            "publish of #{seq} at {qos} returned id {id:?}"
        );
        let tick = self.tick();
        self.msgs[seq].published = Some((tick, id));
        self.msgs[seq].published_at = Some(now);
        self.msgs[seq].epoch = self.attached;
        self.stats.published[qos as usize] += 1;
        if let Some(id) = id {
            self.pubcomp_read.remove(&id);
            if let Some(other) = self.outstanding.insert(id, seq) {
                return Err(format!(
                    "publish of #{seq} got packet id {id}, still in use by #{other} (MQTT-2.3.1-2)"
                ));
            }
        }
        Ok(())
    }

    /// `Event::Published`.
    pub(crate) fn completed(&mut self, sc: &Scenario, id: PacketId, qos: QoS) -> Check {
        let Some(seq) = self.outstanding.remove(&id) else {
            return Err(format!(
                "Published for packet id {id}, which no message in flight has"
            ));
        };
        let expected = sc.messages[seq].qos;
        ensure!(
            qos == expected,
            "Published #{seq} (id {id}) as {qos}, published at {expected}"
        );
        if qos == QoS::ExactlyOnce {
            // A QoS 2 message is complete only at PUBCOMP, never at a reconnect.
            ensure!(
                self.pubcomp_read.remove(&id),
                "QoS 2 #{seq} (id {id}) Published without a PUBCOMP"
            );
            self.stats.completed_at_pubcomp += 1;
        }
        let tick = self.tick();
        // A message a crash brought back keeps its first completion.
        self.msgs[seq].done.get_or_insert((Done::Published, tick));
        Ok(())
    }

    /// MQTT 5: `Event::PublishRefused`: the broker refused the message with a failure Reason
    /// Code; it is done.
    pub(crate) fn refused(&mut self, sc: &Scenario, id: PacketId, qos: QoS) -> Check {
        let Some(seq) = self.outstanding.remove(&id) else {
            return Err(format!(
                "PublishRefused for packet id {id}, which no message in flight has"
            ));
        };
        let m = &mut self.msgs[seq];
        ensure!(
            m.refusals > 0,
            "PublishRefused for #{seq} (id {id}), which the broker never refused"
        );
        ensure!(
            qos == sc.messages[seq].qos,
            "PublishRefused for #{seq} (id {id}) as {qos}, published at {}",
            sc.messages[seq].qos
        );
        self.pubcomp_read.remove(&id);
        let tick = self.tick();
        // A message a crash brought back keeps its first completion.
        self.msgs[seq].done.get_or_insert((Done::Refused, tick));
        self.stats.refused += 1;
        Ok(())
    }

    /// MQTT 5: the broker refused a message (Note::Refused).
    pub(crate) fn broker_refused(&mut self, sc: &Scenario, p: &Publish) -> Check {
        let seq = self.identify(sc, p, "broker refused")?;
        ensure!(
            self.msgs[seq].published.is_some(),
            "broker refused #{seq} before the application published it"
        );
        self.msgs[seq].refusals += 1;
        Ok(())
    }

    /// MQTT 5: `Event::Expired`: a queued message given up, its Message Expiry Interval past.
    /// Only a QoS 1/2 message can be told (by its identifier); it must have had an interval, have
    /// waited at least that long, and never have gone out.
    pub(crate) fn expired(&mut self, sc: &Scenario, id: Option<PacketId>, now: Instant) -> Check {
        let Some(id) = id else {
            ensure!(
                sc.messages
                    .iter()
                    .any(|m| m.qos == QoS::AtMostOnce && m.expiry.is_some()),
                "a QoS 0 message Expired, and none had a Message Expiry Interval"
            );
            return Ok(());
        };
        let Some(seq) = self.outstanding.remove(&id) else {
            return Err(format!(
                "Expired for packet id {id}, which no message in flight has"
            ));
        };
        let m = &self.msgs[seq];
        let Some(expiry) = sc.messages[seq].expiry else {
            return Err(format!(
                "#{seq} (id {id}) Expired without a Message Expiry Interval"
            ));
        };
        let waited = m.published_at.map_or(Duration::ZERO, |at| now - at);
        ensure!(
            waited >= Duration::from_secs(expiry.into()),
            "#{seq} (id {id}) Expired after {waited:?}, its interval {expiry} s"
        );
        ensure!(
            m.encoded == 0 || m.possible_copy,
            "#{seq} (id {id}) Expired after it was sent {} times",
            m.encoded
        );
        let tick = self.tick();
        self.msgs[seq].done.get_or_insert((Done::Expired, tick));
        self.stats.expired += 1;
        Ok(())
    }

    /// MQTT 5: `publish` of message `seq` failed as too large for the server's Maximum Packet
    /// Size `max`: it must be, at least once the session sets a Topic Alias with its topic.
    pub(crate) fn too_large(&mut self, sc: &Scenario, seq: usize, max: usize) -> Check {
        let size = sc.v5_publish_size(seq, true);
        ensure!(
            size > max,
            "publish of #{seq} refused as above the server's Maximum Packet Size {max}; it takes \
             {size} bytes with a Topic Alias"
        );
        let tick = self.tick();
        self.msgs[seq].done = Some((Done::NotSupported, tick));
        self.stats.too_large += 1;
        Ok(())
    }

    /// MQTT 5: `Event::Unsendable`: a message the client took before CONNACK, given up unsent
    /// because the server's terms refuse it: QoS 2 above its Maximum QoS, or (without a Topic
    /// Alias, which the client leaves off a message it would push over) above its Maximum Packet
    /// Size. A QoS 0 message cannot be told; one of them must be too large.
    pub(crate) fn unsendable(
        &mut self,
        sc: &Scenario,
        id: Option<PacketId>,
        error: &sansmq::CommandError,
    ) -> Check {
        let too_large = |seq: usize| {
            sc.server_maximum_packet_size()
                .is_some_and(|max| sc.v5_publish_size(seq, false) > max)
        };
        let Some(id) = id else {
            ensure!(
                (0..sc.messages.len())
                    .any(|seq| sc.messages[seq].qos == QoS::AtMostOnce && too_large(seq)),
                "a QoS 0 message Unsendable ({error}), and none is too large"
            );
            return Ok(());
        };
        let Some(seq) = self.outstanding.remove(&id) else {
            return Err(format!(
                "Unsendable for packet id {id}, which no message in flight has"
            ));
        };
        let refused = match error {
            sansmq::CommandError::QosNotSupported { .. } => {
                sc.messages[seq].qos == QoS::ExactlyOnce && sc.qos2_refused()
            }
            sansmq::CommandError::Encode(_) => too_large(seq),
            _ => false,
        };
        ensure!(
            refused,
            "#{seq} (id {id}) Unsendable ({error}), which the server's terms allow"
        );
        let tick = self.tick();
        self.msgs[seq].done.get_or_insert((Done::Unsendable, tick));
        self.stats.unsendable += 1;
        Ok(())
    }

    /// MQTT 5: `publish` of message `seq` failed with `QosNotSupported`.
    pub(crate) fn not_supported(&mut self, sc: &Scenario, seq: usize) -> Check {
        ensure!(
            sc.messages[seq].qos == QoS::ExactlyOnce && sc.qos2_refused(),
            "publish of #{seq} at {} refused as not supported",
            sc.messages[seq].qos
        );
        let tick = self.tick();
        self.msgs[seq].done = Some((Done::NotSupported, tick));
        self.stats.not_supported += 1;
        Ok(())
    }

    /// `Event::Dropped`.
    pub(crate) fn dropped(&mut self, sc: &Scenario, id: PacketId) -> Check {
        let Some(seq) = self.outstanding.remove(&id) else {
            return Err(format!(
                "Dropped for packet id {id}, which no message in flight has"
            ));
        };
        ensure!(
            sc.policy == UnackedPolicy::Discard,
            "#{seq} (id {id}) Dropped under {:?}: only UnackedPolicy::Discard drops",
            sc.policy
        );
        let tick = self.tick();
        self.msgs[seq].done = Some((Done::Dropped, tick));
        self.stats.dropped += 1;
        Ok(())
    }

    /// The client read a PUBCOMP.
    pub(crate) fn pubcomp(&mut self, id: PacketId) {
        if self.outstanding.contains_key(&id) {
            self.pubcomp_read.insert(id);
        }
    }

    /// The client encoded a PUBLISH into its transmit buffer: DUP=0 the first time, DUP=1 on
    /// every re-send (MQTT-3.3.1-1, MQTT-4.4.0-1), whatever the broker's session-present said.
    pub(crate) fn encoded(&mut self, sc: &Scenario, p: &Publish) -> Check {
        let seq = self.identify(sc, p, "client sent")?;
        // A refused message is done: never sent again (a crash that lost its `Completed` record
        // puts it back in flight).
        let in_flight = self.outstanding.values().any(|&s| s == seq);
        ensure!(
            in_flight || !matches!(self.msgs[seq].done, Some((Done::Refused, _))),
            "#{seq} sent again after PublishRefused"
        );
        let m = &mut self.msgs[seq];
        m.encoded += 1;
        if m.encoded == 1 && (m.possible_copy || m.revived) {
            // Never sent, but the store cannot know that: either flag is right.
            self.stats.first_sends_marked_dup += u64::from(p.dup);
        } else if m.encoded == 1 {
            ensure!(!p.dup, "the first send of #{seq} has DUP=1");
        } else {
            ensure!(
                p.dup,
                "#{seq} sent again (send {}) with DUP=0 (MQTT-3.3.1-1)",
                m.encoded
            );
            self.stats.resent_with_dup += 1;
        }
        Ok(())
    }

    /// An accepted CONNECT attached the client to the session of `epoch`.
    pub(crate) fn attached(&mut self, epoch: u64) {
        self.attached = epoch;
    }

    pub(crate) fn attached_epoch(&self) -> u64 {
        self.attached
    }

    pub(crate) fn session_ended(&mut self, epoch: u64) {
        let tick = self.tick();
        self.ended.insert(epoch, tick);
        self.stats.session_losses += 1;
    }

    /// The message a PUBLISH carries, checked against what was published.
    fn identify(&self, sc: &Scenario, p: &Publish, what: &str) -> Result<usize, String> {
        let seq = p
            .payload_bytes()
            .get(..8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")) as usize)
            .filter(|&s| s < sc.messages.len())
            .ok_or_else(|| {
                format!(
                    "{what}: a payload that no message has: {:?}",
                    p.payload_bytes()
                )
            })?;
        let m = &sc.messages[seq];
        ensure!(
            p.topic() == sc.topics[m.topic].name && p.payload() == &sc.payload(seq)[..],
            "{what} #{seq}: topic or payload corrupted: {:?} {:?}",
            p.topic_name(),
            p.payload_bytes()
        );
        ensure!(
            !p.retain,
            "{what} #{seq} has RETAIN set; nothing was retained"
        );
        Ok(seq)
    }

    /// The broker took a message (Note::Accepted).
    pub(crate) fn accepted(
        &mut self,
        sc: &Scenario,
        p: &Publish,
        epoch: u64,
        routed: Option<QoS>,
    ) -> Check {
        let seq = self.identify(sc, p, "broker took")?;
        let m = &sc.messages[seq];
        ensure!(
            p.qos == m.qos,
            "broker took #{seq} at {}, published at {}",
            p.qos,
            m.qos
        );
        ensure!(
            self.msgs[seq].published.is_some(),
            "broker took #{seq} before the application published it"
        );
        if self.msgs[seq].accepts.is_empty() && !self.msgs[seq].revived {
            // MQTT-4.6.0-1/-5/-6: the client sends (and re-sends) in order, so the broker first
            // takes the messages of a topic and QoS in publish order.
            let key = (m.topic, m.qos);
            if let Some(&last) = self.first_accept.get(&key) {
                ensure!(
                    seq > last,
                    "broker first took #{seq} after #{last} ({} {}): out of order",
                    sc.topics[m.topic].name,
                    m.qos
                );
            }
            self.first_accept.insert(key, seq);
        }
        // MQTT 5: a message sent after waiting carries what is left of its interval.
        let expiry = p.properties().message_expiry_interval;
        match (m.expiry, expiry) {
            (None, None) => {}
            (Some(planned), Some(left)) => {
                ensure!(
                    left <= planned,
                    "broker took #{seq} with Message Expiry Interval {left}, published with {planned}"
                );
                self.stats.expiry_checked += 1;
            }
            (planned, got) => {
                return Err(format!(
                    "broker took #{seq} with Message Expiry Interval {got:?}, published with \
                     {planned:?}"
                ));
            }
        }
        let tick = self.tick();
        self.msgs[seq].accepts.push((tick, epoch, routed));
        Ok(())
    }

    /// The application's process restarted before it acknowledged delivery `seq` (manual-ack
    /// mode): it may be delivered once more.
    pub(crate) fn abandoned(&mut self, seq: usize) {
        if let Some(m) = self.msgs.get_mut(seq) {
            m.abandoned += 1;
        }
    }

    /// The application's process crashed, and a new client resumes `session`, replayed from the
    /// store. Every QoS 1/2 message in flight for the ledger must be in it, unless it was waiting
    /// unrecorded in the queue (under [`SessionRecording::ExceptQueue`]; never sent); a message
    /// the ledger saw `Published` may be back, its `Completed` record lost.
    pub(crate) fn crashed(&mut self, sc: &Scenario, session: &SessionSnapshot) -> Check {
        let inflight = session.inflight.iter().map(|m| (&m.publish, false));
        let queued = session.queued.iter().map(|p| (p, true));
        let mut restored = BTreeMap::new();
        for (p, in_queue) in inflight.chain(queued) {
            let Some(id) = p.packet_id else { continue }; // QoS 0: nothing to account for
            let seq = self.identify(sc, p, "the store restored")?;
            let published = self.msgs[seq].published.and_then(|(_, id)| id);
            ensure!(
                published == Some(id),
                "the store restored #{seq} under id {id}; publish returned {published:?}"
            );
            ensure!(
                p.qos == sc.messages[seq].qos,
                "the store restored #{seq} at {}, published at {}",
                p.qos,
                sc.messages[seq].qos
            );
            ensure!(
                restored.insert(id, seq).is_none(),
                "the store restored two messages under id {id}"
            );
            if in_queue {
                self.msgs[seq].possible_copy = true;
            }
            self.stats.restored += 1;
        }
        let tick = self.tick();
        for (&id, &seq) in &self.outstanding {
            match restored.get(&id) {
                Some(&s) => ensure!(
                    s == seq,
                    "the store restored #{s} under id {id}, which #{seq} holds"
                ),
                None => {
                    let m = &mut self.msgs[seq];
                    ensure!(
                        sc.session_recording == SessionRecording::ExceptQueue && m.encoded == 0,
                        "#{seq} (id {id}, sent {} times) lost with the process, though publish \
                         returned Ok under {:?}",
                        m.encoded,
                        sc.session_recording
                    );
                    m.done = Some((Done::LostWithProcess, tick));
                    self.stats.lost_with_process += 1;
                }
            }
        }
        for (&id, &seq) in &restored {
            if !self.outstanding.contains_key(&id) {
                if matches!(self.msgs[seq].done, Some((Done::Expired, _))) {
                    self.msgs[seq].revived = true;
                }
                ensure!(
                    matches!(
                        self.msgs[seq].done,
                        Some((
                            Done::Published | Done::Refused | Done::Expired | Done::Unsendable,
                            _
                        ))
                    ),
                    "the store restored #{seq} (id {id}), neither in flight nor Published: {:?}",
                    self.msgs[seq].done
                );
                self.stats.resurrected += 1;
            }
        }
        self.pubcomp_read.retain(|id| restored.contains_key(id));
        self.outstanding = restored;
        Ok(())
    }

    /// `Event::Message`; returns the message's sequence number.
    pub(crate) fn delivered(&mut self, sc: &Scenario, p: &Publish) -> Result<usize, String> {
        let seq = self.identify(sc, p, "delivered")?;
        let m = &sc.messages[seq];
        let expected = m.qos.min(sc.granted(m.topic));
        ensure!(
            p.qos == expected,
            "#{seq} delivered at {}, expected min({}, granted {}) = {expected}",
            p.qos,
            m.qos,
            sc.granted(m.topic)
        );
        ensure!(
            self.msgs[seq].accepts.iter().any(|a| a.2.is_some()),
            "#{seq} delivered but the broker never routed it"
        );
        if !self.msgs[seq].deliveries.is_empty() {
            self.stats.duplicate_deliveries += 1;
        }
        self.stats.deliveries += 1;
        let tick = self.tick();
        self.msgs[seq].deliveries.push(tick);
        Ok(seq)
    }

    /// A copy of `p` went to the client under an identifier the client still held from a session
    /// the broker lost without the client knowing (the CONNACK with `session_present = 0` never
    /// arrived, so the next `session_present = 1` was for the new, empty session): a QoS 2
    /// identifier awaiting PUBREL (MQTT 4.3.3 makes the client take the new message for a re-send:
    /// PUBREC, not delivered), or in manual-ack mode an ack still held (the same for QoS 1, and
    /// the old ack then acknowledges the new message). The client cannot tell; the loss is the
    /// protocol's, and is counted rather than failed.
    pub(crate) fn swallowed(&mut self, sc: &Scenario, p: &Publish, epoch: u64) -> Check {
        let seq = self.identify(sc, p, "swallowed")?;
        self.msgs[seq].swallowed.push(epoch);
        self.stats.swallowed += 1;
        Ok(())
    }

    /// Sessions lost by `to` that message `m` depended on: the one the client was attached to
    /// when it was published (the client may not know yet that it is gone) and any later one.
    fn losses(&self, m: &Msg, to: u64) -> usize {
        self.ended
            .range(m.epoch..)
            .filter(|(_, t)| **t <= to)
            .count()
    }

    /// MQTT 4.6: the client sends in order and the broker forwards in order, so the first
    /// deliveries of a topic and QoS come in publish order. Session loss breaks the chain (the
    /// copies in the lost session are gone, re-sent messages come later), and so does a message
    /// the broker first took with no subscription in place (the driver had not subscribed again
    /// yet after a loss: a later re-send of it is delivered after newer messages). The order is
    /// checked among the messages neither applies to; the publish leg's order is checked for all
    /// in [`accepted`](Self::accepted).
    fn check_delivery_order(&mut self, sc: &Scenario, end: u64) -> Check {
        let mut last: BTreeMap<(usize, QoS), (usize, u64)> = BTreeMap::new();
        for (seq, (m, plan)) in self.msgs.iter().zip(&sc.messages).enumerate() {
            let Some(&first) = m.deliveries.first() else {
                continue;
            };
            let routed_first = m.accepts.first().is_some_and(|a| a.2.is_some());
            if !routed_first || self.losses(m, end) > 0 || m.revived {
                continue;
            }
            self.stats.order_checked += 1;
            let key = (plan.topic, plan.qos);
            if let Some(&(before, at)) = last.get(&key) {
                ensure!(
                    first > at,
                    "#{seq} first delivered before #{before} ({} {}): out of order",
                    sc.topics[plan.topic].name,
                    plan.qos
                );
            }
            last.insert(key, (seq, first));
        }
        Ok(())
    }

    /// Checks at the end of a run, once everything has settled.
    pub(crate) fn finish(&mut self, sc: &Scenario) -> Check {
        let end = self.tick();
        ensure!(
            self.outstanding.is_empty(),
            "messages never Published nor Dropped: {:?}",
            self.outstanding
        );
        self.check_delivery_order(sc, end)?;
        for (seq, (m, plan)) in self.msgs.iter().zip(&sc.messages).enumerate() {
            let accepted = m.accepts.len();
            if let Some((Done::NotSupported, _)) = m.done {
                ensure!(
                    m.published.is_none() && accepted == 0 && m.encoded == 0,
                    "#{seq} refused by publish (the server's terms), yet published or sent"
                );
                continue;
            }
            let Some(_) = m.published else {
                return Err(format!("#{seq} was never published"));
            };
            let losses_to_end = self.losses(m, end);
            // The broker refuses a message every time: it never takes one it refused.
            ensure!(
                m.refusals == 0 || accepted == 0,
                "#{seq} refused {} times and taken {accepted} times",
                m.refusals
            );
            match (plan.qos, m.done) {
                (QoS::AtMostOnce, _) => {
                    ensure!(
                        accepted <= 1,
                        "QoS 0 #{seq} taken by the broker {accepted} times"
                    );
                }
                (_, None) => return Err(format!("#{seq} never completed")),
                (_, Some((Done::NotSupported, _))) => unreachable!("checked above"),
                (_, Some((Done::Expired, _))) => {
                    ensure!(
                        accepted == 0 || m.possible_copy || m.revived,
                        "#{seq} Expired, but the broker took it"
                    );
                }
                (_, Some((Done::Refused, _))) => {
                    ensure!(m.refusals > 0, "#{seq} PublishRefused, never refused");
                }
                (_, Some((Done::Unsendable, _))) => {
                    ensure!(
                        accepted == 0 && (m.encoded == 0 || m.possible_copy),
                        "#{seq} Unsendable, but it went out"
                    );
                }
                (_, Some((Done::LostWithProcess, _))) => {
                    ensure!(
                        accepted == 0,
                        "#{seq} lost with the process (never recorded), but the broker took it"
                    );
                }
                (_, Some((Done::Dropped, at))) => {
                    let losses = self.losses(m, at);
                    ensure!(losses > 0, "#{seq} Dropped without a session loss");
                }
                (_, Some((Done::Published, _))) if m.refusals > 0 => {
                    return Err(format!(
                        "#{seq} Published, though the broker refused it (PublishRefused expected)"
                    ));
                }
                (QoS::AtLeastOnce, Some((Done::Published, _))) => {
                    ensure!(
                        accepted >= 1,
                        "QoS 1 #{seq} Published but the broker never took it"
                    );
                }
                (QoS::ExactlyOnce, Some((Done::Published, at))) => {
                    let losses = self.losses(m, at);
                    if losses == 0 {
                        ensure!(
                            accepted == 1,
                            "QoS 2 #{seq} taken by the broker {accepted} times with the session kept"
                        );
                    } else {
                        ensure!(
                            accepted <= 1 + losses,
                            "QoS 2 #{seq} taken by the broker {accepted} times across {losses} \
                             session losses"
                        );
                    }
                }
            }

            // Delivery leg: every copy queued in a session that lived on was delivered after it.
            let mut swallowed = m.swallowed.clone();
            for &(at, epoch, routed) in m.accepts.iter().rev() {
                if routed.is_none_or(|q| q == QoS::AtMostOnce) {
                    continue;
                }
                if self.ended.get(&epoch).is_some_and(|&t| t > at) {
                    self.stats.obligations_voided += 1;
                    continue;
                }
                if let Some(i) = swallowed.iter().position(|&e| e == epoch) {
                    swallowed.swap_remove(i);
                    continue;
                }
                self.stats.obligations_kept += 1;
                ensure!(
                    m.deliveries.iter().any(|&d| d > at),
                    "#{seq} ({} {}) lost: the broker routed it at {routed:?} in session {epoch}, \
                     which was kept, and it was never delivered after that",
                    sc.topics[plan.topic].name,
                    plan.qos
                );
            }
            // QoS 0 and 2 copies arrive at most once each.
            let routed = m.accepts.iter().filter(|a| a.2.is_some()).count();
            let copies_at_most_once = m.accepts.iter().all(|a| a.2 != Some(QoS::AtLeastOnce));
            if copies_at_most_once {
                ensure!(
                    m.deliveries.len() <= routed + m.abandoned,
                    "#{seq} ({}) delivered {} times from {routed} copies",
                    plan.qos,
                    m.deliveries.len()
                );
            }
            let effective = plan.qos.min(sc.granted(plan.topic));
            // A copy never routed (published while the subscription was missing after an earlier
            // loss) has nothing to deliver.
            if effective == QoS::ExactlyOnce
                && losses_to_end == 0
                && routed > 0
                && m.swallowed.is_empty()
            {
                self.stats.exactly_once_checked += 1;
                ensure!(
                    (1..=1 + m.abandoned).contains(&m.deliveries.len()),
                    "QoS 2 #{seq} delivered {} times with the session kept",
                    m.deliveries.len()
                );
            }
        }
        Ok(())
    }
}
