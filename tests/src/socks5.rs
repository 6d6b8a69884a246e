//! [`Socks5Proxy`]: a small SOCKS5 proxy (RFC 1928, CONNECT only, with optional RFC 1929
//! user name/password) that records what clients asked it to connect to.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};

use crate::proxy_server::{Connections, ProxyServer};

/// What a client asked the proxy to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Target {
    /// The host as sent: a name (address type DOMAINNAME) or an IP address in text.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Whether the host came as a DOMAINNAME, for the proxy to resolve (`socks5h`).
    pub domain_name: bool,
}

/// A SOCKS5 proxy on `127.0.0.1:<free port>`, a thread per connection.
///
/// It answers the greeting (demanding user name/password when built with
/// [`with_login`](Self::with_login)), checks the login, resolves a DOMAINNAME itself, connects,
/// replies with the address it connected from, and then copies bytes both ways. Every CONNECT is
/// recorded ([`targets`](Self::targets)), also those that failed. Dropping it closes the listener
/// and every connection and joins its threads.
///
/// ```
/// use sansmq_e2e::{Mosquitto, Socks5Proxy};
///
/// let broker = Mosquitto::start();
/// let proxy = Socks5Proxy::with_login("alice", "secret");
/// assert!(proxy.url().starts_with("socks5h://127.0.0.1:"));
/// // ... hand `proxy.url_with_login()` and `broker.url()` to a client ...
/// assert!(proxy.targets().is_empty());
/// ```
pub struct Socks5Proxy {
    server: ProxyServer<Socks5Target>,
    login: Option<(String, String)>,
}

impl Socks5Proxy {
    /// A proxy that takes clients without authentication.
    ///
    /// # Panics
    ///
    /// If no port can be bound or no thread spawned.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// A proxy that demands this user name and password (RFC 1929).
    ///
    /// # Panics
    ///
    /// If no port can be bound or no thread spawned.
    pub fn with_login(username: &str, password: &str) -> Self {
        Self::launch(Some((username.to_owned(), password.to_owned())))
    }

    fn launch(login: Option<(String, String)>) -> Self {
        let demanded = login.clone();
        let server = ProxyServer::start("socks5", move |client, connections| {
            serve(client, connections, demanded.as_ref())
        });
        Self { server, login }
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The proxy URL without a login: `socks5h://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("socks5h://127.0.0.1:{}", self.addr().port())
    }

    /// The proxy URL with the login it demands (without one if it demands none).
    pub fn url_with_login(&self) -> String {
        match &self.login {
            Some((user, password)) => {
                format!(
                    "socks5h://{user}:{password}@127.0.0.1:{}",
                    self.addr().port()
                )
            }
            None => self.url(),
        }
    }

    /// Every CONNECT asked for so far, in order.
    pub fn targets(&self) -> Vec<Socks5Target> {
        self.server.targets()
    }
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("addr", &self.addr())
            .field("login", &self.login.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// One client: the handshake, then bytes copied both ways until either side closes.
fn serve(
    mut client: TcpStream,
    connections: &Connections<Socks5Target>,
    login: Option<&(String, String)>,
) -> io::Result<()> {
    // Greeting: VER NMETHODS METHODS.
    let [version, count] = read_array(&mut client)?;
    if version != 5 {
        return Ok(());
    }
    let methods = read_vec(&mut client, count.into())?;
    let wanted = if login.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        client.write_all(&[5, 0xFF])?;
        return Ok(());
    }
    client.write_all(&[5, wanted])?;
    if let Some((user, password)) = login {
        // RFC 1929: VER ULEN UNAME PLEN PASSWD.
        let [_version, user_len] = read_array(&mut client)?;
        let given_user = read_vec(&mut client, user_len.into())?;
        let [password_len] = read_array(&mut client)?;
        let given_password = read_vec(&mut client, password_len.into())?;
        if given_user != user.as_bytes() || given_password != password.as_bytes() {
            client.write_all(&[1, 1])?;
            return Ok(());
        }
        client.write_all(&[1, 0])?;
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let [_version, command, _reserved, atyp] = read_array(&mut client)?;
    let host = match atyp {
        1 => Ipv4Addr::from(read_array::<4>(&mut client)?).to_string(),
        4 => Ipv6Addr::from(read_array::<16>(&mut client)?).to_string(),
        3 => {
            let [len] = read_array(&mut client)?;
            String::from_utf8_lossy(&read_vec(&mut client, len.into())?).into_owned()
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(());
        }
    };
    let port = u16::from_be_bytes(read_array(&mut client)?);
    connections.record(Socks5Target {
        host: host.clone(),
        port,
        domain_name: atyp == 3,
    });
    if command != 1 {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    }
    let upstream = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|addresses| {
            addresses
                .into_iter()
                .find_map(|a| TcpStream::connect(a).ok())
        });
    let Some(upstream) = upstream else {
        // Host unreachable covers "did not resolve" and "refused" alike here.
        client.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    };
    let mut reply = vec![5, 0, 0];
    match upstream.local_addr()? {
        SocketAddr::V4(bound) => {
            reply.push(1);
            reply.extend_from_slice(&bound.ip().octets());
        }
        SocketAddr::V6(bound) => {
            reply.push(4);
            reply.extend_from_slice(&bound.ip().octets());
        }
    }
    reply.extend_from_slice(&upstream.local_addr()?.port().to_be_bytes());
    client.write_all(&reply)?;
    connections.relay(client, upstream)
}

fn read_array<const N: usize>(stream: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut buf = [0; N];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_vec(stream: &mut TcpStream, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}
