//! The session records a client reports (`Config::session_recording`) replay to the session it
//! holds: after any sequence of commands and broker packets, `SessionSnapshot::apply` over every
//! record so far gives `Client::snapshot()`, so a store fed the records restores exactly the
//! session a crash interrupted.

use bytes::Bytes;
use proptest::prelude::*;
use sansmq::client::{SessionRecord, SessionRecording, SessionSnapshot, UnackedPolicy};
use sansmq::packet::{
    PacketId, PubAck, PubComp, PubRec, PubRel, QoS, SubAck, SubscribeFilter, SubscribeReturnCode,
    UnsubAck,
};
use sansmq::{Client, TopicFilter};

use crate::util::{Scripted, config, id, incoming, topic};

#[derive(Debug, Clone)]
enum Step {
    Publish(u8),
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    Incoming(u8, u16),
    PubRel(u16),
    Ack(u16),
    Subscribe(u8, Option<u8>),
    Unsubscribe(u8),
    Drop,
    Reconnect(bool),
}

fn qos(v: u8) -> QoS {
    match v % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn filter(v: u8) -> TopicFilter {
    TopicFilter::try_from(["a/#", "b/+", "c"][usize::from(v % 3)]).unwrap()
}

fn step() -> impl Strategy<Value = Step> {
    let small_id = 1..=6u16;
    prop_oneof![
        4 => (0..3u8).prop_map(Step::Publish),
        2 => small_id.clone().prop_map(Step::PubAck),
        2 => small_id.clone().prop_map(Step::PubRec),
        2 => small_id.clone().prop_map(Step::PubComp),
        2 => (1..3u8, small_id.clone()).prop_map(|(q, i)| Step::Incoming(q, i)),
        2 => small_id.clone().prop_map(Step::PubRel),
        2 => small_id.prop_map(Step::Ack),
        1 => (0..3u8, proptest::option::of(0..3u8)).prop_map(|(f, g)| Step::Subscribe(f, g)),
        1 => (0..3u8).prop_map(Step::Unsubscribe),
        1 => Just(Step::Drop),
        1 => any::<bool>().prop_map(Step::Reconnect),
    ]
}

struct Recorded {
    s: Scripted,
    log: Vec<SessionRecord>,
}

impl Recorded {
    fn take_records(&mut self) {
        while let Some(record) = self.s.client.poll_session_record() {
            self.log.push(record);
        }
    }

    fn replayed(&self) -> SessionSnapshot {
        let mut session = SessionSnapshot::default();
        for (at, record) in self.log.iter().enumerate() {
            session
                .apply(record)
                .unwrap_or_else(|e| panic!("record {at} ({record:?}) refused: {e}"));
        }
        session
    }

    fn run(&mut self, step: &Step) {
        let now = self.s.now;
        let connected = self.s.client.is_connected();
        match *step {
            Step::Publish(q) => {
                let payload = Bytes::from(format!("m{}", self.log.len()));
                let _ = self
                    .s
                    .client
                    .publish(now, topic("t"), qos(q), false, payload);
            }
            Step::PubAck(v) => self.s.deliver(PubAck::new(id(v))),
            Step::PubRec(v) => self.s.deliver(PubRec::new(id(v))),
            Step::PubComp(v) => self.s.deliver(PubComp::new(id(v))),
            Step::Incoming(q, v) => self.s.deliver(incoming("t", qos(q), Some(v), b"in")),
            Step::PubRel(v) => self.s.deliver(PubRel::new(id(v))),
            Step::Ack(v) => {
                let _ = self.s.client.ack(now, id(v));
            }
            Step::Subscribe(f, granted) => {
                let filters = vec![SubscribeFilter::new(filter(f), QoS::ExactlyOnce)];
                if let (Ok(packet_id), true) = (self.s.client.subscribe(now, filters), connected) {
                    let code = granted.map_or(SubscribeReturnCode::Failure, |g| {
                        SubscribeReturnCode::Success(qos(g))
                    });
                    self.s.deliver(SubAck::new(packet_id, vec![code]));
                }
            }
            Step::Unsubscribe(f) => {
                let result = self.s.client.unsubscribe(now, vec![filter(f)]);
                if let (Ok(packet_id), true) = (result, connected) {
                    self.s.deliver(UnsubAck::new(packet_id));
                }
            }
            Step::Drop if connected => self.s.drop_connection(),
            Step::Reconnect(session_present) if !connected => {
                self.s.connect(session_present);
            }
            Step::Drop | Step::Reconnect(_) => {}
        }
        let _ = self.s.sent();
        let _ = self.s.events();
        self.take_records();
    }
}

fn recorded(manual_acks: bool, discard: bool, recording: SessionRecording) -> Recorded {
    let mut cfg = config();
    cfg.session_recording = recording;
    cfg.manual_acks = manual_acks;
    cfg.max_inflight = 2;
    cfg.clean_session = false;
    if discard {
        cfg.unacked_policy = UnackedPolicy::Discard;
    }
    let mut recorded = Recorded {
        s: Scripted::connected(cfg),
        log: Vec::new(),
    };
    recorded.take_records();
    recorded.log.clear(); // the first CONNACK's `SessionLost`, about an empty session
    recorded
}

/// The session without DUP flags: a record keeps the flag its message was accepted with, the
/// client sets it on the copies it re-sends (and on every re-send after a restore).
fn without_dup(mut session: SessionSnapshot) -> SessionSnapshot {
    for message in &mut session.inflight {
        message.publish.dup = false;
    }
    session
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_record_replays_to_the_client_snapshot(
        manual_acks in any::<bool>(),
        discard in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut r = recorded(manual_acks, discard, SessionRecording::All);
        for (n, step) in steps.iter().enumerate() {
            r.run(step);
            let session = without_dup(r.s.client.snapshot());
            prop_assert_eq!(r.replayed(), session, "after step {}: {:?}", n, step);
        }
        // And a client restored from the records reports the same session again.
        let restored = Client::with_session(r.s.client.config().clone(), r.replayed()).unwrap();
        prop_assert_eq!(without_dup(restored.snapshot()), without_dup(r.s.client.snapshot()));
    }

    #[test]
    fn except_queue_records_all_but_the_queue(
        manual_acks in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut r = recorded(manual_acks, false, SessionRecording::ExceptQueue);
        for (n, step) in steps.iter().enumerate() {
            r.run(step);
            let replayed = r.replayed();
            let mut session = without_dup(r.s.client.snapshot());
            prop_assert!(replayed.queued.is_empty(), "after step {}: {:?}", n, replayed.queued);
            session.queued.clear();
            prop_assert_eq!(replayed, session, "after step {}: {:?}", n, step);
        }
    }
}

#[test]
fn nothing_is_recorded_by_default() {
    let mut s = Scripted::connected(config());
    let packet_id = s.publish("t", QoS::ExactlyOnce, b"x").unwrap();
    s.deliver(PubRec::new(packet_id));
    s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"in"));
    let _ = s.sent();
    assert_eq!(s.client.poll_session_record(), None);
}

