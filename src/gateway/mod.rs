//! The trace gateway's desired state (docs/reference/gateway.md#objects), a pure function of the
//! reconcilable pipelines, their resolved values and the operator's settings.

pub mod config;
mod pod_label;

pub use pod_label::{PodLabel, PodLabelError};

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretEnvSource, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::api::{ValueType, env_var_suffix, v1beta1};
use crate::validation::{ResolveError, ResolvedSecrets};

pub const NAME: &str = "telemetry-trace-gateway";
pub const OTLP_SERVICE: &str = "telemetry-otlp-traces";
pub const METRICS_SERVICE: &str = "telemetry-trace-gateway-metrics";
/// The upstream collector release the generated configuration is written for
/// (docs/reference/gateway.md#collector-configuration).
pub const DEFAULT_COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-contrib:0.151.0";
/// Pods with this label may scrape the gateway's metrics port.
pub const SCRAPER_LABEL: (&str, &str) = ("networking.kyma-project.io/metrics-scraping", "allowed");
const UID: i64 = 10001;

/// Operator settings the gateway depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Where the gateway runs (`--target-namespace`).
    pub namespace: String,
    /// The manager's namespace, whose pods may scrape the gateway.
    pub manager_namespace: String,
    pub collector_image: String,
    /// Replicas of the Deployment; with autoscaling, the fewest the autoscaler may run.
    pub replicas: i32,
    pub cluster_name: Option<String>,
    pub priority_class_name: Option<String>,
    /// Whether Istio's `security.istio.io/v1` API is served.
    pub istio: bool,
    /// `k8s.cluster.uid`: the UID of the `kube-system` namespace, when the manager could read it.
    pub cluster_uid: Option<String>,
    /// Pod labels added to spans as `k8s.pod.label.<key>` (`--extract-pod-label`).
    pub pod_labels: Vec<PodLabel>,
    /// A HorizontalPodAutoscaler scales the Deployment between `replicas` and its maximum.
    pub autoscaling: Option<Autoscaling>,
}

/// The gateway's HorizontalPodAutoscaler (docs/reference/gateway-enrichment.md#autoscaling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Autoscaling {
    pub max_replicas: i32,
    /// Target average CPU use, in percent of the pods' CPU request.
    pub cpu_utilization: i32,
}

/// Every user value of one pipeline, resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineValues {
    pub endpoint: String,
    pub basic_auth: Option<(String, String)>,
    pub oauth2: Option<OAuth2Values>,
    /// (header name, prefix, value)
    pub headers: Vec<(String, Option<String>, String)>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuth2Values {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl PipelineValues {
    /// Resolve every value of `spec` from inline values and `secrets`.
    pub fn resolve(
        spec: &v1beta1::TracePipelineSpec,
        secrets: &ResolvedSecrets,
    ) -> Result<Self, ResolveError> {
        let text = |value: &ValueType| -> Result<String, ResolveError> {
            match (&value.value, &value.value_from) {
                (Some(text), _) => Ok(text.clone()),
                (None, Some(from)) => secrets.value(&from.secret_key_ref).map(str::to_string),
                (None, None) => Ok(String::new()),
            }
        };
        let otlp = &spec.output.otlp;
        let auth = otlp.authentication.as_ref();
        let tls = otlp.tls.as_ref();
        let optional = |value: Option<&ValueType>| value.map(&text).transpose();
        Ok(PipelineValues {
            endpoint: text(&otlp.endpoint)?,
            basic_auth: auth
                .and_then(|a| a.basic.as_ref())
                .map(|b| Ok::<_, ResolveError>((text(&b.user)?, text(&b.password)?)))
                .transpose()?,
            oauth2: auth
                .and_then(|a| a.oauth2.as_ref())
                .map(|o| {
                    Ok::<_, ResolveError>(OAuth2Values {
                        token_url: text(&o.token_url)?,
                        client_id: text(&o.client_id)?,
                        client_secret: text(&o.client_secret)?,
                    })
                })
                .transpose()?,
            headers: otlp
                .headers
                .iter()
                .map(|h| Ok((h.name.clone(), h.prefix.clone(), text(&h.value_type())?)))
                .collect::<Result<_, ResolveError>>()?,
            ca: optional(tls.and_then(|t| t.ca.as_ref()))?,
            cert: optional(tls.and_then(|t| t.cert.as_ref()))?,
            key: optional(tls.and_then(|t| t.key.as_ref()))?,
        })
    }
}

/// A pipeline that is part of the gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconcilablePipeline {
    pub name: String,
    /// For the owner references that let Kubernetes collect the gateway with the last pipeline;
    /// unknown only for manifests rendered offline.
    pub uid: Option<String>,
    pub spec: v1beta1::TracePipelineSpec,
    pub values: PipelineValues,
}

