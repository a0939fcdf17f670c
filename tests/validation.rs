//! The validation engine against the admission rules of
//! docs/reference/tracepipeline.md#admission-rules (schema, CEL and webhook rules), with positive
//! and negative cases for every rule.

use crate::common;

use std::collections::BTreeMap;

use common::{ca_and_client, from_secret, pipeline, self_signed, unix};
use serde_json::{Value, json};
use telemetry_manager::validation::{
    self, Cause, ClusterState, Context, FieldErrorKind, Report, ResolvedSecrets, SecretLookup,
    SecretRefPolicy, Settings, WarningKind,
};

/// Validation "today": 2030-06-01.
fn today() -> i64 {
    unix(2030, 6, 1)
}

/// One validation run: the object plus the cluster it is checked against.
struct Case {
    object: Value,
    secrets: ResolvedSecrets,
    settings: Settings,
    other_pipelines: Vec<String>,
    existing_pipelines: Option<usize>,
    cluster_checks: bool,
}

impl Case {
    fn new(object: Value) -> Self {
        Case {
            object,
            secrets: ResolvedSecrets::default(),
            settings: Settings::default(),
            other_pipelines: vec![],
            existing_pipelines: None,
            cluster_checks: true,
        }
    }

    fn secret(mut self, namespace: &str, name: &str, data: &[(&str, &str)]) -> Self {
        let data: BTreeMap<String, Vec<u8>> = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        self.secrets
            .insert(namespace, name, SecretLookup::Found(data));
        self
    }

    fn lookup(mut self, namespace: &str, name: &str, lookup: SecretLookup) -> Self {
        self.secrets.insert(namespace, name, lookup);
        self
    }

    fn run(&self) -> Report {
        let parsed = match validation::parse(&self.object) {
            Ok(parsed) => parsed,
            Err(report) => return report,
        };
        let ctx = Context {
            settings: self.settings,
            now: today(),
            cluster: self.cluster_checks.then_some(ClusterState {
                secrets: &self.secrets,
                other_pipelines: &self.other_pipelines,
                existing_pipelines: self.existing_pipelines,
            }),
        };
        validation::validate(&parsed, &ctx)
    }
}

fn report(object: Value) -> Report {
    Case::new(object).run()
}

/// The errors as printed lines, for readable assertions.
fn lines(report: &Report) -> Vec<String> {
    report.errors.iter().map(ToString::to_string).collect()
}

fn assert_valid(report: &Report) {
    assert!(
        report.is_valid(),
        "expected valid, got {:#?}",
        lines(report)
    );
}

fn assert_single_error(report: &Report, expected: &str) {
    assert_eq!(lines(report), vec![expected.to_string()]);
}

fn grpc(endpoint: &str) -> Value {
    json!({"endpoint": {"value": endpoint}})
}

// ---- schema: structure --------------------------------------------------------------

