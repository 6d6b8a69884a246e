//! The client's private key for mutual TLS: plain PEM as rustls reads it, or encrypted PKCS#8
//! (PBES2 with AES-CBC or DES-EDE3-CBC) decrypted with RustCrypto's `pkcs8`.

#[cfg(feature = "rustls")]
use std::path::Path;

#[cfg(feature = "rustls")]
use pkcs8::der::Decode as _;
#[cfg(feature = "rustls")]
use rustls::pki_types::pem::PemObject;
#[cfg(feature = "rustls")]
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

#[cfg(feature = "rustls")]
use super::KeyPassword;
#[cfg(feature = "rustls")]
use crate::Error;

/// The PEM label of an encrypted PKCS#8 key (RFC 5958).
#[cfg(feature = "rustls")]
const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Why a client key file cannot be used ([`Error::ClientKey`](crate::Error::ClientKey)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Unreadable(String),
    /// The key is encrypted and no password was given.
    #[error(
        "the key is encrypted; give its password with TlsOptions::key_password (--keypass on \
         the sansmq command line)"
    )]
    PasswordNeeded,
    /// The password does not decrypt the key.
    #[error("the password does not decrypt the key")]
    WrongPassword,
    /// Encrypted the way OpenSSL's `genrsa -des3` / traditional PEM does (`Proc-Type:
    /// 4,ENCRYPTED`), which is not PKCS#8.
    #[error(
        "the key is encrypted in OpenSSL's traditional format (Proc-Type: 4,ENCRYPTED); convert \
         it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEW_KEY`"
    )]
    TraditionalEncryption,
    /// An encrypted PKCS#8 key whose scheme is not PBES2 with AES-CBC or DES-EDE3-CBC.
    #[error(
        "its encryption is not supported ({0}); re-encrypt it with `openssl pkcs8 -topk8 -v2 \
         aes-256-cbc`"
    )]
    UnsupportedEncryption(String),
    /// No private key block in the file.
    #[error(
        "no private key in it (expected a PEM block PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY \
         or ENCRYPTED PRIVATE KEY)"
    )]
    NoKey,
    /// A key block that does not decode.
    #[error("the key does not decode: {0}")]
    Malformed(String),
}

/// The client's private key from the PEM file at `path`, decrypted with `password` when it is an
/// encrypted PKCS#8 key.
#[cfg(feature = "rustls")]
pub(super) fn client_key(
    path: &Path,
    password: Option<&KeyPassword>,
) -> Result<PrivateKeyDer<'static>, Error> {
    let problem = |problem| Error::ClientKey {
        path: path.display().to_string(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| problem(KeyProblem::Unreadable(e.to_string())))?;
    // rustls reads only unencrypted keys, and says "no items found" for the rest: look for the
    // encrypted forms first.
    let text = String::from_utf8_lossy(&pem);
    if let Some(block) = pem_block(&text, ENCRYPTED_KEY_LABEL) {
        let password = password.ok_or_else(|| problem(KeyProblem::PasswordNeeded))?;
        return decrypt_pkcs8(block, password).map_err(problem);
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(problem(KeyProblem::TraditionalEncryption));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        problem(match e {
            rustls::pki_types::pem::Error::NoItemsFound => KeyProblem::NoKey,
            other => KeyProblem::Malformed(other.to_string()),
        })
    })
}

/// The first PEM block labelled `label` in `text`, armour lines included.
#[cfg(feature = "rustls")]
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let length = text.get(start..)?.find(&end)? + end.len();
    text.get(start..start + length)
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM block (PKCS#8 `EncryptedPrivateKeyInfo`, RFC 5958).
#[cfg(feature = "rustls")]
fn decrypt_pkcs8(
    block: &str,
    password: &KeyPassword,
) -> Result<PrivateKeyDer<'static>, KeyProblem> {
    let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
        .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    let decrypted = encrypted
        .decrypt(password.expose().as_bytes())
        .map_err(|e| match e {
            // A wrong password shows as bad CBC padding, which pkcs5 0.7 reports as
            // `EncryptFailed` even while decrypting.
            pkcs8::Error::EncryptedPrivateKey(
                pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
            ) => KeyProblem::WrongPassword,
            pkcs8::Error::EncryptedPrivateKey(other) => {
                KeyProblem::UnsupportedEncryption(other.to_string())
            }
            // What came out of the cipher is not DER: the padding happened to check out.
            _ => KeyProblem::WrongPassword,
        })?;
    // CBC padding accepts a wrong key about once in 256 tries; what comes out then is no key.
    pkcs8::PrivateKeyInfo::from_der(decrypted.as_bytes()).map_err(|_| KeyProblem::WrongPassword)?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        decrypted.as_bytes().to_vec(),
    )))
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use super::*;
    use crate::TlsOptions;

    /// Writes `pem` to a key file and loads it.
    fn load(pem: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.key");
        std::fs::write(&path, pem).unwrap();
        let options = password.map_or_else(TlsOptions::new, |p| TlsOptions::new().key_password(p));
        client_key(&path, options.key_password.as_ref())
    }

    fn problem(result: Result<PrivateKeyDer<'static>, Error>) -> KeyProblem {
        match result {
            Err(Error::ClientKey { problem, path }) => {
                assert!(path.ends_with("client.key"), "{path}");
                problem
            }
            other => panic!("expected a client key error, got {other:?}"),
        }
    }

    /// A P-256 key in PKCS#8, encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC) by the pkcs8 crate.
    fn encrypted_pkcs8(password: &str) -> String {
        // A throwaway P-256 key (PKCS#8) made once with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
        let plain = "-----BEGIN PRIVATE KEY-----\n\
            MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIm8kafkyUvsPs6I2\n\
            mgm/lAYan/x7dhbBUJPdQsbff/+hRANCAATSBlB1pLDVG/ZIOaS24Jq31IRN4XeL\n\
            8sapcvgIrjrbfgugdZPpJ+tKEWJr7yaCnpdmpOkEs3+5uG+WvqfjyIOf\n\
            -----END PRIVATE KEY-----\n";
        let (_, der) = pkcs8::der::pem::decode_vec(plain.as_bytes()).unwrap();
        let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16])
                .unwrap();
        info.encrypt_with_params(params, password)
            .unwrap()
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_encrypted_key_decrypts_with_its_password_only() {
        let pem = encrypted_pkcs8("pw");
        assert!(matches!(
            load(&pem, Some("pw")),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        assert_eq!(problem(load(&pem, None)), KeyProblem::PasswordNeeded);
        assert_eq!(problem(load(&pem, Some("nope"))), KeyProblem::WrongPassword);
        let message = load(&pem, None).unwrap_err().to_string();
        assert!(
            message.contains("client.key") && message.contains("encrypted"),
            "{message}"
        );
        assert!(message.contains("--keypass"), "{message}");
    }

    #[test]
    fn a_traditionally_encrypted_key_says_how_to_convert_it() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                   DEK-Info: DES-EDE3-CBC,D72CFBC7CD65D7FB\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            problem(load(pem, Some("password"))),
            KeyProblem::TraditionalEncryption
        );
        assert!(
            KeyProblem::TraditionalEncryption
                .to_string()
                .contains("openssl pkcs8 -topk8")
        );
    }

    #[test]
    fn a_file_without_a_key_says_what_it_expected() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(problem(load(pem, None)), KeyProblem::NoKey);
        assert!(
            KeyProblem::NoKey
                .to_string()
                .contains("ENCRYPTED PRIVATE KEY")
        );
        let garbled =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n!!!!\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            problem(load(garbled, Some("pw"))),
            KeyProblem::Malformed(_)
        ));
    }
}
