//! `--ws`: MQTT over WebSocket (RFC 6455, MQTT 3.1.1 section 6) for one bench connection, as a
//! thin layer between its socket (or TLS) and its MQTT session, with no buffer of its own at rest.
//!
//! tungstenite makes the upgrade request and its key and parses and formats frame headers (the
//! clients' WebSocket transport in sansmq-mio runs on tungstenite too), but its `WebSocket`
//! keeps a read buffer allocated at its full size (128 KiB by default, zero-filled by the first
//! read) and an output buffer that never shrinks, and copies every message twice: that is more
//! than a whole idle bench client costs. So the frames are taken apart in place here instead:
//! the socket's bytes land in the session's own read buffer, as on TCP, and [`WebSocket::unframe`]
//! squeezes the frame headers out of what just arrived. Outgoing, the session's bytes are masked
//! into a small buffer that is given back once it is written.

use std::time::Instant;

use bytes::BytesMut;
use sansmq_driver::websocket::{SUBPROTOCOL, WebSocketError};
use tungstenite::handshake::client::generate_request;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// The most of the session's bytes masked into one frame: a turn's burst goes out in few frames
/// without holding more than this per connection.
const MAX_FRAME: usize = 64 * 1024;
/// The longest upgrade response accepted.
const MAX_RESPONSE: usize = 16 * 1024;
/// The longest frame header (RFC 6455 section 5.2: 2 bytes, 8 of length, 4 of mask).
const MAX_HEADER: usize = 14;
/// A control frame's payload is at most this long (RFC 6455 section 5.5).
const MAX_CONTROL: usize = 125;

/// What the current frame's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// MQTT bytes: kept in the read buffer.
    Data,
    /// A Ping's payload, gathered to answer it with a Pong.
    Ping,
    /// A Close's payload, gathered for its status code.
    Close,
    /// A Pong's payload: dropped.
    Skip,
}

/// What [`WebSocket::unframe`] found besides MQTT bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unframed {
    /// Carry on.
    Open,
    /// The broker sent a Close frame (with its status code, if any); the answering Close is
    /// queued.
    Closed(Option<u16>),
}

/// How far the WebSocket has come.
#[derive(Debug)]
enum State {
    /// The upgrade request is queued or sent (boxed: an open WebSocket keeps none of it).
    Upgrading(Box<Upgrade>),
    Open,
}

/// What the upgrade's answer is checked against.
#[derive(Debug)]
struct Upgrade {
    /// The `Sec-WebSocket-Accept` the answer must carry.
    accept: String,
    /// The answer so far.
    response: Vec<u8>,
    /// The path requested, without its query, for messages.
    path: String,
}

/// The WebSocket of one bench connection.
#[derive(Debug)]
pub(crate) struct WebSocket {
    state: State,
    /// A frame header cut by the end of a read.
    head: [u8; MAX_HEADER],
    head_len: u8,
    /// The current frame's payload, while some of it is still to come.
    frame: Option<Payload>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// The payload of a Ping or Close frame being read.
    control: Vec<u8>,
    /// Framed bytes not yet written (the upgrade request, frames, Pongs, the Close).
    out: Vec<u8>,
    /// Bytes at the start of `out` already written.
    written: usize,
    /// A Close frame is queued: nothing may follow it.
    closing: bool,
}