#[test]
fn minimal_pipelines_of_both_versions_are_valid() {
    assert_valid(&report(pipeline("p", grpc("backend:4317"))));
    let mut alpha = pipeline("p", grpc("backend:4317"));
    alpha["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    assert_valid(&report(alpha));
}

#[test]
fn output_otlp_and_endpoint_are_required() {
    let mut object = pipeline("p", grpc("b:4317"));
    object["spec"] = json!({});
    assert_single_error(&report(object.clone()), "spec.output: Required value");
    object["spec"] = json!({"output": {}});
    assert_single_error(&report(object.clone()), "spec.output.otlp: Required value");
    object["spec"] = json!({"output": {"otlp": {"protocol": "grpc"}}});
    assert_single_error(
        &report(object.clone()),
        "spec.output.otlp.endpoint: Required value",
    );
    object.as_object_mut().unwrap().remove("spec");
    assert_single_error(&report(object), "spec: Required value");
}

#[test]
fn protocol_is_grpc_or_http() {
    for protocol in ["grpc", "http"] {
        let endpoint = if protocol == "grpc" {
            "b:4317"
        } else {
            "https://b"
        };
        assert_valid(&report(pipeline(
            "p",
            json!({"protocol": protocol, "endpoint": {"value": endpoint}}),
        )));
    }
    let r = report(pipeline(
        "p",
        json!({"protocol": "grpcs", "endpoint": {"value": "b:4317"}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.protocol: Unsupported value: "grpcs": supported values: "grpc", "http""#,
    );
    assert!(matches!(
        r.errors[0].kind,
        FieldErrorKind::NotSupported { .. }
    ));
}

#[test]
fn compression_is_an_enum_and_only_in_v1beta1() {
    for compression in ["none", "gzip", "snappy", "zstd"] {
        assert_valid(&report(pipeline(
            "p",
            json!({"endpoint": {"value": "b:4317"}, "compression": compression}),
        )));
    }
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "compression": "brotli"}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.compression: Unsupported value: "brotli": supported values: "none", "gzip", "snappy", "zstd""#,
    );
    let mut alpha = pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "compression": "gzip"}),
    );
    alpha["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    let r = report(alpha);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].path, "spec.output.otlp.compression");
    assert_eq!(r.errors[0].kind, FieldErrorKind::UnknownField);
}

#[test]
fn unknown_fields_are_named_with_a_suggestion() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "endpoitn": {"value": "x"}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.endpoitn: Unknown field: field not declared in schema; did you mean "endpoint"?"#,
    );
    let mut object = pipeline("p", grpc("b:4317"));
    object["spec"]["zzz"] = json!(1);
    let r = report(object);
    assert_eq!(
        lines(&r),
        vec![
            "spec.zzz: Unknown field: field not declared in schema; declared fields are filter | output | transform"
        ]
    );
}

#[test]
fn wrong_types_are_reported_like_the_api_server() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {"insecure": "yes"}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.tls.insecure: Invalid value: "string": spec.output.otlp.tls.insecure in body must be of type boolean: "string""#,
    );
    let r = report(pipeline("p", json!({"endpoint": {"value": 4317}})));
    assert_eq!(r.errors[0].path, "spec.output.otlp.endpoint.value");
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": {"name": "x"}}),
    ));
    assert_eq!(r.errors[0].path, "spec.output.otlp.headers");
    assert_eq!(
        r.errors[0].kind,
        FieldErrorKind::TypeInvalid { expected: "array" }
    );
    let r = report(json!(["not", "an", "object"]));
    assert_eq!(r.errors[0].path, "kind");
}

#[test]
fn nulls_are_pruned_like_the_api_server_does() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317", "valueFrom": null}, "tls": null}),
    ));
    assert_valid(&r);
    let r = report(pipeline("p", json!({"endpoint": null})));
    assert_single_error(&r, "spec.output.otlp.endpoint: Required value");
    // Lists and maps too: a null is an empty list or map, not an internal error.
    let mut object = pipeline(
        "p",
        json!({"protocol": "http", "endpoint": {"value": "https://b"}, "headers": null,
               "authentication": {"oauth2": {"tokenURL": {"value": "https://t"}, "clientID": {"value": "c"},
                                             "clientSecret": {"value": "s"}, "scopes": null, "params": null}}}),
    );
    object["spec"]["transform"] = Value::Null;
    object["spec"]["filter"] = Value::Null;
    assert_valid(&report(object.clone()));
    assert_eq!(
        validation::parse(&object),
        validation::parse_json(&object.to_string())
    );
}

