//! TLS for the webhook server (docs/operations.md#certificates): a certificate store that the
//! server reads on every handshake and that reloads swap atomically, keeping the old pair when a
//! new one is broken.

pub mod files;
pub mod self_signed;

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::FromDer;

/// Install ring as the process-wide rustls provider; the first call wins, later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("the certificate PEM cannot be read: {0}")]
    CertificatePem(String),
    #[error("the certificate cannot be parsed: {0}")]
    Certificate(String),
    #[error("no PEM private key found: {0}")]
    Key(String),
    #[error("the private key cannot be used: {0}")]
    UnsupportedKey(String),
    #[error("the private key does not match the certificate")]
    Mismatch,
}

/// A serving certificate ready for rustls, with its expiry.
#[derive(Clone)]
pub struct ServingCertificate {
    pub key: Arc<CertifiedKey>,
    /// Unix seconds.
    pub not_after: i64,
}

impl fmt::Debug for ServingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingCertificate")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ServingCertificate {
    /// The expiry (Unix seconds) of the first certificate of a PEM chain.
    pub fn from_pem_chain_expiry(cert_pem: &[u8]) -> Option<i64> {
        let leaf = CertificateDer::pem_slice_iter(cert_pem).next()?.ok()?;
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&leaf).ok()?;
        Some(parsed.validity().not_after.timestamp())
    }

    /// Parse a PEM chain and key and check that they belong together.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| CertificateError::CertificatePem(e.to_string()))?;
        let leaf = chain.first().ok_or(CertificateError::NoCertificate)?;
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(leaf)
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
        let not_after = parsed.validity().not_after.timestamp();
        let der = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| CertificateError::Key(e.to_string()))?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| CertificateError::UnsupportedKey(e.to_string()))?;
        let key = CertifiedKey::new(chain, signing_key);
        key.keys_match().map_err(|_| CertificateError::Mismatch)?;
        Ok(ServingCertificate {
            key: Arc::new(key),
            not_after,
        })
    }
}

/// The certificate every new handshake uses. Reloads replace it; connections already established
/// keep the one they started with.
#[derive(Debug, Default)]
pub struct CertStore {
    current: RwLock<Option<ServingCertificate>>,
}

impl CertStore {
    pub fn new() -> Arc<Self> {
        Arc::new(CertStore::default())
    }

    pub fn replace(&self, certificate: ServingCertificate) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(certificate);
    }

    pub fn current(&self) -> Option<ServingCertificate> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().map(|c| c.key)
    }
}

/// The server's TLS settings: TLS 1.2 and 1.3 only (rustls offers nothing older), ALPN for h2 and
/// HTTP/1.1, certificates from `store`.
pub fn server_config(store: Arc<CertStore>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .expect("ring supports TLS 1.2 and 1.3")
    .with_no_client_auth()
    .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
