//! `telemetry-manager run`: the in-cluster (or `KUBECONFIG`) process. Every task shares one
//! shutdown token fed by SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::reconciler::controller;
use crate::reconciler::leader;
use crate::reconciler::pass::PassSettings;
use kube::runtime::events::Reporter;

/// Whether Istio's `security.istio.io/v1` API is served (then the gateway gets a
/// PeerAuthentication). Checked at start.
async fn istio_served(client: &kube::Client) -> bool {
    // Bounded, so that an unreachable API server does not hold up the webhooks.
    let discovery = client.list_api_group_resources("security.istio.io/v1");
    match tokio::time::timeout(Duration::from_secs(5), discovery).await {
        Ok(Ok(list)) => list
            .resources
            .iter()
            .any(|r| r.name == "peerauthentications"),
        _ => false,
    }
}
use crate::admission::{Admission, KubeCluster, server};
use crate::metrics::Metrics;
use crate::tls::{self, CertStore, files::CertFiles, self_signed};
use crate::validation::{SecretRefPolicy, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CertMode {
    /// Keep a CA in Secret telemetry-webhook-cert and issue serving certificates from it.
    #[value(name = "self")]
    SelfSigned,
    /// Read tls.crt and tls.key from --cert-dir (for example from cert-manager) and reload on change.
    Files,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Address of the HTTPS webhook server.
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub webhook_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// The manager's namespace (CA Secret, Lease). Default: the pod's namespace, else `default`.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where the webhook serving certificate comes from.
    #[arg(long, value_enum, default_value_t = CertMode::SelfSigned)]
    pub cert_mode: CertMode,
    /// Directory with tls.crt and tls.key for --cert-mode=files.
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
    pub cert_dir: PathBuf,
    /// The webhook Service, whose DNS names the self-issued certificate covers.
    #[arg(long, default_value = "telemetry-manager-webhook")]
    pub webhook_service_name: String,
    /// Extra DNS names or IP addresses for the self-issued certificate (e.g. 127.0.0.1 out of cluster). Repeatable.
    #[arg(long)]
    pub webhook_extra_san: Vec<String>,
    /// How often certificates are checked (renewal, file changes, caBundle repair).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub cert_check_interval: Duration,
    /// What the validating webhook does with a reference to a missing Secret.
    #[arg(long, value_enum, default_value_t = SecretRefPolicy::Reject)]
    pub secret_ref_policy: SecretRefPolicy,
    /// Log format; JSON suits log collectors, text suits a terminal.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// This replica's identity in the leader Lease (default: the pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Name of the leader-election Lease in the manager's namespace.
    #[arg(long, default_value = "telemetry-manager-leader")]
    pub lease_name: String,
    /// How long the leader Lease stays valid without renewal; a standby takes over a crashed leader's Lease after this (whole seconds).
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The leader stops writing when no renewal succeeded for this long; shorter than --lease-duration.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,
    /// How often the leader renews the Lease and the standbys check it; shorter than --lease-renew-deadline.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,
    /// After SIGTERM: release the Lease, report not ready, and keep serving webhooks this long, so that endpoint removal propagates before the server stops.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// A reconcile pass runs at least this often, repairing drift.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// A change starts a pass at once; changes during a pass or within this time after it are handled by one more pass.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub reconcile_coalesce_window: Duration,
    /// How often the gateway pods' metrics are read for flow health.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub flow_poll_interval: Duration,
    /// The sliding window that flow health is judged over.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub flow_window: Duration,
    /// Deadline of one scrape of one gateway pod.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub flow_scrape_timeout: Duration,
    #[command(flatten)]
    pub gateway: crate::cli::GatewayArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::admission::review::parse_go_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 30s or 5m"))
}

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn namespace(args: &RunArgs) -> String {
    args.namespace
        .clone()
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .map(|n| n.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn termination_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler only fails without a Tokio signal driver");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to Kubernetes (in cluster, or with KUBECONFIG): {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    GatewayArgs(#[from] crate::cli::GatewayArgsError),
    #[error(transparent)]
    LeaseTimings(#[from] leader::LeaseTimingError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    tls::install_crypto_provider();
    init_logging(args.log_format);
    let namespace = namespace(&args);
    let mut gateway = args.gateway.settings(&namespace)?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "telemetry-manager".into())
    });
    let lease_settings = leader::LeaseSettings {
        namespace: namespace.clone(),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        duration: args.lease_duration,
        renew_deadline: args.lease_renew_deadline,
        retry: args.lease_retry_period,
    };
    lease_settings.check_timings()?;
    let client = kube::Client::try_default().await?;
    let metrics = Metrics::new();
    let store = CertStore::new();
    let shutdown = CancellationToken::new();

    let webhook_listener = listen(args.webhook_addr).await?;
    let metrics_listener = listen(args.metrics_addr).await?;
    let health_listener = listen(args.health_addr).await?;
    tracing::info!(%namespace, webhook = %args.webhook_addr, "starting telemetry-manager");

    let certificates = match args.cert_mode {
        CertMode::SelfSigned => tokio::spawn(self_signed::run(
            client.clone(),
            self_signed::SelfSignedSettings {
                namespace: namespace.clone(),
                service_name: args.webhook_service_name.clone(),
                extra_sans: args.webhook_extra_san.clone(),
                check_interval: args.cert_check_interval,
            },
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        )),
        CertMode::Files => tokio::spawn(CertFiles::new(&args.cert_dir).watch(
            store.clone(),
            metrics.clone(),
            args.cert_check_interval.min(Duration::from_secs(10)),
            shutdown.clone(),
        )),
    };

    // The reconciler: only the Lease holder runs passes; every replica serves the webhooks.
    let changed = Arc::new(controller::Changes::default());
    let pipelines = controller::watch_pipelines(&client, changed.clone(), shutdown.clone());
    let caches_synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (store, synced) = (pipelines.clone(), caches_synced.clone());
        tokio::spawn(async move {
            if store.wait_until_ready().await.is_ok() {
                synced.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    // On SIGTERM the reconciler stops first, then the Lease is released: nothing writes after
    // another replica may have taken over.
    let (stop_reconciling, release_lease) = (CancellationToken::new(), CancellationToken::new());
    let (leading_tx, leading) = tokio::sync::watch::channel(false);
    let lease = tokio::spawn(leader::run(
        client.clone(),
        lease_settings,
        leading_tx,
        release_lease.clone(),
    ));
    {
        let (mut leading, metrics) = (leading.clone(), metrics.clone());
        tokio::spawn(async move {
            while leading.changed().await.is_ok() {
                metrics.leader.set(i64::from(*leading.borrow()));
            }
        });
    }
    gateway.istio = gateway.istio || istio_served(&client).await;
    let reconciler = tokio::spawn(controller::run(
        controller::ControllerInputs {
            client: client.clone(),
            settings: controller::ControllerSettings {
                pass: PassSettings {
                    gateway,
                    max_pipelines: args.gateway.max_pipelines,
                },
                resync: args.resync_interval,
                coalesce_window: args.reconcile_coalesce_window,
                flow_poll: args.flow_poll_interval,
                flow_window: args.flow_window,
                scrape: crate::flow::scrape::ScrapeLimits {
                    timeout: args.flow_scrape_timeout,
                    ..crate::flow::scrape::ScrapeLimits::default()
                },
            },
            pipelines,
            changed,
            leading,
            metrics: metrics.clone(),
            reporter: Reporter {
                controller: "telemetry-manager".into(),
                instance: Some(identity),
            },
        },
        stop_reconciling.clone(),
    ));

    let settings = Settings {
        secret_ref_policy: args.secret_ref_policy,
        max_pipelines: args.gateway.max_pipelines,
    };
    let admission = Arc::new(Admission::new(KubeCluster::new(client.clone()), settings));
    let webhook = tokio::spawn(server::serve_https(
        webhook_listener,
        tls::server_config(store.clone()),
        server::router(admission, metrics.clone()),
        server::Limits::default(),
        shutdown.clone(),
    ));
    let ready_store = store.clone();
    let shutting_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = shutting_down.clone();
    let health = tokio::spawn(admin::serve(
        health_listener,
        admin::health_router(Arc::new(move || {
            ready_store.is_loaded()
                && caches_synced.load(std::sync::atomic::Ordering::Relaxed)
                && !stopping.load(std::sync::atomic::Ordering::Relaxed)
        })),
        shutdown.clone(),
    ));
    let metrics_server = tokio::spawn(admin::serve(
        metrics_listener,
        admin::metrics_router(metrics.clone()),
        shutdown.clone(),
    ));

    termination_signal().await;
    // Kubernetes removes a terminating pod from the webhook Service's endpoints while the API
    // servers may still send it admissions for a moment: keep serving them, but report not
    // ready, for --shutdown-delay (instead of a preStop sleep, which needs Kubernetes 1.30).
    let stop_serving = tokio::time::Instant::now() + args.shutdown_delay;
    tracing::info!(delay = ?args.shutdown_delay, "shutting down: releasing the Lease, serving webhooks until the delay ends");
    shutting_down.store(true, std::sync::atomic::Ordering::Relaxed);
    stop_reconciling.cancel();
    let _ = reconciler.await;
    release_lease.cancel();
    let _ = lease.await;
    tokio::time::sleep_until(stop_serving).await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    shutdown.cancel();
    let _ = tokio::join!(webhook, health, metrics_server, certificates);
    tracing::info!("stopped");
    Ok(())
}
