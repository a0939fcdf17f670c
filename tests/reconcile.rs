//! Reconcile passes against a mocked API server (tower-test): each step asserts the method and
//! path, and answers as the API server would; an unexpected extra request fails the test.

use crate::common;

use common::mock_api::{self, ApiHandle, ok};
use http::{Method, Response};
use kube::client::Body;
use serde_json::{Value, json};
use telemetry_manager::api::Reason;
use telemetry_manager::api::v1beta1::TracePipeline;
use telemetry_manager::gateway::{self, Autoscaling, GatewaySettings};
use telemetry_manager::reconciler::apply::ApplyMode;
use telemetry_manager::reconciler::cluster_uid::ClusterUid;
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
            cluster_uid: None,
            pod_labels: vec![],
            autoscaling: None,
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

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/kyma-system/deployments/telemetry-trace-gateway";
const AUTOSCALER: &str =
    "/apis/autoscaling/v2/namespaces/kyma-system/horizontalpodautoscalers/telemetry-trace-gateway";

/// Before the Deployment is applied with a fixed replica count, an autoscaler is looked for
/// (and deleted), so that it cannot change the count afterwards; here there is none.
async fn no_autoscaler_before_the_deployment(handle: &mut ApiHandle, path: &str) {
    if path == DEPLOYMENT {
        let (_, send) = next(handle, Method::GET, AUTOSCALER).await;
        send.send_response(not_found());
    }
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
    run_with_settings(pipelines, mode, settings())
}

fn run_with_settings(
    pipelines: Vec<TracePipeline>,
    mode: ApplyMode,
    settings: PassSettings,
) -> (
    tokio::task::JoinHandle<Result<PassOutcome, kube::Error>>,
    ApiHandle,
) {
    let (client, handle) = mock_api::client(NS);
    let task = tokio::spawn(async move {
        pass::reconcile_gateway(&client, &pipelines, &settings, mode, 1_900_000_000).await
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
        no_autoscaler_before_the_deployment(handle, &path).await;
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
            no_autoscaler_before_the_deployment(&mut handle, path).await;
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
    let mut paths = object_paths();
    paths.insert(6, AUTOSCALER.to_string());
    for path in paths {
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
    assert_eq!(outcome.applied.deleted.len(), 11);
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
        no_autoscaler_before_the_deployment(&mut handle, path).await;
        let (reapplied, send) = next(&mut handle, Method::PATCH, path).await;
        assert_eq!(&reapplied, body, "the same object is applied again");
        send.send_response(ok(&reapplied));
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome.applied.written.len(), 10);
}

fn autoscaled() -> PassSettings {
    let mut settings = settings();
    settings.gateway.autoscaling = Some(Autoscaling {
        max_replicas: 6,
        cpu_utilization: 70,
    });
    settings
}

/// The Deployment as the API server returns it after this manager applied it with a replica
/// count: the manager owns `spec.replicas`.
fn deployment_owning_replicas(applied: &Value) -> Value {
    let mut live = applied.clone();
    live["metadata"]["managedFields"] = json!([{
        "manager": "telemetry-manager", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}
    }]);
    live
}

/// A pass after autoscaling was turned on, stopped after the Deployment's apply.
struct TurningOn {
    /// What the handover manager applied.
    replicas_only: Value,
    /// What the manager applied.
    deployment: Value,
    task: tokio::task::JoinHandle<Result<PassOutcome, kube::Error>>,
    handle: ApiHandle,
    /// The gateway as built with a fixed replica count, by path.
    applied: Vec<(String, Value)>,
}

/// Build the gateway with a fixed count, then run a pass with autoscaling up to the
/// Deployment's apply, answering the handover with `handover`.
async fn turn_autoscaling_on(handover: Response<Body>) -> TurningOn {
    let pipelines = vec![backend_pipeline()];
    let applied = built_gateway(&pipelines).await;
    let (task, mut handle) = run_with_settings(pipelines, ApplyMode::Changed, autoscaled());
    for (path, body) in &applied[..5] {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
    }
    let (path, fixed) = &applied[5];
    assert_eq!(path, DEPLOYMENT);
    assert_eq!(fixed["spec"]["replicas"], 2);
    let (_, send) = next(&mut handle, Method::GET, DEPLOYMENT).await;
    send.send_response(ok(&deployment_owning_replicas(fixed)));
    let (parts, replicas_only, send) =
        mock_api::next_request(&mut handle, Method::PATCH, DEPLOYMENT).await;
    let query = parts.uri.query().unwrap_or_default();
    assert!(
        query.contains("fieldManager=telemetry-manager-handover-to-hpa")
            && !query.contains("force"),
        "{query}"
    );
    send.send_response(handover);
    let (deployment, send) = next(&mut handle, Method::PATCH, DEPLOYMENT).await;
    send.send_response(ok(&deployment));
    TurningOn {
        replicas_only,
        deployment,
        task,
        handle,
        applied,
    }
}

#[tokio::test]
async fn turning_autoscaling_on_hands_the_replica_count_over_before_dropping_it() {
    let TurningOn {
        replicas_only,
        deployment,
        task,
        mut handle,
        applied,
    } = turn_autoscaling_on(ok(&json!({}))).await;
    assert_eq!(
        replicas_only,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "telemetry-trace-gateway"}, "spec": {"replicas": 2}}),
        "the live count, alone, under the handover manager"
    );
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "{}",
        deployment["spec"]
    );
    let (_, send) = next(&mut handle, Method::GET, AUTOSCALER).await;
    send.send_response(not_found());
    let (autoscaler, send) = next(&mut handle, Method::PATCH, AUTOSCALER).await;
    send.send_response(ok(&autoscaler));
    assert_eq!(autoscaler["spec"]["minReplicas"], 2);
    assert_eq!(autoscaler["spec"]["maxReplicas"], 6);
    for (path, body) in &applied[6..] {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(
        outcome.applied.written,
        vec![
            "Deployment/telemetry-trace-gateway",
            "HorizontalPodAutoscaler/telemetry-trace-gateway"
        ]
    );
    assert!(handle.next_request().await.is_none());
}

