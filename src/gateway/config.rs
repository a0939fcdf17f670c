//! The collector configuration `relay.conf` (docs/reference/gateway.md#collector-configuration),
//! built from typed parts and serialised with sorted keys, so the same pipelines always give the
//! same bytes. Only components of the pinned collector-contrib release (0.151.0) under their
//! canonical names are used, and every secret value is referenced as `${env:…}` from the env
//! Secret, never written here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{GatewaySettings, PipelineEnv, PodLabel, ReconcilablePipeline};
use crate::api::{Compression, Protocol};

/// Queue batches shared by all pipelines (`256 / N` each).
const TOTAL_QUEUE_SIZE: usize = 256;

#[derive(Serialize)]
struct Exporter {
    endpoint: Option<String>,
    traces_endpoint: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    tls: Tls,
    compression: &'static str,
    sending_queue: Value,
    retry_on_failure: Value,
    auth: Option<Value>,
}

#[derive(Serialize)]
struct Tls {
    insecure: bool,
    insecure_skip_verify: bool,
    ca_pem: Option<String>,
    cert_pem: Option<String>,
    key_pem: Option<String>,
}

fn env(name: &str) -> String {
    format!("${{env:{name}}}")
}

/// The exporter component ID of a pipeline, exactly as the collector's metrics label it.
pub fn exporter_id(pipeline: &ReconcilablePipeline) -> String {
    let kind = match pipeline.spec.output.otlp.protocol.unwrap_or_default() {
        Protocol::Grpc => "otlp_grpc",
        Protocol::Http => "otlp_http",
    };
    format!("{kind}/{}", pipeline.name)
}

fn exporter(
    pipeline: &ReconcilablePipeline,
    env_names: &PipelineEnv,
    queue_size: usize,
) -> Exporter {
    let otlp = &pipeline.spec.output.otlp;
    let tls_spec = otlp.tls.clone().unwrap_or_default();
    let mut headers = BTreeMap::new();
    if let Some(name) = &env_names.basic_auth_header {
        headers.insert("Authorization".to_string(), env(name));
    }
    // User headers come after basic auth, so a user's Authorization header overrides it.
    for (header, name) in &env_names.headers {
        headers.insert(header.clone(), env(name));
    }
    let with_path = otlp.protocol == Some(Protocol::Http)
        && otlp.path.as_deref().is_some_and(|p| !p.is_empty());
    let compression = match otlp.compression.unwrap_or(Compression::Gzip) {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Zstd => "zstd",
    };
    Exporter {
        endpoint: (!with_path).then(|| env(&env_names.endpoint)),
        traces_endpoint: with_path.then(|| env(&env_names.endpoint)),
        headers,
        tls: Tls {
            insecure: pipeline.values.endpoint.starts_with("http://")
                || tls_spec.insecure == Some(true),
            insecure_skip_verify: tls_spec.insecure_skip_verify == Some(true),
            ca_pem: env_names.ca.as_deref().map(env),
            cert_pem: env_names.cert.as_deref().map(env),
            key_pem: env_names.key.as_deref().map(env),
        },
        compression,
        sending_queue: if queue_size > 0 {
            json!({"enabled": true, "queue_size": queue_size})
        } else {
            json!({"enabled": false})
        },
        retry_on_failure: json!({
            "enabled": true,
            "initial_interval": "5s",
            "max_interval": "30s",
            "max_elapsed_time": "300s",
        }),
        auth: env_names
            .oauth2
            .as_ref()
            .map(|_| json!({"authenticator": format!("oauth2client/{}", pipeline.name)})),
    }
}

