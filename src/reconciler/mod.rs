//! The reconciler (SPEC §4, §5). So far the pure status decisions; the controller that gathers
//! inputs, applies the gateway and writes status builds on them.

pub mod status;
