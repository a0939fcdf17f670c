//! Flow health (docs/reference/status.md#flow-health): read the gateway pods' own metrics, keep a
//! sliding window of them, and judge per pipeline whether spans reach the backend. Everything
//! here is pure; scraping and status writing happen at the edges.

pub mod prometheus;
pub mod scrape;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::api::Reason;

/// What one gateway pod's metrics say about traces, summed per exporter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodMetrics {
    /// By exporter component ID, exactly as in the collector config (`otlp_grpc/<pipeline>`).
    pub exporters: BTreeMap<String, ExporterMetrics>,
    /// Spans the receivers refused (memory limiter): gateway-wide, not per pipeline.
    pub refused: f64,
    /// HTTP client attempts by (server port, status code).
    pub http_attempts: BTreeMap<(String, String), f64>,
    /// gRPC client calls by status code.
    pub rpc_calls: BTreeMap<String, f64>,
}

/// The series of one exporter; an absent series counts as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExporterMetrics {
    pub sent: f64,
    pub send_failed: f64,
    pub enqueue_failed: f64,
    pub queue_size: f64,
    pub queue_capacity: f64,
}

/// Read one pod's `/metrics` text. Both the `_total` names and the older names are accepted, and
/// every other label is summed over.
pub fn read_pod(text: &str) -> Result<PodMetrics, prometheus::ParseError> {
    let mut pod = PodMetrics::default();
    for sample in prometheus::parse(text)? {
        let name = sample.name.strip_suffix("_total").unwrap_or(sample.name);
        let exporter = || sample.label("exporter").map(str::to_string);
        let traces = sample.label("data_type").is_none_or(|t| t == "traces");
        match name {
            "otelcol_exporter_sent_spans" => {
                add(&mut pod, exporter(), |e| &mut e.sent, sample.value)
            }
            "otelcol_exporter_send_failed_spans" => {
                add(&mut pod, exporter(), |e| &mut e.send_failed, sample.value)
            }
            "otelcol_exporter_enqueue_failed_spans" => add(
                &mut pod,
                exporter(),
                |e| &mut e.enqueue_failed,
                sample.value,
            ),
            "otelcol_exporter_queue_size" if traces => {
                add(&mut pod, exporter(), |e| &mut e.queue_size, sample.value)
            }
            "otelcol_exporter_queue_capacity" if traces => add(
                &mut pod,
                exporter(),
                |e| &mut e.queue_capacity,
                sample.value,
            ),
            "otelcol_receiver_refused_spans" => pod.refused += sample.value,
            "http_client_request_duration_seconds_count" => {
                let port = sample.label("server_port").unwrap_or_default().to_string();
                let status = sample
                    .label("http_response_status_code")
                    .unwrap_or_default()
                    .to_string();
                *pod.http_attempts.entry((port, status)).or_default() += sample.value;
            }
            "rpc_client_call_duration_seconds_count" => {
                let status = sample
                    .label("rpc_response_status_code")
                    .unwrap_or_default()
                    .to_string();
                *pod.rpc_calls.entry(status).or_default() += sample.value;
            }
            _ => {}
        }
    }
    Ok(pod)
}

fn add(
    pod: &mut PodMetrics,
    exporter: Option<String>,
    field: impl Fn(&mut ExporterMetrics) -> &mut f64,
    value: f64,
) {
    if let Some(exporter) = exporter {
        *field(pod.exporters.entry(exporter).or_default()) += value;
    }
}

/// One successful probe: every ready gateway pod's metrics, by pod.
#[derive(Clone, Debug, PartialEq)]
struct Observation {
    at: Duration,
    pods: BTreeMap<String, PodMetrics>,
}

/// The probes of the last `length`, plus the newest older one as the baseline for increases.
#[derive(Clone, Debug)]
pub struct FlowWindow {
    length: Duration,
    observations: VecDeque<Observation>,
}

/// How an exporter's counters moved over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Increases {
    pub sent: f64,
    pub dropped: f64,
    pub refused: f64,
}

impl FlowWindow {
    pub fn new(length: Duration) -> Self {
        FlowWindow {
            length,
            observations: VecDeque::new(),
        }
    }

    /// Add the probe taken at `at` (time since any fixed origin, increasing).
    pub fn record(&mut self, at: Duration, pods: BTreeMap<String, PodMetrics>) {
        self.observations.push_back(Observation { at, pods });
        let start = at.saturating_sub(self.length);
        while self.observations.len() > 2 && self.observations[1].at <= start {
            self.observations.pop_front();
        }
    }

    /// Whether the window holds two probes, the least needed to see a counter move.
    pub fn has_history(&self) -> bool {
        self.observations.len() >= 2
    }

    /// The start of the recent half of the window, which decides whether anything is still
    /// delivered: a backend that stops accepting shows within half a window, not a whole one.
    pub fn recent_start(&self) -> Duration {
        self.observations
            .back()
            .map_or(Duration::ZERO, |o| o.at.saturating_sub(self.length / 2))
    }

    /// Counter increases over the whole window; see [`FlowWindow::increases_since`].
    pub fn increases(&self, exporter: &str) -> Increases {
        self.increases_since(exporter, Duration::ZERO)
    }

