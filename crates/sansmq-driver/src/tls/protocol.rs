//! Which TLS versions and TLS 1.2 cipher suites a connection may use: [`TlsVersion`] and
//! [`CipherList`], named as OpenSSL (and so mosquitto's `--tls-version` and `--ciphers`) name them.

use std::fmt;

#[cfg(feature = "rustls")]
use rustls::SupportedCipherSuite;
#[cfg(feature = "rustls")]
use rustls::crypto::CryptoProvider;

use crate::Error;

/// The oldest TLS version offered. rustls speaks TLS 1.2 and 1.3 only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// mosquitto's spellings: `tlsv1.3`, `tlsv1.2`, and `tlsv1.1`, which allows TLS 1.1 or newer
    /// there and means TLS 1.2 or newer here (TLS 1.1 itself is offered by no rustls client).
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "tlsv1.3" => Ok(Self::Tls13),
            "tlsv1.2" | "tlsv1.1" => Ok(Self::Tls12),
            other => Err(Error::Tls(format!(
                "TLS version {other:?}: use tlsv1.3 or tlsv1.2 (TLS 1.1 and older are not spoken)"
            ))),
        }
    }

    /// The versions offered, newest first.
    #[cfg(feature = "rustls")]
    pub(crate) fn offered(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match self {
            Self::Tls12 => rustls::DEFAULT_VERSIONS,
            Self::Tls13 => TLS13_ONLY,
        }
    }
}

/// The TLS 1.2 cipher suites offered, in order of preference, from an OpenSSL cipher list of
/// explicit names (`ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305`). As with OpenSSL's
/// cipher list, TLS 1.3's suites are not affected. Only the names of suites rustls offers are
/// taken; OpenSSL's keywords and operators (`HIGH`, `!aNULL`, `+SHA`) are refused by name, since
/// what they select depends on OpenSSL's build.
#[derive(Clone, PartialEq, Eq)]
pub struct CipherList(Vec<&'static str>);

impl CipherList {
    /// Parses `list`; an error names the first entry that is not a suite rustls offers, and lists
    /// those it does.
    pub fn parse(list: &str) -> Result<Self, Error> {
        let mut suites = Vec::new();
        for name in list.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
            let suite = OPENSSL_NAMES
                .iter()
                .find(|(openssl, iana)| *openssl == name || *iana == name)
                .map(|&(_, iana)| iana)
                .ok_or_else(|| {
                    let known: Vec<&str> = OPENSSL_NAMES.iter().map(|(n, _)| *n).collect();
                    Error::Tls(format!(
                        "cipher {name:?} is not a TLS 1.2 suite that rustls offers; name some of {}",
                        known.join(", ")
                    ))
                })?;
            if !suites.contains(&suite) {
                suites.push(suite);
            }
        }
        if suites.is_empty() {
            return Err(Error::Tls("the cipher list is empty".into()));
        }
        Ok(Self(suites))
    }

    /// Restricts `provider`'s TLS 1.2 suites to this list, in its order, after the TLS 1.3 ones.
    #[cfg(feature = "rustls")]
    pub(crate) fn apply(&self, provider: &mut CryptoProvider) {
        let all = std::mem::take(&mut provider.cipher_suites);
        let (tls13, tls12): (Vec<SupportedCipherSuite>, Vec<SupportedCipherSuite>) = all
            .into_iter()
            .partition(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
        provider.cipher_suites = tls13;
        for wanted in &self.0 {
            if let Some(suite) = tls12.iter().find(|s| s.suite().as_str() == Some(wanted)) {
                provider.cipher_suites.push(*suite);
            }
        }
    }
}

impl fmt::Debug for CipherList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The IANA names, unquoted, as rustls's `CipherSuite` shows them.
        f.write_str("[")?;
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        f.write_str("]")
    }
}

/// OpenSSL's names of the TLS 1.2 suites rustls's ring provider offers, and their IANA names (as
/// rustls's `CipherSuite::as_str` gives them), which need no TLS library to be checked.
const OPENSSL_NAMES: [(&str, &str); 6] = [
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_take_mosquittos_names() {
        assert_eq!(TlsVersion::parse("tlsv1.3").unwrap(), TlsVersion::Tls13);
        assert_eq!(TlsVersion::parse("tlsv1.2").unwrap(), TlsVersion::Tls12);
        assert_eq!(TlsVersion::parse("tlsv1.1").unwrap(), TlsVersion::Tls12);
        let error = TlsVersion::parse("sslv3").unwrap_err().to_string();
        assert!(
            error.contains("sslv3") && error.contains("tlsv1.3"),
            "{error}"
        );
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn tls13_alone_offers_one_version() {
        assert_eq!(TlsVersion::Tls13.offered().len(), 1);
        assert_eq!(TlsVersion::Tls12.offered().len(), 2);
    }

    #[test]
    fn cipher_lists_take_openssl_and_iana_names_in_order() {
        let list =
            CipherList::parse("ECDHE-RSA-CHACHA20-POLY1305:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
                .unwrap();
        assert_eq!(
            list.0,
            [
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(
            format!("{list:?}"),
            "[TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]"
        );
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn a_cipher_list_keeps_its_tls12_suites_in_order_after_the_tls13_ones() {
        let list =
            CipherList::parse("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        let mut provider = rustls::crypto::ring::default_provider();
        let tls13 = provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .count();
        list.apply(&mut provider);
        let names: Vec<&str> = provider
            .cipher_suites
            .iter()
            .filter_map(|s| s.suite().as_str())
            .collect();
        assert_eq!(names.len(), tls13 + 2);
        assert_eq!(names[tls13..], list.0[..]);
    }

    /// The table's IANA names are checked without rustls; a misspelt one would select nothing.
    #[cfg(feature = "rustls")]
    #[test]
    fn every_named_suite_is_a_tls12_suite_of_the_ring_provider() {
        let provider = rustls::crypto::ring::default_provider();
        let tls12: Vec<&str> = provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .filter_map(|s| s.suite().as_str())
            .collect();
        let named: Vec<&str> = OPENSSL_NAMES.iter().map(|&(_, iana)| iana).collect();
        assert_eq!(named.len(), tls12.len());
        for name in named {
            assert!(tls12.contains(&name), "{name}");
        }
    }

    #[test]
    fn cipher_lists_refuse_openssl_keywords_and_unknown_names() {
        for list in ["HIGH:!aNULL", "AES128-SHA", "", "::"] {
            assert!(CipherList::parse(list).is_err(), "{list:?}");
        }
        let error = CipherList::parse("DEFAULT").unwrap_err().to_string();
        assert!(error.contains("DEFAULT") && error.contains("ECDHE-RSA-AES128-GCM-SHA256"));
    }
}
