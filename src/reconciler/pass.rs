//! One reconcile pass (docs/architecture.md#reconciliation): validate every pipeline against the
//! cluster, give out slots, then apply the gateway for the reconcilable ones, or delete it when
//! there are none. The decisions are the pure functions of `validation`, `gateway` and `status`;
//! this only gathers their inputs and writes their results.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::apply::{self, Applied, ApplyMode};
use super::status::{self, ConditionValue, SlotCandidate};
use crate::admission::KubeCluster;
use crate::api::v1beta1::TracePipeline;
use crate::gateway::{self, GatewaySettings, PipelineValues, ReconcilablePipeline};
use crate::validation::{
    self, Cause, ClusterState, Context, Report, ResolvedSecrets, SecretRefPolicy, Settings,
};

#[derive(Clone, Debug)]
pub struct PassSettings {
    pub gateway: GatewaySettings,
    pub max_pipelines: usize,
}

/// What a pass decided and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassOutcome {
    /// ConfigurationGenerated per pipeline name.
    pub configuration: BTreeMap<String, ConditionValue>,
    pub applied: Applied,
    /// A Secret could not be read: try again with backoff.
    pub lookup_failed: bool,
    /// The earliest certificate expiry among the reconciled pipelines (Unix seconds).
    pub certificate_expiry: Option<i64>,
}

/// Run one pass over `pipelines` (all TracePipelines of the cluster).
pub async fn reconcile_gateway(
    client: &kube::Client,
    pipelines: &[TracePipeline],
    settings: &PassSettings,
    mode: ApplyMode,
    now: i64,
) -> Result<PassOutcome, kube::Error> {
    let cluster = KubeCluster::new(client.clone());
    let names: Vec<String> = pipelines.iter().map(|p| p.name_any()).collect();
    let validation_settings = Settings {
        secret_ref_policy: SecretRefPolicy::Reject,
        max_pipelines: settings.max_pipelines,
    };
    let mut outcome = PassOutcome::default();
    let mut checked = Vec::new();
    for pipeline in pipelines
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let object = serde_json::to_value(pipeline).expect("a TracePipeline serialises");
        let (report, parsed) = match validation::parse(&object) {
            Err(report) => (report, None),
            Ok(parsed) => {
                let secrets =
                    ResolvedSecrets::resolve(validation::secret_refs(&parsed.spec), &cluster).await;
                let ctx = Context {
                    settings: validation_settings,
                    now,
                    cluster: Some(ClusterState {
                        secrets: &secrets,
                        other_pipelines: &names,
                        existing_pipelines: None,
                    }),
                };
                let report = validation::validate(&parsed, &ctx);
                (report, Some((parsed, secrets)))
            }
        };
        outcome.lookup_failed |= report.errors.iter().any(|e| e.cause == Cause::Lookup);
        checked.push((pipeline, report, parsed));
    }

    let created: Vec<String> = checked
        .iter()
        .map(|(p, _, _)| {
            p.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default()
        })
        .collect();
    let candidates: Vec<SlotCandidate<'_>> = checked
        .iter()
        .zip(&created)
        .filter(|((_, report, _), _)| report.is_valid())
        .map(|((p, _, _), created)| SlotCandidate {
            name: p.metadata.name.as_deref().unwrap_or_default(),
            created,
        })
        .collect();
    let slots = status::slots(&candidates, settings.max_pipelines);

    let mut reconcilable = Vec::new();
    for (pipeline, report, parsed) in &checked {
        let name = pipeline.name_any();
        let has_slot = slots.contains(name.as_str());
        let mut condition =
            status::configuration_generated(report, has_slot, settings.max_pipelines);
        if let (true, true, Some((parsed, secrets))) = (report.is_valid(), has_slot, parsed) {
            match PipelineValues::resolve(&parsed.spec, secrets) {
                Ok(values) => {
                    reconcilable.push(ReconcilablePipeline {
                        name: name.clone(),
                        uid: pipeline.metadata.uid.clone(),
                        spec: parsed.spec.clone(),
                        values,
                    });
                    outcome.certificate_expiry = [
                        outcome.certificate_expiry,
                        status::certificate_expiry(report),
                    ]
                    .into_iter()
                    .flatten()
                    .min();
                }
                Err(error) => {
                    condition = status::configuration_generated(
                        &lookup_report(error),
                        true,
                        settings.max_pipelines,
                    );
                }
            }
        }
        outcome.configuration.insert(name, condition);
    }

    // A Secret that could not be read says nothing about the pipeline: keep the gateway as it is
    // rather than drop a pipeline for an API hiccup, and try again.
    if outcome.lookup_failed {
        return Ok(outcome);
    }
    let gateway_settings = &settings.gateway;
    outcome.applied = if reconcilable.is_empty() {
        apply::delete_all(client, &gateway_settings.namespace, gateway_settings.istio).await?
    } else {
        let objects = gateway::desired(&reconcilable, gateway_settings);
        apply::apply(
            client,
            &objects,
            &gateway_settings.namespace,
            gateway_settings.istio,
            mode,
        )
        .await?
    };
    Ok(outcome)
}

/// A value that validated but then did not resolve (the Secret changed in between).
fn lookup_report(error: validation::ResolveError) -> Report {
    Report {
        errors: vec![validation::FieldError::new(
            "",
            validation::FieldErrorKind::NotFound,
            error.to_string(),
            Cause::SecretMissing,
        )],
        warnings: vec![],
    }
}
