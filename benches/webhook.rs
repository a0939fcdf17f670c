//! Webhook throughput and latency over TLS with keep-alive, next to a baseline server on the same
//! TLS stack that answers every request with a fixed AdmissionReview.
//!
//! `cargo bench --bench webhook` (options: `-- --rounds N --seconds S --operation CREATE|DELETE`,
//! and `--in-process N [--kind plain|ottl|baseline]` for the handlers alone, see [`in_process`]).
//! Each round sends the pipeline without OTTL and the same pipeline with 10 transform statements
//! and 5 filter conditions to the webhook, and both to the baseline: what the baseline spends on
//! the longer body is the cost of carrying the OTTL's bytes (TLS, HTTP), so that what decoding
//! and checking it adds can be told apart from it. Results go to BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::json;
use telemetry_manager::admission::{Admission, server};
use telemetry_manager::metrics::Metrics;
use telemetry_manager::tls::{self, CertStore, self_signed::CertificateAuthority};
use telemetry_manager::validation::{InMemorySecrets, Settings};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[path = "../tests/common/mod.rs"]
mod common;

// The manager's allocator (src/main.rs), so that both servers here run as in production.
#[global_allocator]
static ALLOCATOR: telemetry_manager::allocator::MiMalloc = telemetry_manager::allocator::MiMalloc;

const PATH: &str = "/validate-telemetry-kyma-project-io-v1beta1-tracepipeline";
const CONNECTIONS: usize = 4;

/// Ten statements and five conditions of the kinds users write: set, redact, delete, rename,
/// guarded by conditions and regular expressions.
fn ottl() -> (serde_json::Value, serde_json::Value) {
    let transform = json!([
        {"statements": [
            "set(span.attributes[\"deployment.environment\"], \"production\")",
            "replace_pattern(span.attributes[\"http.url\"], \"token=[^&]+\", \"token=***\")",
            "delete_key(span.attributes, \"http.request.header.authorization\")",
            "set(span.attributes[\"team\"], resource.attributes[\"k8s.namespace.name\"]) where resource.attributes[\"k8s.namespace.name\"] != nil",
            "truncate_all(span.attributes, 4096)",
            "set(span.name, Concat([span.attributes[\"http.method\"], span.attributes[\"http.route\"]], \" \")) where span.attributes[\"http.route\"] != nil",
        ]},
        {"conditions": ["IsMatch(span.name, \"^GET /api/.*\")", "span.kind == SPAN_KIND_SERVER"],
         "statements": [
            "set(span.status.code, STATUS_CODE_OK) where span.attributes[\"http.status_code\"] < 500",
            "set(span.attributes[\"slow\"], true) where span.end_time_unix_nano - span.start_time_unix_nano > 1000000000",
            "delete_matching_keys(span.attributes, \"^internal\\\\..*\")",
            "set(span.attributes[\"route.id\"], SHA256(span.attributes[\"http.route\"]))",
         ]}
    ]);
    let filter = json!([
        {"conditions": [
            "span.attributes[\"http.route\"] == \"/healthz\"",
            "span.attributes[\"http.route\"] == \"/readyz\"",
            "IsMatch(span.attributes[\"user_agent.original\"], \"^kube-probe/.*\")",
        ]},
        {"conditions": [
            "resource.attributes[\"service.name\"] == \"load-generator\"",
            "span.kind == SPAN_KIND_INTERNAL and span.attributes[\"noise\"] == true",
        ]}
    ]);
    (transform, filter)
}

/// A CREATE of a realistic pipeline: HTTP with basic auth from a Secret and a header; with
/// `with_ottl`, also the transforms and filters of [`ottl`].
fn review_body(with_ottl: bool) -> Vec<u8> {
    let mut review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "telemetry.kyma-project.io", "version": "v1beta1", "kind": "TracePipeline"},
            "resource": {"group": "telemetry.kyma-project.io", "version": "v1beta1", "resource": "tracepipelines"},
            "name": "backend",
            "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": {
                "apiVersion": "telemetry.kyma-project.io/v1beta1",
                "kind": "TracePipeline",
                "metadata": {"name": "backend"},
                "spec": {"output": {"otlp": {
                    "protocol": "http",
                    "endpoint": {"value": "https://otlp.backend.example.com"},
                    "path": "/otlp/v1/traces",
                    "authentication": {"basic": {
                        "user": {"valueFrom": {"secretKeyRef": {"name": "creds", "namespace": "observability", "key": "user"}}},
                        "password": {"valueFrom": {"secretKeyRef": {"name": "creds", "namespace": "observability", "key": "password"}}}
                    }},
                    "headers": [{"name": "X-Tenant", "prefix": "tenant", "value": "42"}]
                }}}
            },
            "oldObject": null,
            "dryRun": false
        }
    });
    if with_ottl {
        let (transform, filter) = ottl();
        review["request"]["object"]["spec"]["transform"] = transform;
        review["request"]["object"]["spec"]["filter"] = filter;
    }
    serde_json::to_vec(&review).unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
}

