//! Helpers shared by the integration tests: certificates made at test time (no key material is
//! committed) and pipeline objects.
#![allow(dead_code)]

pub mod fake_api;
pub mod mock_api;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use serde_json::{Value, json};
use telemetry_manager::admission::AdmissionCluster;
use telemetry_manager::validation::{InMemorySecrets, SecretLookup, SecretResolver};

/// The cluster as the webhook sees it, in memory.
#[derive(Default)]
pub struct FakeCluster {
    pub pipelines: Vec<String>,
    pub secrets: InMemorySecrets,
    /// How long each Secret lookup takes.
    pub delay: Option<Duration>,
    pub lookups: AtomicUsize,
}

impl SecretResolver for FakeCluster {
    async fn lookup(&self, namespace: &str, name: &str) -> SecretLookup {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.secrets.lookup(namespace, name).await
    }
}

impl AdmissionCluster for FakeCluster {
    async fn pipeline_names(&self) -> Result<Vec<String>, String> {
        Ok(self.pipelines.clone())
    }
}

/// A PEM certificate with its PEM private key.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Unix time of a calendar day, midnight UTC.
pub fn unix(year: i32, month: u8, day: u8) -> i64 {
    date_time_ymd(year, month, day).unix_timestamp()
}

fn params(name: &str, not_after: (i32, u8, u8), ca: bool) -> CertificateParams {
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("a valid DNS name");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params
}

/// A self-signed certificate valid until `not_after`, a CA when `ca`.
pub fn self_signed(name: &str, not_after: (i32, u8, u8), ca: bool) -> Pem {
    let key = KeyPair::generate().expect("ECDSA P-256 key generation");
    let cert = params(name, not_after, ca)
        .self_signed(&key)
        .expect("self-signed certificate");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A CA and a client certificate it issued, both valid until `not_after`.
pub fn ca_and_client(not_after: (i32, u8, u8)) -> (Pem, Pem) {
    let ca_key = KeyPair::generate().expect("ECDSA P-256 key generation");
    let ca_params = params("test-ca", not_after, true);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let ca_pem = Pem {
        cert: ca_cert.pem(),
        key: ca_key.serialize_pem(),
    };
    let issuer = Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().expect("ECDSA P-256 key generation");
    let client = params("client", not_after, false)
        .signed_by(&client_key, &issuer)
        .expect("client certificate");
    (
        ca_pem,
        Pem {
            cert: client.pem(),
            key: client_key.serialize_pem(),
        },
    )
}

/// A v1beta1 TracePipeline with the given OTLP output.
pub fn pipeline(name: &str, otlp: Value) -> Value {
    json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "TracePipeline",
        "metadata": {"name": name},
        "spec": {"output": {"otlp": otlp}}
    })
}

/// `{"valueFrom": {"secretKeyRef": …}}`
pub fn from_secret(namespace: &str, name: &str, key: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"namespace": namespace, "name": name, "key": key}}})
}

/// A TLS client (ring; TLS 1.2 and 1.3 unless `versions` narrows them) that trusts only the
/// certificates in `ca_pem` and offers the given ALPN protocols.
pub fn tls_client(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("a usable CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(if versions.is_empty() {
        rustls::DEFAULT_VERSIONS
    } else {
        versions
    })
    .expect("ring supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// A port that was free a moment ago, for servers that must be told their address (a manager
/// started as a process). Ports are taken from below Linux's default ephemeral range (32768 and
/// up), one after the other within this process: the kernel hands such a port neither to an
/// outgoing connection nor to a `bind` on port 0, so no other test's traffic can take it before
/// the server binds it. (A port from `bind` on port 0 could be, and a manager that then failed
/// to bind made a test wait out its timeout.)
pub fn free_port() -> u16 {
    const FIRST: usize = 20_000;
    const COUNT: usize = 12_000;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // Test binaries run one after another, but start apart in case two run at once.
    let start = std::process::id() as usize % COUNT;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (start + offset) % COUNT).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `GET path` over plain HTTP/1.1: the status and the body, `None` when the server does not
/// answer.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .ok()?
        .to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Send SIGTERM to `child` and wait, at most 30 s, for it to exit.
pub async fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not stop after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every file of the repository but build output and version control, sorted.
pub fn repository_files() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    walk(&path, files);
                }
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    files.sort();
    files
}
