//! [`AckOrder`]: MQTT-4.6.0-2/-3, the client acknowledges in arrival order, checked on the client's
//! side of the wire.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::BytesMut;
use sansmq::packet::{
    FrameHeader, Packet, PacketDecoder, PacketId, Protocol, PubAck, PubRec, Publish,
};

/// A piece of a read and the packet it completes, if any.
pub(crate) type Piece = (Range<usize>, Option<Packet>);

/// MQTT-4.6.0-2/-3 (and the manual-ack contract): the client's PUBACKs and PUBRECs go out in the
/// order the PUBLISHes arrived. Checked on the client's side of the wire: the PUBLISHes it reads,
/// and the acks it encodes into its transmit buffer (an ack lost with its connection was still
/// given). For the order between the two to be known, the client is fed reads that complete at most
/// one packet each ([`split`](Self::split)).
///
/// The model is the spec's: an arrival of a QoS 1/2 PUBLISH opens an entry awaiting its ack, unless
/// an entry for that identifier is still open (a re-send of a message not acknowledged yet needs no
/// ack of its own), or the arrival is a QoS 2 PUBLISH whose PUBREC the client encoded and has not
/// written yet (that PUBREC answers the repeat too: one pending ack per identifier); each ack
/// closes the entry of its identifier, which must be the oldest open one.
pub(crate) struct AckOrder {
    /// Off when reads may complete several packets at once (the order is then unknowable).
    pub(crate) enabled: bool,
    /// The session's protocol, both ways.
    protocol: Protocol,
    open: VecDeque<PacketId>,
    /// Entries of a session lost without the client knowing: it still holds their acks.
    stale: Vec<PacketId>,
    /// The incoming stream, for [`split`](Self::split).
    read: BytesMut,
    /// What the client encoded on this connection.
    encoded: PacketDecoder,
    /// Stream offset past the last packet decoded from `encoded`.
    encoded_end: u64,
    /// Bytes of the stream the client's driver has written.
    written: u64,
    /// PUBRECs encoded and not wholly written: the stream offset past each, and its identifier.
    unwritten_pubrecs: VecDeque<(u64, PacketId)>,
    pub(crate) acks: u64,
    /// What it saw, for the trace (only when tracing).
    pub(crate) log: Option<Vec<String>>,
    /// Connections whose byte stream to the client ended inside a packet.
    pub(crate) cut_reads: u64,
}

impl AckOrder {
    pub(crate) fn new(enabled: bool, protocol: Protocol) -> Self {
        Self {
            enabled,
            protocol,
            open: VecDeque::new(),
            stale: Vec::new(),
            read: BytesMut::new(),
            encoded: PacketDecoder::with_protocol(usize::MAX, protocol),
            encoded_end: 0,
            written: 0,
            unwritten_pubrecs: VecDeque::new(),
            acks: 0,
            log: None,
            cut_reads: 0,
        }
    }

    /// A new connection: new byte streams.
    pub(crate) fn connection(&mut self) {
        self.cut_reads += u64::from(!self.read.is_empty());
        self.read.clear();
        self.transmit_reset();
    }

    /// The client's transmit buffer was replaced or cleared.
    pub(crate) fn transmit_reset(&mut self) {
        self.encoded = PacketDecoder::with_protocol(usize::MAX, self.protocol);
        self.encoded_end = 0;
        self.written = 0;
        self.unwritten_pubrecs.clear();
    }

    /// The driver wrote `n` more bytes of what the client encoded.
    pub(crate) fn written(&mut self, n: usize) {
        self.written += n as u64;
        while self
            .unwritten_pubrecs
            .front()
            .is_some_and(|&(end, _)| end <= self.written)
        {
            self.unwritten_pubrecs.pop_front();
        }
    }

    /// The client forgot its held acks (`session_present = 0`, or a process restart).
    pub(crate) fn forget(&mut self) {
        self.open.clear();
        self.stale.clear();
    }

