//! The command line: `run`, and the offline commands `crd`, `validate` and `render`.

pub mod input;
pub mod render;
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
    Run(Box<run::RunArgs>),
    /// Print the TracePipeline CustomResourceDefinition (both versions) as YAML.
    Crd,
    /// Print the gateway objects that TracePipeline manifests (and the Secrets among them) would
    /// produce, without a cluster. Secret values are redacted unless --show-secrets.
    Render(RenderArgs),
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

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// A manifest file, a directory of manifests, or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Show the values of the gateway's env Secret instead of redacting them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Value of k8s.cluster.uid inserted into spans that have none; `run` reads it from the
    /// kube-system namespace.
    #[arg(long)]
    pub cluster_uid: Option<String>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// The gateway's settings, shared by `render` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Namespace of the trace gateway (default: the manager's namespace; `kyma-system` for render).
    #[arg(long)]
    pub target_namespace: Option<String>,
    /// The collector image; the generated configuration is written for this release.
    #[arg(long, default_value = crate::gateway::DEFAULT_COLLECTOR_IMAGE)]
    pub collector_image: String,
    /// Replicas of the gateway Deployment (with autoscaling: the fewest).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..))]
    pub gateway_replicas: i32,
    /// Scale the gateway with a HorizontalPodAutoscaler up to this many replicas, on CPU and
    /// memory use; off when not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub gateway_autoscaling_max: Option<i32>,
    /// The autoscaler's target average CPU use, in percent of the gateway pods' CPU request.
    #[arg(long, value_name = "PERCENT", default_value_t = 70, value_parser = clap::value_parser!(i32).range(1..))]
    pub gateway_autoscaling_cpu: i32,
    /// The most TracePipelines in the gateway; 0 means unlimited.
    #[arg(long, default_value_t = 5)]
    pub max_pipelines: usize,
    /// Value of k8s.cluster.name inserted into spans that have none.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// PriorityClass of the gateway pods.
    #[arg(long)]
    pub priority_class_name: Option<String>,
    /// Render as if Istio's security.istio.io/v1 API were served (adds a PeerAuthentication).
    #[arg(long)]
    pub istio: bool,
    /// Add the pod label KEY to spans as k8s.pod.label.KEY; `PREFIX*` adds every label whose key
    /// starts with PREFIX. Repeatable.
    #[arg(long = "extract-pod-label", value_name = "KEY")]
    pub extract_pod_labels: Vec<crate::gateway::PodLabel>,
}

/// Gateway flags that are valid one by one but not together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayArgsError {
    #[error(
        "--gateway-autoscaling-max needs --gateway-replicas of at least 1: it is the autoscaler's minimum"
    )]
    NoMinimum,
    #[error(
        "--gateway-autoscaling-max {max} is below --gateway-replicas {min}, the autoscaler's minimum"
    )]
    MaximumBelowMinimum { max: i32, min: i32 },
}

impl GatewayArgs {
    pub fn settings(
        &self,
        manager_namespace: &str,
    ) -> Result<crate::gateway::GatewaySettings, GatewayArgsError> {
        let autoscaling = match self.gateway_autoscaling_max {
            None => None,
            Some(_) if self.gateway_replicas < 1 => return Err(GatewayArgsError::NoMinimum),
            Some(max) if max < self.gateway_replicas => {
                return Err(GatewayArgsError::MaximumBelowMinimum {
                    max,
                    min: self.gateway_replicas,
                });
            }
            Some(max) => Some(crate::gateway::Autoscaling {
                max_replicas: max,
                cpu_utilization: self.gateway_autoscaling_cpu,
            }),
        };
        Ok(crate::gateway::GatewaySettings {
            namespace: self
                .target_namespace
                .clone()
                .unwrap_or_else(|| manager_namespace.to_string()),
            manager_namespace: manager_namespace.to_string(),
            collector_image: self.collector_image.clone(),
            replicas: self.gateway_replicas,
            cluster_name: self.cluster_name.clone().filter(|c| !c.is_empty()),
            priority_class_name: self.priority_class_name.clone().filter(|p| !p.is_empty()),
            istio: self.istio,
            cluster_uid: None,
            pod_labels: self.extract_pod_labels.clone(),
            autoscaling,
        })
    }
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
            Command::Render(args) => ExitCode::from(run_render(&args)),
            Command::Run(args) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("the Tokio runtime needs threads and an I/O driver");
                match runtime.block_on(run::run(*args)) {
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn offline_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime needs no OS resources that can be missing")
}

fn run_render(args: &RenderArgs) -> u8 {
    let documents = match input::read_all(&args.files) {
        Ok(documents) => documents,
        Err(err) => {
            eprintln!("error: {err}");
            return validate::UNREADABLE;
        }
    };
    let mut settings = match args.gateway.settings("kyma-system") {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return validate::UNREADABLE;
        }
    };
    settings.cluster_uid = args.cluster_uid.clone().filter(|uid| !uid.is_empty());
    let result = offline_runtime().block_on(render::render_documents(
        &documents,
        &settings,
        args.gateway.max_pipelines,
        args.show_secrets,
        unix_now(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ));
    result.unwrap_or_else(|err| {
        eprintln!("error: cannot write the output: {err}");
        validate::UNREADABLE
    })
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
    let result = offline_runtime().block_on(validate::validate_documents(
        &documents,
        settings,
        unix_now(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ));
    result.unwrap_or_else(|err| {
        eprintln!("error: cannot write the report: {err}");
        validate::UNREADABLE
    })
}
