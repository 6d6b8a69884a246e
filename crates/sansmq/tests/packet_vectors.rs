//! Byte-exact vectors for every packet type, assembled by hand from the MQTT 3.1.1 spec's figures
//! (not produced by our encoder): each must decode to the expected packet and encode back to the same
//! bytes.

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, LastWill, Packet, PacketId, Password,
    Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck, Subscribe, SubscribeFilter,
    SubscribeReturnCode, UnsubAck, Unsubscribe,
};
use sansmq::{MqttString, TopicFilter, TopicName};

fn s(v: &str) -> MqttString {
    MqttString::try_from(v).unwrap()
}

fn name(v: &str) -> TopicName {
    TopicName::try_from(v).unwrap()
}

fn filter(v: &str) -> TopicFilter {
    TopicFilter::try_from(v).unwrap()
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

/// Decodes `wire` as exactly one packet, checks it is `expected`, and that encoding `expected`
/// gives `wire` back with `encoded_len` bytes.
fn check(wire: &[u8], expected: Packet) {
    let mut buf = BytesMut::from(wire);
    let decoded = Packet::read(&mut buf, usize::MAX)
        .unwrap_or_else(|e| panic!("{expected:?}: {e}"))
        .expect("a whole frame");
    assert!(buf.is_empty(), "{expected:?}: {} bytes left", buf.len());
    assert_eq!(decoded, expected);

    let mut out = BytesMut::new();
    expected.encode(&mut out).unwrap();
    assert_eq!(&out[..], wire, "encoding {expected:?}");
    assert_eq!(expected.encoded_len(), wire.len());
}

#[test]
fn connect_311_minimal() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x10,                               // CONNECT, remaining length 16
        0x00, 0x04, b'M', b'Q', b'T', b'T',       // protocol name
        0x04,                                     // level 4
        0x02,                                     // clean session
        0x00, 0x3C,                               // keep-alive 60
        0x00, 0x04, b't', b'e', b's', b't',       // client id
    ];
    let mut connect = Connect::new(s("test"));
    connect.keep_alive = 60;
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connect_311_with_will_and_credentials() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x25,                               // remaining length 37
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
        0b1111_0100,                              // user, password, will retain, will QoS 2, will
        0x00, 0x0A,                               // keep-alive 10
        0x00, 0x02, b'i', b'd',                   // client id
        0x00, 0x04, b'l', b'w', b'/', b't',       // will topic
        0x00, 0x03, b'b', b'y', b'e',             // will message
        0x00, 0x04, b'u', b's', b'e', b'r',       // user name
        0x00, 0x04, 0x00, 0xFF, b'p', b'w',       // password: binary
    ];
    let connect = Connect {
        protocol: Protocol::Mqtt311,
        keep_alive: 10,
        clean_session: false,
        client_id: s("id"),
        will: Some(LastWill {
            topic: name("lw/t"),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Default::default(),
        }),
        username: Some(s("user")),
        password: Some(Password(Bytes::from_static(&[0x00, 0xFF, b'p', b'w']))),
        properties: Default::default(),
    };
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connect_31_mqisdp() {
    #[rustfmt::skip]
    let wire = [
        0x10, 0x12,
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p',
        0x03,                                     // level 3
        0x02, 0x00, 0x1E,
        0x00, 0x04, b'o', b'l', b'd', b'1',
    ];
    let mut connect = Connect::new(s("old1"));
    connect.protocol = Protocol::Mqtt31;
    connect.keep_alive = 30;
    check(&wire, Packet::Connect(Box::new(connect)));
}

#[test]
fn connack() {
    check(
        &[0x20, 0x02, 0x01, 0x00],
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Accepted).with_session_present(true)),
    );
    check(
        &[0x20, 0x02, 0x00, 0x05],
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized)),
    );
}

