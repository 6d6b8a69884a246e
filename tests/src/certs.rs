//! A throwaway PKI generated at test time: a CA, a server and a client certificate it signs, and an
//! unrelated "wrong" CA, as PEM strings and as files.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use tempfile::TempDir;

/// The names the default server certificate is valid for: what a client dials on this machine.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The common name of the client certificate, for brokers that map it to a user name.
pub const CLIENT_COMMON_NAME: &str = "sansmq-e2e-client";

/// A generated PKI for TLS tests, written as PEM files into its own temporary directory, which is
/// removed when this value is dropped.
///
/// - the **CA** (`ca.pem`) signs the server and client certificates; a client that trusts it
///   accepts the broker, and a broker that requires client certificates accepts the client's;
/// - the **server** certificate (`server.pem`, key `server.key`) is valid for
///   [`SERVER_NAMES`] (`localhost` and `127.0.0.1`) unless made with [`with_server_names`];
/// - the **client** certificate (`client.pem`, key `client.key`, CN [`CLIENT_COMMON_NAME`]) is for
///   mutual TLS;
/// - the **wrong CA** (`wrong-ca.pem`) has signed nothing here: a client that trusts only it must
///   refuse the broker.
///
/// Keys are ECDSA P-256 in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), which both OpenSSL
/// (mosquitto) and rustls read. Certificates are valid from 2020 to 2100.
///
/// [`with_server_names`]: Self::with_server_names
pub struct TestPki {
    dir: TempDir,
    server_names: Vec<String>,
    ca: PemFile,
    server_cert: PemFile,
    server_key: PemFile,
    client_cert: PemFile,
    client_key: PemFile,
    wrong_ca: PemFile,
}

/// A PEM document and the file it was written to.
struct PemFile {
    pem: String,
    path: PathBuf,
}

impl TestPki {
    /// A PKI whose server certificate is valid for `localhost` and `127.0.0.1`.
    ///
    /// # Panics
    ///
    /// If key generation, signing, or writing the files fails.
    pub fn generate() -> Self {
        Self::with_server_names(&SERVER_NAMES)
    }

    /// A PKI whose server certificate is valid for exactly `names` (DNS names or IP addresses): a
    /// certificate for a name the client does not dial makes a host-name mismatch test.
    ///
    /// # Panics
    ///
    /// If a name is neither a valid DNS name nor an IP address, or generation or writing fails.
    pub fn with_server_names(names: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sansmq-pki-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a directory for the test PKI: {e}"));

        let (ca_cert, ca) = new_ca("sansmq e2e test CA");
        let (wrong_ca_cert, _) = new_ca("sansmq e2e wrong CA");

        let server_names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut server = CertificateParams::new(server_names.clone())
            .unwrap_or_else(|e| panic!("invalid server names {names:?}: {e}"));
        let common_name = names.first().copied().unwrap_or("sansmq e2e server");
        server
            .distinguished_name
            .push(DnType::CommonName, common_name);
        server
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let (server_cert, server_key) = new_leaf(server, &ca);

        let mut client = CertificateParams::new(Vec::new()).expect("no names cannot be invalid");
        client
            .distinguished_name
            .push(DnType::CommonName, CLIENT_COMMON_NAME);
        client
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
        let (client_cert, client_key) = new_leaf(client, &ca);

        let dir_path = dir.path().to_owned();
        let write = |name: &str, pem: String| PemFile::write(&dir_path, name, pem);
        Self {
            server_names,
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            wrong_ca: write("wrong-ca.pem", wrong_ca_cert.pem()),
            dir,
        }
    }

    /// The directory holding the PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The names the server certificate is valid for.
    pub fn server_names(&self) -> &[String] {
        &self.server_names
    }

