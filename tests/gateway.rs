//! The gateway's desired state (docs/reference/gateway.md): golden files of `render` for the
//! scenarios of the reconciler issue, and the rules that goldens cannot show at a glance.

use crate::common;

use std::collections::BTreeMap;

use common::{ca_and_client, unix};
use proptest::prelude::*;
use serde_json::Value;
use telemetry_manager::api::{FilterSpec, TransformSpec};
use telemetry_manager::cli::input;
use telemetry_manager::cli::render::render_documents;
use telemetry_manager::gateway::config::{
    SERVICE_NAME_LABELS, cluster_identity_statements, service_name_statements,
};
use telemetry_manager::gateway::{
    self, Autoscaling, GatewaySettings, PipelineValues, ReconcilablePipeline,
};

fn settings() -> GatewaySettings {
    GatewaySettings {
        namespace: "kyma-system".into(),
        manager_namespace: "kyma-system".into(),
        collector_image: gateway::DEFAULT_COLLECTOR_IMAGE.into(),
        replicas: 2,
        cluster_name: None,
        priority_class_name: None,
        istio: false,
        cluster_uid: None,
        pod_labels: vec![],
        autoscaling: None,
    }
}

fn render(manifests: &str, settings: &GatewaySettings, show_secrets: bool) -> (u8, String, String) {
    let documents = input::parse("test", manifests.as_bytes()).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let code = runtime
        .block_on(render_documents(
            &documents,
            settings,
            5,
            show_secrets,
            unix(2030, 6, 1),
            &mut out,
            &mut err,
        ))
        .unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// Compare with `tests/golden/<name>.yaml`; `UPDATE_GOLDEN=1` rewrites it. The config checksum
/// is masked where certificates made at test time feed it.
fn golden(name: &str, rendered: &str, mask_checksum: bool) {
    let text = if mask_checksum {
        rendered
            .lines()
            .map(|l| match l.split_once("checksum/config: ") {
                Some((indent, _)) => format!("{indent}checksum/config: <sha256>"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    } else {
        rendered.to_string()
    };
    golden_file(&format!("tests/golden/{name}.yaml"), &text);
}

/// The collector config of a rendering as `tests/golden/<name>.relay.conf`, the file the
/// gateway reads (for `otelcol validate` with the env Secret's variables set).
fn golden_relay_conf(name: &str, rendered: &str) {
    golden_file(
        &format!("tests/golden/{name}.relay.conf"),
        &config(rendered),
    );
}

fn golden_file(path: &str, text: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, text).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == text,
        "{path} differs from the rendered gateway (UPDATE_GOLDEN=1 cargo test rewrites it):\n{text}"
    );
}

fn pipeline(name: &str, otlp: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: {name}\n  uid: 00000000-0000-0000-0000-{:012}\nspec:\n  output:\n    otlp:\n{}\n---\n",
        name.len(),
        otlp.lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn rendered(manifests: &str, settings: &GatewaySettings) -> String {
    let (code, out, err) = render(manifests, settings, false);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    out
}

#[test]
fn golden_one_grpc_pipeline() {
    let out = rendered(
        &pipeline("backend", "endpoint:\n  value: backend.example.com:4317"),
        &settings(),
    );
    golden("grpc", &out, false);
    golden_relay_conf("grpc", &out);
}

#[test]
fn golden_http_with_path() {
    let out = rendered(
        &pipeline(
            "backend",
            "protocol: http\npath: /otlp/v1/traces\nendpoint:\n  value: https://otlp.example.com/",
        ),
        &settings(),
    );
    golden("http-path", &out, false);
    let (_, shown, _) = render(
        &pipeline(
            "backend",
            "protocol: http\npath: /otlp/v1/traces\nendpoint:\n  value: https://otlp.example.com/",
        ),
        &settings(),
        true,
    );
    assert_eq!(
        secret_data(&shown)["OTLP_ENDPOINT_BACKEND"],
        "https://otlp.example.com/otlp/v1/traces"
    );
    assert!(config(&shown).contains("traces_endpoint: ${env:OTLP_ENDPOINT_BACKEND}"));
}

#[test]
fn golden_basic_auth_and_headers_with_prefix() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: obs}\nstringData: {user: u, password: p, token: t}\n---\n";
    let otlp = "endpoint:\n  value: https://otlp.example.com:4317\nauthentication:\n  basic:\n    user: {valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: user}}}\n    password: {valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: password}}}\nheaders:\n- {name: X-Tenant, value: \"42\"}\n- {name: Authorization, prefix: Bearer, valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: token}}}";
    let manifests = format!("{secret}{}", pipeline("backend", otlp));
    golden("basic-headers", &rendered(&manifests, &settings()), false);
    // The real values, as the env Secret carries them.
    let (_, shown, _) = render(&manifests, &settings(), true);
    let secret = secret_data(&shown);
    assert_eq!(secret["BASIC_AUTH_HEADER_BACKEND"], "Basic dTpw");
    assert_eq!(secret["HEADER_BACKEND_AUTHORIZATION"], "Bearer t");
    assert_eq!(secret["HEADER_BACKEND_X_TENANT"], "42");
}

#[test]
fn golden_mtls_from_secrets() {
    let (ca, client) = ca_and_client((2040, 1, 1));
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: tls, namespace: obs}}\nstringData:\n  ca.crt: |\n{}\n  tls.crt: |\n{}\n  tls.key: |\n{}\n---\n",
        indent(&ca.cert),
        indent(&client.cert),
        indent(&client.key)
    );
    let otlp = "endpoint:\n  value: backend.example.com:4317\ntls:\n  ca: {valueFrom: {secretKeyRef: {name: tls, namespace: obs, key: ca.crt}}}\n  cert: {valueFrom: {secretKeyRef: {name: tls, namespace: obs, key: tls.crt}}}\n  key: {valueFrom: {secretKeyRef: {name: tls, namespace: obs, key: tls.key}}}";
    let manifests = format!("{secret}{}", pipeline("backend", otlp));
    let out = rendered(&manifests, &settings());
    golden("mtls", &out, true);
    let (_, shown, _) = render(&manifests, &settings(), true);
    assert_eq!(secret_data(&shown)["OTLP_TLS_KEY_PEM_BACKEND"], client.key);
    assert!(
        !config(&shown).contains("PRIVATE KEY"),
        "key material in the ConfigMap"
    );
}

