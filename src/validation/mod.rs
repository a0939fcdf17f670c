//! The validation engine for the admission rules (docs/reference/tracepipeline.md#admission-rules):
//! the schema and CEL rules, repeated here so that clusters without CEL and the offline CLI give
//! the same answers, then endpoint, TLS material, Secret references, pipeline count and name
//! safety. Pure functions: Secrets are looked up before and passed in as [`ResolvedSecrets`].

mod checked;
pub mod defaults;
pub mod endpoint;
pub mod report;
pub mod schema;
pub mod secrets;
pub mod tls;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::api::{self, Protocol, SecretKeyRef, ValueFromSource, ValueType, v1alpha1, v1beta1};
use crate::ottl;
pub use checked::OnePassPipeline;
pub use report::{Cause, FieldError, FieldErrorKind, Report, Warning, WarningKind};
pub use secrets::{InMemorySecrets, ResolveError, ResolvedSecrets, SecretLookup, SecretResolver};

/// What to do with a reference to a Secret that does not exist.
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

/// The cluster state that the Secret, pipeline-count and name checks read.
#[derive(Clone, Copy, Debug)]
pub struct ClusterState<'a> {
    pub secrets: &'a ResolvedSecrets,
    /// The names of the existing TracePipelines (the validated one's own name is ignored).
    pub other_pipelines: &'a [String],
    /// How many TracePipelines exist already; set for CREATE only, the one operation that the
    /// pipeline limit applies to.
    pub existing_pipelines: Option<usize>,
}

/// Everything validation needs besides the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub settings: Settings,
    /// Unix seconds, for certificate expiry.
    pub now: i64,
    /// `None` skips the cluster-state checks: an UPDATE that leaves `spec` unchanged must still
    /// work after a referenced Secret disappeared.
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

/// The identity of an object, read without building the rest of it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    metadata: Option<HeadMetadata<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HeadMetadata<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    generate_name: Option<Cow<'a, str>>,
}

/// Just the spec of an object.
#[derive(Deserialize)]
struct SpecOf<S> {
    spec: S,
}

/// Check a TracePipeline object (any served version) against its schema and read it.
pub fn parse(object: &Value) -> Result<ParsedPipeline, Report> {
    parse_with(
        Head::deserialize(object).unwrap_or_default(),
        |root| schema::check(object, root),
        |version| match version {
            ApiVersion::V1Beta1 => {
                SpecOf::<v1beta1::TracePipelineSpec>::deserialize(object).map(|o| o.spec)
            }
            ApiVersion::V1Alpha1 => {
                SpecOf::<v1alpha1::TracePipelineSpec>::deserialize(object).map(|o| o.spec.into())
            }
        },
    )
}

/// [`parse`] for an object given as JSON text, as the webhook receives it. A valid object is
/// read and checked in one pass; any other is read again in passes (identity, schema, typed
/// spec) that write the report. Neither builds a JSON tree.
pub fn parse_json(text: &str) -> Result<ParsedPipeline, Report> {
    checked::read_pipeline(text).map_or_else(|| parse_json_in_passes(text), Ok)
}