    /// The CA certificate that signed the server and client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca.pem
    }

    /// A whole rustls client configuration that trusts this CA and offers `alpn`: something
    /// the clients' TLS options cannot express by themselves, for `TlsOptions::custom`.
    ///
    /// # Panics
    /// If rustls refuses the CA certificate.
    pub fn custom_client_config(&self, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem().as_bytes()) {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a CA rustls takes");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls' default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        std::sync::Arc::new(config)
    }

    /// The file holding [`ca_pem`](Self::ca_pem): a client's "CA file" option, mosquitto's `cafile`.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca.path
    }

    /// The server certificate.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert.pem
    }

    /// The file holding [`server_cert_pem`](Self::server_cert_pem): mosquitto's `certfile`.
    pub fn server_cert_pem_path(&self) -> &Path {
        &self.server_cert.path
    }

    /// The server's private key.
    pub fn server_key_pem(&self) -> &str {
        &self.server_key.pem
    }

    /// The file holding [`server_key_pem`](Self::server_key_pem): mosquitto's `keyfile`.
    pub fn server_key_pem_path(&self) -> &Path {
        &self.server_key.path
    }

    /// The client certificate, for mutual TLS.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert.pem
    }

    /// The file holding [`client_cert_pem`](Self::client_cert_pem).
    pub fn client_cert_pem_path(&self) -> &Path {
        &self.client_cert.path
    }

    /// The client's private key.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key.pem
    }

    /// The file holding [`client_key_pem`](Self::client_key_pem).
    pub fn client_key_pem_path(&self) -> &Path {
        &self.client_key.path
    }

    /// The client key encrypted by OpenSSL under `password` as PKCS#8 (`ENCRYPTED PRIVATE KEY`)
    /// with PBES2 and `cipher`, an `openssl pkcs8 -v2` cipher name (`aes-256-cbc`, `aes-128-cbc`,
    /// `des3`), written next to the other files; its path. OpenSSL, not the crate under test,
    /// makes it, so reading it proves interoperability.
    ///
    /// # Panics
    ///
    /// If `openssl` cannot be run or fails.
    pub fn encrypted_client_key(&self, cipher: &str, password: &str) -> PathBuf {
        let path = self.dir.path().join(format!("client-{cipher}.key"));
        let output = std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", cipher, "-in"])
            .arg(&self.client_key.path)
            .arg("-out")
            .arg(&path)
            .arg("-passout")
            .arg(format!("pass:{password}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl to encrypt a test key: {e}"));
        assert!(
            output.status.success(),
            "openssl pkcs8 -v2 {cipher} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        path
    }

    /// A CA certificate that signed nothing here: trusting only it must fail verification.
    pub fn wrong_ca_pem(&self) -> &str {
        &self.wrong_ca.pem
    }

    /// The file holding [`wrong_ca_pem`](Self::wrong_ca_pem).
    pub fn wrong_ca_pem_path(&self) -> &Path {
        &self.wrong_ca.path
    }
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .field("server_names", &self.server_names)
            .finish_non_exhaustive()
    }
}

impl PemFile {
    fn write(dir: &Path, name: &str, pem: String) -> Self {
        let path = dir.join(name);
        fs::write(&path, &pem).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        Self { pem, path }
    }
}

/// A self-signed CA certificate and the issuer that signs with its key.
fn new_ca(common_name: &str) -> (Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).expect("no names cannot be invalid");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    let key = new_key();
    let cert = params
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("cannot self-sign the CA {common_name:?}: {e}"));
    (cert, Issuer::new(params, key))
}

/// A leaf certificate for `params`, signed by `ca`, and its key.
fn new_leaf(mut params: CertificateParams, ca: &Issuer<'_, KeyPair>) -> (Certificate, KeyPair) {
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params);
    let key = new_key();
    let cert = params
        .signed_by(&key, ca)
        .unwrap_or_else(|e| panic!("cannot sign a test certificate: {e}"));
    (cert, key)
}

fn new_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("cannot generate a key pair: {e}"))
}

/// A fixed, wide validity: no clock reading, and nothing expires while the project lives.
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_pem_to_its_file() {
        let pki = TestPki::generate();
        for (path, pem) in [
            (pki.ca_pem_path(), pki.ca_pem()),
            (pki.server_cert_pem_path(), pki.server_cert_pem()),
            (pki.server_key_pem_path(), pki.server_key_pem()),
            (pki.client_cert_pem_path(), pki.client_cert_pem()),
            (pki.client_key_pem_path(), pki.client_key_pem()),
            (pki.wrong_ca_pem_path(), pki.wrong_ca_pem()),
        ] {
            assert!(path.starts_with(pki.dir()));
            assert_eq!(fs::read_to_string(path).unwrap(), pem);
        }
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            pki.server_key_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_ne!(pki.ca_pem(), pki.wrong_ca_pem());
        assert_eq!(pki.server_names(), SERVER_NAMES);
    }

    #[test]
    fn openssl_encrypts_the_client_key_as_pkcs8() {
        let pki = TestPki::generate();
        for cipher in ["aes-256-cbc", "des3"] {
            let path = pki.encrypted_client_key(cipher, "pw");
            let pem = fs::read_to_string(&path).unwrap();
            assert!(
                pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
                "{pem}"
            );
            assert!(path.starts_with(pki.dir()));
        }
    }

    #[test]
    fn removes_its_files_when_dropped() {
        let pki = TestPki::with_server_names(&["broker.invalid"]);
        let dir = pki.dir().to_owned();
        drop(pki);
        assert!(!dir.exists());
    }
}
