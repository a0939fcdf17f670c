//! The controller (docs/architecture.md#reconciliation): watches TracePipelines, the gateway's
//! Deployment and pods in the target namespace, and only the Secrets that pipelines reference (one
//! name-selected watch each, kept in step with the pipelines). A change starts a pass over all
//! pipelines at once, and changes during a pass are coalesced into one more (`trigger`); the
//! watch events of the manager's own writes (status, gateway objects) start none. Only the Lease
//! holder runs passes and writes. Errors back off exponentially.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::apply::ApplyMode;
use super::cluster_uid::ClusterUid;
use super::pass::{self, PassOutcome, PassSettings};
use super::status::{self, ConditionValue};
use super::trigger::{Decision, Trigger};
use super::write;
use crate::api::v1beta1::TracePipeline;
use crate::flow::scrape::{self, ScrapeLimits};
use crate::flow::{ExporterRef, FlowMonitor};
use crate::gateway;
use crate::metrics::Metrics;
use crate::validation;

#[derive(Clone, Debug)]
pub struct ControllerSettings {
    pub pass: PassSettings,
    /// How often the gateway's metrics are read (`--flow-poll-interval`).
    pub flow_poll: Duration,
    /// The sliding window flow health is judged over (`--flow-window`).
    pub flow_window: Duration,
    pub scrape: ScrapeLimits,
    /// A pass runs at least this often, repairing drift nobody reported.
    pub resync: Duration,
    /// Changes arriving while a pass runs or within this time after it are handled by one
    /// follow-up pass (`--reconcile-coalesce-window`).
    pub coalesce_window: Duration,
}

/// How often edits of gateway objects by others may trigger re-applying everything.
const DRIFT_REAPPLY_INTERVAL: Duration = Duration::from_secs(30);

/// The pipelines as the controller sees them; ready once the first list arrived.
pub type PipelineStore = Store<TracePipeline>;

/// Wakes the controller when a watch saw a change, and remembers when the oldest change it has
/// not taken yet arrived (for `telemetry_reconcile_trigger_delay_seconds`).
#[derive(Debug, Default)]
pub struct Changes {
    wake: Notify,
    oldest: Mutex<Option<Instant>>,
}

impl Changes {
    pub fn record(&self) {
        self.oldest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
        self.wake.notify_one();
    }

    /// The next change(s): when the oldest of them arrived.
    async fn next(&self) -> Instant {
        self.wake.notified().await;
        self.oldest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(Instant::now)
    }
}

/// Start watching TracePipelines; the returned store fills in the background.
pub fn watch_pipelines(
    client: &kube::Client,
    changed: Arc<Changes>,
    shutdown: CancellationToken,
) -> PipelineStore {
    let (reader, writer) = reflector::store();
    let mut seen = BTreeMap::new();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<TracePipeline>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .filter_map(move |event| {
        futures::future::ready(match event {
            Ok(event) => pipeline_event_matters(&mut seen, &event).then_some(Ok(())),
            Err(err) => Some(Err(err)),
        })
    });
    tokio::spawn(notify_on(stream, changed, shutdown, "TracePipelines"));
    reader
}

/// What of a pipeline a pass depends on: everything but its metadata and status is counted by
/// `generation`; a new uid is a new pipeline, and a deletion timestamp takes it out.
type PipelineIdentity = (Option<String>, Option<i64>, bool);

/// Whether a pipeline event asks for a pass; `seen` holds what the last event of each pipeline
/// carried. A status write (this manager's own, at every pass) changes none of it.
fn pipeline_event_matters(
    seen: &mut BTreeMap<String, PipelineIdentity>,
    event: &watcher::Event<TracePipeline>,
) -> bool {
    match event {
        watcher::Event::Apply(pipeline) | watcher::Event::InitApply(pipeline) => {
            let identity = (
                pipeline.metadata.uid.clone(),
                pipeline.metadata.generation,
                pipeline.metadata.deletion_timestamp.is_some(),
            );
            seen.insert(pipeline.name_any(), identity.clone()) != Some(identity)
        }
        watcher::Event::Delete(pipeline) => {
            seen.remove(&pipeline.name_any());
            true
        }
        watcher::Event::Init | watcher::Event::InitDone => false,
    }
}

