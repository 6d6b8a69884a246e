//! [`through_proxy`]: the proxy's handshake ([`ProxyHandshake`]: SOCKS5 or HTTP CONNECT) on a
//! fresh connection to the proxy, before TLS and MQTT start on it.

use sansmq_driver::{ProxyHandshake, ProxyOptions, ServerUri};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Error;

/// Bytes read at once from the proxy: a SOCKS5 reply fits whole, an HTTP answer in a few reads.
/// Small enough that nothing past the proxy's answer is read by accident of a large buffer: the
/// broker never speaks first, so there is nothing to read past it anyway.
const READ_CHUNK: usize = 512;

/// Asks `proxy`, connected on `socket`, for a connection to the broker at `uri`; once this
/// returns `Ok`, `socket` leads to the broker.
pub(crate) async fn through_proxy(
    socket: &mut TcpStream,
    proxy: &ProxyOptions,
    uri: &ServerUri,
) -> Result<(), Error> {
    let io_error = |doing: &str, e: &std::io::Error| {
        let protocol = proxy.protocol();
        Error::io(
            format!("{doing} the {protocol} proxy {}", proxy.address()),
            e,
        )
    };
    let mut handshake = ProxyHandshake::new(proxy, uri)?;
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
        if handshake.is_connected() {
            tracing::debug!(
                proxy = handshake.proxy(),
                target = handshake.target(),
                "the proxy connected to the broker"
            );
            return Ok(());
        }
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| io_error("reading from", &e))?;
        if n == 0 {
            return Err(handshake.handle_closed());
        }
        handshake.handle_received(buf.get(..n).unwrap_or_default())?;
    }
}
