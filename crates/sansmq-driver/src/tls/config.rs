//! The rustls client configuration built from [`TlsOptions`] (ring provider), its trust roots,
//! and the server name to verify: the TLS that the `rustls` feature builds.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::{TlsOptions, TrustRoots, key};
use crate::Error;

/// A rustls configuration for `options`: the broker's certificate and host name are verified
/// against the chosen roots; a client certificate is presented when configured; the ALPN
/// protocols are offered. A [`TlsOptions::custom`] configuration is returned as it is (with the
/// ALPN protocols, if any were set).
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    if let Some(custom) = &options.custom {
        if options.alpn.is_empty() {
            return Ok(Arc::clone(custom));
        }
        let mut config = ClientConfig::clone(custom);
        config.alpn_protocols = options.alpn.clone();
        return Ok(Arc::new(config));
    }
    let roots = root_store(&options.roots)?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(ciphers) = &options.tls12_ciphers {
        ciphers.apply(&mut provider);
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(options.min_version.offered())
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match &options.client_auth {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_file_iter(chain)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Tls(format!("client certificate {}: {e}", chain.display())))?;
            let key = key::client_key(key, options.key_password.as_ref())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
        }
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(Arc::new(config))
}

/// The name the broker's certificate must carry: `host` as a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Tls(format!("server name {host:?}: {e}")))
}

fn root_store(roots: &TrustRoots) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        #[cfg(feature = "webpki-roots")]
        TrustRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        #[cfg(feature = "native-roots")]
        TrustRoots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            // Skip system certificates rustls cannot parse, as browsers do.
            store.add_parsable_certificates(loaded.certs);
            if store.is_empty() {
                return Err(Error::Tls(
                    "no usable certificates in the system store".into(),
                ));
            }
        }
        #[cfg(not(feature = "webpki-roots"))]
        TrustRoots::WebPki => {
            return Err(roots_not_built(
                "Mozilla's roots (TrustRoots::WebPki)",
                "webpki-roots",
            ));
        }
        #[cfg(not(feature = "native-roots"))]
        TrustRoots::System => {
            return Err(roots_not_built(
                "the system's certificate store (TrustRoots::System)",
                "native-roots",
            ));
        }
        TrustRoots::CaFile(path) => {
            let certs = pem_certificates(path)
                .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!(
                    "CA file {}: no certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
            }
        }
        TrustRoots::CaDir(dir) => {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| Error::Tls(format!("CA directory {}: {e}", dir.display())))?;
            for entry in entries {
                let path = entry
                    .map_err(|e| Error::Tls(format!("CA directory {}: {e}", dir.display())))?
                    .path();
                // Subdirectories are not searched (nor are they by OpenSSL's capath).
                if !path.is_file() {
                    continue;
                }
                let certs = pem_certificates(&path)
                    .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
                // As for the system store: a certificate rustls cannot use does not stop the rest.
                store.add_parsable_certificates(certs);
            }
            if store.is_empty() {
                return Err(Error::Tls(format!(
                    "CA directory {}: no usable CA certificate in its files",
                    dir.display()
                )));
            }
        }
    }
    Ok(store)
}

/// The error for trust roots whose cargo feature this build leaves out.
#[cfg(not(all(feature = "webpki-roots", feature = "native-roots")))]
fn roots_not_built(roots: &str, feature: &'static str) -> Error {
    Error::FeatureNotBuilt {
        what: format!("verifying the broker with {roots}"),
        feature,
    }
}

fn pem_certificates(
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_file_iter(path)?.collect()
}
