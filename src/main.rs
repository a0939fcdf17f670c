use std::process::ExitCode;

use clap::Parser;
use telemetry_manager::allocator::MiMalloc;
use telemetry_manager::cli::Cli;

// Small allocations on the webhook path are cheaper than with glibc, and without transparent
// huge pages mimalloc keeps no more memory resident (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    Cli::parse().run()
}
