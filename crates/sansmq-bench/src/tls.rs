//! `--ssl`: one rustls configuration per bench (sansmq-driver builds it: roots, client key), one
//! [`Session`] per connection between its socket and its MQTT session. Without the `rustls`
//! feature, [`Tls::new`] refuses and [`Session`] has no value.

#[cfg(feature = "rustls")]
use std::io::{self, Read as _, Write as _};
use std::time::Instant;

use bytes::BytesMut;
use mio::net::TcpStream;
use sansmq::Client;

use crate::Error;
use crate::conn::{Io, Read};

/// The rustls state of one connection.
#[cfg(feature = "rustls")]
pub(crate) type Session = rustls::ClientConnection;

/// No TLS in this build: no value of this type exists.
#[cfg(not(feature = "rustls"))]
#[derive(Debug)]
pub(crate) enum Session {}

/// What every TLS connection of a bench shares.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    #[cfg(feature = "rustls")]
    config: std::sync::Arc<rustls::ClientConfig>,
    #[cfg(feature = "rustls")]
    name: rustls::pki_types::ServerName<'static>,
}

impl Tls {
    /// The configuration `options` describe, verifying the server's certificate for `host`.
    #[cfg(feature = "rustls")]
    pub(crate) fn new(options: &sansmq_driver::TlsOptions, host: &str) -> Result<Self, Error> {
        Ok(Self {
            config: sansmq_driver::tls::client_config(options)
                .map_err(|e| Error::Tls(e.to_string()))?,
            name: sansmq_driver::tls::server_name(host).map_err(|e| Error::Tls(e.to_string()))?,
        })
    }

    /// This build has no TLS.
    #[cfg(not(feature = "rustls"))]
    pub(crate) fn new(_options: &sansmq_driver::TlsOptions, _host: &str) -> Result<Self, Error> {
        Err(Error::Tls(
            "this build has no TLS (cargo feature `rustls` of sansmq-bench)".to_owned(),
        ))
    }

    /// A session for a new connection.
    #[cfg(feature = "rustls")]
    pub(crate) fn session(&self) -> Result<Box<Session>, String> {
        rustls::ClientConnection::new(self.config.clone(), self.name.clone())
            .map(Box::new)
            .map_err(|e| format!("TLS: {e}"))
    }

    /// This build has no TLS.
    #[cfg(not(feature = "rustls"))]
    pub(crate) fn session(&self) -> Result<Box<Session>, String> {
        Err("this build has no TLS".to_owned())
    }
}

/// Reads TLS records from `socket`, and appends the plaintext they hold to `buf` (the session's
/// read buffer). The caller calls `handle_read`.
#[cfg(feature = "rustls")]
pub(crate) fn read(session: &mut Session, socket: &mut TcpStream, buf: &mut BytesMut) -> Read {
    let got = match session.read_tls(socket) {
        Ok(0) => return Read::Closed("closed by the broker".to_owned()),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Done,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Read::Again,
        Err(e) => return Read::Closed(e.to_string()),
    };
    if let Err(e) = session.process_new_packets() {
        return Read::Closed(format!("TLS: {e}"));
    }
    let mut closed = false;
    loop {
        let len = buf.len();
        buf.resize(len + 4096, 0);
        let result = session.reader().read(&mut buf[len..]);
        let n = *result.as_ref().unwrap_or(&0);
        buf.truncate(len + n);
        match result {
            Ok(0) => {
                closed = true; // close_notify
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Read::Closed(format!("TLS: {e}")),
        }
    }
    if closed {
        Read::Closed("the broker ended TLS".to_owned())
    } else if got > 0 {
        Read::Again
    } else {
        Read::Done
    }
}

/// This build has no TLS.
#[cfg(not(feature = "rustls"))]
pub(crate) fn read(session: &mut Session, _: &mut TcpStream, _: &mut BytesMut) -> Read {
    match *session {}
}

/// Encrypts what `client` has queued, and writes the records (and handshake messages) as far as
/// the socket takes them.
#[cfg(feature = "rustls")]
pub(crate) fn flush(
    session: &mut Session,
    socket: &mut TcpStream,
    client: &mut Client,
    now: Instant,
) -> Io {
    loop {
        let mut encrypted = false;
        while let Some(bytes) = client.poll_transmit() {
            match session.writer().write(bytes) {
                Ok(0) => break, // rustls's buffer is full: records must go out first
                Ok(n) => {
                    client.handle_transmitted(now, n);
                    encrypted = true;
                }
                Err(e) => return Io::Closed(format!("TLS: {e}")),
            }
        }
        while session.wants_write() {
            match session.write_tls(socket) {
                Ok(0) => return Io::Closed("the socket took no bytes".to_owned()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Io::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Io::Closed(e.to_string()),
            }
        }
        if !encrypted || client.poll_transmit().is_none() {
            return Io::Open;
        }
    }
}

/// This build has no TLS.
#[cfg(not(feature = "rustls"))]
pub(crate) fn flush(session: &mut Session, _: &mut TcpStream, _: &mut Client, _: Instant) -> Io {
    match *session {}
}

/// Encrypts as much of `data` as rustls takes and writes the records as far as the socket takes
/// them; how much of `data` was taken, `WouldBlock` when none could be.
#[cfg(feature = "rustls")]
pub(crate) fn write(
    session: &mut Session,
    socket: &mut TcpStream,
    data: &[u8],
) -> io::Result<usize> {
    let mut n = session.writer().write(data)?;
    push(session, socket)?;
    if n == 0 && !data.is_empty() {
        // Room was made by the records that went out.
        n = session.writer().write(data)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        push(session, socket)?;
    }
    Ok(n)
}

/// This build has no TLS.
#[cfg(not(feature = "rustls"))]
pub(crate) fn write(session: &mut Session, _: &mut TcpStream, _: &[u8]) -> std::io::Result<usize> {
    match *session {}
}

/// Writes TLS records to the socket until it would block or none is left.
#[cfg(feature = "rustls")]
pub(crate) fn push(session: &mut Session, socket: &mut TcpStream) -> io::Result<()> {
    while session.wants_write() {
        match session.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// This build has no TLS.
#[cfg(not(feature = "rustls"))]
pub(crate) fn push(session: &mut Session, _: &mut TcpStream) -> std::io::Result<()> {
    match *session {}
}
