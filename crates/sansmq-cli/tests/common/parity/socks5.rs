//! A minimal SOCKS5 proxy (RFC 1928, no authentication, CONNECT only) for the `--proxy` rows: it
//! counts the connections it relayed, so a row can tell that the proxy was really used.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream, ToSocketAddrs as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// A running proxy on a 127.0.0.1 port; its threads end with the test process.
pub(crate) struct Socks5 {
    port: u16,
    relayed: Arc<AtomicUsize>,
}

impl Socks5 {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the SOCKS5 proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let relayed = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&relayed);
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let count = Arc::clone(&count);
                thread::spawn(move || {
                    if relay(client).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Self { port, relayed }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has relayed to their end.
    #[allow(dead_code)]
    pub(crate) fn relayed(&self) -> usize {
        self.relayed.load(Ordering::Relaxed)
    }
}

/// Greeting, CONNECT, then bytes both ways until either side closes.
fn relay(mut client: TcpStream) -> io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods)?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff])?;
        return Err(io::Error::other("no acceptable method"));
    }
    client.write_all(&[5, 0])?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request)?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip)?;
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Err(io::Error::other("address type not supported"));
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    let target = (host.as_str(), u16::from_be_bytes(port))
        .to_socket_addrs()?
        .find(|addr| addr.is_ipv4())
        .ok_or_else(|| io::Error::other("no IPv4 address"));
    let server = match target.and_then(TcpStream::connect) {
        Ok(server) => server,
        Err(e) => {
            // 5: connection refused.
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Err(e);
        }
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut up_from, mut up_to) = (client.try_clone()?, server.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(Shutdown::Write);
    });
    let (mut down_from, mut down_to) = (server, client);
    let _ = io::copy(&mut down_from, &mut down_to);
    let _ = down_to.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}
