//! Reaction times of the manager (BENCHMARKS.md, "Reaction times"). The real binary, default
//! flags but a zero shutdown delay, against the in-memory API server of the tests; the times are
//! measured from the change in the API server to what the manager wrote there, polled every
//! millisecond:
//!
//! - a new pipeline → the gateway ConfigMap has its exporter (the first pipeline, then 20 more
//!   one at a time with quiet periods between them);
//! - a referenced Secret's value changes → the gateway's env Secret has the new value;
//! - 100 pipelines created at once → how many passes it took, and when the last was in the
//!   ConfigMap;
//! - the leader is stopped with SIGTERM, or killed with SIGKILL → a standby holds the Lease.
//!
//! `cargo bench --bench reaction`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_api::{self, FakeApi};
use serde_json::{Value, json};

const PIPELINES: &str = "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines";
const CONFIG_MAP: &str = "/api/v1/namespaces/telemetry/configmaps/telemetry-trace-gateway";
const GATEWAY_SECRET: &str = "/api/v1/namespaces/telemetry/secrets/telemetry-trace-gateway";
const SECRET: &str = "/api/v1/namespaces/obs/secrets/rotating";
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/telemetry/leases/telemetry-manager-leader";

fn manager(kubeconfig: &std::path::Path, identity: &str) -> Child {
    fake_api::manager_command(kubeconfig, identity)
        .args(["--shutdown-delay", "0s", "--max-pipelines", "0"])
        .args([
            "--health-addr",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How long until `check` holds, polled every millisecond (at most a minute).
async fn time_until(api: &Arc<Mutex<FakeApi>>, check: impl Fn(&FakeApi) -> bool) -> Duration {
    let start = Instant::now();
    while !check(&api.lock().unwrap()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no reaction within a minute"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

fn pipeline(name: &str, endpoint: Value) -> Value {
    json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
           "metadata": {"name": name}, "spec": {"output": {"otlp": {"endpoint": endpoint}}}})
}

fn inline(name: &str) -> Value {
    json!({"value": format!("{name}.example.com:4317")})
}

fn secret(endpoint: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rotating", "namespace": "obs"},
           "data": {"endpoint": base64::engine::general_purpose::STANDARD.encode(endpoint)}})
}

fn configured(state: &FakeApi, name: &str) -> bool {
    state
        .objects
        .get(CONFIG_MAP)
        .and_then(|c| c["data"]["relay.conf"].as_str())
        .is_some_and(|c| c.contains(&format!("otlp_grpc/{name}:")))
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

async fn holder_after(
    api: &Arc<Mutex<FakeApi>>,
    leader: &mut Child,
    signal: &str,
    standby: &str,
) -> Duration {
    Command::new("kill")
        .args([signal, &leader.id().to_string()])
        .status()
        .unwrap();
    let taken = time_until(api, |s| {
        s.objects[LEASE]["spec"]["holderIdentity"] == standby
    })
    .await;
    leader.wait().unwrap();
    taken
}

fn main() {
    telemetry_manager::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api = Arc::new(Mutex::new(FakeApi::default()));
        api.lock().unwrap().insert(
            "/api/v1/namespaces/kube-system",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
        );
        api.lock()
            .unwrap()
            .insert(SECRET, secret("backend-0.example.com:4317"));
        let address = fake_api::serve(api.clone()).await;
        let kubeconfig =
            std::env::temp_dir().join(format!("tm-reaction-kubeconfig-{}", std::process::id()));
        fake_api::kubeconfig(address, &kubeconfig);
        let mut leader = manager(&kubeconfig, "manager-0");
        time_until(&api, |s| s.passes() > 0).await;
        tokio::time::sleep(Duration::from_secs(1)).await;

        let insert = |name: &str, endpoint: Value| {
            api.lock()
                .unwrap()
                .insert(&format!("{PIPELINES}/{name}"), pipeline(name, endpoint));
        };
        insert("p-0", inline("p-0"));
        let first = time_until(&api, |s| configured(s, "p-0")).await;
        let mut added = Vec::new();
        for i in 1..=20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let name = format!("p-{i}");
            insert(&name, inline(&name));
            added.push(time_until(&api, |s| configured(s, &name)).await);
        }
        added.sort();

        insert(
            "rotating",
            json!({"valueFrom": {"secretKeyRef": {"name": "rotating", "namespace": "obs", "key": "endpoint"}}}),
        );
        time_until(&api, |s| configured(s, "rotating")).await;
        let mut rotated = Vec::new();
        for i in 1..=10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = api.lock().unwrap().objects[GATEWAY_SECRET]["data"]
                ["OTLP_ENDPOINT_ROTATING"]
                .clone();
            api.lock()
                .unwrap()
                .insert(SECRET, secret(&format!("backend-{i}.example.com:4317")));
            rotated.push(
                time_until(&api, |s| {
                    s.objects[GATEWAY_SECRET]["data"]["OTLP_ENDPOINT_ROTATING"] != before
                })
                .await,
            );
        }
        rotated.sort();

        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = api.lock().unwrap().passes();
        let burst = {
            let mut state = api.lock().unwrap();
            for i in 0..100 {
                let name = format!("burst-{i}");
                state.insert(&format!("{PIPELINES}/{name}"), pipeline(&name, inline(&name)));
            }
            Instant::now()
        };
        time_until(&api, |s| (0..100).all(|i| configured(s, &format!("burst-{i}")))).await;
        let burst_took = burst.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let burst_passes = api.lock().unwrap().passes() - before;

        let mut standby = manager(&kubeconfig, "manager-1");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after_sigterm = holder_after(&api, &mut leader, "-TERM", "manager-1").await;
        let mut third = manager(&kubeconfig, "manager-2");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after_sigkill = holder_after(&api, &mut standby, "-KILL", "manager-2").await;
        third.kill().unwrap();
        third.wait().unwrap();
        std::fs::remove_file(&kubeconfig).unwrap();

        println!("| what | p50 (ms) | p90 (ms) | max (ms) | n |");
        println!("|---|---|---|---|---|");
        println!(
            "| first pipeline → ConfigMap | {} | | | 1 |",
            ms(first)
        );
        println!(
            "| new pipeline → ConfigMap | {} | {} | {} | {} |",
            ms(percentile(&added, 50)),
            ms(percentile(&added, 90)),
            ms(*added.last().unwrap()),
            added.len()
        );
        println!(
            "| Secret value changed → env Secret | {} | {} | {} | {} |",
            ms(percentile(&rotated, 50)),
            ms(percentile(&rotated, 90)),
            ms(*rotated.last().unwrap()),
            rotated.len()
        );
        println!(
            "| 100 pipelines at once → all in the ConfigMap | {} | | | 1 ({burst_passes} passes) |",
            ms(burst_took)
        );
        println!(
            "| leader SIGTERM → standby holds the Lease | {} | | | 1 |",
            ms(after_sigterm)
        );
        println!(
            "| leader SIGKILL → standby holds the Lease | {} | | | 1 |",
            ms(after_sigkill)
        );
    });
}
