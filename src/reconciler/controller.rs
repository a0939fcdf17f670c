//! The controller (SPEC §4.1, §4.2): watches TracePipelines, the gateway's Deployment and pods in
//! the target namespace, and only the Secrets that pipelines reference (one name-selected watch
//! each, kept in step with the pipelines). Any change triggers one pass over all pipelines,
//! debounced; only the Lease holder runs passes and writes. Errors back off exponentially.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::pass::{self, PassOutcome, PassSettings};
use super::status::{self, ConditionValue};
use super::write;
use crate::api::v1beta1::TracePipeline;
use crate::gateway;
use crate::metrics::Metrics;
use crate::validation;

#[derive(Clone, Debug)]
pub struct ControllerSettings {
    pub pass: PassSettings,
    /// A pass runs at least this often, repairing drift nobody reported.
    pub resync: Duration,
    /// Changes arriving within this time are handled by one pass.
    pub debounce: Duration,
}

/// The pipelines as the controller sees them; ready once the first list arrived.
pub type PipelineStore = Store<TracePipeline>;

/// Start watching TracePipelines; the returned store fills in the background.
pub fn watch_pipelines(
    client: &kube::Client,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
) -> PipelineStore {
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<TracePipeline>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(notify_on(stream, changed, shutdown, "TracePipelines"));
    reader
}

async fn notify_on<S, T, E>(
    stream: S,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
    what: &'static str,
) where
    S: futures::Stream<Item = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(_)) => changed.notify_one(),
                Some(Err(err)) => tracing::warn!(error = %err, what, "watch error; retrying"),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Name-selected watches of exactly the referenced Secrets (SPEC §4.1: never a cluster-wide
/// Secret cache, so memory does not grow with unrelated Secrets).
#[derive(Default)]
struct SecretWatches {
    running: BTreeMap<(String, String), tokio::task::JoinHandle<()>>,
}

impl SecretWatches {
    fn sync(
        &mut self,
        client: &kube::Client,
        wanted: BTreeSet<(String, String)>,
        changed: &Arc<Notify>,
        shutdown: &CancellationToken,
    ) {
        self.running.retain(|key, task| {
            let keep = wanted.contains(key);
            if !keep {
                task.abort();
            }
            keep
        });
        for key in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let api: Api<Secret> = Api::namespaced(client.clone(), &key.0);
            let config = watcher::Config::default().fields(&format!("metadata.name={}", key.1));
            let stream = watcher(api, config).default_backoff().touched_objects();
            let task = tokio::spawn(notify_on(
                stream,
                changed.clone(),
                shutdown.clone(),
                "Secret",
            ));
            self.running.insert(key, task);
        }
    }
}

