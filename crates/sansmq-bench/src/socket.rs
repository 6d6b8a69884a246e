//! [`connect`]: a non-blocking TCP connect, from a chosen source address when `--ifaddr` gives
//! some (mio has no bind-before-connect, so the socket is made with rustix).

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::TcpStream;

/// Starts a non-blocking connect to `address`, from `local` (any port) when given. A bind that
/// fails names the address.
pub(crate) fn connect(address: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect(address);
    };
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

/// Raises the soft limit on open files to the hard one, and returns the limit now in force.
pub(crate) fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_bound_connect_leaves_from_the_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _socket = connect(
            listener.local_addr().unwrap(),
            Some("127.0.0.1".parse().unwrap()),
        )
        .unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn binding_an_address_we_do_not_have_names_it() {
        let error = connect(
            "127.0.0.1:1".parse().unwrap(),
            Some("192.0.2.1".parse().unwrap()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("192.0.2.1"), "{error}");
    }
}
