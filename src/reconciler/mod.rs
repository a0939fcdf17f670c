//! The reconciler (docs/architecture.md#reconciliation, docs/reference/status.md): a reconcile pass
//! that gathers the pipelines' inputs, decides with pure functions (`status`, `crate::validation`,
//! `crate::gateway`) and writes the gateway (`apply`).

pub mod apply;
pub mod cluster_uid;
pub mod controller;
pub mod leader;
pub mod pass;
pub mod status;
pub mod trigger;
pub mod write;
