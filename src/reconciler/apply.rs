//! Writing the gateway: server-side apply under one field manager, skipped when the object
//! already carries the hash of what would be applied, so an unchanged world gets no writes;
//! pruning of objects no longer desired; deletion of everything when no pipeline is left.
//!
//! With autoscaling the Deployment is applied without `spec.replicas`. Server-side apply resets
//! a field that its only owner stops applying (for replicas: to 1), so when this manager owns
//! the replica count it first hands it over, as the Kubernetes documentation on transferring
//! ownership describes: a second field manager applies the current count alone and shares the
//! field; the manager then drops it, and the autoscaler takes it over with its first change.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use crate::gateway::{self, GatewayObjects};

pub const FIELD_MANAGER: &str = "telemetry-manager";
/// Holds `spec.replicas` of the gateway Deployment between this manager and the autoscaler.
pub const REPLICAS_HANDOVER_MANAGER: &str = "telemetry-manager-handover-to-hpa";
/// The hash of the applied object, compared before the next apply.
pub const DESIRED_HASH: &str = "telemetry.kyma-project.io/desired-hash";

/// Every kind the gateway consists of, with its scope, in apply order.
pub fn gateway_kinds(istio: bool) -> Vec<(ApiResource, bool)> {
    let mut kinds = vec![
        (ApiResource::erase::<ServiceAccount>(&()), true),
        (ApiResource::erase::<ClusterRole>(&()), false),
        (ApiResource::erase::<ClusterRoleBinding>(&()), false),
        (ApiResource::erase::<Secret>(&()), true),
        (ApiResource::erase::<ConfigMap>(&()), true),
        (ApiResource::erase::<Deployment>(&()), true),
        (ApiResource::erase::<HorizontalPodAutoscaler>(&()), true),
        (ApiResource::erase::<Service>(&()), true),
        (ApiResource::erase::<NetworkPolicy>(&()), true),
        (ApiResource::erase::<PodDisruptionBudget>(&()), true),
    ];
    if istio {
        kinds.push((peer_authentication(), true));
    }
    kinds
}

pub fn peer_authentication() -> ApiResource {
    ApiResource {
        group: "security.istio.io".into(),
        version: "v1".into(),
        api_version: "security.istio.io/v1".into(),
        kind: "PeerAuthentication".into(),
        plural: "peerauthentications".into(),
    }
}

fn api(
    client: &kube::Client,
    resource: &ApiResource,
    namespaced: bool,
    namespace: &str,
) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(client.clone(), namespace, resource)
    } else {
        Api::all_with(client.clone(), resource)
    }
}

fn resource_of(object: &Value) -> (ApiResource, bool) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    gateway_kinds(true)
        .into_iter()
        .find(|(r, _)| r.api_version == api_version && r.kind == kind)
        .expect("the gateway only has kinds listed in gateway_kinds")
}

/// A stable hash of an object as it would be applied.
fn hash(object: &Value) -> String {
    let bytes = serde_json::to_vec(object).expect("JSON serialises");
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an apply pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub written: Vec<String>,
    pub deleted: Vec<String>,
    /// The resourceVersion each write left, by `Kind/name`: the watch events these writes cause
    /// carry it, which tells them apart from changes made by others.
    pub versions: BTreeMap<String, String>,
}

/// Which objects a pass applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Only objects whose applied hash differs: a pass triggered by a change writes nothing
    /// when nothing changed.
    Changed,
    /// Every object: the periodic resync re-applies, which reverts edits made by others (the
    /// API server does not persist an apply that changes nothing).
    All,
}

/// Apply the desired objects (see [`ApplyMode`]), and delete the optional objects that are no
/// longer desired.
pub async fn apply(
    client: &kube::Client,
    objects: &GatewayObjects,
    namespace: &str,
    istio: bool,
    mode: ApplyMode,
) -> Result<Applied, kube::Error> {
    let mut applied = Applied::default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for mut object in objects.to_values() {
        let digest = hash(&object);
        object["metadata"]["annotations"][DESIRED_HASH] = Value::String(digest.clone());
        let (resource, namespaced) = resource_of(&object);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let api = api(client, &resource, namespaced, namespace);
        let current = api.get_opt(&name).await?;
        let unchanged = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.as_ref())
            .and_then(|a| a.get(DESIRED_HASH))
            == Some(&digest);
        if unchanged && mode == ApplyMode::Changed {
            continue;
        }
        if resource.kind == "Deployment" {
            if objects.autoscaler.is_some() {
                if let Some(replicas) = current.as_ref().and_then(replicas_to_hand_over) {
                    hand_over_replicas(&api, &name, replicas).await?;
                }
            } else if delete_if_present(
                &api_for::<HorizontalPodAutoscaler>(client, namespace),
                gateway::NAME,
            )
            .await?
            {
                // First, so that the autoscaler cannot change the count applied below.
                applied
                    .deleted
                    .push(format!("HorizontalPodAutoscaler/{}", gateway::NAME));
            }
        }
        let written = api.patch(&name, &params, &Patch::Apply(&object)).await?;
        let key = format!("{}/{name}", resource.kind);
        if let Some(version) = written.metadata.resource_version {
            applied.versions.insert(key.clone(), version);
        }
        applied.written.push(key);
    }
    let desired_optional = [
        (
            ApiResource::erase::<PodDisruptionBudget>(&()),
            objects.pod_disruption_budget.is_some(),
        ),
        (peer_authentication(), objects.peer_authentication.is_some()),
    ];
    for (resource, desired) in desired_optional {
        if desired || (resource.kind == "PeerAuthentication" && !istio) {
            continue;
        }
        if delete_if_present(&api(client, &resource, true, namespace), gateway::NAME).await? {
            applied
                .deleted
                .push(format!("{}/{}", resource.kind, gateway::NAME));
        }
    }
    Ok(applied)
}

