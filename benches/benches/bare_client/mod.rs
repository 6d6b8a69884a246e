//! A bare MQTT 3.1.1 client for the broker benches: what the socket pattern alone costs.
//!
//! No library's client: sansmq's codec and a read-write loop, with no session, no channels, no
//! timers and no tasks of its own. The publisher keeps the benches' window of unacknowledged
//! messages full and writes every PUBLISH that fits in one write; the subscriber acknowledges all
//! it read in one write. Both answer at once, as the libraries do: holding an answer back to
//! batch it leaves mosquitto's next segments waiting for a delayed TCP acknowledgement (its
//! sockets use Nagle's algorithm), and throughput collapses.
//!
//! It is the floor a client library can reach on this workload: with a window of 20, every
//! acknowledgement frees one slot, and mosquitto writes each packet in a segment of its own, so
//! every client makes about one read and one write per packet whatever it does in user space.
//! The state machines here are sans-IO; each bench's `BareConnection` (blocking sockets in
//! `broker.rs`, tokio in `broker_async.rs`) only moves bytes.

use bytes::BytesMut;
use sansmq::packet::{
    Connect, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS, Subscribe,
};
use sansmq::{MqttString, TopicFilter, TopicName};

/// A QoS 0 publisher writes at most this many bytes of PUBLISHes at a time.
const QOS0_WRITE: usize = 64 * 1024;

/// Largest packet either side accepts.
const MAX_PACKET: usize = 1 << 20;

/// CONNECT for `client_id` (clean session, keep-alive 60 s).
pub(crate) fn connect_packet(client_id: &str, out: &mut BytesMut) -> Result<(), String> {
    let mut connect = Connect::new(MqttString::try_from(client_id).map_err(|e| e.to_string())?);
    connect.keep_alive = 60;
    Packet::Connect(Box::new(connect))
        .encode(out)
        .map_err(|e| e.to_string())
}

/// SUBSCRIBE to `topic` at `qos`, packet identifier 1.
pub(crate) fn subscribe_packet(topic: &str, qos: QoS, out: &mut BytesMut) -> Result<(), String> {
    let filter = TopicFilter::try_from(topic).map_err(|e| e.to_string())?;
    Packet::Subscribe(Subscribe::new(PacketId::MIN, filter, qos))
        .encode(out)
        .map_err(|e| e.to_string())
}

/// The next whole packet in `input`, if one is there.
pub(crate) fn next_packet(input: &mut BytesMut) -> Result<Option<Packet>, String> {
    Packet::read(input, MAX_PACKET).map_err(|e| e.to_string())
}

/// Whether `packet` is the answer a connection's setup waits for (CONNACK accepted, SUBACK
/// granted); a refusal is an error.
pub(crate) fn accepted(packet: &Packet) -> Result<bool, String> {
    match packet {
        Packet::ConnAck(ack) if ack.is_accepted() => Ok(true),
        Packet::ConnAck(ack) => Err(format!("CONNACK {ack:?}")),
        Packet::SubAck(ack) if ack.return_codes.iter().all(|c| !c.is_failure()) => Ok(true),
        Packet::SubAck(ack) => Err(format!("SUBACK {ack:?}")),
        _ => Ok(false),
    }
}

/// Publishes `n` messages with a window of unacknowledged QoS 1/2 messages.
pub(crate) struct Publisher {
    publish: Publish,
    n: usize,
    window: usize,
    sent: usize,
    acknowledged: usize,
    in_flight: usize,
    next_id: u16,
}

impl Publisher {
    pub(crate) fn new(
        topic: &str,
        payload: bytes::Bytes,
        qos: QoS,
        n: usize,
        window: usize,
    ) -> Result<Self, String> {
        let mut publish = Publish::new(
            TopicName::try_from(topic).map_err(|e| e.to_string())?,
            payload,
        );
        publish.qos = qos;
        Ok(Self {
            publish,
            n,
            window,
            sent: 0,
            acknowledged: 0,
            in_flight: 0,
            next_id: 0,
        })
    }
}

impl Side for Publisher {
    /// Every PUBLISH the window has room for (QoS 0: up to 64 KiB of them).
    fn fill(&mut self, out: &mut BytesMut) -> Result<(), String> {
        while self.sent < self.n {
            if self.publish.qos == QoS::AtMostOnce {
                if out.len() >= QOS0_WRITE {
                    break;
                }
            } else {
                if self.in_flight == self.window {
                    break;
                }
                self.next_id = self.next_id % u16::MAX + 1;
                self.publish.packet_id = PacketId::new(self.next_id);
                self.in_flight += 1;
            }
            self.publish.encode(out).map_err(|e| e.to_string())?;
            self.sent += 1;
        }
        Ok(())
    }

    fn on_packet(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), String> {
        match packet {
            Packet::PubAck(_) | Packet::PubComp(_) => {
                self.in_flight -= 1;
                self.acknowledged += 1;
            }
            Packet::PubRec(PubRec { packet_id, .. }) => {
                Packet::PubRel(PubRel::new(packet_id))
                    .encode(out)
                    .map_err(|e| e.to_string())?;
            }
            other => return Err(format!("the publisher got {other:?}")),
        }
        Ok(())
    }

    /// Every message is sent, and acknowledged (QoS 1/2).
    fn is_done(&self) -> bool {
        self.sent == self.n && (self.publish.qos == QoS::AtMostOnce || self.acknowledged == self.n)
    }

    fn waits_for_broker(&self) -> bool {
        self.publish.qos != QoS::AtMostOnce
    }
}

/// Receives `n` messages with payloads of `payload_len` bytes, acknowledging each.
pub(crate) struct Subscriber {
    n: usize,
    payload_len: usize,
    received: usize,
}

impl Subscriber {
    pub(crate) fn new(n: usize, payload_len: usize) -> Self {
        Self {
            n,
            payload_len,
            received: 0,
        }
    }

    /// How many messages it received.
    pub(crate) fn received(&self) -> usize {
        self.received
    }
}

impl Side for Subscriber {
    /// Nothing: it only answers.
    fn fill(&mut self, _out: &mut BytesMut) -> Result<(), String> {
        Ok(())
    }

    fn on_packet(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), String> {
        let answer = match packet {
            Packet::Publish(publish) => {
                if publish.payload().len() != self.payload_len {
                    return Err(format!("a payload of {} bytes", publish.payload().len()));
                }
                self.received += 1;
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => Some(Packet::PubAck(PubAck::new(id))),
                    (QoS::ExactlyOnce, Some(id)) => Some(Packet::PubRec(PubRec::new(id))),
                    _ => None,
                }
            }
            Packet::PubRel(PubRel { packet_id, .. }) => {
                Some(Packet::PubComp(PubComp::new(packet_id)))
            }
            other => return Err(format!("the subscriber got {other:?}")),
        };
        if let Some(answer) = answer {
            answer.encode(out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.received == self.n
    }

    fn waits_for_broker(&self) -> bool {
        true
    }
}

/// One end of a bare run, as its read-write loop drives it.
pub(crate) trait Side {
    /// Encodes into `out` what it sends of its own accord.
    fn fill(&mut self, out: &mut BytesMut) -> Result<(), String>;
    /// Takes the broker's `packet`, answering into `out`.
    fn on_packet(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), String>;
    /// It has sent and received all it is meant to.
    fn is_done(&self) -> bool;
    /// The broker sends it something (not so for a QoS 0 publisher).
    fn waits_for_broker(&self) -> bool;
}
