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
use crate::websocket::{Unframed, WebSocket};

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
    /// `--ws`: the WebSocket between the socket (or TLS) and the MQTT session.
    pub(crate) ws: Option<Box<WebSocket>>,
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
            ws: None,
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
        let start = self.client.read_buffer().len();
        let mut read = match self.tls.as_mut() {
            Some(session) => crate::tls::read(session, socket, self.client.read_buffer()),
            None => {
                let room = self.read_size.next();
                let buf = self.client.read_buffer();
                buf.resize(start + room, 0);
                let result = socket.read(&mut buf[start..]);
                buf.truncate(start + *result.as_ref().unwrap_or(&0));
                match result {
                    Ok(0) => Read::Closed("closed by the broker".to_owned()),
                    Ok(n) => {
                        self.read_size.record(room, n);
                        // A short read emptied the socket; edge-triggered readiness reports more.
                        if n < room { Read::Done } else { Read::Again }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Done,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Again,
                    Err(e) => Read::Closed(e.to_string()),
                }
            }
        };
        if let Some(ws) = self.ws.as_mut() {
            match ws.unframe(self.client.read_buffer(), start) {
                Ok(Unframed::Open) => {
                    if let (Read::Closed(cause), false) = (&read, ws.is_open()) {
                        // A server that is not WebSocket (an MQTT port, say) hangs up on the
                        // request.
                        read = Read::Closed(crate::websocket::no_upgrade(cause));
                    }
                }
                Ok(Unframed::Closed(code)) => {
                    let code = code.map(|c| format!(" (code {c})")).unwrap_or_default();
                    read = Read::Closed(format!("the broker closed the WebSocket{code}"));
                }
                Err(e) => read = Read::Closed(e),
            }
        }
        // What came before an end is still the session's.
        if self.client.read_buffer().len() > start {
            self.client.handle_read(now);
        }
        if matches!(read, Read::Closed(_)) && self.ws.is_some() {
            // The Close answering the broker's, if the socket takes it at once.
            let _ = self.flush(now);
        }
        read
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
        if let Some(ws) = self.ws.as_mut() {
            return flush_websocket(ws, self.tls.as_deref_mut(), socket, &mut self.client, now);
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

    /// After the DISCONNECT: writes it, then (`--ws`) a Close frame, as far as the socket takes
    /// them; the connection is closed next.
    pub(crate) fn flush_last(&mut self, now: Instant) {
        let _ = self.flush(now);
        if let Some(ws) = self.ws.as_mut() {
            ws.close();
            let _ = self.flush(now);
        }
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

/// Frames what `client` has queued and writes the frames (the upgrade request first, Pongs, the
/// Close) to `socket`, through TLS when there is some, as far as they are taken.
fn flush_websocket(
    ws: &mut WebSocket,
    mut tls: Option<&mut Session>,
    socket: &mut TcpStream,
    client: &mut Client,
    now: Instant,
) -> Io {
    loop {
        if ws.pending().is_empty() && !ws.frame_session(client, now) {
            break;
        }
        let result = match tls.as_deref_mut() {
            Some(session) => crate::tls::write(session, socket, ws.pending()),
            None => socket.write(ws.pending()),
        };
        match result {
            Ok(0) => return Io::Closed("the socket took no bytes".to_owned()),
            Ok(n) => ws.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Io::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Io::Closed(e.to_string()),
        }
    }
    match tls.map_or(Ok(()), |session| crate::tls::push(session, socket)) {
        Ok(()) => Io::Open,
        Err(e) => Io::Closed(e.to_string()),
    }
}
