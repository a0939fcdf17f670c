//! Leader election and status writes against a mocked API server (tower-test).

use crate::common;

use std::time::Duration;

use common::mock_api::{self, expect};
use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::client::Body;
use serde_json::{Value, json};
use telemetry_manager::api::Reason;
use telemetry_manager::api::v1beta1::TracePipeline;
use telemetry_manager::reconciler::leader::{self, LeaseAction, LeaseSettings};
use telemetry_manager::reconciler::status::ConditionValue;
use telemetry_manager::reconciler::write;

fn lease(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> Lease {
    let renewed = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago);
    serde_json::from_value(json!({
        "metadata": {"name": "telemetry-manager-leader", "namespace": "kyma-system", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "leaseTransitions": 2}
    }))
    .unwrap()
}

#[test]
fn lease_decisions() {
    let now = Timestamp::now();
    assert_eq!(leader::decide(None, "me", now), LeaseAction::Create);
    assert_eq!(
        leader::decide(Some(&lease(Some("me"), 3, 15)), "me", now),
        LeaseAction::Renew
    );
    assert_eq!(
        leader::decide(Some(&lease(Some("other"), 3, 15)), "me", now),
        LeaseAction::Follow {
            holder: "other".into()
        }
    );
    assert_eq!(
        leader::decide(Some(&lease(Some("other"), 30, 15)), "me", now),
        LeaseAction::TakeOver,
        "expired"
    );
    assert_eq!(
        leader::decide(Some(&lease(None, 0, 1)), "me", now),
        LeaseAction::TakeOver,
        "released"
    );
}

fn settings() -> LeaseSettings {
    LeaseSettings {
        namespace: "kyma-system".into(),
        name: "telemetry-manager-leader".into(),
        identity: "me".into(),
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry: Duration::from_secs(5),
    }
}

/// The defaults of `telemetry-manager run`.
fn default_timings() -> LeaseSettings {
    LeaseSettings {
        duration: Duration::from_secs(8),
        renew_deadline: Duration::from_secs(5),
        retry: Duration::from_secs(2),
        ..settings()
    }
}

#[test]
fn lease_timings_must_nest() {
    let secs = Duration::from_secs;
    let with = |duration, renew_deadline, retry| LeaseSettings {
        duration,
        renew_deadline,
        retry,
        ..settings()
    };
    assert_eq!(default_timings().check_timings(), Ok(()));
    let table = [
        (with(secs(8), secs(8), secs(2)), "--lease-renew-deadline"),
        (with(secs(8), secs(9), secs(2)), "--lease-renew-deadline"),
        (with(secs(8), secs(5), secs(5)), "--lease-retry-period"),
        (
            with(secs(8), secs(5), Duration::ZERO),
            "--lease-retry-period",
        ),
        (
            with(
                Duration::from_millis(1500),
                secs(1),
                Duration::from_millis(500),
            ),
            "--lease-duration",
        ),
        (
            with(Duration::ZERO, Duration::ZERO, Duration::ZERO),
            "--lease-duration",
        ),
    ];
    for (timings, flag) in table {
        let error = timings.check_timings().unwrap_err().to_string();
        assert!(error.starts_with(flag), "{error}");
    }
}

/// A Lease of `holder` renewed `ago` (wall clock) with the given duration in seconds.
fn lease_renewed(holder: &str, ago: Duration, duration: i32) -> Lease {
    let renewed = Timestamp::now() - k8s_openapi::jiff::SignedDuration::try_from(ago).unwrap();
    serde_json::from_value(json!({
        "metadata": {"name": "telemetry-manager-leader", "namespace": "kyma-system", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "leaseTransitions": 2}
    }))
    .unwrap()
}

