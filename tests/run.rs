//! `telemetry-manager run` end to end: the real binary against a stand-in API server on
//! 127.0.0.1 (plain HTTP, through a kubeconfig), answering admission reviews over TLS with a
//! certificate from the CA it stored, ready on /readyz, and stopping cleanly on SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::common;

/// What the stand-in API server has seen.
#[derive(Default)]
struct ApiState {
    ca_secret: Option<Value>,
}

fn not_found() -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    )
}

fn fake_api_server(state: Arc<Mutex<ApiState>>) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/secrets/{name}",
            get(
                |State(state): State<Arc<Mutex<ApiState>>>,
                 Path((_, name)): Path<(String, String)>| async move {
                    match (&state.lock().unwrap().ca_secret, name.as_str()) {
                        (Some(secret), "telemetry-webhook-cert") => {
                            (StatusCode::OK, axum::Json(secret.clone()))
                        }
                        _ => not_found(),
                    }
                },
            ),
        )
        .route(
            "/api/v1/namespaces/{namespace}/secrets",
            axum::routing::post(
                |State(state): State<Arc<Mutex<ApiState>>>, body: Bytes| async move {
                    let mut secret: Value = serde_json::from_slice(&body).unwrap();
                    secret["metadata"]["resourceVersion"] = json!("1");
                    state.lock().unwrap().ca_secret = Some(secret.clone());
                    (StatusCode::CREATED, axum::Json(secret))
                },
            ),
        )
        .route(
            "/apis/admissionregistration.k8s.io/v1/{kind}/{name}",
            get(|| async { not_found() }),
        )
        .route(
            "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines",
            get(|| async {
                axum::Json(
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                  "metadata": {"resourceVersion": "1"}, "items": []}),
                )
            }),
        )
        .fallback(|uri: axum::http::Uri| async move {
            eprintln!("fake API server: no route for {uri}");
            not_found()
        })
        .with_state(state)
}

fn kubeconfig(api: SocketAddr) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tm-run-kubeconfig-{}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    write!(
        file,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: telemetry}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: not-a-real-token}}\n"
    )
    .unwrap();
    path
}

#[tokio::test]
async fn run_serves_webhooks_with_a_self_managed_certificate_and_stops_on_sigterm() {
    telemetry_manager::tls::install_crypto_provider();
    let state = Arc::new(Mutex::new(ApiState::default()));
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    let router = fake_api_server(state.clone());
    tokio::spawn(async move { axum::serve(api, router).await });

    let (webhook_port, metrics_port, health_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let kubeconfig = kubeconfig(api_addr);
    let mut manager = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args([
            "run",
            "--webhook-addr",
            &format!("127.0.0.1:{webhook_port}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--health-addr",
            &format!("127.0.0.1:{health_port}"),
            "--namespace",
            "telemetry",
            "--webhook-extra-san",
            "127.0.0.1",
            "--log-format",
            "text",
            "--shutdown-delay",
            "0s",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("POD_NAMESPACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Ready once the certificate is issued from the CA it stored through the API.
    let health: SocketAddr = format!("127.0.0.1:{health_port}").parse().unwrap();
    let started = Instant::now();
    loop {
        if let Some((200, _)) = common::http_get(health, "/readyz").await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the manager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ca_pem = {
        let secret = state
            .lock()
            .unwrap()
            .ca_secret
            .clone()
            .expect("the CA Secret was created");
        assert_eq!(secret["metadata"]["namespace"], "telemetry");
        use base64::Engine;
        let encoded = secret["data"]["ca.crt"].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    };

    // An AdmissionReview over TLS, trusting only that CA.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", webhook_port))
        .await
        .unwrap();
    let tls = common::tls_client(&ca_pem, &[], &[])
        .connect(
            rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "e2e", "operation": "CREATE", "name": "p", "object": {
            "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline", "metadata": {"name": "p"},
            "spec": {"output": {"otlp": {"protocol": "grpc", "endpoint": {"value": "https://b:4317/x"}}}}}}
    });
    let request = http::Request::post(
        "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline?timeout=10s",
    )
    .header("host", "127.0.0.1")
    .header("content-type", "application/json")
    .body(http_body_util::Full::new(Bytes::from(review.to_string())))
    .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["uid"], "e2e");
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["details"]["causes"][0]["field"], "spec.output.otlp.endpoint",
        "{answer}"
    );

    let metrics = common::http_get(
        format!("127.0.0.1:{metrics_port}").parse().unwrap(),
        "/metrics",
    )
    .await
    .unwrap();
    assert!(metrics.1.contains(r#"telemetry_webhook_requests_total{allowed="false",code="422",operation="CREATE",webhook="validate"} 1"#), "{}", metrics.1);

    // SIGTERM: a clean exit within the grace period.
    let status = common::terminate(&mut manager).await;
    let mut logs = String::new();
    std::io::Read::read_to_string(manager.stdout.as_mut().unwrap(), &mut logs).unwrap();
    std::io::Read::read_to_string(manager.stderr.as_mut().unwrap(), &mut logs).unwrap();
    std::fs::remove_file(&kubeconfig).unwrap();
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(
        !logs.contains("not-a-real-token"),
        "a credential reached the logs"
    );
}