#[test]
fn enums_are_strings_only() {
    let r = report(pipeline(
        "p",
        json!({"protocol": {"grpc": null}, "endpoint": {"value": "b:4317"}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.protocol: Invalid value: "object": spec.output.otlp.protocol in body must be of type string: "object""#,
    );
}

#[test]
fn wrong_kind_version_and_missing_name() {
    let mut object = pipeline("p", grpc("b:4317"));
    object["kind"] = json!("LogPipeline");
    assert_single_error(
        &report(object),
        r#"kind: Unsupported value: "LogPipeline": supported values: "TracePipeline""#,
    );
    let mut object = pipeline("p", grpc("b:4317"));
    object["apiVersion"] = json!("telemetry.kyma-project.io/v1");
    let r = report(object);
    assert_eq!(r.errors[0].path, "apiVersion");
    let mut object = pipeline("p", grpc("b:4317"));
    object["metadata"] = json!({});
    assert_eq!(
        lines(&report(object)),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn secret_key_ref_fields_are_required_and_non_empty() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"valueFrom": {"secretKeyRef": {"namespace": "", "key": "k"}}}}),
    ));
    assert_eq!(
        lines(&r),
        vec![
            "spec.output.otlp.endpoint.valueFrom.secretKeyRef.name: Required value",
            r#"spec.output.otlp.endpoint.valueFrom.secretKeyRef.namespace: Invalid value: "": spec.output.otlp.endpoint.valueFrom.secretKeyRef.namespace in body should be at least 1 chars long"#,
        ]
    );
    let r = report(pipeline("p", json!({"endpoint": {"valueFrom": {}}})));
    assert_single_error(
        &r,
        "spec.output.otlp.endpoint.valueFrom.secretKeyRef: Required value",
    );
}

#[test]
fn header_names_are_required_and_non_empty() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": [{"value": "v"}]}),
    ));
    assert_single_error(&r, "spec.output.otlp.headers[0].name: Required value");
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": [{"name": "", "value": "v"}]}),
    ));
    assert_eq!(r.errors[0].path, "spec.output.otlp.headers[0].name");
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": [{"name": "X-A", "prefix": "Bearer", "value": "v"}]}),
    ));
    assert_valid(&r);
}

// ---- CEL rules --------------------------------------------------------------

#[test]
fn value_and_value_from_are_exclusive_everywhere() {
    let both = json!({"value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "namespace": "n", "key": "k"}}});
    let r = Case::new(pipeline("p", json!({"endpoint": both.clone()}))).run();
    assert!(
        lines(&r).contains(&r#"spec.output.otlp.endpoint: Invalid value: "object": Only one of 'value' or 'valueFrom' can be set"#.to_string()),
        "{:?}",
        lines(&r)
    );
    let mut header = both.clone();
    header["name"] = json!("X");
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": [header]}),
    ));
    assert_eq!(r.errors[0].path, "spec.output.otlp.headers[0]");
    assert_eq!(
        r.errors[0].detail,
        "Only one of 'value' or 'valueFrom' can be set"
    );
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {"ca": both}}),
    ));
    assert_eq!(r.errors[0].path, "spec.output.otlp.tls.ca");
}

#[test]
fn required_values_must_have_value_or_value_from() {
    let r = report(pipeline("p", json!({"endpoint": {}})));
    assert_single_error(
        &r,
        r#"spec.output.otlp.endpoint: Invalid value: "object": 'endpoint' must have 'value' or 'valueFrom' set"#,
    );

    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "authentication": {"basic": {"user": {}, "password": {"value": "pw"}}}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.authentication.basic.user: Invalid value: "object": 'user' must have 'value' or 'valueFrom' set"#,
    );

    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "https://b:4317"}, "authentication": {"oauth2": {
            "tokenURL": {"value": "https://idp/token"}, "clientID": {"value": "id"}, "clientSecret": {}}}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.authentication.oauth2.clientSecret: Invalid value: "object": 'clientSecret' must have 'value' or 'valueFrom' set"#,
    );

    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "headers": [{"name": "X"}]}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.headers[0]: Invalid value: "object": 'headers' must have 'value' or 'valueFrom' set"#,
    );
}

