use std::process::ExitCode;

use clap::Parser;
use telemetry_manager::cli::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
