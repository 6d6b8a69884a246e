//! The supervisor driven by hand, as a driver would, against scripted broker bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::TopicName;
use sansmq::packet::{QoS, SubscribeFilter};

use super::*;
use crate::Credentials;

/// Every waiter is a number, so tests can tell which came back.
#[derive(Debug)]
struct Numbered;

impl Requests for Numbered {
    type Connect = u32;
    type Publish = u32;
    type Subscribe = u32;
    type Unsubscribe = u32;
    type Disconnect = u32;
    type Request = u32;
}

type Sup = Supervisor<Numbered>;

const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const CONNACK_NOT_AUTHORISED: [u8; 4] = [0x20, 0x02, 0x00, 0x05];

fn options(uris: &[&str]) -> ConnectOptions {
    ConnectOptions::new(uris[0], "supervised")
        .and_then(|o| o.server_uris(uris))
        .expect("valid options")
        .keep_alive(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(8))
}

fn topic(name: &str) -> TopicName {
    TopicName::try_from(name).expect("valid topic")
}

/// Publishes a small message to `t` with `waiter`.
fn publish(
    sup: &mut Sup,
    now: Instant,
    qos: QoS,
    waiter: u32,
) -> Result<Option<sansmq::packet::PacketId>, Rejected<u32>> {
    sup.publish(
        now,
        topic("t"),
        qos,
        false,
        Bytes::from_static(b"x"),
        waiter,
    )
}

/// Writes everything the supervisor has to send; returns the bytes.
fn write_all(sup: &mut Sup, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = sup.poll_transmit() {
        let n = bytes.len();
        out.extend_from_slice(bytes);
        sup.handle_transmitted(now, n);
    }
    out
}

fn actions(sup: &mut Sup) -> Vec<Action> {
    std::iter::from_fn(|| sup.poll_action()).collect()
}

fn events(sup: &mut Sup) -> Vec<Event<Numbered>> {
    std::iter::from_fn(|| sup.poll_event()).collect()
}

/// The waiters of the disconnects answered with success, in the order they were answered.
fn disconnects_answered(sup: &mut Sup) -> Vec<u32> {
    events(sup)
        .into_iter()
        .filter_map(|e| match e {
            Event::Completed(Completed::Disconnect(w, Ok(()))) => Some(w),
            _ => None,
        })
        .collect()
}

fn opened_uri(actions: &[Action]) -> Option<String> {
    actions.iter().find_map(|a| match a {
        Action::Open { uri } => Some(uri.to_string()),
        _ => None,
    })
}

/// The automatic reconnect due `at`, answered with `connack`.
fn reconnect(sup: &mut Sup, at: Instant, connack: &[u8]) {
    sup.handle_timeout(at);
    assert_eq!(opened_uri(&actions(sup)).as_deref(), Some("tcp://a:1883"));
    sup.handle_opened(at);
    write_all(sup, at);
    sup.handle_received(at, connack);
}

/// `connect` (with `waiter`) through a, answered with a CONNACK.
fn connect(sup: &mut Sup, now: Instant, waiter: u32) {
    sup.connect(now, waiter).expect("connect accepted");
    assert_eq!(opened_uri(&actions(sup)).as_deref(), Some("tcp://a:1883"));
    sup.handle_opened(now);
    write_all(sup, now);
    sup.handle_received(now, &CONNACK);
}

/// A supervisor connected through `connect` (waiter 1), its events drained.
fn connected(now: Instant) -> Sup {
    let mut sup = Sup::new(options(&["tcp://a:1883"])).expect("supervisor");
    connect(&mut sup, now, 1);
    events(&mut sup);
    sup
}

#[test]
fn nothing_is_written_before_the_transport_is_open() {
    let now = Instant::now();
    let mut sup = Sup::new(options(&["tcp://a:1883"])).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    assert!(
        sup.poll_transmit().is_none(),
        "CONNECT waits for the transport"
    );
    sup.handle_opened(now);
    let connect = write_all(&mut sup, now);
    assert_eq!(connect.first(), Some(&0x10), "CONNECT goes out first");
}

