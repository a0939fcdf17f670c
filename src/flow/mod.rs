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
    /// HTTP client attempts, by destination port and answer.
    pub http_attempts: BTreeMap<Attempt, f64>,
    /// gRPC client calls, by destination port and answer.
    pub rpc_calls: BTreeMap<Attempt, f64>,
}

/// Where a client attempt of the collector went and how it ended. The client metrics carry no
/// exporter label, so the destination port is what ties an attempt to a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attempt {
    /// `server_port`; gRPC calls that never connected have none.
    pub port: Option<String>,
    pub answer: BackendAnswer,
}

/// How the backend answered an export attempt.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BackendAnswer {
    /// Nothing answered: the connection was refused or timed out, or the name did not resolve.
    /// The collector records such an HTTP attempt without a status code, and such a gRPC call
    /// without a server address (its status is then UNAVAILABLE or DEADLINE_EXCEEDED, which a
    /// backend could also answer itself, so the missing address is what tells them apart).
    NoAnswer,
    /// An HTTP status code, e.g. `503`.
    Http(String),
    /// A gRPC status code name, e.g. `RESOURCE_EXHAUSTED`.
    Grpc(String),
}

impl BackendAnswer {
    fn failed(&self) -> bool {
        match self {
            BackendAnswer::NoAnswer => true,
            BackendAnswer::Http(code) => !code.starts_with('2'),
            BackendAnswer::Grpc(code) => code != "OK",
        }
    }
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
                let answer = sample
                    .label("http_response_status_code")
                    .filter(|code| !code.is_empty())
                    .map_or(BackendAnswer::NoAnswer, |code| {
                        BackendAnswer::Http(code.to_string())
                    });
                let attempt = Attempt {
                    port: sample.label("server_port").map(str::to_string),
                    answer,
                };
                *pod.http_attempts.entry(attempt).or_default() += sample.value;
            }
            "rpc_client_call_duration_seconds_count" => {
                let connected = sample.label("server_address").is_some();
                let answer = match sample.label("rpc_response_status_code") {
                    Some(code) if code == "OK" || (connected && !code.is_empty()) => {
                        BackendAnswer::Grpc(code.to_string())
                    }
                    _ => BackendAnswer::NoAnswer,
                };
                let attempt = Attempt {
                    port: sample.label("server_port").map(str::to_string),
                    answer,
                };
                *pod.rpc_calls.entry(attempt).or_default() += sample.value;
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

/// How an exporter's counters moved over some time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Increases {
    pub sent: f64,
    pub dropped: f64,
    pub refused: f64,
}

impl std::ops::AddAssign for Increases {
    fn add_assign(&mut self, other: Increases) {
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.refused += other.refused;
    }
}

/// How an exporter's counters moved between two consecutive probes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// When the later of the two probes was taken.
    pub until: Duration,
    pub moved: Increases,
}

impl Interval {
    /// Nothing was dropped or refused in it.
    fn clean(&self) -> bool {
        self.moved.dropped == 0.0 && self.moved.refused == 0.0
    }
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

    /// Counter increases over the whole window; see [`FlowWindow::intervals`].
    pub fn increases(&self, exporter: &str) -> Increases {
        sum(&self.intervals(exporter))
    }

    /// The exporter's counter movement between each two consecutive probes of the window, oldest
    /// first, summed over pods. A counter that went down is a restarted collector: its new value
    /// is the increase. A pod seen for the first time is the baseline, and a pod that went away
    /// adds nothing, so pods coming and going are not drops.
    pub fn intervals(&self, exporter: &str) -> Vec<Interval> {
        let zero = ExporterMetrics::default();
        let mut intervals = Vec::with_capacity(self.observations.len().saturating_sub(1));
        for (before, now) in self
            .observations
            .iter()
            .zip(self.observations.iter().skip(1))
        {
            let mut moved = Increases::default();
            for (pod, pod_now) in &now.pods {
                let Some(pod_before) = before.pods.get(pod) else {
                    continue;
                };
                let e_now = pod_now.exporters.get(exporter).unwrap_or(&zero);
                let e_before = pod_before.exporters.get(exporter).unwrap_or(&zero);
                moved.sent += increase(e_before.sent, e_now.sent);
                moved.dropped += increase(e_before.send_failed, e_now.send_failed)
                    + increase(e_before.enqueue_failed, e_now.enqueue_failed);
                moved.refused += increase(pod_before.refused, pod_now.refused);
            }
            intervals.push(Interval {
                until: now.at,
                moved,
            });
        }
        intervals
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

    /// The most frequent failed answer to the exporter's attempts in the window. The client
    /// metrics name no exporter: an attempt is the exporter's when it has the exporter's protocol
    /// and the exporter's port. Attempts without a known port on either side (gRPC calls that
    /// never connected, an endpoint without an explicit port) may be anyone's, so they only
    /// count when no attempt on the exporter's own port failed.
    pub fn failing_answer(&self, exporter: &ExporterRef) -> Option<BackendAnswer> {
        // Failed attempts by answer: on the exporter's port, and of unknown destination.
        let mut own: BTreeMap<&BackendAnswer, f64> = BTreeMap::new();
        let mut unknown: BTreeMap<&BackendAnswer, f64> = BTreeMap::new();
        for (before, now) in self
            .observations
            .iter()
            .zip(self.observations.iter().skip(1))
        {
            for (pod, pod_now) in &now.pods {
                let Some(pod_before) = before.pods.get(pod) else {
                    continue;
                };
                let (attempts_now, attempts_before) = if exporter.grpc {
                    (&pod_now.rpc_calls, &pod_before.rpc_calls)
                } else {
                    (&pod_now.http_attempts, &pod_before.http_attempts)
                };
                for (attempt, value) in attempts_now {
                    let counts = match (&attempt.port, &exporter.port) {
                        (Some(port), Some(expected)) if port == expected => &mut own,
                        (Some(_), Some(_)) => continue,
                        _ => &mut unknown,
                    };
                    if attempt.answer.failed() {
                        let was = attempts_before.get(attempt).copied().unwrap_or(0.0);
                        *counts.entry(&attempt.answer).or_default() += increase(was, *value);
                    }
                }
            }
        }
        most_frequent(own)
            .or_else(|| most_frequent(unknown))
            .cloned()
    }
}

fn most_frequent<T>(counts: BTreeMap<T, f64>) -> Option<T> {
    counts
        .into_iter()
        .filter(|(_, count)| *count > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(answer, _)| answer)
}

fn sum(intervals: &[Interval]) -> Increases {
    let mut total = Increases::default();
    for interval in intervals {
        total += interval.moved;
    }
    total
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
        failing: Option<BackendAnswer>,
    },
    BufferFillingUp {
        percent: f64,
    },
    Healthy,
}

