//! `--cert-mode=self` (docs/operations.md#certificates): an ECDSA P-256 CA kept in Secret
//! `telemetry-webhook-cert` in the manager's namespace, created once (replicas racing to create it
//! converge on the winner's CA), a short-lived serving certificate per replica issued from it, both
//! renewed well before expiry, and the CA kept in the `caBundle` of both webhook configurations.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{CertStore, ServingCertificate};
use crate::metrics::Metrics;

pub const CA_SECRET: &str = "telemetry-webhook-cert";
pub const VALIDATING_WEBHOOK_CONFIGURATION: &str = "telemetry-validating-webhook.kyma-project.io";
pub const MUTATING_WEBHOOK_CONFIGURATION: &str = "telemetry-mutating-webhook.kyma-project.io";

const DAY: i64 = 24 * 60 * 60;
const CA_LIFETIME: i64 = 10 * 365 * DAY;
/// A CA with less than this left is replaced; the old one stays in the bundle until it expires.
const CA_RENEW_BEFORE: i64 = 365 * DAY;
const SERVING_LIFETIME: i64 = 7 * DAY;
/// A serving certificate with less than this left is reissued.
const SERVING_RENEW_BEFORE: i64 = 3 * DAY;
/// Clock skew between nodes and the API server that a new certificate must tolerate.
const BACKDATE: i64 = 60 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("Secret {CA_SECRET} holds no usable CA: {0}")]
    BrokenSecret(String),
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("the issued certificate cannot be served: {0}")]
    Serve(#[from] super::CertificateError),
    #[error("Secret {CA_SECRET} kept changing while it was written; giving up for now")]
    Contention,
}

/// The CA that signs the webhook serving certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateAuthority {
    pub cert_pem: String,
    key_pem: String,
    pub not_after: i64,
    /// The CA this one replaced, trusted until it expires so that replicas still serving a
    /// certificate from it keep working during a rotation.
    pub previous_cert_pem: Option<String>,
}

fn time_at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn not_after_of(pem: &str) -> Option<i64> {
    ServingCertificate::from_pem_chain_expiry(pem.as_bytes())
}

impl CertificateAuthority {
    pub fn generate(now: i64) -> Result<Self, SelfSignedError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "telemetry-manager webhook CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = time_at(now - BACKDATE);
        params.not_after = time_at(now + CA_LIFETIME);
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: now + CA_LIFETIME,
            previous_cert_pem: None,
        })
    }

    /// A new CA that keeps trusting this one.
    pub fn rotated(&self, now: i64) -> Result<Self, SelfSignedError> {
        let mut next = Self::generate(now)?;
        next.previous_cert_pem = Some(self.cert_pem.clone());
        Ok(next)
    }

    pub fn from_secret(secret: &Secret) -> Result<Self, SelfSignedError> {
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| -> Result<String, SelfSignedError> {
            let bytes = data
                .get(key)
                .ok_or_else(|| SelfSignedError::BrokenSecret(format!("key {key} is missing")))?;
            String::from_utf8(bytes.0.clone())
                .map_err(|_| SelfSignedError::BrokenSecret(format!("key {key} is not PEM text")))
        };
        let cert_pem = text("ca.crt")?;
        let key_pem = text("ca.key")?;
        let not_after = not_after_of(&cert_pem)
            .ok_or_else(|| SelfSignedError::BrokenSecret("ca.crt does not parse".into()))?;
        KeyPair::from_pem(&key_pem)
            .map_err(|e| SelfSignedError::BrokenSecret(format!("ca.key: {e}")))?;
        let previous_cert_pem = text("ca-previous.crt").ok();
        Ok(CertificateAuthority {
            cert_pem,
            key_pem,
            not_after,
            previous_cert_pem,
        })
    }

    fn to_secret(&self, namespace: &str, resource_version: Option<String>) -> Secret {
        let mut data = BTreeMap::from([
            (
                "ca.crt".to_string(),
                ByteString(self.cert_pem.clone().into_bytes()),
            ),
            (
                "ca.key".to_string(),
                ByteString(self.key_pem.clone().into_bytes()),
            ),
        ]);
        if let Some(previous) = &self.previous_cert_pem {
            data.insert(
                "ca-previous.crt".to_string(),
                ByteString(previous.clone().into_bytes()),
            );
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(CA_SECRET.to_string()),
                namespace: Some(namespace.to_string()),
                resource_version,
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "telemetry-manager".to_string(),
                    ),
                    (
                        "app.kubernetes.io/part-of".to_string(),
                        "telemetry".to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(data),
            type_: Some("Opaque".to_string()),
            ..Secret::default()
        }
    }

    /// The PEM bundle webhook configurations trust: this CA, and the previous one until it expires.
    pub fn bundle(&self, now: i64) -> String {
        let mut bundle = self.cert_pem.clone();
        if let Some(previous) = &self.previous_cert_pem
            && not_after_of(previous).is_some_and(|t| t > now)
        {
            bundle.push_str(previous);
        }
        bundle
    }

    /// Issue a serving certificate for `dns_names` and `ips`.
    pub fn issue(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        now: i64,
    ) -> Result<(ServingCertificate, String), SelfSignedError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)
            .map_err(|e| SelfSignedError::BrokenSecret(format!("ca.key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names.first().cloned().unwrap_or_default(),
        );
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.clone().try_into()?)))
            .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = time_at(now - BACKDATE);
        params.not_after = time_at((now + SERVING_LIFETIME).min(self.not_after));
        let cert = params.signed_by(&key, &issuer)?;
        let chain = cert.pem();
        let serving =
            ServingCertificate::from_pem(chain.as_bytes(), key.serialize_pem().as_bytes())?;
        Ok((serving, chain))
    }
}

