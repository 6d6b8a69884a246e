//! One client's network connection: its transport, read buffer, bounded write buffer and timers.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::num::NonZeroU16;

use bytes::BytesMut;
use mio::Registry;
use sansmq::TopicName;
use sansmq::packet::{DecodeError, LastWill, Packet, Protocol};

use crate::auth::Grant;
use crate::read_buffer::{IncomingMeters, ReadBuffer};
use crate::transport::Transport;
/// A buffer this large that is empty is given back to the allocator: a client that was sent one
/// big packet must not keep its memory while it idles.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Accepted; its first packet must be CONNECT (MQTT-3.1.0-1), before `deadline` if there is
    /// one.
    AwaitingConnect { deadline: Option<Instant> },
    /// CONNECT accepted.
    Connected(Client),
    /// Closing: the remaining output (a refusing CONNACK) is flushed, then it is closed, at the
    /// latest at `deadline`. Nothing more is read.
    Closing { deadline: Instant },
}

/// What a connected client said in its CONNECT and was granted.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) clean_session: bool,
    /// 1.5 × the keep-alive (MQTT-3.1.2-24), or `None` for keep-alive 0.
    pub(crate) keep_alive_limit: Option<Duration>,
    /// Published if the connection ends without DISCONNECT (MQTT-3.1.2-8).
    pub(crate) will: Option<Box<LastWill>>,
    /// What an ApsaraMQ login may do (everything outside ApsaraMQ mode).
    pub(crate) grant: Grant,
    /// MQTT 5: the Session Expiry Interval in force, from CONNECT or DISCONNECT (0 for MQTT
    /// 3.1.1, whose clean session decides instead).
    pub(crate) session_expiry: u32,
    /// MQTT 5: the Topic Aliases this client set for its PUBLISHes, within
    /// `topic_alias_maximum` (MQTT 5.0 section 3.3.2.3.4). They live as long as the connection.
    pub(crate) topic_aliases: HashMap<NonZeroU16, TopicName>,
    /// MQTT 5: the highest Topic Alias the broker accepts from this client (0: none).
    pub(crate) topic_alias_maximum: u16,
    /// MQTT 5: the Receive Maximum the broker announced: how many QoS 2 PUBLISHes may await
    /// their PUBREL at once (QoS 1 ones are acknowledged at once).
    pub(crate) receive_maximum: usize,
}

/// What one read from the socket gave.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// Bytes were added to the read buffer.
    Data,
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Closed,
    /// The socket failed.
    Failed(io::Error),
    /// The transport was misused (a WebSocket text frame, an oversized frame, a failed
    /// upgrade): why, for the log.
    Refused(String),
}

/// A client's connection, over TCP or WebSocket.
#[derive(Debug)]
pub(crate) struct Connection {
    transport: Transport,
    pub(crate) peer: SocketAddr,
    input: ReadBuffer,
    out: BytesMut,
    out_limit: usize,
    pub(crate) phase: Phase,
    /// The protocol the CONNECT named: every packet to this client is encoded in it.
    pub(crate) protocol: Protocol,
    /// MQTT 5: the client's Receive Maximum, how many QoS 1/2 PUBLISHes it takes unacknowledged
    /// (`usize::MAX` when it set none or speaks MQTT 3.1.1; MQTT-3.3.4-9).
    pub(crate) receive_maximum: usize,
    /// MQTT 5: the client's Maximum Packet Size (`usize::MAX` when none; MQTT-3.1.2-24).
    pub(crate) max_packet_size: usize,
    /// When the last control packet arrived; the keep-alive counts from it.
    pub(crate) last_received: Instant,
    /// The socket may have bytes to read (edge-triggered readiness not yet drained).
    pub(crate) readable: bool,
    /// The socket may take more bytes.
    pub(crate) writable: bool,
    /// The peer closed its side or the socket failed (seen on a readiness event, so known even
    /// while the connection is not read from).
    pub(crate) peer_closed: bool,
}

impl Connection {
    /// A new connection refusing packets over `max_packet_size` bytes, whose read buffer counts in
    /// `incoming`, whose output takes messages up to `out_limit` bytes (0: no limit for both), and
    /// which is closed at `connect_deadline` (if any) unless a CONNECT came.
    pub(crate) fn new(
        transport: Transport,
        peer: SocketAddr,
        max_packet_size: usize,
        incoming: IncomingMeters,
        out_limit: usize,
        connect_deadline: Option<Instant>,
        now: Instant,
    ) -> Self {
        Self {
            transport,
            peer,
            input: ReadBuffer::new(max_packet_size, incoming),
            out: BytesMut::new(),
            out_limit: match out_limit {
                0 => usize::MAX,
                limit => limit,
            },
            phase: Phase::AwaitingConnect {
                deadline: connect_deadline,
            },
            protocol: Protocol::Mqtt311,
            receive_maximum: usize::MAX,
            max_packet_size: usize::MAX,
            last_received: now,
            readable: true,
            writable: true,
            peer_closed: false,
        }
    }

