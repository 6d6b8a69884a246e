//! Building the rustls client configuration from [`TlsOptions`] (ring provider), and the server
//! name to verify.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::Error;
use crate::{TlsOptions, TrustRoots};

/// A rustls configuration for `options`: the broker's certificate and host name are verified
/// against the chosen roots; a client certificate is presented when configured.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    match &options.roots {
        TrustRoots::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TrustRoots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            for cert in loaded.certs {
                // Skip system certificates rustls cannot parse, as browsers do.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::Tls(
                    "no usable certificates in the system store".into(),
                ));
            }
        }
        TrustRoots::CaFile(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!(
                    "CA file {}: no certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &options.client_auth {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_file_iter(chain)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("client certificate {}: {e}", chain.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Tls(format!("client key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// The name the broker's certificate must carry: `host` as a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Tls(format!("server name {host:?}: {e}")))
}
