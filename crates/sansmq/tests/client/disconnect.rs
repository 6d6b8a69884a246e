use std::time::Duration;

use sansmq::packet::{Disconnect, Packet, PubComp, PubRec, PubRel, QoS};
use sansmq::{CommandError, DisconnectReason, Event};

use crate::util::{Scripted, config};

#[test]
fn disconnect_without_drain_sends_disconnect_at_once() {
    let mut s = Scripted::connected(config());
    s.publish("t", QoS::AtLeastOnce, b"x");
    let _ = s.sent();
    s.client.disconnect(s.now, Duration::ZERO).unwrap();
    assert_eq!(s.sent(), [Packet::Disconnect(Disconnect::new())]);
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::Requested
        }]
    );
    assert_eq!(s.client.inflight_len(), 1, "kept in the session");
    assert_eq!(
        s.client.disconnect(s.now, Duration::ZERO),
        Err(CommandError::NotConnected)
    );
}

#[test]
fn graceful_disconnect_waits_for_qos2_to_complete() {
    let mut s = Scripted::connected(config());
    let pid = s.publish("t", QoS::ExactlyOnce, b"x").unwrap();
    let _ = s.sent();
    s.client.disconnect(s.now, Duration::from_secs(5)).unwrap();
    assert!(s.sent().is_empty());
    assert!(!s.client.is_connected());
    let refused = s.client.publish(
        s.now,
        crate::util::topic("t"),
        QoS::AtMostOnce,
        false,
        bytes::Bytes::new(),
    );
    assert_eq!(refused, Err(CommandError::NotConnected));
    s.deliver(PubRec::new(pid));
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(pid))]);
    s.deliver(PubComp::new(pid));
    assert_eq!(s.sent(), [Packet::Disconnect(Disconnect::new())]);
    assert_eq!(
        s.events(),
        [
            Event::Published {
                packet_id: pid,
                qos: QoS::ExactlyOnce
            },
            Event::Disconnected {
                reason: DisconnectReason::Requested
            },
        ]
    );
}

#[test]
fn graceful_disconnect_gives_up_at_its_deadline() {
    let mut s = Scripted::connected(config());
    s.publish("t", QoS::AtLeastOnce, b"x");
    let _ = s.sent();
    s.client.disconnect(s.now, Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(5))
    );
    s.fire_timeout();
    assert_eq!(s.sent(), [Packet::Disconnect(Disconnect::new())]);
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::Requested
        }]
    );
    assert_eq!(s.client.inflight_len(), 1);
}

#[test]
fn a_transport_failing_while_flushing_disconnect_leaves_nothing_to_write() {
    let mut s = Scripted::connected(config());
    s.client.disconnect(s.now, Duration::ZERO).unwrap();
    assert!(
        s.client.poll_transmit().is_some(),
        "DISCONNECT waits to be written"
    );
    s.client.handle_closed(s.now);
    assert_eq!(s.client.poll_transmit(), None);
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::Requested
        }]
    );
}
