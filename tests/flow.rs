//! Flow health judged from real collector scrapes (`tests/fixtures/otelcol-span-metrics`,
//! collector 0.151.0, unedited) and synthetic variants of them.

use std::collections::BTreeMap;
use std::time::Duration;

use telemetry_manager::api::Reason;
use telemetry_manager::flow::{
    self, Attempt, BackendAnswer, ExporterRef, FlowVerdict, FlowWindow, PodMetrics,
};

const FIXTURES: &str = "tests/fixtures/otelcol-span-metrics";
const WINDOW: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap_or_else(|e| panic!("{FIXTURES}/{name}: {e}"))
}

fn pod(text: &str) -> PodMetrics {
    flow::read_pod(text).unwrap()
}

/// A window with one gateway pod scraped at the given seconds.
fn window(scrapes: &[(u64, &str)]) -> FlowWindow {
    let mut window = FlowWindow::new(WINDOW);
    for (at, text) in scrapes {
        window.record(
            Duration::from_secs(*at),
            BTreeMap::from([("gateway-0".to_string(), pod(text))]),
        );
    }
    window
}

fn http(id: &str, port: &str) -> ExporterRef {
    ExporterRef {
        id: id.into(),
        grpc: false,
        port: Some(port.into()),
    }
}

fn grpc(id: &str) -> ExporterRef {
    ExporterRef {
        id: id.into(),
        grpc: true,
        port: Some("19004".into()),
    }
}

fn healthy() -> ExporterRef {
    http("otlphttp/healthy", "19001")
}
fn broken() -> ExporterRef {
    http("otlphttp/broken", "19002")
}
fn rejecting() -> ExporterRef {
    http("otlphttp/rejecting", "19003")
}
fn grpc_down() -> ExporterRef {
    grpc("otlp/grpc-down")
}

