//! Measures a `sansmq broker` process under the abuse scenarios of issue 11: its resident memory
//! (peak and current, from /proc) and what its clients saw.
//!
//! ```text
//! cargo build -p sansmq-cli
//! cargo run -p sansmq-broker --example abuse -- target/debug/sansmq <scenario> [numbers...] [-- broker flags...]
//!
//!   trickle   CONNECTIONS PACKET_BYTES [SENT_BYTES]
//!                                        each announces a PUBLISH and sends (that much of) it
//!                                        4 KiB at a time
//!   fanout    SESSIONS MESSAGES BYTES    offline persistent sessions, then QoS 1 fan-out
//!   retained  MESSAGES BYTES             that many retained messages on distinct topics
//!   subscribe MESSAGES BYTES             a new subscriber (QoS 0, then QoS 1) to that many retained
//!   loss      MESSAGES BYTES             QoS 1 through a subscriber that reads only at the end
//! ```
//!
//! Point it at a broker binary built from another commit to compare (the flags after `--` go to
//! `sansmq broker`). Linux only (/proc).

use std::io::{BufRead as _, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::MqttString;
use sansmq::packet::{
    Connect, Disconnect, Packet, PacketDecoder, PacketId, PubAck, Publish, QoS, Subscribe,
};
use sansmq::{TopicFilter, TopicName};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (ours, broker_flags) = args.split_at(split);
    let broker_flags = broker_flags.get(1..).unwrap_or(&[]);
    let [binary, scenario, numbers @ ..] = ours else {
        return Err(
            "usage: abuse <sansmq binary> <scenario> [numbers...] [-- broker flags]".into(),
        );
    };
    let numbers: Vec<usize> = numbers
        .iter()
        .map(|n| n.parse())
        .collect::<std::result::Result<_, _>>()?;
    let number = |i: usize, default: usize| numbers.get(i).copied().unwrap_or(default);
    let broker = BrokerProcess::start(binary, broker_flags)?;
    let started = Instant::now();
    let report = match scenario.as_str() {
        "trickle" => {
            let packet_bytes = number(1, 1_000_000);
            trickle(
                &broker,
                number(0, 300),
                packet_bytes,
                number(2, packet_bytes),
            )?
        }
        "fanout" => fanout(&broker, number(0, 5000), number(1, 100), number(2, 100))?,
        "retained" => retained(&broker, number(0, 500), number(1, 1024 * 1024))?,
        "subscribe" => subscribe(&broker, number(0, 2000), number(1, 1024))?,
        "loss" => loss(&broker, number(0, 20_000), number(1, 100))?,
        other => return Err(format!("unknown scenario {other}").into()),
    };
    let (rss, peak) = broker.memory();
    println!(
        "{scenario} {numbers:?} {broker_flags:?}: {report}; broker RSS {} MiB now, {} MiB peak ({:.1} s)",
        rss / (1024 * 1024),
        peak / (1024 * 1024),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct BrokerProcess {
    child: Child,
    addr: String,
}

impl BrokerProcess {
    fn start(binary: &str, flags: &[String]) -> Result<Self> {
        let mut child = Command::new(binary)
            .args(["broker", "--bind", "127.0.0.1:0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut first = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut first)?;
        let addr = first
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .ok_or("no address printed")?
            .to_owned();
        Ok(Self { child, addr })
    }

    /// VmRSS and VmHWM (peak) of the broker, in bytes.
    fn memory(&self) -> (usize, usize) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking MQTT client on the sansmq codec.
struct Client {
    stream: TcpStream,
    decoder: PacketDecoder,
    next_id: u16,
}

impl Client {
    fn connect(broker: &BrokerProcess, id: &str, clean: bool) -> Result<Self> {
        let stream = TcpStream::connect(&broker.addr)?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            decoder: PacketDecoder::new(64 * 1024 * 1024),
            next_id: 0,
        };
        let mut connect = Connect::new(MqttString::try_from(id)?);
        connect.clean_session = clean;
        client.send(connect)?;
        match client.recv(Duration::from_secs(10))? {
            Some(Packet::ConnAck(ack))
                if ack.code == sansmq::packet::ConnectReturnCode::Accepted =>
            {
                Ok(client)
            }
            other => Err(format!("{id}: CONNECT answered {other:?}").into()),
        }
    }

    fn send(&mut self, packet: impl Into<Packet>) -> Result<()> {
        let mut wire = BytesMut::new();
        packet.into().encode(&mut wire)?;
        self.stream.write_all(&wire)?;
        Ok(())
    }

    fn id(&mut self) -> PacketId {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        PacketId::new(self.next_id).unwrap_or(PacketId::MIN)
    }

    /// The next packet, or `None` after `timeout` of silence.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Packet>> {
        loop {
            if let Some(packet) = self.decoder.next_packet()? {
                return Ok(Some(packet));
            }
            self.stream.set_read_timeout(Some(timeout))?;
            let mut buf = [0u8; 64 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => self.decoder.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let id = self.id();
        self.send(Subscribe::new(id, TopicFilter::try_from(filter)?, qos))?;
        while !matches!(self.recv(Duration::from_secs(10))?, Some(Packet::SubAck(_))) {}
        Ok(())
    }

    /// Publishes `count` QoS 1 messages with at most `window` unacknowledged; returns the PUBACKs.
    fn publish_qos1(
        &mut self,
        topic: &str,
        payload: &Bytes,
        count: usize,
        retain: bool,
    ) -> Result<usize> {
        let window = 100;
        let (mut sent, mut acked) = (0, 0);
        while acked < count {
            while sent < count && sent - acked < window {
                let mut publish = Publish::new(TopicName::try_from(topic)?, payload.clone());
                publish.qos = QoS::AtLeastOnce;
                publish.packet_id = Some(self.id());
                publish.retain = retain;
                self.send(publish)?;
                sent += 1;
            }
            match self.recv(Duration::from_secs(30))? {
                Some(Packet::PubAck(_)) => acked += 1,
                Some(_) => {}
                None => return Err(format!("no PUBACK after {acked} of {count}").into()),
            }
        }
        Ok(acked)
    }

    /// Reads publishes until `idle` passes without one, acknowledging QoS 1; returns how many.
    fn drain(&mut self, idle: Duration) -> Result<usize> {
        let mut received = 0;
        while let Some(packet) = self.recv(idle)? {
            if let Packet::Publish(publish) = packet {
                received += 1;
                if let Some(id) = publish.packet_id {
                    self.send(PubAck::new(id))?;
                }
            }
        }
        Ok(received)
    }
}

fn trickle(
    broker: &BrokerProcess,
    connections: usize,
    packet_bytes: usize,
    sent_bytes: usize,
) -> Result<String> {
    let mut streams = Vec::new();
    let mut head = BytesMut::new();
    Publish::new(
        TopicName::try_from("huge")?,
        Bytes::from(vec![0u8; packet_bytes]),
    )
    .encode(&mut head)?;
    head.truncate(head.len() - packet_bytes);
    for i in 0..connections {
        let client = Client::connect(broker, &format!("trickler-{i}"), true)?;
        let mut stream = client.stream;
        stream.write_all(&head)?;
        stream.set_nonblocking(true)?;
        streams.push((stream, sent_bytes.min(packet_bytes)));
    }
    let chunk = [0x42u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak_rss = 0;
    while streams.iter().any(|(_, left)| *left > 0) && Instant::now() < deadline {
        for (stream, left) in &mut streams {
            if *left == 0 {
                continue;
            }
            match stream.write(&chunk[..chunk.len().min(*left)]) {
                Ok(n) => *left -= n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        peak_rss = peak_rss.max(broker.memory().0);
        std::thread::sleep(Duration::from_millis(1));
    }
    let unsent: usize = streams.iter().map(|(_, left)| left).sum();
    // Let the broker read what it will take before measuring.
    std::thread::sleep(Duration::from_secs(1));
    Ok(format!(
        "{connections} x {packet_bytes} B announced, {sent_bytes} B of each trickled, {} MiB \
         the clients could not write",
        unsent / (1024 * 1024)
    ))
}

fn fanout(
    broker: &BrokerProcess,
    sessions: usize,
    messages: usize,
    bytes: usize,
) -> Result<String> {
    for i in 0..sessions {
        let mut client = Client::connect(broker, &format!("offline-{i}"), false)?;
        client.subscribe("fan/#", QoS::AtLeastOnce)?;
        client.send(Packet::Disconnect(Disconnect::new()))?;
    }
    let mut publisher = Client::connect(broker, "fan-publisher", true)?;
    let acked =
        publisher.publish_qos1("fan/out", &Bytes::from(vec![1u8; bytes]), messages, false)?;
    Ok(format!(
        "{sessions} offline sessions, {acked} messages of {bytes} B acknowledged"
    ))
}

fn retained(broker: &BrokerProcess, messages: usize, bytes: usize) -> Result<String> {
    let mut publisher = Client::connect(broker, "retainer", true)?;
    let payload = Bytes::from(vec![3u8; bytes]);
    for i in 0..messages {
        publisher.publish_qos1(&format!("retained/{i}"), &payload, 1, true)?;
    }
    let mut counter = Client::connect(broker, "counter", true)?;
    counter.subscribe("retained/#", QoS::AtMostOnce)?;
    let kept = counter.drain(Duration::from_secs(2))?;
    Ok(format!(
        "{messages} retained messages of {bytes} B published, {kept} delivered to a new subscriber"
    ))
}

fn subscribe(broker: &BrokerProcess, messages: usize, bytes: usize) -> Result<String> {
    let mut publisher = Client::connect(broker, "retainer", true)?;
    let payload = Bytes::from(vec![3u8; bytes]);
    for i in 0..messages {
        publisher.publish_qos1(&format!("many/{i}"), &payload, 1, true)?;
    }
    let mut counts = Vec::new();
    for (id, qos) in [("qos0", QoS::AtMostOnce), ("qos1", QoS::AtLeastOnce)] {
        let mut subscriber = Client::connect(broker, id, true)?;
        subscriber.subscribe("many/#", qos)?;
        counts.push(subscriber.drain(Duration::from_secs(1))?);
    }
    Ok(format!(
        "{messages} retained of {bytes} B: a new QoS 0 subscriber got {}, a QoS 1 one {}",
        counts[0], counts[1]
    ))
}

fn loss(broker: &BrokerProcess, messages: usize, bytes: usize) -> Result<String> {
    let mut subscriber = Client::connect(broker, "slow", true)?;
    subscriber.subscribe("loss", QoS::AtLeastOnce)?;
    let mut publisher = Client::connect(broker, "publisher", true)?;
    let acked = publisher.publish_qos1("loss", &Bytes::from(vec![5u8; bytes]), messages, false)?;
    let received = subscriber.drain(Duration::from_secs(1))?;
    let lost = acked.saturating_sub(received);
    Ok(format!(
        "{acked} QoS 1 messages acknowledged, {received} received, {lost} lost ({:.0}%)",
        lost as f64 * 100.0 / acked.max(1) as f64
    ))
}
