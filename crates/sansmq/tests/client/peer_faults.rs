use sansmq::client::ProtocolViolation;
use sansmq::packet::{
    ConnAck, ConnectReturnCode, DecodeError, Disconnect, Packet, PacketType, PubComp, PubRel, QoS,
    SubAck, SubscribeFilter, SubscribeReturnCode,
};
use sansmq::{DisconnectReason, Event, TopicFilter};

use crate::util::{Scripted, config, id, incoming};

fn violation(v: ProtocolViolation) -> Vec<Event> {
    vec![Event::Disconnected {
        reason: DisconnectReason::ProtocolViolation(v),
    }]
}

#[test]
fn first_packet_must_be_connack() {
    let mut s = Scripted::new(config());
    s.client.connect(s.now).unwrap();
    let _ = s.sent();
    s.deliver(incoming("a", QoS::AtMostOnce, None, b"early"));
    assert_eq!(
        s.events(),
        violation(ProtocolViolation::ExpectedConnAck(PacketType::Publish))
    );
}

#[test]
fn server_only_packets_disconnect() {
    for packet in [
        Packet::PingReq,
        Packet::Disconnect(Disconnect::new()),
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Accepted)),
    ] {
        let mut s = Scripted::connected(config());
        let packet_type = packet.packet_type();
        s.deliver(packet);
        assert_eq!(
            s.events(),
            violation(ProtocolViolation::UnexpectedPacket(packet_type))
        );
        assert!(s.sent().is_empty());
    }
}

#[test]
fn pubrel_for_an_unknown_id_still_gets_pubcomp() {
    let mut s = Scripted::connected(config());
    s.deliver(PubRel::new(id(77)));
    assert_eq!(s.sent(), [Packet::PubComp(PubComp::new(id(77)))]);
    assert!(s.events().is_empty());
}

#[test]
fn acks_for_unknown_ids_are_ignored() {
    let mut s = Scripted::connected(config());
    s.deliver(sansmq::packet::PubAck::new(id(3)));
    s.deliver(sansmq::packet::PubRec::new(id(3)));
    s.deliver(PubComp::new(id(3)));
    s.deliver(sansmq::packet::UnsubAck::new(id(3)));
    assert!(s.sent().is_empty());
    assert!(s.events().is_empty());
    assert!(s.client.is_connected());
}

#[test]
fn malformed_input_disconnects_with_the_decode_error() {
    let mut s = Scripted::connected(config());
    s.deliver(incoming("a", QoS::AtMostOnce, None, b"fine"));
    s.deliver_bytes(&[0x40, 0x02, 0x00, 0x00, 0xD0, 0x00]); // PUBACK id 0, then PINGRESP
    let events = s.events();
    assert!(matches!(events[0], Event::Message(_)));
    assert_eq!(
        events[1..],
        [Event::Disconnected {
            reason: DisconnectReason::Malformed(DecodeError::ZeroPacketId {
                packet_type: PacketType::PubAck
            })
        }]
    );
    s.deliver_bytes(&[0xD0, 0x00]);
    assert!(s.events().is_empty(), "nothing is read after the fault");
}

#[test]
fn oversized_packet_disconnects_before_its_body_arrives() {
    let mut cfg = config();
    cfg.max_packet_size = 1024;
    let mut s = Scripted::connected(cfg);
    s.deliver_bytes(&[0x30, 0x80, 0x80, 0x04]); // PUBLISH announcing 64 KiB
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::Malformed(DecodeError::PacketTooLarge {
                size: 65_540,
                max: 1024
            })
        }]
    );
}

#[test]
fn suback_with_the_wrong_number_of_codes_disconnects() {
    let mut s = Scripted::connected(config());
    let pid = s
        .client
        .subscribe(
            s.now,
            vec![SubscribeFilter::new(
                TopicFilter::try_from("a").unwrap(),
                QoS::AtMostOnce,
            )],
        )
        .unwrap();
    let _ = s.sent();
    s.deliver(SubAck::new(pid, vec![SubscribeReturnCode::Failure; 2]));
    assert_eq!(
        s.events(),
        violation(ProtocolViolation::SubAckCount {
            packet_id: pid,
            expected: 1,
            received: 2
        })
    );
}

#[test]
fn transport_closed_is_reported_once() {
    let mut s = Scripted::connected(config());
    s.drop_connection();
    s.drop_connection();
    assert_eq!(
        s.events(),
        [Event::Disconnected {
            reason: DisconnectReason::TransportClosed
        }]
    );
}