    /// Says goodbye where the transport has a way to (a WebSocket Close frame), after the
    /// remaining output, then takes the socket out of the event loop's registry.
    pub(crate) fn end(&mut self, registry: &Registry, shutting_down: bool) {
        self.transport.close(shutting_down);
        self.transport.deregister(registry);
    }

    pub(crate) fn client(&self) -> Option<&Client> {
        match &self.phase {
            Phase::Connected(client) => Some(client),
            _ => None,
        }
    }

    pub(crate) fn client_mut(&mut self) -> Option<&mut Client> {
        match &mut self.phase {
            Phase::Connected(client) => Some(client),
            _ => None,
        }
    }

    /// Whether a message may be added to the output: what waits to be written, the transport's
    /// frame in flight included, is below the limit (so a message bigger than the limit still
    /// goes into an empty buffer, alone).
    pub(crate) fn has_room(&self) -> bool {
        self.buffered_out() < self.out_limit
    }

    /// Whether to read from the client now: not closing, and its output is below the limit. A
    /// client that does not read what it is sent is not read from either, so TCP flow control
    /// slows it down instead of the broker buffering its requests' answers without bound.
    ///
    /// A client sending a packet of more than
    /// [`SMALL_PACKET`](crate::read_buffer::SMALL_PACKET) bytes is only read once the
    /// packet is admitted against the broker's incoming limit: until then it waits (in the
    /// kernel, then the client) for other big packets to complete, and small ones still flow.
    pub(crate) fn wants_read(&self) -> bool {
        !matches!(self.phase, Phase::Closing { .. }) && self.has_room() && !self.held_back()
    }

    /// Whether reading waits for a big packet to be admitted.
    pub(crate) fn held_back(&self) -> bool {
        self.input.held_back()
    }

    /// Output not yet written: the connection's buffer and what its transport holds.
    pub(crate) fn buffered_out(&self) -> usize {
        self.out.len().saturating_add(self.transport.unsent())
    }

    pub(crate) fn has_output(&self) -> bool {
        self.buffered_out() != 0
    }

    /// Encodes `packet` into the output buffer. Everything the broker sends was decoded and
    /// validated first, so encoding cannot fail in practice; if it does, the packet is skipped and
    /// logged rather than sending a broken frame.
    pub(crate) fn send(&mut self, packet: impl Into<Packet>) {
        let packet = packet.into();
        // MQTT 3.1.1's own encoder, so that its sessions pay nothing for MQTT 5.
        let encoded = if self.protocol.is_v5() {
            packet.encode_in(self.protocol, &mut self.out)
        } else {
            packet.encode(&mut self.out)
        };
        if let Err(error) = encoded {
            tracing::error!(peer = %self.peer, %error, "cannot encode {}", packet.packet_type());
        }
    }

    /// Reads one chunk (TCP) or message (WebSocket) into the read buffer. The buffer grows by
    /// what arrived, whatever length the packet's fixed header announced: a client that
    /// announces a big packet and trickles it costs what it has sent so far.
    pub(crate) fn read_chunk(&mut self) -> ReadOutcome {
        self.input.admit();
        let outcome = self.transport.read(&mut self.input);
        if matches!(outcome, ReadOutcome::WouldBlock) {
            self.readable = false;
        }
        outcome
    }

    /// The next whole packet read, `Ok(None)` if more bytes are needed, or why the stream is
    /// broken (see [`ReadBuffer::next_packet`]).
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, DecodeError> {
        self.input.next_packet(self.protocol)
    }

    /// Writes as much buffered output as the socket takes.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.writable && !self.transport.write(&mut self.out)? {
            self.writable = false;
        }
        if self.out.is_empty() && self.out.capacity() > SHRINK_ABOVE {
            self.out = BytesMut::new();
        }
        Ok(())
    }

    /// When this connection must be closed unless something happens first.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::AwaitingConnect { deadline } => *deadline,
            Phase::Closing { deadline } => Some(*deadline),
            Phase::Connected(client) => client
                .keep_alive_limit
                .and_then(|limit| self.last_received.checked_add(limit)),
        }
    }
}