async fn start(router: Router, store: Arc<CertStore>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(server::serve_https(
        listener,
        tls::server_config(store),
        router,
        server::Limits::default(),
        shutdown.clone(),
    ));
    Server { addr, shutdown }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: std::net::SocketAddr, ca_pem: &str) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = common::tls_client(ca_pem, &[], &[])
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn call(sender: &mut Sender, body: &Bytes) {
    sender.ready().await.unwrap();
    let request = http::Request::post(format!("{PATH}?timeout=10s"))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer = response.into_body().collect().await.unwrap().to_bytes();
    assert!(answer.starts_with(b"{\"apiVersion\":\"admission.k8s.io/v1\""));
}

/// One request on a new connection; the answer's text.
async fn answer(addr: std::net::SocketAddr, ca_pem: &str, body: &Bytes) -> String {
    let mut sender = connect(addr, ca_pem).await;
    sender.ready().await.unwrap();
    let request = http::Request::post(format!("{PATH}?timeout=10s"))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Wall time of checking the OTTL of [`ottl`] on this thread, per pipeline (median of 5 runs).
fn ottl_check_micros() -> f64 {
    let (transform, filter) = ottl();
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let groups: Vec<(Vec<String>, Vec<String>)> = transform
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (strings(&g["conditions"]), strings(&g["statements"])))
        .collect();
    let filters: Vec<Vec<String>> = filter
        .as_array()
        .unwrap()
        .iter()
        .map(|g| strings(&g["conditions"]))
        .collect();
    const CHECKS: u32 = 20_000;
    let runs = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..CHECKS {
                for (conditions, statements) in &groups {
                    std::hint::black_box(telemetry_manager::ottl::check_transform(
                        std::hint::black_box(conditions),
                        std::hint::black_box(statements),
                    ))
                    .unwrap();
                }
                for conditions in &filters {
                    std::hint::black_box(telemetry_manager::ottl::check_filter(
                        std::hint::black_box(conditions),
                    ))
                    .unwrap();
                }
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(CHECKS)
        })
        .collect();
    median(runs)
}

/// CPU time used by this process (all threads, user and system), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

struct Throughput {
    requests_per_second: f64,
    /// Process CPU (client and server, which share the process) per request.
    cpu_per_request: Duration,
}

/// Closed loop: every connection sends back to back for `duration`.
async fn throughput(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    body: Bytes,
    duration: Duration,
) -> Throughput {
    let cpu_before = process_cpu();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut sender = connect(addr, ca_pem).await;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                call(&mut sender, &body).await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    Throughput {
        requests_per_second: total as f64 / duration.as_secs_f64(),
        cpu_per_request: (process_cpu() - cpu_before) / total.max(1) as u32,
    }
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// How late the 99th percentile request was sent against its schedule: near zero means the
    /// rate was held and the latencies hide no queueing.
    lag_p99_ms: f64,
    requests: usize,
}

/// Open loop at `rate` requests/s spread over the connections; latency from send to answer.
async fn latency_at(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    body: Bytes,
    rate: u32,
    duration: Duration,
) -> Latency {
    let per_connection = Duration::from_secs_f64(CONNECTIONS as f64 / rate as f64);
    let mut tasks = Vec::new();
    for index in 0..CONNECTIONS {
        let mut sender = connect(addr, ca_pem).await;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now() + per_connection.mul_f64(index as f64 / CONNECTIONS as f64);
            let mut ticks = tokio::time::interval_at(start.into(), per_connection);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = start + duration;
            let mut samples = Vec::new();
            loop {
                let due = ticks.tick().await.into_std();
                if due >= end {
                    break;
                }
                let sent = Instant::now();
                call(&mut sender, &body).await;
                samples.push((sent.elapsed(), sent.saturating_duration_since(due)));
            }
            samples
        }));
    }
    let mut latencies = Vec::new();
    let mut lags = Vec::new();
    for task in tasks {
        for (latency, lag) in task.await.unwrap() {
            latencies.push(latency);
            lags.push(lag);
        }
    }
    latencies.sort();
    lags.sort();
    let pick = |v: &[Duration], q: f64| {
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    Latency {
        p50_ms: pick(&latencies, 0.50),
        p99_ms: pick(&latencies, 0.99),
        p999_ms: pick(&latencies, 0.999),
        lag_p99_ms: pick(&lags, 0.99),
        requests: latencies.len(),
    }
}

