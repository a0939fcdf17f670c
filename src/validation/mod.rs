//! The validation engine: SPEC §3.1 (schema and CEL rules, repeated here so that clusters
//! without CEL and the offline CLI give the same answers) and SPEC §3.2 (endpoint, TLS material,
//! Secret references, pipeline count, name safety). Pure functions: Secrets are looked up before
//! and passed in as [`ResolvedSecrets`].

pub mod defaults;
pub mod endpoint;
pub mod report;
pub mod schema;
pub mod secrets;
pub mod tls;

use serde_json::Value;

use crate::api::{self, Protocol, SecretKeyRef, ValueType, v1alpha1, v1beta1};
pub use report::{Cause, FieldError, FieldErrorKind, Report, Warning, WarningKind};
pub use secrets::{InMemorySecrets, ResolveError, ResolvedSecrets, SecretLookup, SecretResolver};

/// What to do with a reference to a Secret that does not exist (SPEC §3.2 item 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretRefPolicy {
    /// Deny the pipeline.
    #[default]
    Reject,
    /// Admit it with a warning, for GitOps tools that apply Secrets after pipelines.
    Warn,
}

/// Operator settings that validation depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub secret_ref_policy: SecretRefPolicy,
    /// 0 means unlimited.
    pub max_pipelines: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secret_ref_policy: SecretRefPolicy::Reject,
            max_pipelines: 5,
        }
    }
}

/// The cluster state that SPEC §3.2 items 3–5 check against.
#[derive(Clone, Copy, Debug)]
pub struct ClusterState<'a> {
    pub secrets: &'a ResolvedSecrets,
    /// The names of the other TracePipelines.
    pub other_pipelines: &'a [String],
    /// How many TracePipelines exist already; set for CREATE only (SPEC §3.2 item 4).
    pub existing_pipelines: Option<usize>,
}

/// Everything validation needs besides the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub settings: Settings,
    /// Unix seconds, for certificate expiry.
    pub now: i64,
    /// `None` skips the cluster-state checks: an UPDATE that leaves `spec` unchanged must still
    /// work after a referenced Secret disappeared (SPEC §3.2).
    pub cluster: Option<ClusterState<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    V1Alpha1,
    V1Beta1,
}

impl ApiVersion {
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V1Alpha1 => api::DEPRECATED_VERSION,
            ApiVersion::V1Beta1 => api::STORAGE_VERSION,
        }
    }
}

/// A TracePipeline that passed the structural checks, in the storage version's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedPipeline {
    pub name: String,
    pub version: ApiVersion,
    pub spec: v1beta1::TracePipelineSpec,
}

/// Check a TracePipeline object (any served version) against its schema and read it.
pub fn parse(object: &Value) -> Result<ParsedPipeline, Report> {
    let fail = |error: FieldError| Report {
        errors: vec![error],
        warnings: vec![],
    };
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != api::KIND {
        return Err(fail(
            FieldError::new(
                "kind",
                FieldErrorKind::NotSupported {
                    supported: vec![api::KIND.to_string()],
                },
                "",
                Cause::Schema,
            )
            .with_value(report::quote(kind)),
        ));
    }
    let version = match api_version
        .strip_prefix(api::GROUP)
        .and_then(|v| v.strip_prefix('/'))
    {
        Some(api::STORAGE_VERSION) => ApiVersion::V1Beta1,
        Some(api::DEPRECATED_VERSION) => ApiVersion::V1Alpha1,
        _ => {
            return Err(fail(
                FieldError::new(
                    "apiVersion",
                    FieldErrorKind::NotSupported {
                        supported: vec![
                            format!("{}/{}", api::GROUP, api::STORAGE_VERSION),
                            format!("{}/{}", api::GROUP, api::DEPRECATED_VERSION),
                        ],
                    },
                    "",
                    Cause::Schema,
                )
                .with_value(report::quote(api_version)),
            ));
        }
    };
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut errors =
        schema::check(object, version.name()).expect("both served versions have a schema");
    if name.is_empty() && object.pointer("/metadata/generateName").is_none() {
        errors.insert(
            0,
            FieldError::new(
                "metadata.name",
                FieldErrorKind::Required,
                "name or generateName is required",
                Cause::Schema,
            ),
        );
    }
    if !errors.is_empty() {
        return Err(Report {
            errors,
            warnings: vec![],
        });
    }
    let spec = object.get("spec").cloned().unwrap_or_default();
    let spec = match version {
        ApiVersion::V1Beta1 => serde_json::from_value::<v1beta1::TracePipelineSpec>(spec),
        ApiVersion::V1Alpha1 => {
            serde_json::from_value::<v1alpha1::TracePipelineSpec>(spec).map(Into::into)
        }
    };
    match spec {
        Ok(spec) => Ok(ParsedPipeline {
            name,
            version,
            spec,
        }),
        // The schema check accepts exactly what the types read; reaching this is a bug, reported
        // as an error rather than a panic.
        Err(err) => Err(fail(FieldError::new(
            "spec",
            FieldErrorKind::Internal,
            err.to_string(),
            Cause::Schema,
        ))),
    }
}