/// Virtual time (tokio's paused clock), so that the timings are exact on a busy machine.
#[tokio::test(start_paused = true)]
async fn a_leader_whose_renewal_hangs_stops_writing_before_its_lease_can_expire() {
    let timings = default_timings();
    let (client, mut handle) = mock_api::client("kyma-system");
    let (sender, mut leading) = tokio::sync::watch::channel(false);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(leader::run(client, timings.clone(), sender, stop.clone()));
    let start = tokio::time::Instant::now();
    let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
    send.send_response(mock_api::status(404, "NotFound"));
    let (body, send) = expect(
        &mut handle,
        Method::POST,
        "/apis/coordination.k8s.io/v1/namespaces/kyma-system/leases",
    )
    .await;
    send.send_response(respond_with(201, &body));
    leading.changed().await.unwrap();
    assert!(*leading.borrow());
    // One renewal succeeds, the next one hangs.
    let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
    let renewed = tokio::time::Instant::now();
    assert_eq!(renewed - start, timings.retry);
    send.send_response(respond_with(
        200,
        &serde_json::to_value(lease_renewed("me", Duration::ZERO, 8)).unwrap(),
    ));
    let (_, send) = expect(&mut handle, Method::PUT, LEASE).await;
    send.send_response(respond_with(
        200,
        &serde_json::to_value(lease_renewed("me", Duration::ZERO, 8)).unwrap(),
    ));
    let (_, _hanging) = expect(&mut handle, Method::GET, LEASE).await;
    tokio::time::timeout(timings.duration, leading.changed())
        .await
        .expect("leadership ends before the Lease can expire")
        .unwrap();
    assert!(!*leading.borrow());
    let stopped = tokio::time::Instant::now() - renewed;
    assert!(stopped <= timings.renew_deadline, "{stopped:?}");
    assert!(stopped < timings.duration, "{stopped:?}");
    stop.cancel();
    drop(handle);
    task.await.unwrap();
}

/// A standby follows a leader that renews, however long, and takes over within 10 s once it
/// stopped renewing (a crash). Virtual time; the Lease's renewTime follows it.
#[tokio::test(start_paused = true)]
async fn a_standby_takes_over_within_ten_seconds_of_the_last_renewal_and_never_before() {
    let timings = default_timings();
    let (client, mut handle) = mock_api::client("kyma-system");
    let (sender, leading) = tokio::sync::watch::channel(false);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(leader::run(client, timings.clone(), sender, stop.clone()));
    let start = tokio::time::Instant::now();
    // The leader renews every 2 s for a minute; each check finds its renewal as old as it can
    // be. A PUT here fails the expectation of a GET.
    while start.elapsed() < Duration::from_secs(60) {
        let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
        let ago = timings.retry - Duration::from_millis(100);
        send.send_response(respond_with(
            200,
            &serde_json::to_value(lease_renewed("other", ago, 8)).unwrap(),
        ));
        assert!(!*leading.borrow());
    }
    // The leader crashes right after a renewal.
    let crashed = tokio::time::Instant::now();
    let taken_over = loop {
        let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
        send.send_response(respond_with(
            200,
            &serde_json::to_value(lease_renewed("other", crashed.elapsed(), 8)).unwrap(),
        ));
        if let Ok((body, send)) = tokio::time::timeout(
            Duration::from_millis(1),
            expect(&mut handle, Method::PUT, LEASE),
        )
        .await
        {
            assert_eq!(body["spec"]["holderIdentity"], "me");
            send.send_response(respond_with(200, &body));
            break crashed.elapsed();
        }
    };
    assert!(taken_over <= Duration::from_secs(10), "{taken_over:?}");
    stop.cancel();
    drop(handle);
    task.await.unwrap();
}

const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/kyma-system/leases/telemetry-manager-leader";

