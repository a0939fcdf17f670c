//! The generated CRD (docs/reference/tracepipeline.md): checked-in copy without drift, structural
//! schema, CEL rules with the exact messages, and the Rust rules agreeing with the CEL rules on
//! generated pipelines.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use telemetry_manager::api;
use telemetry_manager::validation::{self, Cause, Context, Settings};

const CHECKED_IN: &str = "manifests/crd/tracepipelines.yaml";

fn generated_yaml() -> String {
    serde_saphyr::to_string(&api::crd()).unwrap()
}

#[test]
fn checked_in_crd_matches_generated() {
    let generated = generated_yaml();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap();
    assert!(
        checked_in == generated,
        "{CHECKED_IN} is out of date: run `cargo run -- crd > {CHECKED_IN}` (or UPDATE_GOLDEN=1 cargo test)"
    );
}

#[test]
fn crd_subcommand_prints_the_checked_in_crd() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        std::fs::read_to_string(CHECKED_IN).unwrap()
    );
}

#[test]
fn checked_in_crd_reads_back_as_a_crd() {
    let text = std::fs::read_to_string(CHECKED_IN).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(crd, api::crd());
}

#[test]
fn names_scope_versions_and_columns() {
    let crd = api::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("tracepipelines.telemetry.kyma-project.io")
    );
    let spec = &crd.spec;
    assert_eq!(spec.group, "telemetry.kyma-project.io");
    assert_eq!(spec.scope, "Cluster");
    assert_eq!(spec.names.kind, "TracePipeline");
    assert_eq!(spec.names.plural, "tracepipelines");
    assert_eq!(
        spec.names.categories.as_deref(),
        Some(
            &[
                "kyma-telemetry".to_string(),
                "kyma-telemetry-pipelines".to_string()
            ][..]
        )
    );
    assert!(
        spec.conversion
            .as_ref()
            .is_none_or(|c| c.strategy == "None")
    );
    let versions: Vec<(&str, bool, bool, Option<bool>)> = spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage, v.deprecated))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("v1beta1", true, true, None),
            ("v1alpha1", true, false, Some(true))
        ]
    );
    assert!(
        spec.versions[1]
            .deprecation_warning
            .as_deref()
            .unwrap()
            .contains("deprecated")
    );
    for version in &spec.versions {
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<(&str, &str)> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            vec![
                (
                    "Configuration Generated",
                    r#".status.conditions[?(@.type=="ConfigurationGenerated")].status"#
                ),
                (
                    "Gateway Healthy",
                    r#".status.conditions[?(@.type=="GatewayHealthy")].status"#
                ),
                (
                    "Flow Healthy",
                    r#".status.conditions[?(@.type=="TelemetryFlowHealthy")].status"#
                ),
                ("Age", ".metadata.creationTimestamp"),
            ]
        );
    }
}

fn version_schema(version: &str) -> JSONSchemaProps {
    api::crd()
        .spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .unwrap()
        .schema
        .unwrap()
        .open_api_v3_schema
        .unwrap()
}

