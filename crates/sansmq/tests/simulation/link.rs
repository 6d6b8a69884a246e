//! The seeded network between the client and the model broker.
//!
//! Each connection is two ordered byte pipes (TCP-like: bytes arrive in order, each chunk after a
//! latency, never earlier than the one before it). The client's writes are limited by a send window
//! (partial writes, backpressure); reads arrive in random pieces. Faults: a cut after a chosen
//! number of bytes in one direction (so anywhere, mid-packet included), an abrupt break (reset),
//! a black hole (bytes vanish and nobody is told: only keep-alive finds it), latency spikes, and a
//! broker that stops reading a connection (its bytes pile up until the client's socket takes no
//! more). Either end reads only while it wants to: the client's driver stops while its transmit
//! buffer is full ([`Net::set_client_reading`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use sansmq_sim_support::Rng;

pub(crate) type ConnId = u64;

/// A direction on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    ToBroker,
    ToClient,
}

/// Something the network hands to one end.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// Bytes read by the client.
    ToClient(ConnId, Vec<u8>),
    /// Bytes read by the broker.
    ToBroker(ConnId, Vec<u8>),
    /// The client's end learns the connection is over (EOF or reset).
    ClientClosed(ConnId),
    /// The broker's end learns the connection is over.
    BrokerClosed(ConnId),
}

#[derive(Default)]
struct Pipe {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    last_at: Option<Instant>,
    /// Deliver this many more bytes, then break the connection.
    cut_after: Option<usize>,
    /// The writer closed its end: the reader gets EOF after the last chunk.
    fin: bool,
}

impl Pipe {
    fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }
}

struct Conn {
    to_broker: Pipe,
    to_client: Pipe,
    latency: Duration,
    jitter: Duration,
    /// Extra latency for chunks written until then.
    spike: Option<(Instant, Duration)>,
    /// Bytes vanish, closes are never seen by the peer.
    blackholed: bool,
    /// Reset: nothing more is carried.
    broken: bool,
    /// The broker reads what the client sends (it never resumes once stopped).
    broker_reading: bool,
    /// The socket buffers toward the broker take nothing more (only while it does not read).
    send_full: bool,
    /// The client's driver reads (it stops while the client's transmit buffer is full).
    client_reading: bool,
    /// The end's owner has not closed it.
    client_open: bool,
    broker_open: bool,
    /// The end was told (or will be told) that the connection is over.
    client_told: bool,
    broker_told: bool,
}

impl Conn {
    fn pipe(&mut self, dir: Dir) -> &mut Pipe {
        match dir {
            Dir::ToBroker => &mut self.to_broker,
            Dir::ToClient => &mut self.to_client,
        }
    }

    fn delay(&self, now: Instant, rng: &mut Rng) -> Duration {
        let jitter_ms = self.jitter.as_millis() as u64;
        let mut d = self.latency + Duration::from_millis(rng.range(0, jitter_ms));
        if let Some((until, extra)) = self.spike {
            if now < until {
                d += extra;
            }
        }
        d
    }
}

/// What the network did, for the run's statistics.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NetStats {
    pub(crate) partial_writes: u64,
    pub(crate) blocked_writes: u64,
    pub(crate) split_reads: u64,
    pub(crate) cuts_to_broker: u64,
    pub(crate) cuts_to_client: u64,
    pub(crate) breaks: u64,
}

pub(crate) struct Net {
    conns: BTreeMap<ConnId, Conn>,
    /// Close notifications: (when, to the client?, connection).
    notices: Vec<(Instant, bool, ConnId)>,
    next_id: ConnId,
    /// Bytes the client may have in flight toward the broker (its socket send buffer).
    pub(crate) capacity: usize,
    /// Largest single write the socket takes.
    pub(crate) max_write: usize,
    /// Percent of reads that come in more than one piece.
    pub(crate) split_percent: u64,
    pub(crate) latency_ms: (u64, u64),
    pub(crate) stats: NetStats,
}

impl Net {
    pub(crate) fn new(capacity: usize, max_write: usize, split_percent: u64) -> Self {
        Self {
            conns: BTreeMap::new(),
            notices: Vec::new(),
            next_id: 1,
            capacity,
            max_write,
            split_percent,
            latency_ms: (0, 30),
            stats: NetStats::default(),
        }
    }

