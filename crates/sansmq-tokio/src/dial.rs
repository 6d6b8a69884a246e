//! [`dial`]: a TCP connection to the first of a broker's addresses that answers, attempts
//! staggered per [`Dial`] (Happy Eyeballs, RFC 8305).

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use sansmq_driver::Dial;
use tokio::net::{TcpSocket, TcpStream};

use crate::{Error, ServerUri};

/// One connection attempt in progress.
type Attempt = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Connects to `uri`'s resolved `addresses` (from `local` when given): the first attempt to
/// succeed wins, and dropping the others abandons them. Every address failing is an error naming
/// each one and why. Unbounded in time by itself: the caller's connect timeout bounds it, and
/// dropping the future drops every attempt.
pub(crate) async fn dial(
    uri: &ServerUri,
    addresses: Vec<SocketAddr>,
    local: Option<IpAddr>,
) -> Result<TcpStream, Error> {
    let mut plan = Dial::new(Instant::now(), addresses);
    let mut attempts: Vec<(SocketAddr, Attempt)> = Vec::new();
    loop {
        let now = Instant::now();
        while let Some(address) = plan.poll_start(now) {
            tracing::debug!(%uri, %address, "trying");
            attempts.push((address, Box::pin(connect_from(address, local))));
        }
        if let Some(error) = plan.failure(uri) {
            return Err(error);
        }
        let finished = poll_fn(|cx| {
            for (index, (_, attempt)) in attempts.iter_mut().enumerate() {
                if let Poll::Ready(result) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Some((index, result)));
                }
            }
            Poll::Pending
        });
        let outcome = match plan.poll_timeout() {
            Some(at) => tokio::select! {
                outcome = finished => outcome,
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => None,
            },
            None => finished.await,
        };
        let Some((index, result)) = outcome else {
            continue; // the next address is due
        };
        let (address, _) = attempts.swap_remove(index);
        match result {
            Ok(stream) => {
                tracing::debug!(%uri, %address, "connected");
                return Ok(stream);
            }
            Err(e) => {
                tracing::debug!(%uri, %address, %e, "attempt failed");
                plan.handle_failed(Instant::now(), address, e);
            }
        }
    }
}

/// A TCP connection to `address`, from `local` (any port) when given; a bind that fails names
/// the local address.
async fn connect_from(address: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect(address).await;
    };
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket
        .bind(SocketAddr::new(local, 0))
        .map_err(|e| io::Error::new(e.kind(), format!("binding to {local}: {e}")))?;
    socket.connect(address).await
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};

    use super::*;

    /// A port on which nothing listens (on 127.0.0.1, and the test assumes on ::1 too).
    fn closed_port() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_refused_first_address_falls_through_to_a_listening_one() {
        // The broker listens on IPv4 only; the name resolved to ::1 first (issue 11 item 4).
        let broker = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = broker.local_addr().unwrap().port();
        let addresses = vec![
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        ];
        let uri = format!("tcp://localhost:{port}").parse().unwrap();
        let stream = dial(&uri, addresses, None).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), broker.local_addr().unwrap());
        let (_, from) = broker.accept().unwrap();
        assert_eq!(from, stream.local_addr().unwrap());
    }

    #[tokio::test]
    async fn every_address_failing_names_each_one() {
        let port = closed_port();
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let uri = format!("tcp://localhost:{port}").parse().unwrap();
        let error = dial(&uri, vec![v6, v4], None).await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "connecting to tcp://localhost:{port}: [::1]:{port}: "
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("; 127.0.0.1:{port}: ")),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
}