/// A conflict on the handover means the autoscaler already owns the count: nothing to hand over.
#[tokio::test]
async fn a_conflict_on_the_handover_does_not_fail_the_pass() {
    let TurningOn {
        deployment,
        task,
        mut handle,
        applied,
        ..
    } = turn_autoscaling_on(mock_api::status(409, "Conflict")).await;
    assert!(deployment["spec"].get("replicas").is_none());
    let (_, send) = next(&mut handle, Method::GET, AUTOSCALER).await;
    send.send_response(not_found());
    let (autoscaler, send) = next(&mut handle, Method::PATCH, AUTOSCALER).await;
    send.send_response(ok(&autoscaler));
    for (path, body) in &applied[6..] {
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
    }
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn turning_autoscaling_off_deletes_the_autoscaler_before_the_count_is_applied() {
    let pipelines = vec![backend_pipeline()];
    let (task, mut handle) = run_with_settings(pipelines.clone(), ApplyMode::Changed, autoscaled());
    let mut autoscaled_objects = Vec::new();
    for path in object_paths() {
        let (_, send) = next(&mut handle, Method::GET, &path).await;
        send.send_response(not_found());
        let (body, send) = next(&mut handle, Method::PATCH, &path).await;
        send.send_response(ok(&body));
        autoscaled_objects.push((path.clone(), body));
        if path == DEPLOYMENT {
            let (_, send) = next(&mut handle, Method::GET, AUTOSCALER).await;
            send.send_response(not_found());
            let (body, send) = next(&mut handle, Method::PATCH, AUTOSCALER).await;
            send.send_response(ok(&body));
            autoscaled_objects.push((AUTOSCALER.to_string(), body));
        }
    }
    task.await.unwrap().unwrap();

    let (task, mut handle) = run_with_settings(pipelines, ApplyMode::Changed, settings());
    for (path, body) in &autoscaled_objects {
        if path == AUTOSCALER {
            continue;
        }
        let (_, send) = next(&mut handle, Method::GET, path).await;
        send.send_response(ok(body));
        if path == DEPLOYMENT {
            let (_, send) = next(&mut handle, Method::GET, AUTOSCALER).await;
            send.send_response(ok(&autoscaled_objects[6].1));
            let (_, send) = next(&mut handle, Method::DELETE, AUTOSCALER).await;
            send.send_response(ok(
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
            ));
            let (deployment, send) = next(&mut handle, Method::PATCH, DEPLOYMENT).await;
            send.send_response(ok(&deployment));
            assert_eq!(deployment["spec"]["replicas"], 2);
        }
    }
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(
        outcome.applied.written,
        vec!["Deployment/telemetry-trace-gateway"]
    );
    assert_eq!(
        outcome.applied.deleted,
        vec!["HorizontalPodAutoscaler/telemetry-trace-gateway"]
    );
    assert!(handle.next_request().await.is_none());
}

/// Both answers and the state after them.
type TwoResolutions = (Option<String>, Option<String>, ClusterUid);

/// Resolve the cluster UID twice, as two passes would.
fn resolve_twice() -> (tokio::task::JoinHandle<TwoResolutions>, ApiHandle) {
    let (client, handle) = mock_api::client(NS);
    let task = tokio::spawn(async move {
        let mut uid = ClusterUid::default();
        let first = uid.resolve(&client).await;
        let second = uid.resolve(&client).await;
        (first, second, uid)
    });
    (task, handle)
}

const KUBE_SYSTEM: &str = "/api/v1/namespaces/kube-system";

#[tokio::test]
async fn the_cluster_uid_is_read_once() {
    let (task, mut handle) = resolve_twice();
    let (_, send) = next(&mut handle, Method::GET, KUBE_SYSTEM).await;
    send.send_response(ok(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "kube-system", "uid": "5f0c8a2e-3b9d-4c61-9e0a-7d2b1c4e8f35"}})));
    let (first, second, state) = task.await.unwrap();
    let uid = Some("5f0c8a2e-3b9d-4c61-9e0a-7d2b1c4e8f35".to_string());
    assert_eq!((first, second), (uid.clone(), uid));
    assert!(matches!(state, ClusterUid::Known(_)));
    assert!(
        handle.next_request().await.is_none(),
        "the second pass does not ask again"
    );
}