#[test]
fn connect_answers_once_at_connack_and_reports_a_first_connection() {
    let now = Instant::now();
    let mut sup = Sup::new(options(&["tcp://a:1883"])).expect("supervisor");
    sup.connect(now, 7).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    write_all(&mut sup, now);
    sup.handle_received(now, &[0x20, 0x02, 0x01, 0x00]);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.as_slice(),
            [
                Event::Completed(Completed::Connect(7, Ok(true))),
                Event::Connected {
                    session_present: true,
                    reconnect: false,
                    requested: true,
                    ..
                }
            ]
        ),
        "{seen:?}"
    );
    assert!(sup.is_connected());
    let again = sup.connect(now, 8).expect_err("already connected");
    assert_eq!(again.waiter, 8);
}

#[test]
fn a_failed_open_tries_the_next_uri_and_connect_fails_after_the_last() {
    let now = Instant::now();
    let mut sup = Sup::new(options(&["tcp://a:1883", "tcp://b:1883"])).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    assert_eq!(
        opened_uri(&actions(&mut sup)).as_deref(),
        Some("tcp://a:1883")
    );
    sup.handle_open_failed(
        now,
        Error::Dns {
            host: "a".into(),
            reason: "no such host".into(),
        },
    );
    assert_eq!(
        opened_uri(&actions(&mut sup)).as_deref(),
        Some("tcp://b:1883")
    );
    assert!(
        events(&mut sup).is_empty(),
        "connect still has a URI to try"
    );
    sup.handle_opened(now);
    write_all(&mut sup, now);
    sup.handle_received(now, &CONNACK_NOT_AUTHORISED);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.as_slice(),
            [Event::Completed(Completed::Connect(
                1,
                Err(Error::Refused(_))
            ))]
        ),
        "{seen:?}"
    );
    assert!(actions(&mut sup).contains(&Action::Close));
    assert_eq!(
        sup.poll_timeout(),
        None,
        "no automatic retry after a failed connect"
    );
}

#[test]
fn the_connect_timeout_bounds_opening_and_abandons_the_transport() {
    let now = Instant::now();
    let mut sup = Sup::new(options(&["tcp://a:1883"])).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    let deadline = sup
        .poll_timeout()
        .expect("the CONNACK timer runs while opening");
    assert_eq!(deadline, now + Duration::from_secs(5));
    sup.handle_timeout(deadline);
    assert_eq!(actions(&mut sup), [Action::Close]);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.as_slice(),
            [Event::Completed(Completed::Connect(1, Err(_)))]
        ),
        "{seen:?}"
    );
}

#[test]
fn a_lost_connection_reconnects_after_the_backoff_and_resubscribes_once() {
    let start = Instant::now();
    let mut sup = connected(start);
    let filters = vec![SubscribeFilter::new(
        TopicFilter::try_from("t/#").expect("filter"),
        QoS::AtLeastOnce,
    )];
    sup.subscribe(start, filters, 2)
        .expect("subscribe accepted");
    let subscribe = write_all(&mut sup, start);
    assert_eq!(subscribe.first(), Some(&0x82));
    sup.handle_received(start, &[0x90, 0x03, 0x00, 0x01, 0x01]);
    assert!(matches!(
        events(&mut sup).as_slice(),
        [Event::Completed(Completed::Subscribe(2, Ok(granted)))] if granted == &[QoS::AtLeastOnce]
    ));

    sup.handle_closed(start, None);
    let lost = events(&mut sup);
    let Some(Event::ConnectionLost {
        reconnect_at: Some(at),
        ..
    }) = lost.first()
    else {
        panic!("{lost:?}");
    };
    let at = *at;
    assert!(
        at >= start + Duration::from_secs(1),
        "never sooner than the minimum delay"
    );
    assert!(
        at <= start + Duration::from_millis(1_500),
        "within the first step's jitter"
    );
    assert!(
        actions(&mut sup).is_empty(),
        "the transport is already gone"
    );
    sup.handle_timeout(at - Duration::from_millis(1));
    assert!(actions(&mut sup).is_empty(), "not before its time");
    sup.handle_timeout(at);
    assert_eq!(
        opened_uri(&actions(&mut sup)).as_deref(),
        Some("tcp://a:1883")
    );
    sup.handle_opened(at);
    write_all(&mut sup, at);
    sup.handle_received(at, &CONNACK);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.as_slice(),
            [Event::Connected {
                reconnect: true,
                requested: false,
                session_present: false,
                ..
            }]
        ),
        "{seen:?}"
    );
    let restore = write_all(&mut sup, at);
    assert_eq!(
        restore.iter().filter(|&&b| b == 0x82).count(),
        1,
        "one SUBSCRIBE restores the session: {restore:?}"
    );
}

