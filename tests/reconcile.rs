//! Reconcile passes against a mocked API server (tower-test): each step asserts the method and
//! path, and answers as the API server would; an unexpected extra request fails the test.

mod common;

use common::mock_api::{self, ApiHandle, ok};
use http::{Method, Response};
use kube::client::Body;
use serde_json::{Value, json};
use telemetry_manager::api::Reason;
use telemetry_manager::api::v1beta1::TracePipeline;
use telemetry_manager::gateway::{self, GatewaySettings};
use telemetry_manager::reconciler::apply::ApplyMode;
use telemetry_manager::reconciler::pass::{self, PassOutcome, PassSettings};

const NS: &str = "kyma-system";

fn settings() -> PassSettings {
    PassSettings {
        gateway: GatewaySettings {
            namespace: NS.into(),
            manager_namespace: NS.into(),
            collector_image: gateway::DEFAULT_COLLECTOR_IMAGE.into(),
            replicas: 2,
            cluster_name: None,
            priority_class_name: None,
            istio: false,
        },
        max_pipelines: 5,
    }
}

fn pipeline(name: &str, endpoint: Value) -> TracePipeline {
    serde_json::from_value(json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "TracePipeline",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1,
                     "creationTimestamp": "2026-11-24T10:00:00Z"},
        "spec": {"output": {"otlp": {"protocol": "grpc", "endpoint": endpoint}}}
    }))
    .unwrap()
}

/// The gateway objects' paths, in apply order.
fn object_paths() -> Vec<String> {
    let core = format!("/api/v1/namespaces/{NS}");
    vec![
        format!("{core}/serviceaccounts/telemetry-trace-gateway"),
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/telemetry-trace-gateway".into(),
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/telemetry-trace-gateway".into(),
        format!("{core}/secrets/telemetry-trace-gateway"),
        format!("{core}/configmaps/telemetry-trace-gateway"),
        format!("/apis/apps/v1/namespaces/{NS}/deployments/telemetry-trace-gateway"),
        format!("{core}/services/telemetry-otlp-traces"),
        format!("{core}/services/telemetry-trace-gateway-metrics"),
        format!(
            "/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/telemetry-trace-gateway"
        ),
        format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/telemetry-trace-gateway"),
    ]
}

async fn next(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (parts, body, send) = mock_api::next_request(handle, method.clone(), path).await;
    if method == Method::PATCH {
        let query = parts.uri.query().unwrap_or_default();
        assert!(
            query.contains("fieldManager=telemetry-manager") && query.contains("force=true"),
            "{query}"
        );
        assert_eq!(
            parts.headers["content-type"],
            "application/apply-patch+yaml"
        );
    }
    (body, send)
}

fn not_found() -> Response<Body> {
    mock_api::status(404, "NotFound")
}

fn run(
    pipelines: Vec<TracePipeline>,
) -> (
    tokio::task::JoinHandle<Result<PassOutcome, kube::Error>>,
    ApiHandle,
) {
    run_with(pipelines, ApplyMode::Changed)
}

fn run_with(
    pipelines: Vec<TracePipeline>,
    mode: ApplyMode,
) -> (
    tokio::task::JoinHandle<Result<PassOutcome, kube::Error>>,
    ApiHandle,
) {
    let (client, handle) = mock_api::client(NS);
    let task = tokio::spawn(async move {
        pass::reconcile_gateway(&client, &pipelines, &settings(), mode, 1_900_000_000).await
    });
    (task, handle)
}

/// A pass over a world without a gateway: every object is read, then applied. Returns what was
/// applied, by path.
async fn first_pass(handle: &mut ApiHandle) -> Vec<(String, Value)> {
    let mut applied = Vec::new();
    for path in object_paths() {
        let (_, send) = next(handle, Method::GET, &path).await;
        send.send_response(not_found());
        let (body, send) = next(handle, Method::PATCH, &path).await;
        send.send_response(ok(&body));
        applied.push((path, body));
    }
    applied
}

/// One pipeline with an inline endpoint.
fn backend_pipeline() -> TracePipeline {
    pipeline("backend", json!({"value": "backend.example.com:4317"}))
}

/// Build the gateway for `pipelines` from nothing; returns what was applied, by path.
async fn built_gateway(pipelines: &[TracePipeline]) -> Vec<(String, Value)> {
    let (task, mut handle) = run(pipelines.to_vec());
    let applied = first_pass(&mut handle).await;
    task.await.unwrap().unwrap();
    applied
}

#[tokio::test]
async fn the_first_pipeline_creates_the_gateway() {
    let (task, mut handle) = run(vec![backend_pipeline()]);
    let applied = first_pass(&mut handle).await;
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.applied.written.len(), 10);
    assert_eq!(
        outcome.configuration["backend"].reason,
        Reason::GatewayConfigured
    );
    let (_, deployment) = &applied[5];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["uid"],
        "uid-backend"
    );
    assert!(
        deployment["metadata"]["annotations"]["telemetry.kyma-project.io/desired-hash"].is_string()
    );
}