fn parse_json_in_passes(text: &str) -> Result<ParsedPipeline, Report> {
    fn read<'de, T: Deserialize<'de>>(text: &'de str) -> serde_json::Result<T> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = T::deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
    parse_with(
        read::<Head<'_>>(text).unwrap_or_default(),
        |root| schema::check(&mut serde_json::Deserializer::from_str(text), root),
        |version| match version {
            ApiVersion::V1Beta1 => read::<SpecOf<v1beta1::TracePipelineSpec>>(text).map(|o| o.spec),
            ApiVersion::V1Alpha1 => {
                read::<SpecOf<v1alpha1::TracePipelineSpec>>(text).map(|o| o.spec.into())
            }
        },
    )
}

/// The served version an object's `apiVersion` names.
fn version_of(api_version: &str) -> Option<ApiVersion> {
    match api_version
        .strip_prefix(api::GROUP)
        .and_then(|v| v.strip_prefix('/'))
    {
        Some(api::STORAGE_VERSION) => Some(ApiVersion::V1Beta1),
        Some(api::DEPRECATED_VERSION) => Some(ApiVersion::V1Alpha1),
        _ => None,
    }
}

fn parse_with<E: std::fmt::Display>(
    head: Head<'_>,
    check: impl FnOnce(&schema::Node) -> Result<Vec<FieldError>, E>,
    read_spec: impl FnOnce(ApiVersion) -> Result<v1beta1::TracePipelineSpec, E>,
) -> Result<ParsedPipeline, Report> {
    let fail = |error: FieldError| Report {
        errors: vec![error],
        warnings: vec![],
    };
    let api_version = head.api_version.as_deref().unwrap_or_default();
    let kind = head.kind.as_deref().unwrap_or_default();
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
    let Some(version) = version_of(api_version) else {
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
    };
    let metadata = head.metadata.unwrap_or_default();
    let name = metadata.name.as_deref().unwrap_or_default().to_string();
    let root = schema::root(version.name()).expect("both served versions have a schema");
    let internal = |err: E| {
        fail(FieldError::new(
            "",
            FieldErrorKind::Internal,
            err.to_string(),
            Cause::Schema,
        ))
    };
    let mut errors = check(root).map_err(internal)?;
    if name.is_empty() && metadata.generate_name.is_none() {
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
    // The schema check accepts exactly what the types read, so this fails only on a bug; it is
    // reported as an error rather than a panic.
    let spec = read_spec(version).map_err(internal)?;
    Ok(ParsedPipeline {
        name,
        version,
        spec,
    })
}

/// Which value of the spec a [`ValueField`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueSlot {
    Endpoint,
    BasicUser,
    BasicPassword,
    OAuth2TokenUrl,
    OAuth2ClientId,
    OAuth2ClientSecret,
    Header(usize),
    Tls(tls::TlsField),
}

impl ValueSlot {
    /// The field path as kubectl prints it.
    pub fn path(self) -> String {
        const OTLP: &str = "spec.output.otlp";
        match self {
            ValueSlot::Endpoint => format!("{OTLP}.endpoint"),
            ValueSlot::BasicUser => format!("{OTLP}.authentication.basic.user"),
            ValueSlot::BasicPassword => format!("{OTLP}.authentication.basic.password"),
            ValueSlot::OAuth2TokenUrl => format!("{OTLP}.authentication.oauth2.tokenURL"),
            ValueSlot::OAuth2ClientId => format!("{OTLP}.authentication.oauth2.clientID"),
            ValueSlot::OAuth2ClientSecret => format!("{OTLP}.authentication.oauth2.clientSecret"),
            ValueSlot::Header(index) => format!("{OTLP}.headers[{index}]"),
            ValueSlot::Tls(field) => format!("{OTLP}.tls.{}", field.name()),
        }
    }

    /// The name the CEL messages use (`'endpoint' must have …`).
    pub fn label(self) -> &'static str {
        match self {
            ValueSlot::Endpoint => "endpoint",
            ValueSlot::BasicUser => "user",
            ValueSlot::BasicPassword => "password",
            ValueSlot::OAuth2TokenUrl => "tokenURL",
            ValueSlot::OAuth2ClientId => "clientID",
            ValueSlot::OAuth2ClientSecret => "clientSecret",
            ValueSlot::Header(_) => "headers",
            ValueSlot::Tls(field) => field.name(),
        }
    }

    /// Whether the schema requires `value` or `valueFrom` (TLS material is optional).
    pub fn required(self) -> bool {
        !matches!(self, ValueSlot::Tls(_))
    }
}

