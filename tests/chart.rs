//! The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk, installed by
//! `.ci/run`): every object parses as its Kubernetes type, the security settings, probes,
//! webhook registration (docs/operations.md#webhook-registration) and RBAC are as documented, bad
//! values are rejected, and
//! `manifests/install.yaml` is the default render.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::{Value, json};
use telemetry_manager::admission::Endpoint;

const CHART: &str = "charts/telemetry-manager";
const NAMESPACE: &str = "kyma-system";

fn helm(command: &str, values: &Value) -> Value {
    helm_result(command, values).unwrap_or_else(|stderr| {
        panic!("helm {command} failed (pip install helm-python-sdk):\n{stderr}")
    })
}

/// The Helm engine's output, or its error text.
fn helm_result(command: &str, values: &Value) -> Result<Value, String> {
    let mut child = Command::new("python3")
        .args(["tests/chart/helm.py", command, CHART, NAMESPACE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the Helm engine");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(values.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

/// The rendered objects, by template, in template order.
fn render(values: &Value) -> BTreeMap<String, Vec<Value>> {
    let templates = helm("render", values);
    templates
        .as_object()
        .unwrap()
        .iter()
        .map(|(template, text)| {
            let documents: Vec<Value> =
                serde_saphyr::from_multiple(text.as_str().unwrap()).unwrap();
            (
                template.clone(),
                documents.into_iter().filter(|d| !d.is_null()).collect(),
            )
        })
        .collect()
}

fn objects(values: &Value) -> Vec<Value> {
    render(values).into_values().flatten().collect()
}

fn find<T: serde::de::DeserializeOwned>(objects: &[Value], kind: &str, name: &str) -> T {
    let object = objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{kind} {name} does not parse: {e}"))
}

#[test]
fn every_rendered_object_parses_as_its_kubernetes_type() {
    for values in [
        json!({}),
        json!({"certificates": {"mode": "certManager"}, "serviceMonitor": {"enabled": true}}),
    ] {
        for object in objects(&values) {
            let kind = object["kind"].as_str().unwrap();
            let parsed = match kind {
                "ServiceAccount" => {
                    serde_json::from_value::<ServiceAccount>(object.clone()).map(|_| ())
                }
                "ClusterRole" => serde_json::from_value::<ClusterRole>(object.clone()).map(|_| ()),
                "ClusterRoleBinding" => {
                    serde_json::from_value::<ClusterRoleBinding>(object.clone()).map(|_| ())
                }
                "Role" => serde_json::from_value::<Role>(object.clone()).map(|_| ()),
                "RoleBinding" => serde_json::from_value::<RoleBinding>(object.clone()).map(|_| ()),
                "Deployment" => serde_json::from_value::<Deployment>(object.clone()).map(|_| ()),
                "Service" => serde_json::from_value::<Service>(object.clone()).map(|_| ()),
                "NetworkPolicy" => {
                    serde_json::from_value::<NetworkPolicy>(object.clone()).map(|_| ())
                }
                "PodDisruptionBudget" => {
                    serde_json::from_value::<PodDisruptionBudget>(object.clone()).map(|_| ())
                }
                "ValidatingWebhookConfiguration" => {
                    serde_json::from_value::<ValidatingWebhookConfiguration>(object.clone())
                        .map(|_| ())
                }
                "MutatingWebhookConfiguration" => {
                    serde_json::from_value::<MutatingWebhookConfiguration>(object.clone())
                        .map(|_| ())
                }
                // cert-manager and Prometheus Operator types: checked by shape below.
                "Issuer" | "Certificate" | "ServiceMonitor" => Ok(()),
                other => panic!("unexpected kind {other}"),
            };
            parsed.unwrap_or_else(|e| panic!("{kind} does not parse: {e}"));
        }
    }
}

#[test]
fn the_manager_runs_locked_down_with_probes_and_a_drain_delay() {
    let objects = objects(&json!({}));
    let deployment: Deployment = find(&objects, "Deployment", "telemetry-manager");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let pod_security = pod.security_context.unwrap();
    assert_eq!(
        (pod_security.run_as_non_root, pod_security.run_as_user),
        (Some(true), Some(65532))
    );
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.clone().unwrap().http_get.unwrap().path.unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    // No preStop hook (a `sleep` hook needs Kubernetes 1.30): the manager's own shutdown delay
    // keeps it serving while the endpoints are updated, within the grace period.
    assert!(container.lifecycle.is_none());
    assert_eq!(pod.termination_grace_period_seconds, Some(40));
    assert!(
        container
            .resources
            .clone()
            .unwrap()
            .limits
            .unwrap()
            .contains_key("memory")
    );
    let args = container.args.clone().unwrap();
    assert!(args.contains(&"--cert-mode=self".to_string()), "{args:?}");
    every_flag_is_a_flag_of_run(&args);
    let pdb: PodDisruptionBudget = find(&objects, "PodDisruptionBudget", "telemetry-manager");
    assert!(pdb.spec.unwrap().max_unavailable.is_some());
    let service: Service = find(&objects, "Service", "telemetry-manager-webhook");
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (
            443,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9443))
        )
    );
}

