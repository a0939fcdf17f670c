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

/// The most bytes an Event's note may hold: the API server refuses an Event with a longer one.
const NOTE_LIMIT: usize = 1024;

/// `<type> is <status>: <message>`, cut at a character boundary to at most [`NOTE_LIMIT`] bytes
/// and then ending in `…`: a message can be longer (several field errors, a long OTTL name),
/// and the condition itself keeps all of it.
fn event_note(value: &ConditionValue) -> String {
    let mut note = format!("{} is {}: {}", value.type_, value.status, value.message);
    if note.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
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
            note: Some(event_note(value)),
            action: "UpdateStatus".into(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::warn!(pipeline = %pipeline.name_any(), error = %err, "could not publish an Event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    fn value(message: &str) -> ConditionValue {
        ConditionValue {
            type_: "ConfigurationGenerated",
            status: "False",
            reason: Reason::OTTLSpecInvalid,
            message: message.to_string(),
        }
    }

    #[test]
    fn event_notes_fit_the_api_servers_limit() {
        assert_eq!(
            event_note(&value("short")),
            "ConfigurationGenerated is False: short"
        );
        let prefix = "ConfigurationGenerated is False: ".len();
        let fits = "x".repeat(NOTE_LIMIT - prefix);
        assert_eq!(event_note(&value(&fits)).len(), NOTE_LIMIT);
        assert!(event_note(&value(&fits)).ends_with('x'));

        let long = event_note(&value(&format!("{fits}y")));
        assert_eq!(long.len(), NOTE_LIMIT);
        assert!(long.ends_with("xx…"), "{long}");

        // A cut never splits a character: three-byte characters from an odd offset.
        let wide = event_note(&value(&format!("a{}", "€".repeat(600))));
        assert!(wide.len() <= NOTE_LIMIT && wide.len() > NOTE_LIMIT - 4);
        assert!(wide.ends_with("€…"), "{wide}");
    }
}
