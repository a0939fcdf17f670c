//! Certificate management: the self-managed CA against a mocked API server (tower-test: each step
//! asserts the request and answers as the API server would), and file reloading.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::mock_api::{self, expect, ok, status};
use http::Method;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rustls::client::danger::ServerCertVerifier;
use serde_json::{Value, json};
use telemetry_manager::tls::files::{CertFiles, Reload};
use telemetry_manager::tls::self_signed::{
    self, CA_SECRET, CertificateAuthority, SelfSignedSettings,
};
use telemetry_manager::tls::{self, CertStore};

const NOW: i64 = 1_900_000_000;
const SECRET_PATH: &str = "/api/v1/namespaces/telemetry/secrets";

fn ca_path() -> String {
    format!("{SECRET_PATH}/{CA_SECRET}")
}

#[tokio::test]
async fn first_replica_creates_the_ca() {
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", NOW).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(status(404, "NotFound"));
    let (created, send) = expect(&mut handle, Method::POST, SECRET_PATH).await;
    assert_eq!(created["metadata"]["name"], CA_SECRET);
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "telemetry-manager"
    );
    assert!(created["metadata"].get("resourceVersion").is_none());
    send.send_response(ok(&created));
    let ca = task.await.unwrap().unwrap();
    let stored: Secret = serde_json::from_value(created).unwrap();
    assert_eq!(CertificateAuthority::from_secret(&stored).unwrap(), ca);
    assert!(ca.not_after > NOW + 9 * 365 * 86400);
}

#[tokio::test]
async fn a_replica_that_loses_the_creation_race_uses_the_winners_ca() {
    let winner_secret = stored_ca(NOW).await;
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", NOW).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(status(404, "NotFound"));
    let (_, send) = expect(&mut handle, Method::POST, SECRET_PATH).await;
    send.send_response(status(409, "AlreadyExists"));
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(ok(&winner_secret));
    let ca = task.await.unwrap().unwrap();
    let stored: Secret = serde_json::from_value(winner_secret).unwrap();
    assert_eq!(ca, CertificateAuthority::from_secret(&stored).unwrap());
}

/// A CA Secret as ensure_ca writes it, made by a mocked first start at time `at`.
async fn stored_ca(at: i64) -> Value {
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", at).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(status(404, "NotFound"));
    let (mut created, send) = expect(&mut handle, Method::POST, SECRET_PATH).await;
    send.send_response(ok(&created));
    task.await.unwrap().unwrap();
    created["metadata"]["resourceVersion"] = json!("41");
    created
}

#[tokio::test]
async fn a_valid_ca_is_read_and_nothing_is_written() {
    let stored = stored_ca(NOW).await;
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task =
        tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", NOW + 86400).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(ok(&stored));
    task.await.unwrap().unwrap();
    drop(handle);
}

#[tokio::test]
async fn an_expiring_ca_is_rotated_conditionally_and_keeps_trusting_the_old_one() {
    let stored = stored_ca(NOW).await;
    let nine_and_a_half_years = NOW + 3470 * 86400;
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move {
        self_signed::ensure_ca(&api, "telemetry", nine_and_a_half_years).await
    });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(ok(&stored));
    let (replaced, send) = expect(&mut handle, Method::PUT, &ca_path()).await;
    assert_eq!(
        replaced["metadata"]["resourceVersion"], "41",
        "the replacement is conditional"
    );
    send.send_response(ok(&replaced));
    let rotated = task.await.unwrap().unwrap();
    let old: Secret = serde_json::from_value(stored).unwrap();
    let old = CertificateAuthority::from_secret(&old).unwrap();
    assert_ne!(rotated.cert_pem, old.cert_pem);
    assert_eq!(
        rotated.previous_cert_pem.as_deref(),
        Some(old.cert_pem.as_str())
    );
    let bundle = rotated.bundle(nine_and_a_half_years);
    assert!(bundle.contains(&rotated.cert_pem) && bundle.contains(&old.cert_pem));
}

#[tokio::test]
async fn a_conflicting_rotation_reads_again() {
    let stored = stored_ca(NOW).await;
    let later = NOW + 3470 * 86400;
    let fresh = stored_ca(later).await;
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", later).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(ok(&stored));
    let (_, send) = expect(&mut handle, Method::PUT, &ca_path()).await;
    send.send_response(status(409, "Conflict"));
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(ok(&fresh));
    let ca = task.await.unwrap().unwrap();
    let fresh: Secret = serde_json::from_value(fresh).unwrap();
    assert_eq!(ca, CertificateAuthority::from_secret(&fresh).unwrap());
}

