//! Durations from users may be anything up to `Duration::MAX` (issue 21 item 2): every deadline
//! saturates to "no deadline" instead of overflowing `Instant + Duration`.

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sansmq::packet::{ConnAck, ConnectReturnCode, PubRel, QoS};
use sansmq::{CommandError, DisconnectReason, Event};

use crate::util::{Scripted, config, id, topic};

#[test]
fn connack_timeout_of_duration_max_is_no_deadline() {
    let mut cfg = config();
    cfg.connack_timeout = Duration::MAX;
    let mut s = Scripted::new(cfg);
    s.client.connect(s.now).unwrap();
    assert_eq!(s.client.poll_timeout(), None);
    s.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(s.events().is_empty(), "still waiting for CONNACK");
}

#[test]
fn keep_alive_of_duration_max_is_refused_not_a_panic() {
    let mut cfg = config();
    cfg.keep_alive = Duration::MAX;
    let mut s = Scripted::new(cfg);
    assert!(matches!(
        s.client.connect(s.now),
        Err(CommandError::InvalidConfig(_))
    ));
}

#[test]
fn keep_alive_of_duration_max_set_while_connected_is_no_deadline() {
    let mut s = Scripted::connected(config());
    s.client.config_mut().keep_alive = Duration::MAX;
    s.client.config_mut().ping_timeout = Duration::MAX;
    assert_eq!(s.client.poll_timeout(), None);
    s.deliver(PubRel::new(id(1))); // a PUBCOMP waits: the stall limit is the keep-alive
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn ping_timeout_of_duration_max_never_expires() {
    let mut cfg = config();
    cfg.ping_timeout = Duration::MAX;
    let mut s = Scripted::connected(cfg);
    s.fire_timeout();
    let _ = s.sent(); // PINGREQ written
    assert_eq!(s.client.poll_timeout(), None);
    s.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(s.client.is_connected());
}

#[test]
fn disconnect_with_a_drain_of_duration_max_waits_for_the_acks() {
    let mut s = Scripted::connected(config());
    let id = s.publish("t", QoS::AtLeastOnce, b"x").unwrap();
    let _ = s.sent();
    s.client.disconnect(s.now, Duration::MAX).unwrap();
    s.deliver(sansmq::packet::PubAck::new(id));
    assert!(matches!(
        s.events().as_slice(),
        [
            Event::Published { .. },
            Event::Disconnected {
                reason: DisconnectReason::Requested
            }
        ]
    ));
}

/// Any duration, with the extremes (zero, one nanosecond short of a second, `Duration::MAX`)
/// drawn often.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::new(u64::MAX, 0)),
        Just(Duration::from_nanos(999_999_999)),
        (0..100_000u64).prop_map(Duration::from_millis),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

proptest! {
    /// connect, CONNACK, publish, timeouts at every deadline, disconnect with any drain and
    /// changes of the configuration while connected: no duration makes the client panic.
    #[test]
    fn no_duration_makes_the_client_panic(
        keep_alive in duration(),
        ping_timeout in duration(),
        connack_timeout in duration(),
        drain in duration(),
        later in duration(),
        changed in duration(),
    ) {
        let mut cfg = config();
        cfg.keep_alive = keep_alive;
        cfg.ping_timeout = ping_timeout;
        cfg.connack_timeout = connack_timeout;
        let mut s = Scripted::new(cfg);
        if s.client.connect(s.now).is_err() {
            return Ok(()); // a keep-alive CONNECT cannot carry is refused, and that is all
        }
        let start = s.now;
        let step = |s: &mut Scripted| {
            if let Some(at) = s.client.poll_timeout() {
                s.now = s.now.max(at);
            }
            s.client.handle_timeout(s.now);
            if let Some(at) = start.checked_add(later) {
                s.client.handle_timeout(at.max(s.now));
            }
        };
        let mut wire = bytes::BytesMut::new();
        ConnAck::new(ConnectReturnCode::Accepted).encode(&mut wire).unwrap();
        s.client.handle_received(s.now, &wire);
        let _ = s.client.publish(s.now, topic("t"), QoS::ExactlyOnce, false, Bytes::new());
        step(&mut s);
        s.client.config_mut().keep_alive = changed;
        s.client.config_mut().ping_timeout = changed;
        s.deliver(PubRel::new(id(1)));
        step(&mut s);
        let _ = s.client.publish(s.now, topic("t"), QoS::AtLeastOnce, false, Bytes::new());
        let _ = s.client.disconnect(s.now, drain);
        step(&mut s);
        let _ = s.client.disconnect(s.now, drain);
        s.client.handle_transmitted(s.now, usize::MAX);
        step(&mut s);
        let _ = s.events();
    }
}
