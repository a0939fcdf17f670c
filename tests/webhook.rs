//! The webhook server on a real TLS socket (127.0.0.1, certificates issued at test time), driven
//! with real AdmissionReview v1 bodies; every field of the response is checked.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use common::{FakeCluster, from_secret, pipeline};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use telemetry_manager::admission::{Admission, server};
use telemetry_manager::metrics::Metrics;
use telemetry_manager::tls::self_signed::CertificateAuthority;
use telemetry_manager::tls::{self, CertStore};
use telemetry_manager::validation::{InMemorySecrets, SecretRefPolicy, Settings};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

struct Webhook {
    addr: SocketAddr,
    ca: CertificateAuthority,
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn start_with(cluster: FakeCluster, settings: Settings, limits: server::Limits) -> Webhook {
    tls::install_crypto_provider();
    let ca = CertificateAuthority::generate(now()).unwrap();
    let (serving, _) = ca
        .issue(
            &["localhost".to_string()],
            &["127.0.0.1".parse().unwrap()],
            now(),
        )
        .unwrap();
    let store = CertStore::new();
    store.replace(serving);
    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let router = server::router(Arc::new(Admission::new(cluster, settings)), metrics.clone());
    let task = tokio::spawn(server::serve_https(
        listener,
        tls::server_config(store.clone()),
        router,
        limits,
        shutdown.clone(),
    ));
    Webhook {
        addr,
        ca,
        store,
        metrics,
        shutdown,
        task,
    }
}

async fn start(cluster: FakeCluster) -> Webhook {
    start_with(cluster, Settings::default(), server::Limits::default()).await
}

fn connector(ca_pem: &str) -> TlsConnector {
    common::tls_client(ca_pem, &[], &[])
}

/// A keep-alive HTTP/1.1 connection over TLS, and the certificate the server presented.
async fn connect(webhook: &Webhook) -> (SendRequest<Full<Bytes>>, Vec<u8>) {
    let tcp = TcpStream::connect(webhook.addr).await.unwrap();
    let tls = connector(&webhook.ca.cert_pem)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    (sender, presented)
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    sender.ready().await.unwrap();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

const VALIDATE_V1BETA1: &str = "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline";
const VALIDATE_V1ALPHA1: &str = "/validate-telemetry-kyma-project-io-v1alpha1-tracepipeline";
const MUTATE_V1BETA1: &str = "/mutate-telemetry-kyma-project-io-v1beta1-tracepipeline";
const MUTATE_V1ALPHA1: &str = "/mutate-telemetry-kyma-project-io-v1alpha1-tracepipeline";

/// A real AdmissionReview v1 request body, as the API server sends it.
fn review(operation: &str, object: Option<&Value>, old: Option<&Value>, dry_run: bool) -> Value {
    let version = object
        .or(old)
        .and_then(|o| o["apiVersion"].as_str())
        .and_then(|v| v.rsplit('/').next())
        .unwrap_or("v1beta1")
        .to_string();
    let name = object
        .or(old)
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap_or("")
        .to_string();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "telemetry.kyma-project.io", "version": version, "kind": "TracePipeline"},
            "resource": {"group": "telemetry.kyma-project.io", "version": version, "resource": "tracepipelines"},
            "requestKind": {"group": "telemetry.kyma-project.io", "version": version, "kind": "TracePipeline"},
            "requestResource": {"group": "telemetry.kyma-project.io", "version": version, "resource": "tracepipelines"},
            "name": name,
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if operation == "DELETE" {"DeleteOptions"} else if operation == "UPDATE" {"UpdateOptions"} else {"CreateOptions"}}
        }
    })
}