    /// The broker lost the session but the client does not know: it keeps its held acks.
    pub(crate) fn set_aside(&mut self) {
        self.stale.extend(self.open.drain(..));
    }

    /// Whether the client may still hold an ack for `id` from a session lost unnoticed (so a new
    /// QoS 1 message under `id` would be taken for a re-send).
    pub(crate) fn is_stale(&self, id: PacketId) -> bool {
        self.stale.contains(&id)
    }

    /// Cuts bytes read from the transport into pieces that each complete at most one packet, and
    /// returns each piece with the packet it completes.
    pub(crate) fn split(&mut self, data: &[u8]) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < data.len() {
            let need = match FrameHeader::parse_in(self.protocol, &self.read, usize::MAX) {
                Ok(Some(header)) => header.frame_len() - self.read.len(),
                Ok(None) => 1, // the fixed header is not complete: one byte more
                Err(e) => return Err(format!("the broker sent malformed bytes: {e}")),
            };
            let take = need.min(data.len() - at);
            self.read.extend_from_slice(&data[at..at + take]);
            at += take;
            let packet = Packet::read_in(self.protocol, &mut self.read, usize::MAX)
                .map_err(|e| format!("the broker sent malformed bytes: {e}"))?;
            if packet.is_some() {
                pieces.push((start..at, packet));
                start = at;
            }
        }
        if start < data.len() {
            pieces.push((start..data.len(), None));
        }
        Ok(pieces)
    }

    /// The client is about to process `packet`.
    pub(crate) fn arrival(&mut self, packet: &Packet) {
        let Packet::Publish(Publish {
            packet_id: Some(id),
            qos,
            ..
        }) = packet
        else {
            return;
        };
        if let Some(log) = &mut self.log {
            log.push(format!("wire: client reads PUBLISH {id} {qos}"));
        }
        let answered = *qos == sansmq::packet::QoS::ExactlyOnce
            && self.unwritten_pubrecs.iter().any(|&(_, x)| x == *id);
        if self.enabled && !self.open.contains(id) && !self.stale.contains(id) && !answered {
            self.open.push_back(*id);
        }
    }

    /// Bytes the client just encoded for sending; returns the packets among them that are not
    /// acknowledgements of the broker's messages (PUBLISH, PINGREQ...).
    pub(crate) fn encoded(&mut self, bytes: &[u8]) -> Result<Vec<Packet>, String> {
        self.encoded.extend_from_slice(bytes);
        let mut others = Vec::new();
        while let Some(packet) = self
            .encoded
            .next_packet()
            .map_err(|e| format!("the client encoded malformed bytes: {e}"))?
        {
            self.encoded_end += packet.encoded_len_in(self.protocol) as u64;
            let (id, name) = match packet {
                Packet::PubAck(PubAck { packet_id, .. }) => (packet_id, "PUBACK"),
                Packet::PubRec(PubRec { packet_id, .. }) => {
                    self.unwritten_pubrecs
                        .push_back((self.encoded_end, packet_id));
                    (packet_id, "PUBREC")
                }
                other => {
                    others.push(other);
                    continue;
                }
            };
            if let Some(log) = &mut self.log {
                log.push(format!("wire: client sends {name} {id}"));
            }
            if !self.enabled {
                continue;
            }
            self.acks += 1;
            if let Some(at) = self.stale.iter().position(|&x| x == id) {
                self.stale.swap_remove(at);
                continue;
            }
            match self.open.iter().position(|&x| x == id) {
                Some(0) => {
                    self.open.pop_front();
                }
                Some(_) => {
                    let first = self.open[0];
                    return Err(format!(
                        "{name} {id} went out before the ack of PUBLISH {first}, which arrived \
                         first (MQTT-4.6.0-2/3)"
                    ));
                }
                None => {
                    return Err(format!(
                        "{name} {id} answers no PUBLISH that arrived (or answers one twice)"
                    ));
                }
            }
        }
        Ok(others)
    }
}
