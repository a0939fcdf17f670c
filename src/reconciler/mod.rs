//! The reconciler (SPEC §4, §5): a reconcile pass that gathers the pipelines' inputs, decides
//! with pure functions (`status`, `crate::validation`, `crate::gateway`) and writes the gateway
//! (`apply`).

pub mod apply;
pub mod controller;
pub mod leader;
pub mod pass;
pub mod status;
pub mod write;