impl WebSocket {
    /// Queues the upgrade request for `path` on `host:port`, offering the `mqtt` subprotocol
    /// (MQTT-6.0.0-3) with a fresh key.
    pub(crate) fn new(host: &str, port: u16, path: &str) -> Result<Self, String> {
        use tungstenite::client::IntoClientRequest as _;
        let host = match host.contains(':') {
            true => format!("[{host}]"),
            false => host.to_owned(),
        };
        let url = format!("ws://{host}:{port}{path}");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("WebSocket upgrade request for {url}: {e}"))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
        let (out, key) =
            generate_request(request).map_err(|e| format!("WebSocket upgrade request: {e}"))?;
        Ok(Self {
            state: State::Upgrading(Box::new(Upgrade {
                accept: derive_accept_key(key.as_bytes()),
                response: Vec::new(),
                path: path.split_once('?').map_or(path, |(p, _)| p).to_owned(),
            })),
            head: [0; MAX_HEADER],
            head_len: 0,
            frame: None,
            remaining: 0,
            control: Vec::new(),
            out,
            written: 0,
            closing: false,
        })
    }

    /// Whether the upgrade is done.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Takes the bytes a read appended to `buf` after its first `from`: during the upgrade the
    /// server's answer (and any frames after it), then frames, whose headers and control frames
    /// are squeezed out in place, so that `buf` holds only MQTT bytes (MQTT-6.0.0-2: a packet may
    /// span frames, a frame may hold several). A protocol fault is an error that says what the
    /// server did.
    pub(crate) fn unframe(&mut self, buf: &mut BytesMut, from: usize) -> Result<Unframed, String> {
        let from = from.min(buf.len());
        if let State::Upgrading(upgrade) = &mut self.state {
            upgrade.response.extend_from_slice(&buf[from..]);
            buf.truncate(from);
            let Some(head) = upgrade_answer(&upgrade.response, &upgrade.accept, &upgrade.path)?
            else {
                return Ok(Unframed::Open);
            };
            let rest = upgrade.response.split_off(head);
            self.state = State::Open;
            buf.extend_from_slice(&rest);
        }
        let end = buf.len();
        let (mut r, mut w) = (from, from);
        let mut outcome = Unframed::Open;
        while r < end && outcome == Unframed::Open {
            let Some(payload) = self.frame else {
                let (taken, header) = self.take_header(&buf[r..end])?;
                r += taken;
                if let Some((payload, len)) = header {
                    self.frame = Some(payload);
                    self.remaining = len;
                    if len == 0 {
                        outcome = self.end_of_frame(payload);
                    }
                }
                continue;
            };
            let n = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(end - r);
            match payload {
                Payload::Data => {
                    if r != w {
                        buf.copy_within(r..r + n, w);
                    }
                    w += n;
                }
                Payload::Ping | Payload::Close => {
                    self.control.extend_from_slice(&buf[r..r + n]);
                }
                Payload::Skip => {}
            }
            r += n;
            self.remaining -= n as u64;
            if self.remaining == 0 {
                outcome = self.end_of_frame(payload);
            }
        }
        buf.truncate(w);
        Ok(outcome)
    }

    /// Reads a frame header from `input`, or as much of one as it holds; returns the bytes taken
    /// and, once the header is whole, what its payload is and how long.
    fn take_header(&mut self, input: &[u8]) -> Result<(usize, Option<(Payload, u64)>), String> {
        let old = usize::from(self.head_len);
        let n = (MAX_HEADER - old).min(input.len());
        self.head[old..old + n].copy_from_slice(&input[..n]);
        let mut cursor = std::io::Cursor::new(&self.head[..old + n]);
        let parsed = FrameHeader::parse(&mut cursor).map_err(|e| protocol(e.to_string()))?;
        let Some((header, len)) = parsed else {
            self.head_len = (old + n) as u8;
            return Ok((n, None));
        };
        self.head_len = 0;
        // `head[..old]` alone was not a whole header, so the header ends past it.
        let taken = (cursor.position() as usize).saturating_sub(old);
        Ok((taken, Some((check_header(&header, len)?, len))))
    }

    /// The current frame is whole: answer a Ping, take in a Close.
    fn end_of_frame(&mut self, payload: Payload) -> Unframed {
        self.frame = None;
        match payload {
            Payload::Data | Payload::Skip => Unframed::Open,
            Payload::Ping => {
                let ping = std::mem::take(&mut self.control);
                self.queue(OpCode::Control(Control::Pong), &ping);
                Unframed::Open
            }
            Payload::Close => {
                let close = std::mem::take(&mut self.control);
                let code = close
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
                // RFC 6455 section 5.5.1: answer with a Close, echoing the status code.
                let echo = code.map(u16::to_be_bytes);
                self.queue(
                    OpCode::Control(Control::Close),
                    echo.as_ref().map_or(&[], |c| c),
                );
                self.closing = true;
                Unframed::Closed(code)
            }
        }
    }

    /// Masks the session's next bytes (up to [`MAX_FRAME`]) into a binary frame, once the
    /// upgrade is done and what was framed before is written; tells the session they are taken.
    /// Returns whether a frame was made.
    pub(crate) fn frame_session(&mut self, client: &mut sansmq::Client, now: Instant) -> bool {
        if !self.is_open() || self.closing || !self.pending().is_empty() {
            return false;
        }
        let Some(bytes) = client.poll_transmit() else {
            return false;
        };
        let n = bytes.len().min(MAX_FRAME);
        self.queue(OpCode::Data(Data::Binary), &bytes[..n]);
        client.handle_transmitted(now, n);
        true
    }

    /// After the DISCONNECT: a Close frame (1000, normal closure), unless one went out already.
    pub(crate) fn close(&mut self) {
        if self.is_open() && !self.closing {
            self.queue(OpCode::Control(Control::Close), &1000_u16.to_be_bytes());
            self.closing = true;
        }
    }

    /// Framed bytes waiting for the socket.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// `n` bytes of [`pending`](Self::pending) are written; the buffer is given back once it is
    /// empty, so that an idle connection keeps none (an allocation per write costs far less
    /// than the write).
    pub(crate) fn consume(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.written = 0;
            self.out = Vec::new();
        }
    }

    /// Appends a masked frame (RFC 6455 section 5.3: a client masks every frame).
    fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.closing {
            return;
        }
        // The mask only keeps intermediaries from seeing predictable bytes; a bench's own
        // payloads need no cryptographic randomness for it.
        let key = fastrand::u32(..).to_ne_bytes();
        let header = FrameHeader {
            is_final: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(key),
        };
        self.out
            .reserve(header.len(payload.len() as u64) + payload.len());
        // Formatting into a Vec cannot fail.
        let _ = header.format(payload.len() as u64, &mut self.out);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        mask(&mut self.out[start..], key);
    }
}

