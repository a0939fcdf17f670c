//! The gateway's desired state (docs/reference/gateway.md): golden files of `render` for the
//! scenarios of the reconciler issue, and the rules that goldens cannot show at a glance.

mod common;

use std::collections::BTreeMap;

use common::{ca_and_client, unix};
use serde_json::Value;
use telemetry_manager::cli::input;
use telemetry_manager::cli::render::render_documents;
use telemetry_manager::gateway::{self, GatewaySettings, PipelineValues, ReconcilablePipeline};

fn settings() -> GatewaySettings {
    GatewaySettings {
        namespace: "kyma-system".into(),
        manager_namespace: "kyma-system".into(),
        collector_image: gateway::DEFAULT_COLLECTOR_IMAGE.into(),
        replicas: 2,
        cluster_name: None,
        priority_class_name: None,
        istio: false,
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
    let path = format!("tests/golden/{name}.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
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

#[test]
fn golden_cluster_name() {
    let settings = GatewaySettings {
        cluster_name: Some("prod-eu".into()),
        ..settings()
    };
    let out = rendered(
        &pipeline("backend", "endpoint:\n  value: backend.example.com:4317"),
        &settings,
    );
    golden("cluster-name", &out, false);
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