async fn admit(webhook: &Webhook, path: &str, body: &Value) -> Value {
    let (mut sender, _) = connect(webhook).await;
    let answer = send(
        &mut sender,
        "POST",
        &format!("{path}?timeout=10s"),
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.content_type, "application/json");
    let wire = answer.json();
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(wire["kind"], "AdmissionReview");
    assert_eq!(
        wire["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    wire["response"].clone()
}

fn valid() -> Value {
    pipeline(
        "backend",
        json!({"protocol": "grpc", "endpoint": {"value": "backend.example.com:4317"}}),
    )
}

fn keys(response: &Value) -> Vec<String> {
    let mut keys: Vec<String> = response.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn create_update_delete_and_dry_run_of_a_valid_pipeline_are_allowed() {
    let webhook = start(FakeCluster::default()).await;
    for (operation, object, old, dry_run) in [
        ("CREATE", Some(valid()), None, false),
        ("CREATE", Some(valid()), None, true),
        ("UPDATE", Some(valid()), Some(valid()), false),
        ("DELETE", None, Some(valid()), false),
        ("DELETE", None, Some(valid()), true),
    ] {
        let response = admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review(operation, object.as_ref(), old.as_ref(), dry_run),
        )
        .await;
        assert_eq!(response["allowed"], true, "{operation}");
        assert_eq!(
            keys(&response),
            vec!["allowed", "uid"],
            "{operation}: {response}"
        );
    }
}

#[tokio::test]
async fn an_invalid_pipeline_is_denied_with_422_and_field_causes() {
    let webhook = start(FakeCluster::default()).await;
    let broken = pipeline(
        "broken",
        json!({"protocol": "grpc", "endpoint": {"value": "https://otlp.example.com:4317/v1/traces"}, "path": "/x"}),
    );
    for dry_run in [false, true] {
        let response = admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review("CREATE", Some(&broken), None, dry_run),
        )
        .await;
        assert_eq!(keys(&response), vec!["allowed", "status", "uid"]);
        assert_eq!(response["allowed"], false);
        let status = &response["status"];
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["status"], "Failure");
        assert_eq!(
            status["message"],
            "tracepipelines.telemetry.kyma-project.io \"broken\" is invalid: [spec.output.otlp: Invalid value: \"object\": Path is only available with HTTP protocol, spec.output.otlp.endpoint: Invalid value: \"https://otlp.example.com:4317/v1/traces\": OTLP output endpoint invalid: gRPC endpoints cannot contain paths; remove the path (even a trailing '/'), or use protocol http]"
        );
        assert_eq!(status["details"]["name"], "broken");
        assert_eq!(status["details"]["group"], "telemetry.kyma-project.io");
        assert_eq!(status["details"]["kind"], "TracePipeline");
        assert_eq!(
            status["details"]["causes"],
            json!([
                {"reason": "FieldValueInvalid", "field": "spec.output.otlp", "message": "Invalid value: \"object\": Path is only available with HTTP protocol"},
                {"reason": "FieldValueInvalid", "field": "spec.output.otlp.endpoint", "message": "Invalid value: \"https://otlp.example.com:4317/v1/traces\": OTLP output endpoint invalid: gRPC endpoints cannot contain paths; remove the path (even a trailing '/'), or use protocol http"}
            ])
        );
    }
}

#[tokio::test]
async fn v1alpha1_is_validated_with_its_own_schema_and_warned_about() {
    let webhook = start(FakeCluster::default()).await;
    let mut alpha = valid();
    alpha["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    let response = admit(
        &webhook,
        VALIDATE_V1ALPHA1,
        &review("CREATE", Some(&alpha), None, false),
    )
    .await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!([
            "telemetry.kyma-project.io/v1alpha1 TracePipeline is deprecated; use telemetry.kyma-project.io/v1beta1"
        ])
    );
    alpha["spec"]["output"]["otlp"]["compression"] = json!("gzip");
    let response = admit(
        &webhook,
        VALIDATE_V1ALPHA1,
        &review("CREATE", Some(&alpha), None, false),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["details"]["causes"][0]["field"],
        "spec.output.otlp.compression"
    );
}

#[tokio::test]
async fn secrets_are_checked_on_create_and_on_spec_changes_only() {
    let mut cluster = FakeCluster::default();
    cluster.secrets.insert(
        "ns",
        "present",
        BTreeMap::from([("endpoint".to_string(), b"b:4317".to_vec())]),
    );
    let webhook = start(cluster).await;
    let with_missing = pipeline(
        "p",
        json!({"endpoint": from_secret("ns", "gone", "endpoint")}),
    );
    let with_present = pipeline(
        "p",
        json!({"endpoint": from_secret("ns", "present", "endpoint")}),
    );

    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("CREATE", Some(&with_missing), None, false),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["details"]["causes"][0],
        json!({"reason": "FieldValueNotFound", "field": "spec.output.otlp.endpoint.valueFrom.secretKeyRef",
               "message": "Not found: Secret \"gone\" in namespace \"ns\" does not exist; create it or fix the reference"})
    );
    assert_eq!(
        admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review("CREATE", Some(&with_present), None, false)
        )
        .await["allowed"],
        true
    );

    // Labelling a pipeline whose Secret disappeared still works: the spec did not change.
    let mut labelled = with_missing.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("UPDATE", Some(&labelled), Some(&with_missing), false),
    )
    .await;
    assert_eq!(response["allowed"], true);
    // Changing the spec to the missing Secret is checked.
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("UPDATE", Some(&with_missing), Some(&with_present), false),
    )
    .await;
    assert_eq!(response["allowed"], false);
}