#[test]
fn qos_0_completes_when_its_bytes_are_written_not_before() {
    let now = Instant::now();
    let mut sup = connected(now);
    let id = publish(&mut sup, now, QoS::AtMostOnce, 3).expect("publish accepted");
    assert_eq!(id, None);
    assert!(events(&mut sup).is_empty(), "not written yet");
    let len = sup.poll_transmit().map_or(0, <[u8]>::len);
    sup.handle_transmitted(now, len - 1);
    assert!(events(&mut sup).is_empty(), "one byte is still unwritten");
    sup.handle_transmitted(now, 1);
    assert!(matches!(
        events(&mut sup).as_slice(),
        [Event::Completed(Completed::Publish(
            3,
            QoS::AtMostOnce,
            Ok(())
        ))]
    ));
}

#[test]
fn an_unwritten_qos_0_message_fails_with_its_connection() {
    let now = Instant::now();
    let mut sup = connected(now);
    publish(&mut sup, now, QoS::AtMostOnce, 3).expect("publish accepted");
    sup.handle_closed(now, None);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.first(),
            Some(Event::Completed(Completed::Publish(3, _, Err(_))))
        ),
        "{seen:?}"
    );
}

#[test]
fn qos_1_completes_at_its_puback_exactly_once_even_across_a_reconnect() {
    let start = Instant::now();
    let mut sup = connected(start);
    let id = publish(&mut sup, start, QoS::AtLeastOnce, 4)
        .expect("publish accepted")
        .expect("a packet id");
    write_all(&mut sup, start);
    sup.handle_closed(start, None);
    assert!(
        !events(&mut sup)
            .iter()
            .any(|e| matches!(e, Event::Completed(_))),
        "the message waits for the next connection"
    );
    let at = sup.poll_timeout().expect("reconnect scheduled");
    reconnect(&mut sup, at, &[0x20, 0x02, 0x01, 0x00]);
    write_all(&mut sup, at);
    let [hi, lo] = id.get().to_be_bytes();
    sup.handle_received(at, &[0x40, 0x02, hi, lo]);
    sup.handle_received(at, &[0x40, 0x02, hi, lo]);
    let completed: Vec<_> = events(&mut sup)
        .into_iter()
        .filter(|e| matches!(e, Event::Completed(_)))
        .collect();
    assert!(
        matches!(
            completed.as_slice(),
            [Event::Completed(Completed::Publish(
                4,
                QoS::AtLeastOnce,
                Ok(())
            ))]
        ),
        "{completed:?}"
    );
}