#[test]
fn path_only_with_http() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "path": "/v1/traces"}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp: Invalid value: "object": Path is only available with HTTP protocol"#,
    );
    let r = report(pipeline(
        "p",
        json!({"protocol": "grpc", "endpoint": {"value": "b:4317"}, "path": "/x"}),
    ));
    assert_eq!(
        r.errors[0].detail,
        "Path is only available with HTTP protocol"
    );
    assert_valid(&report(pipeline(
        "p",
        json!({"protocol": "grpc", "endpoint": {"value": "b:4317"}, "path": ""}),
    )));
    assert_valid(&report(pipeline(
        "p",
        json!({"protocol": "http", "endpoint": {"value": "https://b"}, "path": "/x"}),
    )));
}

fn oauth2() -> Value {
    json!({"tokenURL": {"value": "https://idp.example.com/token"}, "clientID": {"value": "id"}, "clientSecret": {"value": "s"}})
}

#[test]
fn only_one_authentication_method() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "https://b:4317"}, "authentication": {
            "basic": {"user": {"value": "u"}, "password": {"value": "p"}}, "oauth2": oauth2()}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.authentication: Invalid value: "object": Only one authentication method can be specified"#,
    );
    assert_valid(&report(pipeline(
        "p",
        json!({"endpoint": {"value": "https://b:4317"}, "authentication": {"oauth2": oauth2()}}),
    )));
}

#[test]
fn oauth2_with_grpc_requires_tls() {
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "authentication": {"oauth2": oauth2()}, "tls": {"insecure": true}}),
    ));
    assert!(lines(&r).contains(
        &r#"spec.output.otlp: Invalid value: "object": OAuth2 authentication requires TLS when using gRPC protocol"#.to_string()
    ));
    // Over HTTP the rule does not apply, and TLS on gRPC is fine.
    assert_valid(&report(pipeline(
        "p",
        json!({"protocol": "http", "endpoint": {"value": "https://b"}, "authentication": {"oauth2": oauth2()}, "tls": {"insecure": true}}),
    )));
    assert_valid(&report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "authentication": {"oauth2": oauth2()}, "tls": {"insecure": false}}),
    )));
}

#[test]
fn token_url_must_be_a_url_when_given_inline() {
    let mut auth = oauth2();
    auth["tokenURL"] = json!({"value": "not a url"});
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "https://b:4317"}, "authentication": {"oauth2": auth}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.authentication.oauth2.tokenURL: Invalid value: "object": 'tokenURL' must be a valid URL"#,
    );
    let mut auth = oauth2();
    auth["tokenURL"] = from_secret("ns", "idp", "url");
    let case = Case::new(pipeline(
        "p",
        json!({"endpoint": {"value": "https://b:4317"}, "authentication": {"oauth2": auth}}),
    ))
    .secret("ns", "idp", &[("url", "https://idp/token")]);
    assert_valid(&case.run());
}

#[test]
fn cert_and_key_come_together() {
    let (_, client) = ca_and_client((2040, 1, 1));
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {"cert": {"value": client.cert}}}),
    ));
    assert_single_error(
        &r,
        r#"spec.output.otlp.tls: Invalid value: "object": Can define either both 'cert' and 'key', or neither"#,
    );
    let r = report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {"key": {"value": client.key}}}),
    ));
    assert_eq!(
        r.errors[0].detail,
        "Can define either both 'cert' and 'key', or neither"
    );
    assert_valid(&report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {"cert": {"value": client.cert}, "key": {"value": client.key}}}),
    )));
}

// ---- endpoints ------------------------------------------------

#[test]
fn endpoint_rules_apply_to_inline_values() {
    let r = report(pipeline("p", grpc("https://foo.bar:4317/")));
    assert_single_error(
        &r,
        r#"spec.output.otlp.endpoint: Invalid value: "https://foo.bar:4317/": OTLP output endpoint invalid: gRPC endpoints cannot contain paths; remove the path (even a trailing '/'), or use protocol http"#,
    );
    assert_eq!(r.errors[0].cause, Cause::EndpointInvalid);
    let r = report(pipeline("p", json!({"endpoint": {"value": ""}})));
    assert!(
        r.errors[0]
            .detail
            .starts_with("OTLP output endpoint invalid: failed to resolve value")
    );
}

