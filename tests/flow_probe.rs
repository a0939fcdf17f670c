//! Flow health end to end without a cluster: a real HTTP server on 127.0.0.1 serves changing
//! collector metrics, the scraper reads them, and the monitor judges the flow. Time is simulated
//! (one probe per default `--flow-poll-interval` of 15 s, default `--flow-window` of 60 s), so the
//! test is fast without shortening any setting: scale factor 1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::json;
use telemetry_manager::api::Reason;
use telemetry_manager::flow::scrape::{self, ScrapeLimits, Target};
use telemetry_manager::flow::{ExporterRef, FlowMonitor};

const POLL: Duration = Duration::from_secs(15);
const WINDOW: Duration = Duration::from_secs(60);

/// Collector metrics for exporter `otlp_grpc/backend`, in the shape of the 0.151 fixtures.
fn metrics(sent: u64, failed: u64, queue: u64) -> String {
    let scope = r#"otel_scope_name="go.opentelemetry.io/collector/exporter/exporterhelper",otel_scope_schema_url="",otel_scope_version="""#;
    let mut text = format!(
        "# HELP otelcol_exporter_sent_spans_total Number of spans successfully sent to destination. [Alpha]\n# TYPE otelcol_exporter_sent_spans_total counter\notelcol_exporter_sent_spans_total{{exporter=\"otlp_grpc/backend\",{scope},server_address=\"backend\",server_port=\"4317\"}} {sent}\n"
    );
    if failed > 0 {
        text.push_str(&format!(
            "# TYPE otelcol_exporter_send_failed_spans_total counter\notelcol_exporter_send_failed_spans_total{{error_permanent=\"true\",error_type=\"InvalidArgument\",exporter=\"otlp_grpc/backend\",{scope},server_address=\"backend\",server_port=\"4317\"}} {failed}\n"
        ));
    }
    text.push_str(&format!(
        "# TYPE otelcol_exporter_queue_size gauge\notelcol_exporter_queue_size{{data_type=\"traces\",exporter=\"otlp_grpc/backend\",{scope}}} {queue}\n# TYPE otelcol_exporter_queue_capacity gauge\notelcol_exporter_queue_capacity{{data_type=\"traces\",exporter=\"otlp_grpc/backend\",{scope}}} 51\n"
    ));
    text
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A server whose `/metrics` answers whatever the returned text holds at the time.
async fn changing_metrics() -> (Arc<Mutex<String>>, SocketAddr) {
    let served = Arc::new(Mutex::new(String::new()));
    let text = served.clone();
    let addr = serve(Router::new().route(
        "/metrics",
        get(move || {
            let text = text.lock().unwrap().clone();
            async move { text }
        }),
    ))
    .await;
    (served, addr)
}

fn backend() -> ExporterRef {
    ExporterRef {
        id: "otlp_grpc/backend".into(),
        grpc: true,
        port: Some("4317".into()),
    }
}

#[tokio::test]
async fn status_follows_a_failing_and_recovering_backend_within_the_targets() {
    let (served, addr) = changing_metrics().await;
    let targets = vec![Target {
        pod: "telemetry-trace-gateway-0".into(),
        address: addr,
    }];
    let mut monitor = FlowMonitor::new(WINDOW);
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut reasons = Vec::new();
    // 8 probes healthy, 8 failing (permanent rejections), 8 recovered.
    for poll in 0..24u32 {
        match poll {
            0..8 => sent += 200,
            8..16 => failed += 200,
            _ => sent += 200,
        }
        *served.lock().unwrap() = metrics(sent, failed, 0);
        let probe = scrape::scrape_all(&targets, ScrapeLimits::default()).await;
        monitor.observe(POLL * poll, probe);
        reasons.push(monitor.condition(&backend(), true).unwrap().reason);
    }
    assert!(
        reasons[1..8].iter().all(|r| *r == Reason::FlowHealthy),
        "{reasons:?}"
    );
    // The backend starts rejecting between probes 7 and 8: reported within 60 s.
    let failing = reasons[8..]
        .iter()
        .position(|r| *r == Reason::GatewayAllTelemetryDataDropped)
        .unwrap();
    let seconds_to_flip = (failing as u64 + 1) * POLL.as_secs();
    assert!(
        seconds_to_flip <= 60,
        "flipped after {seconds_to_flip}s: {reasons:?}"
    );
    assert!(
        reasons[8..8 + failing]
            .iter()
            .all(|r| *r == Reason::GatewaySomeTelemetryDataDropped),
        "{reasons:?}"
    );
    // It recovers between probes 15 and 16: back to healthy within 30 s, two clean intervals.
    let recovered = reasons[16..]
        .iter()
        .position(|r| *r == Reason::FlowHealthy)
        .unwrap();
    let seconds_to_recover = (recovered as u64 + 1) * POLL.as_secs();
    assert!(
        seconds_to_recover <= 30,
        "recovered after {seconds_to_recover}s: {reasons:?}"
    );
    eprintln!(
        "flip after {seconds_to_flip}s, recovery after {seconds_to_recover}s (poll {POLL:?}, window {WINDOW:?}): {reasons:?}"
    );
}

#[tokio::test]
async fn a_backend_failing_every_other_probe_turns_the_condition_false_once() {
    let (served, addr) = changing_metrics().await;
    let targets = vec![Target {
        pod: "gw".into(),
        address: addr,
    }];
    let mut monitor = FlowMonitor::new(WINDOW);
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut statuses = Vec::new();
    let mut reasons = Vec::new();
    // 6 probes healthy, then 30 probes that alternate between rejecting and delivering.
    for poll in 0..36u32 {
        if poll < 6 || poll % 2 == 1 {
            sent += 200
        } else {
            failed += 200
        }
        *served.lock().unwrap() = metrics(sent, failed, 0);
        monitor.observe(
            POLL * poll,
            scrape::scrape_all(&targets, ScrapeLimits::default()).await,
        );
        let condition = monitor.condition(&backend(), true).unwrap();
        statuses.push(condition.status);
        reasons.push(condition.reason);
    }
    let flips = statuses
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    assert_eq!(flips, 1, "{reasons:?}");
    assert_eq!(statuses.last(), Some(&"False"), "{reasons:?}");
    eprintln!("alternating backend: {flips} status change over 30 probes: {reasons:?}");
}

#[tokio::test]
async fn an_unreachable_backend_is_an_export_stall_within_60_seconds() {
    let (served, addr) = changing_metrics().await;
    let targets = vec![Target {
        pod: "gw".into(),
        address: addr,
    }];
    let mut monitor = FlowMonitor::new(WINDOW);
    let (mut sent, mut queue) = (0, 0);
    let mut reasons = Vec::new();
    for poll in 0..12u32 {
        if poll < 6 {
            sent += 100
        } else {
            queue += 1
        }
        *served.lock().unwrap() = metrics(sent, 0, queue);
        monitor.observe(
            POLL * poll,
            scrape::scrape_all(&targets, ScrapeLimits::default()).await,
        );
        reasons.push(monitor.condition(&backend(), true).unwrap().reason);
    }
    let stalled = reasons[6..]
        .iter()
        .position(|r| *r == Reason::GatewayExportStalled)
        .unwrap();
    assert!((stalled as u64 + 1) * 15 <= 60, "{reasons:?}");
}

#[tokio::test]
async fn scrape_failures_make_the_flow_unknown_with_the_error() {
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let limits = ScrapeLimits {
        timeout: Duration::from_millis(300),
        ..ScrapeLimits::default()
    };
    let slow = vec![Target {
        pod: "gw-slow".into(),
        address: silent_addr,
    }];
    let error = scrape::scrape_all(&slow, limits).await.unwrap_err();
    assert_eq!(
        error,
        format!("scraping gw-slow ({silent_addr}) timed out after 300ms")
    );

    let mut monitor = FlowMonitor::new(WINDOW);
    assert_eq!(
        monitor.condition(&backend(), true),
        None,
        "nothing is known before the first probe"
    );
    monitor.observe(Duration::ZERO, Err(error.clone()));
    let condition = monitor.condition(&backend(), true).unwrap();
    assert_eq!(
        (condition.status, condition.reason),
        ("Unknown", Reason::GatewayProbingFailed)
    );
    assert!(condition.message.ends_with(&error));
    // ConfigurationGenerated=False wins over everything.
    assert_eq!(
        monitor.condition(&backend(), false).unwrap().reason,
        Reason::ConfigurationNotGenerated
    );

    let huge = "x".repeat(64 * 1024);
    let addr = serve(
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let huge = huge.clone();
                    async move { huge }
                }),
            )
            .route("/garbage", get(|| async { "not{ prometheus" })),
    )
    .await;
    let small = ScrapeLimits {
        max_bytes: 1024,
        ..ScrapeLimits::default()
    };
    let error = scrape::scrape_all(
        &[Target {
            pod: "gw".into(),
            address: addr,
        }],
        small,
    )
    .await
    .unwrap_err();
    assert!(error.contains("limit 1024 bytes"), "{error}");

    let missing = serve(Router::new()).await;
    let error = scrape::scrape_all(
        &[Target {
            pod: "gw".into(),
            address: missing,
        }],
        ScrapeLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(error.ends_with("HTTP 404 Not Found"), "{error}");

    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = scrape::scrape_all(
        &[Target {
            pod: "gw".into(),
            address: refused,
        }],
        ScrapeLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        error.starts_with(&format!("scraping gw ({refused}) failed: ")),
        "{error}"
    );

    assert_eq!(
        scrape::scrape_all(&[], ScrapeLimits::default())
            .await
            .unwrap_err(),
        "no ready trace gateway pod to read metrics from"
    );
}