fn api_for<K: kube::Resource<DynamicType = ()>>(
    client: &kube::Client,
    namespace: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

/// The live replica count when this manager owns it by apply (and would reset it by dropping
/// it); `None` when the field is already shared or owned by others.
fn replicas_to_hand_over(current: &DynamicObject) -> Option<i64> {
    let owns = current
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|entry| {
            entry.manager.as_deref() == Some(FIELD_MANAGER)
                && entry.operation.as_deref() == Some("Apply")
                && entry
                    .fields_v1
                    .as_ref()
                    .is_some_and(|fields| fields.0.pointer("/f:spec/f:replicas").is_some())
        });
    owns.then(|| current.data.pointer("/spec/replicas")?.as_i64())
        .flatten()
}

/// Apply the replica count alone under [`REPLICAS_HANDOVER_MANAGER`], so that it stays when
/// this manager stops applying it. A conflict means the autoscaler already owns the field.
async fn hand_over_replicas(
    api: &Api<DynamicObject>,
    name: &str,
    replicas: i64,
) -> Result<(), kube::Error> {
    let replicas_only = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
    });
    let params = PatchParams::apply(REPLICAS_HANDOVER_MANAGER);
    match api
        .patch(name, &params, &Patch::Apply(&replicas_only))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}

/// Delete every gateway object (no pipeline is reconcilable).
pub async fn delete_all(
    client: &kube::Client,
    namespace: &str,
    istio: bool,
) -> Result<Applied, kube::Error> {
    let mut applied = Applied::default();
    for (resource, namespaced) in gateway_kinds(istio) {
        let names: &[&str] = if resource.kind == "Service" {
            &[gateway::OTLP_SERVICE, gateway::METRICS_SERVICE]
        } else {
            &[gateway::NAME]
        };
        for name in names {
            if delete_if_present(&api(client, &resource, namespaced, namespace), name).await? {
                applied.deleted.push(format!("{}/{name}", resource.kind));
            }
        }
    }
    Ok(applied)
}

async fn delete_if_present(api: &Api<DynamicObject>, name: &str) -> Result<bool, kube::Error> {
    if api.get_opt(name).await?.is_none() {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn live(managed_fields: serde_json::Value, replicas: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "telemetry-trace-gateway", "managedFields": managed_fields},
            "spec": {"replicas": replicas}
        }))
        .unwrap()
    }

    fn entry(manager: &str, operation: &str, fields: serde_json::Value) -> serde_json::Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
               "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn the_count_is_handed_over_only_while_this_manager_applies_it() {
        let replicas = json!({"f:spec": {"f:replicas": {}}});
        let template = json!({"f:spec": {"f:template": {}}});
        let table = [
            (
                json!([entry(FIELD_MANAGER, "Apply", replicas.clone())]),
                json!(3),
                Some(3),
            ),
            // Already handed over: shared with, or left to, another manager.
            (
                json!([
                    entry(FIELD_MANAGER, "Apply", template.clone()),
                    entry(REPLICAS_HANDOVER_MANAGER, "Apply", replicas.clone())
                ]),
                json!(3),
                None,
            ),
            (
                json!([
                    entry(FIELD_MANAGER, "Apply", template),
                    entry("kube-controller-manager", "Update", replicas.clone())
                ]),
                json!(5),
                None,
            ),
            // An update by this manager's name is not what an apply without the field resets.
            (
                json!([entry(FIELD_MANAGER, "Update", replicas.clone())]),
                json!(3),
                None,
            ),
            (json!([]), json!(3), None),
            (
                json!([entry(FIELD_MANAGER, "Apply", replicas)]),
                json!(null),
                None,
            ),
        ];
        for (managed_fields, count, expected) in table {
            assert_eq!(
                replicas_to_hand_over(&live(managed_fields.clone(), count)),
                expected,
                "{managed_fields}"
            );
        }
    }
}
