//! TLS for `ssl://`, `mqtts://` and `wss://` URIs: the settings ([`TlsOptions`]), the rustls client
//! configuration built from them (ring provider), the client key ([`KeyProblem`] says why one
//! cannot be used), and the server name to verify.
//!
//! The settings are there in every build, so that code setting them compiles whatever the cargo
//! features; building a configuration needs the `rustls` feature, and Mozilla's roots or the
//! system's need `webpki-roots` or `native-roots` (see the crate's README). Without them, a
//! client asked for TLS fails as it is made, with [`Error::FeatureNotBuilt`](crate::Error).

#[cfg(feature = "rustls")]
mod config;
mod key;
mod options;
mod protocol;

#[cfg(feature = "rustls")]
pub use config::{client_config, server_name};
pub use key::KeyProblem;
pub use options::{KeyPassword, TlsOptions, TrustRoots};
pub use protocol::{CipherList, TlsVersion};
/// rustls's client configuration, as [`client_config`] builds it and
/// [`TlsOptions::custom`] takes it.
#[cfg(feature = "rustls")]
pub use rustls::ClientConfig;

/// A TLS client configuration, which a build without the `rustls` feature cannot make
/// (`client_config` is not built): this type has no value, so code holding an `Option<Arc<ClientConfig>>` (as
/// [`ConnectOptions::tls_config`](crate::ConnectOptions::tls_config) returns) compiles the same
/// in every build, and its TLS branch is known to be dead here.
#[cfg(not(feature = "rustls"))]
#[derive(Debug)]
pub enum ClientConfig {}
