//! All integration tests, one module per area, linked into one test binary: a binary per file
//! linked the whole dependency tree two dozen times (about 2 GB of a fresh CI build's disk and
//! most of its link time). Run one area with `cargo test --test integration <area>::`.

mod common;

mod admin;
mod autoscaling;
mod certificates;
mod chart;
mod cli;
mod controller;
mod crd;
mod docs;
mod flow;
mod flow_probe;
mod gateway;
mod leader;
mod manifests;
mod ottl_conformance;
mod ottl_messages;
mod ottl_properties;
mod ottl_tables;
mod reconcile;
mod repository;
mod run;
mod service_name;
mod status;
mod validation;
mod webhook;