#[test]
fn without_credentials_automatic_reconnect_says_so_once_opens_nothing_and_resumes_with_new_ones() {
    let start = Instant::now();
    let valid = Arc::new(AtomicBool::new(true));
    let asked = Arc::new(AtomicUsize::new(0));
    let provider = {
        let (valid, asked) = (Arc::clone(&valid), Arc::clone(&asked));
        move || {
            asked.fetch_add(1, Ordering::SeqCst);
            if valid.load(Ordering::SeqCst) {
                Ok(Credentials {
                    username: "u".into(),
                    password: None,
                })
            } else {
                Err("the tokens were declared invalid".to_owned())
            }
        }
    };
    let mut sup =
        Sup::new(options(&["tcp://a:1883"]).credentials_provider(provider)).expect("supervisor");
    sup.connect(start, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(start);
    write_all(&mut sup, start);
    sup.handle_received(start, &CONNACK);
    events(&mut sup);
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    valid.store(false, Ordering::SeqCst);
    sup.handle_closed(start, None);
    events(&mut sup);
    let mut at = sup.poll_timeout().expect("reconnect scheduled");
    for attempt in 2..=3 {
        sup.handle_timeout(at);
        assert!(
            actions(&mut sup).is_empty(),
            "no transport without credentials"
        );
        let seen = events(&mut sup);
        if attempt == 2 {
            assert!(
                matches!(seen.as_slice(), [Event::WaitingForCredentials { .. }]),
                "{seen:?}"
            );
        } else {
            assert!(seen.is_empty(), "reported once per outage: {seen:?}");
        }
        assert_eq!(asked.load(Ordering::SeqCst), attempt);
        let next = sup.poll_timeout().expect("asks again later");
        assert!(
            next >= at + Duration::from_secs(1),
            "never sooner than the minimum delay"
        );
        at = next;
    }

    // Refreshed tokens: the next attempt opens a transport by itself.
    valid.store(true, Ordering::SeqCst);
    sup.handle_timeout(at);
    assert_eq!(
        opened_uri(&actions(&mut sup)).as_deref(),
        Some("tcp://a:1883")
    );
}

#[test]
fn disconnect_writes_disconnect_shuts_down_writing_then_closes_at_end_of_stream() {
    let now = Instant::now();
    let mut sup = connected(now);
    sup.disconnect(now, Duration::ZERO, 5);
    assert!(
        actions(&mut sup).is_empty(),
        "DISCONNECT is not written yet"
    );
    let written = write_all(&mut sup, now);
    assert_eq!(written, [0xE0, 0x00]);
    assert_eq!(actions(&mut sup), [Action::ShutdownWrite]);
    assert!(
        sup.wants_read(),
        "reads on until the broker's end of stream"
    );
    sup.handle_received(now, &[0x30, 0x03, 0x00, 0x01, b't']);
    assert!(
        !events(&mut sup)
            .iter()
            .any(|e| matches!(e, Event::Message(_))),
        "nothing is processed after DISCONNECT"
    );
    sup.handle_closed(now, None);
    let seen = events(&mut sup);
    assert!(
        matches!(
            seen.as_slice(),
            [Event::Completed(Completed::Disconnect(5, Ok(())))]
        ),
        "{seen:?}"
    );
    assert_eq!(
        sup.poll_timeout(),
        None,
        "no reconnect after a requested disconnect"
    );
}

#[test]
fn a_broker_that_never_closes_is_closed_at_the_deadline() {
    let now = Instant::now();
    let mut sup = connected(now);
    sup.disconnect(now, Duration::ZERO, 5);
    write_all(&mut sup, now);
    actions(&mut sup);
    let deadline = sup.poll_timeout().expect("the close is bounded");
    assert!(deadline <= now + crate::closing::CLOSE_LIMIT);
    sup.handle_timeout(deadline);
    assert_eq!(actions(&mut sup), [Action::Close]);
    assert!(matches!(
        events(&mut sup).as_slice(),
        [Event::Completed(Completed::Disconnect(5, Ok(())))]
    ));
}

#[test]
fn disconnect_while_waiting_to_reconnect_stops_trying() {
    let now = Instant::now();
    let mut sup = connected(now);
    sup.handle_closed(now, None);
    events(&mut sup);
    assert!(sup.poll_timeout().is_some());
    sup.disconnect(now, Duration::ZERO, 6);
    assert_eq!(sup.poll_timeout(), None);
    assert!(matches!(
        events(&mut sup).as_slice(),
        [Event::Completed(Completed::Disconnect(6, Ok(())))]
    ));
}

#[test]
fn shut_down_answers_every_waiter_with_closed() {
    let now = Instant::now();
    let mut sup = connected(now);
    publish(&mut sup, now, QoS::AtLeastOnce, 10).expect("publish accepted");
    publish(&mut sup, now, QoS::AtMostOnce, 11).expect("publish accepted");
    let filters = vec![SubscribeFilter::new(
        TopicFilter::try_from("t").expect("filter"),
        QoS::AtMostOnce,
    )];
    sup.subscribe(now, filters, 12).expect("subscribe accepted");
    sup.shut_down(now);
    assert_eq!(actions(&mut sup), [Action::Close]);
    let mut answered: Vec<u32> = events(&mut sup)
        .into_iter()
        .filter_map(|e| match e {
            Event::Completed(Completed::Publish(w, _, Err(Error::Closed)))
            | Event::Completed(Completed::Subscribe(w, Err(Error::Closed))) => Some(w),
            _ => None,
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [10, 11, 12]);
    let late = publish(&mut sup, now, QoS::AtMostOnce, 13).expect_err("closed for good");
    assert!(matches!(late.error, Error::Closed));
}

#[test]
fn an_ack_from_a_session_the_broker_forgot_is_refused() {
    let start = Instant::now();
    let mut sup = connected(start);
    sup.handle_received(start, &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x09]);
    let Some(Event::Message(message)) = sup.poll_event() else {
        panic!("a message");
    };
    let key = message.ack_key().expect("QoS 1 has a key");
    sup.handle_closed(start, None);
    events(&mut sup);
    let at = sup.poll_timeout().expect("reconnect scheduled");
    reconnect(&mut sup, at, &CONNACK); // session_present = 0: a new session
    assert!(
        sup.ack(at, key).is_err(),
        "the broker may reuse id 9 for a new message"
    );
}

#[test]
fn jitter_seeded_alike_reconnects_alike_and_differently_seeded_do_not() {
    let reconnect_at = |seed: u64| {
        let start = Instant::now();
        let mut sup = connected(start).with_jitter_seed(seed);
        sup.handle_closed(start, None);
        sup.poll_timeout().map(|at| at - start)
    };
    assert_eq!(reconnect_at(1), reconnect_at(1));
    assert_ne!(reconnect_at(1), reconnect_at(2));
}

#[test]
fn a_second_disconnect_ends_with_the_close_under_way_and_both_are_answered() {
    let now = Instant::now();
    let mut sup = connected(now);
    publish(&mut sup, now, QoS::AtLeastOnce, 4).expect("publish accepted");
    // The first waits for the PUBACK, the second joins it while it drains.
    sup.disconnect(now, Duration::from_secs(10), 5);
    sup.disconnect(now, Duration::ZERO, 6);
    write_all(&mut sup, now);
    sup.handle_received(now, &[0x40, 0x02, 0x00, 0x01]);
    write_all(&mut sup, now);
    assert_eq!(actions(&mut sup), [Action::ShutdownWrite]);
    // A third arrives while the write side is shut: the close goes on, so the broker reads
    // DISCONNECT and drops the will.
    sup.disconnect(now, Duration::ZERO, 7);
    assert!(actions(&mut sup).is_empty(), "the close is not cut short");
    let early: Vec<_> = events(&mut sup)
        .into_iter()
        .filter(|e| matches!(e, Event::Completed(Completed::Disconnect(..))))
        .collect();
    assert!(early.is_empty(), "answered when closed: {early:?}");
    sup.handle_closed(now, None);
    let answered = disconnects_answered(&mut sup);
    assert_eq!(answered, [5, 6, 7]);
}

#[test]
fn a_late_end_of_the_previous_transport_does_not_fail_the_next_attempt() {
    let now = Instant::now();
    let mut sup = Sup::new(options(&["tcp://a:1883", "tcp://b:1883"])).expect("supervisor");
    sup.connect(now, 1).expect("connect accepted");
    actions(&mut sup);
    sup.handle_opened(now);
    write_all(&mut sup, now);
    // A refused CONNACK and the broker's end of stream in one read: the supervisor moves on to
    // b before the driver reports the end of a's stream.
    sup.handle_received(now, &CONNACK_NOT_AUTHORISED);
    let next = actions(&mut sup);
    assert_eq!(
        opened_uri(&next).as_deref(),
        Some("tcp://b:1883"),
        "{next:?}"
    );
    sup.handle_closed(now, None);
    assert!(actions(&mut sup).is_empty(), "b's attempt goes on");
    assert!(events(&mut sup).is_empty(), "connect is still trying");
    sup.handle_opened(now);
    write_all(&mut sup, now);
    sup.handle_received(now, &CONNACK);
    assert!(matches!(
        events(&mut sup).first(),
        Some(Event::Completed(Completed::Connect(1, Ok(false))))
    ));
}

#[test]
fn a_disconnect_during_a_requested_close_answers_every_disconnect_once_it_is_closed() {
    let now = Instant::now();
    let mut sup = connected(now);
    sup.disconnect(now, Duration::ZERO, 5);
    write_all(&mut sup, now);
    assert_eq!(actions(&mut sup), [Action::ShutdownWrite]);
    // The broker has not closed yet: a second disconnect waits for the same close.
    sup.disconnect(now, Duration::ZERO, 6);
    assert!(events(&mut sup).is_empty(), "not closed yet");
    sup.handle_closed(now, None);
    let mut answered = disconnects_answered(&mut sup);
    answered.sort_unstable();
    assert_eq!(answered, [5, 6]);
}

#[test]
fn a_disconnect_while_draining_answers_the_draining_disconnect_too() {
    let now = Instant::now();
    let mut sup = connected(now);
    publish(&mut sup, now, QoS::AtLeastOnce, 10).expect("publish accepted");
    write_all(&mut sup, now);
    sup.disconnect(now, Duration::from_secs(5), 5);
    sup.disconnect(now, Duration::ZERO, 6);
    write_all(&mut sup, now);
    sup.handle_closed(now, None);
    let answered = disconnects_answered(&mut sup);
    assert!(
        answered.contains(&5) && answered.contains(&6),
        "{answered:?}"
    );
}

/// A supervisor connected through `connect` and subscribed to `t/#` (granted), its events
/// drained.
fn subscribed_to_t(now: Instant) -> Sup {
    let mut sup = connected(now);
    let filters = vec![SubscribeFilter::new(
        TopicFilter::try_from("t/#").expect("filter"),
        QoS::AtLeastOnce,
    )];
    sup.subscribe(now, filters, 2).expect("subscribe accepted");
    write_all(&mut sup, now);
    sup.handle_received(now, &[0x90, 0x03, 0x00, 0x01, 0x01]);
    events(&mut sup);
    sup
}

/// The SUBSCRIBE packets in `bytes`, as their filter lists.
fn subscribes(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut decoder = sansmq::packet::PacketDecoder::new(1 << 20);
    decoder.extend_from_slice(bytes);
    std::iter::from_fn(|| decoder.next_packet().expect("valid packets"))
        .filter_map(|packet| match packet {
            sansmq::packet::Packet::Subscribe(s) => {
                Some(s.filters.iter().map(|f| f.filter.to_string()).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_restore_lost_before_its_suback_is_sent_again_not_doubled() {
    let start = Instant::now();
    let mut sup = subscribed_to_t(start);
    // Two reconnects without a session; the first restore's SUBACK never comes.
    let mut at = start;
    let mut restored = Vec::new();
    for _ in 0..2 {
        sup.handle_closed(at, None);
        events(&mut sup);
        at = sup.poll_timeout().expect("reconnect scheduled");
        reconnect(&mut sup, at, &CONNACK);
        events(&mut sup);
        restored.push(subscribes(&write_all(&mut sup, at)));
    }
    assert_eq!(restored[0], [["t/#"]], "the first reconnect restores t/#");
    assert_eq!(
        restored[1],
        [["t/#"]],
        "the unanswered restore goes out again, and no second one asks for t/# too"
    );
}

#[test]
fn a_restore_kept_across_a_failed_connect_is_not_doubled_either() {
    let start = Instant::now();
    let mut sup = subscribed_to_t(start);
    // A reconnect without a session restores t/#; the SUBACK never comes.
    sup.handle_closed(start, None);
    events(&mut sup);
    let at = sup.poll_timeout().expect("reconnect scheduled");
    reconnect(&mut sup, at, &CONNACK);
    events(&mut sup);
    assert_eq!(subscribes(&write_all(&mut sup, at)), [["t/#"]]);
    sup.handle_closed(at, None);
    // The application's connect fails: what waits is failed, but the core keeps the restore.
    sup.connect(at, 3).expect("connect accepted");
    actions(&mut sup);
    sup.handle_open_failed(
        at,
        Error::Dns {
            host: "a".into(),
            reason: "no such host".into(),
        },
    );
    events(&mut sup);
    connect(&mut sup, at, 4);
    events(&mut sup);
    assert_eq!(
        subscribes(&write_all(&mut sup, at)),
        [["t/#"]],
        "t/# is asked for once"
    );
}

#[test]
fn a_connection_lost_while_a_disconnect_drains_ends_the_disconnect_without_reconnecting() {
    let now = Instant::now();
    let mut sup = connected(now);
    publish(&mut sup, now, QoS::AtLeastOnce, 10).expect("publish accepted");
    write_all(&mut sup, now);
    sup.disconnect(now, Duration::from_secs(5), 5);
    // The broker goes away before acknowledging: the drain ends with the connection.
    sup.handle_closed(now, None);
    let seen = events(&mut sup);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Completed(Completed::Disconnect(5, Ok(()))))),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::ConnectionLost { .. })),
        "{seen:?}"
    );
    assert_eq!(
        sup.poll_timeout(),
        None,
        "no reconnect after a requested disconnect"
    );
}

#[test]
fn a_message_published_while_reconnecting_leaves_after_the_restoring_subscribe() {
    let start = Instant::now();
    let mut sup = subscribed_to_t(start);
    sup.handle_closed(start, None);
    events(&mut sup);
    // Published to its own subscription while away: the broker must have the subscription again
    // before the message, or it never comes back.
    publish(&mut sup, start, QoS::AtLeastOnce, 3).expect("queued while away");
    let at = sup.poll_timeout().expect("reconnect scheduled");
    sup.handle_timeout(at);
    actions(&mut sup);
    sup.handle_opened(at);
    write_all(&mut sup, at);
    sup.handle_received(at, &CONNACK); // session_present = 0
    let after_connack = write_all(&mut sup, at);
    let subscribe = after_connack.iter().position(|&b| b == 0x82);
    let publish = after_connack.iter().position(|&b| b & 0xF0 == 0x30);
    assert!(
        matches!((subscribe, publish), (Some(s), Some(p)) if s < p),
        "SUBSCRIBE first: {after_connack:?}"
    );
}

/// The QoS 0 messages `out` says were written, by waiter.
fn completed_written(out: &mut std::collections::VecDeque<Event<Numbered>>) -> Vec<u32> {
    out.drain(..)
        .filter_map(|e| match e {
            Event::Completed(Completed::Publish(waiter, _, Ok(()))) => Some(waiter),
            _ => None,
        })
        .collect()
}

#[test]
fn queued_messages_complete_with_the_first_message_encoded_after_them() {
    let mut waiters = Waiters::<Numbered>::default();
    let mut out = std::collections::VecDeque::new();
    waiters.await_written(Some(10), 1);
    waiters.await_written(None, 2); // queued in the core behind 1
    waiters.await_written(None, 3);
    waiters.await_written(Some(40), 4); // encoded once 2 and 3 were
    waiters.await_written(None, 5);

    waiters.complete_written(9, false, &mut out);
    assert!(completed_written(&mut out).is_empty(), "nothing is out yet");
    waiters.complete_written(10, false, &mut out);
    assert_eq!(completed_written(&mut out), [1]);
    waiters.complete_written(39, false, &mut out);
    assert!(
        completed_written(&mut out).is_empty(),
        "4 has one byte left"
    );
    waiters.complete_written(40, false, &mut out);
    assert_eq!(completed_written(&mut out), [2, 3, 4], "written in order");
    waiters.complete_written(1_000, false, &mut out);
    assert!(
        completed_written(&mut out).is_empty(),
        "5's place is not known"
    );
    waiters.complete_written(1_000, true, &mut out);
    assert_eq!(
        completed_written(&mut out),
        [5],
        "everything accepted is out"
    );
    assert!(!waiters.awaits_writes());
}

mod mqtt5;
mod store;