#[tokio::test]
async fn warn_policy_admits_missing_secrets_with_a_warning() {
    let settings = Settings {
        secret_ref_policy: SecretRefPolicy::Warn,
        ..Settings::default()
    };
    let webhook = start_with(FakeCluster::default(), settings, server::Limits::default()).await;
    let object = pipeline(
        "p",
        json!({"endpoint": from_secret("ns", "gone", "endpoint")}),
    );
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("CREATE", Some(&object), None, false),
    )
    .await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!([
            "spec.output.otlp.endpoint.valueFrom.secretKeyRef: Secret \"gone\" in namespace \"ns\" does not exist; create it or fix the reference"
        ])
    );
}

#[tokio::test]
async fn the_pipeline_limit_applies_to_create_only() {
    let cluster = FakeCluster {
        pipelines: (1..=5).map(|i| format!("p{i}")).collect(),
        ..FakeCluster::default()
    };
    let webhook = start(cluster).await;
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("CREATE", Some(&valid()), None, false),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("tracepipelines.telemetry.kyma-project.io \"backend\" is invalid: Forbidden: Maximum pipeline count limit exceeded: 5 TracePipelines exist")
    );
    let mut existing = valid();
    existing["metadata"]["name"] = json!("p1");
    let mut changed = existing.clone();
    changed["spec"]["output"]["otlp"]["endpoint"]["value"] = json!("other:4317");
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("UPDATE", Some(&changed), Some(&existing), false),
    )
    .await;
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn slow_secret_lookups_are_bounded_by_the_request_timeout() {
    let cluster = FakeCluster {
        delay: Some(Duration::from_secs(30)),
        ..FakeCluster::default()
    };
    let webhook = start(cluster).await;
    let object = pipeline("p", json!({"endpoint": from_secret("ns", "s", "endpoint")}));
    let (mut sender, _) = connect(&webhook).await;
    let started = Instant::now();
    let answer = send(
        &mut sender,
        "POST",
        &format!("{VALIDATE_V1BETA1}?timeout=1s"),
        "application/json",
        serde_json::to_vec(&review("CREATE", Some(&object), None, false)).unwrap(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let response = &answer.json()["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 500);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{response}"
    );
}

#[tokio::test]
async fn mutating_webhook_defaults_the_protocol_with_a_base64_patch() {
    let webhook = start(FakeCluster::default()).await;
    let without = pipeline("p", json!({"endpoint": {"value": "b:4317"}}));
    for (path, object) in [
        (MUTATE_V1BETA1, without.clone()),
        (MUTATE_V1ALPHA1, {
            let mut alpha = without.clone();
            alpha["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
            alpha
        }),
    ] {
        for dry_run in [false, true] {
            let response = admit(
                &webhook,
                path,
                &review("CREATE", Some(&object), None, dry_run),
            )
            .await;
            assert_eq!(
                keys(&response),
                vec!["allowed", "patch", "patchType", "uid"]
            );
            assert_eq!(response["allowed"], true);
            assert_eq!(response["patchType"], "JSONPatch");
            let patch = base64::engine::general_purpose::STANDARD
                .decode(response["patch"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                String::from_utf8(patch).unwrap(),
                r#"[{"op":"add","path":"/spec/output/otlp/protocol","value":"grpc"}]"#
            );
        }
    }
    // Idempotent: an object that has a protocol gets no patch, on UPDATE too.
    let response = admit(
        &webhook,
        MUTATE_V1BETA1,
        &review("UPDATE", Some(&valid()), Some(&valid()), false),
    )
    .await;
    assert_eq!(keys(&response), vec!["allowed", "uid"]);
    let response = admit(
        &webhook,
        MUTATE_V1BETA1,
        &review("DELETE", None, Some(&without), false),
    )
    .await;
    assert_eq!(keys(&response), vec!["allowed", "uid"]);
}

#[tokio::test]
async fn bad_requests_get_clear_http_errors() {
    let webhook = start(FakeCluster::default()).await;
    let (mut sender, _) = connect(&webhook).await;
    let malformed = send(
        &mut sender,
        "POST",
        VALIDATE_V1BETA1,
        "application/json",
        b"{\"apiVersion\": ".to_vec(),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed
            .text()
            .starts_with("the request body is not an AdmissionReview: "),
        "{}",
        malformed.text()
    );
    let empty = send(
        &mut sender,
        "POST",
        VALIDATE_V1BETA1,
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(empty.status, 400);
    let pod_review = send(
        &mut sender,
        "POST",
        VALIDATE_V1BETA1,
        "application/json",
        br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (pod_review.status, pod_review.text().as_str()),
        (
            400,
            "unsupported AdmissionReview apiVersion \"v1\"; expected admission.k8s.io/v1\n"
        )
    );
    let text = send(
        &mut sender,
        "POST",
        VALIDATE_V1BETA1,
        "text/plain",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(text.status, 415);
    let get = send(
        &mut sender,
        "GET",
        VALIDATE_V1BETA1,
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(get.status, 405);
    let unknown = send(
        &mut sender,
        "POST",
        "/validate-something-else",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(unknown.status, 404);

    // A review whose object is not a TracePipeline is a denial naming the problem.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}});
    let response = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("CREATE", Some(&pod), None, false),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["details"]["causes"][0]["field"], "kind");
    // An over-large body is refused with 413 and the server keeps serving.
    let (mut sender, _) = connect(&webhook).await;
    let huge = send(
        &mut sender,
        "POST",
        VALIDATE_V1BETA1,
        "application/json",
        vec![b' '; 4 * 1024 * 1024],
    )
    .await;
    assert_eq!(huge.status, 413);
    assert_eq!(
        admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review("CREATE", Some(&valid()), None, false)
        )
        .await["allowed"],
        true
    );
}

#[tokio::test]
async fn ten_thousand_garbage_requests_then_a_good_one() {
    let webhook = start(FakeCluster::default()).await;
    let (mut sender, _) = connect(&webhook).await;
    for i in 0..10_000u32 {
        let garbage = format!("garbage {i} {{[").into_bytes();
        let answer = send(
            &mut sender,
            "POST",
            VALIDATE_V1BETA1,
            "application/json",
            garbage,
        )
        .await;
        assert_eq!(answer.status, 400, "request {i}");
    }
    assert_eq!(
        admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review("CREATE", Some(&valid()), None, false)
        )
        .await["allowed"],
        true
    );
    let metrics = webhook.metrics.encode();
    assert!(metrics.contains(r#"telemetry_webhook_requests_total{allowed="false",code="400",operation="",webhook="validate"} 10000"#), "{metrics}");
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off_and_others_are_served() {
    let limits = server::Limits {
        header_read_timeout: Duration::from_secs(2),
        ..server::Limits::default()
    };
    let webhook = start_with(FakeCluster::default(), Settings::default(), limits).await;
    let tcp = TcpStream::connect(webhook.addr).await.unwrap();
    let mut slow = connector(&webhook.ca.cert_pem)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let started = Instant::now();
    let request = format!(
        "POST {VALIDATE_V1BETA1} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    );
    let mut cut_off = false;
    for byte in request.bytes() {
        // Meanwhile a normal client is served at once.
        let served = tokio::time::timeout(
            Duration::from_secs(1),
            admit(
                &webhook,
                VALIDATE_V1BETA1,
                &review("CREATE", Some(&valid()), None, false),
            ),
        )
        .await;
        assert!(
            served.is_ok(),
            "a well-behaved client waited behind a slow one"
        );
        if slow.write_all(&[byte]).await.is_err() || slow.flush().await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    if !cut_off {
        // The server answers a header timeout by closing; reading shows it.
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncReadExt::read(&mut slow, &mut buffer),
        )
        .await;
        cut_off = matches!(read, Ok(Ok(0)) | Ok(Err(_)))
            || matches!(read, Ok(Ok(n)) if String::from_utf8_lossy(&buffer[..n]).contains("408"));
    }
    assert!(cut_off, "the slow client was not cut off");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn certificate_rotation_drops_no_request_and_new_handshakes_see_the_new_certificate() {
    let webhook = Arc::new(start(FakeCluster::default()).await);
    let body = serde_json::to_vec(&review("CREATE", Some(&valid()), None, false)).unwrap();
    let (_, before) = connect(&webhook).await;

    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut clients = Vec::new();
    for reconnect in [false, true] {
        let webhook = webhook.clone();
        let running = running.clone();
        let body = body.clone();
        clients.push(tokio::spawn(async move {
            let mut sent = 0u32;
            let (mut sender, _) = connect(&webhook).await;
            while running.load(Ordering::Relaxed) {
                if reconnect {
                    sender = connect(&webhook).await.0;
                }
                let answer = send(
                    &mut sender,
                    "POST",
                    VALIDATE_V1BETA1,
                    "application/json",
                    body.clone(),
                )
                .await;
                assert_eq!(answer.status, 200);
                assert_eq!(answer.json()["response"]["allowed"], true);
                sent += 1;
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rotated, _) = webhook
        .ca
        .issue(
            &["localhost".to_string()],
            &["127.0.0.1".parse().unwrap()],
            now(),
        )
        .unwrap();
    let rotated_der = rotated.key.cert[0].to_vec();
    webhook.store.replace(rotated);
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    for client in clients {
        assert!(client.await.unwrap() > 5, "a client made too few requests");
    }
    let (_, after) = connect(&webhook).await;
    assert_ne!(before, after);
    assert_eq!(after, rotated_der);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let cluster = FakeCluster {
        delay: Some(Duration::from_millis(700)),
        ..FakeCluster::default()
    };
    let webhook = start(cluster).await;
    let object = pipeline("p", json!({"endpoint": from_secret("ns", "s", "endpoint")}));
    let (mut sender, _) = connect(&webhook).await;
    let body = serde_json::to_vec(&review("CREATE", Some(&object), None, false)).unwrap();
    let in_flight = tokio::spawn(async move {
        send(
            &mut sender,
            "POST",
            VALIDATE_V1BETA1,
            "application/json",
            body,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    webhook.shutdown.cancel();
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["response"]["allowed"],
        false,
        "the Secret is missing"
    );
    tokio::time::timeout(Duration::from_secs(5), webhook.task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(webhook.addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn http2_is_negotiated_and_served() {
    let webhook = start(FakeCluster::default()).await;
    let tcp = TcpStream::connect(webhook.addr).await.unwrap();
    let tls = common::tls_client(&webhook.ca.cert_pem, &[b"h2"], &[&rustls::version::TLS12])
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let body = serde_json::to_vec(&review("CREATE", Some(&valid()), None, false)).unwrap();
    let request = http::Request::post(format!("https://127.0.0.1{VALIDATE_V1BETA1}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let answer: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
}

/// Every review the one-pass decoder reads gets the answer of the general path (decode, then
/// validate the object text in passes), for valid, invalid, UPDATE, DELETE and object-less
/// reviews.
#[tokio::test]
async fn reading_in_one_pass_answers_like_the_general_path() {
    use telemetry_manager::admission::{Endpoint, review as wire};

    let mut secrets = InMemorySecrets::default();
    secrets.insert(
        "obs",
        "creds",
        [("endpoint".to_string(), b"https://backend".to_vec())].into(),
    );
    let cluster = FakeCluster {
        pipelines: vec!["other".to_string()],
        secrets,
        ..FakeCluster::default()
    };
    let admission = Admission::new(cluster, Settings::default());
    let valid = pipeline("a", json!({"endpoint": {"value": "b:4317"}}));
    let secret_endpoint = pipeline(
        "a",
        json!({"protocol": "http", "endpoint": from_secret("obs", "creds", "endpoint")}),
    );
    let missing = pipeline("a", json!({"endpoint": from_secret("obs", "gone", "x")}));
    let mut alpha = valid.clone();
    alpha["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    let path_with_grpc = pipeline("a", json!({"endpoint": {"value": "b:4317"}, "path": "/x"}));
    let broken = pipeline("a", json!({"endpoint": {"value": ""}, "extra": 1}));
    // (operation, object, old object, read in one pass, allowed)
    let cases = [
        ("CREATE", Some(&valid), None, true, true),
        ("CREATE", Some(&secret_endpoint), None, true, true),
        ("CREATE", Some(&missing), None, true, false),
        ("CREATE", Some(&alpha), None, true, true),
        ("CREATE", Some(&path_with_grpc), None, true, false),
        ("CREATE", Some(&broken), None, false, false),
        ("CREATE", None, None, true, false),
        // Unchanged spec: the missing Secret is not looked up again.
        ("UPDATE", Some(&missing), Some(&missing), true, true),
        ("UPDATE", Some(&missing), Some(&valid), true, false),
        // An old object that breaks the schema counts as a changed spec.
        ("UPDATE", Some(&valid), Some(&broken), true, true),
        ("DELETE", None, Some(&valid), true, true),
        ("DELETE", Some(&valid), None, true, true),
    ];
    let deadline = Duration::from_secs(5);
    for (operation, object, old, one_pass, allowed) in cases {
        let body = serde_json::to_vec(&review(operation, object, old, false)).unwrap();
        let general = wire::decode(&body).unwrap();
        let expected = admission
            .decide(Endpoint::ALL[0], &general.request, deadline)
            .await;
        assert_eq!(expected.allowed, allowed, "{operation} {object:?}");
        let read = wire::decode_read(&body);
        assert_eq!(read.is_some(), one_pass, "{operation} {object:?}");
        if let Some(read) = read {
            assert_eq!(read.review.request.uid, general.request.uid);
            assert_eq!(read.review.request.name, general.request.name);
            assert_eq!(read.review.api_version, "admission.k8s.io/v1");
            let answer = admission.validate_read(&read, deadline).await;
            assert_eq!(answer, expected, "{operation} {object:?}");
        }
    }
}

/// `valid()` with the given transform and filter groups.
fn with_ottl(transform: Value, filter: Value) -> Value {
    let mut object = valid();
    object["spec"]["transform"] = transform;
    object["spec"]["filter"] = filter;
    object
}

#[tokio::test]
async fn a_pipeline_with_valid_ottl_is_admitted() {
    let webhook = start(FakeCluster::default()).await;
    let object = with_ottl(
        json!([
            {"statements": [
                "set(span.attributes[\"deployment.environment\"], \"production\")",
                "replace_pattern(span.attributes[\"http.url\"], \"token=[^&]+\", \"token=***\")",
                "delete_key(resource.attributes, \"k8s.pod.uid\") where resource.attributes[\"k8s.pod.uid\"] != nil"
            ]},
            {"conditions": ["IsMatch(span.name, \"^GET /api/.*\")"],
             "statements": ["set(span.status.code, STATUS_CODE_OK)"]}
        ]),
        json!([
            {"conditions": ["span.attributes[\"http.route\"] == \"/healthz\""]},
            {"conditions": ["resource.attributes[\"service.name\"] == \"noisy\"", "span.kind == SPAN_KIND_INTERNAL"]}
        ]),
    );
    for (operation, old) in [("CREATE", None), ("UPDATE", Some(valid()))] {
        let response = admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review(operation, Some(&object), old.as_ref(), false),
        )
        .await;
        assert_eq!(response["allowed"], true, "{operation}: {response}");
        assert_eq!(keys(&response), vec!["allowed", "uid"]);
    }
}

/// One denial per class of OTTL error: the field path of the first bad item of each group and
/// the reference's wording first.
#[tokio::test]
async fn each_class_of_invalid_ottl_is_denied_with_its_field_path() {
    let webhook = start(FakeCluster::default()).await;
    let transform = |statements: Value, conditions: Value| {
        with_ottl(
            json!([{"statements": statements, "conditions": conditions}]),
            json!([]),
        )
    };
    let filter = |conditions: Value| {
        with_ottl(
            json!([]),
            json!([{"conditions": ["span.name == \"ok\""]}, {"conditions": conditions}]),
        )
    };
    let cases = [
        (
            "syntax",
            transform(
                json!(["set(span.name, \"x\")", "set(span.name \"x\")"]),
                json!([]),
            ),
            "spec.transform[0].statements[1]",
            "invalid TransformSpec: column ",
        ),
        (
            "unknown function",
            transform(json!(["sett(span.name, \"x\")"]), json!([])),
            "spec.transform[0].statements[0]",
            "did you mean \"set\"?",
        ),
        (
            "unknown path",
            transform(json!(["set(span.nme, \"x\")"]), json!([])),
            "spec.transform[0].statements[0]",
            "did you mean \"span.name\"?",
        ),
        (
            "converter as a statement",
            transform(json!(["IsMatch(span.name, \"x\")"]), json!([])),
            "spec.transform[0].statements[0]",
            "\"IsMatch\"",
        ),
        (
            "argument count",
            transform(json!(["set(span.name)"]), json!([])),
            "spec.transform[0].statements[0]",
            "\"set\"",
        ),
        (
            "regular expression",
            transform(
                json!(["set(span.name, \"x\")"]),
                json!(["IsMatch(span.name, \"[\")"]),
            ),
            "spec.transform[0].conditions[0]",
            "\"[\"",
        ),
        (
            "span event filter",
            filter(json!(["spanevent.name == \"exception\""])),
            "spec.filter[1].conditions[0]",
            "spanevent context is not supported in filter conditions; use transform to drop span events",
        ),
        (
            "filter condition",
            filter(json!(["span.name == \"a\"", "span.name =="])),
            "spec.filter[1].conditions[1]",
            "invalid FilterSpec: column ",
        ),
    ];
    for (class, object, field, detail) in cases {
        let response = admit(
            &webhook,
            VALIDATE_V1BETA1,
            &review("CREATE", Some(&object), None, false),
        )
        .await;
        assert_eq!(response["allowed"], false, "{class}: {response}");
        assert_eq!(response["status"]["code"], 422, "{class}");
        let causes = response["status"]["details"]["causes"].as_array().unwrap();
        assert_eq!(causes.len(), 1, "{class}: {causes:?}");
        assert_eq!(causes[0]["field"], field, "{class}");
        assert_eq!(causes[0]["reason"], "FieldValueInvalid", "{class}");
        let message = causes[0]["message"].as_str().unwrap();
        let kind = if field.starts_with("spec.filter") {
            "FilterSpec"
        } else {
            "TransformSpec"
        };
        assert!(
            message.starts_with("Invalid value: \""),
            "{class}: {message}"
        );
        assert!(
            message.contains(&format!(
                "\": OTTL specification is invalid, invalid {kind}: "
            )),
            "{class}: {message}"
        );
        assert!(message.contains(detail), "{class}: {message}");
        assert!(
            response["status"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{field}: {message}")),
            "{class}: {response}"
        );
    }
}

/// A pipeline over the OTTL size limit, in a review just under the 3 MiB body limit: one
/// statement of 2.9 MiB that is a single list (as a syntax tree, hundreds of MiB). The answer is
/// the size denial alone, on the field of the statement that takes the total over the limit.
#[tokio::test]
async fn ottl_over_the_size_limit_is_denied_without_parsing_it() {
    let webhook = start(FakeCluster::default()).await;
    let huge = format!(
        "set(span.attributes[\"n\"], Concat([{}], \"\"))",
        "1,".repeat(1_450_000)
    );
    let object = with_ottl(
        json!([{"statements": ["set(span.name, \"x\")", huge]}]),
        json!([]),
    );
    let body = review("CREATE", Some(&object), None, false);
    assert!(body.to_string().len() > 2_900_000);
    let response = admit(&webhook, VALIDATE_V1BETA1, &body).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 422);
    let causes = response["status"]["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0]["field"], "spec.transform[0].statements[1]");
    assert_eq!(
        causes[0]["message"],
        format!(
            "Invalid value: OTTL specification is invalid, invalid TransformSpec: the pipeline's statements and conditions reach {} bytes with this one, more than the 65536 bytes of OTTL a pipeline may hold; shorten them",
            "set(span.name, \"x\")".len() + huge.len()
        )
    );
}

#[tokio::test]
async fn v1alpha1_ottl_is_checked_the_same_way() {
    let webhook = start(FakeCluster::default()).await;
    let mut object = with_ottl(
        json!([{"statements": ["sett(span.name, \"x\")"]}]),
        json!([]),
    );
    object["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    let alpha = admit(
        &webhook,
        VALIDATE_V1ALPHA1,
        &review("CREATE", Some(&object), None, false),
    )
    .await;
    object["apiVersion"] = json!("telemetry.kyma-project.io/v1beta1");
    let beta = admit(
        &webhook,
        VALIDATE_V1BETA1,
        &review("CREATE", Some(&object), None, false),
    )
    .await;
    assert_eq!(alpha["allowed"], false);
    assert_eq!(alpha["status"]["details"], beta["status"]["details"]);
    assert_eq!(
        alpha["status"]["details"]["causes"][0]["message"],
        "Invalid value: \"sett(span.name, \\\"x\\\")\": OTTL specification is invalid, invalid TransformSpec: column 1: unknown function \"sett\"; did you mean \"set\"?"
    );
}
