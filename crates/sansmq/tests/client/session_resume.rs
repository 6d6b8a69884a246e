use sansmq::client::{SessionSnapshot, UnackedPolicy};
use sansmq::packet::{Packet, PubAck, PubComp, PubRec, PubRel, QoS};
use sansmq::{Client, Event};

use crate::util::{Scripted, config, id, incoming};

/// Three QoS 1/2 messages in flight, the second already released (PUBREC received).
fn three_in_flight(clean_session: bool) -> (Scripted, Vec<sansmq::packet::PacketId>) {
    let mut cfg = config();
    cfg.clean_session = clean_session;
    let mut s = Scripted::connected(cfg);
    let ids = vec![
        s.publish("t", QoS::AtLeastOnce, b"1").unwrap(),
        s.publish("t", QoS::ExactlyOnce, b"2").unwrap(),
        s.publish("t", QoS::ExactlyOnce, b"3").unwrap(),
    ];
    let _ = s.sent();
    s.deliver(PubRec::new(ids[1]));
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(ids[1]))]);
    s.drop_connection();
    assert!(matches!(
        s.events().as_slice(),
        [Event::Disconnected { .. }]
    ));
    (s, ids)
}

#[test]
fn resend_after_reconnect_sets_dup() {
    let (mut s, ids) = three_in_flight(false);
    let sent = s.connect(true);
    assert_eq!(sent.len(), 3, "{sent:?}");
    // Original order (MQTT-4.4.0-1, MQTT-4.6.0-1): PUBLISH 1 (DUP), PUBREL 2, PUBLISH 3 (DUP).
    assert!(matches!(&sent[0], Packet::Publish(p) if p.dup && p.packet_id == Some(ids[0])));
    assert_eq!(sent[1], Packet::PubRel(PubRel::new(ids[1])));
    assert!(matches!(&sent[2], Packet::Publish(p) if p.dup && p.packet_id == Some(ids[2])));
    s.deliver(PubAck::new(ids[0]));
    s.deliver(PubComp::new(ids[1]));
    s.deliver(PubRec::new(ids[2]));
    s.deliver(PubComp::new(ids[2]));
    let published: Vec<_> = s
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Published { packet_id, .. } => Some(packet_id),
            _ => None,
        })
        .collect();
    assert_eq!(published, ids);
}

/// The three messages of [`three_in_flight`] went out again in their original order: PUBLISH 1
/// and 3 with DUP=1 (MQTT-3.3.1-1), PUBREL 2 with its identifier (MQTT-4.4.0-1).
fn assert_resent_with_dup_and_pubrel(sent: &[Packet], ids: &[sansmq::packet::PacketId]) {
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        matches!(&sent[0], Packet::Publish(p) if p.dup && p.packet_id == Some(ids[0])),
        "{sent:?}"
    );
    assert_eq!(sent[1], Packet::PubRel(PubRel::new(ids[1])));
    assert!(
        matches!(&sent[2], Packet::Publish(p) if p.dup && p.packet_id == Some(ids[2])),
        "{sent:?}"
    );
}

/// Issue 11 item 1: a broker that lost the session still gets every PUBLISH with DUP=1 and the
/// PUBREL again, and nothing is reported `Published` at the reconnect.
#[test]
fn session_present_zero_resends_publishes_with_dup_and_pubrels() {
    let (mut s, ids) = three_in_flight(false);
    assert_eq!(
        s.accept(false),
        [Event::Connected {
            session_present: false
        }],
        "nothing completes at the reconnect"
    );
    assert_resent_with_dup_and_pubrel(&s.sent(), &ids);
    assert_eq!(s.client.inflight_len(), 3);
}

/// A client that connects with clean session 1 still holds its messages: they go out again as
/// new messages of the new session, but with DUP=1 like every re-sent PUBLISH.
#[test]
fn clean_session_reconnect_resends_held_messages_with_dup() {
    let (mut s, ids) = three_in_flight(true);
    let _ = s.accept(false);
    assert_resent_with_dup_and_pubrel(&s.sent(), &ids);
}