/// One value of the spec, inline or from a Secret, borrowed from the spec.
#[derive(Clone, Copy, Debug)]
pub struct ValueField<'a> {
    pub slot: ValueSlot,
    pub value: Option<&'a str>,
    pub value_from: Option<&'a ValueFromSource>,
}

impl<'a> ValueField<'a> {
    fn of(slot: ValueSlot, value: &'a ValueType) -> Self {
        ValueField {
            slot,
            value: value.value.as_deref(),
            value_from: value.value_from.as_deref(),
        }
    }
}

/// Every value (inline or from a Secret) of a spec, in spec order.
pub fn value_fields(spec: &v1beta1::TracePipelineSpec) -> Vec<ValueField<'_>> {
    let otlp = &spec.output.otlp;
    // Endpoint, three authentication values at most, the headers and three TLS values.
    let mut fields = Vec::with_capacity(7 + otlp.headers.len());
    fields.push(ValueField::of(ValueSlot::Endpoint, &otlp.endpoint));
    if let Some(auth) = &otlp.authentication {
        if let Some(basic) = &auth.basic {
            fields.push(ValueField::of(ValueSlot::BasicUser, &basic.user));
            fields.push(ValueField::of(ValueSlot::BasicPassword, &basic.password));
        }
        if let Some(oauth2) = &auth.oauth2 {
            fields.push(ValueField::of(ValueSlot::OAuth2TokenUrl, &oauth2.token_url));
            fields.push(ValueField::of(ValueSlot::OAuth2ClientId, &oauth2.client_id));
            fields.push(ValueField::of(
                ValueSlot::OAuth2ClientSecret,
                &oauth2.client_secret,
            ));
        }
    }
    for (index, header) in otlp.headers.iter().enumerate() {
        fields.push(ValueField {
            slot: ValueSlot::Header(index),
            value: header.value.as_deref(),
            value_from: header.value_from.as_deref(),
        });
    }
    if let Some(tls_spec) = &otlp.tls {
        for (tls_field, value) in [
            (tls::TlsField::Ca, &tls_spec.ca),
            (tls::TlsField::Cert, &tls_spec.cert),
            (tls::TlsField::Key, &tls_spec.key),
        ] {
            if let Some(value) = value {
                fields.push(ValueField::of(ValueSlot::Tls(tls_field), value));
            }
        }
    }
    fields
}

/// Every Secret reference of a spec: what must be looked up before [`validate`].
pub fn secret_refs(spec: &v1beta1::TracePipelineSpec) -> Vec<&SecretKeyRef> {
    value_fields(spec)
        .into_iter()
        .filter_map(|f| f.value_from.map(|from| &from.secret_key_ref))
        .collect()
}

/// A value field's resolved text, or why it has none.
enum Resolved<'a> {
    Text(&'a str),
    /// Not checkable: neither set, both set, or from a Secret outside a cluster-state check.
    Unchecked,
    /// From a Secret that could not be read; the error is already reported.
    Failed,
}