/// A value field of the spec, with its path and whether the schema requires it to be set.
pub struct ValueField {
    pub path: String,
    /// The name the CEL messages use (`'endpoint' must have …`).
    pub label: &'static str,
    pub required: bool,
    pub value: ValueType,
    pub tls: Option<tls::TlsField>,
}

fn field(
    path: impl Into<String>,
    label: &'static str,
    required: bool,
    value: &ValueType,
) -> ValueField {
    ValueField {
        path: path.into(),
        label,
        required,
        value: value.clone(),
        tls: None,
    }
}

/// Every value (inline or from a Secret) of a spec, in spec order.
pub fn value_fields(spec: &v1beta1::TracePipelineSpec) -> Vec<ValueField> {
    const OTLP: &str = "spec.output.otlp";
    let otlp = &spec.output.otlp;
    let mut fields = vec![field(
        format!("{OTLP}.endpoint"),
        "endpoint",
        true,
        &otlp.endpoint,
    )];
    if let Some(auth) = &otlp.authentication {
        if let Some(basic) = &auth.basic {
            fields.push(field(
                format!("{OTLP}.authentication.basic.user"),
                "user",
                true,
                &basic.user,
            ));
            fields.push(field(
                format!("{OTLP}.authentication.basic.password"),
                "password",
                true,
                &basic.password,
            ));
        }
        if let Some(oauth2) = &auth.oauth2 {
            let base = format!("{OTLP}.authentication.oauth2");
            fields.push(field(
                format!("{base}.tokenURL"),
                "tokenURL",
                true,
                &oauth2.token_url,
            ));
            fields.push(field(
                format!("{base}.clientID"),
                "clientID",
                true,
                &oauth2.client_id,
            ));
            fields.push(field(
                format!("{base}.clientSecret"),
                "clientSecret",
                true,
                &oauth2.client_secret,
            ));
        }
    }
    for (index, header) in otlp.headers.iter().enumerate() {
        fields.push(field(
            format!("{OTLP}.headers[{index}]"),
            "headers",
            true,
            &header.value_type(),
        ));
    }
    if let Some(tls_spec) = &otlp.tls {
        for (tls_field, value) in [
            (tls::TlsField::Ca, &tls_spec.ca),
            (tls::TlsField::Cert, &tls_spec.cert),
            (tls::TlsField::Key, &tls_spec.key),
        ] {
            if let Some(value) = value {
                let mut f = field(
                    format!("{OTLP}.tls.{}", tls_field.name()),
                    tls_field.name(),
                    false,
                    value,
                );
                f.tls = Some(tls_field);
                fields.push(f);
            }
        }
    }
    fields
}

/// Every Secret reference of a spec: what must be looked up before [`validate`].
pub fn secret_refs(spec: &v1beta1::TracePipelineSpec) -> Vec<SecretKeyRef> {
    value_fields(spec)
        .into_iter()
        .filter_map(|f| f.value.value_from.map(|from| from.secret_key_ref))
        .collect()
}

/// A value field's resolved text, or why it has none.
enum Resolved {
    Text(String),
    /// Not checkable: neither set, both set, or from a Secret outside a cluster-state check.
    Unchecked,
    /// From a Secret that could not be read; the error is already reported.
    Failed,
}

