//! [`through_proxy`]: the SOCKS5 handshake ([`Socks5Handshake`]) on a fresh connection to the
//! proxy, before TLS and MQTT start on it.

use sansmq_driver::socks5::{Socks5Error, Socks5Handshake};
use sansmq_driver::{ProxyOptions, ServerUri};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Error;

/// Bytes read at once from the proxy: its longest answer (a reply naming a 255-byte host) fits.
const READ_CHUNK: usize = 512;

/// Asks `proxy`, connected on `socket`, for a connection to the broker at `uri`; once this
/// returns `Ok`, `socket` leads to the broker.
pub(crate) async fn through_proxy(
    socket: &mut TcpStream,
    proxy: &ProxyOptions,
    uri: &ServerUri,
) -> Result<(), Error> {
    let name = proxy.address();
    let failed = |error: Socks5Error| Error::Proxy {
        proxy: name.clone(),
        error,
    };
    let io_error = |doing: &str, e: &std::io::Error| {
        Error::io(format!("{doing} the SOCKS5 proxy {}", proxy.address()), e)
    };
    let mut handshake = Socks5Handshake::new(&uri.host, uri.port, proxy.login()).map_err(failed)?;
    let mut buf = [0; READ_CHUNK];
    loop {
        let request = handshake.poll_transmit();
        if !request.is_empty() {
            let n = request.len();
            socket
                .write_all(request)
                .await
                .map_err(|e| io_error("writing to", &e))?;
            handshake.handle_transmitted(n);
        }
        if let Some(bound) = handshake.bound_address() {
            tracing::debug!(proxy = %name, target = handshake.target(), ?bound, "the proxy connected to the broker");
            return Ok(());
        }
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| io_error("reading from", &e))?;
        if n == 0 {
            return Err(failed(handshake.handle_closed()));
        }
        handshake
            .handle_received(buf.get(..n).unwrap_or_default())
            .map_err(failed)?;
    }
}
