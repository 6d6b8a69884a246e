//! The rustls client connection for one broker (the configuration is built by
//! [`sansmq_driver::tls`]).

use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection};

use crate::Error;

/// A client connection to `host`, whose certificate must name it (SNI is sent for names).
pub(crate) fn connect(config: &Arc<ClientConfig>, host: &str) -> Result<ClientConnection, Error> {
    let name = sansmq_driver::tls::server_name(host)?;
    ClientConnection::new(Arc::clone(config), name).map_err(|e| Error::Tls(e.to_string()))
}