#[test]
fn endpoint_rules_apply_to_secret_values_without_revealing_them() {
    let case = Case::new(pipeline(
        "p",
        json!({"endpoint": from_secret("ns", "backend", "endpoint")}),
    ))
    .secret(
        "ns",
        "backend",
        &[("endpoint", "secret-host.internal:80:80")],
    );
    let r = case.run();
    assert_single_error(
        &r,
        "spec.output.otlp.endpoint: Invalid value: OTLP output endpoint invalid: too many colons; use host:port, and brackets around IPv6 addresses ([2001:db8::1]:4317)",
    );
    assert!(
        !format!("{r:?}").contains("secret-host"),
        "a Secret value leaked into the report"
    );

    let case = Case::new(pipeline(
        "p",
        json!({"endpoint": from_secret("ns", "backend", "endpoint")}),
    ))
    .secret(
        "ns",
        "backend",
        &[("endpoint", "secret-host.internal:4317")],
    );
    assert_valid(&case.run());
}

// ---- TLS material -------------------------------------------------------

fn tls_case(tls: Value) -> Report {
    report(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": tls}),
    ))
}

#[test]
fn valid_mtls_material_inline_and_from_secrets() {
    let (ca, client) = ca_and_client((2040, 1, 1));
    assert_valid(&tls_case(
        json!({"ca": {"value": ca.cert}, "cert": {"value": client.cert}, "key": {"value": client.key}}),
    ));
    let case = Case::new(pipeline(
        "p",
        json!({"endpoint": {"value": "b:4317"}, "tls": {
            "ca": from_secret("ns", "tls", "ca.crt"), "cert": from_secret("ns", "tls", "tls.crt"), "key": from_secret("ns", "tls", "tls.key")}}),
    ))
    .secret("ns", "tls", &[("ca.crt", &ca.cert), ("tls.crt", &client.cert), ("tls.key", &client.key)]);
    assert_valid(&case.run());
}

#[test]
fn pem_with_literal_newlines_is_accepted() {
    let (ca, client) = ca_and_client((2040, 1, 1));
    let flat = |pem: &str| pem.replace('\n', "\\n");
    assert_valid(&tls_case(
        json!({"ca": {"value": flat(&ca.cert)}, "cert": {"value": flat(&client.cert)}, "key": {"value": flat(&client.key)}}),
    ));
}

#[test]
fn garbage_pem_is_rejected() {
    let r = tls_case(json!({"ca": {"value": "not a certificate"}}));
    assert_single_error(
        &r,
        "spec.output.otlp.tls.ca: Invalid value: TLS configuration invalid: no PEM certificate found; expected a '-----BEGIN CERTIFICATE-----' block",
    );
    assert_eq!(r.errors[0].cause, Cause::TlsConfigurationInvalid);
    let r = tls_case(
        json!({"ca": {"value": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}),
    );
    assert_eq!(r.errors[0].path, "spec.output.otlp.tls.ca");
    assert!(
        r.errors[0].detail.contains("cannot be parsed"),
        "{}",
        r.errors[0].detail
    );
    let (_, client) = ca_and_client((2040, 1, 1));
    let r = tls_case(json!({"cert": {"value": client.cert}, "key": {"value": "garbage"}}));
    assert_eq!(r.errors[0].path, "spec.output.otlp.tls.key");
    assert!(r.errors[0].detail.contains("no PEM private key found"));
}

#[test]
fn ca_must_be_a_ca() {
    let leaf = self_signed("leaf.example.com", (2040, 1, 1), false);
    let r = tls_case(json!({"ca": {"value": leaf.cert}}));
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].detail.contains("is not a CA certificate"),
        "{}",
        r.errors[0].detail
    );
}

#[test]
fn key_must_match_the_certificate() {
    let (_, client) = ca_and_client((2040, 1, 1));
    let other = self_signed("other", (2040, 1, 1), false);
    let r = tls_case(json!({"cert": {"value": client.cert}, "key": {"value": other.key}}));
    assert_single_error(
        &r,
        "spec.output.otlp.tls.key: Invalid value: TLS configuration invalid: the private key does not match the client certificate; give the key the certificate was issued for",
    );
}

