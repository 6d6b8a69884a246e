//! A raw MQTT test client on a blocking socket and sansmq's codec: full control over every packet
//! (including not reading, sending garbage and closing abruptly).
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, LastWill, Packet, PacketDecoder, PacketId,
    Protocol, PubAck, PubComp, PubRec, PubRel, Publish, QoS, Subscribe, SubscribeReturnCode,
};
use sansmq::{MqttString, TopicFilter, TopicName};

/// How long an expected packet may take.
pub const WAIT: Duration = Duration::from_secs(3);

/// What waiting for a packet gave.
#[derive(Debug)]
pub enum Recv {
    Packet(Packet),
    Timeout,
    Closed,
}

#[derive(Debug)]
pub struct TestClient {
    stream: TcpStream,
    decoder: PacketDecoder,
    held: VecDeque<Packet>,
    next_id: u16,
    closed: bool,
    /// What the CONNECT sent named: packets are encoded and decoded in it.
    protocol: Protocol,
}

pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap()
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

pub fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A CONNECT for `client_id`.
pub fn connect_packet(client_id: &str, clean_session: bool, keep_alive: u16) -> Connect {
    let mut connect = Connect::new(MqttString::try_from(client_id).unwrap());
    connect.clean_session = clean_session;
    connect.keep_alive = keep_alive;
    connect
}

/// An MQTT 5 CONNECT for `client_id` (Session Expiry Interval 0 unless set).
pub fn connect_v5(client_id: &str, clean_start: bool, keep_alive: u16) -> Connect {
    let mut connect = connect_packet(client_id, clean_start, keep_alive);
    connect.protocol = Protocol::Mqtt5;
    connect
}

pub fn will(topic_name: &str, payload: &'static [u8], qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: topic(topic_name),
        payload: Bytes::from_static(payload),
        qos,
        retain,
        properties: Default::default(),
    }
}

impl TestClient {
    /// A TCP connection to the broker, no MQTT yet.
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            decoder: PacketDecoder::new(16 * 1024 * 1024),
            held: VecDeque::new(),
            next_id: 0,
            closed: false,
            protocol: Protocol::Mqtt311,
        }
    }

    /// Connects and returns the CONNACK (whatever its code).
    pub fn connect_with(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut client = Self::open(addr);
        client.send(connect);
        match client.next() {
            Packet::ConnAck(ack) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects and asserts the CONNECT was accepted; returns session present.
    pub fn connect(addr: SocketAddr, client_id: &str, clean: bool) -> (Self, bool) {
        let (client, ack) = Self::connect_with(addr, connect_packet(client_id, clean, 60));
        assert_eq!(ack.code, ConnectReturnCode::Accepted, "{client_id}");
        (client, ack.session_present)
    }

    pub fn send(&mut self, packet: impl Into<Packet>) {
        let packet = packet.into();
        if let Packet::Connect(connect) = &packet {
            self.protocol = connect.protocol;
            self.decoder.set_protocol(connect.protocol);
        }
        let mut wire = BytesMut::new();
        packet.encode_in(self.protocol, &mut wire).unwrap();
        self.send_raw(&wire);
    }

    /// The next packet id (for packets built by hand).
    pub fn next_packet_id(&mut self) -> PacketId {
        self.allocate_id()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Closes the socket without DISCONNECT.
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The next packet within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Recv {
        if let Some(packet) = self.held.pop_front() {
            return Recv::Packet(packet);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(packet) = self.decoder.next_packet().unwrap() {
                return Recv::Packet(packet);
            }
            if self.closed {
                return Recv::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.decoder.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true, // reset by the broker
            }
        }
    }

    /// The next packet; panics on timeout or close.
    pub fn next(&mut self) -> Packet {
        match self.recv(WAIT) {
            Recv::Packet(packet) => packet,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    pub fn expect_publish(&mut self) -> Publish {
        match self.next() {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.recv(quiet) {
            Recv::Timeout => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Asserts the broker closes the connection within `timeout` (packets before it are skipped);
    /// returns how long it took.
    pub fn expect_closed(&mut self, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.recv(left) {
                Recv::Closed => return start.elapsed(),
                Recv::Timeout => panic!("connection still open after {timeout:?}"),
                Recv::Packet(_) => {}
            }
        }
    }

    fn allocate_id(&mut self) -> PacketId {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id(self.next_id)
    }

    pub fn subscribe(&mut self, filter_str: &str, qos: QoS) -> SubscribeReturnCode {
        let packet_id = self.allocate_id();
        self.send(Subscribe::new(packet_id, filter(filter_str), qos));
        let ack = self.wait_for(|p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id));
        let Packet::SubAck(ack) = ack else {
            unreachable!()
        };
        assert_eq!(ack.return_codes.len(), 1);
        ack.return_codes[0]
    }

    /// Publishes and completes the QoS handshake; other packets that arrive meanwhile are kept for
    /// `next`.
    pub fn publish(&mut self, topic_name: &str, payload: &[u8], qos: QoS) {
        let mut publish = Publish::new(topic(topic_name), Bytes::copy_from_slice(payload));
        publish.qos = qos;
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.allocate_id());
        publish.packet_id = packet_id;
        self.send(publish);
        let Some(packet_id) = packet_id else {
            return;
        };
        if qos == QoS::AtLeastOnce {
            self.wait_for(|p| matches!(p, Packet::PubAck(a) if a.packet_id == packet_id));
        } else {
            self.wait_for(|p| matches!(p, Packet::PubRec(a) if a.packet_id == packet_id));
            self.send(PubRel::new(packet_id));
            self.wait_for(|p| matches!(p, Packet::PubComp(a) if a.packet_id == packet_id));
        }
    }

    /// Acknowledges an incoming QoS 1/2 message completely.
    pub fn ack(&mut self, publish: &Publish) {
        let Some(packet_id) = publish.packet_id else {
            return;
        };
        if publish.qos == QoS::AtLeastOnce {
            self.send(PubAck::new(packet_id));
        } else {
            self.send(PubRec::new(packet_id));
            self.wait_for(|p| matches!(p, Packet::PubRel(a) if a.packet_id == packet_id));
            self.send(PubComp::new(packet_id));
        }
    }

    /// Waits for a packet `wanted` accepts, keeping the others for `next`.
    pub fn wait_for(&mut self, wanted: impl Fn(&Packet) -> bool) -> Packet {
        let mut skipped = Vec::new();
        let start = Instant::now();
        let found = loop {
            let left = WAIT.saturating_sub(start.elapsed());
            // Look only at new packets while waiting.
            let packet = if self.held.is_empty() {
                self.recv(left)
            } else {
                Recv::Packet(self.held.pop_front().unwrap())
            };
            match packet {
                Recv::Packet(p) if wanted(&p) => break p,
                Recv::Packet(p) => skipped.push(p),
                other => panic!("waiting for a packet, got {other:?} (skipped {skipped:?})"),
            }
        };
        for p in skipped.into_iter().rev() {
            self.held.push_front(p);
        }
        found
    }

    pub fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect::new()));
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Polls `check` every 10 ms until it holds, panicking after `timeout`.
pub fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