/// The env-var names one pipeline's values get (docs/reference/gateway.md#environment-variables).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineEnv {
    pub endpoint: String,
    pub basic_auth_header: Option<String>,
    /// (header name, env var)
    pub headers: Vec<(String, String)>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub oauth2: Option<OAuth2Env>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuth2Env {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

/// The env vars of one pipeline: names for the config, values for the env Secret.
fn pipeline_env(
    pipeline: &ReconcilablePipeline,
    data: &mut BTreeMap<String, String>,
) -> PipelineEnv {
    let suffix = env_var_suffix(&pipeline.name);
    let values = &pipeline.values;
    let otlp = &pipeline.spec.output.otlp;
    let mut put = |name: String, value: String| {
        data.insert(name.clone(), value);
        name
    };
    let endpoint = match otlp.path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) if otlp.protocol == Some(crate::api::Protocol::Http) => {
            format!(
                "{}/{}",
                values.endpoint.trim_end_matches('/'),
                path.trim_start_matches('/')
            )
        }
        _ => values.endpoint.clone(),
    };
    // PEM often arrives with literal `\n` from manifests and CI variables.
    let pem = |value: &String| value.replace("\\n", "\n");
    PipelineEnv {
        endpoint: put(format!("OTLP_ENDPOINT_{suffix}"), endpoint),
        basic_auth_header: values.basic_auth.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            put(
                format!("BASIC_AUTH_HEADER_{suffix}"),
                format!("Basic {token}"),
            )
        }),
        headers: values
            .headers
            .iter()
            .map(|(name, prefix, value)| {
                let text = match prefix.as_deref().filter(|p| !p.is_empty()) {
                    Some(prefix) => format!("{prefix} {value}"),
                    None => value.clone(),
                };
                (
                    name.clone(),
                    put(format!("HEADER_{suffix}_{}", env_var_suffix(name)), text),
                )
            })
            .collect(),
        ca: values
            .ca
            .as_ref()
            .map(|v| put(format!("OTLP_TLS_CA_PEM_{suffix}"), pem(v))),
        cert: values
            .cert
            .as_ref()
            .map(|v| put(format!("OTLP_TLS_CERT_PEM_{suffix}"), pem(v))),
        key: values
            .key
            .as_ref()
            .map(|v| put(format!("OTLP_TLS_KEY_PEM_{suffix}"), pem(v))),
        oauth2: values.oauth2.as_ref().map(|o| OAuth2Env {
            token_url: put(format!("OAUTH2_TOKEN_URL_{suffix}"), o.token_url.clone()),
            client_id: put(format!("OAUTH2_CLIENT_ID_{suffix}"), o.client_id.clone()),
            client_secret: put(
                format!("OAUTH2_CLIENT_SECRET_{suffix}"),
                o.client_secret.clone(),
            ),
        }),
    }
}

/// Every object of the gateway (docs/reference/gateway.md#objects).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayObjects {
    pub service_account: ServiceAccount,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub env_secret: Secret,
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub otlp_service: Service,
    pub metrics_service: Service,
    pub network_policy: NetworkPolicy,
    /// Only with autoscaling; the Deployment then has no `spec.replicas`.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// Only when the gateway may run more than one replica.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// Only when Istio's API is served.
    pub peer_authentication: Option<Value>,
}

