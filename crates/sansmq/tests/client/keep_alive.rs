use std::time::Duration;

use sansmq::packet::{Packet, QoS};
use sansmq::{DisconnectReason, Event};

use crate::util::{Scripted, config};

#[test]
fn pingreq_goes_out_after_keep_alive_of_silence() {
    let mut s = Scripted::connected(config()); // keep-alive 60 s
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(60))
    );
    s.advance(Duration::from_secs(30));
    s.publish("t", QoS::AtMostOnce, b"x"); // sending resets the interval (MQTT-3.1.2-23)
    let _ = s.sent();
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(60))
    );
    s.fire_timeout();
    assert_eq!(s.sent(), [Packet::PingReq]);
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(10))
    );
    s.deliver(Packet::PingResp);
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(60))
    );
    assert!(s.client.is_connected());
}

#[test]
fn keepalive_timeout_disconnects() {
    let mut s = Scripted::connected(config());
    s.fire_timeout();
    assert_eq!(s.sent(), [Packet::PingReq]);
    s.advance(Duration::from_secs(9));
    assert!(s.events().is_empty());
    s.fire_timeout();
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::KeepAliveTimeout
        }]
    );
    assert!(!s.client.is_connected());
    assert!(s.sent().is_empty());
}

#[test]
fn spurious_timeouts_are_harmless() {
    let mut s = Scripted::connected(config());
    for _ in 0..5 {
        s.client.handle_timeout(s.now);
    }
    assert!(s.sent().is_empty());
    assert!(s.events().is_empty());
    s.fire_timeout();
    s.client.handle_timeout(s.now);
    assert_eq!(s.sent(), [Packet::PingReq], "one PINGREQ, not two");
}

#[test]
fn keep_alive_zero_disables_pings() {
    let mut cfg = config();
    cfg.keep_alive = Duration::ZERO;
    let mut s = Scripted::connected(cfg);
    assert_eq!(s.client.poll_timeout(), None);
    s.advance(Duration::from_secs(100_000));
    assert!(s.sent().is_empty());
}
