use bytes::Bytes;
use sansmq::packet::{EncodeError, Packet, PubAck, PubComp, PubRec, PubRel, QoS};
use sansmq::{CommandError, Event};

use crate::util::{Scripted, config, topic};

#[test]
fn qos0_publish_is_written_at_once_without_id() {
    let mut s = Scripted::connected(config());
    assert_eq!(s.publish("t", QoS::AtMostOnce, b"x"), None);
    let Packet::Publish(p) = s.sent_one() else {
        panic!()
    };
    assert_eq!((p.qos, p.packet_id, p.dup), (QoS::AtMostOnce, None, false));
    assert!(s.events().is_empty());
}

#[test]
fn qos1_publish_completes_on_puback() {
    let mut s = Scripted::connected(config());
    let pid = s.publish("t", QoS::AtLeastOnce, b"x").unwrap();
    let Packet::Publish(p) = s.sent_one() else {
        panic!()
    };
    assert_eq!(p.packet_id, Some(pid));
    assert_eq!(s.client.inflight_len(), 1);
    s.deliver(PubAck::new(pid));
    assert_eq!(
        s.events(),
        [Event::Published {
            packet_id: pid,
            qos: QoS::AtLeastOnce
        }]
    );
    assert_eq!(s.client.inflight_len(), 0);
    // A late duplicate PUBACK changes nothing.
    s.deliver(PubAck::new(pid));
    assert!(s.events().is_empty());
    assert!(s.client.is_connected());
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    let mut s = Scripted::connected(config());
    let pid = s.publish("t", QoS::ExactlyOnce, b"x").unwrap();
    let _ = s.sent();
    s.deliver(PubRec::new(pid));
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(pid))]);
    assert!(s.events().is_empty());
    s.deliver(PubRec::new(pid)); // repeated: PUBREL again
    assert_eq!(s.sent(), [Packet::PubRel(PubRel::new(pid))]);
    s.deliver(PubComp::new(pid));
    assert_eq!(
        s.events(),
        [Event::Published {
            packet_id: pid,
            qos: QoS::ExactlyOnce
        }]
    );
    assert_eq!(s.client.inflight_len(), 0);
}

#[test]
fn the_inflight_window_holds_back_the_rest_in_order() {
    let mut cfg = config();
    cfg.max_inflight = 2;
    let mut s = Scripted::connected(cfg);
    let ids: Vec<_> = (0..5)
        .map(|_| s.publish("t", QoS::AtLeastOnce, b"x").unwrap())
        .collect();
    assert_eq!(s.sent().len(), 2);
    assert_eq!((s.client.inflight_len(), s.client.queued_len()), (2, 3));
    s.deliver(PubAck::new(ids[1])); // out of order is fine
    let Packet::Publish(p) = s.sent_one() else {
        panic!()
    };
    assert_eq!(p.packet_id, Some(ids[2]));
    s.deliver(PubAck::new(ids[0]));
    let Packet::Publish(p) = s.sent_one() else {
        panic!()
    };
    assert_eq!(p.packet_id, Some(ids[3]));
    assert!(s.client.inflight_len() <= 2);
}

#[test]
fn a_full_queue_is_backpressure_not_growth() {
    let mut cfg = config();
    cfg.max_inflight = 1;
    cfg.max_queued = 2;
    let mut s = Scripted::connected(cfg);
    for _ in 0..3 {
        s.publish("t", QoS::AtLeastOnce, b"x");
    }
    let error = s
        .client
        .publish(s.now, topic("t"), QoS::AtLeastOnce, false, Bytes::new())
        .unwrap_err();
    assert_eq!(error, CommandError::QueueFull { max_queued: 2 });
    assert_eq!((s.client.inflight_len(), s.client.queued_len()), (1, 2));
}

#[test]
fn a_stalled_transport_queues_qos0_instead_of_growing_the_buffer() {
    let mut cfg = config();
    cfg.max_transmit_buffer = 100;
    cfg.max_queued = 3;
    let mut s = Scripted::connected(cfg);
    let payload = Bytes::from(vec![7; 60]);
    for _ in 0..5 {
        s.client
            .publish(s.now, topic("t"), QoS::AtMostOnce, false, payload.clone())
            .unwrap();
    }
    assert!(s.client.poll_transmit().unwrap().len() < 200);
    assert_eq!(s.client.queued_len(), 3);
    assert_eq!(s.sent().len(), 2);
    let (mut released, mut rounds) = (0, 0);
    while s.client.poll_transmit().is_some() {
        released += s.sent().len();
        rounds += 1;
    }
    assert_eq!(released, 3, "draining the transport lets the queue move");
    assert!(rounds >= 2, "but never more than the limit at once");
}

#[test]
fn oversized_publish_is_refused_up_front() {
    let mut cfg = config();
    cfg.max_outgoing_packet_size = 100;
    let mut s = Scripted::connected(cfg);
    let error = s
        .client
        .publish(
            s.now,
            topic("t"),
            QoS::AtLeastOnce,
            false,
            Bytes::from(vec![0; 100]),
        )
        .unwrap_err();
    assert_eq!(
        error,
        CommandError::Encode(EncodeError::PacketTooLarge {
            size: 107,
            max: 100
        })
    );
    assert_eq!(s.client.inflight_len() + s.client.queued_len(), 0);
}