#[tokio::test]
async fn without_access_to_kube_system_the_cluster_uid_is_left_out_and_not_asked_again() {
    for (code, reason) in [(403, "Forbidden"), (404, "NotFound")] {
        let (task, mut handle) = resolve_twice();
        let (_, send) = next(&mut handle, Method::GET, KUBE_SYSTEM).await;
        send.send_response(mock_api::status(code, reason));
        let (first, second, state) = task.await.unwrap();
        assert_eq!(
            (first, second, state),
            (None, None, ClusterUid::Unavailable)
        );
        assert!(handle.next_request().await.is_none(), "{code}: asked again");
    }
}

#[tokio::test]
async fn a_passing_api_error_leaves_the_cluster_uid_out_until_the_next_pass_reads_it() {
    let (task, mut handle) = resolve_twice();
    let (_, send) = next(&mut handle, Method::GET, KUBE_SYSTEM).await;
    send.send_response(mock_api::status(500, "InternalError"));
    let (_, send) = next(&mut handle, Method::GET, KUBE_SYSTEM).await;
    send.send_response(ok(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "kube-system", "uid": "u-1"}})));
    let (first, second, _) = task.await.unwrap();
    assert_eq!((first, second), (None, Some("u-1".to_string())));
}

#[tokio::test]
async fn a_stored_pipeline_with_invalid_ottl_is_left_out_and_the_others_keep_flowing() {
    let mut good = pipeline("good", json!({"value": "good.example.com:4317"}));
    good.spec.transform = vec![
        serde_json::from_value(json!({"statements": ["set(span.attributes[\"team\"], \"a\")"]}))
            .unwrap(),
    ];
    let mut bad = pipeline("bad", json!({"value": "bad.example.com:4317"}));
    bad.spec.filter = vec![
        serde_json::from_value(
            json!({"conditions": ["span.name == \"ok\"", "IsMatch(span.name, \"[\")"]}),
        )
        .unwrap(),
    ];
    let (task, mut handle) = run(vec![bad, good]);
    let applied = first_pass(&mut handle).await;
    let outcome = task.await.unwrap().unwrap();

    let bad = &outcome.configuration["bad"];
    assert_eq!(bad.status, "False");
    assert_eq!(bad.reason, Reason::OTTLSpecInvalid);
    assert!(
        bad.message.starts_with(
            "spec.filter[0].conditions[1]: Invalid value: \"IsMatch(span.name, \\\"[\\\")\": OTTL specification is invalid, invalid FilterSpec: column "
        ),
        "{}",
        bad.message
    );
    assert_eq!(
        outcome.configuration["good"].reason,
        Reason::GatewayConfigured
    );

    let config_map = &applied
        .iter()
        .find(|(path, _)| path.ends_with("/configmaps/telemetry-trace-gateway"))
        .unwrap()
        .1;
    let relay = config_map["data"]["relay.conf"].as_str().unwrap();
    assert!(relay.contains("traces/good:"), "{relay}");
    assert!(relay.contains("transform/user-defined-good:"), "{relay}");
    assert!(!relay.contains("bad"), "{relay}");
}