async fn notify_on<S, T, E>(
    stream: S,
    changed: Arc<Changes>,
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
                Some(Ok(_)) => changed.record(),
                Some(Err(err)) => tracing::warn!(error = %err, what, "watch error; retrying"),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Name-selected watches of exactly the referenced Secrets (never a cluster-wide
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
        changed: &Arc<Changes>,
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
            let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), &key.0);
            let config = watcher::Config::default().fields(&format!("metadata.name={}", key.1));
            // Metadata only: a change is all the watch reports; the pass reads the value.
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
    /// Recorded by every watch that saw a change.
    pub changed: Arc<Changes>,
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
    // Deployment and pod changes (rollouts, crashes, the autoscaler's replica count) only change
    // health: a normal pass, which writes nothing when the applied hashes still match. The
    // Deployment's event of this manager's own apply is left out, as for drift below.
    let (deployment_sender, mut deployment_changes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(forward_changes(
        object_changes::<Deployment>(&client, &target),
        deployment_sender,
        shutdown.clone(),
        "gateway Deployment",
    ));
    tokio::spawn(notify_on(
        autoscaler_changes(&client, &target),
        changed.clone(),
        shutdown.clone(),
        "gateway HorizontalPodAutoscaler",
    ));
    tokio::spawn(notify_on(
        owned::<Pod>(&client, &target),
        changed.clone(),
        shutdown.clone(),
        "gateway pods",
    ));
    // A change to any other gateway object that this manager did not write is someone else's
    // edit or deletion: re-apply all.
    let (drift_sender, mut drifted) = tokio::sync::mpsc::unbounded_channel();
    for (kind, stream) in [
        (
            "gateway ConfigMap",
            object_changes::<ConfigMap>(&client, &target),
        ),
        ("gateway Secret", object_changes::<Secret>(&client, &target)),
        (
            "gateway Services",
            object_changes::<Service>(&client, &target),
        ),
        (
            "gateway ServiceAccount",
            object_changes::<ServiceAccount>(&client, &target),
        ),
        (
            "gateway NetworkPolicy",
            object_changes::<NetworkPolicy>(&client, &target),
        ),
        (
            "gateway PodDisruptionBudget",
            object_changes::<PodDisruptionBudget>(&client, &target),
        ),
    ] {
        tokio::spawn(forward_changes(
            stream,
            drift_sender.clone(),
            shutdown.clone(),
            kind,
        ));
    }
    // What this manager's own writes left, to recognise their watch events.
    let mut own_versions: BTreeMap<String, String> = BTreeMap::new();
    let recorder = Recorder::new(client.clone(), reporter);
    let status_api: Api<TracePipeline> = Api::all(client.clone());
    let mut secrets = SecretWatches::default();
    let mut pass_settings = settings.pass.clone();
    let mut cluster_uid = ClusterUid::default();
    let mut monitor = FlowMonitor::new(settings.flow_window);
    let origin = Instant::now();
    let mut last: Option<(PassOutcome, Option<ConditionValue>)> = None;
    let mut backoff = Duration::ZERO;
    let mut next_pass = Instant::now();
    let mut next_probe = Instant::now() + settings.flow_poll;
    let mut last_full_apply: Option<Instant> = None;
    let mut trigger = Trigger::new(settings.coalesce_window);
    // When the coalesce window of the last pass closes, if a change waits for it.
    let mut settled: Option<Instant> = None;
    // A full re-apply when any trigger of the next pass asked for one.
    let mut next_mode = ApplyMode::Changed;
    loop {
        let probe_due = tokio::select! {
            arrived = changed.next() => {
                trigger.change(arrived);
                false
            }
            // Re-applying everything on an edit is rate-limited, so that a controller that keeps
            // changing one of these objects cannot drive a loop; hashes still catch real changes.
            Some(first) = deployment_changes.recv() => {
                if made_by_others(&with_queued(first, &mut deployment_changes), &own_versions) {
                    trigger.change(Instant::now());
                }
                false
            }
            Some(first) = drifted.recv() => {
                if made_by_others(&with_queued(first, &mut drifted), &own_versions) {
                    if last_full_apply.is_none_or(|t| t.elapsed() >= DRIFT_REAPPLY_INTERVAL) {
                        next_mode = ApplyMode::All;
                    }
                    trigger.change(Instant::now());
                }
                false
            }
            _ = tokio::time::sleep_until(next_pass) => {
                // Set again when the pass ends; moved on here so that this timer does not fire
                // again while the pass waits for a coalesce window.
                next_pass = Instant::now() + settings.resync;
                next_mode = ApplyMode::All;
                trigger.change(Instant::now());
                false
            }
            _ = tokio::time::sleep_until(next_probe) => true,
            _ = leading.changed() => {
                next_mode = ApplyMode::All;
                trigger.change(Instant::now());
                false
            }
            _ = tokio::time::sleep_until(settled.unwrap_or(next_probe)), if settled.is_some() => false,
            _ = shutdown.cancelled() => return,
        };
        // Marks the leadership seen, so that a change already acted on here does not run
        // another full pass through `leading.changed()`.
        if !*leading.borrow_and_update() {
            next_pass = Instant::now() + settings.resync;
            next_probe = Instant::now() + settings.flow_poll;
            trigger.reset();
            settled = None;
            next_mode = ApplyMode::Changed;
            continue;
        }
        if probe_due {
            next_probe = Instant::now() + settings.flow_poll;
            let started = Instant::now();
            let probe =
                match scrape::discover(&client, &target, gateway::METRICS_SERVICE, 8888).await {
                    Ok(targets) => scrape::scrape_all(&targets, settings.scrape).await,
                    Err(err) => Err(format!("cannot find the gateway pods: {err}")),
                };
            metrics
                .flow_probe_duration
                .observe(started.elapsed().as_secs_f64());
            if let Err(error) = &probe {
                metrics.flow_probe_failures.inc();
                tracing::debug!(%error, "flow probe failed");
            }
            monitor.observe(origin.elapsed(), probe);
            if let Some((outcome, health)) = &last {
                let context = StatusContext {
                    api: &status_api,
                    leading: &leading,
                    recorder: &recorder,
                    metrics: &metrics,
                };
                // The store's current objects, so that the comparison sees the status already
                // written and an unchanged flow writes nothing.
                let current: Vec<TracePipeline> =
                    pipelines.state().iter().map(|p| (**p).clone()).collect();
                if let Err(err) = write_statuses(
                    &context,
                    &current,
                    outcome,
                    health.clone(),
                    &monitor,
                    settings.flow_window,
                )
                .await
                {
                    tracing::warn!(error = %err, "writing flow health failed");
                }
            }
        }
        let waited = match trigger.decide(Instant::now()) {
            Decision::Start { waited } => waited,
            Decision::Wait(until) => {
                settled = until;
                continue;
            }
        };
        settled = None;
        metrics
            .reconcile_trigger_delay
            .observe(waited.as_secs_f64());
        let mode = std::mem::replace(&mut next_mode, ApplyMode::Changed);
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
        if mode == ApplyMode::All {
            last_full_apply = Some(Instant::now());
        }
        pass_settings.gateway.cluster_uid = cluster_uid.resolve(&client).await;
        let result = pass::reconcile_gateway(&client, &all, &pass_settings, mode, now).await;
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(outcome) => {
                for deleted in &outcome.applied.deleted {
                    own_versions.remove(deleted);
                }
                own_versions.extend(outcome.applied.versions.clone());
                outcome
            }
            Err(err) => {
                metrics.reconciles.with_label_values(&["error"]).inc();
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(300));
                tracing::warn!(error = %err, retry_in = ?backoff, "reconcile failed");
                next_pass = Instant::now() + backoff;
                trigger.finished(Instant::now());
                continue;
            }
        };
        let health = gateway_health(&client, &target).await.ok();
        let context = StatusContext {
            api: &status_api,
            leading: &leading,
            recorder: &recorder,
            metrics: &metrics,
        };
        let written = write_statuses(
            &context,
            &all,
            &outcome,
            health.clone(),
            &monitor,
            settings.flow_window,
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
        // Come back when a certificate expires, to flip TLSCertificateAboutToExpire.
        let expiry = outcome
            .certificate_expiry
            .map(|t| Duration::from_secs(u64::try_from(t - now).unwrap_or(0)))
            .unwrap_or(settings.resync);
        trigger.finished(Instant::now());
        next_pass = Instant::now()
            + if backoff.is_zero() {
                settings.resync.min(expiry)
            } else {
                backoff
            };
        last = Some((outcome, health));
    }
}

