use std::process::ExitCode;

use clap::Parser;
use telemetry_manager::cli::Cli;

// Small allocations on the webhook path are cheaper than with glibc, and with its `no_thp`
// feature it keeps no more memory resident (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    Cli::parse().run()
}
