//! telemetry-manager: a Kubernetes operator for one managed OpenTelemetry trace gateway,
//! configured by `TracePipeline` resources.

pub mod api;
pub mod cli;
pub mod validation;
