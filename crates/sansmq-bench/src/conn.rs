//! [`Conn`]: one bench client: a socket, a `sansmq::Client`, and the few words the bench keeps
//! about it. The socket work (read into the session's own buffer, write what it has queued) is
//! here; what the events mean is the event loop's.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::time::Instant;

use mio::net::TcpStream;
use sansmq::Client;
use sansmq::packet::PacketId;
use sansmq_driver::ReadSize;

use crate::sequence::Sequences;
use crate::tls::Session;

/// The largest read: a burst of messages is taken in few syscalls.
const MAX_READ: usize = 64 * 1024;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not yet connected, or waiting to reconnect.
    Waiting,
    /// TCP connect under way; CONNECT is queued in the session.
    Dialing,
    /// TCP is up; CONNECT sent, CONNACK awaited.
    Handshake,
    /// CONNACK accepted.
    Connected,
    /// DISCONNECT requested.
    Closing,
    /// Over for good.
    Dead,
}

/// What a read found.
#[derive(Debug)]
pub(crate) enum Read {
    /// The read filled its room: read again.
    Again,
    /// Nothing more to read now.
    Done,
    /// The connection is over (EOF or an error); the cause, for the summary.
    Closed(String),
}

/// What a write found.
#[derive(Debug)]
pub(crate) enum Io {
    /// Carry on.
    Open,
    /// The connection is over (EOF or an error); the cause, for the summary.
    Closed(String),
}

/// One bench client.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) socket: Option<TcpStream>,
    /// `%i`: `-n` plus the client's place in the whole bench.
    pub(crate) sequence: u32,
    pub(crate) phase: Phase,
    /// When the current connect started.
    pub(crate) started: Instant,
    read_size: ReadSize,
    /// The earliest session deadline waiting in the loop's timers.
    pub(crate) armed: Option<Instant>,
    /// The next message's sequence number.
    pub(crate) next_message: u64,
    /// QoS 1/2 messages awaiting their acknowledgement, and when they were published.
    pub(crate) pending: VecDeque<(PacketId, Instant)>,
    /// Its random wait after CONNACK is over: it may publish.
    pub(crate) publishing: bool,
    /// Reading stopped because the session's transmit buffer was full.
    read_paused: bool,
    /// `--ssl`: the TLS session between the socket and the MQTT session.
    pub(crate) tls: Option<Box<Session>>,
    /// In the loop's list of connections to write at the end of the turn.
    pub(crate) dirty: bool,
    /// Failed connects in a row (reconnect backoff).
    pub(crate) failures: u32,
    /// What a subscriber received, per publisher; made at the first message.
    pub(crate) sequences: Option<Box<Sequences>>,
}

impl Conn {
    pub(crate) fn new(client: Client, sequence: u32, now: Instant) -> Self {
        Self {
            client,
            socket: None,
            sequence,
            phase: Phase::Waiting,
            started: now,
            read_size: ReadSize::new(MAX_READ),
            armed: None,
            next_message: 0,
            pending: VecDeque::new(),
            publishing: false,
            read_paused: false,
            tls: None,
            dirty: false,
            failures: 0,
            sequences: None,
        }
    }

    /// After a readiness event while dialing: whether TCP is up (`Ok(false)`: not yet).
    pub(crate) fn check_dialed(&mut self) -> Result<bool, String> {
        let Some(socket) = &self.socket else {
            return Err("no socket".to_owned());
        };
        match socket.take_error() {
            Ok(Some(e)) | Err(e) => return Err(e.to_string()),
            Ok(None) => {}
        }
        match socket.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One read into the session's buffer, then `handle_read`. Drain the session's events
    /// afterwards (their payloads are slices of that buffer), then call
    /// [`shrink`](Self::shrink).
    pub(crate) fn read_once(&mut self, now: Instant) -> Read {
        if !self.client.wants_read() {
            self.read_paused = true;
            return Read::Done;
        }
        self.read_paused = false;
        let Some(socket) = self.socket.as_mut() else {
            return Read::Done;
        };
        if let Some(session) = self.tls.as_mut() {
            return crate::tls::read(session, socket, &mut self.client, now);
        }
        let room = self.read_size.next();
        let buf = self.client.read_buffer();
        let len = buf.len();
        buf.resize(len + room, 0);
        let result = socket.read(&mut buf[len..]);
        let got = *result.as_ref().unwrap_or(&0);
        buf.truncate(len + got);
        match result {
            Ok(0) => Read::Closed("closed by the broker".to_owned()),
            Ok(n) => {
                self.read_size.record(room, n);
                self.client.handle_read(now);
                // A short read emptied the socket; edge-triggered readiness reports more.
                if n < room { Read::Done } else { Read::Again }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Done,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Again,
            Err(e) => Read::Closed(e.to_string()),
        }
    }

    /// Gives back a read buffer that a burst grew and the decoder emptied.
    pub(crate) fn shrink(&mut self) {
        self.read_size.shrink(self.client.read_buffer());
    }

    /// Writes what the session has queued, as far as the socket takes it.
    pub(crate) fn flush(&mut self, now: Instant) -> Io {
        let Some(socket) = self.socket.as_mut() else {
            return Io::Open;
        };
        if self.phase == Phase::Dialing {
            return Io::Open; // nothing can be written before TCP is up
        }
        if let Some(session) = self.tls.as_mut() {
            return crate::tls::flush(session, socket, &mut self.client, now);
        }
        while let Some(bytes) = self.client.poll_transmit() {
            match socket.write(bytes) {
                Ok(0) => return Io::Closed("the socket took no bytes".to_owned()),
                Ok(n) => self.client.handle_transmitted(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Io::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Io::Closed(e.to_string()),
            }
        }
        Io::Open
    }

    /// Whether reading stopped for a full transmit buffer and may go on now.
    pub(crate) fn may_resume_reading(&self) -> bool {
        self.read_paused && self.client.wants_read()
    }

    /// Bytes queued for the socket.
    pub(crate) fn unwritten(&self) -> usize {
        self.client.poll_transmit().map_or(0, <[u8]>::len)
    }
}