#[tokio::test]
async fn an_unchanged_world_gets_no_writes() {
    let pipelines = vec![backend_pipeline()];
    let applied = built_gateway(&pipelines).await;

    let (task, mut handle) = run(pipelines);
    for (path, body) in &applied {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
    }
    let outcome = task.await.unwrap().unwrap();
    assert!(
        outcome.applied.written.is_empty() && outcome.applied.deleted.is_empty(),
        "{outcome:?}"
    );
    assert!(
        handle.next_request().await.is_none(),
        "no request after the reads"
    );
}

fn secret(value: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend", "namespace": "obs"},
           "data": {"endpoint": base64::engine::general_purpose::STANDARD.encode(value)}})
}

#[tokio::test]
async fn a_rotated_secret_rewrites_only_the_env_secret_and_the_deployment() {
    let pipelines = vec![pipeline(
        "backend",
        json!({"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "obs", "key": "endpoint"}}}),
    )];
    let (task, mut handle) = run(pipelines.clone());
    let (_, send) = next(
        &mut handle,
        Method::GET,
        "/api/v1/namespaces/obs/secrets/backend",
    )
    .await;
    send.send_response(ok(&secret("one.example.com:4317")));
    let applied = first_pass(&mut handle).await;
    task.await.unwrap().unwrap();

    let (task, mut handle) = run(pipelines);
    let (_, send) = next(
        &mut handle,
        Method::GET,
        "/api/v1/namespaces/obs/secrets/backend",
    )
    .await;
    send.send_response(ok(&secret("two.example.com:4317")));
    let mut rewritten = Vec::new();
    for (path, body) in &applied {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
        if path.ends_with("/secrets/telemetry-trace-gateway") || path.contains("/deployments/") {
            let (body, send) = next(&mut handle, Method::PATCH, path).await;
            send.send_response(ok(&body));
            rewritten.push(body["kind"].as_str().unwrap().to_string());
        }
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(rewritten, vec!["Secret", "Deployment"]);
    assert_eq!(
        outcome.applied.written,
        vec![
            "Secret/telemetry-trace-gateway",
            "Deployment/telemetry-trace-gateway"
        ]
    );
}

#[tokio::test]
async fn the_last_pipeline_becoming_invalid_deletes_the_gateway() {
    let (task, mut handle) = run(vec![pipeline(
        "backend",
        json!({"value": "backend.example.com"}),
    )]);
    for path in object_paths() {
        let (_, send) = next(&mut handle, Method::GET, &path).await;
        send.send_response(ok(
            &json!({"apiVersion": "v1", "kind": "Object", "metadata": {"name": "x"}}),
        ));
        let (_, send) = next(&mut handle, Method::DELETE, &path).await;
        send.send_response(ok(
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ));
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(
        outcome.configuration["backend"].reason,
        Reason::EndpointInvalid
    );
    assert_eq!(outcome.applied.deleted.len(), 10);
}

#[tokio::test]
async fn an_api_error_keeps_the_gateway_and_reports_validation_failed() {
    let (task, mut handle) = run(vec![pipeline(
        "backend",
        json!({"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "obs", "key": "endpoint"}}}),
    )]);
    let (_, send) = next(
        &mut handle,
        Method::GET,
        "/api/v1/namespaces/obs/secrets/backend",
    )
    .await;
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500, "message": "etcd timeout"});
    send.send_response(
        Response::builder()
            .status(500)
            .body(Body::from(serde_json::to_vec(&status).unwrap()))
            .unwrap(),
    );
    let outcome = task.await.unwrap().unwrap();
    assert!(outcome.lookup_failed);
    assert_eq!(
        outcome.configuration["backend"].reason,
        Reason::ValidationFailed
    );
    assert!(
        outcome.configuration["backend"]
            .message
            .contains("etcd timeout"),
        "{}",
        outcome.configuration["backend"].message
    );
    assert!(outcome.applied.written.is_empty() && outcome.applied.deleted.is_empty());
    assert!(
        handle.next_request().await.is_none(),
        "the gateway is left alone"
    );
}

#[tokio::test]
async fn the_sixth_pipeline_waits_for_a_slot() {
    let pipelines: Vec<TracePipeline> = (1..=6)
        .map(|i| {
            let mut p = pipeline(
                &format!("p{i}"),
                json!({"value": format!("b{i}.example.com:4317")}),
            );
            p.metadata.creation_timestamp =
                Some(serde_json::from_value(json!(format!("2026-11-24T10:0{i}:00Z"))).unwrap());
            p
        })
        .collect();
    let (task, mut handle) = run(pipelines);
    first_pass(&mut handle).await;
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(
        outcome.configuration["p6"].reason,
        Reason::MaxPipelinesExceeded
    );
    assert!(
        (1..=5)
            .all(|i| outcome.configuration[&format!("p{i}")].reason == Reason::GatewayConfigured)
    );
}

#[tokio::test]
async fn a_resync_reapplies_everything_to_revert_edits_by_others() {
    let pipelines = vec![backend_pipeline()];
    let applied = built_gateway(&pipelines).await;

    let (task, mut handle) = run_with(pipelines, ApplyMode::All);
    for (path, body) in &applied {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
        let (reapplied, send) = next(&mut handle, Method::PATCH, path).await;
        assert_eq!(&reapplied, body, "the same object is applied again");
        send.send_response(ok(&reapplied));
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.applied.written.len(), 10);
}