/// What a frame header from the server announces, or why it is refused.
fn check_header(header: &FrameHeader, len: u64) -> Result<Payload, String> {
    // RFC 6455 section 5.1: a client must close the connection on a masked frame.
    if header.mask.is_some() {
        return Err(protocol(
            "the server masked a frame (RFC 6455 section 5.1)".into(),
        ));
    }
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(protocol(
            "a frame with a reserved bit set, no extension agreed".into(),
        ));
    }
    let control = |payload| {
        // RFC 6455 section 5.5: control frames are short and never fragmented.
        if len > MAX_CONTROL as u64 || !header.is_final {
            return Err(protocol(format!(
                "a control frame of {len} bytes or fragmented"
            )));
        }
        Ok(payload)
    };
    match header.opcode {
        OpCode::Data(Data::Binary | Data::Continue) => Ok(Payload::Data),
        // MQTT-6.0.0-1: MQTT travels in binary frames only.
        OpCode::Data(Data::Text) => Err(WebSocketError::TextFrame.to_string()),
        OpCode::Control(Control::Ping) => control(Payload::Ping),
        OpCode::Control(Control::Pong) => control(Payload::Skip),
        OpCode::Control(Control::Close) => control(Payload::Close),
        OpCode::Data(Data::Reserved(code)) | OpCode::Control(Control::Reserved(code)) => {
            Err(protocol(format!("a frame with the reserved opcode {code}")))
        }
    }
}

/// Why a connection ended during the upgrade (`cause`: how it ended).
pub(crate) fn no_upgrade(cause: &str) -> String {
    WebSocketError::NotWebSocket(format!(
        "it ended the connection instead of answering the upgrade ({cause}); is it a WebSocket port?"
    ))
    .to_string()
}

