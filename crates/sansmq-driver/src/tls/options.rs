//! [`TlsOptions`]: trust anchors, the client certificate and its key's password, ALPN, the TLS
//! versions and TLS 1.2 cipher suites, or a whole rustls configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ClientConfig;
use super::protocol::{CipherList, TlsVersion};

/// Which trust anchors verify the broker's certificate.
///
/// The default is Mozilla's roots in a build with the `webpki-roots` feature (the default
/// features), else the system store in a build with `native-roots`, else Mozilla's roots, which
/// then fail naming the feature they need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustRoots {
    /// Mozilla's roots, compiled in (webpki-roots; cargo feature `webpki-roots`).
    WebPki,
    /// The operating system's store (rustls-native-certs; cargo feature `native-roots`).
    System,
    /// Only the CA certificates in this PEM file (a private CA, a test broker); mosquitto's
    /// `--cafile`.
    CaFile(PathBuf),
    /// Only the CA certificates in the PEM files of this directory (not its subdirectories);
    /// mosquitto's `--capath`. OpenSSL's hash-named links (`c_rehash`) are not needed, and do no
    /// harm: every file is read.
    CaDir(PathBuf),
}

impl Default for TrustRoots {
    fn default() -> Self {
        if cfg!(feature = "native-roots") && !cfg!(feature = "webpki-roots") {
            Self::System
        } else {
            Self::WebPki
        }
    }
}

/// A password for an encrypted client key; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPassword(String);

impl KeyPassword {
    /// The password itself, to decrypt the key with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPassword(<redacted>)")
    }
}

/// TLS settings for `ssl://` and `mqtts://` URIs. The broker's certificate and host name are always
/// verified; there is no switch to turn that off (except through a [`custom`](Self::custom)
/// configuration, which is yours).
///
/// ```
/// use sansmq_driver::{TlsOptions, TrustRoots};
///
/// // A private CA, mutual TLS with an encrypted key, and the ALPN protocol AWS IoT wants on 443.
/// let tls = TlsOptions::new()
///     .roots(TrustRoots::CaFile("ca.pem".into()))
///     .client_auth("client.pem", "client.key")
///     .key_password("correct horse")
///     .alpn(["x-amzn-mqtt-ca"]);
/// assert!(!format!("{tls:?}").contains("horse"));
/// ```
#[derive(Clone, Default)]
pub struct TlsOptions {
    pub(crate) roots: TrustRoots,
    pub(crate) client_auth: Option<(PathBuf, PathBuf)>,
    pub(crate) key_password: Option<KeyPassword>,
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) min_version: TlsVersion,
    pub(crate) tls12_ciphers: Option<CipherList>,
    pub(crate) custom: Option<Arc<ClientConfig>>,
}

impl TlsOptions {
    /// The default roots ([`TrustRoots`]: Mozilla's with the default features), no client
    /// certificate, no ALPN.
    pub fn new() -> Self {
        Self::default()
    }

    /// A whole rustls configuration, used as it is, for what these options do not model (a
    /// custom certificate verifier, pinned keys, a hardware key, session resumption settings...).
    /// Only the server name still comes from the URI, and [`alpn`](Self::alpn), if called, sets
    /// the configuration's ALPN protocols; the other settings here are ignored.
    pub fn custom(config: Arc<ClientConfig>) -> Self {
        Self {
            custom: Some(config),
            ..Self::default()
        }
    }

    /// The trust anchors that verify the broker.
    pub fn roots(mut self, roots: TrustRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Mutual TLS: the client certificate chain and its private key, PEM files. The key may be
    /// PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), or encrypted
    /// PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2 with AES-CBC or DES-EDE3-CBC, as `openssl pkcs8
    /// -topk8 -v2 aes-256-cbc` writes it), which needs [`key_password`](Self::key_password).
    pub fn client_auth(mut self, cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_auth = Some((cert_chain.into(), key.into()));
        self
    }

    /// The password of an encrypted client key (ignored for a key that is not encrypted, as
    /// OpenSSL does).
    pub fn key_password(mut self, password: impl Into<String>) -> Self {
        self.key_password = Some(KeyPassword(password.into()));
        self
    }

    /// The protocols offered by ALPN, in order of preference (e.g. `x-amzn-mqtt-ca` for AWS IoT
    /// on port 443). None by default.
    pub fn alpn<P: Into<Vec<u8>>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The oldest TLS version offered (mosquitto's `--tls-version`). Default TLS 1.2.
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// The TLS 1.2 cipher suites offered (mosquitto's `--ciphers`); TLS 1.3's are not affected.
    /// Default: all that rustls offers.
    pub fn tls12_ciphers(mut self, ciphers: CipherList) -> Self {
        self.tls12_ciphers = Some(ciphers);
        self
    }

    /// The trust anchors.
    pub fn trust_roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// The client certificate chain and key files, for mutual TLS.
    pub fn client_auth_files(&self) -> Option<(&Path, &Path)> {
        self.client_auth
            .as_ref()
            .map(|(chain, key)| (chain.as_path(), key.as_path()))
    }

    /// The password of the client key, if one was given.
    pub fn client_key_password(&self) -> Option<&KeyPassword> {
        self.key_password.as_ref()
    }

    /// The ALPN protocols offered.
    pub fn alpn_protocols(&self) -> &[Vec<u8>] {
        &self.alpn
    }

    /// The whole rustls configuration given to [`custom`](Self::custom), if any.
    pub fn custom_config(&self) -> Option<&Arc<ClientConfig>> {
        self.custom.as_ref()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("client_auth", &self.client_auth)
            .field("key_password", &self.key_password)
            .field(
                "alpn",
                &self
                    .alpn
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>(),
            )
            .field("min_version", &self.min_version)
            .field("tls12_ciphers", &self.tls12_ciphers)
            .field(
                "custom",
                &self.custom.as_ref().map(|_| "<rustls::ClientConfig>"),
            )
            .finish()
    }
}
