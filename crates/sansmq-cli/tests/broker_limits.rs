//! `sansmq broker`'s limit flags reach the broker.

mod common;

use std::io::{ErrorKind, Read as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{BrokerProcess, run};

#[test]
fn max_sessions_flag_refuses_a_connect_past_it() {
    let broker = BrokerProcess::start(&["--max-sessions", "1"]);
    let port = broker.port();
    // A persistent session stays after its client leaves, and fills the broker.
    let first = run(&[
        "pub", "-p", port, "-i", "keeper", "-c", "-t", "t", "-m", "x", "-q", "1",
    ]);
    assert_eq!(first.code, Some(0), "{first:#?}");
    let second = run(&["pub", "-p", port, "-i", "other", "-t", "t", "-m", "x"]);
    assert_ne!(second.code, Some(0), "{second:#?}");
    let error = second.error_line().to_lowercase();
    assert!(error.contains("unavailable"), "{error}");
}

#[test]
fn connect_timeout_flag_closes_a_connection_that_sends_nothing() {
    let broker = BrokerProcess::start(&["--connect-timeout", "1"]);
    let mut idle = TcpStream::connect(&broker.addr).unwrap();
    // Well under the 10 s default, so only the flag can close it in time.
    idle.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    // Closed (end of stream, or reset), rather than still open when the read times out.
    let closed = match idle.read(&mut byte) {
        Ok(read) => read == 0,
        Err(error) => !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    };
    assert!(closed, "still open after {:?}", started.elapsed());
}