#[tokio::test]
async fn a_probe_fails_when_any_pod_fails_and_succeeds_with_all() {
    let ok = serve(Router::new().route("/metrics", get(|| async { metrics(5, 0, 0) }))).await;
    let both = [
        Target {
            pod: "a".into(),
            address: ok,
        },
        Target {
            pod: "b".into(),
            address: ok,
        },
    ];
    let pods = scrape::scrape_all(&both, ScrapeLimits::default())
        .await
        .unwrap();
    assert_eq!(pods.keys().cloned().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(pods["a"].exporters["otlp_grpc/backend"].sent, 5.0);
}

#[tokio::test]
async fn ready_gateway_pods_are_found_through_endpoint_slices() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "kyma-system");
    let task = tokio::spawn(async move {
        scrape::discover(
            &client,
            "kyma-system",
            "telemetry-trace-gateway-metrics",
            8888,
        )
        .await
    });
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(
        request.uri().path(),
        "/apis/discovery.k8s.io/v1/namespaces/kyma-system/endpointslices"
    );
    assert_eq!(
        request.uri().query(),
        Some("&labelSelector=kubernetes.io%2Fservice-name%3Dtelemetry-trace-gateway-metrics")
    );
    let list = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {}, "items": [{
    "metadata": {"name": "s1"}, "addressType": "IPv4",
    "endpoints": [
        {"addresses": ["10.0.0.2"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "gw-b"}},
        {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "gw-a"}},
        {"addresses": ["10.0.0.3"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "gw-c"}}
    ]}]});
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&list).unwrap()))
            .unwrap(),
    );
    let targets = task.await.unwrap().unwrap();
    assert_eq!(
        targets,
        vec![
            Target {
                pod: "gw-a".into(),
                address: "10.0.0.1:8888".parse().unwrap()
            },
            Target {
                pod: "gw-b".into(),
                address: "10.0.0.2:8888".parse().unwrap()
            },
        ]
    );
}