#[test]
fn expired_certificates_are_rejected_and_expiring_ones_warned_about() {
    let (ca, client) = ca_and_client((2030, 5, 2));
    let r = tls_case(
        json!({"ca": {"value": ca.cert}, "cert": {"value": client.cert}, "key": {"value": client.key}}),
    );
    assert_eq!(
        lines(&r),
        vec![
            "spec.output.otlp.tls.ca: Invalid value: TLS certificate expired on 2030-05-02; renew the certificate",
            "spec.output.otlp.tls.cert: Invalid value: TLS certificate expired on 2030-05-02; renew the certificate",
        ]
    );
    assert!(
        r.errors
            .iter()
            .all(|e| e.cause == Cause::TlsCertificateExpired)
    );

    let (ca, client) = ca_and_client((2030, 6, 10));
    let r = tls_case(
        json!({"ca": {"value": ca.cert}, "cert": {"value": client.cert}, "key": {"value": client.key}}),
    );
    assert_valid(&r);
    assert_eq!(r.warnings.len(), 2);
    assert!(
        r.warnings[1].message.contains("valid until 2030-06-10"),
        "{}",
        r.warnings[1].message
    );
    assert_eq!(
        r.warnings[1].kind,
        WarningKind::CertificateExpiresSoon {
            not_after: unix(2030, 6, 10)
        }
    );

    // 15 days left: no warning.
    let (ca, _) = ca_and_client((2030, 6, 16));
    let r = tls_case(json!({"ca": {"value": ca.cert}}));
    assert_valid(&r);
    assert!(r.warnings.is_empty());
}

#[test]
fn insecure_skip_verify_is_a_warning() {
    let r = tls_case(json!({"insecureSkipVerify": true}));
    assert_valid(&r);
    assert_eq!(r.warnings[0].kind, WarningKind::InsecureSkipVerify);
    assert!(
        tls_case(json!({"insecureSkipVerify": false}))
            .warnings
            .is_empty()
    );
}

// ---- Secret references --------------------------------------------------

fn secret_endpoint_pipeline() -> Value {
    pipeline(
        "p",
        json!({"endpoint": from_secret("observability", "backend", "endpoint")}),
    )
}

#[test]
fn missing_secret_is_rejected_naming_field_secret_namespace_and_key() {
    let case = Case::new(secret_endpoint_pipeline()).lookup(
        "observability",
        "backend",
        SecretLookup::NotFound,
    );
    let r = case.run();
    assert_single_error(
        &r,
        r#"spec.output.otlp.endpoint.valueFrom.secretKeyRef: Not found: Secret "backend" in namespace "observability" does not exist; create it or fix the reference"#,
    );
    assert_eq!(r.errors[0].cause, Cause::SecretMissing);
}

#[test]
fn missing_secret_is_a_warning_under_the_warn_policy() {
    let mut case = Case::new(secret_endpoint_pipeline()).lookup(
        "observability",
        "backend",
        SecretLookup::NotFound,
    );
    case.settings.secret_ref_policy = SecretRefPolicy::Warn;
    let r = case.run();
    assert_valid(&r);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].kind, WarningKind::SecretMissing);
    assert!(
        r.warnings[0]
            .message
            .contains(r#"Secret "backend" in namespace "observability" does not exist"#)
    );
}

#[test]
fn missing_key_is_always_rejected() {
    for policy in [SecretRefPolicy::Reject, SecretRefPolicy::Warn] {
        let mut case = Case::new(secret_endpoint_pipeline()).secret(
            "observability",
            "backend",
            &[("other", "x")],
        );
        case.settings.secret_ref_policy = policy;
        let r = case.run();
        assert_single_error(
            &r,
            r#"spec.output.otlp.endpoint.valueFrom.secretKeyRef: Not found: Secret "backend" in namespace "observability" has no key "endpoint"; add the key to the Secret or fix the reference"#,
        );
    }
}