#[test]
fn publish_qos0_and_qos1() {
    // The spec's example in 3.3.2.3: topic "a/b", packet id 10.
    #[rustfmt::skip]
    let qos1 = [
        0x3B, 0x0A,                               // PUBLISH, DUP, QoS 1, retain
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x0A,
        b'h', b'i', b'!',
    ];
    // remaining length: 5 + 2 + 3 = 10
    check(
        &qos1,
        Packet::Publish({
            let mut publish = Publish::new(name("a/b"), Bytes::from_static(b"hi!"));
            publish.qos = QoS::AtLeastOnce;
            publish.packet_id = Some(id(10));
            publish.dup = true;
            publish.retain = true;
            publish
        }),
    );
    check(
        &[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'b'],
        Packet::Publish(Publish::new(name("a/b"), Bytes::new())),
    );
}

#[test]
fn publish_qos2_with_two_byte_remaining_length() {
    let payload = vec![0xA5; 200];
    let mut wire = vec![0x34, 0xCD, 0x01, 0x00, 0x01, b't', 0xFF, 0xFE]; // 205 = 0xCD 0x01
    wire.extend_from_slice(&payload);
    check(
        &wire,
        Packet::Publish({
            let mut publish = Publish::new(name("t"), Bytes::from(payload));
            publish.qos = QoS::ExactlyOnce;
            publish.packet_id = Some(id(0xFFFE));
            publish
        }),
    );
}

#[test]
fn publish_acks() {
    check(
        &[0x40, 0x02, 0x00, 0x01],
        Packet::PubAck(PubAck::new(id(1))),
    );
    check(
        &[0x50, 0x02, 0x12, 0x34],
        Packet::PubRec(PubRec::new(id(0x1234))),
    );
    check(
        &[0x62, 0x02, 0xFF, 0xFF],
        Packet::PubRel(PubRel::new(id(0xFFFF))),
    );
    check(
        &[0x70, 0x02, 0x00, 0x80],
        Packet::PubComp(PubComp::new(id(0x80))),
    );
}

#[test]
fn subscribe() {
    // The spec's example in 3.8.3.1: "a/b" at QoS 1 and "c/d" at QoS 2, packet id 10.
    #[rustfmt::skip]
    let wire = [
        0x82, 0x0E,
        0x00, 0x0A,
        0x00, 0x03, b'a', b'/', b'b', 0x01,
        0x00, 0x03, b'c', b'/', b'+', 0x02,
    ];
    check(
        &wire,
        Packet::Subscribe(Subscribe::with_filters(
            id(10),
            vec![
                SubscribeFilter::new(filter("a/b"), QoS::AtLeastOnce),
                SubscribeFilter::new(filter("c/+"), QoS::ExactlyOnce),
            ],
        )),
    );
}

#[test]
fn suback() {
    // The spec's example in 3.9.3: granted 0, 2 and failure.
    check(
        &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80],
        Packet::SubAck(SubAck::new(
            id(10),
            vec![
                SubscribeReturnCode::Success(QoS::AtMostOnce),
                SubscribeReturnCode::Success(QoS::ExactlyOnce),
                SubscribeReturnCode::Failure,
            ],
        )),
    );
}

#[test]
fn unsubscribe() {
    #[rustfmt::skip]
    let wire = [
        0xA2, 0x0C,
        0x00, 0x0B,
        0x00, 0x03, b'a', b'/', b'#',
        0x00, 0x03, b'c', b'/', b'd',
    ];
    check(
        &wire,
        Packet::Unsubscribe(Unsubscribe::new(id(11), vec![filter("a/#"), filter("c/d")])),
    );
}

#[test]
fn unsuback() {
    check(
        &[0xB0, 0x02, 0x00, 0x0B],
        Packet::UnsubAck(UnsubAck::new(id(11))),
    );
}

#[test]
fn ping_and_disconnect() {
    check(&[0xC0, 0x00], Packet::PingReq);
    check(&[0xD0, 0x00], Packet::PingResp);
    check(&[0xE0, 0x00], Packet::Disconnect(Disconnect::new()));
}

#[test]
fn decoded_strings_and_payload_share_the_frame() {
    let wire = Bytes::from_static(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i']);
    let mut buf = BytesMut::from(&wire[..]);
    let frame_start = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = Packet::read(&mut buf, 64).unwrap() else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(p.topic_name().as_ptr() as usize, frame_start + 4);
    assert_eq!(p.payload_bytes().as_ptr() as usize, frame_start + 7);
}