/// Walk a schema node and its children with their paths.
fn walk<'a>(
    schema: &'a JSONSchemaProps,
    path: String,
    visit: &mut impl FnMut(&str, &'a JSONSchemaProps),
) {
    visit(&path, schema);
    for (name, property) in schema.properties.iter().flatten() {
        walk(property, format!("{path}.{name}"), visit);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        walk(items, format!("{path}[]"), visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
        walk(values, format!("{path}{{}}"), visit);
    }
}

/// The rules of a structural schema that the API server enforces on CRD creation, plus what
/// `kubectl explain` needs: every field typed, no references or combinators, no nullable, and a
/// description on every field of the spec.
#[test]
fn schemas_are_structural_and_explained() {
    for version in ["v1beta1", "v1alpha1"] {
        let root = version_schema(version);
        let mut problems = Vec::new();
        walk(&root, String::new(), &mut |path, node| {
            if node.type_.is_none() {
                problems.push(format!("{version}{path}: no type"));
            }
            if node.ref_path.is_some()
                || node.any_of.is_some()
                || node.one_of.is_some()
                || node.all_of.is_some()
                || node.not.is_some()
            {
                problems.push(format!("{version}{path}: $ref or combinator"));
            }
            if node.nullable.is_some() {
                problems.push(format!("{version}{path}: nullable"));
            }
            if node.properties.is_some() && node.additional_properties.is_some() {
                problems.push(format!(
                    "{version}{path}: properties and additionalProperties"
                ));
            }
            if path.starts_with(".spec")
                && !path.ends_with("[]")
                && !path.ends_with("{}")
                && node.description.as_deref().is_none_or(str::is_empty)
            {
                problems.push(format!("{version}{path}: no description"));
            }
            for required in node.required.iter().flatten() {
                if !node
                    .properties
                    .as_ref()
                    .is_some_and(|p| p.contains_key(required))
                {
                    problems.push(format!(
                        "{version}{path}: required {required} is not a property"
                    ));
                }
            }
        });
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

/// What the client-side validation of kubectl and Helm on Kubernetes 1.24 to 1.35, and a 1.24
/// API server, refuse in a CRD schema: a `null` anywhere (1.24 refuses a `null` enum value with
/// `unknown object type "nil"`), an enum value not of the node's declared type, and CEL rule
/// fields newer than 1.24 (it knows `rule` and `message`).
fn portability_problems(node: &Value, path: &str, problems: &mut Vec<String>) {
    match node {
        Value::Null => problems.push(format!("{path}: null")),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                portability_problems(item, &format!("{path}[{index}]"), problems);
            }
        }
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get("enum") {
                let declared = map.get("type").and_then(Value::as_str);
                for value in values {
                    let of_type = match declared {
                        Some("string") => value.is_string(),
                        Some("integer") => value.is_i64() || value.is_u64(),
                        Some("number") => value.is_number(),
                        Some("boolean") => value.is_boolean(),
                        _ => false,
                    };
                    if !of_type {
                        problems.push(format!("{path}.enum: {value} is not of type {declared:?}"));
                    }
                }
            }
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for key in rules
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|r| r.keys())
                {
                    if key != "rule" && key != "message" {
                        problems.push(format!(
                            "{path}.x-kubernetes-validations: {key} is newer than 1.24"
                        ));
                    }
                }
            }
            for (key, child) in map {
                portability_problems(child, &format!("{path}.{key}"), problems);
            }
        }
        _ => {}
    }
}

fn crd_schema_problems(text: &str, copy: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for document in serde_saphyr::from_multiple::<Value>(text).unwrap() {
        if document["kind"] == "CustomResourceDefinition" {
            for version in document["spec"]["versions"].as_array().unwrap() {
                let name = version["name"].as_str().unwrap();
                portability_problems(
                    &version["schema"]["openAPIV3Schema"],
                    &format!("{copy}: {name}"),
                    &mut problems,
                );
            }
        }
    }
    problems
}

