//! Pipeline status decisions (docs/reference/status.md), pure: pipeline slots, the
//! ConfigurationGenerated and GatewayHealthy conditions, and condition updates with Kubernetes
//! semantics.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::Reason;
use crate::validation::{Cause, Report, WarningKind};

pub const CONFIGURATION_GENERATED: &str = "ConfigurationGenerated";
pub const GATEWAY_HEALTHY: &str = "GatewayHealthy";
pub const TELEMETRY_FLOW_HEALTHY: &str = "TelemetryFlowHealthy";

/// A condition's content, before it gets times and a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionValue {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: Reason,
    pub message: String,
}

/// One pipeline as slot assignment sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotCandidate<'a> {
    pub name: &'a str,
    /// RFC 3339 creation time; it sorts correctly as text.
    pub created: &'a str,
}

/// The pipelines that get a slot (docs/reference/status.md#pipeline-slots): the oldest `max` by
/// (creationTimestamp, name); all of them when `max` is 0. Only pipelines that are otherwise
/// reconcilable compete, so the order is a property of the objects and survives restarts and leader
/// changes.
pub fn slots<'a>(candidates: &[SlotCandidate<'a>], max: usize) -> BTreeSet<&'a str> {
    let mut ordered: Vec<&SlotCandidate<'a>> = candidates.iter().collect();
    ordered.sort_by(|a, b| (a.created, a.name).cmp(&(b.created, b.name)));
    let limit = if max == 0 { ordered.len() } else { max };
    ordered.into_iter().take(limit).map(|c| c.name).collect()
}

/// ConfigurationGenerated from a pipeline's validation report and whether it has a slot.
pub fn configuration_generated(
    report: &Report,
    has_slot: bool,
    max_pipelines: usize,
) -> ConditionValue {
    let value = |status, reason, message: String| ConditionValue {
        type_: CONFIGURATION_GENERATED,
        status,
        reason,
        message,
    };
    if let Some(error) = report.errors.first() {
        let reason = match error.cause {
            Cause::SecretMissing => Reason::ReferencedSecretMissing,
            Cause::EndpointInvalid => Reason::EndpointInvalid,
            Cause::TlsCertificateExpired => Reason::TLSCertificateExpired,
            Cause::TlsConfigurationInvalid => Reason::TLSConfigurationInvalid,
            Cause::OttlInvalid => Reason::OTTLSpecInvalid,
            // The reference has no finer reason for the rest; the message names the problem.
            Cause::Lookup
            | Cause::Schema
            | Cause::NameCollision
            | Cause::SecretValueInvalid
            | Cause::PipelineLimit => Reason::ValidationFailed,
        };
        let message = report
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return value("False", reason, message);
    }
    if !has_slot {
        return value(
            "False",
            Reason::MaxPipelinesExceeded,
            format!(
                "Maximum pipeline count limit exceeded: only the {max_pipelines} oldest TracePipelines are part of the gateway; delete one, or raise --max-pipelines"
            ),
        );
    }
    let expiring = report.warnings.iter().find_map(|w| match w.kind {
        WarningKind::CertificateExpiresSoon { .. } => Some(w.message.clone()),
        _ => None,
    });
    match expiring {
        Some(message) => value("True", Reason::TLSCertificateAboutToExpire, message),
        None => value(
            "True",
            Reason::GatewayConfigured,
            "TracePipeline specification is successfully applied to the configuration of the trace gateway".into(),
        ),
    }
}

/// The Unix time at which a pipeline must be looked at again because its certificate expires.
pub fn certificate_expiry(report: &Report) -> Option<i64> {
    report
        .warnings
        .iter()
        .filter_map(|w| match w.kind {
            WarningKind::CertificateExpiresSoon { not_after } => Some(not_after),
            _ => None,
        })
        .min()
}

/// Container states that keep a gateway pod from working, with what to do about them.
const BLOCKING_WAIT_REASONS: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

/// GatewayHealthy from the gateway's Deployment, its ReplicaSets and pods
/// (docs/reference/status.md).
pub fn gateway_healthy(
    deployment: Option<&Deployment>,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> ConditionValue {
    let value = |status, reason, message: String| ConditionValue {
        type_: GATEWAY_HEALTHY,
        status,
        reason,
        message,
    };
    let not_ready = |message: String| value("False", Reason::GatewayNotReady, message);
    let Some(deployment) = deployment else {
        return not_ready("Trace gateway Deployment does not exist".into());
    };
    if let Some(problem) = pods.iter().find_map(pod_problem) {
        return not_ready(problem);
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let revision = |rs: &ReplicaSet| -> i64 {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    };
    let newest = replica_sets.iter().max_by_key(|rs| revision(rs));
    let ready = newest
        .and_then(|rs| rs.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if desired > 0 && pods.is_empty() && newest.is_none() {
        return not_ready("Trace gateway has no pods; check the Deployment's events".into());
    }
    if ready >= desired {
        value(
            "True",
            Reason::GatewayReady,
            "Trace gateway Deployment is ready".into(),
        )
    } else {
        value(
            "True",
            Reason::RolloutInProgress,
            format!(
                "Trace gateway is being rolled out: {ready} of {desired} pods of the newest revision are ready"
            ),
        )
    }
}

/// What keeps one pod from running, naming the pod, the container and the reason.
fn pod_problem(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("<unknown>");
    let status = pod.status.as_ref()?;
    if let Some(scheduled) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        && scheduled.status == "False"
        && scheduled.reason.as_deref() == Some("Unschedulable")
    {
        return Some(format!(
            "Pod {name} cannot be scheduled: {}",
            scheduled.message.as_deref().unwrap_or("no node fits")
        ));
    }
    for container in status.container_statuses.iter().flatten() {
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref())
            && let Some(reason) = waiting
                .reason
                .as_deref()
                .filter(|r| BLOCKING_WAIT_REASONS.contains(r))
        {
            return Some(format!(
                "Pod {name} container {} is waiting: {reason}{}",
                container.name,
                waiting
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
        let last = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()).or(last)
            && terminated.exit_code != 0
            && !container.ready
        {
            return Some(format!(
                "Pod {name} container {} terminated: {} (exit code {})",
                container.name,
                terminated.reason.as_deref().unwrap_or("Error"),
                terminated.exit_code
            ));
        }
    }
    None
}

/// `conditions` with `value` set (docs/reference/status.md): `lastTransitionTime` changes only when
/// the status flips, `observedGeneration` is the object's generation. Returns the conditions
/// unchanged, equal to the input, when nothing changed, so callers write only on a difference.
pub fn set_condition(
    conditions: &[Condition],
    value: &ConditionValue,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let mut updated: Vec<Condition> = conditions.to_vec();
    let existing = updated.iter_mut().find(|c| c.type_ == value.type_);
    match existing {
        Some(condition) => {
            if condition.status != value.status {
                condition.last_transition_time = now;
            }
            condition.status = value.status.to_string();
            condition.reason = value.reason.to_string();
            condition.message = value.message.clone();
            condition.observed_generation = generation;
        }
        None => updated.push(Condition {
            type_: value.type_.to_string(),
            status: value.status.to_string(),
            reason: value.reason.to_string(),
            message: value.message.clone(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
    updated
}
