//! The admission webhooks (docs/reference/tracepipeline.md#admission-rules): AdmissionReview in,
//! decision out. The decision is made by the pure validation engine; this layer only gathers the
//! cluster state it needs (Secrets, existing pipelines) within the API server's deadline.

pub mod review;
pub mod server;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::api::v1beta1::TracePipeline;
use crate::validation::{
    self, ApiVersion, ClusterState, Context, ParsedPipeline, ResolvedSecrets, SecretLookup,
    SecretResolver, Settings, defaults,
};
pub use review::{AdmissionRequest, Decision, Operation, Review};

/// Which webhook a request was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    Validate,
    Mutate,
}

impl WebhookKind {
    pub fn name(self) -> &'static str {
        match self {
            WebhookKind::Validate => "validate",
            WebhookKind::Mutate => "mutate",
        }
    }
}

/// One of the four webhook endpoints registered as docs/operations.md#webhook-registration lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: WebhookKind,
    pub version: ApiVersion,
}

impl Endpoint {
    pub const ALL: [Endpoint; 4] = [
        Endpoint {
            kind: WebhookKind::Validate,
            version: ApiVersion::V1Beta1,
        },
        Endpoint {
            kind: WebhookKind::Validate,
            version: ApiVersion::V1Alpha1,
        },
        Endpoint {
            kind: WebhookKind::Mutate,
            version: ApiVersion::V1Beta1,
        },
        Endpoint {
            kind: WebhookKind::Mutate,
            version: ApiVersion::V1Alpha1,
        },
    ];

    /// `/validate-telemetry-kyma-project-io-v1beta1-tracepipeline` and its siblings.
    pub fn path(self) -> String {
        format!(
            "/{}-telemetry-kyma-project-io-{}-tracepipeline",
            self.kind.name(),
            self.version.name()
        )
    }
}

/// The cluster state the validating webhook reads.
pub trait AdmissionCluster: SecretResolver + Send + Sync + 'static {
    /// The names of every TracePipeline in the cluster.
    fn pipeline_names(&self) -> impl Future<Output = Result<Vec<String>, String>> + Send;
}

/// [`AdmissionCluster`] on the Kubernetes API: Secrets are read one by one, never cached.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
}

impl KubeCluster {
    pub fn new(client: kube::Client) -> Self {
        KubeCluster { client }
    }
}

impl SecretResolver for KubeCluster {
    async fn lookup(&self, namespace: &str, name: &str) -> SecretLookup {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(secret)) => SecretLookup::Found(
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            ),
            Ok(None) => SecretLookup::NotFound,
            Err(err) => SecretLookup::Failed(err.to_string()),
        }
    }
}

impl AdmissionCluster for KubeCluster {
    async fn pipeline_names(&self) -> Result<Vec<String>, String> {
        let api: Api<TracePipeline> = Api::all(self.client.clone());
        let list = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list TracePipelines: {e}"))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect())
    }
}

/// Decides admission requests.
pub struct Admission<C> {
    cluster: C,
    settings: Settings,
}

impl<C: AdmissionCluster> Admission<C> {
    pub fn new(cluster: C, settings: Settings) -> Self {
        Admission { cluster, settings }
    }

    /// Answer `request` sent to `endpoint`; cluster reads must finish within `deadline`.
    pub async fn decide(
        &self,
        endpoint: Endpoint,
        request: &AdmissionRequest<'_>,
        deadline: Duration,
    ) -> Decision {
        let object = match checked_object(request.operation, request.object) {
            Ok(object) => object,
            Err(decision) => return *decision,
        };
        match endpoint.kind {
            WebhookKind::Mutate => mutate(object.get()),
            WebhookKind::Validate => self.validate(request, object.get(), deadline).await,
        }
    }