/// Validate a parsed pipeline (SPEC §3.1 rules and §3.2 items 1–5).
pub fn validate(pipeline: &ParsedPipeline, ctx: &Context<'_>) -> Report {
    let mut report = Report::default();
    let spec = &pipeline.spec;
    let otlp = &spec.output.otlp;
    let protocol = otlp.protocol.unwrap_or_default();
    let oauth2 = otlp.authentication.as_ref().and_then(|a| a.oauth2.as_ref());
    let tls_insecure = otlp.tls.as_ref().and_then(|t| t.insecure).unwrap_or(false);

    if pipeline.version == ApiVersion::V1Alpha1 {
        report.warnings.push(Warning {
            message: api::V1ALPHA1_DEPRECATION_WARNING.to_string(),
            kind: WarningKind::DeprecatedVersion,
        });
    }
    check_cel_rules(spec, &mut report);

    let mut resolved = Vec::new();
    for field in value_fields(spec) {
        let text = resolve(&field, ctx, &mut report);
        resolved.push((field, text));
    }
    let text_of = |path_suffix: &str| {
        resolved.iter().find_map(|(f, text)| match text {
            Resolved::Text(text) if f.path.ends_with(path_suffix) => Some(text.as_str()),
            _ => None,
        })
    };

    if let Some((endpoint_field, Resolved::Text(endpoint))) = resolved.first()
        && let Err(problem) = endpoint::check(endpoint, protocol, oauth2.is_some(), tls_insecure)
    {
        let mut error = FieldError::new(
            &endpoint_field.path,
            FieldErrorKind::Invalid,
            format!("OTLP output endpoint invalid: {problem}"),
            Cause::EndpointInvalid,
        );
        if endpoint_field.value.value_from.is_none() {
            error = error.with_value(report::quote(endpoint));
        }
        report.errors.push(error);
    }

    let material = tls::TlsMaterial {
        ca: text_of(".tls.ca"),
        cert: text_of(".tls.cert"),
        key: text_of(".tls.key"),
    };
    let findings = tls::check(material, ctx.now);
    for (tls_field, problem) in findings.problems {
        let cause = if problem.is_expiry() {
            Cause::TlsCertificateExpired
        } else {
            Cause::TlsConfigurationInvalid
        };
        report.errors.push(FieldError::new(
            format!("spec.output.otlp.tls.{}", tls_field.name()),
            FieldErrorKind::Invalid,
            problem.to_string(),
            cause,
        ));
    }
    for (tls_field, date, not_after) in findings.expiring {
        report.warnings.push(Warning {
            message: format!(
                "spec.output.otlp.tls.{}: TLS certificate is about to expire, configured certificate is valid until {date}; renew it",
                tls_field.name()
            ),
            kind: WarningKind::CertificateExpiresSoon { not_after },
        });
    }
    if otlp.tls.as_ref().and_then(|t| t.insecure_skip_verify) == Some(true) {
        report.warnings.push(Warning {
            message: "spec.output.otlp.tls.insecureSkipVerify is true: the backend's certificate is not verified".to_string(),
            kind: WarningKind::InsecureSkipVerify,
        });
    }

    if let Some(cluster) = ctx.cluster {
        check_pipeline_count(cluster, ctx.settings, &mut report);
        check_name_collision(&pipeline.name, cluster, &mut report);
    }
    report
}

/// The CEL rules of SPEC §3.1, with the CRD's messages.
fn check_cel_rules(spec: &v1beta1::TracePipelineSpec, report: &mut Report) {
    let otlp = &spec.output.otlp;
    let object_error = |path: &str, message: &str| {
        FieldError::new(path, FieldErrorKind::Invalid, message, Cause::Schema)
            .with_value(report::quote("object"))
    };
    for field in value_fields(spec) {
        let value = &field.value;
        if value.value.is_some() && value.value_from.is_some() {
            report.errors.push(object_error(
                &field.path,
                "Only one of 'value' or 'valueFrom' can be set",
            ));
        } else if field.required && value.value.is_none() && value.value_from.is_none() {
            let message = format!("'{}' must have 'value' or 'valueFrom' set", field.label);
            report.errors.push(object_error(&field.path, &message));
        }
    }
    if otlp.path.as_deref().is_some_and(|p| !p.is_empty()) && otlp.protocol != Some(Protocol::Http)
    {
        report.errors.push(object_error(
            "spec.output.otlp",
            "Path is only available with HTTP protocol",
        ));
    }
    if let Some(auth) = &otlp.authentication {
        if auth.basic.is_some() && auth.oauth2.is_some() {
            report.errors.push(object_error(
                "spec.output.otlp.authentication",
                "Only one authentication method can be specified",
            ));
        }
        if let Some(oauth2) = &auth.oauth2 {
            if otlp.protocol.unwrap_or_default() == Protocol::Grpc
                && otlp.tls.as_ref().and_then(|t| t.insecure) == Some(true)
            {
                report.errors.push(object_error(
                    "spec.output.otlp",
                    "OAuth2 authentication requires TLS when using gRPC protocol",
                ));
            }
            if let Some(url) = oauth2.token_url.value.as_deref()
                && !url.is_empty()
                && !is_url(url)
            {
                report.errors.push(
                    FieldError::new(
                        "spec.output.otlp.authentication.oauth2.tokenURL",
                        FieldErrorKind::Invalid,
                        "'tokenURL' must be a valid URL",
                        Cause::Schema,
                    )
                    .with_value(report::quote("object")),
                );
            }
        }
    }
    if let Some(tls_spec) = &otlp.tls
        && tls_spec.cert.is_some() != tls_spec.key.is_some()
    {
        report.errors.push(object_error(
            "spec.output.otlp.tls",
            "Can define either both 'cert' and 'key', or neither",
        ));
    }
}

