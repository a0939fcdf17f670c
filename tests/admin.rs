//! The plain-HTTP endpoints: `/healthz`, `/readyz` (ready once a certificate is loaded) and
//! `/metrics`, whose real output must pass `promtool check metrics`.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use telemetry_manager::admin;
use telemetry_manager::admission::{Admission, server};
use telemetry_manager::metrics::Metrics;
use telemetry_manager::tls::{self, CertStore, self_signed::CertificateAuthority};
use telemetry_manager::validation::Settings;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// GET `path` from a real server on 127.0.0.1 serving `router`.
async fn get(router: axum::Router, path: &str) -> (u16, String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(admin::serve(listener, router, shutdown.clone()));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::get(path)
                .header("host", "127.0.0.1")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    drop(sender);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (status, content_type, body)
}

#[tokio::test]
async fn readiness_follows_the_certificate() {
    tls::install_crypto_provider();
    let store = CertStore::new();
    let ready_store = store.clone();
    let router = admin::health_router(Arc::new(move || ready_store.is_loaded()));
    assert_eq!(get(router.clone(), "/healthz").await.0, 200);
    assert_eq!(get(router.clone(), "/readyz").await.0, 503);
    let now = 1_900_000_000;
    let (serving, _) = CertificateAuthority::generate(now)
        .unwrap()
        .issue(&["localhost".into()], &[], now)
        .unwrap();
    store.replace(serving);
    assert_eq!(get(router.clone(), "/readyz").await.0, 200);
    assert_eq!(get(router, "/other").await.0, 404);
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let metrics = Metrics::new();
    metrics.certificate_not_after.set(1_900_000_000.0);
    let webhook = server::router(
        Arc::new(Admission::new(
            common::FakeCluster::default(),
            Settings::default(),
        )),
        metrics.clone(),
    );
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "operation": "CREATE", "object": {
            "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
            "metadata": {"name": "p"}, "spec": {"output": {"otlp": {"endpoint": {"value": "b:4317"}}}}}}
    });
    for (path, body) in [
        (
            "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline",
            review.to_string(),
        ),
        (
            "/mutate-telemetry-kyma-project-io-v1beta1-tracepipeline",
            review.to_string(),
        ),
        (
            "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline",
            "garbage".to_string(),
        ),
    ] {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        webhook.clone().oneshot(request).await.unwrap();
    }

    let (status, content_type, text) = get(admin::metrics_router(metrics), "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for family in [
        "telemetry_webhook_requests_total{allowed=\"true\",code=\"200\",operation=\"CREATE\",webhook=\"validate\"} 1",
        "telemetry_webhook_requests_total{allowed=\"true\",code=\"200\",operation=\"CREATE\",webhook=\"mutate\"} 1",
        "telemetry_webhook_requests_total{allowed=\"false\",code=\"400\",operation=\"\",webhook=\"validate\"} 1",
        "telemetry_webhook_request_duration_seconds_bucket{webhook=\"validate\",le=\"+Inf\"} 2",
        "telemetry_webhook_certificate_expiry_timestamp_seconds 1900000000",
        "telemetry_build_info{version=",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(family), "missing {family} in\n{text}");
    }

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package `prometheus`; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