/// The webhook's router as the manager serves it, over an in-memory cluster with the Secret the
/// pipeline references and two other pipelines.
fn webhook_router() -> Router {
    let mut secrets = InMemorySecrets::default();
    secrets.insert(
        "observability",
        "creds",
        [
            ("user".to_string(), b"tenant".to_vec()),
            ("password".to_string(), b"s3cret".to_vec()),
        ]
        .into(),
    );
    let cluster = common::FakeCluster {
        pipelines: vec!["existing-a".into(), "existing-b".into()],
        secrets,
        ..common::FakeCluster::default()
    };
    let admission = Arc::new(Admission::new(cluster, Settings::default()));
    server::router(admission, Metrics::new())
}

/// The baseline: the same path answered with a fixed AdmissionReview after reading the body.
fn baseline_router() -> Router {
    let fixed = Bytes::from_static(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#,
    );
    Router::new().route(
        PATH,
        post(move |_body: Bytes| {
            let fixed = fixed.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], fixed) }
        }),
    )
}

/// The review body for `operation`: `DELETE` measures the HTTP, TLS and review and object
/// decoding without the rules and cluster reads.
fn review(operation: &str, with_ottl: bool) -> Bytes {
    Bytes::from(
        String::from_utf8(review_body(with_ottl))
            .unwrap()
            .replace("\"CREATE\"", &format!("\"{operation}\"")),
    )
}