#[test]
fn golden_compression() {
    let out = rendered(
        &pipeline(
            "backend",
            "compression: snappy\nendpoint:\n  value: backend.example.com:4317",
        ),
        &settings(),
    );
    golden("compression", &out, false);
}

#[test]
fn golden_five_pipelines_share_the_queue() {
    let manifests: String = (1..=5)
        .map(|i| {
            pipeline(
                &format!("backend-{i}"),
                &format!("endpoint:\n  value: backend-{i}.example.com:4317"),
            )
        })
        .collect();
    let out = rendered(&manifests, &settings());
    golden("five-pipelines", &out, false);
    assert_eq!(config(&out).matches("queue_size: 51").count(), 5);
}

/// A kube-system namespace UID as the API server reports it.
const CLUSTER_UID: &str = "5f0c8a2e-3b9d-4c61-9e0a-7d2b1c4e8f35";

fn one_backend() -> String {
    pipeline("backend", "endpoint:\n  value: backend.example.com:4317")
}

fn with_cluster_identity(settings: GatewaySettings) -> GatewaySettings {
    GatewaySettings {
        cluster_name: Some("prod-eu".into()),
        cluster_uid: Some(CLUSTER_UID.into()),
        ..settings
    }
}

fn with_pod_labels(settings: GatewaySettings) -> GatewaySettings {
    GatewaySettings {
        pod_labels: vec![
            "team".parse().unwrap(),
            "app.kubernetes.io/*".parse().unwrap(),
        ],
        ..settings
    }
}

fn with_autoscaling(settings: GatewaySettings) -> GatewaySettings {
    GatewaySettings {
        autoscaling: Some(Autoscaling {
            max_replicas: 6,
            cpu_utilization: 70,
        }),
        ..settings
    }
}

#[test]
fn golden_cluster_name_and_uid() {
    let out = rendered(&one_backend(), &with_cluster_identity(settings()));
    golden("cluster-identity", &out, false);
    golden_relay_conf("cluster-identity", &out);
    let relay: Value = serde_saphyr::from_str(&config(&out)).unwrap();
    assert_eq!(
        relay["processors"]["transform/insert-cluster-identity"]["trace_statements"][0]["statements"],
        serde_json::json!(cluster_identity_statements(
            Some("prod-eu"),
            Some(CLUSTER_UID)
        ))
    );
    assert_eq!(
        cluster_identity_statements(None, Some(CLUSTER_UID)),
        vec![format!(
            r#"set(resource.attributes["k8s.cluster.uid"], "{CLUSTER_UID}") where resource.attributes["k8s.cluster.uid"] == nil"#
        )]
    );
}

#[test]
fn golden_pod_labels_by_key_and_prefix() {
    let out = rendered(&one_backend(), &with_pod_labels(settings()));
    golden("pod-labels", &out, false);
    golden_relay_conf("pod-labels", &out);
    let relay: Value = serde_saphyr::from_str(&config(&out)).unwrap();
    let labels = relay["processors"]["k8s_attributes"]["extract"]["labels"]
        .as_array()
        .unwrap();
    assert!(labels.contains(
        &serde_json::json!({"from": "pod", "key": "team", "tag_name": "k8s.pod.label.team"})
    ));
    // `$$` is the collector's escape of `$`: the processor sees the group reference `$1`.
    assert!(labels.contains(&serde_json::json!({
        "from": "pod",
        "key_regex": r"(app\.kubernetes\.io/.*)",
        "tag_name": "k8s.pod.label.$$1"
    })));
}

#[test]
fn golden_autoscaling() {
    let out = rendered(&one_backend(), &with_autoscaling(settings()));
    golden("autoscaling", &out, false);
    golden_relay_conf("autoscaling", &out);
}

#[test]
fn golden_all_enrichment_together() {
    let settings = with_autoscaling(with_pod_labels(with_cluster_identity(settings())));
    let out = rendered(&one_backend(), &settings);
    golden("all-enrichment", &out, false);
    golden_relay_conf("all-enrichment", &out);
}

/// The shared processors run in this order in every pipeline, before `batch`.
#[test]
fn every_pipeline_enriches_in_order() {
    let two = format!(
        "{}{}",
        one_backend(),
        pipeline("other", "endpoint:\n  value: other.example.com:4317")
    );
    let out = rendered(&two, &with_cluster_identity(settings()));
    let relay: Value = serde_saphyr::from_str(&config(&out)).unwrap();
    for name in ["traces/backend", "traces/other"] {
        assert_eq!(
            relay["service"]["pipelines"][name]["processors"],
            serde_json::json!([
                "memory_limiter",
                "k8s_attributes",
                "filter/drop-noisy-spans",
                "transform/insert-cluster-identity",
                "transform/resolve-service-name",
                "batch"
            ])
        );
    }
    // Without a name or UID there is no identity to insert.
    let out = rendered(&one_backend(), &settings());
    assert!(!config(&out).contains("insert-cluster-identity"));
}