/// A QoS 2 message whose PUBREC had arrived is complete only at PUBCOMP: the broker that lost
/// the session answers the re-sent PUBREL with PUBCOMP (MQTT-4.3.3).
#[test]
fn released_qos2_message_completes_only_at_pubcomp_after_session_loss() {
    let (mut s, ids) = three_in_flight(false);
    let _ = s.accept(false);
    let _ = s.sent();
    s.deliver(PubRec::new(ids[2]));
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(ids[2]))]);
    assert!(s.events().is_empty(), "PUBREC completes nothing");
    s.deliver(PubComp::new(ids[1]));
    assert_eq!(
        s.events(),
        [Event::Published {
            packet_id: ids[1],
            qos: QoS::ExactlyOnce
        }]
    );
    s.deliver(PubComp::new(ids[2]));
    s.deliver(PubAck::new(ids[0]));
    assert_eq!(s.events().len(), 2);
    assert_eq!(s.client.inflight_len(), 0);
}

#[test]
fn session_present_zero_policy_discard_drops_and_reports() {
    let (mut s, ids) = three_in_flight(true);
    s.client.config_mut().unacked_policy = UnackedPolicy::Discard;
    assert_eq!(
        s.accept(false),
        [
            Event::Connected {
                session_present: false
            },
            Event::Dropped { packet_id: ids[0] },
            Event::Dropped { packet_id: ids[1] },
            Event::Dropped { packet_id: ids[2] },
        ]
    );
    assert!(s.sent().is_empty());
    assert_eq!(s.client.inflight_len(), 0);
}

#[test]
fn snapshot_restores_a_session_in_a_new_client() {
    let (s, ids) = three_in_flight(false);
    let mut snapshot = s.client.snapshot();
    assert_eq!(snapshot.inflight.len(), 3);
    assert!(snapshot.inflight[1].released);

    let mut restored = Scripted::new(config());
    restored.client = Client::with_session(s.client.config().clone(), snapshot.clone()).unwrap();
    assert_eq!(restored.client.snapshot(), snapshot);
    let sent = restored.connect(true);
    assert!(matches!(&sent[0], Packet::Publish(p) if p.dup && p.packet_id == Some(ids[0])));
    assert_eq!(sent[1], Packet::PubRel(PubRel::new(ids[1])));
    // A new message never takes an identifier the restored session holds.
    let fresh = restored.publish("t", QoS::AtLeastOnce, b"4").unwrap();
    assert!(!ids.contains(&fresh));

    // Inconsistent snapshots are refused.
    snapshot.inflight[0].publish.packet_id = Some(id(ids[2].get()));
    assert!(Client::with_session(config(), snapshot).is_err());
    assert!(Client::with_session(config(), SessionSnapshot::default()).is_ok());
}

/// Found by the simulation (seed 668): in manual-ack mode, acks held for messages of a session
/// the broker has lost must not survive `session_present = 0`. The new session reuses identifiers:
/// a new message under a held identifier was taken for a re-send and never delivered, and the old
/// ack then acknowledged it to the broker.
#[test]
fn session_present_zero_drops_acks_held_for_the_lost_session() {
    let mut cfg = config();
    cfg.clean_session = false;
    cfg.manual_acks = true;
    let mut s = Scripted::connected(cfg);
    s.deliver(incoming("t", QoS::AtLeastOnce, Some(1), b"old"));
    assert_eq!(s.events().len(), 1);
    s.drop_connection();
    let _ = s.events();
    assert!(
        s.connect(false).is_empty(),
        "no ack for the lost session's message"
    );

    s.deliver(incoming("t", QoS::AtLeastOnce, Some(1), b"new"));
    assert!(
        matches!(s.events().as_slice(), [Event::Message(p)] if p.payload() == b"new"),
        "the new session's message is delivered"
    );
    assert!(
        s.sent().is_empty(),
        "held until the application acknowledges it"
    );
    s.client.ack(s.now, id(1)).unwrap();
    assert_eq!(s.sent(), [Packet::PubAck(PubAck::new(id(1)))]);
    assert_eq!(
        s.client.ack(s.now, id(1)),
        Err(sansmq::CommandError::UnknownAck(id(1)))
    );
}