    /// Answer a review decoded by [`review::decode_read`] for the validating webhook.
    pub async fn validate_read(
        &self,
        read: &review::ReadReview<'_>,
        deadline: Duration,
    ) -> Decision {
        let operation = read.review.request.operation;
        match checked_object(operation, read.pipeline.as_deref()) {
            Ok(pipeline) => {
                self.validate_parsed(operation, pipeline, read.old.as_deref(), deadline)
                    .await
            }
            Err(decision) => *decision,
        }
    }

    async fn validate(
        &self,
        request: &AdmissionRequest<'_>,
        object: &str,
        deadline: Duration,
    ) -> Decision {
        let pipeline = match validation::parse_json(object) {
            Ok(pipeline) => pipeline,
            Err(report) => return Decision::invalid(&request.name, &report),
        };
        // An old object that does not read as a valid pipeline counts as a changed spec.
        let old = match (request.operation, &request.old_object) {
            (Operation::Update, Some(old)) => validation::parse_json(old.get()).ok(),
            _ => None,
        };
        self.validate_parsed(request.operation, &pipeline, old.as_ref(), deadline)
            .await
    }

    /// Validate a pipeline read from a CREATE or UPDATE (for the latter, `old` is the object
    /// before, if it reads as a valid pipeline). On UPDATE the cluster-state checks
    /// run only when the spec changed.
    pub async fn validate_parsed(
        &self,
        operation: Operation,
        pipeline: &ParsedPipeline,
        old: Option<&ParsedPipeline>,
        deadline: Duration,
    ) -> Decision {
        let spec_changed =
            operation != Operation::Update || old.is_none_or(|old| old.spec != pipeline.spec);
        let now = unix_now();
        if !spec_changed {
            let ctx = Context {
                settings: self.settings,
                now,
                cluster: None,
            };
            return decision(&pipeline.name, validation::validate(pipeline, &ctx));
        }
        let gathered = tokio::time::timeout(deadline, async {
            let names = self.cluster.pipeline_names().await?;
            let secrets =
                ResolvedSecrets::resolve(validation::secret_refs(&pipeline.spec), &self.cluster)
                    .await;
            Ok::<_, String>((names, secrets))
        })
        .await;
        let (names, secrets) = match gathered {
            Ok(Ok(gathered)) => gathered,
            Ok(Err(err)) => return Decision::internal_error(format!("{err}; try again")),
            Err(_) => {
                return Decision::internal_error(format!(
                    "the API server did not answer within {deadline:?} while Secrets and TracePipelines were read; try again"
                ));
            }
        };
        let ctx = Context {
            settings: self.settings,
            now,
            cluster: Some(ClusterState {
                secrets: &secrets,
                other_pipelines: &names,
                existing_pipelines: (operation == Operation::Create).then_some(names.len()),
            }),
        };
        decision(&pipeline.name, validation::validate(pipeline, &ctx))
    }
}

/// The object of a request that needs one (CREATE and UPDATE), or the answer without it: others
/// are allowed, and a CREATE or UPDATE without an object cannot be judged.
fn checked_object<T>(operation: Operation, object: Option<T>) -> Result<T, Box<Decision>> {
    if !matches!(operation, Operation::Create | Operation::Update) {
        return Err(Box::new(Decision::allow()));
    }
    object.ok_or_else(|| {
        Box::new(Decision::internal_error(format!(
            "the {} request carries no object",
            operation.as_str()
        )))
    })
}

fn decision(name: &str, report: validation::Report) -> Decision {
    if report.is_valid() {
        Decision {
            allowed: true,
            warnings: report.warnings.into_iter().map(|w| w.message).collect(),
            ..Decision::default()
        }
    } else {
        Decision::invalid(name, &report)
    }
}

fn mutate(object: &str) -> Decision {
    let Ok(object) = serde_json::from_str::<Value>(object) else {
        return Decision::internal_error("the request object is not JSON".to_string());
    };
    let patch = defaults::default_patch(&object);
    if patch.0.is_empty() {
        return Decision::allow();
    }
    Decision {
        allowed: true,
        patch: Some(serde_json::to_vec(&patch).expect("a JSON patch serialises")),
        ..Decision::default()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