#[test]
fn a_qos0_message_sent_at_once_is_not_recorded_and_a_queued_one_is() {
    let mut r = recorded(false, false, SessionRecording::All);
    r.s.publish("t", QoS::AtMostOnce, b"now");
    r.take_records();
    assert!(r.log.is_empty(), "{:?}", r.log);
    r.s.drop_connection();
    let _ = r.s.events();
    r.s.publish("t", QoS::AtMostOnce, b"later");
    r.take_records();
    assert!(matches!(r.log.as_slice(), [SessionRecord::Accepted(p)] if p.payload() == b"later"));
    r.s.connect(true);
    r.take_records();
    // Durable before it is written: a QoS 0 message sent twice cannot be recognised as a copy.
    assert_eq!(r.log.last(), Some(&SessionRecord::SentAtMostOnce));
    assert!(SessionRecord::SentAtMostOnce.needs_sync());
    assert_eq!(r.replayed(), SessionSnapshot::default());
}

#[test]
fn a_qos2_message_is_held_once_the_application_acknowledges_it() {
    let mut r = recorded(true, false, SessionRecording::All);
    r.s.deliver(incoming("t", QoS::ExactlyOnce, Some(4), b"in"));
    let _ = r.s.sent();
    r.take_records();
    assert!(
        r.log.is_empty(),
        "unacknowledged, nothing is held: {:?}",
        r.log
    );
    assert!(r.s.client.snapshot().awaiting_release.is_empty());
    r.s.client.ack(r.s.now, id(4)).unwrap();
    r.take_records();
    assert_eq!(r.log, [SessionRecord::IncomingHeld(id(4))]);
    // Durable before the PUBREC it allows is written.
    assert!(r.log.iter().all(SessionRecord::needs_sync));
}

#[test]
fn records_that_must_be_durable_are_marked() {
    let mut r = recorded(false, false, SessionRecording::All);
    let packet_id: PacketId = r.s.publish("t", QoS::ExactlyOnce, b"x").unwrap();
    r.s.deliver(PubRec::new(packet_id));
    r.s.deliver(PubComp::new(packet_id));
    r.take_records();
    let durable: Vec<bool> = r.log.iter().map(SessionRecord::needs_sync).collect();
    assert_eq!(r.log.len(), 4, "{:?}", r.log);
    // Accepted, Sent, Released, Completed.
    assert_eq!(durable, [true, false, true, false]);
}