/// What Kubernetes' CEL `isURL` accepts: an absolute URL (`scheme:…`) or an absolute path.
fn is_url(value: &str) -> bool {
    if value.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if value.starts_with('/') {
        return true;
    }
    match value.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn resolve(field: &ValueField, ctx: &Context<'_>, report: &mut Report) -> Resolved {
    match (&field.value.value, &field.value.value_from) {
        (Some(text), None) => Resolved::Text(text.clone()),
        (None, Some(from)) => {
            let Some(cluster) = ctx.cluster else {
                return Resolved::Unchecked;
            };
            let reference = &from.secret_key_ref;
            let path = format!("{}.valueFrom.secretKeyRef", field.path);
            match cluster.secrets.value(reference) {
                Ok(text) => Resolved::Text(text.to_string()),
                Err(err @ ResolveError::SecretNotFound { .. })
                    if ctx.settings.secret_ref_policy == SecretRefPolicy::Warn =>
                {
                    report.warnings.push(Warning {
                        message: format!("{path}: {err}"),
                        kind: WarningKind::SecretMissing,
                    });
                    Resolved::Failed
                }
                Err(err) => {
                    let (kind, cause) = match err {
                        ResolveError::SecretNotFound { .. } | ResolveError::KeyNotFound { .. } => {
                            (FieldErrorKind::NotFound, Cause::SecretMissing)
                        }
                        ResolveError::NotUtf8 { .. } => {
                            (FieldErrorKind::Invalid, Cause::SecretValueInvalid)
                        }
                        ResolveError::LookupFailed { .. } | ResolveError::NotLookedUp { .. } => {
                            (FieldErrorKind::Internal, Cause::Lookup)
                        }
                    };
                    report
                        .errors
                        .push(FieldError::new(path, kind, err.to_string(), cause));
                    Resolved::Failed
                }
            }
        }
        _ => Resolved::Unchecked,
    }
}

fn check_pipeline_count(cluster: ClusterState<'_>, settings: Settings, report: &mut Report) {
    if let Some(existing) = cluster.existing_pipelines
        && settings.max_pipelines > 0
        && existing >= settings.max_pipelines
    {
        report.errors.push(FieldError::new(
            "",
            FieldErrorKind::Forbidden,
            format!(
                "Maximum pipeline count limit exceeded: {existing} TracePipelines exist; delete a TracePipeline you no longer need, or ask the cluster admin to raise --max-pipelines (now {})",
                settings.max_pipelines
            ),
            Cause::PipelineLimit,
        ));
    }
}

fn check_name_collision(name: &str, cluster: ClusterState<'_>, report: &mut Report) {
    let suffix = api::env_var_suffix(name);
    if let Some(existing) = cluster
        .other_pipelines
        .iter()
        .find(|other| other.as_str() != name && api::env_var_suffix(other) == suffix)
    {
        report.errors.push(
            FieldError::new(
                "metadata.name",
                FieldErrorKind::Duplicate,
                format!(
                    "collides with TracePipeline {existing:?}: both map to the environment-variable suffix {suffix} of the gateway; choose a name that differs in more than '.' and '-'"
                ),
                Cause::NameCollision,
            )
            .with_value(report::quote(name)),
        );
    }
}