#[test]
fn api_errors_are_clear_denials() {
    let case = Case::new(secret_endpoint_pipeline()).lookup(
        "observability",
        "backend",
        SecretLookup::Failed("the API server did not answer within 10s".to_string()),
    );
    let r = case.run();
    assert_single_error(
        &r,
        r#"spec.output.otlp.endpoint.valueFrom.secretKeyRef: Internal error: could not read Secret "backend" in namespace "observability": the API server did not answer within 10s; try again"#,
    );
    assert_eq!(r.errors[0].cause, Cause::Lookup);
}

#[test]
fn non_utf8_secret_values_are_rejected() {
    let mut case = Case::new(secret_endpoint_pipeline());
    case.secrets.insert(
        "observability",
        "backend",
        SecretLookup::Found(BTreeMap::from([("endpoint".to_string(), vec![0xff, 0xfe])])),
    );
    let r = case.run();
    assert_eq!(r.errors[0].cause, Cause::SecretValueInvalid);
}

#[test]
fn cluster_checks_are_skipped_when_spec_did_not_change() {
    let mut case = Case::new(secret_endpoint_pipeline());
    case.cluster_checks = false;
    case.existing_pipelines = Some(100);
    assert_valid(&case.run());
    // Schema rules still apply.
    let mut case = Case::new(pipeline("p", json!({"endpoint": {}})));
    case.cluster_checks = false;
    assert!(!case.run().is_valid());
}

#[test]
fn secret_refs_lists_every_reference() {
    let object = pipeline(
        "p",
        json!({"endpoint": from_secret("a", "s1", "e"), "headers": [{"name": "h", "valueFrom": {"secretKeyRef": {"namespace": "b", "name": "s2", "key": "h"}}}],
               "authentication": {"basic": {"user": from_secret("a", "s1", "u"), "password": {"value": "p"}}}}),
    );
    let parsed = validation::parse(&object).unwrap();
    let refs: Vec<(String, String, String)> = validation::secret_refs(&parsed.spec)
        .into_iter()
        .map(|r| (r.namespace.clone(), r.name.clone(), r.key.clone()))
        .collect();
    assert_eq!(
        refs,
        vec![
            ("a".into(), "s1".into(), "e".into()),
            ("a".into(), "s1".into(), "u".into()),
            ("b".into(), "s2".into(), "h".into())
        ]
    );
}

// ---- pipeline count and names ---------------------------------------------

#[test]
fn pipeline_count_limit_applies_to_create() {
    let mut case = Case::new(pipeline("p", grpc("b:4317")));
    case.existing_pipelines = Some(5);
    let r = case.run();
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].to_string().starts_with(
            "Forbidden: Maximum pipeline count limit exceeded: 5 TracePipelines exist"
        ),
        "{}",
        r.errors[0]
    );
    assert_eq!(r.errors[0].cause, Cause::PipelineLimit);
    case.existing_pipelines = Some(4);
    assert_valid(&case.run());
    case.existing_pipelines = Some(50);
    case.settings.max_pipelines = 0;
    assert_valid(&case.run());
}

#[test]
fn names_that_map_to_the_same_env_suffix_collide() {
    let mut case = Case::new(pipeline("a.b", grpc("b:4317")));
    case.other_pipelines = vec!["x".into(), "a-b".into()];
    let r = case.run();
    assert_single_error(
        &r,
        r#"metadata.name: Duplicate value: "a.b": collides with TracePipeline "a-b": both map to the environment-variable suffix A_B of the gateway; choose a name that differs in more than '.' and '-'"#,
    );
    case.other_pipelines = vec!["a.b".into(), "ab".into()];
    assert_valid(&case.run());
}

// ---- Warnings and messages ----------------------------------------------------------------