#[tokio::test]
async fn taking_over_an_expired_lease_is_conditional_and_a_conflict_means_following() {
    let (client, mut handle) = mock_api::client("kyma-system");
    let api: Api<Lease> = Api::namespaced(client, "kyma-system");
    let task = tokio::spawn(async move { leader::try_lead(&api, &settings()).await });
    let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
    send.send_response(respond_with(
        200,
        &serde_json::to_value(lease(Some("other"), 60, 15)).unwrap(),
    ));
    let (body, send) = expect(&mut handle, Method::PUT, LEASE).await;
    assert_eq!(body["metadata"]["resourceVersion"], "7");
    assert_eq!(body["spec"]["holderIdentity"], "me");
    assert_eq!(body["spec"]["leaseTransitions"], 3);
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409});
    send.send_response(respond_with(409, &conflict));
    assert!(
        !task.await.unwrap().unwrap(),
        "another replica won the race"
    );
}

#[tokio::test]
async fn a_failed_renewal_is_an_error_and_release_hands_the_lease_over() {
    let (client, mut handle) = mock_api::client("kyma-system");
    let api: Api<Lease> = Api::namespaced(client.clone(), "kyma-system");
    let task = tokio::spawn(async move { leader::try_lead(&api, &settings()).await });
    let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable", "code": 503});
    send.send_response(respond_with(503, &unavailable));
    assert!(
        task.await.unwrap().is_err(),
        "the caller stops writing at once"
    );

    let api: Api<Lease> = Api::namespaced(client, "kyma-system");
    let task = tokio::spawn(async move { leader::release(&api, &settings()).await });
    let (_, send) = expect(&mut handle, Method::GET, LEASE).await;
    send.send_response(respond_with(
        200,
        &serde_json::to_value(lease(Some("me"), 1, 15)).unwrap(),
    ));
    let (body, send) = expect(&mut handle, Method::PUT, LEASE).await;
    assert!(
        body["spec"]
            .get("holderIdentity")
            .is_none_or(Value::is_null),
        "{body}"
    );
    assert_eq!(body["spec"]["leaseDurationSeconds"], 1);
    send.send_response(respond_with(200, &body));
    task.await.unwrap().unwrap();
}

fn pipeline(conditions: Value) -> TracePipeline {
    serde_json::from_value(json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
        "metadata": {"name": "backend", "generation": 4},
        "spec": {"output": {"otlp": {"endpoint": {"value": "b:4317"}}}},
        "status": {"conditions": conditions}
    }))
    .unwrap()
}

#[tokio::test]
async fn status_is_written_only_when_it_changed() {
    let value = ConditionValue {
        type_: "ConfigurationGenerated",
        status: "True",
        reason: Reason::GatewayConfigured,
        message: "ok".into(),
    };
    let now: Time = serde_json::from_value(json!("2026-11-24T12:00:00Z")).unwrap();
    let (client, mut handle) = mock_api::client("kyma-system");
    let api: Api<TracePipeline> = Api::all(client.clone());
    let fresh = pipeline(json!([]));
    let (v, n) = (value.clone(), now.clone());
    let task = tokio::spawn(async move { write::write_conditions(&api, &fresh, &[v], n).await });
    let (body, send) = expect(
        &mut handle,
        Method::PATCH,
        "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/backend/status",
    )
    .await;
    assert_eq!(
        body,
        json!({"status": {"conditions": [{"type": "ConfigurationGenerated", "status": "True", "reason": "GatewayConfigured",
               "message": "ok", "observedGeneration": 4, "lastTransitionTime": "2026-11-24T12:00:00Z"}]}})
    );
    send.send_response(respond_with(
        200,
        &serde_json::to_value(pipeline(json!([]))).unwrap(),
    ));
    let flipped = task.await.unwrap().unwrap();
    assert_eq!(
        flipped,
        vec![value.clone()],
        "a new condition is a flip, announced by an Event"
    );

    let written = pipeline(body["status"]["conditions"].clone());
    let api: Api<TracePipeline> = Api::all(client);
    let task =
        tokio::spawn(async move { write::write_conditions(&api, &written, &[value], now).await });
    assert!(task.await.unwrap().unwrap().is_empty());
    assert!(
        handle.next_request().await.is_none(),
        "an unchanged status is not written"
    );
}

fn respond_with(code: u16, body: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}