/// Read the CA from its Secret, creating or rotating it when needed. Concurrent replicas are safe:
/// creation loses to an existing Secret (409) and replacement is conditional on resourceVersion,
/// and the loser reads the winner's CA.
pub async fn ensure_ca(
    secrets: &Api<Secret>,
    namespace: &str,
    now: i64,
) -> Result<CertificateAuthority, SelfSignedError> {
    for _ in 0..5 {
        let Some(secret) = secrets.get_opt(CA_SECRET).await? else {
            let ca = CertificateAuthority::generate(now)?;
            match secrets
                .create(&PostParams::default(), &ca.to_secret(namespace, None))
                .await
            {
                Ok(_) => return Ok(ca),
                Err(kube::Error::Api(status)) if status.is_already_exists() => continue,
                Err(err) => return Err(err.into()),
            }
        };
        let replacement = match CertificateAuthority::from_secret(&secret) {
            Ok(ca) if ca.not_after - now > CA_RENEW_BEFORE => return Ok(ca),
            Ok(ca) => ca.rotated(now)?,
            Err(err) => {
                tracing::warn!(error = %err, "replacing the unusable webhook CA");
                CertificateAuthority::generate(now)?
            }
        };
        let conditional =
            replacement.to_secret(namespace, secret.metadata.resource_version.clone());
        match secrets
            .replace(CA_SECRET, &PostParams::default(), &conditional)
            .await
        {
            Ok(_) => return Ok(replacement),
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(SelfSignedError::Contention)
}

/// Set `caBundle` on every webhook of both configurations where it differs. Returns how many
/// configurations were patched; a configuration that does not exist is skipped.
pub async fn sync_ca_bundle(client: &kube::Client, bundle: &str) -> Result<usize, SelfSignedError> {
    let encoded = ByteString(bundle.as_bytes().to_vec());
    let validating = repair_ca_bundle(
        Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        VALIDATING_WEBHOOK_CONFIGURATION,
        &encoded,
        |config| {
            config
                .webhooks
                .iter()
                .flatten()
                .map(|w| (w.name.clone(), w.client_config.ca_bundle.clone()))
                .collect()
        },
    )
    .await?;
    let mutating = repair_ca_bundle(
        Api::<MutatingWebhookConfiguration>::all(client.clone()),
        MUTATING_WEBHOOK_CONFIGURATION,
        &encoded,
        |config| {
            config
                .webhooks
                .iter()
                .flatten()
                .map(|w| (w.name.clone(), w.client_config.ca_bundle.clone()))
                .collect()
        },
    )
    .await?;
    Ok(usize::from(validating) + usize::from(mutating))
}

/// Patch the webhooks of one configuration whose `caBundle` differs; true when it patched.
async fn repair_ca_bundle<K>(
    api: Api<K>,
    name: &str,
    bundle: &ByteString,
    webhooks: impl Fn(&K) -> Vec<(String, Option<ByteString>)>,
) -> Result<bool, SelfSignedError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(config) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let stale: Vec<(usize, String)> = webhooks(&config)
        .into_iter()
        .enumerate()
        .filter(|(_, (_, current))| current.as_ref() != Some(bundle))
        .map(|(index, (webhook, _))| (index, webhook))
        .collect();
    if stale.is_empty() {
        return Ok(false);
    }
    api.patch(name, &PatchParams::default(), &bundle_patch(&stale, bundle))
        .await?;
    Ok(true)
}

/// A JSON patch that sets `caBundle` on the given webhooks; each `test` on the webhook's name makes
/// the patch fail, instead of writing the wrong entry, if the list changed since it was read.
fn bundle_patch(stale: &[(usize, String)], bundle: &ByteString) -> Patch<json_patch::Patch> {
    let operations: Vec<serde_json::Value> = stale
        .iter()
        .flat_map(|(index, name)| {
            [
                json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": name}),
                json!({"op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": bundle}),
            ]
        })
        .collect();
    Patch::Json(
        serde_json::from_value(serde_json::Value::Array(operations))
            .expect("well-formed JSON patch operations"),
    )
}

/// What the serving certificate is issued for.
#[derive(Clone, Debug)]
pub struct SelfSignedSettings {
    pub namespace: String,
    pub service_name: String,
    /// `--webhook-extra-san`: DNS names or IP addresses.
    pub extra_sans: Vec<String>,
    pub check_interval: Duration,
}

impl SelfSignedSettings {
    /// The Service's DNS names plus the extra DNS names, and the extra IP addresses.
    pub fn subject_names(&self) -> (Vec<String>, Vec<IpAddr>) {
        let service = &self.service_name;
        let namespace = &self.namespace;
        let mut dns = vec![
            service.clone(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ];
        let mut ips = Vec::new();
        for san in &self.extra_sans {
            match san.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(san.clone()),
            }
        }
        (dns, ips)
    }
}

/// Keep the CA, the serving certificate and the webhook `caBundle`s current until `shutdown`.
pub async fn run(
    client: kube::Client,
    settings: SelfSignedSettings,
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let (dns, ips) = settings.subject_names();
    let mut issued_by: Option<String> = None;
    let mut retry = Duration::from_secs(1);
    loop {
        let now = unix_now();
        let result = async {
            let ca = ensure_ca(&secrets, &settings.namespace, now).await?;
            let expiring = store
                .current()
                .is_none_or(|c| c.not_after - now < SERVING_RENEW_BEFORE);
            if expiring || issued_by.as_deref() != Some(ca.cert_pem.as_str()) {
                let (serving, _) = ca.issue(&dns, &ips, now)?;
                metrics.certificate_not_after.set(serving.not_after as f64);
                store.replace(serving);
                issued_by = Some(ca.cert_pem.clone());
                tracing::info!("issued a new webhook serving certificate");
            }
            let patched = sync_ca_bundle(&client, &ca.bundle(now)).await?;
            if patched > 0 {
                tracing::info!(patched, "set caBundle in the webhook configurations");
            }
            Ok::<_, SelfSignedError>(())
        }
        .await;
        let wait = match result {
            Ok(()) => {
                retry = Duration::from_secs(1);
                settings.check_interval
            }
            Err(err) => {
                metrics.certificate_reload_failures.inc();
                tracing::warn!(error = %err, "webhook certificate maintenance failed; retrying");
                retry = (retry * 2).min(settings.check_interval);
                retry
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