#[tokio::test]
async fn api_errors_are_reported_not_retried_forever() {
    let (client, mut handle) = mock_api::client("telemetry");
    let api: Api<Secret> = Api::namespaced(client, "telemetry");
    let task = tokio::spawn(async move { self_signed::ensure_ca(&api, "telemetry", NOW).await });
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(status(403, "Forbidden"));
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().starts_with("Kubernetes API: "), "{err}");
}

fn validating(bundles: [&[u8]; 2]) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(self_signed::VALIDATING_WEBHOOK_CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(
            [
                "tracepipelines-v1beta1.validation",
                "tracepipelines-v1alpha1.validation",
            ]
            .into_iter()
            .zip(bundles)
            .map(|(name, bundle)| ValidatingWebhook {
                name: name.into(),
                client_config: WebhookClientConfig {
                    ca_bundle: Some(ByteString(bundle.to_vec())),
                    ..Default::default()
                },
                admission_review_versions: vec!["v1".into()],
                side_effects: "None".into(),
                ..Default::default()
            })
            .collect(),
        ),
    }
}

fn mutating(bundle: &[u8]) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(self_signed::MUTATING_WEBHOOK_CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "tracepipelines-v1beta1.mutation".into(),
            client_config: WebhookClientConfig {
                ca_bundle: Some(ByteString(bundle.to_vec())),
                ..Default::default()
            },
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            ..Default::default()
        }]),
    }
}

const VALIDATING_PATH: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/telemetry-validating-webhook.kyma-project.io";
const MUTATING_PATH: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/telemetry-mutating-webhook.kyma-project.io";

#[tokio::test]
async fn ca_bundle_is_repaired_only_where_it_differs() {
    let (client, mut handle) = mock_api::client("telemetry");
    let bundle = "-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n";
    let task = tokio::spawn(async move { self_signed::sync_ca_bundle(&client, bundle).await });
    let (_, send) = expect(&mut handle, Method::GET, VALIDATING_PATH).await;
    send.send_response(ok(&validating([bundle.as_bytes(), b"tampered"])));
    let (patch, send) = expect(&mut handle, Method::PATCH, VALIDATING_PATH).await;
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/webhooks/1/name", "value": "tracepipelines-v1alpha1.validation"},
            {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": encoded}
        ])
    );
    send.send_response(ok(&validating([bundle.as_bytes(), bundle.as_bytes()])));
    let (_, send) = expect(&mut handle, Method::GET, MUTATING_PATH).await;
    send.send_response(ok(&mutating(bundle.as_bytes())));
    assert_eq!(task.await.unwrap().unwrap(), 1);
}

#[tokio::test]
async fn missing_webhook_configurations_are_skipped() {
    let (client, mut handle) = mock_api::client("telemetry");
    let task = tokio::spawn(async move { self_signed::sync_ca_bundle(&client, "bundle").await });
    let (_, send) = expect(&mut handle, Method::GET, VALIDATING_PATH).await;
    send.send_response(status(404, "NotFound"));
    let (_, send) = expect(&mut handle, Method::GET, MUTATING_PATH).await;
    send.send_response(status(404, "NotFound"));
    assert_eq!(task.await.unwrap().unwrap(), 0);
}

