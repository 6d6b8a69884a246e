//! A broker that keeps sending but stops reading (issue 21 item 1): repeats of one packet queue
//! one answer, not one each, and a transmit buffer that nobody drains ends the connection.

use std::time::Duration;

use sansmq::packet::{Packet, PubComp, PubRec, PubRel, QoS};
use sansmq::{DisconnectReason, Event};

use crate::util::{Scripted, config, id, incoming};

/// Bytes waiting in the transmit buffer.
fn pending(s: &Scripted) -> usize {
    s.client.poll_transmit().map_or(0, <[u8]>::len)
}

#[test]
fn repeated_pubrels_queue_one_pubcomp_while_it_is_unwritten() {
    let mut s = Scripted::connected(config());
    for _ in 0..1000 {
        s.deliver(PubRel::new(id(5)));
    }
    assert_eq!(pending(&s), 4, "one PUBCOMP for a thousand PUBRELs");
    // A partial write leaves it unwritten: a repeat still needs nothing more.
    s.client.handle_transmitted(s.now, 3);
    s.deliver(PubRel::new(id(5)));
    assert_eq!(pending(&s), 1);
    s.client.handle_transmitted(s.now, 1);
    // Written: the next PUBREL gets its own answer.
    s.deliver(PubRel::new(id(5)));
    assert_eq!(s.sent(), [Packet::PubComp(PubComp::new(id(5)))]);
}

#[test]
fn a_repeated_qos2_publish_queues_one_pubrec_while_it_is_unwritten() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"once"));
    for _ in 0..1000 {
        s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"once"));
    }
    assert_eq!(s.events().len(), 1, "delivered once");
    assert_eq!(s.sent(), [Packet::PubRec(PubRec::new(id(3)))]);
    s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"once"));
    assert_eq!(
        s.sent(),
        [Packet::PubRec(PubRec::new(id(3)))],
        "the earlier PUBREC was written: the repeat is answered"
    );
}

#[test]
fn a_repeated_qos2_publish_in_manual_ack_mode_queues_one_pubrec() {
    let mut cfg = config();
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"once"));
    s.client.ack(s.now, id(3)).unwrap();
    for _ in 0..1000 {
        s.deliver(incoming("t", QoS::ExactlyOnce, Some(3), b"once"));
    }
    assert_eq!(s.events().len(), 1);
    assert_eq!(s.sent(), [Packet::PubRec(PubRec::new(id(3)))]);
}

#[test]
fn repeated_pubrecs_queue_one_pubrel_while_it_is_unwritten() {
    let mut s = Scripted::connected(config());
    let ours = s.publish("t", QoS::ExactlyOnce, b"x").unwrap();
    let _ = s.sent();
    for _ in 0..1000 {
        s.deliver(PubRec::new(ours));
    }
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(ours))]);
}

#[test]
fn a_transmit_buffer_nobody_takes_ends_the_connection_after_keep_alive() {
    let mut s = Scripted::connected(config()); // keep-alive 60 s
    s.publish("t", QoS::AtLeastOnce, b"stuck");
    let stuck_since = s.now;
    assert_eq!(
        s.client.poll_timeout(),
        Some(stuck_since + Duration::from_secs(60))
    );
    // Progress, however small, restarts the interval.
    s.advance(Duration::from_secs(30));
    s.client.handle_transmitted(s.now, 1);
    let last_progress = s.now;
    // The broker keeps sending and never reads: its PUBRELs keep the client busy (and push the
    // PINGREQ back), but nothing is taken from the buffer.
    for i in 1..=50u16 {
        s.advance(Duration::from_secs(1));
        s.deliver(PubRel::new(id(i)));
    }
    assert_eq!(
        s.client.poll_timeout(),
        Some(last_progress + Duration::from_secs(60))
    );
    s.fire_timeout();
    let events = s.events();
    assert_eq!(
        events,
        [Event::Disconnected {
            reason: DisconnectReason::TransmitStalled
        }]
    );
    assert!(
        DisconnectReason::TransmitStalled
            .to_string()
            .contains("stopped reading")
    );
    assert_eq!(pending(&s), 0, "the dead connection's bytes are dropped");
}

#[test]
fn with_keep_alive_off_the_ping_timeout_bounds_a_stall() {
    let mut cfg = config();
    cfg.keep_alive = Duration::ZERO;
    let mut s = Scripted::connected(cfg); // ping timeout 10 s
    assert_eq!(s.client.poll_timeout(), None, "nothing waits to be written");
    s.deliver(PubRel::new(id(1)));
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(10))
    );
    s.fire_timeout();
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::TransmitStalled
        }]
    );
}

#[test]
fn pingresp_is_awaited_from_when_the_pingreq_is_written() {
    let mut s = Scripted::connected(config());
    s.fire_timeout();
    let pinged = s.now;
    assert!(matches!(s.client.poll_transmit(), Some([0xC0, 0x00])));
    // Not written yet: the broker cannot answer it; only the stall limit runs.
    assert_eq!(
        s.client.poll_timeout(),
        Some(pinged + Duration::from_secs(60))
    );
    s.advance(Duration::from_secs(20));
    assert_eq!(s.sent(), [Packet::PingReq]);
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(10))
    );
    s.fire_timeout();
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::KeepAliveTimeout
        }]
    );
}