/// Above this share of its capacity the export queue is filling up
/// (docs/reference/status.md#flow-health).
const BUFFER_FILLING_UP: f64 = 0.8;

/// How many clean intervals between probes, newest last, show that a backend recovered; see
/// [`recovered`].
pub const RECOVERY_INTERVALS: usize = 2;

/// Whether the newest probes show that the flow recovered from drops or refusals, so that those
/// still in the window no longer count (a pure function of the exporter's probe history, oldest
/// interval first).
///
/// The rule: in each of the last [`RECOVERY_INTERVALS`] intervals nothing was dropped or
/// refused, and spans were delivered in them. With the default poll interval of 15 s that is 30 s
/// of clean delivery, however long the outage lasted, where waiting for the drops to leave the
/// window would take a whole window. Failures are still decided over the whole window: the rule
/// only ends one sooner once delivery is back. Without delivery (no traffic, or a queue that does
/// not drain) the drops count until they leave the window.
///
/// Why two intervals and not one: right after its first failure, a backend that fails every other
/// probe looks exactly like a short outage followed by one clean interval. Recovering on one
/// clean interval would flip the condition on every probe; with two, failures every other probe
/// never leave two clean intervals in a row, so the condition turns False once and stays False.
/// When the window holds fewer intervals (a poll interval close to the window), the rule never
/// applies.
pub fn recovered(intervals: &[Interval]) -> bool {
    let Some(first) = intervals.len().checked_sub(RECOVERY_INTERVALS) else {
        return false;
    };
    let latest = &intervals[first..];
    latest.iter().all(Interval::clean) && sum(latest).sent > 0.0
}

/// Judge one exporter over the window. Drops and refusals count over the whole window unless the
/// newest probes show a recovery ([`recovered`]); whether anything is still delivered is judged
/// over the recent half, so a failure is reported within half a window.
pub fn judge(window: &FlowWindow, exporter: &ExporterRef) -> FlowVerdict {
    let intervals = window.intervals(&exporter.id);
    let moved = sum(&intervals);
    let recent_start = window.recent_start();
    // The first interval that ends in the recent half starts at or before its start.
    let recent_sent: f64 = intervals
        .iter()
        .filter(|interval| interval.until > recent_start)
        .map(|interval| interval.moved.sent)
        .sum();
    let troubled = !recovered(&intervals);
    let (queued, capacity) = window.queue(&exporter.id);
    if troubled && moved.dropped > 0.0 && recent_sent == 0.0 {
        FlowVerdict::AllDataDropped {
            dropped: moved.dropped,
        }
    } else if troubled && moved.dropped > 0.0 {
        FlowVerdict::SomeDataDropped {
            dropped: moved.dropped,
            sent: moved.sent,
        }
    } else if troubled && moved.refused > 0.0 {
        FlowVerdict::Throttling {
            refused: moved.refused,
        }
    } else if window.has_history() && recent_sent == 0.0 && queued > 0.0 {
        FlowVerdict::ExportStalled {
            queued,
            failing: window.failing_answer(exporter),
        }
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
        FlowVerdict::ExportStalled { queued, failing } => {
            let (cause, advice) = match failing {
                Some(BackendAnswer::NoAnswer) => (
                    "no answer from the backend (connection refused or timed out)".to_string(),
                    "Check that the backend runs and that the gateway can reach it: the pipeline's endpoint, DNS and network policies",
                ),
                Some(BackendAnswer::Http(code)) => (
                    format!("the backend answers HTTP {code}"),
                    "Check the backend's health and logs",
                ),
                Some(BackendAnswer::Grpc(code)) => (
                    format!("the backend answers gRPC {code}"),
                    "Check the backend's health and logs",
                ),
                None => (
                    "the backend is unreachable or failing with retryable errors".to_string(),
                    "Check the backend and the network path to it",
                ),
            };
            failed(
                Reason::GatewayExportStalled,
                format!(
                    "No span was delivered in the last {seconds}s while {queued:.0} batches wait in the export queue: {cause}, and spans will be dropped once retries give up. {advice}"
                ),
            )
        }
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
