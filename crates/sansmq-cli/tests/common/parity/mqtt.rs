//! A tiny blocking MQTT 3.1.1 client on the sansmq codec, for what the parity test does beside the
//! two tools: watch a row's topics, publish a row's messages, and read and clear retained messages.
//! It speaks the protocol directly so that what it sees (the retain flag, the QoS) is what the
//! broker sent, not what a client library made of it.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::packet::{
    Connect, Disconnect, Packet, PacketDecoder, PacketId, Password, PubAck, PubComp, PubRec,
    PubRel, Publish, QoS, Subscribe,
};
use sansmq::{TopicFilter, TopicName};

/// Larger than any row's message (2 MiB and change).
const MAX_PACKET: usize = 8 * 1024 * 1024;

/// How long any single answer from the broker may take on a loaded machine.
const ANSWER: Duration = Duration::from_secs(10);

/// One PUBLISH as the broker delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
}

/// A connected client.
pub(crate) struct Mqtt {
    stream: TcpStream,
    decoder: PacketDecoder,
    next_id: u16,
    /// Publishes received while waiting for something else, in order.
    seen: Vec<Seen>,
}

impl Mqtt {
    /// Connects to 127.0.0.1:`port` with a clean session (and `login`, user and password) and
    /// waits for CONNACK.
    pub(crate) fn connect(
        port: u16,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, ANSWER)?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            decoder: PacketDecoder::new(MAX_PACKET),
            next_id: 0,
            seen: Vec::new(),
        };
        let id = client_id
            .to_owned()
            .try_into()
            .map_err(|e| io::Error::other(format!("client id {client_id:?}: {e:?}")))?;
        let mut connect = Connect::new(id);
        if let Some((user, password)) = login {
            connect.username = Some(
                user.to_owned()
                    .try_into()
                    .map_err(|e| io::Error::other(format!("user {user:?}: {e:?}")))?,
            );
            connect.password = Some(Password(Bytes::copy_from_slice(password.as_bytes())));
        }
        client.send(&Packet::Connect(Box::new(connect)))?;
        match client.next(Instant::now() + ANSWER)? {
            Some(Packet::ConnAck(ack)) if ack.code as u8 == 0 => Ok(client),
            other => Err(io::Error::other(format!("no CONNACK 0 but {other:?}"))),
        }
    }

    /// Subscribes to `filters` at QoS 2 and waits for SUBACK.
    pub(crate) fn subscribe(&mut self, filters: &[&str]) -> io::Result<()> {
        let id = self.packet_id();
        let mut subscribe: Option<Subscribe> = None;
        for filter in filters {
            let filter = TopicFilter::try_from(*filter)
                .map_err(|e| io::Error::other(format!("filter {filter:?}: {e:?}")))?;
            match &mut subscribe {
                None => subscribe = Some(Subscribe::new(id, filter, QoS::ExactlyOnce)),
                Some(s) => s.filters.push(sansmq::packet::SubscribeFilter::new(
                    filter,
                    QoS::ExactlyOnce,
                )),
            }
        }
        let subscribe = subscribe.ok_or_else(|| io::Error::other("no filter"))?;
        self.send(&Packet::Subscribe(subscribe))?;
        self.until(|packet| matches!(packet, Packet::SubAck(ack) if ack.packet_id == id))
    }

    /// Publishes one message and waits for its acknowledgement (PUBACK, or PUBCOMP).
    pub(crate) fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
    ) -> io::Result<()> {
        let name = TopicName::try_from(topic)
            .map_err(|e| io::Error::other(format!("topic {topic:?}: {e:?}")))?;
        let mut publish = Publish::new(name, Bytes::copy_from_slice(payload));
        publish.retain = retain;
        publish.qos = QoS::from_u8(qos).ok_or_else(|| io::Error::other("QoS above 2"))?;
        if qos == 0 {
            return self.send(&Packet::Publish(publish));
        }
        let id = self.packet_id();
        publish.packet_id = Some(id);
        self.send(&Packet::Publish(publish))?;
        if qos == 1 {
            return self
                .until(|packet| matches!(packet, Packet::PubAck(ack) if ack.packet_id == id));
        }
        self.until(|packet| matches!(packet, Packet::PubRec(ack) if ack.packet_id == id))?;
        self.send(&Packet::PubRel(PubRel::new(id)))?;
        self.until(|packet| matches!(packet, Packet::PubComp(ack) if ack.packet_id == id))
    }

    /// Everything delivered so far and until the broker has answered a PINGREQ and then been
    /// silent for `quiet`.
    pub(crate) fn drain(&mut self, quiet: Duration) -> io::Result<Vec<Seen>> {
        self.send(&Packet::PingReq)?;
        self.until(|packet| matches!(packet, Packet::PingResp))?;
        loop {
            match self.next(Instant::now() + quiet)? {
                None => break,
                Some(packet) => self.handle(packet)?,
            }
        }
        Ok(std::mem::take(&mut self.seen))
    }

    /// Says goodbye (so no will is published).
    pub(crate) fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect(Disconnect::new()));
    }

    fn packet_id(&mut self) -> PacketId {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        PacketId::new(self.next_id).unwrap_or(PacketId::MIN)
    }

    /// Reads and handles packets until `done` holds for one.
    fn until(&mut self, mut done: impl FnMut(&Packet) -> bool) -> io::Result<()> {
        let deadline = Instant::now() + ANSWER;
        loop {
            let Some(packet) = self.next(deadline)? else {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
            };
            if done(&packet) {
                return Ok(());
            }
            self.handle(packet)?;
        }
    }

    /// Records a PUBLISH and acknowledges it; answers PUBREL.
    fn handle(&mut self, packet: Packet) -> io::Result<()> {
        match packet {
            Packet::Publish(publish) => {
                let qos = publish.qos as u8;
                if let Some(id) = publish.packet_id {
                    match qos {
                        1 => self.send(&Packet::PubAck(PubAck::new(id)))?,
                        _ => self.send(&Packet::PubRec(PubRec::new(id)))?,
                    }
                }
                self.seen.push(Seen {
                    topic: publish.topic().to_owned(),
                    payload: publish.payload_bytes(),
                    qos,
                    retain: publish.retain,
                });
                Ok(())
            }
            Packet::PubRel(rel) => self.send(&Packet::PubComp(PubComp::new(rel.packet_id))),
            _ => Ok(()),
        }
    }

    /// The next packet, or `None` if none came by `deadline`.
    fn next(&mut self, deadline: Instant) -> io::Result<Option<Packet>> {
        let mut buf = vec![0; 64 * 1024];
        loop {
            if let Some(packet) = self.decoder.next_packet().map_err(io::Error::other)? {
                return Ok(Some(packet));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
                Ok(n) => self.decoder.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn send(&mut self, packet: &Packet) -> io::Result<()> {
        let mut wire = BytesMut::new();
        packet.encode(&mut wire).map_err(io::Error::other)?;
        self.stream.write_all(&wire)
    }
}
