//! `telemetry-manager validate`: the admission checks
//! (docs/reference/tracepipeline.md#admission-rules), offline. Secret references resolve against
//! the Secret manifests in the same input; pipelines are checked as if applied in input order to an
//! empty cluster (so the sixth one exceeds a limit of five).

use std::collections::BTreeMap;
use std::io::Write;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use super::input::{Document, Origin};
use crate::api;
use crate::validation::{
    self, ClusterState, Context, InMemorySecrets, ParsedPipeline, Report, ResolvedSecrets, Settings,
};

/// Exit codes of `validate`.
pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;
pub const UNREADABLE: u8 = 2;

/// One TracePipeline of the input, checked.
pub struct CheckedPipeline<'d> {
    pub origin: &'d Origin,
    /// The manifest as read.
    pub object: &'d Value,
    pub name: String,
    pub report: Report,
    /// The pipeline and the Secrets it references, when it parsed.
    pub parsed: Option<(ParsedPipeline, ResolvedSecrets)>,
}

/// The outcome of checking a whole input.
pub struct Checked<'d> {
    /// Problems with documents that are not TracePipelines (broken Secrets, non-objects).
    pub problems: Vec<String>,
    pub pipelines: Vec<CheckedPipeline<'d>>,
}

/// Check every TracePipeline of `documents` against the Secrets among them, in input order.
pub async fn check_documents(documents: &[Document], settings: Settings, now: i64) -> Checked<'_> {
    let mut problems = Vec::new();
    let mut secrets = InMemorySecrets::default();
    let mut pipeline_documents = Vec::new();
    for document in documents {
        let Some(object) = document.object.as_object() else {
            problems.push(format!(
                "{}: not a Kubernetes object: expected a mapping with apiVersion and kind",
                document.origin
            ));
            continue;
        };
        match object.get("kind").and_then(Value::as_str) {
            Some("Secret") => {
                if let Err(message) = add_secret(&document.object, &mut secrets) {
                    problems.push(format!("{}: {message}", document.origin));
                }
            }
            Some(api::KIND) => pipeline_documents.push(document),
            Some(_) => {}
            None => problems.push(format!(
                "{}: not a Kubernetes object: kind is not set",
                document.origin
            )),
        }
    }

    let mut admitted: Vec<String> = Vec::new();
    let mut pipelines = Vec::new();
    for document in pipeline_documents {
        let name = document
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let (report, parsed) = match validation::parse(&document.object) {
            Err(report) => (report, None),
            Ok(pipeline) => {
                let refs = validation::secret_refs(&pipeline.spec);
                let resolved = ResolvedSecrets::resolve(refs, &secrets).await;
                let is_update = admitted.contains(&pipeline.name);
                let ctx = Context {
                    settings,
                    now,
                    cluster: Some(ClusterState {
                        secrets: &resolved,
                        other_pipelines: &admitted,
                        existing_pipelines: (!is_update).then_some(admitted.len()),
                    }),
                };
                let report = validation::validate(&pipeline, &ctx);
                (report, Some((pipeline, resolved)))
            }
        };
        if report.is_valid() && !admitted.contains(&name) {
            admitted.push(name.clone());
        }
        pipelines.push(CheckedPipeline {
            origin: &document.origin,
            object: &document.object,
            name,
            report,
            parsed,
        });
    }
    Checked {
        problems,
        pipelines,
    }
}

/// Validate every TracePipeline of `documents`. Valid pipelines are reported on `out`, errors
/// and warnings on `err`. Returns [`VALID`] or [`INVALID`].
pub async fn validate_documents(
    documents: &[Document],
    settings: Settings,
    now: i64,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<u8> {
    let checked = check_documents(documents, settings, now).await;
    let mut exit = VALID;
    for problem in &checked.problems {
        writeln!(err, "{problem}")?;
        exit = INVALID;
    }
    if checked.pipelines.is_empty() && exit == VALID {
        writeln!(err, "no TracePipeline found in the input")?;
    }
    for pipeline in &checked.pipelines {
        report_pipeline(pipeline, out, err)?;
        if !pipeline.report.is_valid() {
            exit = INVALID;
        }
    }
    Ok(exit)
}

/// Print a checked pipeline the way `validate` does.
pub fn report_pipeline(
    pipeline: &CheckedPipeline<'_>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    for warning in &pipeline.report.warnings {
        writeln!(err, "Warning: {}: {}", pipeline.origin, warning.message)?;
    }
    if pipeline.report.is_valid() {
        writeln!(
            out,
            "tracepipeline.{}/{} valid ({})",
            api::GROUP,
            pipeline.name,
            pipeline.origin.source
        )
    } else {
        writeln!(
            err,
            "{}: {}",
            pipeline.origin,
            pipeline.report.invalid_message(&pipeline.name)
        )
    }
}

/// Add a Secret manifest's `data` (base64) and `stringData` to the store; `stringData` wins, as
/// on the API server.
fn add_secret(object: &Value, secrets: &mut InMemorySecrets) -> Result<(), String> {
    let secret: Secret = serde_json::from_value(object.clone())
        .map_err(|e| format!("Secret cannot be read: {e}"))?;
    let name = secret.metadata.name.ok_or("Secret has no metadata.name")?;
    let namespace = secret
        .metadata
        .namespace
        .unwrap_or_else(|| "default".to_string());
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    data.extend(
        secret
            .string_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    secrets.insert(&namespace, &name, data);
    Ok(())
}
