//! telemetry-manager: a Kubernetes operator for one managed OpenTelemetry trace gateway,
//! configured by `TracePipeline` resources.

pub mod admin;
pub mod admission;
pub mod allocator;
pub mod api;
pub mod cli;
pub mod flow;
pub mod gateway;
pub mod metrics;
pub mod ottl;
pub mod reconciler;
pub mod tls;
pub mod validation;