/// Validate a parsed pipeline against every admission rule but the structural schema's.
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
    let fields = value_fields(spec);
    check_cel_rules(spec, &fields, &mut report);
    check_ottl(spec, &mut report);

    let resolved: Vec<(ValueField<'_>, Resolved<'_>)> = fields
        .iter()
        .map(|field| (*field, resolve(field, ctx, &mut report)))
        .collect();
    let text_of = |slot: ValueSlot| {
        resolved.iter().find_map(|(f, text)| match text {
            Resolved::Text(text) if f.slot == slot => Some(*text),
            _ => None,
        })
    };

    if let Some(endpoint) = text_of(ValueSlot::Endpoint)
        && let Err(problem) = endpoint::check(endpoint, protocol, oauth2.is_some(), tls_insecure)
    {
        let mut error = FieldError::new(
            ValueSlot::Endpoint.path(),
            FieldErrorKind::Invalid,
            format!("OTLP output endpoint invalid: {problem}"),
            Cause::EndpointInvalid,
        );
        if otlp.endpoint.value_from.is_none() {
            error = error.with_value(report::quote(endpoint));
        }
        report.errors.push(error);
    }

    let material = tls::TlsMaterial {
        ca: text_of(ValueSlot::Tls(tls::TlsField::Ca)),
        cert: text_of(ValueSlot::Tls(tls::TlsField::Cert)),
        key: text_of(ValueSlot::Tls(tls::TlsField::Key)),
    };
    let findings = tls::check(material, ctx.now);
    for (tls_field, problem) in findings.problems {
        let cause = if problem.is_expiry() {
            Cause::TlsCertificateExpired
        } else {
            Cause::TlsConfigurationInvalid
        };
        report.errors.push(FieldError::new(
            ValueSlot::Tls(tls_field).path(),
            FieldErrorKind::Invalid,
            problem.to_string(),
            cause,
        ));
    }
    for (tls_field, date, not_after) in findings.expiring {
        report.warnings.push(Warning {
            message: format!(
                "{}: TLS certificate is about to expire, configured certificate is valid until {date}; renew it",
                ValueSlot::Tls(tls_field).path()
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

/// The CRD's CEL rules, with the CRD's messages.
fn check_cel_rules(
    spec: &v1beta1::TracePipelineSpec,
    fields: &[ValueField<'_>],
    report: &mut Report,
) {
    let otlp = &spec.output.otlp;
    let object_error = |path: &str, message: &str| {
        FieldError::new(path, FieldErrorKind::Invalid, message, Cause::Schema)
            .with_value(report::quote("object"))
    };
    for field in fields {
        if field.value.is_some() && field.value_from.is_some() {
            report.errors.push(object_error(
                &field.slot.path(),
                "Only one of 'value' or 'valueFrom' can be set",
            ));
        } else if field.slot.required() && field.value.is_none() && field.value_from.is_none() {
            let message = format!(
                "'{}' must have 'value' or 'valueFrom' set",
                field.slot.label()
            );
            report
                .errors
                .push(object_error(&field.slot.path(), &message));
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

/// How many bytes of OTTL one pipeline may hold, every statement and condition of its transform
/// and filter groups together: hundreds of times what real pipelines use, and small enough that
/// checking a pipeline stays within about 11 MiB of the manager's memory whatever the text
/// (tokens and tree take up to about 170 bytes per byte of text, BENCHMARKS.md) and that the
/// gateway configuration of the default five pipelines fits its 1 MiB ConfigMap. The collector
/// has no such bound; this is a deliberate difference (docs/reference/ottl.md#limits).
pub const MAX_OTTL_BYTES: usize = 64 * 1024;

/// Adds the lengths of `texts` to `total` up to the text that takes it over [`MAX_OTTL_BYTES`],
/// and returns that text's index.
fn crossing(texts: &[String], total: &mut usize) -> Option<usize> {
    texts.iter().position(|text| {
        *total += text.len();
        *total > MAX_OTTL_BYTES
    })
}

/// The field path at which a pipeline's OTTL first exceeds [`MAX_OTTL_BYTES`], in the order the
/// texts are checked, with the group's kind and the total up to that text.
fn ottl_over_limit(spec: &v1beta1::TracePipelineSpec) -> Option<(String, &'static str, usize)> {
    let mut total = 0;
    for (i, group) in spec.transform.iter().enumerate() {
        if let Some(j) = crossing(&group.statements, &mut total) {
            let path = format!("spec.transform[{i}].statements[{j}]");
            return Some((path, "TransformSpec", total));
        }
        if let Some(j) = crossing(&group.conditions, &mut total) {
            let path = format!("spec.transform[{i}].conditions[{j}]");
            return Some((path, "TransformSpec", total));
        }
    }
    for (i, group) in spec.filter.iter().enumerate() {
        if let Some(j) = crossing(&group.conditions, &mut total) {
            let path = format!("spec.filter[{i}].conditions[{j}]");
            return Some((path, "FilterSpec", total));
        }
    }
    None
}

/// Every transform and filter group, checked as the gateway's collector would load it
/// (docs/reference/ottl.md). A group stops at its first error: later statements of the group may
/// only be wrong because of it (the context is inferred from the whole group). A pipeline with
/// more OTTL than [`MAX_OTTL_BYTES`] gets that one error and none of its text is parsed.
fn check_ottl(spec: &v1beta1::TracePipelineSpec, report: &mut Report) {
    // Longer statements are not repeated in the message; the column points into them.
    const SHOWN_TEXT_LIMIT: usize = 200;
    if let Some((path, kind, total)) = ottl_over_limit(spec) {
        report.errors.push(FieldError::new(
            path,
            FieldErrorKind::Invalid,
            format!(
                "OTTL specification is invalid, invalid {kind}: the pipeline's statements and conditions reach {total} bytes with this one, more than the {MAX_OTTL_BYTES} bytes of OTTL a pipeline may hold; shorten them"
            ),
            Cause::OttlInvalid,
        ));
        return;
    }
    let mut deny = |path: String, text: Option<&String>, kind: &str, problem: ottl::OttlError| {
        let error = FieldError::new(
            path,
            FieldErrorKind::Invalid,
            format!("OTTL specification is invalid, invalid {kind}: {problem}"),
            Cause::OttlInvalid,
        );
        report.errors.push(match text {
            Some(text) if text.len() <= SHOWN_TEXT_LIMIT => error.with_value(report::quote(text)),
            _ => error,
        });
    };
    for (i, group) in spec.transform.iter().enumerate() {
        if let Err(problem) = ottl::check_transform(&group.conditions, &group.statements) {
            let (path, text) = match problem.item {
                ottl::Item::Statement(j) => (
                    format!("spec.transform[{i}].statements[{j}]"),
                    group.statements.get(j),
                ),
                ottl::Item::Condition(j) => (
                    format!("spec.transform[{i}].conditions[{j}]"),
                    group.conditions.get(j),
                ),
                ottl::Item::Group => (format!("spec.transform[{i}]"), None),
            };
            deny(path, text, "TransformSpec", problem);
        }
    }
    for (i, group) in spec.filter.iter().enumerate() {
        if let Err(problem) = ottl::check_filter(&group.conditions) {
            let (path, text) = match problem.item {
                ottl::Item::Condition(j) | ottl::Item::Statement(j) => (
                    format!("spec.filter[{i}].conditions[{j}]"),
                    group.conditions.get(j),
                ),
                ottl::Item::Group => (format!("spec.filter[{i}]"), None),
            };
            deny(path, text, "FilterSpec", problem);
        }
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

fn resolve<'a>(field: &ValueField<'a>, ctx: &Context<'a>, report: &mut Report) -> Resolved<'a> {
    match (field.value, field.value_from) {
        (Some(text), None) => Resolved::Text(text),
        (None, Some(from)) => {
            let Some(cluster) = ctx.cluster else {
                return Resolved::Unchecked;
            };
            let reference = &from.secret_key_ref;
            let path = || format!("{}.valueFrom.secretKeyRef", field.slot.path());
            match cluster.secrets.value(reference) {
                Ok(text) => Resolved::Text(text),
                Err(err @ ResolveError::SecretNotFound { .. })
                    if ctx.settings.secret_ref_policy == SecretRefPolicy::Warn =>
                {
                    report.warnings.push(Warning {
                        message: format!("{}: {err}", path()),
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
                        .push(FieldError::new(path(), kind, err.to_string(), cause));
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
    if let Some(existing) = cluster
        .other_pipelines
        .iter()
        .find(|other| other.as_str() != name && api::same_env_var_suffix(other, name))
    {
        let suffix = api::env_var_suffix(name);
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