/// Every flag the chart passes exists in the binary.
fn every_flag_is_a_flag_of_run(args: &[String]) {
    let help = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in args
        .iter()
        .filter_map(|a| a.split('=').next())
        .filter(|a| a.starts_with("--"))
    {
        let listed = help
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|word| word == flag);
        assert!(listed, "{flag} is not a flag of `run`");
    }
}

fn manager_args(values: &Value) -> Vec<String> {
    let deployment: Deployment = find(&objects(values), "Deployment", "telemetry-manager");
    deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap()
}

#[test]
fn gateway_enrichment_and_autoscaling_values_become_flags() {
    let defaults = manager_args(&json!({}));
    assert!(
        !defaults
            .iter()
            .any(|a| a.starts_with("--extract-pod-label") || a.starts_with("--gateway-autoscaling")),
        "off by default: {defaults:?}"
    );
    let args = manager_args(&json!({"gateway": {
        "replicas": 3,
        "extractPodLabels": ["team", "app.kubernetes.io/*"],
        "autoscaling": {"maxReplicas": 8, "cpuUtilization": 60}
    }}));
    for flag in [
        "--gateway-replicas=3",
        "--extract-pod-label=team",
        "--extract-pod-label=app.kubernetes.io/*",
        "--gateway-autoscaling-max=8",
        "--gateway-autoscaling-cpu=60",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} in {args:?}");
    }
    every_flag_is_a_flag_of_run(&args);
    // The binary takes what the chart renders.
    let output = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(["render", "-f", "examples/valid-grpc.yaml"])
        .args(args.iter().filter(|a| {
            ["--extract-pod-label", "--gateway-"]
                .iter()
                .any(|prefix| a.starts_with(prefix))
        }))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let error = helm_result(
        "render",
        &json!({"gateway": {"replicas": 3, "autoscaling": {"maxReplicas": 2}}}),
    )
    .unwrap_err();
    assert!(
        error.contains("gateway.autoscaling.maxReplicas must be at least gateway.replicas"),
        "{error}"
    );
}