/// The Secrets all pipelines reference.
fn referenced_secrets(pipelines: &[TracePipeline]) -> BTreeSet<(String, String)> {
    pipelines
        .iter()
        .filter_map(|p| validation::parse(&serde_json::to_value(p).ok()?).ok())
        .flat_map(|parsed| {
            validation::secret_refs(&parsed.spec)
                .into_iter()
                .map(|r| (r.namespace.clone(), r.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn gateway_health(
    client: &kube::Client,
    namespace: &str,
) -> Result<ConditionValue, kube::Error> {
    let selector =
        ListParams::default().labels(&format!("app.kubernetes.io/name={}", gateway::NAME));
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get_opt(gateway::NAME)
        .await?;
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await?
        .items;
    Ok(status::gateway_healthy(
        deployment.as_ref(),
        &replica_sets,
        &pods,
    ))
}

fn record_conditions(metrics: &Metrics, pipeline: &str, values: &[ConditionValue]) {
    for value in values {
        for status in ["True", "False", "Unknown"] {
            metrics
                .pipeline_condition
                .with_label_values(&[pipeline, value.type_, status])
                .set(i64::from(value.status == status));
        }
    }
}

/// What the controller runs on.
pub struct ControllerInputs {
    pub client: kube::Client,
    pub settings: ControllerSettings,
    pub pipelines: PipelineStore,
    /// Notified by every watch that saw a change.
    pub changed: Arc<Notify>,
    pub leading: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    pub reporter: Reporter,
}

/// Run passes until `shutdown`, while `leading`.
pub async fn run(inputs: ControllerInputs, shutdown: CancellationToken) {
    let ControllerInputs {
        client,
        settings,
        pipelines,
        changed,
        mut leading,
        metrics,
        reporter,
    } = inputs;
    let target = settings.pass.gateway.namespace.clone();
    for (kind, stream) in [
        (
            "gateway Deployment",
            watcher(
                Api::<Deployment>::namespaced(client.clone(), &target),
                gateway_selector(),
            )
            .default_backoff()
            .touched_objects()
            .map(|r| r.map(|_| ()))
            .boxed(),
        ),
        (
            "gateway pods",
            watcher(
                Api::<Pod>::namespaced(client.clone(), &target),
                gateway_selector(),
            )
            .default_backoff()
            .touched_objects()
            .map(|r| r.map(|_| ()))
            .boxed(),
        ),
    ] {
        tokio::spawn(notify_on(stream, changed.clone(), shutdown.clone(), kind));
    }
    let recorder = Recorder::new(client.clone(), reporter);
    let status_api: Api<TracePipeline> = Api::all(client.clone());
    let mut secrets = SecretWatches::default();
    let mut backoff = Duration::ZERO;
    let mut next_pass = Instant::now();
    loop {
        let wait = next_pass.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = leading.changed() => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.debounce) => {}
            _ = shutdown.cancelled() => return,
        }
        if !*leading.borrow() {
            next_pass = Instant::now() + settings.resync;
            continue;
        }
        tokio::select! {
            ready = pipelines.wait_until_ready() => if ready.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        let all: Vec<TracePipeline> = pipelines.state().iter().map(|p| (**p).clone()).collect();
        secrets.sync(&client, referenced_secrets(&all), &changed, &shutdown);
        let started = Instant::now();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let result = pass::reconcile_gateway(&client, &all, &settings.pass, now).await;
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(err) => {
                metrics.reconciles.with_label_values(&["error"]).inc();
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(300));
                tracing::warn!(error = %err, retry_in = ?backoff, "reconcile failed");
                next_pass = Instant::now() + backoff;
                continue;
            }
        };
        let health = gateway_health(&client, &target).await;
        let written = write_statuses(
            &status_api,
            &all,
            &outcome,
            health.ok(),
            &leading,
            &recorder,
            &metrics,
        )
        .await;
        let result = if outcome.lookup_failed {
            "lookup_failed"
        } else if written.is_err() {
            "error"
        } else {
            "success"
        };
        metrics.reconciles.with_label_values(&[result]).inc();
        backoff = if result == "success" {
            Duration::ZERO
        } else {
            (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(300))
        };
        let expiry = outcome
            .certificate_expiry
            .map(|t| Duration::from_secs(u64::try_from(t - now).unwrap_or(0)))
            .unwrap_or(settings.resync);
        next_pass = Instant::now()
            + if backoff.is_zero() {
                settings.resync.min(expiry)
            } else {
                backoff
            };
    }
}

fn gateway_selector() -> watcher::Config {
    watcher::Config::default().labels(&format!("app.kubernetes.io/name={}", gateway::NAME))
}

async fn write_statuses(
    api: &Api<TracePipeline>,
    pipelines: &[TracePipeline],
    outcome: &PassOutcome,
    health: Option<ConditionValue>,
    leading: &watch::Receiver<bool>,
    recorder: &Recorder,
    metrics: &Metrics,
) -> Result<(), kube::Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    metrics.pipeline_info.reset();
    for pipeline in pipelines {
        let name = pipeline.name_any();
        let protocol = if pipeline.spec.output.otlp.protocol == Some(crate::api::Protocol::Http) {
            "http"
        } else {
            "grpc"
        };
        metrics
            .pipeline_info
            .with_label_values(&[&name, protocol])
            .set(1);
        let mut values: Vec<ConditionValue> = outcome
            .configuration
            .get(&name)
            .cloned()
            .into_iter()
            .collect();
        values.extend(health.clone());
        record_conditions(metrics, &name, &values);
        // Losing the Lease stops writes at once, even in the middle of a pass.
        if !*leading.borrow() {
            return Ok(());
        }
        let flipped = write::write_conditions(api, pipeline, &values, now.clone()).await?;
        write::publish_flips(recorder, pipeline, &flipped).await;
    }
    Ok(())
}