/// Where statuses are written, and whether this replica may write.
struct StatusContext<'a> {
    api: &'a Api<TracePipeline>,
    leading: &'a watch::Receiver<bool>,
    recorder: &'a Recorder,
    metrics: &'a Metrics,
}

/// The exporter a pipeline's flow is judged by; the backend port from an inline endpoint, to
/// match HTTP client metrics.
fn exporter_of(pipeline: &TracePipeline) -> ExporterRef {
    let otlp = &pipeline.spec.output.otlp;
    let grpc = otlp.protocol != Some(crate::api::Protocol::Http);
    let kind = if grpc { "otlp_grpc" } else { "otlp_http" };
    let port = otlp
        .endpoint
        .value
        .as_deref()
        .and_then(|e| e.rsplit(':').next())
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| p.parse::<u16>().is_ok());
    ExporterRef {
        id: format!("{kind}/{}", pipeline.name_any()),
        grpc,
        port,
    }
}

/// Events of the gateway's objects of kind `K` in `namespace` (label-selected). Metadata only:
/// the event is all that matters, and the bodies (pod specs and statuses) would cost memory.
fn owned<K>(
    client: &kube::Client,
    namespace: &str,
) -> futures::stream::BoxStream<'static, Result<(), watcher::Error>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(
        Api::<PartialObjectMeta<K>>::namespaced(client.clone(), namespace),
        gateway_selector(),
    )
    .default_backoff()
    .touched_objects()
    .map(|r| r.map(|_| ()))
    .boxed()
}