/// Istio proxies report spans for traffic that is noise to a trace backend: spans for their
/// calls to this gateway, for health probes and for metric scrapes.
fn noise_filter(namespace: &str) -> Value {
    let gateway = format!(
        r#"telemetry-otlp-traces\\.{}(\\..*)?:(4317|4318).*"#,
        regex_escape(namespace)
    );
    json!({
        "error_mode": "ignore",
        "traces": {"span": [
            format!(r#"attributes["component"] == "proxy" and IsMatch(attributes["http.url"], "https?://{gateway}")"#),
            r#"attributes["component"] == "proxy" and attributes["http.method"] == "GET" and IsMatch(attributes["user_agent"], "^kube-probe/.*")"#.to_string(),
            r#"attributes["component"] == "proxy" and attributes["http.method"] == "GET" and IsMatch(attributes["user_agent"], "^Prometheus/.*")"#.to_string(),
        ]}
    })
}

/// Escape the dots of a namespace for a regular expression inside an OTTL string literal
/// (`\\.`: OTTL turns `\\` into one backslash, the regex sees `\.`).
fn regex_escape(text: &str) -> String {
    text.replace('.', r"\\.")
}

/// Pod labels that name a workload, each with the temporary resource attribute `k8s_attributes`
/// puts it in for the service-name resolution, which deletes it again.
pub const SERVICE_NAME_LABELS: [(&str, &str); 2] = [
    (
        "app.kubernetes.io/name",
        "telemetry-manager.tmp.app.kubernetes.io/name",
    ),
    ("app", "telemetry-manager.tmp.app"),
];

/// Where a span's `service.name` comes from when it is missing, empty or starts with
/// `unknown_service` (what SDKs report without a configured name), in order: the first resource
/// attribute that is set and not empty wins (docs/reference/gateway-enrichment.md#service-names).
pub const SERVICE_NAME_SOURCES: [&str; 7] = [
    SERVICE_NAME_LABELS[0].1,
    SERVICE_NAME_LABELS[1].1,
    "k8s.deployment.name",
    "k8s.daemonset.name",
    "k8s.statefulset.name",
    "k8s.job.name",
    "k8s.pod.name",
];

/// An OTTL string literal: JSON's escapes are a subset of the ones OTTL takes.
fn ottl_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn resource_attribute(key: &str) -> String {
    format!("resource.attributes[{}]", ottl_string(key))
}

/// The collector expands `$` references in every string of its config; `$$` is a literal `$`.
fn collector_literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// The statements of the service-name resolution, as OTTL (before the collector's `$`
/// escaping). Every path is a `resource.` path, so the collector infers the resource context:
/// the statements run once per resource, before any span of it is looked at.
pub fn service_name_statements() -> Vec<String> {
    let name = resource_attribute("service.name");
    let unnamed =
        format!(r#"({name} == nil or {name} == "" or IsMatch({name}, "^unknown_service"))"#);
    let resolve = SERVICE_NAME_SOURCES.iter().map(|source| {
        let source = resource_attribute(source);
        format!(r#"set({name}, {source}) where {unnamed} and {source} != nil and {source} != """#)
    });
    let clean_up = SERVICE_NAME_LABELS.iter().map(|(_, temporary)| {
        format!(
            "delete_key(resource.attributes, {})",
            ottl_string(temporary)
        )
    });
    resolve.chain(clean_up).collect()
}

/// The statements that insert the cluster's identity into resources that carry none, as OTTL.
pub fn cluster_identity_statements(name: Option<&str>, uid: Option<&str>) -> Vec<String> {
    [("k8s.cluster.name", name), ("k8s.cluster.uid", uid)]
        .into_iter()
        .filter_map(|(key, value)| {
            let attribute = resource_attribute(key);
            value.map(|value| {
                format!(
                    "set({attribute}, {}) where {attribute} == nil",
                    ottl_string(value)
                )
            })
        })
        .collect()
}

/// A transform processor for statements whose context the collector infers.
fn transform(statements: Vec<String>) -> Value {
    json!({
        "error_mode": "ignore",
        "trace_statements": [{
            "statements": statements.iter().map(|s| collector_literal(s)).collect::<Vec<_>>()
        }]
    })
}

/// The extraction rule of a pod label. A prefix becomes a key pattern whose capture group is
/// the whole key (the processor anchors the pattern itself); `$$1` is the collector's spelling
/// of the group reference `$1`.
fn pod_label_rule(label: &PodLabel) -> Value {
    match label {
        PodLabel::Key(key) => json!({
            "from": "pod",
            "key": key,
            "tag_name": format!("k8s.pod.label.{key}"),
        }),
        PodLabel::Prefix(prefix) => json!({
            "from": "pod",
            // Label keys contain no regex syntax but the dot (checked by `PodLabel`).
            "key_regex": format!("({}.*)", prefix.replace('.', r"\.")),
            "tag_name": collector_literal("k8s.pod.label.$1"),
        }),
    }
}

fn k8s_attributes(pod_labels: &[PodLabel]) -> Value {
    let node_label = |key: &str, tag: &str| json!({"from": "node", "key": key, "tag_name": tag});
    let pod_label = |key: &str, tag: &str| json!({"from": "pod", "key": key, "tag_name": tag});
    let mut labels = vec![
        node_label("topology.kubernetes.io/region", "cloud.region"),
        node_label("topology.kubernetes.io/zone", "cloud.availability_zone"),
        node_label("node.kubernetes.io/instance-type", "host.type"),
        node_label("kubernetes.io/arch", "host.arch"),
    ];
    labels.extend(
        SERVICE_NAME_LABELS
            .iter()
            .map(|(label, temporary)| pod_label(label, temporary)),
    );
    labels.extend(pod_labels.iter().map(pod_label_rule));
    json!({
        "auth_type": "serviceAccount",
        "passthrough": false,
        "extract": {
            "metadata": [
                "k8s.pod.name", "k8s.node.name", "k8s.namespace.name", "k8s.deployment.name",
                "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name"
            ],
            "labels": labels
        },
        "pod_association": [
            {"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
            {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
            {"sources": [{"from": "connection"}]}
        ]
    })
}

/// The processors every pipeline starts with, in order: the memory limiter, Kubernetes
/// metadata, the Istio-noise filter, the cluster's identity (when known), and the service-name
/// resolution, which comes last so that a pipeline's own OTTL sees the final `service.name`.
fn shared_processors(settings: &GatewaySettings) -> Vec<(&'static str, Value)> {
    let mut processors = vec![
        (
            "memory_limiter",
            json!({"check_interval": "1s", "limit_percentage": 75, "spike_limit_percentage": 15}),
        ),
        ("k8s_attributes", k8s_attributes(&settings.pod_labels)),
        ("filter/drop-noisy-spans", noise_filter(&settings.namespace)),
    ];
    let identity = cluster_identity_statements(
        settings.cluster_name.as_deref(),
        settings.cluster_uid.as_deref(),
    );
    if !identity.is_empty() {
        processors.push(("transform/insert-cluster-identity", transform(identity)));
    }
    processors.push((
        "transform/resolve-service-name",
        transform(service_name_statements()),
    ));
    processors
}

/// A pipeline's own processors (docs/reference/gateway.md#collector-configuration): its
/// `transform` groups, then its `filter` groups, each processor only when the pipeline has some.
/// Each is named after the pipeline and listed only in that pipeline, so one pipeline's OTTL
/// never touches another pipeline's spans. The collector infers each group's context; a group
/// without statements or conditions does nothing and is left out. Every `$` is doubled: the
/// processor then gets the user's text exactly, and no `${env:…}` or `${file:…}` in it can make
/// the collector read the gateway's environment (every pipeline's credentials) or its files.
fn user_defined_processors(pipeline: &ReconcilablePipeline) -> Vec<(String, Value)> {
    let literals = |texts: &[String]| -> Vec<String> {
        texts.iter().map(|text| collector_literal(text)).collect()
    };
    let statement_groups: Vec<Value> = pipeline
        .spec
        .transform
        .iter()
        .filter(|group| !group.statements.is_empty())
        .map(|group| {
            let mut entry = json!({"statements": literals(&group.statements)});
            if !group.conditions.is_empty() {
                entry["conditions"] = json!(literals(&group.conditions));
            }
            entry
        })
        .collect();
    let condition_groups: Vec<Value> = pipeline
        .spec
        .filter
        .iter()
        .filter(|group| !group.conditions.is_empty())
        .map(|group| json!({"conditions": literals(&group.conditions)}))
        .collect();
    let mut processors = Vec::new();
    if !statement_groups.is_empty() {
        processors.push((
            format!("transform/user-defined-{}", pipeline.name),
            json!({"error_mode": "ignore", "trace_statements": statement_groups}),
        ));
    }
    if !condition_groups.is_empty() {
        processors.push((
            format!("filter/user-defined-{}", pipeline.name),
            json!({"error_mode": "ignore", "trace_conditions": condition_groups}),
        ));
    }
    processors
}

/// The collector config for `pipelines` (sorted by name).
pub fn relay_conf(
    pipelines: &[(&ReconcilablePipeline, PipelineEnv)],
    settings: &GatewaySettings,
) -> String {
    let queue_size = TOTAL_QUEUE_SIZE / pipelines.len().max(1);
    let shared = shared_processors(settings);
    let mut processor_config: serde_json::Map<String, Value> = shared
        .iter()
        .map(|(id, config)| (id.to_string(), config.clone()))
        .collect();
    processor_config.insert(
        "batch".into(),
        json!({"send_batch_size": 512, "send_batch_max_size": 512, "timeout": "10s"}),
    );

    let mut extensions = json!({
        "health_check": {"endpoint": "${env:MY_POD_IP}:13133"},
        "pprof": {"endpoint": "127.0.0.1:1777"},
    });
    let mut service_extensions = vec!["health_check".to_string(), "pprof".to_string()];
    let mut exporters = serde_json::Map::new();
    let mut service_pipelines = serde_json::Map::new();
    for (pipeline, env_names) in pipelines {
        let id = exporter_id(pipeline);
        exporters.insert(
            id.clone(),
            serde_json::to_value(exporter(pipeline, env_names, queue_size)).expect("serialisable"),
        );
        if let Some(oauth2) = &env_names.oauth2 {
            let spec = pipeline
                .spec
                .output
                .otlp
                .authentication
                .as_ref()
                .and_then(|a| a.oauth2.as_ref());
            let name = format!("oauth2client/{}", pipeline.name);
            extensions[&name] = json!({
                "token_url": env(&oauth2.token_url),
                "client_id": env(&oauth2.client_id),
                "client_secret": env(&oauth2.client_secret),
                "scopes": spec.map(|s| s.scopes.clone()).unwrap_or_default(),
                "endpoint_params": spec.map(|s| s.params.clone()).unwrap_or_default(),
            });
            service_extensions.push(name);
        }
        let own = user_defined_processors(pipeline);
        let processors: Vec<String> = shared
            .iter()
            .map(|(id, _)| id.to_string())
            .chain(own.iter().map(|(id, _)| id.clone()))
            .chain(["batch".to_string()])
            .collect();
        processor_config.extend(own);
        service_pipelines.insert(
            format!("traces/{}", pipeline.name),
            json!({"receivers": ["otlp"], "processors": processors, "exporters": [id]}),
        );
    }
    let config = json!({
        "extensions": extensions,
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": "${env:MY_POD_IP}:4317"},
            "http": {"endpoint": "${env:MY_POD_IP}:4318"},
        }}},
        "processors": processor_config,
        "exporters": exporters,
        "service": {
            "extensions": service_extensions,
            "pipelines": service_pipelines,
            "telemetry": {
                "logs": {"level": "info", "encoding": "json"},
                "metrics": {
                    "level": "detailed",
                    "readers": [{"pull": {"exporter": {"prometheus": {"host": "${env:MY_POD_IP}", "port": 8888}}}}]
                }
            }
        }
    });
    serde_saphyr::to_string(&strip_nulls(config)).expect("a JSON value serialises to YAML")
}

/// Drop `null` fields (unset options), so the collector sees only what is configured.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}