#[test]
fn v1alpha1_is_deprecated() {
    let mut object = pipeline("p", grpc("b:4317"));
    object["apiVersion"] = json!("telemetry.kyma-project.io/v1alpha1");
    let r = report(object);
    assert_eq!(r.warnings[0].kind, WarningKind::DeprecatedVersion);
}

#[test]
fn invalid_message_reads_like_the_api_server() {
    let r = report(pipeline("p", json!({"endpoint": {}})));
    assert_eq!(
        r.invalid_message("p"),
        r#"tracepipelines.telemetry.kyma-project.io "p" is invalid: spec.output.otlp.endpoint: Invalid value: "object": 'endpoint' must have 'value' or 'valueFrom' set"#
    );
    let r = report(pipeline(
        "p",
        json!({"protocol": "x", "endpoint": {}, "path": 1}),
    ));
    assert!(
        r.invalid_message("p")
            .contains(": [spec.output.otlp.path: "),
        "{}",
        r.invalid_message("p")
    );
}

// ---- OTTL size -------------------------------------------------------------------------

/// A valid statement of exactly `bytes` bytes: a string literal padded to length.
fn statement_of(bytes: usize) -> String {
    let frame = "set(span.attributes[\"note\"], \"\")".len();
    format!(
        "set(span.attributes[\"note\"], \"{}\")",
        "x".repeat(bytes - frame)
    )
}

fn with_ottl(transform: Value, filter: Value) -> Value {
    let mut object = pipeline("p", grpc("b:4317"));
    object["spec"]["transform"] = transform;
    object["spec"]["filter"] = filter;
    object
}

#[test]
fn a_pipeline_holds_at_most_the_ottl_limit() {
    let limit = validation::MAX_OTTL_BYTES;
    let condition = "span.name == \"a\"";
    let rest = limit - 1000 - condition.len();
    let at_limit = with_ottl(
        json!([{"statements": [statement_of(1000), statement_of(rest)]}]),
        json!([{"conditions": [condition]}]),
    );
    assert_valid(&report(at_limit));

    // One byte more anywhere: the error names the text at which the total first goes over.
    let one_over = with_ottl(
        json!([{"statements": [statement_of(1000), statement_of(rest + 1)]}]),
        json!([{"conditions": [condition]}]),
    );
    let r = report(one_over);
    assert_single_error(
        &r,
        "spec.filter[0].conditions[0]: Invalid value: OTTL specification is invalid, invalid FilterSpec: the pipeline's statements and conditions reach 65537 bytes with this one, more than the 65536 bytes of OTTL a pipeline may hold; shorten them",
    );
    assert_eq!(r.errors[0].cause, Cause::OttlInvalid);

    // Counted in the order checked: a group's statements, then its conditions, then the next
    // group, then the filters.
    let over_in_transform = with_ottl(
        json!([
            {"statements": [statement_of(1000)]},
            {"conditions": [condition], "statements": [statement_of(rest + 1)]}
        ]),
        json!([{"conditions": [condition]}]),
    );
    assert_single_error(
        &report(over_in_transform),
        &format!(
            "spec.transform[1].conditions[0]: Invalid value: OTTL specification is invalid, invalid TransformSpec: the pipeline's statements and conditions reach {} bytes with this one, more than the 65536 bytes of OTTL a pipeline may hold; shorten them",
            limit + 1
        ),
    );
}

/// Over the limit nothing is parsed: a 3 MiB statement that is also a syntax error (and would take
/// hundreds of MiB as a syntax tree) gets the size error alone.
#[test]
fn ottl_over_the_limit_is_not_parsed() {
    let huge = format!("set(span.name, Concat([{}], \"\")", "1,".repeat(1_500_000));
    let r = report(with_ottl(json!([{"statements": [huge]}]), json!([])));
    assert_eq!(r.errors.len(), 1, "{:#?}", lines(&r));
    assert!(
        r.errors[0]
            .detail
            .contains("reach 3000029 bytes with this one"),
        "{}",
        r.errors[0]
    );
    assert_eq!(r.errors[0].value, None);
}