/// A change a watch saw on a gateway object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ObjectChange {
    /// `Kind/name`, as [`Applied`](super::apply::Applied) names what it wrote.
    key: String,
    /// The object's resourceVersion now; `None` when it was deleted.
    version: Option<String>,
}

/// `first` and the changes queued behind it.
fn with_queued(
    first: ObjectChange,
    queue: &mut tokio::sync::mpsc::UnboundedReceiver<ObjectChange>,
) -> Vec<ObjectChange> {
    let mut changes = vec![first];
    while let Ok(change) = queue.try_recv() {
        changes.push(change);
    }
    changes
}

/// Whether any of `changes` was made by someone else: a deletion, or a version other than the
/// one this manager's last write of the object left (`own`).
fn made_by_others(changes: &[ObjectChange], own: &BTreeMap<String, String>) -> bool {
    changes
        .iter()
        .any(|change| change.version.is_none() || own.get(&change.key) != change.version.as_ref())
}

/// The changes of the gateway's objects of kind `K` in `namespace` (label-selected). Metadata
/// only: name and resourceVersion are all that is compared, and the bodies (the whole collector
/// configuration, the env Secret's values) would be decoded at every write for nothing.
fn object_changes<K>(
    client: &kube::Client,
    namespace: &str,
) -> futures::stream::BoxStream<'static, Result<ObjectChange, watcher::Error>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let key = |object: &PartialObjectMeta<K>| format!("{}/{}", K::kind(&()), object.name_any());
    watcher(
        Api::<PartialObjectMeta<K>>::namespaced(client.clone(), namespace),
        gateway_selector(),
    )
    .default_backoff()
    .filter_map(move |event| {
        futures::future::ready(match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                Some(Ok(ObjectChange {
                    key: key(&object),
                    version: object.resource_version(),
                }))
            }
            Ok(watcher::Event::Delete(object)) => Some(Ok(ObjectChange {
                key: key(&object),
                version: None,
            })),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(err) => Some(Err(err)),
        })
    })
    .boxed()
}