impl GatewayObjects {
    /// Every object as JSON, in apply order (identity and configuration before the workload).
    pub fn to_values(&self) -> Vec<Value> {
        let to = |o: &dyn erased::Object| o.value();
        let mut values = vec![
            to(&self.service_account),
            to(&self.cluster_role),
            to(&self.cluster_role_binding),
            to(&self.env_secret),
            to(&self.config_map),
            to(&self.deployment),
        ];
        if let Some(autoscaler) = &self.autoscaler {
            values.push(to(autoscaler));
        }
        values.extend([
            to(&self.otlp_service),
            to(&self.metrics_service),
            to(&self.network_policy),
        ]);
        if let Some(pdb) = &self.pod_disruption_budget {
            values.push(to(pdb));
        }
        if let Some(peer_authentication) = &self.peer_authentication {
            values.push(peer_authentication.clone());
        }
        values
    }
}

mod erased {
    use k8s_openapi::Resource;
    use serde::Serialize;
    use serde_json::Value;

    /// A Kubernetes object as JSON with its apiVersion and kind.
    pub trait Object {
        fn value(&self) -> Value;
    }

    impl<T: Resource + Serialize> Object for T {
        fn value(&self) -> Value {
            let mut value = serde_json::to_value(self).expect("Kubernetes objects serialise");
            value["apiVersion"] = Value::String(T::API_VERSION.to_string());
            value["kind"] = Value::String(T::KIND.to_string());
            value
        }
    }
}

/// The labels every gateway object carries; the first is the selector.
pub fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), NAME.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "telemetry-manager".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "telemetry".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "gateway".to_string(),
        ),
    ])
}

fn selector() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_string(), NAME.to_string())])
}

fn metadata(name: &str, namespace: Option<&str>, owners: &[OwnerReference]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels()),
        owner_references: (!owners.is_empty()).then(|| owners.to_vec()),
        ..ObjectMeta::default()
    }
}

fn owner_reference(pipeline: &ReconcilablePipeline) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::STORAGE_VERSION),
        kind: crate::api::KIND.to_string(),
        name: pipeline.name.clone(),
        uid: pipeline.uid.clone()?,
        controller: Some(false),
        block_owner_deletion: Some(false),
    })
}

