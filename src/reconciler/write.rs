//! Writing pipeline status: conditions set with Kubernetes semantics, written only when they
//! changed, and an Event for every condition whose status flipped.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::status::{ConditionValue, set_condition};
use crate::api::v1beta1::TracePipeline;

/// Set `values` on `pipeline`'s conditions and write them if anything changed. Returns the
/// conditions whose status flipped.
pub async fn write_conditions(
    api: &Api<TracePipeline>,
    pipeline: &TracePipeline,
    values: &[ConditionValue],
    now: Time,
) -> Result<Vec<ConditionValue>, kube::Error> {
    let current: Vec<Condition> = pipeline
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut updated = current.clone();
    for value in values {
        updated = set_condition(&updated, value, pipeline.metadata.generation, now.clone());
    }
    if updated == current {
        return Ok(vec![]);
    }
    let flipped = values
        .iter()
        .filter(|v| {
            current
                .iter()
                .find(|c| c.type_ == v.type_)
                .is_none_or(|c| c.status != v.status)
        })
        .cloned()
        .collect();
    let patch = json!({"status": {"conditions": updated}});
    api.patch_status(
        &pipeline.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(flipped)
}

/// Publish an Event for each flipped condition; failures are logged, never fatal.
pub async fn publish_flips(
    recorder: &Recorder,
    pipeline: &TracePipeline,
    flipped: &[ConditionValue],
) {
    let reference = pipeline.object_ref(&());
    for value in flipped {
        let event = Event {
            type_: if value.status == "False" {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: value.reason.to_string(),
            note: Some(format!(
                "{} is {}: {}",
                value.type_, value.status, value.message
            )),
            action: "UpdateStatus".into(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::warn!(pipeline = %pipeline.name_any(), error = %err, "could not publish an Event");
        }
    }
}
