//! Gateway autoscaling (docs/reference/gateway-enrichment.md#autoscaling) through reconcile
//! passes against the in-memory API server, which keeps field ownership as server-side apply
//! does: the replica count survives the switch to the autoscaler, the autoscaler's changes
//! survive resyncs, and switching back restores the fixed count.

use crate::common;

use std::sync::{Arc, Mutex};

use common::fake_api::{self, FakeApi, Shared};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use telemetry_manager::api::v1beta1::TracePipeline;
use telemetry_manager::gateway::{self, Autoscaling, GatewaySettings};
use telemetry_manager::reconciler::apply::{ApplyMode, FIELD_MANAGER};
use telemetry_manager::reconciler::pass::{self, PassOutcome, PassSettings};

const NS: &str = "kyma-system";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/kyma-system/deployments/telemetry-trace-gateway";
const AUTOSCALER: &str =
    "/apis/autoscaling/v2/namespaces/kyma-system/horizontalpodautoscalers/telemetry-trace-gateway";

fn settings(autoscaling: Option<Autoscaling>) -> PassSettings {
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
            autoscaling,
        },
        max_pipelines: 5,
    }
}

const UP_TO_SIX: Option<Autoscaling> = Some(Autoscaling {
    max_replicas: 6,
    cpu_utilization: 70,
});

fn pipelines() -> Vec<TracePipeline> {
    vec![
        serde_json::from_value(json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
            "metadata": {"name": "backend", "uid": "uid-backend", "generation": 1,
                         "creationTimestamp": "2026-11-24T10:00:00Z"},
            "spec": {"output": {"otlp": {"endpoint": {"value": "backend.example.com:4317"}}}}
        }))
        .unwrap(),
    ]
}

async fn cluster() -> (Shared, kube::Client) {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    let address = fake_api::serve(api.clone()).await;
    let config = kube::Config::new(format!("http://{address}").parse().unwrap());
    (api, kube::Client::try_from(config).unwrap())
}

async fn pass(
    client: &kube::Client,
    autoscaling: Option<Autoscaling>,
    mode: ApplyMode,
) -> PassOutcome {
    pass::reconcile_gateway(
        client,
        &pipelines(),
        &settings(autoscaling),
        mode,
        1_900_000_000,
    )
    .await
    .unwrap()
}

fn replicas(api: &Shared) -> Value {
    api.lock().unwrap().objects[DEPLOYMENT]["spec"]["replicas"].clone()
}

/// The managers that own the Deployment's `spec.replicas`.
fn replica_owners(api: &Shared) -> Vec<String> {
    let state = api.lock().unwrap();
    state.objects[DEPLOYMENT]["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["fieldsV1"].pointer("/f:spec/f:replicas").is_some())
        .map(|entry| entry["manager"].as_str().unwrap().to_string())
        .collect()
}

/// The requests since `from`, without reads.
fn writes_since(api: &Shared, from: usize) -> Vec<String> {
    api.lock().unwrap().requests[from..]
        .iter()
        .filter(|r| !r.starts_with("GET"))
        .map(|r| r.split('?').next().unwrap().to_string())
        .collect()
}

/// Without a handover the test below would see the reset that server-side apply makes when a
/// field's only owner stops applying it.
#[tokio::test]
async fn the_api_server_resets_a_replica_count_that_its_only_owner_drops() {
    let (api, client) = cluster().await;
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client,
        NS,
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "telemetry-trace-gateway"}, "spec": {"replicas": 3, "paused": false}});
    deployments
        .patch("telemetry-trace-gateway", &params, &Patch::Apply(&object))
        .await
        .unwrap();
    assert_eq!(replicas(&api), 3);
    object["spec"].as_object_mut().unwrap().remove("replicas");
    deployments
        .patch("telemetry-trace-gateway", &params, &Patch::Apply(&object))
        .await
        .unwrap();
    assert_eq!(replicas(&api), 1);
}

#[tokio::test]
async fn the_autoscaler_takes_over_the_replica_count_and_gives_it_back() {
    let (api, client) = cluster().await;
    pass(&client, None, ApplyMode::Changed).await;
    assert_eq!(replicas(&api), 2);
    assert_eq!(replica_owners(&api), vec![FIELD_MANAGER]);

    // Autoscaling on: the count stays while the manager lets go of it.
    let outcome = pass(&client, UP_TO_SIX, ApplyMode::Changed).await;
    assert_eq!(
        outcome.applied.written,
        vec![
            "Deployment/telemetry-trace-gateway",
            "HorizontalPodAutoscaler/telemetry-trace-gateway"
        ]
    );
    assert_eq!(replicas(&api), 2, "the running gateway is not scaled down");
    assert_eq!(
        replica_owners(&api),
        vec!["telemetry-manager-handover-to-hpa"]
    );
    let autoscaler = api.lock().unwrap().objects[AUTOSCALER].clone();
    assert_eq!(autoscaler["spec"]["minReplicas"], 2);
    assert_eq!(autoscaler["spec"]["maxReplicas"], 6);
    assert_eq!(
        autoscaler["spec"]["scaleTargetRef"]["name"],
        "telemetry-trace-gateway"
    );
    assert!(
        api.lock().unwrap().objects.contains_key(
            "/apis/policy/v1/namespaces/kyma-system/poddisruptionbudgets/telemetry-trace-gateway"
        ),
        "the PodDisruptionBudget stays"
    );

    // The autoscaler scales out; neither a pass nor a resync takes it back.
    api.lock().unwrap().update_for_test(
        DEPLOYMENT,
        &["spec", "replicas"],
        json!(5),
        "kube-controller-manager",
    );
    assert_eq!(replica_owners(&api), vec!["kube-controller-manager"]);
    let before = api.lock().unwrap().requests.len();
    let outcome = pass(&client, UP_TO_SIX, ApplyMode::Changed).await;
    assert!(outcome.applied.written.is_empty(), "{outcome:?}");
    assert!(writes_since(&api, before).is_empty());
    let outcome = pass(&client, UP_TO_SIX, ApplyMode::All).await;
    assert!(outcome.applied.written.len() >= 10, "{outcome:?}");
    assert_eq!(replicas(&api), 5, "a resync keeps the autoscaler's count");
    assert_eq!(replica_owners(&api), vec!["kube-controller-manager"]);

    // Autoscaling off: the autoscaler goes first, then the fixed count is applied again.
    let before = api.lock().unwrap().requests.len();
    let outcome = pass(&client, None, ApplyMode::Changed).await;
    assert_eq!(
        outcome.applied.deleted,
        vec!["HorizontalPodAutoscaler/telemetry-trace-gateway"]
    );
    assert_eq!(
        writes_since(&api, before),
        vec![
            format!("DELETE {AUTOSCALER}"),
            format!("PATCH {DEPLOYMENT}")
        ]
    );
    assert!(!api.lock().unwrap().objects.contains_key(AUTOSCALER));
    assert_eq!(replicas(&api), 2);
    assert_eq!(replica_owners(&api), vec![FIELD_MANAGER]);
}

/// A gateway created with autoscaling starts at the API server's default of one replica, which
/// the autoscaler raises to its minimum; nothing is handed over because nobody owned a count.
#[tokio::test]
async fn a_gateway_created_with_autoscaling_leaves_the_count_to_the_autoscaler() {
    let (api, client) = cluster().await;
    pass(&client, UP_TO_SIX, ApplyMode::Changed).await;
    assert!(replica_owners(&api).is_empty());
    assert!(
        !api.lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r.contains("handover")),
        "nothing to hand over"
    );
    assert!(api.lock().unwrap().objects.contains_key(AUTOSCALER));
}
