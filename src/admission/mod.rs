//! The admission webhooks (SPEC §3): AdmissionReview in, decision out. The decision is made by
//! the pure validation engine; this layer only gathers the cluster state it needs (Secrets,
//! existing pipelines) within the API server's deadline.

pub mod review;
pub mod server;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::api::v1beta1::TracePipeline;
use crate::validation::{
    self, ApiVersion, ClusterState, Context, ResolvedSecrets, SecretLookup, SecretResolver,
    Settings, defaults,
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

/// One of the four webhook endpoints of SPEC §3.5.
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
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return Decision::allow();
        }
        let Some(object) = &request.object else {
            return Decision::internal_error(format!(
                "the {} request carries no object",
                request.operation.as_str()
            ));
        };
        match endpoint.kind {
            WebhookKind::Mutate => mutate(object.get()),
            WebhookKind::Validate => self.validate(request, object.get(), deadline).await,
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
        // SPEC §3.2: on UPDATE the cluster-state checks run only when the spec changed.
        let spec_changed = match (request.operation, &request.old_object) {
            (Operation::Update, Some(old)) => spec_of(old.get()) != spec_of(object),
            _ => true,
        };
        let now = unix_now();
        if !spec_changed {
            let ctx = Context {
                settings: self.settings,
                now,
                cluster: None,
            };
            return decision(&pipeline.name, validation::validate(&pipeline, &ctx));
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
                existing_pipelines: (request.operation == Operation::Create).then_some(names.len()),
            }),
        };
        decision(&pipeline.name, validation::validate(&pipeline, &ctx))
    }
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

/// The `spec` of an object in JSON text, for comparison.
fn spec_of(object: &str) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct SpecOnly {
        spec: Option<Value>,
    }
    serde_json::from_str::<SpecOnly>(object)
        .ok()
        .and_then(|o| o.spec)
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