fn protocol(what: String) -> String {
    WebSocketError::Protocol(what).to_string()
}

/// Checks the server's answer to the upgrade once its head is whole; returns the head's length
/// (frames may follow it), or `None` while it is not whole.
fn upgrade_answer(response: &[u8], accept: &str, path: &str) -> Result<Option<usize>, String> {
    let not_websocket = |what: String| WebSocketError::NotWebSocket(what).to_string();
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let head = match answer.parse(response) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if response.len() > MAX_RESPONSE => {
            return Err(not_websocket(format!(
                "its answer to the upgrade is over {MAX_RESPONSE} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(not_websocket(format!("its answer is not HTTP ({e})"))),
    };
    let status = answer.code.unwrap_or(0);
    if status != 101 {
        return Err(WebSocketError::Refused {
            status,
            reason: answer.reason.filter(|r| !r.is_empty()).map(str::to_owned),
            path: path.to_owned(),
        }
        .to_string());
    }
    let header = |name: &str| {
        answer
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    // RFC 6455 section 4.1: the answer's checks, in its order.
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(not_websocket("a 101 without `Upgrade: websocket`".into()));
    }
    if !header("connection").is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(not_websocket("a 101 without `Connection: Upgrade`".into()));
    }
    if header("sec-websocket-accept").as_deref() != Some(accept) {
        return Err(not_websocket(
            "its Sec-WebSocket-Accept does not match the key sent".into(),
        ));
    }
    match header("sec-websocket-protocol") {
        Some(p) if p == SUBPROTOCOL => Ok(Some(head)),
        Some(p) => Err(WebSocketError::Subprotocol(format!("it selected {p:?}")).to_string()),
        None => Err(WebSocketError::Subprotocol("it selected none".into()).to_string()),
    }
}

/// XORs `bytes` with the 4-byte `key`, repeated (RFC 6455 section 5.3), a word at a time.
fn mask(bytes: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = bytes.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let mut value = [0; 4];
        value.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u32::from_ne_bytes(value) ^ word).to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n @ 126..=0xffff => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn answer(ws: &WebSocket, protocol: &str) -> Vec<u8> {
        let State::Upgrading(upgrade) = &ws.state else {
            panic!("not upgrading");
        };
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
            upgrade.accept
        )
        .into_bytes()
    }

    /// Feeds `stream` in pieces of `step` bytes, as reads would; what stays in the buffer.
    fn feed(ws: &mut WebSocket, stream: &[u8], step: usize) -> (Vec<u8>, Result<Unframed, String>) {
        let mut buf = BytesMut::new();
        let mut outcome = Ok(Unframed::Open);
        for piece in stream.chunks(step) {
            let from = buf.len();
            buf.extend_from_slice(piece);
            outcome = ws.unframe(&mut buf, from);
            if outcome != Ok(Unframed::Open) {
                break;
            }
        }
        (buf.to_vec(), outcome)
    }

    /// The frames in `out`, unmasked: (opcode, payload).
    fn sent_frames(mut out: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            let mut cursor = std::io::Cursor::new(out);
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let start = cursor.position() as usize;
            let mut payload = out[start..start + len as usize].to_vec();
            mask(
                &mut payload,
                header.mask.expect("a client masks every frame"),
            );
            frames.push((header.opcode, payload));
            out = &out[start + len as usize..];
        }
        frames
    }

    #[test]
    fn the_upgrade_request_offers_mqtt_on_the_path() {
        let ws = WebSocket::new("::1", 8083, "/mqtt?x=1").unwrap();
        let request = String::from_utf8(ws.pending().to_vec()).unwrap();
        assert!(
            request.starts_with("GET /mqtt?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Host: [::1]:8083\r\n"), "{request}");
        assert!(
            request.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
            "{request}"
        );
        assert!(!ws.is_open());
        assert!(matches!(&ws.state, State::Upgrading(u) if u.path == "/mqtt"));
    }

    #[test]
    fn frames_cut_anywhere_leave_only_the_mqtt_bytes_and_pings_are_answered() {
        let long: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let probe = WebSocket::new("h", 1, "/mqtt").unwrap();
        let mut stream = answer(&probe, "mqtt");
        stream.extend(frame(0x2, b"hello"));
        stream.extend(frame(0x9, b"ping!"));
        stream.extend(frame(0x2, &long));
        stream.extend(frame(0xA, b"pong"));
        stream.extend(frame(0x2, b""));
        stream.extend(frame(0x0, b"world"));
        let mut expected = b"hello".to_vec();
        expected.extend(&long);
        expected.extend(b"world");
        for step in 1..=stream.len() {
            let mut ws = WebSocket::new("h", 1, "/mqtt").unwrap();
            // The probe's key, so that its answer fits.
            if let (State::Upgrading(upgrade), State::Upgrading(probe)) =
                (&mut ws.state, &probe.state)
            {
                upgrade.accept.clone_from(&probe.accept);
            }
            let request = ws.pending().len();
            ws.consume(request);
            let (mqtt, outcome) = feed(&mut ws, &stream, step);
            assert_eq!(outcome, Ok(Unframed::Open), "step {step}");
            assert_eq!(mqtt, expected, "step {step}");
            assert!(ws.is_open());
            let pong = (OpCode::Control(Control::Pong), b"ping!".to_vec());
            assert_eq!(sent_frames(ws.pending()), [pong], "step {step}");
        }
    }

    /// A WebSocket whose upgrade is answered, and its request written.
    fn open() -> WebSocket {
        let mut ws = WebSocket::new("h", 1, "/mqtt").unwrap();
        let stream = answer(&ws, "mqtt");
        ws.consume(ws.pending().len());
        assert_eq!(feed(&mut ws, &stream, stream.len()).1, Ok(Unframed::Open));
        ws
    }

    #[test]
    fn random_frames_in_random_reads_keep_every_mqtt_byte_and_garbage_never_panics() {
        let mut rng = fastrand::Rng::with_seed(16);
        for _ in 0..200 {
            let (mut stream, mut expected, mut pings) = (Vec::new(), Vec::new(), 0);
            for _ in 0..rng.usize(1..12) {
                let len = match rng.u8(0..10) {
                    0 => rng.usize(65_536..70_000), // a 64-bit length
                    1..=3 => rng.usize(126..2_000), // a 16-bit length
                    _ => rng.usize(0..126),
                };
                let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                match rng.u8(0..6) {
                    0 => {
                        stream.extend(frame(0x9, &payload[..len.min(125)]));
                        pings += 1;
                    }
                    1 => stream.extend(frame(0xA, &payload[..len.min(125)])),
                    _ => {
                        stream.extend(frame(0x2, &payload));
                        expected.extend(payload);
                    }
                }
            }
            let mut ws = open();
            let mut buf = BytesMut::from(&b"kept"[..]);
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let (read, after) = rest.split_at(rng.usize(1..=rest.len().min(3_000)));
                let from = buf.len();
                buf.extend_from_slice(read);
                assert_eq!(ws.unframe(&mut buf, from), Ok(Unframed::Open));
                rest = after;
            }
            assert_eq!(&buf[..4], b"kept");
            assert_eq!(&buf[4..], expected);
            assert_eq!(sent_frames(ws.pending()).len(), pings);

            let garbage: Vec<u8> = (0..rng.usize(0..300)).map(|_| rng.u8(..)).collect();
            let mut buf = BytesMut::new();
            for read in garbage.chunks(rng.usize(1..20)) {
                let from = buf.len();
                buf.extend_from_slice(read);
                if ws.unframe(&mut buf, from) != Ok(Unframed::Open) {
                    break;
                }
            }
        }
    }

    #[test]
    fn a_close_is_answered_with_its_code_and_ends_the_connection() {
        let mut ws = WebSocket::new("h", 1, "/mqtt").unwrap();
        let mut stream = answer(&ws, "mqtt");
        stream.extend(frame(0x2, b"last"));
        stream.extend(frame(0x8, &1001_u16.to_be_bytes()));
        let request = ws.pending().len();
        ws.consume(request);
        let (mqtt, outcome) = feed(&mut ws, &stream, stream.len());
        assert_eq!(outcome, Ok(Unframed::Closed(Some(1001))));
        assert_eq!(mqtt, b"last");
        let close = (
            OpCode::Control(Control::Close),
            1001_u16.to_be_bytes().to_vec(),
        );
        assert_eq!(sent_frames(ws.pending()), [close]);
        // Nothing follows a Close.
        ws.close();
        assert_eq!(sent_frames(ws.pending()).len(), 1);
    }

    /// What a server sends, made for the client's key.
    type Server = dyn Fn(&WebSocket) -> Vec<u8>;

    #[test]
    fn what_mqtt_over_websocket_forbids_is_refused_by_name() {
        let cases: [(&Server, &str); 5] = [
            (
                &|ws| [answer(ws, "mqtt"), frame(0x1, b"text")].concat(),
                "text frame",
            ),
            (
                &|ws| [answer(ws, "mqtt"), vec![0x82, 0x81, 1, 2, 3, 4, 0]].concat(),
                "masked",
            ),
            (&|ws| answer(ws, "mqttv5"), "\"mqttv5\""),
            (
                &|_| b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                "upgrade of /mqtt: HTTP 404 Not Found",
            ),
            (&|_| b"\x20\x02\x00\x00".to_vec(), "not HTTP"),
        ];
        for (stream, expected) in cases {
            let mut ws = WebSocket::new("h", 1, "/mqtt?token=secret").unwrap();
            let stream = stream(&ws);
            let (_, outcome) = feed(&mut ws, &stream, stream.len());
            let error = outcome.unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn the_session_bytes_go_out_masked_after_the_upgrade_and_the_buffer_is_given_back() {
        let now = Instant::now();
        let mut client = sansmq::Client::new(sansmq::Config::new(
            sansmq::MqttString::try_from("c").unwrap(),
        ));
        client.connect(now).unwrap();
        let connect = client.poll_transmit().unwrap().to_vec();
        let mut ws = WebSocket::new("h", 1, "/mqtt").unwrap();
        assert!(
            !ws.frame_session(&mut client, now),
            "not before the upgrade"
        );
        let stream = answer(&ws, "mqtt");
        let request = ws.pending().len();
        ws.consume(request);
        feed(&mut ws, &stream, stream.len()).1.unwrap();
        assert!(ws.frame_session(&mut client, now));
        assert!(client.poll_transmit().is_none());
        let binary = (OpCode::Data(Data::Binary), connect);
        assert_eq!(sent_frames(ws.pending()), [binary]);
        ws.consume(ws.pending().len() - 1);
        assert_eq!(ws.pending().len(), 1);
        ws.consume(1);
        assert_eq!(ws.out.capacity(), 0);
    }

    #[test]
    fn an_open_websocket_is_a_few_words() {
        // Per connection, beside the session: the upgrade's state is boxed and given back,
        // the buffers are empty at rest.
        assert!(size_of::<WebSocket>() <= 96, "{}", size_of::<WebSocket>());
    }

    #[test]
    fn masking_is_the_repeated_key() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..11 {
            let data: Vec<u8> = (0..len).map(|i: u8| i.wrapping_mul(37)).collect();
            let mut masked = data.clone();
            mask(&mut masked, key);
            let expected: Vec<u8> = data
                .iter()
                .zip(key.iter().cycle())
                .map(|(d, k)| d ^ k)
                .collect();
            assert_eq!(masked, expected);
        }
    }
}
