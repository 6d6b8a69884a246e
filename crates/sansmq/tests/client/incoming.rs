use sansmq::packet::{Packet, PubAck, PubComp, PubRec, PubRel, QoS};
use sansmq::{CommandError, Event};

use crate::util::{Scripted, config, id, incoming};

fn messages(events: Vec<Event>) -> Vec<Vec<u8>> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(p) => Some(p.payload_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn incoming_qos0_and_qos1_are_delivered_and_qos1_acked() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("a", QoS::AtMostOnce, None, b"0"));
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(5), b"1"));
    assert_eq!(messages(s.events()), [b"0".to_vec(), b"1".to_vec()]);
    assert_eq!(s.sent(), [Packet::PubAck(PubAck::new(id(5)))]);
}

#[test]
fn unsubscribed_publish_is_delivered() {
    let mut s = Scripted::connected(config());
    assert_eq!(s.client.subscriptions().count(), 0);
    s.deliver(incoming(
        "parent/p2p/test-client",
        QoS::AtMostOnce,
        None,
        b"p2p",
    ));
    assert_eq!(messages(s.events()), [b"p2p".to_vec()]);
}

#[test]
fn incoming_qos2_runs_pubrec_pubrel_pubcomp() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(9), b"2"));
    assert_eq!(messages(s.events()), [b"2".to_vec()]);
    assert_eq!(s.sent(), [Packet::PubRec(PubRec::new(id(9)))]);
    s.deliver(PubRel::new(id(9)));
    assert_eq!(s.sent(), [Packet::PubComp(PubComp::new(id(9)))]);
    // After PUBCOMP the identifier is free: the same id now is a new message.
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(9), b"new"));
    assert_eq!(messages(s.events()), [b"new".to_vec()]);
}

#[test]
fn qos2_duplicate_not_redelivered() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(9), b"once"));
    assert_eq!(messages(s.events()).len(), 1);
    let _ = s.sent();
    let mut again = incoming("a", QoS::ExactlyOnce, Some(9), b"once");
    if let Packet::Publish(p) = &mut again {
        p.dup = true;
    }
    s.deliver(again);
    assert!(s.events().is_empty(), "delivered twice");
    assert_eq!(
        s.sent(),
        [Packet::PubRec(PubRec::new(id(9)))],
        "PUBREC is repeated"
    );
}

#[test]
fn qos2_duplicate_not_redelivered_after_reconnect() {
    let mut cfg = config();
    cfg.clean_session = false;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(4), b"once"));
    assert_eq!(messages(s.events()).len(), 1);
    s.drop_connection();
    let _ = s.events();
    s.connect(true);
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(4), b"once"));
    assert!(messages(s.events()).is_empty());
    assert_eq!(s.sent(), [Packet::PubRec(PubRec::new(id(4)))]);
}

#[test]
fn manual_acks_go_out_in_arrival_order() {
    let mut cfg = config();
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"1"));
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(2), b"2"));
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(3), b"3"));
    assert_eq!(messages(s.events()).len(), 3);
    assert!(s.sent().is_empty(), "nothing is acknowledged automatically");

    s.client.ack(s.now, id(3)).unwrap();
    s.client.ack(s.now, id(2)).unwrap();
    assert!(s.sent().is_empty(), "1 has not been acknowledged yet");
    s.client.ack(s.now, id(1)).unwrap();
    assert_eq!(
        s.sent(),
        [
            Packet::PubAck(PubAck::new(id(1))),
            Packet::PubRec(PubRec::new(id(2))),
            Packet::PubAck(PubAck::new(id(3))),
        ]
    );
    assert_eq!(
        s.client.ack(s.now, id(1)),
        Err(CommandError::UnknownAck(id(1)))
    );
}

#[test]
fn manual_ack_mode_does_not_redeliver_an_unacked_resend() {
    let mut cfg = config();
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"1"));
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"1"));
    assert_eq!(messages(s.events()).len(), 1);
    s.client.ack(s.now, id(1)).unwrap();
    assert_eq!(s.sent(), [Packet::PubAck(PubAck::new(id(1)))]);
}

#[test]
fn ack_in_automatic_mode_is_refused() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"1"));
    assert_eq!(
        s.client.ack(s.now, id(1)),
        Err(CommandError::UnknownAck(id(1)))
    );
}

/// Found by the simulation (seed 38): a QoS 2 message acknowledged by the application, re-sent by
/// the broker (its PUBREC was lost, or the broker re-sends periodically) after a QoS 1 message the
/// application has not acknowledged yet. The repeated PUBREC must wait behind that PUBACK.
#[test]
fn manual_acks_keep_arrival_order_for_a_resent_qos2() {
    let mut cfg = config();
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(2), b"2"));
    assert_eq!(messages(s.events()), [b"2".to_vec()]);
    s.client.ack(s.now, id(2)).unwrap();
    assert_eq!(s.sent(), [Packet::PubRec(PubRec::new(id(2)))]);

    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"1"));
    let mut again = incoming("a", QoS::ExactlyOnce, Some(2), b"2");
    if let Packet::Publish(p) = &mut again {
        p.dup = true;
    }
    s.deliver(again);
    assert_eq!(
        messages(s.events()),
        [b"1".to_vec()],
        "2 is not delivered twice"
    );
    assert!(s.sent().is_empty(), "PUBREC 2 would overtake PUBACK 1");
    s.client.ack(s.now, id(1)).unwrap();
    assert_eq!(
        s.sent(),
        [
            Packet::PubAck(PubAck::new(id(1))),
            Packet::PubRec(PubRec::new(id(2))),
        ]
    );
}

#[test]
fn manual_ack_mode_tracks_an_id_the_broker_reuses_across_qos() {
    let mut cfg = config();
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"q1"));
    s.deliver(incoming("a", QoS::ExactlyOnce, Some(1), b"q2"));
    assert_eq!(messages(s.events()).len(), 2);
    s.client.ack(s.now, id(1)).unwrap(); // the QoS 1 message, first in line
    assert_eq!(s.sent(), [Packet::PubAck(PubAck::new(id(1)))]);
    // The QoS 2 message with id 1 still waits for its ack: a re-send is not delivered again.
    s.deliver(incoming("a", QoS::AtLeastOnce, Some(1), b"q1"));
    assert!(messages(s.events()).is_empty());
}
