//! A broker that refuses the CONNECT and closes at once: its CONNACK and its end of stream arrive
//! in one read. `connect` must go on to the next server URI. When the end of stream was reported
//! after the refusal, it was taken for the failure of that next attempt, and `connect` failed
//! without trying it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread;
use std::time::Duration;

use sansmq_mio::{Client, ConnectOptions};

/// A fake broker on a free loopback port. A refusing one sends `connack` and its end of stream as
/// soon as it accepts, so both wait in the client's socket by the time it reads (it writes CONNECT
/// first); then it reads until the client goes. An accepting one answers the CONNECT and holds the
/// connection.
fn broker(connack: [u8; 4], refuse: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    thread::spawn(move || {
        let Ok((mut socket, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0; 256];
        if refuse {
            let _ = socket.write_all(&connack);
            let _ = socket.shutdown(Shutdown::Write);
        } else {
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(&connack);
        }
        // Read until the client goes: closing with its bytes unread would reset the connection.
        while socket.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    format!("tcp://127.0.0.1:{port}")
}

#[test]
fn a_refused_connack_with_the_close_in_one_read_moves_on_to_the_next_uri() {
    // Not authorised (5), then the end of stream: both reach the client before it reads.
    let refusing = broker([0x20, 0x02, 0x00, 0x05], true);
    let accepting = broker([0x20, 0x02, 0x00, 0x00], false);
    let options = ConnectOptions::new(&refusing, "refused-then-next")
        .and_then(|o| o.server_uris(&[refusing.as_str(), accepting.as_str()]))
        .expect("valid options")
        .connect_timeout(Duration::from_secs(5));
    let client = Client::new(options).expect("client");
    assert_eq!(client.connect().map_err(|e| e.to_string()), Ok(false));
    assert!(client.is_connected());
    client.close();
}
