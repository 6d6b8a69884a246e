//! [`Socket`]: the stream under a connection, TCP or a Unix domain socket; and [`connect_tcp`],
//! a non-blocking TCP connect, from a bound local address when one is set.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};

use mio::event::Source;
use mio::net::TcpStream;
#[cfg(unix)]
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

/// A connected (or connecting) stream socket.
#[derive(Debug)]
pub(crate) enum Socket {
    /// TCP, to the broker or to a proxy that leads to it.
    Tcp(TcpStream),
    /// A Unix domain socket (`unix://` URIs).
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Socket {
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.shutdown(how),
            #[cfg(unix)]
            Self::Unix(socket) => socket.shutdown(how),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.read(buf),
            #[cfg(unix)]
            Self::Unix(socket) => socket.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.write(buf),
            #[cfg(unix)]
            Self::Unix(socket) => socket.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(socket) => socket.write_vectored(bufs),
            #[cfg(unix)]
            Self::Unix(socket) => socket.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Socket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.register(registry, token, interests),
            #[cfg(unix)]
            Self::Unix(socket) => socket.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.reregister(registry, token, interests),
            #[cfg(unix)]
            Self::Unix(socket) => socket.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => socket.deregister(registry),
            #[cfg(unix)]
            Self::Unix(socket) => socket.deregister(registry),
        }
    }
}

/// Starts a non-blocking TCP connect to `address`, from `local` (any port) when given. A bind
/// that fails (an address this machine does not have) is an error that names the address.
pub(crate) fn connect_tcp(address: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    match local {
        None => TcpStream::connect(address),
        Some(local) => connect_bound(address, local),
    }
}

#[cfg(unix)]
fn connect_bound(address: SocketAddr, local: IpAddr) -> io::Result<TcpStream> {
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    let family = match address {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddr::new(local, 0)).map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("binding to {local}: {e}"))
    })?;
    match rustix::net::connect(&fd, &address) {
        Ok(()) | Err(Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(fd)))
}

#[cfg(not(unix))]
fn connect_bound(_address: SocketAddr, local: IpAddr) -> io::Result<TcpStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("binding to {local}: not supported on this platform"),
    ))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_bound_connect_leaves_from_the_local_address() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        // 127.0.0.2 is loopback too on Linux: only a bind makes the connection come from it.
        let local: IpAddr = "127.0.0.2".parse().unwrap();
        let socket = connect_tcp(listener.local_addr().unwrap(), Some(local)).unwrap();
        let (_, from) = listener.accept().unwrap();
        assert_eq!(from.ip(), local);
        let give_up = Instant::now() + Duration::from_secs(10);
        while socket.peer_addr().is_err() {
            assert!(Instant::now() < give_up);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(socket.local_addr().unwrap(), from);
    }

    #[test]
    fn a_bind_to_an_address_not_on_this_machine_names_it() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        // TEST-NET-1 (RFC 5737): never an address of this machine.
        let local: IpAddr = "192.0.2.1".parse().unwrap();
        let error = connect_tcp(listener.local_addr().unwrap(), Some(local)).unwrap_err();
        assert!(
            error.to_string().starts_with("binding to 192.0.2.1: "),
            "{error}"
        );
    }
}