/// Every installed copy of the CRD installs on Kubernetes 1.24 to 1.35.
#[test]
fn crd_copies_install_on_kubernetes_1_24() {
    for copy in [
        CHECKED_IN,
        "charts/telemetry-manager/crds/tracepipelines.yaml",
        "manifests/install.yaml",
    ] {
        let text = std::fs::read_to_string(copy).unwrap();
        assert!(text.contains("CustomResourceDefinition"), "{copy}");
        let problems = crd_schema_problems(&text, copy);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

/// The portability check fails on what it is there to catch.
#[test]
fn portability_check_catches_null_and_mistyped_enum_values() {
    let text = std::fs::read_to_string(CHECKED_IN).unwrap();
    let http = "                        - http\n";
    assert!(text.contains(http), "the CRD lists protocol http");
    let with_null = text.replacen(http, &format!("{http}                        - null\n"), 1);
    let with_number = text.replacen(http, &format!("{http}                        - 1\n"), 1);
    let with_expression = text.replacen(
        "message: Only one of 'value' or 'valueFrom' can be set",
        "messageExpression: \"'Only one'\"",
        1,
    );
    assert_ne!(with_expression, text);
    let found = |text: &str| crd_schema_problems(text, "x").join("\n");
    assert!(
        found(&with_null).contains(": null"),
        "{}",
        found(&with_null)
    );
    assert!(found(&with_null).contains("is not of type Some(\"string\")"));
    assert!(found(&with_number).contains("1 is not of type Some(\"string\")"));
    assert!(found(&with_expression).contains("messageExpression is newer than 1.24"));
}

/// Every CEL rule of docs/reference/tracepipeline.md#admission-rules with its exact message, at the
/// field it guards.
#[test]
fn cel_rules_carry_the_spec_messages() {
    let mut found = BTreeSet::new();
    walk(
        &version_schema("v1beta1"),
        String::new(),
        &mut |path, node| {
            for rule in node.x_kubernetes_validations.iter().flatten() {
                found.insert((path.to_string(), rule.message.clone().unwrap_or_default()));
            }
        },
    );
    let value_type_paths = [
        ".spec.output.otlp.endpoint",
        ".spec.output.otlp.authentication.basic.user",
        ".spec.output.otlp.authentication.basic.password",
        ".spec.output.otlp.authentication.oauth2.tokenURL",
        ".spec.output.otlp.authentication.oauth2.clientID",
        ".spec.output.otlp.authentication.oauth2.clientSecret",
        ".spec.output.otlp.headers[]",
        ".spec.output.otlp.tls.ca",
        ".spec.output.otlp.tls.cert",
        ".spec.output.otlp.tls.key",
    ];
    let mut expected: BTreeSet<(String, String)> = value_type_paths
        .iter()
        .map(|p| {
            (
                p.to_string(),
                "Only one of 'value' or 'valueFrom' can be set".to_string(),
            )
        })
        .collect();
    for (path, label) in [
        (".spec.output.otlp.endpoint", "endpoint"),
        (".spec.output.otlp.authentication.basic.user", "user"),
        (
            ".spec.output.otlp.authentication.basic.password",
            "password",
        ),
        (
            ".spec.output.otlp.authentication.oauth2.tokenURL",
            "tokenURL",
        ),
        (
            ".spec.output.otlp.authentication.oauth2.clientID",
            "clientID",
        ),
        (
            ".spec.output.otlp.authentication.oauth2.clientSecret",
            "clientSecret",
        ),
        (".spec.output.otlp.headers[]", "headers"),
    ] {
        expected.insert((
            path.to_string(),
            format!("'{label}' must have 'value' or 'valueFrom' set"),
        ));
    }
    for (path, message) in [
        (
            ".spec.output.otlp",
            "Path is only available with HTTP protocol",
        ),
        (
            ".spec.output.otlp",
            "OAuth2 authentication requires TLS when using gRPC protocol",
        ),
        (
            ".spec.output.otlp.authentication",
            "Only one authentication method can be specified",
        ),
        (
            ".spec.output.otlp.authentication.oauth2.tokenURL",
            "'tokenURL' must be a valid URL",
        ),
        (
            ".spec.output.otlp.tls",
            "Can define either both 'cert' and 'key', or neither",
        ),
    ] {
        expected.insert((path.to_string(), message.to_string()));
    }
    assert_eq!(found, expected);
}

// ---- The CEL oracle ------------------------------------------------------------------------

/// The CEL rule failures a real CEL evaluator finds for `object` against the CRD's own rules.
fn cel_failures(object: &Value) -> BTreeSet<(String, String)> {
    let schema = serde_json::to_value(version_schema("v1beta1")).unwrap();
    match kube::core::cel::Validator::new().validate(&schema, object, None) {
        Ok(()) => BTreeSet::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                (
                    e.field_path.trim_start_matches('.').to_string(),
                    e.message.clone(),
                )
            })
            .collect(),
    }
}

/// The CEL-equivalent failures of the Rust engine (schema rules reported on an object).
fn rust_cel_failures(object: &Value) -> BTreeSet<(String, String)> {
    let parsed = validation::parse(object).expect("generated objects are structurally valid");
    let ctx = Context {
        settings: Settings::default(),
        now: 0,
        cluster: None,
    };
    validation::validate(&parsed, &ctx)
        .errors
        .into_iter()
        .filter(|e| e.cause == Cause::Schema && e.value.as_deref() == Some("\"object\""))
        .map(|e| (e.path, e.detail))
        .collect()
}

fn value_type() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({"value": "backend.example.com:4317"})),
        Just(json!({"value": ""})),
        Just(json!({"valueFrom": {"secretKeyRef": {"name": "s", "namespace": "n", "key": "k"}}})),
        Just(
            json!({"value": "v", "valueFrom": {"secretKeyRef": {"name": "s", "namespace": "n", "key": "k"}}})
        ),
    ]
}