#[test]
fn every_fixture_reads_to_the_values_of_its_readme() {
    let t120 = pod(&fixture("t120.prom"));
    let e = |id: &str| t120.exporters.get(id).copied().unwrap_or_default();
    assert_eq!(
        (
            e("otlphttp/healthy").sent,
            e("otlphttp/healthy").send_failed
        ),
        (5331.0, 0.0)
    );
    assert_eq!(
        (
            e("otlphttp/broken").sent,
            e("otlphttp/broken").send_failed,
            e("otlphttp/broken").enqueue_failed
        ),
        (0.0, 1175.0, 3705.0)
    );
    assert_eq!(
        (
            e("otlphttp/broken").queue_size,
            e("otlphttp/broken").queue_capacity
        ),
        (10.0, 10.0)
    );
    assert_eq!(e("otlphttp/rejecting").send_failed, 5331.0);
    assert_eq!(
        (e("otlp/grpc-down").sent, e("otlp/grpc-down").send_failed),
        (0.0, 0.0)
    );
    assert_eq!(
        (
            e("otlp/grpc-down").queue_size,
            e("otlp/grpc-down").queue_capacity
        ),
        (118.0, 1000.0)
    );
    assert_eq!(
        t120.http_attempts.get(&Attempt {
            port: Some("19002".into()),
            answer: BackendAnswer::Http("503".into())
        }),
        Some(&169.0)
    );
    // Nothing listened on the gRPC port: the calls carry no server address.
    assert_eq!(
        t120.rpc_calls.get(&Attempt {
            port: None,
            answer: BackendAnswer::NoAnswer
        }),
        Some(&69.0)
    );
    assert_eq!(pod(&fixture("throttled.prom")).refused, 2379.0);
    let restarted = pod(&fixture("t130-after-restart.prom"));
    assert_eq!(restarted.exporters["otlphttp/healthy"].sent, 407.0);
    assert_eq!(restarted.exporters["otlphttp/broken"].enqueue_failed, 0.0);
    for name in [
        "t000.prom",
        "t020.prom",
        "t060.prom",
        "variants/t020-level-normal.prom",
        "variants/t020-grpc-exporters.prom",
    ] {
        flow::read_pod(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let grpc_variant = pod(&fixture("variants/t020-grpc-exporters.prom"));
    assert_eq!(grpc_variant.exporters["otlp/grpc-healthy"].sent, 858.0);
    assert_eq!(grpc_variant.exporters["otlp/grpc-down"].send_failed, 677.0);
}

#[test]
fn real_backends_are_judged_as_they_behaved() {
    let w = window(&[(20, &fixture("t020.prom")), (60, &fixture("t060.prom"))]);
    assert_eq!(flow::judge(&w, &healthy()), FlowVerdict::Healthy);
    assert_eq!(
        flow::judge(&w, &broken()),
        FlowVerdict::AllDataDropped {
            dropped: (543.0 - 180.0) + (1625.0 - 226.0)
        }
    );
    assert_eq!(
        flow::judge(&w, &rejecting()),
        FlowVerdict::AllDataDropped {
            dropped: 2620.0 - 860.0
        }
    );
    assert_eq!(
        flow::judge(&w, &grpc_down()),
        FlowVerdict::ExportStalled {
            queued: 58.0,
            failing: Some(BackendAnswer::NoAnswer)
        }
    );
}

#[test]
fn a_backend_that_is_down_is_reported_within_the_first_twenty_seconds() {
    let w = window(&[(0, &fixture("t000.prom")), (20, &fixture("t020.prom"))]);
    assert!(matches!(
        flow::judge(&w, &grpc_down()),
        FlowVerdict::ExportStalled { queued: 19.0, .. }
    ));
    assert!(matches!(
        flow::judge(&w, &broken()),
        FlowVerdict::AllDataDropped { .. }
    ));
    assert_eq!(flow::judge(&w, &healthy()), FlowVerdict::Healthy);
    // One probe is not enough to see anything move.
    let single = window(&[(20, &fixture("t020.prom"))]);
    assert_eq!(flow::judge(&single, &grpc_down()), FlowVerdict::Healthy);
}

#[test]
fn throttling_applies_to_every_pipeline() {
    let w = window(&[(0, &fixture("t000.prom")), (20, &fixture("throttled.prom"))]);
    for exporter in [healthy(), broken(), rejecting(), grpc_down()] {
        assert_eq!(
            flow::judge(&w, &exporter),
            FlowVerdict::Throttling { refused: 2379.0 },
            "{}",
            exporter.id
        );
    }
}

#[test]
fn a_collector_restart_is_not_a_drop() {
    let w = window(&[
        (120, &fixture("t120.prom")),
        (130, &fixture("t130-after-restart.prom")),
    ]);
    assert_eq!(w.increases("otlphttp/healthy").sent, 407.0);
    assert_eq!(w.increases("otlphttp/healthy").dropped, 0.0);
    assert_eq!(flow::judge(&w, &healthy()), FlowVerdict::Healthy);
    // The broken backend is still broken after the restart, counted from zero.
    assert_eq!(
        flow::judge(&w, &broken()),
        FlowVerdict::AllDataDropped { dropped: 91.0 }
    );
}

#[test]
fn partial_failure_is_some_data_dropped() {
    // The rejecting backend's failures attributed to the healthy exporter: both sent and failed.
    let variant = |name: &str| {
        fixture(name)
            .lines()
            .map(|line| {
                if line.starts_with("otelcol_exporter_send_failed_spans_total") {
                    line.replace(
                        "exporter=\"otlphttp/rejecting\"",
                        "exporter=\"otlphttp/healthy\"",
                    )
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w = window(&[(20, &variant("t020.prom")), (60, &variant("t060.prom"))]);
    assert_eq!(
        flow::judge(&w, &healthy()),
        FlowVerdict::SomeDataDropped {
            dropped: 2620.0 - 860.0,
            sent: 2620.0 - 860.0
        }
    );
}

#[test]
fn a_queue_above_80_percent_is_buffer_filling_up() {
    let variant = |name: &str| {
        fixture(name)
            .lines()
            .map(|line| {
                if line.starts_with("otelcol_exporter_queue_size")
                    && line.contains("exporter=\"otlphttp/healthy\"")
                {
                    line.replace("} 0", "} 9")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w = window(&[(20, &variant("t020.prom")), (60, &variant("t060.prom"))]);
    assert_eq!(
        flow::judge(&w, &healthy()),
        FlowVerdict::BufferFillingUp { percent: 90.0 }
    );
}

#[test]
fn a_retrying_http_backend_is_stalled_and_named_by_status() {
    // The 503 backend before any retry gave up: no failure counters yet, a growing queue.
    let variant = |name: &str| {
        fixture(name)
            .lines()
            .filter(|line| {
                !(line.contains("exporter=\"otlphttp/broken\"")
                    && line.contains("failed_spans_total"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w = window(&[(20, &variant("t020.prom")), (60, &variant("t060.prom"))]);
    assert_eq!(
        flow::judge(&w, &broken()),
        FlowVerdict::ExportStalled {
            queued: 10.0,
            failing: Some(BackendAnswer::Http("503".into()))
        }
    );
}

#[test]
fn a_pod_going_away_is_not_a_drop() {
    let mut w = FlowWindow::new(WINDOW);
    let (t020, t060) = (pod(&fixture("t020.prom")), pod(&fixture("t060.prom")));
    w.record(
        Duration::from_secs(20),
        BTreeMap::from([
            ("gateway-a".into(), t020.clone()),
            ("gateway-b".into(), t020),
        ]),
    );
    w.record(
        Duration::from_secs(60),
        BTreeMap::from([("gateway-a".into(), t060.clone())]),
    );
    assert_eq!(w.increases("otlphttp/healthy").sent, 2620.0 - 860.0);
    assert_eq!(flow::judge(&w, &healthy()), FlowVerdict::Healthy);
    // A pod appearing with high counters is its own baseline, not a burst.
    w.record(
        Duration::from_secs(75),
        BTreeMap::from([
            ("gateway-a".into(), t060.clone()),
            ("gateway-c".into(), t060),
        ]),
    );
    assert_eq!(w.increases("otlphttp/healthy").sent, 2620.0 - 860.0);
}

#[test]
fn recovery_is_seen_once_the_failures_leave_the_window() {
    let (t020, t060) = (fixture("t020.prom"), fixture("t060.prom"));
    let mut w = window(&[(20, &t020), (60, &t060)]);
    assert!(matches!(
        flow::judge(&w, &broken()),
        FlowVerdict::AllDataDropped { .. }
    ));
    // The backend recovers: the counters stop moving.
    for at in [75, 90, 105, 120] {
        w.record(
            Duration::from_secs(at),
            BTreeMap::from([("gateway-0".to_string(), pod(&t060))]),
        );
    }
    // 120 s: the baseline is the probe at 60 s, so nothing moved in the window and nothing is
    // dropped any more. The fixture's queue stays full with nothing sent: a stalled export.
    assert_eq!(
        flow::judge(&w, &broken()),
        FlowVerdict::ExportStalled {
            queued: 10.0,
            failing: None
        }
    );
    assert_eq!(flow::judge(&w, &healthy()), FlowVerdict::Healthy);
}

#[test]
fn conditions_follow_spec_reasons() {
    let verdict = FlowVerdict::Healthy;
    let c = flow::flow_condition(true, Ok(&verdict), WINDOW);
    assert_eq!((c.status, c.reason), ("True", Reason::FlowHealthy));
    let c = flow::flow_condition(false, Ok(&verdict), WINDOW);
    assert_eq!(
        (c.status, c.reason),
        ("False", Reason::ConfigurationNotGenerated)
    );
    let c = flow::flow_condition(
        true,
        Err("scraping 10.0.0.5:8888 timed out after 3s"),
        WINDOW,
    );
    assert_eq!(
        (c.status, c.reason),
        ("Unknown", Reason::GatewayProbingFailed)
    );
    assert!(
        c.message
            .ends_with("scraping 10.0.0.5:8888 timed out after 3s")
    );
    for (verdict, reason) in [
        (
            FlowVerdict::AllDataDropped { dropped: 5.0 },
            Reason::GatewayAllTelemetryDataDropped,
        ),
        (
            FlowVerdict::SomeDataDropped {
                dropped: 5.0,
                sent: 1.0,
            },
            Reason::GatewaySomeTelemetryDataDropped,
        ),
        (
            FlowVerdict::Throttling { refused: 5.0 },
            Reason::GatewayThrottling,
        ),
        (
            FlowVerdict::ExportStalled {
                queued: 5.0,
                failing: Some(BackendAnswer::Http("503".into())),
            },
            Reason::GatewayExportStalled,
        ),
        (
            FlowVerdict::BufferFillingUp { percent: 90.0 },
            Reason::GatewayBufferFillingUp,
        ),
    ] {
        let c = flow::flow_condition(true, Ok(&verdict), WINDOW);
        assert_eq!((c.status, c.reason), ("False", reason));
    }
}

#[test]
fn priority_follows_spec_order() {
    // Drops and throttling together: drops win; throttling beats a stalled export.
    let mut before = PodMetrics::default();
    before.exporters.insert(
        "e".into(),
        flow::ExporterMetrics {
            queue_size: 5.0,
            queue_capacity: 10.0,
            ..Default::default()
        },
    );
    let mut after = before.clone();
    after.refused = 10.0;
    let e = ExporterRef {
        id: "e".into(),
        grpc: true,
        port: None,
    };
    let mut w = FlowWindow::new(WINDOW);
    w.record(
        Duration::from_secs(0),
        BTreeMap::from([("p".into(), before.clone())]),
    );
    w.record(
        Duration::from_secs(15),
        BTreeMap::from([("p".into(), after.clone())]),
    );
    assert_eq!(
        flow::judge(&w, &e),
        FlowVerdict::Throttling { refused: 10.0 }
    );
    let mut dropping = after.clone();
    dropping.exporters.get_mut("e").unwrap().send_failed = 3.0;
    w.record(
        Duration::from_secs(30),
        BTreeMap::from([("p".into(), dropping)]),
    );
    assert_eq!(
        flow::judge(&w, &e),
        FlowVerdict::AllDataDropped { dropped: 3.0 }
    );
}

/// The message of the condition a verdict gives, with the default window.
fn message(verdict: &FlowVerdict) -> String {
    flow::flow_condition(true, Ok(verdict), WINDOW).message
}

#[test]
fn an_unreachable_grpc_backend_is_named_as_giving_no_answer() {
    // Nothing listened on the gRPC port: the collector's calls fail UNAVAILABLE without an address.
    let w = window(&[(20, &fixture("t020.prom")), (60, &fixture("t060.prom"))]);
    let verdict = flow::judge(&w, &grpc_down());
    assert_eq!(
        verdict,
        FlowVerdict::ExportStalled {
            queued: 58.0,
            failing: Some(BackendAnswer::NoAnswer)
        }
    );
    assert_eq!(
        message(&verdict),
        "No span was delivered in the last 60s while 58 batches wait in the export queue: no answer from the backend (connection refused or timed out), and spans will be dropped once retries give up. Check that the backend runs and that the gateway can reach it: the pipeline's endpoint, DNS and network policies"
    );
}

#[test]
fn an_unreachable_http_backend_is_named_as_giving_no_answer() {
    // The collector records an HTTP attempt that got no response without a status code. The
    // fixtures have no unreachable HTTP backend, so the 503 backend's attempts lose their status
    // and its failure counters (the retries have not given up yet).
    let variant = |name: &str| {
        fixture(name)
            .lines()
            .filter(|line| {
                !(line.contains("exporter=\"otlphttp/broken\"")
                    && line.contains("failed_spans_total"))
            })
            .map(|line| line.replace("http_response_status_code=\"503\",", ""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w = window(&[(20, &variant("t020.prom")), (60, &variant("t060.prom"))]);
    let verdict = flow::judge(&w, &broken());
    assert_eq!(
        verdict,
        FlowVerdict::ExportStalled {
            queued: 10.0,
            failing: Some(BackendAnswer::NoAnswer)
        }
    );
    assert!(
        message(&verdict).contains(
            "batches wait in the export queue: no answer from the backend (connection refused or timed out), and"
        ),
        "{}",
        message(&verdict)
    );
    assert!(!message(&verdict).contains("HTTP"), "{}", message(&verdict));
}

#[test]
fn failing_http_and_grpc_statuses_are_named_in_the_message() {
    // The 503 backend before any retry gave up (see the test above for the variant).
    let retrying = |name: &str| {
        fixture(name)
            .lines()
            .filter(|line| {
                !(line.contains("exporter=\"otlphttp/broken\"")
                    && line.contains("failed_spans_total"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w = window(&[(20, &retrying("t020.prom")), (60, &retrying("t060.prom"))]);
    assert_eq!(
        message(&flow::judge(&w, &broken())),
        "No span was delivered in the last 60s while 10 batches wait in the export queue: the backend answers HTTP 503, and spans will be dropped once retries give up. Check the backend's health and logs"
    );

    // The healthy gRPC backend of the variant starts answering RESOURCE_EXHAUSTED: its calls
    // carry its address, and the unreachable backend's calls (no address) keep failing too.
    let base = fixture("variants/t020-grpc-exporters.prom");
    let exhausted = base
        .lines()
        .flat_map(|line| {
            let ok_call = line.starts_with("rpc_client_call_duration_seconds_count")
                && line.contains("rpc_response_status_code=\"OK\"");
            let unreachable_calls = line.starts_with("rpc_client_call_duration_seconds_count")
                && line.contains("UNAVAILABLE");
            if ok_call {
                vec![
                    line.to_string(),
                    line.replace("\"OK\"", "\"RESOURCE_EXHAUSTED\"")
                        .replace("} 19", "} 12"),
                ]
            } else if unreachable_calls {
                vec![line.replace("} 68", "} 90")]
            } else if line.starts_with("otelcol_exporter_queue_size")
                && line.contains("otlp/grpc-healthy")
            {
                vec![line.replace("} 0", "} 6")]
            } else {
                vec![line.to_string()]
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let w = window(&[(20, &base), (35, &exhausted)]);
    let healthy_grpc = ExporterRef {
        id: "otlp/grpc-healthy".into(),
        grpc: true,
        port: Some("19005".into()),
    };
    let verdict = flow::judge(&w, &healthy_grpc);
    assert_eq!(
        verdict,
        FlowVerdict::ExportStalled {
            queued: 6.0,
            failing: Some(BackendAnswer::Grpc("RESOURCE_EXHAUSTED".into()))
        }
    );
    assert_eq!(
        message(&verdict),
        "No span was delivered in the last 60s while 6 batches wait in the export queue: the backend answers gRPC RESOURCE_EXHAUSTED, and spans will be dropped once retries give up. Check the backend's health and logs"
    );
    // The unreachable one is judged by the calls that never connected.
    assert_eq!(
        flow::judge(&w, &grpc("otlp/grpc-down")),
        FlowVerdict::ExportStalled {
            queued: 4.0,
            failing: Some(BackendAnswer::NoAnswer)
        }
    );
    // Without failing client metrics the message says what can be.
    assert_eq!(
        message(&FlowVerdict::ExportStalled {
            queued: 3.0,
            failing: None
        }),
        "No span was delivered in the last 60s while 3 batches wait in the export queue: the backend is unreachable or failing with retryable errors, and spans will be dropped once retries give up. Check the backend and the network path to it"
    );
}

/// What the simulated backend behind `otlphttp/rejecting` does between two probes.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Delivering,
    Rejecting,
    /// Recovered in the middle of the interval: some spans rejected, then delivered.
    Recovering,
    /// The gateway's memory limiter refuses spans before they reach any exporter.
    Throttled,
}

const POLL: Duration = Duration::from_secs(15);

/// The real t060 scrape with the rejecting exporter's counters and the receiver's refusals set
/// to simulated values: the label sets are the collector's, only the numbers are made up.
fn scrape_with(sent: u64, failed: u64, refused: u64) -> String {
    let set = |line: &str, value: u64| {
        let (series, _) = line.rsplit_once(' ').expect("a sample line has a value");
        format!("{series} {value}")
    };
    fixture("t060.prom")
        .lines()
        .map(|line| {
            let rejecting = line.contains("exporter=\"otlphttp/rejecting\"");
            if line.starts_with("otelcol_exporter_sent_spans_total{") && rejecting {
                set(line, sent)
            } else if line.starts_with("otelcol_exporter_send_failed_spans_total{") && rejecting {
                set(line, failed)
            } else if line.starts_with("otelcol_receiver_refused_spans_total{") {
                set(line, refused)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One probe per default poll interval with the default window; the condition after each.
fn simulate(run: &[Backend]) -> Vec<flow::FlowCondition> {
    let mut window = FlowWindow::new(WINDOW);
    let (mut sent, mut failed, mut refused) = (0, 0, 0);
    let mut conditions = Vec::new();
    for (probe, backend) in (0u32..).zip(std::iter::once(&Backend::Delivering).chain(run)) {
        if probe > 0 {
            match backend {
                Backend::Delivering => sent += 200,
                Backend::Rejecting => failed += 200,
                Backend::Recovering => (sent, failed) = (sent + 100, failed + 100),
                Backend::Throttled => refused += 200,
            }
        }
        window.record(
            POLL * probe,
            BTreeMap::from([(
                "gateway-0".to_string(),
                pod(&scrape_with(sent, failed, refused)),
            )]),
        );
        let verdict = flow::judge(&window, &rejecting());
        conditions.push(flow::flow_condition(true, Ok(&verdict), WINDOW));
    }
    conditions
}

fn reasons(conditions: &[flow::FlowCondition]) -> Vec<Reason> {
    conditions.iter().map(|c| c.reason).collect()
}

/// Seconds from probe `from` to the first probe after it that reports `reason`.
fn seconds_until(conditions: &[flow::FlowCondition], from: usize, reason: Reason) -> u64 {
    let after = conditions[from + 1..]
        .iter()
        .position(|c| c.reason == reason)
        .unwrap_or_else(|| {
            panic!(
                "never {reason:?} after probe {from}: {:?}",
                reasons(conditions)
            )
        });
    (after as u64 + 1) * POLL.as_secs()
}

fn changes(values: impl IntoIterator<Item = impl PartialEq>) -> usize {
    let values: Vec<_> = values.into_iter().collect();
    values.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

#[test]
fn a_recovered_backend_is_healthy_within_30_seconds() {
    use Backend::*;
    let run = [[Delivering; 8], [Rejecting; 8], [Delivering; 8]].concat();
    let conditions = simulate(&run);
    assert!(
        conditions[1..=8]
            .iter()
            .all(|c| c.reason == Reason::FlowHealthy),
        "{:?}",
        reasons(&conditions)
    );
    assert_eq!(
        conditions[16].reason,
        Reason::GatewayAllTelemetryDataDropped
    );
    // The backend recovers right after probe 16: the drops are still in the window for 60 s,
    // but two clean intervals with delivery end them.
    let recovery = seconds_until(&conditions, 16, Reason::FlowHealthy);
    assert!(recovery <= 30, "recovered after {recovery}s");
    assert_eq!(recovery, 2 * POLL.as_secs());
    assert!(
        conditions[17..]
            .iter()
            .all(|c| c.reason != Reason::GatewayAllTelemetryDataDropped),
        "{:?}",
        reasons(&conditions)
    );
    // A recovery in the middle of an interval leaves drops in it: two clean intervals follow.
    let run = [
        &[Delivering; 8][..],
        &[Rejecting; 8],
        &[Recovering],
        &[Delivering; 8],
    ]
    .concat();
    let conditions = simulate(&run);
    assert_eq!(
        conditions[17].reason,
        Reason::GatewaySomeTelemetryDataDropped
    );
    assert_eq!(seconds_until(&conditions, 17, Reason::FlowHealthy), 30);
}

#[test]
fn a_backend_failing_every_other_probe_does_not_flap() {
    use Backend::*;
    for first in [Rejecting, Delivering] {
        let second = match first {
            Rejecting => Delivering,
            _ => Rejecting,
        };
        let run: Vec<Backend> = std::iter::repeat_n(Delivering, 8)
            .chain([first, second].into_iter().cycle().take(40))
            .collect();
        let conditions = simulate(&run);
        let statuses = conditions.iter().map(|c| c.status);
        assert_eq!(changes(statuses), 1, "{:?}", reasons(&conditions));
        assert!(
            changes(reasons(&conditions)) <= 2,
            "{:?}",
            reasons(&conditions)
        );
        assert_eq!(
            conditions.last().unwrap().reason,
            Reason::GatewaySomeTelemetryDataDropped
        );
    }
    // Failing two probes of three is not a recovery either.
    let run: Vec<Backend> = std::iter::repeat_n(Delivering, 8)
        .chain(
            [Rejecting, Rejecting, Delivering]
                .into_iter()
                .cycle()
                .take(45),
        )
        .collect();
    let conditions = simulate(&run);
    assert_eq!(
        changes(conditions.iter().map(|c| c.status)),
        1,
        "{:?}",
        reasons(&conditions)
    );
}

#[test]
fn throttling_ends_once_spans_are_delivered_again() {
    use Backend::*;
    let run = [&[Delivering; 4][..], &[Throttled; 4], &[Delivering; 6]].concat();
    let conditions = simulate(&run);
    assert_eq!(conditions[8].reason, Reason::GatewayThrottling);
    assert_eq!(seconds_until(&conditions, 8, Reason::FlowHealthy), 30);
}

#[test]
fn recovery_is_two_clean_intervals_with_delivery() {
    let interval = |sent: f64, dropped: f64, refused: f64| flow::Interval {
        until: Duration::ZERO,
        moved: flow::Increases {
            sent,
            dropped,
            refused,
        },
    };
    let clean = interval(200.0, 0.0, 0.0);
    let idle = interval(0.0, 0.0, 0.0);
    let dropping = interval(0.0, 200.0, 0.0);
    let partial = interval(100.0, 100.0, 0.0);
    let refusing = interval(0.0, 0.0, 200.0);
    for (history, recovered) in [
        (vec![], false),
        (vec![clean], false),
        (vec![dropping, clean], false),
        (vec![dropping, clean, clean], true),
        (vec![dropping, partial, clean], false),
        (vec![dropping, clean, idle], true),
        (vec![dropping, idle, idle], false),
        (vec![clean, dropping], false),
        (vec![dropping, clean, dropping, clean], false),
        (vec![refusing, clean, clean], true),
        (vec![clean, clean, refusing], false),
    ] {
        assert_eq!(
            flow::recovered(&history),
            recovered,
            "{:?}",
            history.iter().map(|i| i.moved).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_example_of_the_status_page_is_what_the_rule_decides() {
    // docs/reference/status.md#flow-health: a backend that rejected everything for minutes
    // recovers, fails for one interval, recovers, then fails every other probe.
    use Backend::*;
    let after = [
        Delivering, Delivering, Rejecting, Delivering, Delivering, Rejecting, Delivering,
        Rejecting, Delivering,
    ];
    let run = [&[Rejecting; 8][..], &after].concat();
    use Reason::*;
    assert_eq!(
        reasons(&simulate(&run))[8..],
        [
            GatewayAllTelemetryDataDropped,
            GatewaySomeTelemetryDataDropped,
            FlowHealthy,
            GatewaySomeTelemetryDataDropped,
            GatewaySomeTelemetryDataDropped,
            FlowHealthy,
            GatewaySomeTelemetryDataDropped,
            GatewaySomeTelemetryDataDropped,
            GatewaySomeTelemetryDataDropped,
            GatewaySomeTelemetryDataDropped,
        ]
    );
}