async fn forward_changes(
    stream: futures::stream::BoxStream<'static, Result<ObjectChange, watcher::Error>>,
    changes: tokio::sync::mpsc::UnboundedSender<ObjectChange>,
    shutdown: CancellationToken,
    what: &'static str,
) {
    let mut stream = stream;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(change)) => if changes.send(change).is_err() { return },
                Some(Err(err)) => tracing::warn!(error = %err, what, "watch error; retrying"),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Deletions and spec changes of the gateway's autoscaler, which a normal pass repairs; not the
/// status it writes at every sync, which would run a pass every few seconds.
fn autoscaler_changes(
    client: &kube::Client,
    namespace: &str,
) -> futures::stream::BoxStream<'static, Result<(), watcher::Error>> {
    let mut specs = BTreeMap::new();
    watcher(
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace),
        gateway_selector(),
    )
    .default_backoff()
    .filter_map(move |event| {
        futures::future::ready(match event {
            Ok(event) => autoscaler_event_matters(&mut specs, &event).then_some(Ok(())),
            Err(err) => Some(Err(err)),
        })
    })
    .boxed()
}

/// Whether an autoscaler event asks for a pass; `specs` holds the last spec seen per name.
fn autoscaler_event_matters(
    specs: &mut BTreeMap<String, String>,
    event: &watcher::Event<HorizontalPodAutoscaler>,
) -> bool {
    match event {
        watcher::Event::Apply(autoscaler) | watcher::Event::InitApply(autoscaler) => {
            let spec = serde_json::to_string(&autoscaler.spec).unwrap_or_default();
            specs.insert(autoscaler.name_any(), spec.clone()) != Some(spec)
        }
        watcher::Event::Delete(autoscaler) => {
            specs.remove(&autoscaler.name_any());
            true
        }
        watcher::Event::Init | watcher::Event::InitDone => false,
    }
}

fn gateway_selector() -> watcher::Config {
    watcher::Config::default().labels(&format!("app.kubernetes.io/name={}", gateway::NAME))
}

