use std::time::Duration;

use sansmq::packet::{ConnAck, ConnectReturnCode, Packet, Password, PubAck, QoS};
use sansmq::{CommandError, DisconnectReason, Event, MqttString};

use crate::util::{Scripted, config, id};

#[test]
fn connect_sends_connect_with_the_configured_fields() {
    let mut cfg = config();
    cfg.keep_alive = Duration::from_millis(30_500); // rounded up for the broker
    cfg.clean_session = false;
    cfg.username = Some(MqttString::try_from("user").unwrap());
    cfg.password = Some(Password::from("secret"));
    let mut s = Scripted::new(cfg);
    s.client.connect(s.now).unwrap();
    let Packet::Connect(connect) = s.sent_one() else {
        panic!("expected CONNECT");
    };
    assert_eq!(connect.client_id, "test-client");
    assert_eq!(connect.keep_alive, 31);
    assert!(!connect.clean_session);
    assert_eq!(connect.username.unwrap(), "user");
    assert_eq!(
        format!("{:?}", connect.password),
        "Some(Password(<6 bytes redacted>))"
    );
    assert!(!s.client.is_connected());
    s.deliver(ConnAck::new(ConnectReturnCode::Accepted));
    assert!(s.client.is_connected());
    assert_eq!(
        s.events(),
        [Event::Connected {
            session_present: false
        }]
    );
}

#[test]
fn connack_timeout_disconnects() {
    let mut s = Scripted::new(config());
    s.client.connect(s.now).unwrap();
    let _ = s.sent();
    assert_eq!(
        s.client.poll_timeout(),
        Some(s.now + Duration::from_secs(10))
    );
    s.advance(Duration::from_secs(9));
    assert!(s.events().is_empty());
    s.fire_timeout();
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::ConnAckTimeout
        }]
    );
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn refused_connack_reports_the_code() {
    let mut s = Scripted::new(config());
    s.client.connect(s.now).unwrap();
    let _ = s.sent();
    s.deliver(ConnAck::new(ConnectReturnCode::BadUserNameOrPassword));
    let events = s.events();
    assert_eq!(
        events,
        [Event::Disconnected {
            reason: DisconnectReason::Refused(ConnectReturnCode::BadUserNameOrPassword)
        }]
    );
    let Event::Disconnected { reason } = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        reason.to_string(),
        "the broker refused the connection: 4 (bad user name or password)"
    );
    assert!(s.sent().is_empty());
}

#[test]
fn connect_twice_is_refused() {
    let mut s = Scripted::new(config());
    s.client.connect(s.now).unwrap();
    assert_eq!(s.client.connect(s.now), Err(CommandError::AlreadyConnected));
}

#[test]
fn invalid_configs_are_refused_at_connect() {
    let mut cfg = config();
    cfg.keep_alive = Duration::from_secs(65_536);
    assert!(matches!(
        Scripted::new(cfg).client.connect(crate::util::epoch()),
        Err(CommandError::InvalidConfig(_))
    ));
    let mut cfg = config();
    cfg.password = Some(Password::from("p"));
    assert!(matches!(
        Scripted::new(cfg).client.connect(crate::util::epoch()),
        Err(CommandError::InvalidConfig(_))
    ));
    let mut cfg = config();
    cfg.max_transmit_buffer = 0;
    assert!(matches!(
        Scripted::new(cfg).client.connect(crate::util::epoch()),
        Err(CommandError::InvalidConfig(_))
    ));
    let mut cfg = config();
    cfg.max_inflight = 0;
    assert!(matches!(
        Scripted::new(cfg).client.connect(crate::util::epoch()),
        Err(CommandError::InvalidConfig(_))
    ));
}

#[test]
fn publishes_made_offline_go_out_after_connack() {
    let mut s = Scripted::new(config());
    let first = s.publish("a", QoS::AtLeastOnce, b"1");
    s.publish("a", QoS::AtMostOnce, b"2");
    assert_eq!(s.client.queued_len(), 2);
    let sent = s.connect(false);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(matches!(&sent[0], Packet::Publish(p) if p.packet_id == first && p.payload() == b"1"));
    assert!(matches!(&sent[1], Packet::Publish(p) if p.payload() == b"2"));
    s.deliver(PubAck::new(id(1)));
    assert_eq!(
        s.events(),
        [Event::Published {
            packet_id: id(1),
            qos: QoS::AtLeastOnce
        }]
    );
}