    /// A new connection (the broker is up and accepted it).
    pub(crate) fn open(&mut self, rng: &mut Rng) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        let latency = rng.millis(self.latency_ms.0, self.latency_ms.1);
        let jitter = rng.millis(0, 20);
        self.conns.insert(
            id,
            Conn {
                to_broker: Pipe::default(),
                to_client: Pipe::default(),
                latency,
                jitter,
                spike: None,
                blackholed: false,
                broken: false,
                broker_reading: true,
                send_full: false,
                client_reading: true,
                client_open: true,
                broker_open: true,
                client_told: false,
                broker_told: false,
            },
        );
        id
    }

    /// Whether nothing is in flight on `conn` in either direction.
    pub(crate) fn is_idle(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_none_or(|c| c.to_broker.chunks.is_empty() && c.to_client.chunks.is_empty())
    }

    /// The client writes; returns how many bytes the socket took (maybe fewer, maybe none).
    pub(crate) fn client_write(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
        rng: &mut Rng,
    ) -> usize {
        let capacity = self.capacity;
        let max_write = self.max_write;
        let Some(c) = self.conns.get_mut(&conn) else {
            return data.len(); // gone: the bytes go nowhere
        };
        if c.broken || c.blackholed || !c.broker_open {
            return data.len();
        }
        let room = if c.send_full {
            0
        } else {
            capacity.saturating_sub(c.to_broker.bytes)
        };
        let mut n = data.len().min(room);
        if n > 0 && rng.percent(30) {
            n = n.min(rng.usize(1, max_write));
        }
        if n == 0 {
            self.stats.blocked_writes += 1;
            return 0;
        }
        if n < data.len() {
            self.stats.partial_writes += 1;
        }
        let delay = c.delay(now, rng);
        push(&mut c.to_broker, now + delay, &data[..n]);
        n
    }

    /// The broker writes (its buffers are not under test: no limit).
    pub(crate) fn broker_write(&mut self, now: Instant, conn: ConnId, data: &[u8], rng: &mut Rng) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.broken || c.blackholed || !c.client_open || !c.broker_open {
            return;
        }
        let delay = c.delay(now, rng);
        push(&mut c.to_client, now + delay, data);
    }

    /// One end closes its side (after its last writes, which still arrive, then EOF).
    pub(crate) fn close(&mut self, now: Instant, conn: ConnId, client_side: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (own, peer_open, peer_told, toward_own, from_own) = if client_side {
            (
                &mut c.client_open,
                c.broker_open,
                c.broker_told,
                &mut c.to_client,
                &mut c.to_broker,
            )
        } else {
            (
                &mut c.broker_open,
                c.client_open,
                c.client_told,
                &mut c.to_broker,
                &mut c.to_client,
            )
        };
        if !*own {
            return;
        }
        *own = false;
        toward_own.clear();
        from_own.fin = true;
        if !c.broken && !c.blackholed && peer_open && !peer_told {
            let at = from_own.last_at.map_or(now, |t| t.max(now)) + c.latency;
            self.notices.push((at, !client_side, conn));
            if client_side {
                c.broker_told = true;
            } else {
                c.client_told = true;
            }
        }
        if !c.client_open && !c.broker_open {
            self.conns.remove(&conn);
        }
    }

    /// A reset: both ends are told (unless the connection is a black hole), nothing in flight
    /// arrives.
    pub(crate) fn break_conn(&mut self, now: Instant, conn: ConnId, rng: &mut Rng) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.broken {
            return;
        }
        self.stats.breaks += 1;
        c.broken = true;
        c.to_broker.clear();
        c.to_client.clear();
        if c.blackholed {
            return;
        }
        let latency_ms = c.latency.as_millis() as u64;
        if c.client_open && !c.client_told {
            c.client_told = true;
            let at = now + Duration::from_millis(rng.range(0, 2 * latency_ms + 1));
            self.notices.push((at, true, conn));
        }
        if c.broker_open && !c.broker_told {
            c.broker_told = true;
            let at = now + Duration::from_millis(rng.range(0, 2 * latency_ms + 1));
            self.notices.push((at, false, conn));
        }
    }

    /// From now on bytes vanish and closes go unseen.
    pub(crate) fn blackhole(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.blackholed = true;
            c.to_broker.clear();
            c.to_client.clear();
        }
    }

    /// The broker stops reading `conn` for good; armed cuts are disarmed, so only the client can end
    /// it. With `full`, the socket buffers on the way are full already: the client's writes take
    /// nothing more. `None` if the connection no longer carries anything (reset, black hole,
    /// closed); else whether bytes toward the broker were in flight (they will never be read).
    pub(crate) fn stop_broker_reads(&mut self, conn: ConnId, full: bool) -> Option<bool> {
        let c = self.conns.get_mut(&conn)?;
        if c.broken || c.blackholed || !c.broker_open || !c.client_open {
            return None;
        }
        c.broker_reading = false;
        c.send_full = full;
        c.to_broker.cut_after = None;
        c.to_client.cut_after = None;
        Some(!c.to_broker.chunks.is_empty())
    }

    /// Whether the client's driver reads `conn` (data and EOF wait while it does not).
    pub(crate) fn set_client_reading(&mut self, conn: ConnId, reading: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client_reading = reading;
        }
    }

    /// Break the connection once `bytes` more bytes have arrived in `dir`.
    pub(crate) fn arm_cut(&mut self, conn: ConnId, dir: Dir, bytes: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pipe(dir).cut_after = Some(bytes);
        }
    }

    /// Chunks written until `until` take `extra` longer.
    pub(crate) fn spike(&mut self, conn: ConnId, until: Instant, extra: Duration) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.spike = Some((until, extra));
        }
    }

    /// When something is next due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let chunks = self.conns.values().flat_map(|c| {
            [
                c.to_broker.chunks.front().filter(|_| c.broker_reading),
                c.to_client.chunks.front().filter(|_| c.client_reading),
            ]
            .into_iter()
            .flatten()
            .map(|(at, _)| *at)
        });
        let notices = self.notices.iter().filter(|n| self.notice_readable(n));
        chunks.chain(notices.map(|n| n.0)).min()
    }

    /// A close notice reaches the client only while its driver reads.
    fn notice_readable(&self, &(_, to_client, conn): &(Instant, bool, ConnId)) -> bool {
        !to_client || self.conns.get(&conn).is_none_or(|c| c.client_reading)
    }

    /// The next thing due at `now`, if any: data before EOF at the same instant.
    pub(crate) fn poll(&mut self, now: Instant, rng: &mut Rng) -> Option<NetEvent> {
        let mut best: Option<(Instant, ConnId, Dir)> = None;
        for (&id, c) in &self.conns {
            for dir in [Dir::ToBroker, Dir::ToClient] {
                let pipe = match dir {
                    Dir::ToBroker if c.broker_reading => &c.to_broker,
                    Dir::ToClient if c.client_reading => &c.to_client,
                    _ => continue,
                };
                if let Some((at, _)) = pipe.chunks.front() {
                    if *at <= now && best.is_none_or(|b| *at < b.0) {
                        best = Some((*at, id, dir));
                    }
                }
            }
        }
        if let Some((_, id, dir)) = best {
            return Some(self.deliver(now, id, dir, rng));
        }
        loop {
            let at = self
                .notices
                .iter()
                .enumerate()
                .filter(|(_, n)| n.0 <= now && self.notice_readable(n))
                .min_by_key(|(_, n)| n.0)
                .map(|(i, _)| i)?;
            let (_, to_client, conn) = self.notices.swap_remove(at);
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            // Told only if that end is still open (the owner may have closed it meanwhile).
            if to_client && c.client_open {
                return Some(NetEvent::ClientClosed(conn));
            }
            if !to_client && c.broker_open {
                return Some(NetEvent::BrokerClosed(conn));
            }
        }
    }

    fn deliver(&mut self, now: Instant, id: ConnId, dir: Dir, rng: &mut Rng) -> NetEvent {
        let split_percent = self.split_percent;
        let c = self.conns.get_mut(&id).expect("chosen above");
        let pipe = c.pipe(dir);
        let (at, mut data) = pipe.chunks.pop_front().expect("chosen above");
        if data.len() > 1 && rng.percent(split_percent) {
            // A read that gets only part of what arrived; the rest is read next.
            let n = rng.usize(1, data.len() - 1);
            let rest = data.split_off(n);
            pipe.chunks.push_front((at, rest));
            self.stats.split_reads += 1;
        }
        pipe.bytes -= data.len();
        let mut cut = false;
        if let Some(left) = pipe.cut_after.as_mut() {
            if *left <= data.len() {
                data.truncate(*left);
                cut = true;
            } else {
                *left -= data.len();
            }
        }
        if cut {
            match dir {
                Dir::ToBroker => self.stats.cuts_to_broker += 1,
                Dir::ToClient => self.stats.cuts_to_client += 1,
            }
            self.break_conn(now, id, rng);
        }
        match dir {
            Dir::ToBroker => NetEvent::ToBroker(id, data),
            Dir::ToClient => NetEvent::ToClient(id, data),
        }
    }
}

fn push(pipe: &mut Pipe, at: Instant, data: &[u8]) {
    // In order: never before the chunk ahead of it.
    let at = pipe.last_at.map_or(at, |last| at.max(last));
    pipe.last_at = Some(at);
    pipe.bytes += data.len();
    pipe.chunks.push_back((at, data.to_vec()));
}