#[test]
fn webhooks_are_registered_as_the_spec_says() {
    let objects = objects(&json!({}));
    let validating: ValidatingWebhookConfiguration = find(
        &objects,
        "ValidatingWebhookConfiguration",
        "telemetry-validating-webhook.kyma-project.io",
    );
    let mutating: MutatingWebhookConfiguration = find(
        &objects,
        "MutatingWebhookConfiguration",
        "telemetry-mutating-webhook.kyma-project.io",
    );
    let mut paths = Vec::new();
    for w in validating.webhooks.unwrap() {
        assert_eq!(
            (
                w.failure_policy.as_deref(),
                w.side_effects.as_str(),
                w.timeout_seconds
            ),
            (Some("Fail"), "None", Some(10))
        );
        assert_eq!(
            (w.match_policy.as_deref(), w.admission_review_versions),
            (Some("Exact"), vec!["v1".to_string()])
        );
        assert_eq!(
            w.rules.unwrap()[0].operations.clone().unwrap(),
            vec!["CREATE", "UPDATE"]
        );
        let service = w.client_config.service.unwrap();
        assert_eq!(
            (service.name.as_str(), service.port),
            ("telemetry-manager-webhook", Some(443))
        );
        assert!(
            w.client_config.ca_bundle.is_none(),
            "the manager injects it"
        );
        paths.push(service.path.unwrap());
    }
    for w in mutating.webhooks.unwrap() {
        assert_eq!(
            (
                w.failure_policy.as_deref(),
                w.side_effects.as_str(),
                w.timeout_seconds
            ),
            (Some("Fail"), "None", Some(10))
        );
        paths.push(w.client_config.service.unwrap().path.unwrap());
    }
    paths.sort();
    let mut expected: Vec<String> = Endpoint::ALL.iter().map(|e| e.path()).collect();
    expected.sort();
    assert_eq!(paths, expected);
}

fn rules(role: &[k8s_openapi::api::rbac::v1::PolicyRule], resource: &str) -> Vec<String> {
    role.iter()
        .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
        .flat_map(|r| r.verbs.clone())
        .collect()
}

#[test]
fn rbac_is_least_privilege() {
    let objects = objects(&json!({}));
    let cluster: ClusterRole = find(&objects, "ClusterRole", "telemetry-manager");
    let cluster_rules = cluster.rules.unwrap();
    let mut secret_verbs = rules(&cluster_rules, "secrets");
    secret_verbs.sort();
    assert_eq!(
        secret_verbs,
        vec!["get", "list", "watch"],
        "Secrets are read-only cluster-wide"
    );
    for rule in &cluster_rules {
        let writes = rule
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "create" | "update" | "patch" | "delete"));
        let resources = rule.resources.clone().unwrap_or_default();
        if writes {
            let allowed = [
                "tracepipelines/status",
                "events",
                "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations",
                "clusterroles",
                "clusterrolebindings",
            ];
            assert!(
                resources.iter().all(|r| allowed.contains(&r.as_str())),
                "cluster-wide write to {resources:?}"
            );
            if resources
                .iter()
                .any(|r| r.ends_with("webhookconfigurations"))
                || rule.verbs.iter().any(|v| v == "delete")
            {
                assert!(
                    rule.resource_names.is_some(),
                    "{resources:?} writes are limited by name"
                );
            }
        }
    }
    let role: Role = find(&objects, "Role", "telemetry-manager");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    let role_rules = role.rules.unwrap();
    assert!(rules(&role_rules, "deployments").contains(&"patch".to_string()));
    let mut autoscaler_verbs = rules(&role_rules, "horizontalpodautoscalers");
    autoscaler_verbs.sort();
    assert_eq!(
        autoscaler_verbs,
        vec!["create", "delete", "get", "list", "patch", "watch"],
        "the gateway's autoscaler, in its namespace only"
    );
}

/// The cluster UID comes from one namespace: the rule that exists for it names kube-system and
/// only allows reading it.
#[test]
fn the_cluster_uid_rule_reads_only_kube_system() {
    let cluster: ClusterRole = find(&objects(&json!({})), "ClusterRole", "telemetry-manager");
    let named: Vec<_> = cluster
        .rules
        .unwrap()
        .into_iter()
        .filter(|r| r.resources.iter().flatten().any(|x| x == "namespaces"))
        .filter(|r| r.resource_names.is_some())
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0].api_groups, Some(vec![String::new()]));
    assert_eq!(named[0].resources, Some(vec!["namespaces".to_string()]));
    assert_eq!(
        named[0].resource_names,
        Some(vec!["kube-system".to_string()])
    );
    assert_eq!(named[0].verbs, vec!["get"]);
}

