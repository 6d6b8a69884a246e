//! A thread waiting in `Messages::recv`, or on a `DeliveryToken`, reads from the broker itself:
//! the messages and acknowledgements it waits for cost its own CPU, not the IO thread's. Once it
//! stops waiting, the IO thread takes the IO back (keep-alive goes on), and a close ends a `recv`
//! that is waiting. One test in its own binary, so that no other client's IO thread is counted.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sansmq::TopicName;
use sansmq::packet::{Packet, PubAck, Publish, QoS};
use sansmq_e2e::{PATIENCE, Peer, ScriptedBroker, wait_until};
use sansmq_mio::Client;

use common::options;

/// Messages the broker streams, in bursts with pauses between them, so that the receiver waits
/// for most bursts with nothing queued.
const BURSTS: usize = 200;
const PER_BURST: usize = 100;
/// QoS 1 messages published one at a time, each waited for.
const ACKED: usize = 2000;

/// Nanoseconds `task` (a thread of this process, `thread-self` for the caller) has run on a CPU,
/// from the scheduler's statistics.
fn cpu_ns(task: &str) -> u64 {
    let path = match task {
        "thread-self" => "/proc/thread-self/schedstat".to_owned(),
        tid => format!("/proc/self/task/{tid}/schedstat"),
    };
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .unwrap_or_else(|| panic!("{path}: {stat:?}"))
}

/// The thread ids of this process's client IO threads.
fn io_threads() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim() == "sansmq-io").then(|| task.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// The thread id of this process's only client IO thread (which names itself once it runs).
fn io_thread() -> String {
    assert!(wait_until(PATIENCE, || !io_threads().is_empty()));
    let io = io_threads();
    assert_eq!(io.len(), 1, "one client, one IO thread: {io:?}");
    io.into_iter().next().unwrap_or_default()
}

/// One burst of QoS 0 PUBLISH packets, encoded back to back.
fn burst() -> Vec<u8> {
    // QoS 0 by default.
    let publish = Packet::Publish(Publish::new(
        TopicName::try_from("receiver/stream").expect("a valid topic"),
        Bytes::from_static(&[7; 64]),
    ));
    let mut wire = BytesMut::new();
    for _ in 0..PER_BURST {
        publish.encode(&mut wire).expect("the packet encodes");
    }
    wire.to_vec()
}

/// Accepts the client, streams the bursts, then acknowledges QoS 1 PUBLISHes and answers PINGREQs
/// (reporting each) until the client goes.
fn streaming_broker() -> (ScriptedBroker, mpsc::Receiver<Instant>) {
    let (pings, pinged) = mpsc::channel();
    let pings = std::sync::Mutex::new(pings);
    let broker = ScriptedBroker::start(move |mut peer: Peer| {
        if peer.index() > 0 || peer.accept().is_none() {
            return;
        }
        let burst = burst();
        for _ in 0..BURSTS {
            if !peer.send_raw(&burst) {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
        while let Some(packet) = peer.recv_within(PATIENCE) {
            match packet {
                Packet::PingReq => {
                    let _ = pings.lock().map(|pings| pings.send(Instant::now()));
                    peer.send(&Packet::PingResp);
                }
                Packet::Publish(publish) => {
                    if let Some(id) = publish.packet_id {
                        peer.send(&Packet::PubAck(PubAck::new(id)));
                    }
                }
                _ => {}
            }
        }
    });
    (broker, pinged)
}

#[test]
fn a_waiting_thread_reads_what_it_waits_for_and_hands_the_io_back_when_it_stops() {
    let (broker, pinged) = streaming_broker();
    let client =
        Client::new(options(&broker.url(), "receiver-reads").keep_alive(Duration::from_secs(1)))
            .unwrap();
    let messages = client.messages(1024);
    let io = io_thread();
    let (io_before, mine_before) = (cpu_ns(&io), cpu_ns("thread-self"));
    client.connect().unwrap();

    for n in 0..BURSTS * PER_BURST {
        let message = messages
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("message {n}: {e}"));
        assert_eq!(message.payload.len(), 64);
    }
    let (io_spent, mine) = (cpu_ns(&io) - io_before, cpu_ns("thread-self") - mine_before);
    // The IO thread connects, then looks in every couple of milliseconds while the poller is
    // lent; reading and decoding 20,000 messages is this thread's work.
    assert!(
        io_spent * 4 < mine,
        "the IO thread ran {io_spent} ns and the receiving thread {mine} ns: the receiver should \
         do the reading"
    );

    // Publishing and waiting for each PUBACK: the waiting thread reads the acknowledgements.
    let (io_before, mine_before) = (cpu_ns(&io), cpu_ns("thread-self"));
    for n in 0..ACKED {
        let token = client
            .publish("receiver/acked", n.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
        token.wait().unwrap_or_else(|e| panic!("message {n}: {e}"));
    }
    let (io_spent, mine) = (cpu_ns(&io) - io_before, cpu_ns("thread-self") - mine_before);
    assert!(
        io_spent * 4 < mine,
        "the IO thread ran {io_spent} ns and the publishing thread {mine} ns: the waiting thread \
         should read its PUBACKs"
    );

    // Nobody waits now: the IO thread keeps the connection alive (keep-alive 1 s).
    let stopped = Instant::now();
    let ping = pinged
        .recv_timeout(Duration::from_secs(5))
        .expect("a PINGREQ while nobody calls recv");
    assert!(ping > stopped);
    assert!(client.is_connected());

    // A close ends a recv that waits, once the queue is empty.
    let closer = {
        let client = client.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            client.close();
        })
    };
    let waited = Instant::now();
    assert!(messages.recv().is_err(), "nothing more was sent");
    assert!(waited.elapsed() < Duration::from_secs(5));
    closer.join().unwrap();
}
