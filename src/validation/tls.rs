//! TLS material checks (docs/reference/tracepipeline.md#admission-rules): PEM that parses, a client
//! certificate and key that belong together, CA certificates that are CAs, and expiry (an error
//! once expired, a warning within 14 days).

use std::fmt;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// A certificate expiring within this many seconds is admitted with a warning (14 days).
pub const EXPIRY_WARNING_SECONDS: i64 = 14 * 24 * 60 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsField {
    Ca,
    Cert,
    Key,
}

impl TlsField {
    pub fn name(self) -> &'static str {
        match self {
            TlsField::Ca => "ca",
            TlsField::Cert => "cert",
            TlsField::Key => "key",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsProblem {
    NoCertificate,
    UnparsableCertificate(String),
    NotCa { subject: String },
    Expired { date: String },
    NoKey,
    UnsupportedKey,
    KeyDoesNotMatch,
}

impl TlsProblem {
    pub fn is_expiry(&self) -> bool {
        matches!(self, TlsProblem::Expired { .. })
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProblem::NoCertificate => {
                f.write_str("TLS configuration invalid: no PEM certificate found; expected a '-----BEGIN CERTIFICATE-----' block")
            }
            TlsProblem::UnparsableCertificate(why) => {
                write!(f, "TLS configuration invalid: the certificate cannot be parsed: {why}")
            }
            TlsProblem::NotCa { subject } => write!(
                f,
                "TLS configuration invalid: certificate {subject:?} is not a CA certificate (basicConstraints CA:TRUE is missing); give the CA that signed the server certificate"
            ),
            TlsProblem::Expired { date } => write!(f, "TLS certificate expired on {date}; renew the certificate"),
            TlsProblem::NoKey => f.write_str(
                "TLS configuration invalid: no PEM private key found; expected a PEM block labelled PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
            ),
            TlsProblem::UnsupportedKey => {
                f.write_str("TLS configuration invalid: the private key type is not supported; use an RSA, ECDSA or Ed25519 key")
            }
            TlsProblem::KeyDoesNotMatch => {
                f.write_str("TLS configuration invalid: the private key does not match the client certificate; give the key the certificate was issued for")
            }
        }
    }
}

/// The PEM values of one TLS block, each resolved (plain value or Secret) where present.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsMaterial<'a> {
    pub ca: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFindings {
    pub problems: Vec<(TlsField, TlsProblem)>,
    /// Certificates that expire within 14 days: the field, the date and the Unix time.
    pub expiring: Vec<(TlsField, String, i64)>,
}

/// Manifests often carry PEM with literal `\n` (the gateway converts them; so does validation).
pub fn normalize_pem(value: &str) -> String {
    value.replace("\\n", "\n")
}

/// Check TLS material at time `now` (Unix seconds).
pub fn check(material: TlsMaterial<'_>, now: i64) -> TlsFindings {
    let mut findings = TlsFindings::default();
    if let Some(ca) = material.ca {
        check_certificates(TlsField::Ca, ca, now, &mut findings);
    }
    let leaf = material
        .cert
        .and_then(|cert| check_certificates(TlsField::Cert, cert, now, &mut findings));
    if let Some(key) = material.key {
        match parse_key(key) {
            Ok(key) => {
                if let Some(leaf) = leaf
                    && CertifiedKey::new(vec![leaf], key).keys_match().is_err()
                {
                    findings
                        .problems
                        .push((TlsField::Key, TlsProblem::KeyDoesNotMatch));
                }
            }
            Err(problem) => findings.problems.push((TlsField::Key, problem)),
        }
    }
    findings
}

/// Check every certificate in `pem`; returns the first (the leaf) when all parse.
fn check_certificates(
    field: TlsField,
    pem: &str,
    now: i64,
    findings: &mut TlsFindings,
) -> Option<CertificateDer<'static>> {
    let pem = normalize_pem(pem);
    let ders: Vec<CertificateDer<'static>> =
        match CertificateDer::pem_slice_iter(pem.as_bytes()).collect() {
            Ok(ders) => ders,
            Err(err) => {
                findings
                    .problems
                    .push((field, TlsProblem::UnparsableCertificate(err.to_string())));
                return None;
            }
        };
    if ders.is_empty() {
        findings.problems.push((field, TlsProblem::NoCertificate));
        return None;
    }
    for der in &ders {
        let cert = match X509Certificate::from_der(der) {
            Ok((_, cert)) => cert,
            Err(err) => {
                findings
                    .problems
                    .push((field, TlsProblem::UnparsableCertificate(err.to_string())));
                return None;
            }
        };
        let not_after = cert.validity().not_after;
        let date = not_after.to_datetime().date().to_string();
        if not_after.timestamp() <= now {
            findings
                .problems
                .push((field, TlsProblem::Expired { date }));
        } else if not_after.timestamp() - now <= EXPIRY_WARNING_SECONDS {
            findings.expiring.push((field, date, not_after.timestamp()));
        }
        if field == TlsField::Ca && !is_ca(&cert) {
            findings.problems.push((
                field,
                TlsProblem::NotCa {
                    subject: cert.subject().to_string(),
                },
            ));
        }
    }
    ders.into_iter().next()
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca)
}

fn parse_key(pem: &str) -> Result<std::sync::Arc<dyn rustls::sign::SigningKey>, TlsProblem> {
    let pem = normalize_pem(pem);
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| TlsProblem::NoKey)?;
    rustls::crypto::ring::sign::any_supported_type(&der).map_err(|_| TlsProblem::UnsupportedKey)
}