#[test]
fn cert_manager_mode_mounts_the_issued_certificate_and_injects_the_ca() {
    let objects = objects(&json!({"certificates": {"mode": "certManager"}}));
    let deployment: Deployment = find(&objects, "Deployment", "telemetry-manager");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert!(
        pod.containers[0]
            .args
            .clone()
            .unwrap()
            .contains(&"--cert-mode=files".to_string())
    );
    assert_eq!(
        pod.volumes.unwrap()[0]
            .secret
            .clone()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("telemetry-manager-webhook-tls")
    );
    let certificate = objects.iter().find(|o| o["kind"] == "Certificate").unwrap();
    assert_eq!(
        certificate["spec"]["secretName"],
        "telemetry-manager-webhook-tls"
    );
    let validating = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    assert_eq!(
        validating["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/telemetry-manager-webhook")
    );
}

#[test]
fn lint_has_no_errors_and_bad_values_are_rejected() {
    for values in [json!({}), json!({"certificates": {"mode": "certManager"}})] {
        let report = helm("lint", &values);
        let errors: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64() >= Some(2))
            .collect();
        assert!(
            errors.is_empty() && report["errors"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
    for (bad, field) in [
        (json!({"replicas": "two"}), "/replicas"),
        (
            json!({"certificates": {"mode": "vault"}}),
            "/certificates/mode",
        ),
        (json!({"secretRefPolicy": "maybe"}), "/secretRefPolicy"),
        (json!({"maxPipelines": -1}), "/maxPipelines"),
        (json!({"gateway": {"replica": 3}}), "/gateway"),
        (
            json!({"gateway": {"extractPodLabels": ["team name"]}}),
            "/gateway/extractPodLabels/0",
        ),
        (
            json!({"gateway": {"extractPodLabels": "team"}}),
            "/gateway/extractPodLabels",
        ),
        (
            json!({"gateway": {"autoscaling": {"maxReplicas": -1}}}),
            "/gateway/autoscaling/maxReplicas",
        ),
        (
            json!({"gateway": {"autoscaling": {"cpuUtilization": 0}}}),
            "/gateway/autoscaling/cpuUtilization",
        ),
        (
            json!({"gateway": {"autoscaling": {"max": 3}}}),
            "/gateway/autoscaling",
        ),
        (json!({"unknownValue": true}), ""),
    ] {
        let result = helm("validate", &bad);
        let error = result["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(error.contains(field), "{error}");
    }
    assert!(helm("validate", &json!({"replicas": 3}))["error"].is_null());
    let enriched = json!({"gateway": {
        "extractPodLabels": ["team", "app.kubernetes.io/*", "*"],
        "autoscaling": {"maxReplicas": 5, "cpuUtilization": 80}
    }});
    assert!(helm("validate", &enriched)["error"].is_null());
}

#[test]
fn chart_crd_and_install_manifest_are_generated() {
    assert_eq!(
        std::fs::read_to_string(format!("{CHART}/crds/tracepipelines.yaml")).unwrap(),
        std::fs::read_to_string("manifests/crd/tracepipelines.yaml").unwrap(),
        "copy manifests/crd/tracepipelines.yaml into the chart's crds/"
    );
    let templates = helm("render", &json!({}));
    let mut install = std::fs::read_to_string("manifests/crd/tracepipelines.yaml").unwrap();
    for text in templates.as_object().unwrap().values() {
        let text = text.as_str().unwrap().trim();
        if !text.is_empty() {
            install.push_str("---\n");
            install.push_str(text.trim_start_matches("---").trim_start());
            install.push('\n');
        }
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write("manifests/install.yaml", &install).unwrap();
    }
    assert!(
        std::fs::read_to_string("manifests/install.yaml").unwrap_or_default() == install,
        "manifests/install.yaml is not the default render (UPDATE_GOLDEN=1 cargo test rewrites it)"
    );
}