    /// The probes from the newest one taken at or before `start` (else the oldest) to the newest.
    fn span_from(&self, start: Duration) -> Vec<&Observation> {
        let first = self
            .observations
            .iter()
            .rposition(|o| o.at <= start)
            .unwrap_or(0);
        self.observations.iter().skip(first).collect()
    }

    /// Counter increases since `start`, summed over pods and consecutive probes. A counter that
    /// went down is a restarted collector: its new value is the increase. A pod seen for the
    /// first time is the baseline, and a pod that went away adds nothing, so pods coming and
    /// going are not drops.
    pub fn increases_since(&self, exporter: &str, start: Duration) -> Increases {
        let mut total = Increases::default();
        for pair in self.span_from(start).windows(2) {
            for (pod, now) in &pair[1].pods {
                let Some(before) = pair[0].pods.get(pod) else {
                    continue;
                };
                let zero = ExporterMetrics::default();
                let e_now = now.exporters.get(exporter).unwrap_or(&zero);
                let e_before = before.exporters.get(exporter).unwrap_or(&zero);
                total.sent += increase(e_before.sent, e_now.sent);
                total.dropped += increase(e_before.send_failed, e_now.send_failed)
                    + increase(e_before.enqueue_failed, e_now.enqueue_failed);
                total.refused += increase(before.refused, now.refused);
            }
        }
        total
    }

    /// Queue size and capacity of the exporter in the newest probe, summed over pods.
    pub fn queue(&self, exporter: &str) -> (f64, f64) {
        self.observations.back().map_or((0.0, 0.0), |latest| {
            latest
                .pods
                .values()
                .filter_map(|pod| pod.exporters.get(exporter))
                .fold((0.0, 0.0), |(size, capacity), e| {
                    (size + e.queue_size, capacity + e.queue_capacity)
                })
        })
    }

    /// The most frequent failing client status in the window: HTTP (for `http_port`, when the
    /// exporter's port is known) or gRPC.
    pub fn failing_status(&self, http_port: Option<&str>, grpc: bool) -> Option<String> {
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        for pair in self.span_from(Duration::ZERO).windows(2) {
            for (pod, now) in &pair[1].pods {
                let Some(before) = pair[0].pods.get(pod) else {
                    continue;
                };
                if grpc {
                    for (status, value) in &now.rpc_calls {
                        if status != "OK" {
                            let moved = increase(
                                before.rpc_calls.get(status).copied().unwrap_or(0.0),
                                *value,
                            );
                            *counts.entry(format!("gRPC {status}")).or_default() += moved;
                        }
                    }
                } else {
                    for ((port, status), value) in &now.http_attempts {
                        let failing = !status.starts_with('2');
                        if failing && http_port.is_none_or(|p| p == port) {
                            let key = (port.clone(), status.clone());
                            let moved = increase(
                                before.http_attempts.get(&key).copied().unwrap_or(0.0),
                                *value,
                            );
                            *counts.entry(format!("HTTP {status}")).or_default() += moved;
                        }
                    }
                }
            }
        }
        counts
            .into_iter()
            .filter(|(_, count)| *count > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(status, _)| status)
    }
}

fn increase(before: f64, now: f64) -> f64 {
    if now >= before { now - before } else { now }
}

/// The exporter a pipeline's flow is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterRef {
    /// The component ID, e.g. `otlp_grpc/backend`.
    pub id: String,
    pub grpc: bool,
    /// The backend's port, to match HTTP client metrics to this exporter.
    pub port: Option<String>,
}

/// The judgement of one pipeline's flow, in priority order (AllDataDropped, SomeDataDropped,
/// Throttling, ExportStalled, BufferFillingUp).
#[derive(Clone, Debug, PartialEq)]
pub enum FlowVerdict {
    AllDataDropped {
        dropped: f64,
    },
    SomeDataDropped {
        dropped: f64,
        sent: f64,
    },
    Throttling {
        refused: f64,
    },
    ExportStalled {
        queued: f64,
        failing: Option<String>,
    },
    BufferFillingUp {
        percent: f64,
    },
    Healthy,
}

/// Above this share of its capacity the export queue is filling up
/// (docs/reference/status.md#flow-health).
const BUFFER_FILLING_UP: f64 = 0.8;

/// Judge one exporter over the window. Drops and refusals count over the whole window, so a
/// recovery is reported only once they have left it; whether anything is still delivered is
/// judged over the recent half, so a failure is reported within half a window.
pub fn judge(window: &FlowWindow, exporter: &ExporterRef) -> FlowVerdict {
    let moved = window.increases(&exporter.id);
    let recent = window.increases_since(&exporter.id, window.recent_start());
    let (queued, capacity) = window.queue(&exporter.id);
    if moved.dropped > 0.0 && recent.sent == 0.0 {
        FlowVerdict::AllDataDropped {
            dropped: moved.dropped,
        }
    } else if moved.dropped > 0.0 {
        FlowVerdict::SomeDataDropped {
            dropped: moved.dropped,
            sent: moved.sent,
        }
    } else if moved.refused > 0.0 {
        FlowVerdict::Throttling {
            refused: moved.refused,
        }
    } else if window.has_history() && recent.sent == 0.0 && queued > 0.0 {
        let failing = window.failing_status(exporter.port.as_deref(), exporter.grpc);
        FlowVerdict::ExportStalled { queued, failing }
    } else if capacity > 0.0 && queued / capacity > BUFFER_FILLING_UP {
        FlowVerdict::BufferFillingUp {
            percent: (100.0 * queued / capacity).round(),
        }
    } else {
        FlowVerdict::Healthy
    }
}

