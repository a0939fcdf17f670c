//! The manager's own Prometheus metrics (docs/reference/metrics.md), registered once in a typed
//! struct.

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Admission requests by webhook (`validate`/`mutate`), operation, allowed and HTTP-like code.
    pub webhook_requests: IntCounterVec,
    /// Admission request latency by webhook.
    pub webhook_duration: HistogramVec,
    /// Expiry of the certificate the webhook serves, Unix seconds.
    pub certificate_not_after: Gauge,
    /// Certificate loads or renewals that failed (the previous certificate stays in use).
    pub certificate_reload_failures: IntCounter,
    /// Reconcile passes by result (`success`, `error`, `lookup_failed`).
    pub reconciles: IntCounterVec,
    /// Duration of a reconcile pass.
    pub reconcile_duration: Histogram,
    /// From the oldest change a pass handles to the start of the pass.
    pub reconcile_trigger_delay: Histogram,
    /// 1 for each pipeline's current condition status, 0 for the others.
    pub pipeline_condition: IntGaugeVec,
    /// 1 per existing pipeline, with its protocol.
    pub pipeline_info: IntGaugeVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    /// Duration of one flow-health probe of all gateway pods.
    pub flow_probe_duration: Histogram,
    /// Flow-health probes that could not read every gateway pod.
    pub flow_probe_failures: IntCounter,
    /// Spans sent per second per pipeline, over the flow window.
    pub pipeline_sent_rate: GaugeVec,
    /// Spans dropped per second per pipeline, over the flow window.
    pub pipeline_dropped_rate: GaugeVec,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let webhook_requests = IntCounterVec::new(
            Opts::new(
                "telemetry_webhook_requests_total",
                "Admission requests handled, by webhook, operation, result and code.",
            ),
            &["webhook", "operation", "allowed", "code"],
        )
        .expect("valid metric definition");
        let webhook_duration = HistogramVec::new(
            HistogramOpts::new(
                "telemetry_webhook_request_duration_seconds",
                "Time to answer an admission request.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["webhook"],
        )
        .expect("valid metric definition");
        let certificate_not_after = Gauge::new(
            "telemetry_webhook_certificate_expiry_timestamp_seconds",
            "Expiry of the webhook serving certificate, in Unix seconds.",
        )
        .expect("valid metric definition");
        let certificate_reload_failures = IntCounter::new(
            "telemetry_webhook_certificate_reload_failures_total",
            "Certificate loads or renewals that failed; the previous certificate stays in use.",
        )
        .expect("valid metric definition");
        let build_info = IntGaugeVec::new(
            Opts::new("telemetry_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric definition");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry
            .register(Box::new(webhook_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(webhook_duration.clone()))
            .expect("registered once");
        registry
            .register(Box::new(certificate_not_after.clone()))
            .expect("registered once");
        registry
            .register(Box::new(certificate_reload_failures.clone()))
            .expect("registered once");
        registry
            .register(Box::new(build_info))
            .expect("registered once");
        let reconciles = IntCounterVec::new(
            Opts::new(
                "telemetry_reconciles_total",
                "Reconcile passes of the trace gateway, by result.",
            ),
            &["result"],
        )
        .expect("valid metric definition");
        let reconcile_duration = Histogram::with_opts(
            HistogramOpts::new(
                "telemetry_reconcile_duration_seconds",
                "Duration of a reconcile pass.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric definition");
        let reconcile_trigger_delay = Histogram::with_opts(
            HistogramOpts::new(
                "telemetry_reconcile_trigger_delay_seconds",
                "Time from the oldest change a reconcile pass handles to the start of the pass.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric definition");
        let pipeline_condition = IntGaugeVec::new(
            Opts::new(
                "telemetry_tracepipeline_condition",
                "1 for the current status of each TracePipeline condition, 0 for the other statuses.",
            ),
            &["pipeline", "type", "status"],
        )
        .expect("valid metric definition");
        let pipeline_info = IntGaugeVec::new(
            Opts::new(
                "telemetry_tracepipeline_info",
                "One series per TracePipeline; always 1.",
            ),
            &["pipeline", "protocol"],
        )
        .expect("valid metric definition");
        let leader = IntGauge::new(
            "telemetry_leader",
            "1 while this replica holds the leader Lease.",
        )
        .expect("valid metric definition");
        let flow_probe_duration = Histogram::with_opts(
            HistogramOpts::new(
                "telemetry_flow_probe_duration_seconds",
                "Duration of one flow-health probe of all gateway pods.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric definition");
        let flow_probe_failures = IntCounter::new(
            "telemetry_flow_probe_failures_total",
            "Flow-health probes that could not read every gateway pod.",
        )
        .expect("valid metric definition");
        let pipeline_sent_rate = GaugeVec::new(
            Opts::new(
                "telemetry_tracepipeline_sent_spans_per_second",
                "Spans sent per second per pipeline, over the flow window.",
            ),
            &["pipeline"],
        )
        .expect("valid metric definition");
        let pipeline_dropped_rate = GaugeVec::new(
            Opts::new(
                "telemetry_tracepipeline_dropped_spans_per_second",
                "Spans dropped per second per pipeline, over the flow window.",
            ),
            &["pipeline"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(flow_probe_duration.clone()))
            .expect("registered once");
        registry
            .register(Box::new(flow_probe_failures.clone()))
            .expect("registered once");
        registry
            .register(Box::new(pipeline_sent_rate.clone()))
            .expect("registered once");
        registry
            .register(Box::new(pipeline_dropped_rate.clone()))
            .expect("registered once");
        registry
            .register(Box::new(reconciles.clone()))
            .expect("registered once");
        registry
            .register(Box::new(reconcile_duration.clone()))
            .expect("registered once");
        registry
            .register(Box::new(reconcile_trigger_delay.clone()))
            .expect("registered once");
        registry
            .register(Box::new(pipeline_condition.clone()))
            .expect("registered once");
        registry
            .register(Box::new(pipeline_info.clone()))
            .expect("registered once");
        registry
            .register(Box::new(leader.clone()))
            .expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");

        Arc::new(Metrics {
            registry,
            webhook_requests,
            webhook_duration,
            certificate_not_after,
            certificate_reload_failures,
            reconciles,
            reconcile_duration,
            reconcile_trigger_delay,
            pipeline_condition,
            pipeline_info,
            leader,
            flow_probe_duration,
            flow_probe_failures,
            pipeline_sent_rate,
            pipeline_dropped_rate,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}