/// SHA-256 over the config and the env Secret with sorted keys, so any change rolls the pods.
fn checksum(config: &BTreeMap<String, String>, env: &BTreeMap<String, String>) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for (key, value) in config.iter().chain(env) {
        // Lengths delimit the fields, so different splits of the same bytes cannot collide.
        for part in [key.as_bytes(), value.as_bytes()] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn quantity(text: String) -> Quantity {
    Quantity(text)
}

/// The gateway for `pipelines`, which must be non-empty and reconcilable.
pub fn desired(pipelines: &[ReconcilablePipeline], settings: &GatewaySettings) -> GatewayObjects {
    let mut sorted: Vec<&ReconcilablePipeline> = pipelines.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let owners: Vec<OwnerReference> = sorted.iter().filter_map(|p| owner_reference(p)).collect();
    let ns = settings.namespace.as_str();

    let mut env_data = BTreeMap::new();
    let with_env: Vec<(&ReconcilablePipeline, PipelineEnv)> = sorted
        .iter()
        .map(|p| (*p, pipeline_env(p, &mut env_data)))
        .collect();
    let relay = config::relay_conf(&with_env, settings);
    let config_data = BTreeMap::from([("relay.conf".to_string(), relay)]);
    let checksum = checksum(&config_data, &env_data);
    let n = sorted.len() as i64;
    let memory_limit_mib = 500 + 1500 * n;

    let service_account = ServiceAccount {
        metadata: metadata(NAME, Some(ns), &owners),
        ..ServiceAccount::default()
    };
    let read = |groups: &[&str], resources: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..PolicyRule::default()
    };
    let cluster_role = ClusterRole {
        metadata: metadata(NAME, None, &owners),
        rules: Some(vec![
            read(&[""], &["namespaces", "nodes", "pods"]),
            read(&["apps"], &["replicasets"]),
        ]),
        ..ClusterRole::default()
    };
    let cluster_role_binding = ClusterRoleBinding {
        metadata: metadata(NAME, None, &owners),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: NAME.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: NAME.into(),
            namespace: Some(ns.into()),
            ..Subject::default()
        }]),
    };
    let env_secret = Secret {
        metadata: metadata(NAME, Some(ns), &owners),
        type_: Some("Opaque".into()),
        data: Some(
            env_data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    };
    let config_map = ConfigMap {
        metadata: metadata(NAME, Some(ns), &owners),
        data: Some(config_data),
        ..ConfigMap::default()
    };

    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    let probe = || Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::Int(13133),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    };
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let seccomp = || {
        Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        })
    };
    let container = Container {
        name: "collector".into(),
        image: Some(settings.collector_image.clone()),
        args: Some(vec!["--config=/conf/relay.conf".into()]),
        env: Some(vec![
            field_env("MY_POD_IP", "status.podIP"),
            field_env("MY_NODE_NAME", "spec.nodeName"),
        ]),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: NAME.into(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        ports: Some(vec![
            port("grpc-collector", 4317),
            port("http-collector", 4318),
            port("http-metrics", 8888),
            port("health-check", 13133),
        ]),
        liveness_probe: Some(probe()),
        readiness_probe: Some(probe()),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), quantity(format!("{}m", 100 + 100 * n))),
                ("memory".into(), quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                quantity(format!("{memory_limit_mib}Mi")),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(UID),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            seccomp_profile: seccomp(),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: "/conf".into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let anti_affinity = |weight: i32, topology: &str| WeightedPodAffinityTerm {
        weight,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(selector()),
                ..LabelSelector::default()
            }),
            topology_key: topology.into(),
            ..PodAffinityTerm::default()
        },
    };
    let deployment = Deployment {
        metadata: metadata(NAME, Some(ns), &owners),
        spec: Some(DeploymentSpec {
            // With autoscaling the HorizontalPodAutoscaler owns the replica count; applying one
            // here would undo its decisions.
            replicas: settings.autoscaling.is_none().then_some(settings.replicas),
            selector: LabelSelector {
                match_labels: Some(selector()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    annotations: Some(BTreeMap::from([("checksum/config".into(), checksum)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    priority_class_name: settings.priority_class_name.clone(),
                    containers: vec![container],
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(UID),
                        run_as_group: Some(UID),
                        fs_group: Some(UID),
                        seccomp_profile: seccomp(),
                        ..PodSecurityContext::default()
                    }),
                    affinity: Some(Affinity {
                        pod_anti_affinity: Some(PodAntiAffinity {
                            preferred_during_scheduling_ignored_during_execution: Some(vec![
                                anti_affinity(100, "kubernetes.io/hostname"),
                                anti_affinity(100, "topology.kubernetes.io/zone"),
                            ]),
                            ..PodAntiAffinity::default()
                        }),
                        ..Affinity::default()
                    }),
                    volumes: Some(vec![Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: NAME.into(),
                            items: Some(vec![KeyToPath {
                                key: "relay.conf".into(),
                                path: "relay.conf".into(),
                                ..KeyToPath::default()
                            }]),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };

    let service_port = |name: &str, number: i32| ServicePort {
        name: Some(name.into()),
        port: number,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(number)),
        ..ServicePort::default()
    };
    let otlp_service = Service {
        metadata: metadata(OTLP_SERVICE, Some(ns), &owners),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector()),
            ports: Some(vec![
                service_port("grpc-collector", 4317),
                service_port("http-collector", 4318),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let mut metrics_meta = metadata(METRICS_SERVICE, Some(ns), &owners);
    metrics_meta.annotations = Some(BTreeMap::from([
        ("prometheus.io/port".into(), "8888".into()),
        ("prometheus.io/scrape".into(), "true".into()),
    ]));
    let metrics_service = Service {
        metadata: metrics_meta,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector()),
            ports: Some(vec![service_port("http-metrics", 8888)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };

    let tcp = |number: i32| NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some("TCP".into()),
        ..NetworkPolicyPort::default()
    };
    let network_policy = NetworkPolicy {
        metadata: metadata(NAME, Some(ns), &owners),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector()),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    ports: Some(vec![tcp(4317), tcp(4318)]),
                    from: None,
                },
                NetworkPolicyIngressRule {
                    ports: Some(vec![tcp(8888)]),
                    from: Some(vec![
                        NetworkPolicyPeer {
                            namespace_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([(
                                    "kubernetes.io/metadata.name".into(),
                                    settings.manager_namespace.clone(),
                                )])),
                                ..LabelSelector::default()
                            }),
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([(
                                    "app.kubernetes.io/name".into(),
                                    "telemetry-manager".into(),
                                )])),
                                ..LabelSelector::default()
                            }),
                            ..NetworkPolicyPeer::default()
                        },
                        NetworkPolicyPeer {
                            namespace_selector: Some(LabelSelector::default()),
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([(
                                    SCRAPER_LABEL.0.into(),
                                    SCRAPER_LABEL.1.into(),
                                )])),
                                ..LabelSelector::default()
                            }),
                            ..NetworkPolicyPeer::default()
                        },
                    ]),
                },
            ]),
            egress: Some(vec![NetworkPolicyEgressRule::default()]),
        }),
    };
    let autoscaler = settings.autoscaling.map(|autoscaling| {
        let resource = |name: &str, target: MetricTarget| MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: name.into(),
                target,
            }),
            ..MetricSpec::default()
        };
        HorizontalPodAutoscaler {
            metadata: metadata(NAME, Some(ns), &owners),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: NAME.into(),
                },
                min_replicas: Some(settings.replicas),
                max_replicas: autoscaling.max_replicas,
                metrics: Some(vec![
                    resource(
                        "cpu",
                        MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(autoscaling.cpu_utilization),
                            ..MetricTarget::default()
                        },
                    ),
                    // Memory as an average value of half the limit, not as utilisation: the
                    // request (32Mi) is far below what an idle collector uses, so a utilisation
                    // target would always scale to the maximum. Half the limit scales out before
                    // the memory limiter starts refusing spans at 60 % of it.
                    resource(
                        "memory",
                        MetricTarget {
                            type_: "AverageValue".into(),
                            average_value: Some(quantity(format!("{}Mi", memory_limit_mib / 2))),
                            ..MetricTarget::default()
                        },
                    ),
                ]),
                ..HorizontalPodAutoscalerSpec::default()
            }),
            ..HorizontalPodAutoscaler::default()
        }
    });
    // With maxUnavailable 1 a budget never blocks a drain of a single pod, so it stays whenever
    // the gateway may run more than one.
    let most_replicas = settings
        .autoscaling
        .map_or(settings.replicas, |a| a.max_replicas.max(settings.replicas));
    let pod_disruption_budget = (most_replicas > 1).then(|| PodDisruptionBudget {
        metadata: metadata(NAME, Some(ns), &owners),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    });
    let peer_authentication = settings.istio.then(|| {
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": serde_json::to_value(metadata(NAME, Some(ns), &owners)).expect("metadata serialises"),
            "spec": {"selector": {"matchLabels": selector()}, "mtls": {"mode": "PERMISSIVE"}}
        })
    });

    GatewayObjects {
        service_account,
        cluster_role,
        cluster_role_binding,
        env_secret,
        config_map,
        deployment,
        otlp_service,
        metrics_service,
        network_policy,
        autoscaler,
        pod_disruption_budget,
        peer_authentication,
    }
}
