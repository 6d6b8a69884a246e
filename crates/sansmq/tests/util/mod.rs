//! A scripted broker for client-session tests: it reads what the client wrote, feeds it packets,
//! and moves a virtual clock.

#![allow(dead_code)] // each test file uses a different part of the kit

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    ConnAck, ConnectReturnCode, Packet, PacketDecoder, PacketId, Protocol, Publish, QoS,
};
use sansmq::{Client, Config, Event, MqttString, TopicName};

pub(crate) struct Scripted {
    pub(crate) client: Client,
    pub(crate) now: Instant,
    decoder: PacketDecoder,
    /// What the broker speaks: the client's configured protocol.
    pub(crate) protocol: Protocol,
}

/// The origin of a virtual clock: any instant will do, the tests only add durations to it.
#[allow(clippy::disallowed_methods)] // the ban on clocks is for the library, not its tests
pub(crate) fn epoch() -> Instant {
    Instant::now()
}

pub(crate) fn config() -> Config {
    Config::new(MqttString::try_from("test-client").unwrap())
}

pub(crate) fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

pub(crate) fn topic(v: &str) -> TopicName {
    TopicName::try_from(v).unwrap()
}

pub(crate) fn incoming(
    topic_name: &str,
    qos: QoS,
    packet_id: Option<u16>,
    payload: &'static [u8],
) -> Packet {
    Packet::Publish({
        let mut publish = Publish::new(topic(topic_name), Bytes::from_static(payload));
        publish.qos = qos;
        publish.packet_id = packet_id.map(id);
        publish
    })
}

impl Scripted {
    pub(crate) fn new(config: Config) -> Self {
        let protocol = config.protocol;
        Self {
            client: Client::new(config),
            now: epoch(),
            decoder: PacketDecoder::with_protocol(usize::MAX, protocol),
            protocol,
        }
    }

    /// Connects and answers CONNACK; returns the CONNECT and drains the events.
    pub(crate) fn connected(config: Config) -> Self {
        let mut s = Self::new(config);
        s.connect(false);
        s
    }

    /// `connect` and an accepting CONNACK with `session_present`; returns every event it caused
    /// (what the client sends after CONNACK stays for [`sent`](Self::sent)).
    pub(crate) fn accept(&mut self, session_present: bool) -> Vec<Event> {
        self.client.connect(self.now).unwrap();
        let sent = self.sent();
        assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
        self.deliver(
            ConnAck::new(ConnectReturnCode::Accepted).with_session_present(session_present),
        );
        self.events()
    }

    /// `connect`, CONNACK with `session_present`, and everything the client sent after CONNECT.
    pub(crate) fn connect(&mut self, session_present: bool) -> Vec<Packet> {
        self.client.connect(self.now).unwrap();
        let sent = self.sent();
        assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
        self.deliver(
            ConnAck::new(ConnectReturnCode::Accepted).with_session_present(session_present),
        );
        let events = self.events();
        assert_eq!(
            events.first(),
            Some(&Event::Connected { session_present }),
            "{events:?}"
        );
        self.sent()
    }

    /// Packets the client wrote since the last call (the driver wrote them all).
    pub(crate) fn sent(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        if let Some(bytes) = self.client.poll_transmit() {
            let n = bytes.len();
            self.decoder.extend_from_slice(bytes);
            self.client.handle_transmitted(self.now, n);
        }
        while let Some(p) = self
            .decoder
            .next_packet()
            .expect("the client writes valid packets")
        {
            packets.push(p);
        }
        packets
    }

    /// The one packet the client wrote since the last call.
    pub(crate) fn sent_one(&mut self) -> Packet {
        let mut sent = self.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        sent.remove(0)
    }

    /// The broker sends `packet`.
    pub(crate) fn deliver(&mut self, packet: impl Into<Packet>) {
        let mut wire = BytesMut::new();
        packet.into().encode_in(self.protocol, &mut wire).unwrap();
        self.client.handle_received(self.now, &wire);
    }

    pub(crate) fn deliver_bytes(&mut self, bytes: &[u8]) {
        self.client.handle_received(self.now, bytes);
    }

    pub(crate) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// Moves the clock to `poll_timeout` (asserting there is one) and fires it.
    pub(crate) fn fire_timeout(&mut self) {
        let at = self.client.poll_timeout().expect("a deadline");
        if at > self.now {
            self.now = at;
        }
        self.client.handle_timeout(self.now);
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
    }

    pub(crate) fn publish(
        &mut self,
        topic_name: &str,
        qos: QoS,
        payload: &'static [u8],
    ) -> Option<PacketId> {
        self.client
            .publish(
                self.now,
                topic(topic_name),
                qos,
                false,
                Bytes::from_static(payload),
            )
            .unwrap()
    }

    /// The broker's transport went away.
    pub(crate) fn drop_connection(&mut self) {
        self.client.handle_closed(self.now);
        let _ = self.client.poll_transmit();
        self.decoder = PacketDecoder::with_protocol(usize::MAX, self.protocol);
    }
}
