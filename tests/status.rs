//! Status decisions (docs/reference/status.md): slots, ConfigurationGenerated reasons,
//! GatewayHealthy from Deployment, ReplicaSets and pods, and condition updates.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;
use telemetry_manager::api::Reason;
use telemetry_manager::reconciler::status::{self, ConditionValue, SlotCandidate};
use telemetry_manager::validation::{
    Cause, FieldError, FieldErrorKind, Report, Warning, WarningKind,
};

fn candidate<'a>(name: &'a str, created: &'a str) -> SlotCandidate<'a> {
    SlotCandidate { name, created }
}

#[test]
fn slots_go_to_the_oldest_and_pass_on_when_one_is_deleted() {
    let pipelines = [
        candidate("f", "2026-11-24T10:05:00Z"),
        candidate("a", "2026-11-24T10:00:00Z"),
        candidate("c", "2026-11-24T10:02:00Z"),
        candidate("b", "2026-11-24T10:02:00Z"),
        candidate("d", "2026-11-24T10:03:00Z"),
        candidate("e", "2026-11-24T10:04:00Z"),
    ];
    let granted = status::slots(&pipelines, 5);
    assert_eq!(
        granted.into_iter().collect::<Vec<_>>(),
        vec!["a", "b", "c", "d", "e"]
    );
    // The sixth gets the slot freed by a deleted older pipeline.
    let without_c: Vec<_> = pipelines
        .iter()
        .filter(|p| p.name != "c")
        .cloned()
        .collect();
    assert!(status::slots(&without_c, 5).contains("f"));
    assert_eq!(status::slots(&pipelines, 0).len(), 6, "0 means unlimited");
}

fn error(cause: Cause) -> Report {
    Report {
        errors: vec![FieldError::new(
            "spec.output.otlp.endpoint",
            FieldErrorKind::Invalid,
            "detail",
            cause,
        )],
        warnings: vec![],
    }
}

#[test]
fn configuration_generated_reasons() {
    let ok = status::configuration_generated(&Report::default(), true, 5);
    assert_eq!((ok.status, ok.reason), ("True", Reason::GatewayConfigured));
    let over = status::configuration_generated(&Report::default(), false, 5);
    assert_eq!(
        (over.status, over.reason),
        ("False", Reason::MaxPipelinesExceeded)
    );
    for (cause, reason) in [
        (Cause::SecretMissing, Reason::ReferencedSecretMissing),
        (Cause::EndpointInvalid, Reason::EndpointInvalid),
        (Cause::TlsCertificateExpired, Reason::TLSCertificateExpired),
        (
            Cause::TlsConfigurationInvalid,
            Reason::TLSConfigurationInvalid,
        ),
        (Cause::Lookup, Reason::ValidationFailed),
    ] {
        let c = status::configuration_generated(&error(cause), true, 5);
        assert_eq!((c.status, c.reason), ("False", reason), "{cause:?}");
        assert_eq!(
            c.message,
            "spec.output.otlp.endpoint: Invalid value: detail"
        );
    }
    let expiring = Report {
        errors: vec![],
        warnings: vec![Warning {
            message: "spec.output.otlp.tls.cert: TLS certificate is about to expire, configured certificate is valid until 2030-06-10; renew it".into(),
            kind: WarningKind::CertificateExpiresSoon { not_after: 1_907_193_600 },
        }],
    };
    let c = status::configuration_generated(&expiring, true, 5);
    assert_eq!(
        (c.status, c.reason),
        ("True", Reason::TLSCertificateAboutToExpire)
    );
    assert_eq!(status::certificate_expiry(&expiring), Some(1_907_193_600));
}

fn deployment(replicas: i32) -> Deployment {
    serde_json::from_value(
        json!({"metadata": {"name": "telemetry-trace-gateway"}, "spec": {
        "replicas": replicas, "selector": {}, "template": {}}}),
    )
    .unwrap()
}

fn replica_set(revision: &str, ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": format!("rs-{revision}"),
        "annotations": {"deployment.kubernetes.io/revision": revision}},
        "spec": {"selector": {}}, "status": {"replicas": 2, "readyReplicas": ready}}))
    .unwrap()
}

fn pod(name: &str, status: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
}

fn running(name: &str) -> Pod {
    pod(
        name,
        json!({"phase": "Running", "containerStatuses": [{"name": "collector", "ready": true, "restartCount": 0,
        "image": "i", "imageID": "", "state": {"running": {}}}]}),
    )
}

