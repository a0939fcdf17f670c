//! Memory of the manager with one and with five pipelines, and against a cluster with many
//! Secrets it does not reference (docs/architecture.md#reconciliation: no cluster-wide Secret
//! cache). The real binary runs against the in-memory API server of the tests with 1 or 5
//! pipelines, each with its endpoint in its own Secret, and with no unrelated Secrets or 10,000
//! (1 KiB each, in the referenced Secrets' namespace and in others); 60 s after it wrote every
//! pipeline's status its resident memory is read from /proc, and the API requests it made for
//! Secrets are counted.
//!
//! `cargo bench --bench memory`; results go to BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_api::{self, FakeApi};
use serde_json::json;

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Measurement {
    pipelines: usize,
    unrelated: usize,
    rss_kib: u64,
    peak_kib: u64,
    secret_requests: usize,
    unselected_secret_requests: usize,
}

const STEADY: Duration = Duration::from_secs(60);

async fn measure(pipelines: usize, unrelated: usize) -> Measurement {
    use base64::Engine;
    let api = Arc::new(Mutex::new(FakeApi::default()));
    {
        let mut state = api.lock().unwrap();
        let endpoint = base64::engine::general_purpose::STANDARD.encode("backend.example.com:4317");
        for i in 0..pipelines {
            let name = format!("backend-{i}");
            state.insert(
                &format!("/api/v1/namespaces/obs/secrets/{name}"),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "obs"}, "data": {"endpoint": endpoint}}),
            );
            state.insert(
                &format!("/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/{name}"),
                json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline", "metadata": {"name": name},
                       "spec": {"output": {"otlp": {"protocol": "grpc", "endpoint":
                           {"valueFrom": {"secretKeyRef": {"name": name, "namespace": "obs", "key": "endpoint"}}}}}}}),
            );
        }
        let payload = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 1024]);
        for i in 0..unrelated {
            let namespace = if i % 2 == 0 { "obs" } else { "other" };
            state.insert(
                &format!("/api/v1/namespaces/{namespace}/secrets/unrelated-{i}"),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("unrelated-{i}"), "namespace": namespace},
                       "data": {"payload": payload}}),
            );
        }
    }
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig = std::env::temp_dir().join(format!(
        "tm-memory-kubeconfig-{}-{unrelated}",
        std::process::id()
    ));
    fake_api::kubeconfig(address, &kubeconfig);
    let mut manager = fake_api::manager_command(&kubeconfig, "manager-0")
        .args(["--shutdown-delay", "0s", "--log-format", "json"])
        .args([
            "--health-addr",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let state = api.lock().unwrap();
            (0..pipelines).all(|i| {
                state
                    .objects
                    .get(&format!(
                        "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/backend-{i}"
                    ))
                    .is_some_and(|p| {
                        p["status"]["conditions"]
                            .as_array()
                            .is_some_and(|c| c.len() >= 2)
                    })
            })
        };
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the manager did not reconcile");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Steady state: watches open, flow probes running.
    tokio::time::sleep(STEADY).await;
    let (rss_kib, peak_kib) = (
        rss_kib(manager.id(), "VmRSS:"),
        rss_kib(manager.id(), "VmHWM:"),
    );
    manager.kill().unwrap();
    manager.wait().unwrap();
    std::fs::remove_file(&kubeconfig).unwrap();
    let requests = api.lock().unwrap().requests.clone();
    let secret_requests: Vec<&String> =
        requests.iter().filter(|r| r.contains("/secrets")).collect();
    let unselected = secret_requests
        .iter()
        .filter(|r| {
            let named = r.contains("/secrets/") || r.contains("fieldSelector=metadata.name");
            let own = r.contains("/namespaces/telemetry/");
            !named && !own
        })
        .count();
    Measurement {
        pipelines,
        unrelated,
        rss_kib,
        peak_kib,
        secret_requests: secret_requests.len(),
        unselected_secret_requests: unselected,
    }
}

fn main() {
    telemetry_manager::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "| pipelines | unrelated Secrets | RSS after {} s (KiB) | peak RSS (KiB) | Secret requests | Secret lists or watches without a name |",
            STEADY.as_secs()
        );
        println!("|---|---|---|---|---|---|");
        for (pipelines, unrelated) in [(1, 0), (5, 0), (1, 10_000)] {
            let m = measure(pipelines, unrelated).await;
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                m.pipelines,
                m.unrelated,
                m.rss_kib,
                m.peak_kib,
                m.secret_requests,
                m.unselected_secret_requests
            );
        }
    });
}