/// The flow-health state the poller keeps between probes.
#[derive(Clone, Debug)]
pub struct FlowMonitor {
    window: FlowWindow,
    length: Duration,
    /// The error of the newest probe, if it failed.
    failure: Option<String>,
    probed: bool,
}

impl FlowMonitor {
    pub fn new(window: Duration) -> Self {
        FlowMonitor {
            window: FlowWindow::new(window),
            length: window,
            failure: None,
            probed: false,
        }
    }

    /// Record the probe taken at `at`: every pod's metrics, or why they could not be read.
    pub fn observe(&mut self, at: Duration, probe: Result<BTreeMap<String, PodMetrics>, String>) {
        self.probed = true;
        match probe {
            Ok(pods) => {
                self.window.record(at, pods);
                self.failure = None;
            }
            Err(error) => self.failure = Some(error),
        }
    }

    /// How the exporter's counters moved over the window.
    pub fn increases(&self, exporter: &str) -> Increases {
        self.window.increases(exporter)
    }

    /// The TelemetryFlowHealthy condition of one pipeline; `None` before the first probe, when
    /// nothing is known yet.
    pub fn condition(
        &self,
        exporter: &ExporterRef,
        configuration_generated: bool,
    ) -> Option<FlowCondition> {
        if !self.probed {
            return None;
        }
        Some(match &self.failure {
            Some(error) => flow_condition(configuration_generated, Err(error), self.length),
            None => flow_condition(
                configuration_generated,
                Ok(&judge(&self.window, exporter)),
                self.length,
            ),
        })
    }
}

/// A `TelemetryFlowHealthy` condition, before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCondition {
    pub status: &'static str,
    pub reason: Reason,
    pub message: String,
}

/// The condition for a pipeline (docs/reference/status.md#flow-health): not generated, probing
/// failed, or the verdict.
pub fn flow_condition(
    configuration_generated: bool,
    probe: Result<&FlowVerdict, &str>,
    window: Duration,
) -> FlowCondition {
    let seconds = window.as_secs();
    let failed = |reason, message: String| FlowCondition {
        status: "False",
        reason,
        message,
    };
    if !configuration_generated {
        return failed(
            Reason::ConfigurationNotGenerated,
            "No spans flow: the pipeline is not part of the gateway configuration; see condition ConfigurationGenerated".into(),
        );
    }
    let verdict = match probe {
        Ok(verdict) => verdict,
        Err(error) => {
            return FlowCondition {
                status: "Unknown",
                reason: Reason::GatewayProbingFailed,
                message: format!("Could not read the trace gateway's metrics: {error}"),
            };
        }
    };
    match verdict {
        FlowVerdict::AllDataDropped { dropped } => failed(
            Reason::GatewayAllTelemetryDataDropped,
            format!(
                "Backend is not reachable or rejects spans: all spans are dropped ({dropped:.0} in the last {seconds}s). Check the backend, the pipeline's endpoint and credentials, and the gateway logs"
            ),
        ),
        FlowVerdict::SomeDataDropped { dropped, sent } => failed(
            Reason::GatewaySomeTelemetryDataDropped,
            format!(
                "Backend rejects some spans or cannot keep up: {dropped:.0} dropped and {sent:.0} sent in the last {seconds}s. Check the backend's health and limits, or scale the gateway"
            ),
        ),
        FlowVerdict::Throttling { refused } => failed(
            Reason::GatewayThrottling,
            format!(
                "Trace gateway refuses spans because it is at its memory limit ({refused:.0} refused in the last {seconds}s). Reduce the span volume or scale the gateway out"
            ),
        ),
        FlowVerdict::ExportStalled { queued, failing } => failed(
            Reason::GatewayExportStalled,
            format!(
                "No span was delivered in the last {seconds}s while {queued:.0} batches wait in the export queue{}: the backend is unreachable or failing with retryable errors, and spans will be dropped once retries give up. Check the backend and the network path to it",
                failing
                    .as_deref()
                    .map(|s| format!(" (backend answers {s})"))
                    .unwrap_or_default()
            ),
        ),
        FlowVerdict::BufferFillingUp { percent } => failed(
            Reason::GatewayBufferFillingUp,
            format!(
                "Export queue is {percent:.0}% full: the backend is slow or the gateway is overloaded. Check the backend's capacity or scale the gateway out"
            ),
        ),
        FlowVerdict::Healthy => FlowCondition {
            status: "True",
            reason: Reason::FlowHealthy,
            message: "No problems detected in the telemetry flow".into(),
        },
    }
}
