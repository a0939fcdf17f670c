//! The whole manager against an in-memory API server: it takes the Lease, builds the gateway for
//! a valid pipeline, writes the three conditions, watches only the referenced Secret, follows a
//! Secret rotation, reads the cluster UID once, and releases the Lease on SIGTERM.

use crate::common;

use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_api::{self, FakeApi};
use serde_json::{Value, json};

const PIPELINES: &str = "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines";
const SECRET: &str = "/api/v1/namespaces/obs/secrets/backend";
const GATEWAY_SECRET: &str = "/api/v1/namespaces/telemetry/secrets/telemetry-trace-gateway";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/telemetry/deployments/telemetry-trace-gateway";
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/telemetry/leases/telemetry-manager-leader";
const CONFIG_MAP: &str = "/api/v1/namespaces/telemetry/configmaps/telemetry-trace-gateway";
const KUBE_SYSTEM: &str = "/api/v1/namespaces/kube-system";

fn secret(endpoint: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend", "namespace": "obs"},
           "data": {"endpoint": base64::engine::general_purpose::STANDARD.encode(endpoint)}})
}

async fn eventually(what: &str, api: &Arc<Mutex<FakeApi>>, check: impl Fn(&FakeApi) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(&api.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; requests:\n{}",
            api.lock().unwrap().requests.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start(kubeconfig: &std::path::Path) -> Child {
    start_logging_to(kubeconfig, Stdio::null())
}

/// The manager, with its log (text) going to `log`.
fn start_logging_to(kubeconfig: &std::path::Path, log: Stdio) -> Child {
    let health = format!("127.0.0.1:{}", common::free_port());
    spawn_manager(
        kubeconfig,
        log,
        &[
            "--health-addr",
            &health,
            "--shutdown-delay",
            "0s",
            "--flow-poll-interval",
            "1s",
        ],
    )
}

/// The manager as `manager-0`, with its log (text) going to `log` and `flags` added.
fn spawn_manager(kubeconfig: &std::path::Path, log: Stdio, flags: &[&str]) -> Child {
    fake_api::manager_command(kubeconfig, "manager-0")
        .args(["--log-format", "text"])
        .args(flags)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn condition<'a>(pipeline: &'a Value, type_: &str) -> Option<&'a Value> {
    pipeline["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test]
async fn the_manager_builds_the_gateway_writes_status_and_follows_secret_rotation() {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    {
        let mut state = api.lock().unwrap();
        state.insert(SECRET, secret("backend-one.example.com:4317"));
        state.insert(
            &format!("{PIPELINES}/backend"),
            json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
                   "metadata": {"name": "backend"},
                   "spec": {"output": {"otlp": {"protocol": "grpc", "endpoint":
                       {"valueFrom": {"secretKeyRef": {"name": "backend", "namespace": "obs", "key": "endpoint"}}}}}}}),
        );
        for i in 0..50 {
            state.insert(&format!("/api/v1/namespaces/other/secrets/unrelated-{i}"), json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("unrelated-{i}"), "namespace": "other"}}));
        }
        state.insert(
            KUBE_SYSTEM,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
        );
    }
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("tm-controller-kubeconfig-{}", std::process::id()));
    fake_api::kubeconfig(address, &kubeconfig);
    let mut manager = start(&kubeconfig);

    eventually("the Lease", &api, |s| {
        s.objects
            .get(LEASE)
            .is_some_and(|l| l["spec"]["holderIdentity"] == "manager-0")
    })
    .await;
    eventually("the gateway Deployment", &api, |s| {
        s.objects.contains_key(DEPLOYMENT)
    })
    .await;
    eventually("all three conditions", &api, |s| {
        let pipeline = &s.objects[&format!("{PIPELINES}/backend")];
        [
            "ConfigurationGenerated",
            "GatewayHealthy",
            "TelemetryFlowHealthy",
        ]
        .iter()
        .all(|t| condition(pipeline, t).is_some())
    })
    .await;
    {
        let state = api.lock().unwrap();
        let pipeline = &state.objects[&format!("{PIPELINES}/backend")];
        assert_eq!(
            condition(pipeline, "ConfigurationGenerated").unwrap()["reason"],
            "GatewayConfigured"
        );
        assert_eq!(
            condition(pipeline, "GatewayHealthy").unwrap()["status"],
            "False",
            "no gateway pods run here"
        );
        assert_eq!(
            condition(pipeline, "TelemetryFlowHealthy").unwrap()["reason"],
            "GatewayProbingFailed"
        );
        let config = state.objects["/api/v1/namespaces/telemetry/configmaps/telemetry-trace-gateway"]["data"]["relay.conf"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            config.contains("otlp_grpc/backend") && !config.contains("backend-one"),
            "{config}"
        );
        // Secrets: only the referenced one, read by name and watched by a name field selector.
        let secret_requests: Vec<&String> = state
            .requests
            .iter()
            .filter(|r| r.contains("/secrets"))
            .collect();
        for request in &secret_requests {
            let allowed = request.contains("/namespaces/obs/secrets/backend")
                || request.contains("/namespaces/obs/secrets?")
                    && request.contains("fieldSelector=metadata.name%3Dbackend")
                // The manager's own namespace: its CA Secret and the gateway's env Secret.
                || request.contains("/namespaces/telemetry/secrets");
            assert!(allowed, "unexpected Secret request {request}");
        }
        assert!(
            !state
                .requests
                .iter()
                .any(|r| r.contains("/namespaces/other/")),
            "an unrelated namespace was read"
        );
    }

    // Probes every second that find nothing new write nothing.
    let status_writes = |s: &FakeApi| {
        s.requests
            .iter()
            .filter(|r| r.starts_with("PATCH") && r.contains("/backend/status"))
            .count()
    };
    let writes = status_writes(&api.lock().unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status_writes(&api.lock().unwrap()),
        writes,
        "an unchanged status is not written again"
    );

    // Someone deletes the gateway's ConfigMap: it is back within seconds.
    api.lock().unwrap().delete_for_test(CONFIG_MAP);
    let deleted = Instant::now();
    eventually("the ConfigMap restored", &api, |s| {
        s.objects.contains_key(CONFIG_MAP)
    })
    .await;
    assert!(
        deleted.elapsed() < Duration::from_secs(10),
        "took {:?}",
        deleted.elapsed()
    );

    // Rotate the referenced Secret: the env Secret follows within seconds.
    let checksum = |s: &FakeApi| {
        s.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .clone()
    };
    let before = checksum(&api.lock().unwrap());
    let endpoint_of =
        |s: &FakeApi| s.objects[GATEWAY_SECRET]["data"]["OTLP_ENDPOINT_BACKEND"].clone();
    let old_endpoint = endpoint_of(&api.lock().unwrap());
    let rotated = Instant::now();
    api.lock()
        .unwrap()
        .insert(SECRET, secret("backend-two.example.com:4317"));
    eventually("the rotated Secret in the gateway", &api, |s| {
        endpoint_of(s) != old_endpoint
    })
    .await;
    assert!(
        rotated.elapsed() < Duration::from_secs(10),
        "took {:?}",
        rotated.elapsed()
    );
    // The Deployment is applied right after the env Secret in the same pass: the pods roll.
    eventually("the new config checksum", &api, |s| checksum(s) != before).await;

    let status = common::terminate(&mut manager).await;
    assert!(status.success());
    let lease = api.lock().unwrap().objects[LEASE].clone();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "the Lease is released on shutdown: {lease}"
    );
    // The first apply and the restoration; the rotation changes the env Secret and the
    // Deployment only, and the watch events of the manager's own writes start no pass that
    // applies again.
    let applies = api
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.starts_with("PATCH /api/v1/namespaces/telemetry/configmaps"))
        .count();
    assert_eq!(
        applies, 2,
        "the ConfigMap was applied {applies} times: a reconcile loop"
    );
    // Every pass inserted the cluster UID, read once.
    let state = api.lock().unwrap();
    let uid = state.objects[KUBE_SYSTEM]["metadata"]["uid"]
        .as_str()
        .unwrap();
    let config = state.objects[CONFIG_MAP]["data"]["relay.conf"]
        .as_str()
        .unwrap();
    assert!(
        config.contains(&format!(r#""k8s.cluster.uid"], "{uid}")"#)),
        "{config}"
    );
    assert_eq!(namespace_reads(&state), 1);
    drop(state);
    std::fs::remove_file(&kubeconfig).unwrap();
}

fn namespace_reads(state: &FakeApi) -> usize {
    state
        .requests
        .iter()
        .filter(|r| r.starts_with(&format!("GET {KUBE_SYSTEM}")))
        .count()
}

#[tokio::test]
async fn without_access_to_kube_system_the_gateway_is_built_without_the_cluster_uid() {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    {
        let mut state = api.lock().unwrap();
        state.insert(
            &format!("{PIPELINES}/backend"),
            json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
                   "metadata": {"name": "backend"},
                   "spec": {"output": {"otlp": {"endpoint": {"value": "backend.example.com:4317"}}}}}),
        );
        state.insert(
            KUBE_SYSTEM,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
        );
        state.forbidden.insert(KUBE_SYSTEM.to_string());
    }
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("tm-forbidden-kubeconfig-{}", std::process::id()));
    fake_api::kubeconfig(address, &kubeconfig);
    let log_path = std::env::temp_dir().join(format!("tm-forbidden-log-{}", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut manager = start_logging_to(&kubeconfig, Stdio::from(log));

    eventually("the gateway's configuration", &api, |s| {
        s.objects.contains_key(CONFIG_MAP)
    })
    .await;
    eventually("ConfigurationGenerated", &api, |s| {
        condition(
            &s.objects[&format!("{PIPELINES}/backend")],
            "ConfigurationGenerated",
        )
        .is_some_and(|c| c["reason"] == "GatewayConfigured")
    })
    .await;
    // Another pass: the namespace is not asked for again.
    api.lock().unwrap().delete_for_test(CONFIG_MAP);
    eventually("the ConfigMap restored", &api, |s| {
        s.objects.contains_key(CONFIG_MAP)
    })
    .await;
    {
        let state = api.lock().unwrap();
        assert_eq!(namespace_reads(&state), 1);
        let config = state.objects[CONFIG_MAP]["data"]["relay.conf"]
            .as_str()
            .unwrap();
        assert!(!config.contains("k8s.cluster.uid"), "{config}");
        assert!(config.contains("transform/resolve-service-name"));
    }
    assert!(common::terminate(&mut manager).await.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        log.matches("cannot read the kube-system namespace").count(),
        1,
        "{log}"
    );
    std::fs::remove_file(&kubeconfig).unwrap();
    std::fs::remove_file(&log_path).unwrap();
}

#[tokio::test]
async fn a_burst_of_pipelines_costs_a_few_passes_and_a_single_change_one() {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    api.lock().unwrap().insert(
        KUBE_SYSTEM,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
    );
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("tm-burst-kubeconfig-{}", std::process::id()));
    fake_api::kubeconfig(address, &kubeconfig);
    let health = format!("127.0.0.1:{}", common::free_port());
    let mut manager = spawn_manager(
        &kubeconfig,
        Stdio::null(),
        &[
            "--health-addr",
            &health,
            "--shutdown-delay",
            "0s",
            "--max-pipelines",
            "0",
        ],
    );
    eventually("the first pass", &api, |s| s.passes() > 0).await;
    // Room for the passes of the start (leadership, first lists) to end.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pipeline = |name: &str| {
        json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
               "metadata": {"name": name},
               "spec": {"output": {"otlp": {"endpoint": {"value": format!("{name}.example.com:4317")}}}}})
    };
    let all_configured = |s: &FakeApi, count: usize| {
        let configured = (0..count).all(|i| {
            s.objects
                .get(&format!("{PIPELINES}/p-{i}"))
                .and_then(|p| condition(p, "ConfigurationGenerated"))
                .is_some_and(|c| c["reason"] == "GatewayConfigured")
        });
        let config = s
            .objects
            .get(CONFIG_MAP)
            .and_then(|c| c["data"]["relay.conf"].as_str().map(str::to_string));
        configured
            && config.is_some_and(|c| (0..count).all(|i| c.contains(&format!("otlp_grpc/p-{i}:"))))
    };

    // One pipeline after a quiet period: one pass builds the gateway and writes its status.
    let before = api.lock().unwrap().passes();
    api.lock()
        .unwrap()
        .insert(&format!("{PIPELINES}/p-0"), pipeline("p-0"));
    eventually("the first pipeline reconciled", &api, |s| {
        all_configured(s, 1)
    })
    .await;
    // Room for any pass the manager's own writes (gateway objects, status) would start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let single = api.lock().unwrap().passes() - before;

    // 99 more at once, as `kubectl apply -f` of a directory does.
    let before = api.lock().unwrap().passes();
    {
        let mut state = api.lock().unwrap();
        for i in 1..100 {
            state.insert(&format!("{PIPELINES}/p-{i}"), pipeline(&format!("p-{i}")));
        }
    }
    eventually("all 100 pipelines reconciled", &api, |s| {
        all_configured(s, 100)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst = api.lock().unwrap().passes() - before;
    assert!(common::terminate(&mut manager).await.success());
    std::fs::remove_file(&kubeconfig).unwrap();

    // The events of the manager's own writes (gateway objects, Deployment, status) start none.
    assert_eq!(single, 1, "one pipeline took {single} passes");
    // The first change starts a pass at once; the others wait for one or two more.
    assert!(burst <= 4, "99 pipelines took {burst} passes");
}

/// On SIGTERM the manager releases the Lease and reports not ready at once, and keeps running
/// (serving webhooks) for `--shutdown-delay`, here longer than the test.
#[tokio::test]
async fn sigterm_releases_the_lease_and_fails_readiness_before_the_shutdown_delay_ends() {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("tm-sigterm-kubeconfig-{}", std::process::id()));
    fake_api::kubeconfig(address, &kubeconfig);
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let log_path = std::env::temp_dir().join(format!("tm-sigterm-log-{}", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let health_addr = health.to_string();
    let manager = spawn_manager(
        &kubeconfig,
        Stdio::from(log),
        &[
            "--health-addr",
            &health_addr,
            "--webhook-extra-san",
            "127.0.0.1",
            "--shutdown-delay",
            "10m",
        ],
    );
    // Killed however the test ends: it would otherwise wait out its shutdown delay.
    let mut manager = KilledOnDrop(manager);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    eventually("the Lease", &api, |s| {
        s.objects
            .get(LEASE)
            .is_some_and(|l| l["spec"]["holderIdentity"] == "manager-0")
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::http_get(health, "/readyz").await.map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the manager did not become ready; its log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::process::Command::new("kill")
        .args(["-TERM", &manager.0.id().to_string()])
        .status()
        .unwrap();
    eventually("the Lease released", &api, |s| {
        s.objects[LEASE]["spec"]["holderIdentity"].is_null()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::http_get(health, "/readyz").await.map(|r| r.0) != Some(503) {
        assert!(
            Instant::now() < deadline,
            "still ready after SIGTERM; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        manager.0.try_wait().unwrap().is_none(),
        "the manager stopped before its shutdown delay ended; log:\n{}",
        log()
    );
    drop(manager);
    std::fs::remove_file(&kubeconfig).unwrap();
    std::fs::remove_file(&log_path).unwrap();
}

struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