#[test]
fn serving_certificates_cover_the_service_and_extra_names() {
    let settings = SelfSignedSettings {
        namespace: "kyma-system".into(),
        service_name: "telemetry-manager-webhook".into(),
        extra_sans: vec!["127.0.0.1".into(), "webhook.local".into()],
        check_interval: Duration::from_secs(60),
    };
    let (dns, ips) = settings.subject_names();
    assert_eq!(
        dns,
        vec![
            "telemetry-manager-webhook",
            "telemetry-manager-webhook.kyma-system",
            "telemetry-manager-webhook.kyma-system.svc",
            "telemetry-manager-webhook.kyma-system.svc.cluster.local",
            "webhook.local"
        ]
    );
    assert_eq!(ips, vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    tls::install_crypto_provider();
    let ca = CertificateAuthority::generate(NOW).unwrap();
    let (serving, chain) = ca.issue(&dns, &ips, NOW).unwrap();
    assert_eq!(serving.not_after, NOW + 7 * 86400);
    let der = rustls_pki_types::CertificateDer::from_pem_slice(chain.as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = parsed
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .len();
    assert_eq!(san, 6);
}

// ---- --cert-mode=files ---------------------------------------------------------------------

/// A serving pair as PEM text (rcgen directly, so the key PEM is available).
fn pem_pair(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

use rustls_pki_types::pem::PemObject;

#[test]
fn files_reload_on_kubernetes_symlink_swap_and_keep_the_old_pair_when_broken() {
    tls::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("tm-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // The layout the kubelet writes for a mounted Secret: files are symlinks through `..data`.
    let first = root.join("..2026_11_24_01");
    std::fs::create_dir(&first).unwrap();
    let (cert_a, key_a) = pem_pair("a.example");
    std::fs::write(first.join("tls.crt"), &cert_a).unwrap();
    std::fs::write(first.join("tls.key"), &key_a).unwrap();
    std::os::unix::fs::symlink("..2026_11_24_01", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", root.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", root.join("tls.key")).unwrap();

    let store = CertStore::new();
    let mut files = CertFiles::new(&root);
    assert_eq!(files.reload(&store), Reload::Loaded);
    let served_a = store.current().unwrap().key.cert[0].clone();
    assert_eq!(files.reload(&store), Reload::Unchanged);

    // Atomic swap: a new timestamped directory, then `..data` is renamed over.
    let second = root.join("..2026_11_24_02");
    std::fs::create_dir(&second).unwrap();
    let (cert_b, key_b) = pem_pair("b.example");
    std::fs::write(second.join("tls.crt"), &cert_b).unwrap();
    std::fs::write(second.join("tls.key"), &key_b).unwrap();
    std::os::unix::fs::symlink("..2026_11_24_02", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    assert_eq!(files.reload(&store), Reload::Loaded);
    let served_b = store.current().unwrap().key.cert[0].clone();
    assert_ne!(served_a, served_b);

    // A broken pair (key of another certificate) is rejected; b stays in service.
    let third = root.join("..2026_11_24_03");
    std::fs::create_dir(&third).unwrap();
    std::fs::write(third.join("tls.crt"), &cert_b).unwrap();
    std::fs::write(third.join("tls.key"), &key_a).unwrap();
    std::os::unix::fs::symlink("..2026_11_24_03", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    assert!(
        matches!(files.reload(&store), Reload::Rejected(reason) if reason.contains("does not match"))
    );
    assert_eq!(store.current().unwrap().key.cert[0], served_b);
    assert_eq!(
        files.reload(&store),
        Reload::Unchanged,
        "a broken pair is reported once"
    );

    // Files gone entirely: rejected, still serving b.
    std::fs::remove_file(root.join("tls.key")).unwrap();
    assert!(matches!(files.reload(&store), Reload::Rejected(_)));
    assert_eq!(store.current().unwrap().key.cert[0], served_b);
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn self_signed_maintenance_loads_a_serving_certificate_and_stops_on_shutdown() {
    let (client, mut handle) = mock_api::client("telemetry");
    let store = CertStore::new();
    let metrics = telemetry_manager::metrics::Metrics::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = SelfSignedSettings {
        namespace: "telemetry".into(),
        service_name: "telemetry-manager-webhook".into(),
        extra_sans: vec!["127.0.0.1".into()],
        check_interval: Duration::from_secs(3600),
    };
    let task = tokio::spawn(self_signed::run(
        client,
        settings,
        store.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let (_, send) = expect(&mut handle, Method::GET, &ca_path()).await;
    send.send_response(status(404, "NotFound"));
    let (created, send) = expect(&mut handle, Method::POST, SECRET_PATH).await;
    send.send_response(ok(&created));
    let (_, send) = expect(&mut handle, Method::GET, VALIDATING_PATH).await;
    send.send_response(ok(&validating([b"stale", b"stale"])));
    let (patch, send) = expect(&mut handle, Method::PATCH, VALIDATING_PATH).await;
    let stored: Secret = serde_json::from_value(created).unwrap();
    let ca = CertificateAuthority::from_secret(&stored).unwrap();
    use base64::Engine;
    assert_eq!(
        patch[1]["value"],
        base64::engine::general_purpose::STANDARD.encode(&ca.cert_pem)
    );
    send.send_response(ok(&validating([
        ca.cert_pem.as_bytes(),
        ca.cert_pem.as_bytes(),
    ])));
    let (_, send) = expect(&mut handle, Method::GET, MUTATING_PATH).await;
    send.send_response(ok(&mutating(ca.cert_pem.as_bytes())));

    // The serving certificate is in the store, issued by the stored CA, and its expiry is exported.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !store.is_loaded() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let serving = store.current().unwrap();
    assert!(metrics.encode().contains(&format!(
        "telemetry_webhook_certificate_expiry_timestamp_seconds {}",
        serving.not_after
    )));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &serving.key.cert[0],
            &[],
            &rustls_pki_types::ServerName::try_from("telemetry-manager-webhook.telemetry.svc")
                .unwrap(),
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .expect("the serving certificate chains to the CA and covers the Service name");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