async fn write_statuses(
    context: &StatusContext<'_>,
    pipelines: &[TracePipeline],
    outcome: &PassOutcome,
    health: Option<ConditionValue>,
    monitor: &FlowMonitor,
    window: Duration,
) -> Result<(), kube::Error> {
    let StatusContext {
        api,
        leading,
        recorder,
        metrics,
    } = context;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // Series of deleted pipelines go away with them.
    metrics.pipeline_info.reset();
    metrics.pipeline_condition.reset();
    metrics.pipeline_sent_rate.reset();
    metrics.pipeline_dropped_rate.reset();
    for pipeline in pipelines {
        let name = pipeline.name_any();
        let exporter = exporter_of(pipeline);
        let protocol = if exporter.grpc { "grpc" } else { "http" };
        metrics
            .pipeline_info
            .with_label_values(&[&name, protocol])
            .set(1);
        let configuration = outcome.configuration.get(&name).cloned();
        let generated = configuration.as_ref().is_some_and(|c| c.status == "True");
        let flow = monitor.condition(&exporter, generated);
        let rates = monitor.increases(&exporter.id);
        metrics
            .pipeline_sent_rate
            .with_label_values(&[&name])
            .set(rates.sent / window.as_secs_f64());
        metrics
            .pipeline_dropped_rate
            .with_label_values(&[&name])
            .set(rates.dropped / window.as_secs_f64());
        let mut values: Vec<ConditionValue> = configuration.into_iter().collect();
        values.extend(health.clone());
        values.extend(flow.map(|flow| ConditionValue {
            type_: status::TELEMETRY_FLOW_HEALTHY,
            status: flow.status,
            reason: flow.reason,
            message: flow.message,
        }));
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pipeline(name: &str, otlp: serde_json::Value) -> TracePipeline {
        serde_json::from_value(json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
            "metadata": {"name": name}, "spec": {"output": {"otlp": otlp}}
        }))
        .unwrap()
    }

    #[test]
    fn exporters_are_named_as_the_collector_config_names_them() {
        let grpc = exporter_of(&pipeline(
            "a",
            json!({"endpoint": {"value": "backend:4317"}}),
        ));
        assert_eq!(
            grpc,
            ExporterRef {
                id: "otlp_grpc/a".into(),
                grpc: true,
                port: Some("4317".into())
            }
        );
        let http = exporter_of(&pipeline(
            "b",
            json!({"protocol": "http", "endpoint": {"value": "https://backend:4318/"}}),
        ));
        assert_eq!(
            http,
            ExporterRef {
                id: "otlp_http/b".into(),
                grpc: false,
                port: Some("4318".into())
            }
        );
        let secret = exporter_of(&pipeline(
            "c",
            json!({"protocol": "http", "endpoint": {"valueFrom": {"secretKeyRef": {"name": "s", "namespace": "n", "key": "k"}}}}),
        ));
        assert_eq!(
            secret.port, None,
            "a Secret's value is not read for metrics matching"
        );
    }

    #[test]
    fn only_deletions_and_spec_changes_of_the_autoscaler_run_a_pass() {
        let autoscaler = |max: i32, current: i32| -> HorizontalPodAutoscaler {
            serde_json::from_value(json!({
                "metadata": {"name": "telemetry-trace-gateway"},
                "spec": {"maxReplicas": max, "scaleTargetRef": {"kind": "Deployment", "name": "telemetry-trace-gateway"}},
                "status": {"currentReplicas": current, "desiredReplicas": current}
            }))
            .unwrap()
        };
        let mut specs = BTreeMap::new();
        let table = [
            (watcher::Event::Init, false),
            (watcher::Event::InitApply(autoscaler(4, 2)), true),
            (watcher::Event::InitDone, false),
            (watcher::Event::Apply(autoscaler(4, 3)), false),
            (watcher::Event::Apply(autoscaler(4, 2)), false),
            (watcher::Event::Apply(autoscaler(9, 2)), true),
            // A restarted watch lists the same autoscaler again.
            (watcher::Event::InitApply(autoscaler(9, 4)), false),
            (watcher::Event::Delete(autoscaler(9, 4)), true),
            (watcher::Event::Apply(autoscaler(9, 0)), true),
        ];
        for (step, (event, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                autoscaler_event_matters(&mut specs, &event),
                expected,
                "step {step}"
            );
        }
    }

    #[test]
    fn only_changes_this_manager_did_not_write_are_drift() {
        let change = |key: &str, version: Option<&str>| ObjectChange {
            key: key.into(),
            version: version.map(Into::into),
        };
        let own = BTreeMap::from([("ConfigMap/gw".to_string(), "10".to_string())]);
        let table = [
            (vec![change("ConfigMap/gw", Some("10"))], false),
            (vec![change("ConfigMap/gw", Some("11"))], true),
            (vec![change("ConfigMap/gw", None)], true),
            (vec![change("Secret/gw", Some("10"))], true),
            (
                vec![
                    change("ConfigMap/gw", Some("10")),
                    change("ConfigMap/gw", Some("12")),
                ],
                true,
            ),
            (vec![], false),
        ];
        for (changes, expected) in table {
            assert_eq!(made_by_others(&changes, &own), expected, "{changes:?}");
        }
    }

    #[test]
    fn only_referenced_secrets_are_watched() {
        let pipelines = [
            pipeline(
                "a",
                json!({"endpoint": {"valueFrom": {"secretKeyRef": {"name": "s1", "namespace": "n1", "key": "k"}}}}),
            ),
            pipeline(
                "b",
                json!({"endpoint": {"value": "b:4317"}, "headers": [
                    {"name": "h", "valueFrom": {"secretKeyRef": {"name": "s2", "namespace": "n2", "key": "k"}}},
                    {"name": "i", "valueFrom": {"secretKeyRef": {"name": "s1", "namespace": "n1", "key": "other"}}}
                ]}),
            ),
        ];
        let wanted: Vec<(String, String)> = referenced_secrets(&pipelines).into_iter().collect();
        assert_eq!(
            wanted,
            vec![("n1".into(), "s1".into()), ("n2".into(), "s2".into())]
        );
    }
}