/// `--in-process N`: N requests of each kind through the routers themselves, without sockets,
/// TLS or HTTP, on one thread: the handlers' own cost, which is what the webhook adds to the
/// baseline. `--kind plain|ottl|baseline` runs one kind only: under `valgrind --tool=callgrind`
/// with two values of N, the difference in instructions divided by the difference in N is that
/// kind's instructions per request.
async fn in_process(requests: u32, operation: &str, only: Option<&str>) {
    let routers = [
        (
            "plain",
            "webhook, pipeline without OTTL",
            webhook_router(),
            review(operation, false),
        ),
        (
            "ottl",
            "webhook, same pipeline with 10 statements and 5 conditions",
            webhook_router(),
            review(operation, true),
        ),
        (
            "baseline",
            "baseline: fixed AdmissionReview",
            baseline_router(),
            review(operation, false),
        ),
    ];
    for (kind, name, router, body) in routers {
        if only.is_some_and(|only| only != kind) {
            continue;
        }
        let start = Instant::now();
        for _ in 0..requests {
            let request = http::Request::post(format!("{PATH}?timeout=10s"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.clone()))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            std::hint::black_box(response.into_body().collect().await.unwrap().to_bytes());
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(requests.max(1));
        println!("{name}: {micros:.2} µs per request in process");
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let arg = |name: &str, default: u64| -> u64 {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    // Forty rounds: on a shared 2-vCPU machine single rounds range from 0.6 to 0.95 of the
    // baseline, and ten rounds leave the median a few hundredths off.
    let rounds = arg("--rounds", 40) as usize;
    let operation = std::env::args()
        .skip_while(|a| a != "--operation")
        .nth(1)
        .unwrap_or_else(|| "CREATE".to_string());
    let seconds = arg("--seconds", 5);
    tls::install_crypto_provider();
    if std::env::args().any(|a| a == "--in-process") {
        let kind = std::env::args().skip_while(|a| a != "--kind").nth(1);
        let requests = u32::try_from(arg("--in-process", 100_000)).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(in_process(requests, &operation, kind.as_deref()));
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ca = CertificateAuthority::generate(unix_now()).unwrap();
        let (serving, _) = ca.issue(&["localhost".into()], &["127.0.0.1".parse().unwrap()], unix_now()).unwrap();
        let store = CertStore::new();
        store.replace(serving);

        let webhook = start(webhook_router(), store.clone()).await;
        let baseline = start(baseline_router(), store).await;
        let (body, ottl_body) = (review(&operation, false), review(&operation, true));
        let ca_pem = ca.cert_pem.clone();
        for (name, body) in [("without OTTL", &body), ("with OTTL", &ottl_body)] {
            let answer = answer(webhook.addr, &ca_pem, body).await;
            assert!(answer.contains("\"allowed\":true"), "the pipeline {name} is denied: {answer}");
        }

        println!("webhook benchmark ({operation}): {CONNECTIONS} keep-alive TLS 1.3 connections over 127.0.0.1; throughput: median of {rounds} alternating 1 s rounds; latency: {seconds} s at 1,000 requests/s");
        println!("bodies: {} bytes without OTTL, {} bytes with 10 statements and 5 conditions", body.len(), ottl_body.len());
        println!();
        // Warm up the servers (connections, allocator, caches).
        for (addr, body) in [(webhook.addr, &body), (webhook.addr, &ottl_body), (baseline.addr, &body), (baseline.addr, &ottl_body)] {
            throughput(addr, &ca_pem, body.clone(), Duration::from_secs(1)).await;
        }

        // Short alternating rounds, so that drift in a shared machine's speed hits all alike.
        let mut rps: [Vec<f64>; 4] = Default::default();
        let mut cpu: [Vec<f64>; 4] = Default::default();
        let (mut ratios, mut cpu_ratios, mut ottl_cpu) = (Vec::new(), Vec::new(), Vec::new());
        let (mut carrying_cpu, mut checking_cpu) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let w = throughput(webhook.addr, &ca_pem, body.clone(), Duration::from_secs(1)).await;
            let o = throughput(webhook.addr, &ca_pem, ottl_body.clone(), Duration::from_secs(1)).await;
            let b = throughput(baseline.addr, &ca_pem, body.clone(), Duration::from_secs(1)).await;
            let t = throughput(baseline.addr, &ca_pem, ottl_body.clone(), Duration::from_secs(1)).await;
            let micros = |m: &Throughput| m.cpu_per_request.as_secs_f64() * 1e6;
            let (wc, oc, bc, tc) = (micros(&w), micros(&o), micros(&b), micros(&t));
            for (i, (m, c)) in [(&w, wc), (&o, oc), (&b, bc), (&t, tc)].into_iter().enumerate() {
                rps[i].push(m.requests_per_second);
                cpu[i].push(c);
            }
            ratios.push(w.requests_per_second / b.requests_per_second);
            cpu_ratios.push(bc / wc);
            ottl_cpu.push(oc - wc);
            carrying_cpu.push(tc - bc);
            checking_cpu.push((oc - wc) - (tc - bc));
            println!(
                "round: webhook {:.0}/s {wc:.1} µs, with OTTL {:.0}/s {oc:.1} µs, baseline {:.0}/s {bc:.1} µs, baseline with the OTTL body {:.0}/s {tc:.1} µs CPU/request",
                w.requests_per_second, o.requests_per_second, b.requests_per_second, t.requests_per_second
            );
        }
        let duration = Duration::from_secs(seconds);
        let latencies = [
            latency_at(webhook.addr, &ca_pem, body.clone(), 1000, duration).await,
            latency_at(webhook.addr, &ca_pem, ottl_body.clone(), 1000, duration).await,
            latency_at(baseline.addr, &ca_pem, body.clone(), 1000, duration).await,
            latency_at(baseline.addr, &ca_pem, ottl_body.clone(), 1000, duration).await,
        ];

        println!();
        println!("| server | requests/s (median) | CPU µs/request, client included (median) | p50 at 1,000/s (ms) | p99 (ms) | p99.9 (ms) | send lag p99 (ms) | requests at 1,000/s |");
        println!("|---|---|---|---|---|---|---|---|");
        let names = [
            "telemetry-manager validating webhook, pipeline without OTTL",
            "telemetry-manager validating webhook, same pipeline with 10 statements and 5 conditions",
            "baseline: fixed AdmissionReview",
            "baseline, sent the body with the OTTL",
        ];
        for (i, (name, l)) in names.into_iter().zip(latencies).enumerate() {
            println!(
                "| {name} | {:.0} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                median(rps[i].clone()), median(cpu[i].clone()), l.p50_ms, l.p99_ms, l.p999_ms, l.lag_p99_ms, l.requests
            );
        }
        println!();
        println!("throughput ratio webhook without OTTL/baseline (median of per-round ratios): {:.2}", median(ratios));
        println!("CPU-cost ratio baseline/webhook without OTTL (median of per-round ratios): {:.2}", median(cpu_ratios));
        println!("CPU added by the OTTL (median of per-round differences): {:.1} µs/request", median(ottl_cpu));
        println!("  of which carrying its bytes (TLS and HTTP; the baseline with and without them): {:.1} µs/request", median(carrying_cpu));
        println!("  decoding and checking it (median of per-round differences of those differences): {:.1} µs/request", median(checking_cpu));
        println!(
            "checking the OTTL alone, one thread: {:.1} µs per pipeline",
            ottl_check_micros()
        );
        webhook.shutdown.cancel();
        baseline.shutdown.cancel();
    });
}
