//! The command line: `run`, and the offline commands `crd` and `validate`.

pub mod input;
pub mod run;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::validation::{SecretRefPolicy, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "telemetry-manager",
    version,
    about = "Kubernetes operator for a managed OpenTelemetry trace gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the manager: admission webhooks, metrics and health endpoints (in cluster, or out of
    /// cluster with KUBECONFIG).
    Run(run::RunArgs),
    /// Print the TracePipeline CustomResourceDefinition (both versions) as YAML.
    Crd,
    /// Validate TracePipeline manifests offline, with the webhook's rules.
    ///
    /// Exit code 0: every pipeline is valid; 1: at least one is invalid; 2: the input cannot be read.
    Validate(ValidateArgs),
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// A manifest file, a directory of manifests, or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// What to do with a reference to a Secret that is not in the input.
    #[arg(long, value_enum, default_value_t = SecretRefPolicy::Reject)]
    pub secret_ref_policy: SecretRefPolicy,
    /// The most TracePipelines a cluster may have; 0 means unlimited.
    #[arg(long, default_value_t = 5)]
    pub max_pipelines: usize,
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Crd => match serde_saphyr::to_string(&crate::api::crd()) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: cannot serialise the CRD: {err}");
                    ExitCode::FAILURE
                }
            },
            Command::Validate(args) => ExitCode::from(run_validate(&args)),
            Command::Run(args) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("the Tokio runtime needs threads and an I/O driver");
                match runtime.block_on(run::run(args)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("error: {err}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

fn run_validate(args: &ValidateArgs) -> u8 {
    let documents = match input::read_all(&args.files) {
        Ok(documents) => documents,
        Err(err) => {
            eprintln!("error: {err}");
            return validate::UNREADABLE;
        }
    };
    let settings = Settings {
        secret_ref_policy: args.secret_ref_policy,
        max_pipelines: args.max_pipelines,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime needs no OS resources that can be missing");
    let result = runtime.block_on(validate::validate_documents(
        &documents,
        settings,
        now,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ));
    result.unwrap_or_else(|err| {
        eprintln!("error: cannot write the report: {err}");
        validate::UNREADABLE
    })
}