/// The statements in relay.conf are the resolution's statements once the collector has turned
/// `$$` back into `$`, in one group whose context it infers.
#[test]
fn relay_conf_carries_the_service_name_resolution_and_its_temporary_labels() {
    let out = rendered(&one_backend(), &settings());
    let relay: Value = serde_saphyr::from_str(&config(&out)).unwrap();
    let transform = &relay["processors"]["transform/resolve-service-name"];
    assert_eq!(transform["error_mode"], "ignore");
    let groups = transform["trace_statements"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert!(
        groups[0].get("context").is_none(),
        "the context is inferred"
    );
    let statements: Vec<String> = groups[0]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().replace("$$", "$"))
        .collect();
    assert_eq!(statements, service_name_statements());
    let labels = relay["processors"]["k8s_attributes"]["extract"]["labels"]
        .as_array()
        .unwrap();
    for (label, temporary) in SERVICE_NAME_LABELS {
        assert!(
            labels
                .contains(&serde_json::json!({"from": "pod", "key": label, "tag_name": temporary}))
        );
        assert!(
            statements.last().unwrap().contains(temporary)
                || statements[statements.len() - 2].contains(temporary),
            "{temporary} is deleted again"
        );
    }
}

/// A cluster name is text an operator types: OTTL escapes keep it one string literal, and `$`
/// is doubled so that the collector does not expand it.
#[test]
fn a_cluster_name_cannot_break_out_of_its_string() {
    let settings = GatewaySettings {
        cluster_name: Some(r#"a"b\c $HOME ${env:X}"#.into()),
        ..settings()
    };
    let relay: Value =
        serde_saphyr::from_str(&config(&rendered(&one_backend(), &settings))).unwrap();
    let statement = relay["processors"]["transform/insert-cluster-identity"]["trace_statements"][0]
        ["statements"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        statement,
        r#"set(resource.attributes["k8s.cluster.name"], "a\"b\\c $$HOME $${env:X}") where resource.attributes["k8s.cluster.name"] == nil"#
    );
}

/// Two pipelines with their own OTTL and one without: `orders` transforms (one group with
/// conditions, one without) and filters, `payments` only filters, with two groups.
fn pipelines_with_own_ottl() -> String {
    let orders = "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: orders\n  uid: 00000000-0000-0000-0000-000000000006\nspec:\n  output:\n    otlp:\n      endpoint:\n        value: orders.example.com:4317\n  transform:\n  - conditions:\n    - span.kind == SPAN_KIND_SERVER\n    - resource.attributes[\"k8s.namespace.name\"] == \"kyma-system\"\n    statements:\n    - set(span.attributes[\"env\"], \"prod\")\n    - replace_pattern(span.name, \"/users/[0-9]+\", \"/users/{id}\")\n  - statements:\n    - set(span.status.message, \"timeout\") where span.status.code == STATUS_CODE_ERROR\n  filter:\n  - conditions:\n    - span.name == \"GET /healthz\"\n---\n";
    let payments = "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: payments\n  uid: 00000000-0000-0000-0000-000000000008\nspec:\n  output:\n    otlp:\n      endpoint:\n        value: payments.example.com:4317\n  filter:\n  - conditions:\n    - IsMatch(span.attributes[\"http.route\"], \".*/metrics\")\n    - resource.attributes[\"service.name\"] == \"noisy\"\n  - conditions:\n    - span.attributes[\"http.status_code\"] < 400 and span.kind == SPAN_KIND_CLIENT\n---\n";
    format!("{orders}{payments}{}", one_backend())
}

#[test]
fn golden_pipelines_with_their_own_ottl() {
    let out = rendered(&pipelines_with_own_ottl(), &settings());
    golden("own-ottl", &out, false);
    golden_relay_conf("own-ottl", &out);
    let relay: Value = serde_saphyr::from_str(&config(&out)).unwrap();
    let shared = [
        "memory_limiter",
        "k8s_attributes",
        "filter/drop-noisy-spans",
        "transform/resolve-service-name",
    ];
    let processors = |pipeline: &str| relay["service"]["pipelines"][pipeline]["processors"].clone();
    let with = |own: &[&str]| {
        serde_json::json!(
            shared
                .iter()
                .chain(own)
                .chain(&["batch"])
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(
        processors("traces/orders"),
        with(&[
            "transform/user-defined-orders",
            "filter/user-defined-orders"
        ])
    );
    assert_eq!(
        processors("traces/payments"),
        with(&["filter/user-defined-payments"])
    );
    assert_eq!(processors("traces/backend"), with(&[]));
    assert_eq!(
        relay["processors"]["transform/user-defined-orders"],
        serde_json::json!({
            "error_mode": "ignore",
            "trace_statements": [
                {
                    "conditions": [
                        "span.kind == SPAN_KIND_SERVER",
                        r#"resource.attributes["k8s.namespace.name"] == "kyma-system""#
                    ],
                    "statements": [
                        r#"set(span.attributes["env"], "prod")"#,
                        r#"replace_pattern(span.name, "/users/[0-9]+", "/users/{id}")"#
                    ]
                },
                {"statements": [r#"set(span.status.message, "timeout") where span.status.code == STATUS_CODE_ERROR"#]}
            ]
        })
    );
    assert_eq!(
        relay["processors"]["filter/user-defined-payments"],
        serde_json::json!({
            "error_mode": "ignore",
            "trace_conditions": [
                {"conditions": [
                    r#"IsMatch(span.attributes["http.route"], ".*/metrics")"#,
                    r#"resource.attributes["service.name"] == "noisy""#
                ]},
                {"conditions": [r#"span.attributes["http.status_code"] < 400 and span.kind == SPAN_KIND_CLIENT"#]}
            ]
        })
    );
}

#[test]
fn golden_istio() {
    let settings = GatewaySettings {
        istio: true,
        ..settings()
    };
    let out = rendered(
        &pipeline("backend", "endpoint:\n  value: backend.example.com:4317"),
        &settings,
    );
    golden("istio", &out, false);
}

fn documents(rendered: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(rendered)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn secret_data(rendered: &str) -> BTreeMap<String, String> {
    use base64::Engine;
    let secret = documents(rendered)
        .into_iter()
        .find(|d| d["kind"] == "Secret")
        .unwrap();
    secret["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn config(rendered: &str) -> String {
    let config_map = documents(rendered)
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap")
        .unwrap();
    config_map["data"]["relay.conf"]
        .as_str()
        .unwrap()
        .to_string()
}

fn reconcilable(name: &str, endpoint: &str) -> ReconcilablePipeline {
    let spec: telemetry_manager::api::v1beta1::TracePipelineSpec = serde_json::from_value(
        serde_json::json!({"output": {"otlp": {"endpoint": {"value": endpoint}}}}),
    )
    .unwrap();
    let values = PipelineValues::resolve(&spec, &Default::default()).unwrap();
    ReconcilablePipeline {
        name: name.into(),
        uid: Some(format!("uid-{name}")),
        spec,
        values,
    }
}

#[test]
fn secret_values_never_reach_the_config_map() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: obs}\nstringData: {endpoint: 'https://very-secret-host:4317', user: secret-user, password: secret-password}\n---\n";
    let otlp = "endpoint: {valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: endpoint}}}\nauthentication:\n  basic:\n    user: {valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: user}}}\n    password: {valueFrom: {secretKeyRef: {name: creds, namespace: obs, key: password}}}";
    let (_, out, _) = render(
        &format!("{secret}{}", pipeline("p", otlp)),
        &settings(),
        true,
    );
    let relay = config(&out);
    for value in ["very-secret-host", "secret-user", "secret-password"] {
        assert!(!relay.contains(value), "{value} in relay.conf");
    }
    // Redacted rendering shows none of them anywhere.
    let (_, redacted, _) = render(
        &format!("{secret}{}", pipeline("p", otlp)),
        &settings(),
        false,
    );
    for value in [
        "very-secret-host",
        "secret-user",
        "secret-password",
        "c2VjcmV0",
    ] {
        assert!(
            !redacted.contains(value),
            "{value} in the redacted rendering"
        );
    }
}

#[test]
fn a_rotated_secret_changes_only_the_env_secret_and_the_checksum() {
    let before = gateway::desired(&[reconcilable("a", "https://one:4317")], &settings());
    let after = gateway::desired(&[reconcilable("a", "https://two:4317")], &settings());
    assert_ne!(before.env_secret, after.env_secret);
    assert_eq!(before.config_map, after.config_map);
    let checksum = |o: &gateway::GatewayObjects| {
        o.deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()["checksum/config"]
            .clone()
    };
    assert_ne!(checksum(&before), checksum(&after));
    let mut deployment = after.deployment.clone();
    deployment
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap()
        .annotations = before
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .clone();
    assert_eq!(
        deployment, before.deployment,
        "nothing else in the Deployment changes"
    );
    assert_eq!(before.otlp_service, after.otlp_service);
    assert_eq!(before.network_policy, after.network_policy);
}

#[test]
fn the_same_pipelines_always_give_the_same_objects() {
    let a = gateway::desired(
        &[
            reconcilable("a", "https://one:4317"),
            reconcilable("b", "https://two:4317"),
        ],
        &settings(),
    );
    let b = gateway::desired(
        &[
            reconcilable("b", "https://two:4317"),
            reconcilable("a", "https://one:4317"),
        ],
        &settings(),
    );
    assert_eq!(a, b, "input order does not matter");
}

#[test]
fn resources_and_optional_objects_follow_the_pipeline_count_and_settings() {
    let three: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| reconcilable(n, "https://x:4317"))
        .collect();
    let objects = gateway::desired(&three, &settings());
    let container = &objects
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let resources = container.resources.as_ref().unwrap();
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "400m");
    assert_eq!(resources.requests.as_ref().unwrap()["memory"].0, "32Mi");
    assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "5000Mi");
    assert!(!resources.limits.as_ref().unwrap().contains_key("cpu"));
    assert!(objects.pod_disruption_budget.is_some());
    assert!(objects.peer_authentication.is_none());
    assert_eq!(
        objects
            .env_secret
            .metadata
            .owner_references
            .as_ref()
            .unwrap()
            .len(),
        3
    );
    let single = gateway::desired(
        &three[..1],
        &GatewaySettings {
            replicas: 1,
            ..settings()
        },
    );
    assert!(single.pod_disruption_budget.is_none());
}

#[test]
fn pipelines_that_cannot_be_reconciled_are_left_out_with_the_reason() {
    let manifests = format!(
        "{}{}",
        pipeline("good", "endpoint:\n  value: backend.example.com:4317"),
        pipeline("bad", "endpoint:\n  value: backend.example.com")
    );
    let (code, out, err) = render(&manifests, &settings(), false);
    assert_eq!(code, 0);
    assert!(config(&out).contains("otlp_grpc/good") && !config(&out).contains("otlp_grpc/bad"));
    assert!(
        err.contains(r#""bad" is invalid: spec.output.otlp.endpoint"#),
        "{err}"
    );
    let (code, out, err) = render(
        &pipeline("bad", "endpoint:\n  value: x"),
        &settings(),
        false,
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.ends_with("no TracePipeline can be reconciled: the manager would delete the gateway\n"),
        "{err}"
    );
}

#[test]
fn a_deleted_secret_removes_only_its_pipeline() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: kept, namespace: obs}\nstringData: {endpoint: 'kept.example.com:4317'}\n---\n";
    let manifests = format!(
        "{secret}{}{}",
        pipeline(
            "kept",
            "endpoint: {valueFrom: {secretKeyRef: {name: kept, namespace: obs, key: endpoint}}}"
        ),
        pipeline(
            "orphaned",
            "endpoint: {valueFrom: {secretKeyRef: {name: deleted, namespace: obs, key: endpoint}}}"
        ),
    );
    let (code, out, err) = render(&manifests, &settings(), false);
    assert_eq!(code, 0);
    let relay = config(&out);
    assert!(
        relay.contains("traces/kept") && !relay.contains("orphaned"),
        "{relay}"
    );
    assert!(err.contains(r#""orphaned" is invalid: spec.output.otlp.endpoint.valueFrom.secretKeyRef: Not found: Secret "deleted" in namespace "obs" does not exist"#), "{err}");
}

/// Every component type relay.conf uses is a canonical name of the 0.151.0 release, as the
/// fixture collector's `otelcol components` lists them (oauth2client is a contrib extension
/// that this trace-only build leaves out), and every pipeline references only defined IDs.
#[test]
fn relay_conf_uses_canonical_0_151_components_and_defined_ids() {
    let listed: Value = serde_saphyr::from_str(
        &std::fs::read_to_string("tests/fixtures/otelcol-span-metrics/components.txt").unwrap(),
    )
    .unwrap();
    assert_eq!(listed["buildinfo"]["version"], "0.151.0");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: idp, namespace: obs}\nstringData: {id: i, secret: s}\n---\n";
    let oauth2 = "protocol: http\nendpoint:\n  value: https://otlp.example.com\nauthentication:\n  oauth2:\n    tokenURL: {value: 'https://idp.example.com/token'}\n    clientID: {valueFrom: {secretKeyRef: {name: idp, namespace: obs, key: id}}}\n    clientSecret: {valueFrom: {secretKeyRef: {name: idp, namespace: obs, key: secret}}}\n    scopes: [traces]";
    let manifests = format!(
        "{secret}{}{}",
        pipeline("grpc", "endpoint:\n  value: b:4317"),
        pipeline("oauth", oauth2)
    );
    let settings = GatewaySettings {
        cluster_name: Some("c".into()),
        ..settings()
    };
    let config: Value = serde_saphyr::from_str(&config(&rendered(&manifests, &settings))).unwrap();
    for (section, listed_section) in [
        ("receivers", "receivers"),
        ("processors", "processors"),
        ("exporters", "exporters"),
        ("extensions", "extensions"),
    ] {
        let known: Vec<&str> = listed[listed_section]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        for id in config[section].as_object().unwrap().keys() {
            let kind = id.split('/').next().unwrap();
            if kind == "oauth2client" {
                continue;
            }
            assert!(
                known.contains(&kind),
                "{section}: {kind} is not a 0.151 component ({known:?})"
            );
        }
    }
    let defined = |section: &str| {
        config[section]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    for (name, pipeline) in config["service"]["pipelines"].as_object().unwrap() {
        for (key, section) in [
            ("receivers", "receivers"),
            ("processors", "processors"),
            ("exporters", "exporters"),
        ] {
            for id in pipeline[key].as_array().unwrap() {
                assert!(
                    defined(section).contains(&id.as_str().unwrap().to_string()),
                    "{name} references undefined {id}"
                );
            }
        }
    }
    for id in config["service"]["extensions"].as_array().unwrap() {
        assert!(
            defined("extensions").contains(&id.as_str().unwrap().to_string()),
            "undefined extension {id}"
        );
    }
    assert_eq!(
        config["exporters"]["otlp_http/oauth"]["auth"]["authenticator"],
        "oauth2client/oauth"
    );
    assert_eq!(
        config["extensions"]["oauth2client/oauth"]["client_secret"],
        "${env:OAUTH2_CLIENT_SECRET_OAUTH}"
    );
}

#[test]
fn pipelines_inside_a_list_keep_their_own_uids() {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
         "metadata": {"name": "a", "uid": "uid-a"}, "spec": {"output": {"otlp": {"endpoint": {"value": "a:4317"}}}}},
        {"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
         "metadata": {"name": "b", "uid": "uid-b"}, "spec": {"output": {"otlp": {"endpoint": {"value": "b:4317"}}}}}
    ]});
    let out = rendered(&serde_saphyr::to_string(&list).unwrap(), &settings());
    let config_map = documents(&out)
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap")
        .unwrap();
    let uids: Vec<&str> = config_map["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, vec!["uid-a", "uid-b"]);
}

fn deployment_replicas(objects: &gateway::GatewayObjects) -> Option<i32> {
    objects.deployment.spec.as_ref().unwrap().replicas
}

#[test]
fn autoscaling_leaves_the_replica_count_to_the_autoscaler_and_keeps_the_budget() {
    let one = [reconcilable("a", "https://x:4317")];
    let fixed = gateway::desired(&one, &settings());
    assert_eq!(deployment_replicas(&fixed), Some(2));
    assert!(fixed.autoscaler.is_none());

    let scaled = gateway::desired(&one, &with_autoscaling(settings()));
    assert_eq!(deployment_replicas(&scaled), None);
    let spec = scaled.autoscaler.as_ref().unwrap().spec.clone().unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!(spec.scale_target_ref.name, gateway::NAME);
    assert!(scaled.pod_disruption_budget.is_some());
    assert_eq!(
        scaled.deployment.spec.as_ref().unwrap().template,
        fixed.deployment.spec.as_ref().unwrap().template,
        "only the replica count differs"
    );

    // The budget follows the most replicas the gateway may run.
    let from_one = |max_replicas| {
        gateway::desired(
            &one,
            &GatewaySettings {
                replicas: 1,
                autoscaling: Some(Autoscaling {
                    max_replicas,
                    cpu_utilization: 70,
                }),
                ..settings()
            },
        )
    };
    assert!(from_one(3).pod_disruption_budget.is_some());
    assert!(from_one(1).pod_disruption_budget.is_none());
    let values: Vec<Value> = scaled.to_values();
    let kinds: Vec<&str> = values.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[5..7],
        ["Deployment", "HorizontalPodAutoscaler"],
        "the autoscaler is applied right after what it scales"
    );
}

fn mebibytes(quantity: &str) -> i64 {
    quantity.strip_suffix("Mi").unwrap().parse().unwrap()
}

/// The autoscaler computes CPU utilisation against the pods' CPU request and needs their
/// memory use below the limit; its memory target must trigger before the memory limiter refuses
/// spans (at 75 % - 15 % = 60 % of the limit).
#[test]
fn the_autoscaler_has_requests_and_limits_to_work_with() {
    for count in 1..=5 {
        let pipelines: Vec<_> = (0..count)
            .map(|i| reconcilable(&format!("p{i}"), "https://x:4317"))
            .collect();
        let objects = gateway::desired(&pipelines, &with_autoscaling(settings()));
        let container = &objects
            .deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        let resources = container.resources.as_ref().unwrap();
        let requests = resources.requests.as_ref().unwrap();
        let limits = resources.limits.as_ref().unwrap();
        assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
        let limit = mebibytes(&limits["memory"].0);
        let metrics = objects
            .autoscaler
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .metrics
            .clone()
            .unwrap();
        for metric in &metrics {
            let resource = metric.resource.as_ref().unwrap();
            match resource.name.as_str() {
                "cpu" => {
                    assert_eq!(resource.target.type_, "Utilization");
                    assert_eq!(resource.target.average_utilization, Some(70));
                }
                "memory" => {
                    assert_eq!(resource.target.type_, "AverageValue");
                    let target = mebibytes(&resource.target.average_value.as_ref().unwrap().0);
                    assert!(
                        target * 100 < limit * 60,
                        "{count} pipelines: {target}Mi is not below the memory limiter's soft limit of {limit}Mi"
                    );
                    assert!(target >= mebibytes(&requests["memory"].0));
                }
                other => panic!("unexpected metric {other}"),
            }
        }
        assert_eq!(metrics.len(), 2);
    }
}

fn manager(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn render_takes_the_enrichment_and_autoscaling_flags() {
    let output = manager(&[
        "render",
        "-f",
        "examples/valid-grpc.yaml",
        "--cluster-name",
        "prod-eu",
        "--cluster-uid",
        CLUSTER_UID,
        "--extract-pod-label",
        "team",
        "--extract-pod-label",
        "app.kubernetes.io/*",
        "--gateway-autoscaling-max",
        "5",
        "--gateway-autoscaling-cpu",
        "60",
    ]);
    let out = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let relay = config(&out);
    assert!(relay.contains(CLUSTER_UID) && relay.contains("k8s.pod.label.team"));
    let autoscaler = documents(&out)
        .into_iter()
        .find(|d| d["kind"] == "HorizontalPodAutoscaler")
        .unwrap();
    assert_eq!(autoscaler["spec"]["maxReplicas"], 5);
    assert_eq!(
        autoscaler["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
}

/// The example of a pipeline with its own OTTL renders into its own processors, with the
/// example's strings.
#[test]
fn render_applies_the_example_with_ottl() {
    let path = "examples/valid-with-ottl.yaml";
    let example: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec: telemetry_manager::api::v1beta1::TracePipelineSpec =
        serde_json::from_value(example["spec"].clone()).unwrap();
    assert!(!spec.transform.is_empty() && !spec.filter.is_empty());
    let output = manager(&["render", "-f", path]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let relay: Value =
        serde_saphyr::from_str(&config(&String::from_utf8(output.stdout).unwrap())).unwrap();
    let name = example["metadata"]["name"].as_str().unwrap();
    let pipeline = with_own_ottl(name, spec.transform, spec.filter);
    assert_eq!(own_ottl_in(&relay, name), expected_own_ottl(&pipeline));
    let processors =
        strings_of(&relay["service"]["pipelines"][format!("traces/{name}")]["processors"]);
    assert_eq!(
        processors[processors.len() - 3..],
        [
            format!("transform/user-defined-{name}"),
            format!("filter/user-defined-{name}"),
            "batch".to_string()
        ]
    );
}

#[test]
fn render_rejects_bad_enrichment_and_autoscaling_flags() {
    for (args, message) in [
        (
            &["--extract-pod-label", "team name"][..],
            r#""team name" is not a pod label key or KEY_PREFIX*"#,
        ),
        (
            &["--extract-pod-label", "a*b"][..],
            "`*` may only end a prefix",
        ),
        (
            &["--gateway-autoscaling-max", "1"][..],
            "--gateway-autoscaling-max 1 is below --gateway-replicas 2",
        ),
        (
            &["--gateway-autoscaling-max", "3", "--gateway-replicas", "0"][..],
            "--gateway-autoscaling-max needs --gateway-replicas of at least 1",
        ),
        (&["--gateway-autoscaling-max", "0"][..], "0 is not in 1.."),
        (&["--gateway-autoscaling-cpu", "0"][..], "0 is not in 1.."),
    ] {
        let mut all = vec!["render", "-f", "examples/valid-grpc.yaml"];
        all.extend_from_slice(args);
        let output = manager(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

fn with_own_ottl(
    name: &str,
    transform: Vec<TransformSpec>,
    filter: Vec<FilterSpec>,
) -> ReconcilablePipeline {
    let mut pipeline = reconcilable(name, &format!("https://{name}.example.com:4317"));
    pipeline.spec.transform = transform;
    pipeline.spec.filter = filter;
    pipeline
}

/// relay.conf as the collector reads it: from the ConfigMap as the API server stores it, and
/// from the ConfigMap as `render` prints it, which must be the same text.
fn relay_conf_of(objects: &gateway::GatewayObjects) -> Value {
    let stored = objects.config_map.data.as_ref().unwrap()["relay.conf"].clone();
    let config_map = objects
        .to_values()
        .into_iter()
        .find(|o| o["kind"] == "ConfigMap")
        .unwrap();
    let printed: Value =
        serde_saphyr::from_str(&serde_saphyr::to_string(&config_map).unwrap()).unwrap();
    assert_eq!(
        printed["data"]["relay.conf"].as_str(),
        Some(stored.as_str()),
        "the printed ConfigMap reads back as the stored one"
    );
    serde_saphyr::from_str(&stored).unwrap()
}

/// A string of relay.conf as the collector hands it to a processor: `$$` is one `$`. A lone `$`
/// could start a `${…}` expansion, so the manager never leaves one in a pipeline's OTTL.
fn as_the_collector_expands(text: &str) -> Result<String, String> {
    let mut expanded = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '$' && chars.next() != Some('$') {
            return Err(format!("a lone `$` in {text:?}"));
        }
        expanded.push(c);
    }
    Ok(expanded)
}

fn strings_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|s| as_the_collector_expands(s.as_str().unwrap()).unwrap())
        .collect()
}

/// What the processors of one pipeline hand to the collector's OTTL parser: the transform
/// groups (statements, conditions) and the filter groups (conditions), or `None` for a
/// processor the pipeline does not have.
type OwnOttl = (
    Option<Vec<(Vec<String>, Vec<String>)>>,
    Option<Vec<Vec<String>>>,
);

fn own_ottl_in(relay: &Value, name: &str) -> OwnOttl {
    let processors = &relay["processors"];
    let transform = processors
        .get(format!("transform/user-defined-{name}"))
        .map(|transform| {
            assert_eq!(transform["error_mode"], "ignore");
            transform["trace_statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|group| {
                    assert!(group.get("context").is_none(), "the context is inferred");
                    let conditions = group.get("conditions").map(strings_of);
                    assert_ne!(conditions, Some(vec![]), "conditions only when given");
                    (
                        strings_of(&group["statements"]),
                        conditions.unwrap_or_default(),
                    )
                })
                .collect()
        });
    let filter = processors
        .get(format!("filter/user-defined-{name}"))
        .map(|filter| {
            assert_eq!(filter["error_mode"], "ignore");
            filter["trace_conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|group| {
                    assert!(group.get("context").is_none(), "the context is inferred");
                    strings_of(&group["conditions"])
                })
                .collect()
        });
    (transform, filter)
}

/// What a pipeline's spec asks for: the groups that do something, each processor only when
/// there is one.
fn expected_own_ottl(pipeline: &ReconcilablePipeline) -> OwnOttl {
    let transform: Vec<_> = pipeline
        .spec
        .transform
        .iter()
        .filter(|g| !g.statements.is_empty())
        .map(|g| (g.statements.clone(), g.conditions.clone()))
        .collect();
    let filter: Vec<_> = pipeline
        .spec
        .filter
        .iter()
        .filter(|g| !g.conditions.is_empty())
        .map(|g| g.conditions.clone())
        .collect();
    (
        (!transform.is_empty()).then_some(transform),
        (!filter.is_empty()).then_some(filter),
    )
}

/// Strings that YAML gives a meaning of their own: quotes, escapes, comments, mapping and
/// sequence indicators, anchors, tags, documents, plain scalars that read as other types,
/// significant white space, line breaks, characters YAML cannot print unescaped, and the
/// collector's own `$` expansion.
const NASTY: &[&str] = &[
    r#"set(span.attributes["quote"], "it's \"quoted\"")"#,
    r#"IsMatch(span.name, "\\d+")"#,
    r#""\\d+""#,
    r"\",
    r"\\",
    r"C:\path\n",
    "set(span.name, \"a\")\nwhere true",
    "line\n\nafter an empty line\n",
    "\n\nleading line breaks",
    "trailing space \nbefore a line break",
    "carriage\r\nreturn\r",
    r##"span.name == "#not a comment""##,
    "span.name == \"x\" # a comment?",
    "#",
    r#"span.attributes["k"] == "a: b""#,
    "key: value",
    "key:",
    "- item",
    "-",
    "---",
    "...",
    "* alias",
    "&anchor value",
    "!tag value",
    "!!str",
    "? key",
    "| literal",
    "> folded",
    "%YAML 1.2",
    "@reserved",
    "`reserved",
    "{flow: map}",
    "[flow, sequence]",
    "'single'",
    "\"double\"",
    ",",
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "  leading and trailing spaces  ",
    "\tleading tab",
    "~",
    "null",
    "Null",
    "true",
    "False",
    "yes",
    "no",
    "on",
    "off",
    "0",
    "-1",
    "1e3",
    "0x1F",
    "0o17",
    ".inf",
    "-.Inf",
    ".nan",
    "2026-12-02",
    "12:30:00",
    "größe 😀 名前 שָׁלוֹם",
    "zero\u{200b}width\u{200d}joiner",
    "\u{feff}byte order mark",
    "next\u{85}line",
    "line\u{2028}separator\u{2029}paragraph",
    "nul\u{0}bell\u{7}escape\u{1b}delete\u{7f}",
    "c1\u{80}\u{9f}",
    "non-character\u{fffe}\u{ffff}",
    "${env:OTLP_ENDPOINT_OTHER}",
    "${file:/var/run/secrets/kubernetes.io/serviceaccount/token}",
    "$${env:ALREADY_ESCAPED}",
    "$$",
    "$",
    r#"replace_pattern(span.name, "^/users/([0-9]+)$", "/users/$1")"#,
];

/// Every statement and condition reaches the collector's OTTL parser byte for byte, whatever
/// YAML or the collector's expansion would make of it.
#[test]
fn own_ottl_survives_yaml_and_the_collectors_expansion() {
    let long = format!("{} end ", "word  two  spaces ".repeat(12));
    let mut strings: Vec<String> = NASTY.iter().map(|s| s.to_string()).collect();
    strings.push(long);
    strings.push("x".repeat(300));
    let pipeline = with_own_ottl(
        "nasty",
        strings
            .iter()
            .map(|s| TransformSpec {
                statements: vec![s.clone()],
                conditions: vec![s.clone(), "span.name == \"plain\"".into()],
            })
            .collect(),
        vec![FilterSpec {
            conditions: strings.clone(),
        }],
    );
    let relay = relay_conf_of(&gateway::desired(
        std::slice::from_ref(&pipeline),
        &settings(),
    ));
    assert_eq!(own_ottl_in(&relay, "nasty"), expected_own_ottl(&pipeline));
}

#[test]
fn a_pipeline_without_ottl_or_with_empty_groups_gets_no_processor_of_its_own() {
    let empty = with_own_ottl(
        "empty",
        vec![TransformSpec {
            statements: vec![],
            conditions: vec!["span.name == \"x\"".into()],
        }],
        vec![FilterSpec { conditions: vec![] }],
    );
    let objects = gateway::desired(
        &[empty, reconcilable("none", "https://x:4317")],
        &settings(),
    );
    let relay = relay_conf_of(&objects);
    let own: Vec<&String> = relay["processors"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|id| id.contains("user-defined"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
}

/// Names that share prefixes and suffixes, so that a processor found by a loose match would
/// land in the wrong pipeline.
const NAMES: [&str; 6] = ["a", "a-b", "b", "a.b", "ab", "user-defined-a"];

fn group_texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-z\" =.$#:-]{0,12}", 0..3)
}

fn pipeline_with_random_ottl() -> impl Strategy<Value = (Vec<TransformSpec>, Vec<FilterSpec>)> {
    (
        proptest::collection::vec(
            (group_texts(), group_texts()).prop_map(|(statements, conditions)| TransformSpec {
                statements,
                conditions,
            }),
            0..3,
        ),
        proptest::collection::vec(
            group_texts().prop_map(|conditions| FilterSpec { conditions }),
            0..3,
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary text, not just text that YAML finds hard, arrives unchanged.
    #[test]
    fn any_string_survives_yaml_and_the_collectors_expansion(
        statements in proptest::collection::vec(any::<String>(), 1..4),
        conditions in proptest::collection::vec(any::<String>(), 0..3),
        filter in proptest::collection::vec(any::<String>(), 1..4),
    ) {
        let pipeline = with_own_ottl(
            "any",
            vec![TransformSpec { statements, conditions }],
            vec![FilterSpec { conditions: filter }],
        );
        let relay = relay_conf_of(&gateway::desired(std::slice::from_ref(&pipeline), &settings()));
        prop_assert_eq!(own_ottl_in(&relay, "any"), expected_own_ottl(&pipeline));
    }

}

proptest! {
    // Each case renders up to six pipelines; the space of shapes is small.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each pipeline lists exactly its own OTTL processors, after the shared ones and before
    /// `batch`, transform before filter; each OTTL processor is defined once and used by
    /// exactly the pipeline it is named after, and holds exactly that pipeline's groups.
    #[test]
    fn each_ottl_processor_belongs_to_exactly_its_pipeline(
        specs in proptest::collection::vec(pipeline_with_random_ottl(), NAMES.len()),
        count in 1..=NAMES.len(),
    ) {
        let pipelines: Vec<ReconcilablePipeline> = NAMES[..count]
            .iter()
            .zip(specs)
            .map(|(name, (transform, filter))| with_own_ottl(name, transform, filter))
            .collect();
        let relay = relay_conf_of(&gateway::desired(&pipelines, &settings()));
        let shared = [
            "memory_limiter",
            "k8s_attributes",
            "filter/drop-noisy-spans",
            "transform/resolve-service-name",
        ];
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pipeline in &pipelines {
            let (transform, filter) = expected_own_ottl(pipeline);
            prop_assert_eq!(own_ottl_in(&relay, &pipeline.name), (transform.clone(), filter.clone()));
            let mut expected: Vec<String> = shared.iter().map(|s| s.to_string()).collect();
            if transform.is_some() {
                expected.push(format!("transform/user-defined-{}", pipeline.name));
            }
            if filter.is_some() {
                expected.push(format!("filter/user-defined-{}", pipeline.name));
            }
            expected.push("batch".into());
            let listed = strings_of(&relay["service"]["pipelines"][format!("traces/{}", pipeline.name)]["processors"]);
            prop_assert_eq!(&listed, &expected);
            for id in listed {
                users.entry(id).or_default().push(pipeline.name.clone());
            }
        }
        for id in relay["processors"].as_object().unwrap().keys() {
            let used_by = users.get(id).cloned().unwrap_or_default();
            match id.split_once("/user-defined-") {
                Some((_, owner)) => prop_assert_eq!(used_by, vec![owner.to_string()], "{}", id),
                None => prop_assert_eq!(used_by.len(), pipelines.len(), "{} is shared", id),
            }
        }
    }
}