#[test]
fn gateway_healthy_reasons_name_pod_container_and_reason() {
    let h = status::gateway_healthy(None, &[], &[]);
    assert_eq!((h.status, h.reason), ("False", Reason::GatewayNotReady));
    assert_eq!(h.message, "Trace gateway Deployment does not exist");

    let d = deployment(2);
    let ready = status::gateway_healthy(
        Some(&d),
        &[replica_set("1", 0), replica_set("2", 2)],
        &[running("a"), running("b")],
    );
    assert_eq!((ready.status, ready.reason), ("True", Reason::GatewayReady));

    let rolling = status::gateway_healthy(
        Some(&d),
        &[replica_set("1", 2), replica_set("2", 1)],
        &[running("a"), running("b")],
    );
    assert_eq!(
        (rolling.status, rolling.reason),
        ("True", Reason::RolloutInProgress)
    );
    assert!(rolling.message.contains("1 of 2"), "{}", rolling.message);

    let crashing = pod(
        "gw-1",
        json!({"containerStatuses": [{"name": "collector", "ready": false, "restartCount": 5,
        "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}),
    );
    let h = status::gateway_healthy(Some(&d), &[replica_set("2", 1)], &[running("a"), crashing]);
    assert_eq!((h.status, h.reason), ("False", Reason::GatewayNotReady));
    assert_eq!(
        h.message,
        "Pod gw-1 container collector is waiting: CrashLoopBackOff: back-off 5m0s"
    );

    let oom = pod(
        "gw-2",
        json!({"containerStatuses": [{"name": "collector", "ready": false, "restartCount": 1,
        "image": "i", "imageID": "", "state": {"running": {}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}),
    );
    let h = status::gateway_healthy(Some(&d), &[replica_set("2", 1)], &[oom]);
    assert_eq!(
        h.message,
        "Pod gw-2 container collector terminated: OOMKilled (exit code 137)"
    );

    let unschedulable = pod(
        "gw-3",
        json!({"conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": "0/3 nodes are available: insufficient memory"}]}),
    );
    let h = status::gateway_healthy(Some(&d), &[replica_set("2", 0)], &[unschedulable]);
    assert_eq!(
        h.message,
        "Pod gw-3 cannot be scheduled: 0/3 nodes are available: insufficient memory"
    );

    let pulling = pod(
        "gw-4",
        json!({"containerStatuses": [{"name": "collector", "ready": false, "restartCount": 0,
        "image": "i", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    let h = status::gateway_healthy(Some(&d), &[replica_set("2", 0)], &[pulling]);
    assert_eq!(
        (h.status, h.reason),
        ("True", Reason::RolloutInProgress),
        "starting pods are not an error"
    );

    let h = status::gateway_healthy(Some(&d), &[], &[]);
    assert_eq!((h.status, h.reason), ("False", Reason::GatewayNotReady));
}

fn time(text: &str) -> Time {
    serde_json::from_value(json!(text)).unwrap()
}

#[test]
fn conditions_change_their_transition_time_only_on_a_flip() {
    let value = |status: &'static str, reason: Reason, message: &str| ConditionValue {
        type_: status::CONFIGURATION_GENERATED,
        status,
        reason,
        message: message.into(),
    };
    let first = status::set_condition(
        &[],
        &value("True", Reason::GatewayConfigured, "ok"),
        Some(1),
        time("2026-11-24T10:00:00Z"),
    );
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].observed_generation, Some(1));

    // Same content later: identical, so nothing is written.
    let again = status::set_condition(
        &first,
        &value("True", Reason::GatewayConfigured, "ok"),
        Some(1),
        time("2026-11-24T11:00:00Z"),
    );
    assert_eq!(again, first);

    // Same status, new reason and generation: the transition time stays.
    let reason = status::set_condition(
        &first,
        &value("True", Reason::TLSCertificateAboutToExpire, "soon"),
        Some(2),
        time("2026-11-24T12:00:00Z"),
    );
    assert_eq!(
        reason[0].last_transition_time,
        first[0].last_transition_time
    );
    assert_eq!(
        (reason[0].reason.as_str(), reason[0].observed_generation),
        ("TLSCertificateAboutToExpire", Some(2))
    );

    // A flip moves it.
    let flipped = status::set_condition(
        &reason,
        &value("False", Reason::EndpointInvalid, "bad"),
        Some(3),
        time("2026-11-24T13:00:00Z"),
    );
    assert_eq!(
        flipped[0].last_transition_time,
        time("2026-11-24T13:00:00Z")
    );

    // Other condition types are kept as they are.
    let other = Condition {
        type_: status::GATEWAY_HEALTHY.into(),
        status: "True".into(),
        reason: "GatewayReady".into(),
        message: "m".into(),
        observed_generation: Some(3),
        last_transition_time: time("2026-11-24T09:00:00Z"),
    };
    let both = status::set_condition(
        std::slice::from_ref(&other),
        &value("True", Reason::GatewayConfigured, "ok"),
        Some(3),
        time("2026-11-24T14:00:00Z"),
    );
    assert_eq!(both[0], other);
    assert_eq!(both.len(), 2);
}
