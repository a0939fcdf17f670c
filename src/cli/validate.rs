//! `telemetry-manager validate`: the admission checks of SPEC §3.1 and §3.2, offline. Secret
//! references resolve against the Secret manifests in the same input; pipelines are checked as if
//! applied in input order to an empty cluster (so the sixth one exceeds a limit of five).

use std::collections::BTreeMap;
use std::io::Write;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use super::input::Document;
use crate::api;
use crate::validation::{self, ClusterState, Context, InMemorySecrets, ResolvedSecrets, Settings};

/// Exit codes of `validate`.
pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;
pub const UNREADABLE: u8 = 2;

/// Validate every TracePipeline of `documents`. Valid pipelines are reported on `out`, errors
/// and warnings on `err`. Returns [`VALID`] or [`INVALID`].
pub async fn validate_documents(
    documents: &[Document],
    settings: Settings,
    now: i64,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<u8> {
    let mut exit = VALID;
    let mut secrets = InMemorySecrets::default();
    let mut pipelines = Vec::new();
    for document in documents {
        let Some(object) = document.object.as_object() else {
            writeln!(
                err,
                "{}: not a Kubernetes object: expected a mapping with apiVersion and kind",
                document.origin
            )?;
            exit = INVALID;
            continue;
        };
        match object.get("kind").and_then(Value::as_str) {
            Some("Secret") => {
                if let Err(message) = add_secret(&document.object, &mut secrets) {
                    writeln!(err, "{}: {message}", document.origin)?;
                    exit = INVALID;
                }
            }
            Some(api::KIND) => pipelines.push(document),
            Some(_) => {}
            None => {
                writeln!(
                    err,
                    "{}: not a Kubernetes object: kind is not set",
                    document.origin
                )?;
                exit = INVALID;
            }
        }
    }
    if pipelines.is_empty() && exit == VALID {
        writeln!(err, "no TracePipeline found in the input")?;
    }

    let mut admitted: Vec<String> = Vec::new();
    for document in pipelines {
        let name = document
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let report = match validation::parse(&document.object) {
            Err(report) => report,
            Ok(pipeline) => {
                let refs = validation::secret_refs(&pipeline.spec);
                let resolved = ResolvedSecrets::resolve(refs, &secrets).await;
                let others: Vec<String> = admitted
                    .iter()
                    .filter(|n| **n != pipeline.name)
                    .cloned()
                    .collect();
                let is_update = admitted.contains(&pipeline.name);
                let ctx = Context {
                    settings,
                    now,
                    cluster: Some(ClusterState {
                        secrets: &resolved,
                        other_pipelines: &others,
                        existing_pipelines: (!is_update).then_some(admitted.len()),
                    }),
                };
                validation::validate(&pipeline, &ctx)
            }
        };
        for warning in &report.warnings {
            writeln!(err, "Warning: {}: {}", document.origin, warning.message)?;
        }
        if report.is_valid() {
            if !admitted.contains(&name) {
                admitted.push(name.clone());
            }
            writeln!(
                out,
                "tracepipeline.{}/{name} valid ({})",
                api::GROUP,
                document.origin.source
            )?;
        } else {
            writeln!(
                err,
                "{}: {}",
                document.origin,
                report.invalid_message(&name)
            )?;
            exit = INVALID;
        }
    }
    Ok(exit)
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