fn token_url() -> impl Strategy<Value = Value> {
    prop_oneof![
        value_type(),
        Just(json!({"value": "https://idp.example.com/oauth/token"})),
        Just(json!({"value": "not a url"})),
        Just(json!({"value": "/relative/path"})),
    ]
}

fn optional<T: std::fmt::Debug + Clone + 'static>(
    strategy: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![Just(None), strategy.prop_map(Some)]
}

fn otlp_output() -> impl Strategy<Value = Value> {
    let basic = (value_type(), value_type())
        .prop_map(|(user, password)| json!({"user": user, "password": password}));
    let oauth2 = (token_url(), value_type(), value_type())
        .prop_map(|(t, i, s)| json!({"tokenURL": t, "clientID": i, "clientSecret": s}));
    let header = (value_type(), optional(Just("Bearer"))).prop_map(|(mut v, prefix)| {
        v["name"] = json!("X-Header");
        if let Some(prefix) = prefix {
            v["prefix"] = json!(prefix);
        }
        v
    });
    let tls = (
        optional(any::<bool>()),
        optional(value_type()),
        optional(value_type()),
        optional(value_type()),
    );
    (
        optional(prop_oneof![Just("grpc"), Just("http")]),
        value_type(),
        optional(prop_oneof![Just(""), Just("/v1/traces")]),
        (optional(basic), optional(oauth2)),
        proptest::collection::vec(header, 0..3),
        optional(tls),
    )
        .prop_map(
            |(protocol, endpoint, path, (basic, oauth2), headers, tls)| {
                let mut otlp = json!({"endpoint": endpoint});
                if let Some(protocol) = protocol {
                    otlp["protocol"] = json!(protocol);
                }
                if let Some(path) = path {
                    otlp["path"] = json!(path);
                }
                if basic.is_some() || oauth2.is_some() {
                    let mut auth = json!({});
                    if let Some(basic) = basic {
                        auth["basic"] = basic;
                    }
                    if let Some(oauth2) = oauth2 {
                        auth["oauth2"] = oauth2;
                    }
                    otlp["authentication"] = auth;
                }
                if !headers.is_empty() {
                    otlp["headers"] = json!(headers);
                }
                if let Some((insecure, ca, cert, key)) = tls {
                    let mut tls = json!({});
                    for (name, value) in [("ca", ca), ("cert", cert), ("key", key)] {
                        if let Some(value) = value {
                            tls[name] = value;
                        }
                    }
                    if let Some(insecure) = insecure {
                        tls["insecure"] = json!(insecure);
                    }
                    otlp["tls"] = tls;
                }
                otlp
            },
        )
}

/// The oracle is not vacuous: it reports each kind of failure at the guarded field.
#[test]
fn cel_oracle_reports_failures() {
    let object = json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "TracePipeline",
        "metadata": {"name": "p"},
        "spec": {"output": {"otlp": {
            "endpoint": {},
            "path": "/v1/traces",
            "authentication": {"oauth2": {"tokenURL": {"value": "not a url"}, "clientID": {"value": "i"}, "clientSecret": {"value": "s"}}},
            "tls": {"insecure": true, "cert": {"value": "c"}}
        }}}
    });
    let expected: BTreeSet<(String, String)> = [
        (
            "spec.output.otlp",
            "Path is only available with HTTP protocol",
        ),
        (
            "spec.output.otlp",
            "OAuth2 authentication requires TLS when using gRPC protocol",
        ),
        (
            "spec.output.otlp.endpoint",
            "'endpoint' must have 'value' or 'valueFrom' set",
        ),
        (
            "spec.output.otlp.authentication.oauth2.tokenURL",
            "'tokenURL' must be a valid URL",
        ),
        (
            "spec.output.otlp.tls",
            "Can define either both 'cert' and 'key', or neither",
        ),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(cel_failures(&object), expected);
    assert_eq!(rust_cel_failures(&object), expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The Rust rules and the CRD's CEL rules, run by a real CEL evaluator, agree on every
    /// generated pipeline: same failures, same fields, same messages.
    #[test]
    fn rust_rules_agree_with_cel_rules(otlp in otlp_output()) {
        let object = json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "TracePipeline",
            "metadata": {"name": "p"},
            "spec": {"output": {"otlp": otlp}}
        });
        prop_assert_eq!(rust_cel_failures(&object), cel_failures(&object));
        prop_assert_eq!(validation::parse(&object), validation::parse_json(&object.to_string()));
    }
}
