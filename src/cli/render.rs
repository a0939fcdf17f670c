//! `telemetry-manager render`: the gateway objects that the given pipelines and Secrets would
//! produce, as multi-document YAML. Pipelines that would not be reconciled (invalid, or beyond
//! the pipeline limit) are left out with the reason on stderr, as the reconciler leaves them out.

use std::io::Write;

use serde_json::Value;

use super::input::Document;
use super::validate::{INVALID, VALID, check_documents, report_pipeline};
use crate::gateway::{self, GatewaySettings, PipelineValues, ReconcilablePipeline};
use crate::validation::Settings;

/// Shown instead of Secret values unless `--show-secrets` is given.
pub const REDACTED: &str = "<redacted>";

/// Render the gateway for `documents` to `out`; left-out pipelines and warnings go to `err`.
pub async fn render_documents(
    documents: &[Document],
    settings: &GatewaySettings,
    max_pipelines: usize,
    show_secrets: bool,
    now: i64,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<u8> {
    let validation = Settings {
        max_pipelines,
        ..Settings::default()
    };
    let checked = check_documents(documents, validation, now).await;
    for problem in &checked.problems {
        writeln!(err, "{problem}")?;
    }
    let mut reconcilable = Vec::new();
    for pipeline in &checked.pipelines {
        if !pipeline.report.is_valid() {
            report_pipeline(pipeline, &mut std::io::sink(), err)?;
            continue;
        }
        for warning in &pipeline.report.warnings {
            writeln!(err, "Warning: {}: {}", pipeline.origin, warning.message)?;
        }
        let Some((parsed, secrets)) = &pipeline.parsed else {
            continue;
        };
        match PipelineValues::resolve(&parsed.spec, secrets) {
            Ok(values) => reconcilable.push(ReconcilablePipeline {
                name: parsed.name.clone(),
                uid: pipeline
                    .object
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                spec: parsed.spec.clone(),
                values,
            }),
            Err(error) => writeln!(err, "{}: {}: {error}", pipeline.origin, parsed.name)?,
        }
    }
    if reconcilable.is_empty() {
        writeln!(
            err,
            "no TracePipeline can be reconciled: the manager would delete the gateway"
        )?;
        return Ok(INVALID);
    }
    let objects = gateway::desired(&reconcilable, settings);
    for mut object in objects.to_values() {
        if !show_secrets
            && object["kind"] == "Secret"
            && let Some(data) = object.get_mut("data").and_then(Value::as_object_mut)
        {
            for value in data.values_mut() {
                *value = Value::String(REDACTED.to_string());
            }
        }
        let yaml = serde_saphyr::to_string(&object).map_err(std::io::Error::other)?;
        write!(out, "---\n{yaml}")?;
    }
    Ok(VALID)
}
