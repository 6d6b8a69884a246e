//! `sansmq broker` run out of file descriptors: a child shell lowers `ulimit -n`, idle
//! connections use every descriptor, and a client that connects next waits in the listen backlog.
//! Once the idle connections go, the broker must accept and answer the waiting client: its
//! listener is edge-triggered, so nothing but the broker itself retrying `accept` will.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::BrokerProcess;

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id `waiting`.
const CONNECT: &[u8] = b"\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07waiting";
/// CONNACK, session present 0, accepted.
const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// Descriptors the broker process may hold: stdio, epoll, the waker, the listener and about 25
/// connections.
const DESCRIPTOR_LIMIT: u32 = 32;
/// Twice what fits under the limit, so the last ones stay in the listen backlog.
const IDLE_CONNECTIONS: usize = 64;
/// Long enough for a retrying broker on a loaded machine, far below the broker's 10 s CONNECT
/// timeout (the idle connections are closed by the test, not by that timeout).
const PROMPTLY: Duration = Duration::from_secs(5);

/// `sansmq broker --bind 127.0.0.1:0` under `ulimit -n DESCRIPTOR_LIMIT`; killed on drop.
fn limited_broker() -> BrokerProcess {
    let script = format!("ulimit -n {DESCRIPTOR_LIMIT} && exec \"$0\" broker --bind 127.0.0.1:0");
    let mut command = Command::new("sh");
    command
        .args(["-c", &script, env!("CARGO_BIN_EXE_sansmq")])
        .env_remove("RUST_LOG");
    BrokerProcess::spawn(command)
}

/// Reads the 4 bytes of a CONNACK within `timeout`; `None` if they did not all arrive.
fn read_connack(stream: &mut TcpStream, timeout: Duration) -> Option<[u8; 4]> {
    let deadline = Instant::now() + timeout;
    let mut received = [0u8; 4];
    let mut filled = 0;
    while filled < received.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("a read timeout");
        match stream.read(&mut received[filled..]) {
            Ok(0) => panic!("the broker closed the waiting connection"),
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) => panic!("reading the CONNACK: {e}"),
        }
    }
    Some(received)
}

#[test]
fn a_client_waiting_in_the_backlog_is_served_once_descriptors_free_up() {
    let broker = limited_broker();
    let idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .map(|_| TcpStream::connect(&broker.addr).expect("the kernel completes the handshake"))
        .collect();

    let mut waiting = TcpStream::connect(&broker.addr).expect("queued in the backlog");
    waiting.write_all(CONNECT).unwrap();
    // The setup holds: with every descriptor taken, the waiting client is not answered.
    assert_eq!(
        read_connack(&mut waiting, Duration::from_millis(500)),
        None,
        "the broker had descriptors left; raise IDLE_CONNECTIONS"
    );

    drop(idle);
    let connack = read_connack(&mut waiting, PROMPTLY)
        .expect("no CONNACK after the idle connections closed: the backlog was never accepted");
    assert_eq!(connack, CONNACK_ACCEPTED);
}
