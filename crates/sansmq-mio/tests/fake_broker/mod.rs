//! A fake broker on a free loopback port, for what mosquitto cannot be made to do on cue.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc::{self, Receiver};
use std::thread;

/// CONNACK: connection accepted, no session.
pub(crate) const ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
/// CONNACK: not authorised.
pub(crate) const NOT_AUTHORISED: [u8; 4] = [0x20, 0x02, 0x00, 0x05];

/// Serves one connection; returns its URI and the bytes the client sent, in reads as they came.
///
/// An accepting broker (`refuse: false`) answers the CONNECT with `connack` and holds the
/// connection. A refusing one sends `connack` and its end of stream as soon as it accepts, so both
/// wait in the client's socket by the time it reads (it writes CONNECT first). Either reads until
/// the client goes: closing with its bytes unread would reset the connection.
pub(crate) fn serve(connack: [u8; 4], refuse: bool) -> (String, Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((mut socket, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0; 4096];
        if refuse {
            let _ = socket.write_all(&connack);
            let _ = socket.shutdown(Shutdown::Write);
        } else if let Ok(n) = socket.read(&mut buf) {
            let _ = tx.send(buf.get(..n).unwrap_or_default().to_vec());
            let _ = socket.write_all(&connack);
        }
        while let Ok(n @ 1..) = socket.read(&mut buf) {
            let _ = tx.send(buf.get(..n).unwrap_or_default().to_vec());
        }
    });
    (format!("tcp://127.0.0.1:{port}"), rx)
}
