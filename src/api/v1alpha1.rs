//! `telemetry.kyma-project.io/v1alpha1`, served and deprecated. Same shape as `v1beta1` without
//! `compression`, so no conversion webhook is needed: the API server stores it as `v1beta1`.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    AuthenticationOptions, FilterSpec, Header, OutputTls, Protocol, TracePipelineStatus,
    TransformSpec, ValueType, v1beta1,
};

/// The desired state of a TracePipeline: where the trace gateway sends spans.
#[derive(
    CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[kube(
    group = "telemetry.kyma-project.io",
    version = "v1alpha1",
    kind = "TracePipeline",
    plural = "tracepipelines",
    status = "TracePipelineStatus",
    category = "kyma-telemetry",
    category = "kyma-telemetry-pipelines",
    storage = false,
    served = true,
    deprecated = "telemetry.kyma-project.io/v1alpha1 TracePipeline is deprecated; use telemetry.kyma-project.io/v1beta1",
    doc = "TracePipeline configures one backend that the cluster's trace gateway exports spans to.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"Configuration Generated","type":"string","jsonPath":".status.conditions[?(@.type==\"ConfigurationGenerated\")].status"}"#,
    printcolumn = r#"{"name":"Gateway Healthy","type":"string","jsonPath":".status.conditions[?(@.type==\"GatewayHealthy\")].status"}"#,
    printcolumn = r#"{"name":"Flow Healthy","type":"string","jsonPath":".status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TracePipelineSpec {
    /// The backend that spans are exported to.
    pub output: Output,
    /// OTTL transformations applied to the spans before export, in order, before the filters.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub transform: Vec<TransformSpec>,
    /// OTTL filters that drop spans before export, after the transformations.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filter: Vec<FilterSpec>,
}

/// The output of a pipeline. Exactly one kind of output exists today: OTLP.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Export with the OpenTelemetry protocol (OTLP) over gRPC or HTTP.
    pub otlp: OtlpOutput,
}

/// An OTLP exporter: `otlp_grpc` for protocol `grpc`, `otlp_http` for protocol `http`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("!has(self.path) || size(self.path) == 0 || (has(self.protocol) && self.protocol == 'http')").message("Path is only available with HTTP protocol"),
    validation = Rule::new("!(has(self.authentication) && has(self.authentication.oauth2) && (!has(self.protocol) || self.protocol == 'grpc') && has(self.tls) && has(self.tls.insecure) && self.tls.insecure)").message("OAuth2 authentication requires TLS when using gRPC protocol")
)]
pub struct OtlpOutput {
    /// The OTLP transport: `grpc` (default) or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The backend address: `host:port` for gRPC, or a URL (`https://host[:port]`) for HTTP.
    #[x_kube(validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'endpoint' must have 'value' or 'valueFrom' set"))]
    pub endpoint: ValueType,
    /// The URL path for HTTP export, replacing the default `/v1/traces`. Only with protocol `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    // Boxed, as is `tls`: every reader moves this struct by value, so the large optional blocks
    // stay out of line.
    /// Authentication against the backend: `basic` or `oauth2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<AuthenticationOptions>>,
    /// Custom headers added to every export request.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<Header>,
    /// TLS settings for the connection to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<OutputTls>>,
}

impl From<TracePipelineSpec> for v1beta1::TracePipelineSpec {
    fn from(spec: TracePipelineSpec) -> Self {
        let otlp = spec.output.otlp;
        v1beta1::TracePipelineSpec {
            output: v1beta1::Output {
                otlp: v1beta1::OtlpOutput {
                    protocol: otlp.protocol,
                    endpoint: otlp.endpoint,
                    path: otlp.path,
                    authentication: otlp.authentication,
                    headers: otlp.headers,
                    tls: otlp.tls,
                    compression: None,
                },
            },
            transform: spec.transform,
            filter: spec.filter,
        }
    }
}