#[test]
fn partial_writes_keep_the_rest_queued() {
    let mut s = Scripted::connected(config());
    s.publish("t", QoS::AtMostOnce, b"abc");
    let whole = s.client.poll_transmit().unwrap().to_vec();
    s.client.handle_transmitted(s.now, 2);
    assert_eq!(s.client.poll_transmit().unwrap(), &whole[2..]);
    s.client.handle_transmitted(s.now, 100);
    assert_eq!(s.client.poll_transmit(), None);
}

#[test]
fn packet_ids_in_use_are_never_reused() {
    let mut cfg = config();
    cfg.max_inflight = 10;
    cfg.max_queued = 70_000;
    let mut s = Scripted::connected(cfg);
    let held = s.publish("t", QoS::AtLeastOnce, b"held").unwrap();
    let _ = s.sent();
    for _ in 0..70_000 {
        let pid = s.publish("t", QoS::AtLeastOnce, b"x").unwrap();
        assert_ne!(pid, held);
        let _ = s.sent();
        s.deliver(PubAck::new(pid));
        let _ = s.events();
    }
    assert_eq!(s.client.inflight_len(), 1);
}

#[test]
fn a_barrier_holds_later_publishes_and_subscribes_until_its_puback() {
    let mut s = Scripted::connected(config());
    let before = s.publish("a", QoS::AtLeastOnce, b"before").unwrap();
    let barrier = s
        .client
        .publish_barrier(s.now, topic("$SYS/uploadToken"), &b"{}"[..])
        .unwrap();
    let sent = s.sent();
    assert_eq!(sent.len(), 2, "what came before still goes first: {sent:?}");
    assert!(matches!(&sent[1], Packet::Publish(p) if p.packet_id == Some(barrier)));

    s.publish("a", QoS::AtMostOnce, b"after-0");
    let after = s.publish("a", QoS::AtLeastOnce, b"after-1").unwrap();
    let filter = sansmq::TopicFilter::try_from("x").unwrap();
    let sub = s
        .client
        .subscribe(
            s.now,
            vec![sansmq::packet::SubscribeFilter::new(
                filter,
                QoS::AtMostOnce,
            )],
        )
        .unwrap();
    s.deliver(PubAck::new(before));
    assert!(
        s.sent().is_empty(),
        "nothing follows the barrier before its PUBACK"
    );
    // Incoming traffic is still acknowledged meanwhile.
    s.deliver(crate::util::incoming(
        "in",
        QoS::AtLeastOnce,
        Some(9),
        b"in",
    ));
    assert_eq!(s.sent(), [Packet::PubAck(PubAck::new(crate::util::id(9)))]);

    s.deliver(PubAck::new(barrier));
    let sent = s.sent();
    assert!(
        matches!(&sent[0], Packet::Subscribe(x) if x.packet_id == sub),
        "{sent:?}"
    );
    assert!(matches!(&sent[1], Packet::Publish(p) if p.payload() == b"after-0"));
    assert!(matches!(&sent[2], Packet::Publish(p) if p.packet_id == Some(after)));
}

#[test]
fn a_barrier_still_holds_after_a_reconnect() {
    let mut cfg = config();
    cfg.clean_session = false;
    let mut s = Scripted::connected(cfg);
    let barrier = s
        .client
        .publish_barrier(s.now, topic("$SYS/uploadToken"), &b"{}"[..])
        .unwrap();
    let _ = s.sent();
    let after = s.publish("a", QoS::AtLeastOnce, b"after").unwrap();
    s.drop_connection();
    let _ = s.events();
    let sent = s.connect(true);
    assert_eq!(sent.len(), 1, "only the barrier is re-sent: {sent:?}");
    assert!(matches!(&sent[0], Packet::Publish(p) if p.dup && p.packet_id == Some(barrier)));
    s.deliver(PubAck::new(barrier));
    let Packet::Publish(p) = s.sent_one() else {
        panic!()
    };
    assert_eq!(p.packet_id, Some(after));
}

#[test]
fn a_peer_that_never_reads_makes_the_client_stop_reading() {
    let mut cfg = config();
    cfg.max_transmit_buffer = 40;
    let mut s = Scripted::connected(cfg);
    assert!(s.client.wants_read());
    // Every PUBREL (each for another identifier) queues a PUBCOMP (4 bytes); nothing is taken
    // from the transmit buffer.
    let mut pubrels = 0;
    while s.client.wants_read() {
        pubrels += 1;
        assert!(
            pubrels <= 10,
            "still asking for input with a full transmit buffer"
        );
        s.deliver_bytes(&[0x62, 0x02, 0x00, pubrels]);
    }
    assert_eq!(pubrels, 10, "40 bytes of PUBCOMPs fill a 40-byte buffer");
    let _ = s.sent();
    assert!(
        s.client.wants_read(),
        "a drained buffer asks for input again"
    );
}
