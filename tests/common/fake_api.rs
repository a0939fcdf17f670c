//! A small in-memory Kubernetes API server for end-to-end tests of `telemetry-manager run`:
//! get, list (with label selectors), create, replace (with resourceVersion conflicts),
//! server-side apply with field ownership, merge patches (also of `/status`), delete, and
//! watches that stay open without events. Every request is logged, so tests can assert what the
//! manager asked for.
//!
//! Apply keeps the field ownership of server-side apply, simplified: every leaf of an applied
//! object (lists whole) belongs to the managers that applied it with that value; a field its
//! last owner stops applying is removed (a Deployment's `spec.replicas` then defaults to 1); a
//! field another manager owns with a different value is a conflict unless forced.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub struct FakeApi {
    /// Objects by their item path (`/api/v1/namespaces/ns/secrets/name`).
    pub objects: BTreeMap<String, Value>,
    /// `METHOD path?query` of every request.
    pub requests: Vec<String>,
    /// Item paths that are answered 403 Forbidden.
    pub forbidden: BTreeSet<String>,
    version: u64,
    /// (item path, watch event) of every change, for open watches.
    events: tokio::sync::broadcast::Sender<(String, Value)>,
    /// Field managers by item path.
    owners: BTreeMap<String, BTreeMap<String, FieldManager>>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi {
            objects: BTreeMap::new(),
            requests: Vec::new(),
            forbidden: BTreeSet::new(),
            version: 0,
            events: tokio::sync::broadcast::channel(1024).0,
            owners: BTreeMap::new(),
        }
    }
}

/// The fields one manager owns in one object, and how it wrote them last.
#[derive(Clone, Debug)]
struct FieldManager {
    operation: &'static str,
    fields: BTreeSet<Vec<String>>,
}

/// Fields that identify an object; server-side apply does not track their ownership.
fn identifying(field: &[String]) -> bool {
    matches!(
        field.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ["apiVersion"] | ["kind"] | ["metadata", "name"] | ["metadata", "namespace"]
    )
}

/// The leaves of an object (objects are walked, everything else is a leaf).
fn leaves(value: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(key.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() && !identifying(prefix) => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

fn value_at<'a>(value: &'a Value, field: &[String]) -> Option<&'a Value> {
    field.iter().try_fold(value, |v, key| v.get(key))
}

fn remove_at(value: &mut Value, field: &[String]) {
    let Some((last, parents)) = field.split_last() else {
        return;
    };
    let mut cursor = value;
    for key in parents {
        match cursor.get_mut(key) {
            Some(next) => cursor = next,
            None => return,
        }
    }
    if let Some(map) = cursor.as_object_mut() {
        map.remove(last);
    }
}

fn managed_fields(managers: &BTreeMap<String, FieldManager>, api_version: &Value) -> Value {
    let entries: Vec<Value> = managers
        .iter()
        .map(|(name, manager)| {
            let mut tree = json!({});
            for field in &manager.fields {
                let mut cursor = &mut tree;
                for key in field {
                    cursor = cursor
                        .as_object_mut()
                        .unwrap()
                        .entry(format!("f:{key}"))
                        .or_insert(json!({}));
                }
            }
            json!({"manager": name, "operation": manager.operation, "apiVersion": api_version,
                   "fieldsType": "FieldsV1", "fieldsV1": tree})
        })
        .collect();
    Value::Array(entries)
}

pub type Shared = Arc<Mutex<FakeApi>>;

impl FakeApi {
    /// Create or update an object. Like the API server, an update keeps the object's identity
    /// (uid, creation time) and raises `generation` only when something beyond metadata and
    /// status changed, so that a status write does not look like a new object to the manager.
    pub fn insert(&mut self, path: &str, mut object: Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let kind = match self.objects.get(path) {
            Some(previous) => {
                let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1);
                let spec_changed =
                    without_metadata_and_status(previous) != without_metadata_and_status(&object);
                object["metadata"]["uid"] = previous["metadata"]["uid"].clone();
                object["metadata"]["creationTimestamp"] =
                    previous["metadata"]["creationTimestamp"].clone();
                object["metadata"]["generation"] = json!(generation + i64::from(spec_changed));
                "MODIFIED"
            }
            None => {
                object["metadata"]["uid"] = json!(format!("uid-{}", self.version));
                object["metadata"]["generation"] = json!(1);
                if object["metadata"].get("creationTimestamp").is_none() {
                    object["metadata"]["creationTimestamp"] = json!("2026-11-24T10:00:00Z");
                }
                "ADDED"
            }
        };
        let _ = self
            .events
            .send((path.to_string(), json!({"type": kind, "object": object})));
        self.objects.insert(path.to_string(), object);
    }

    /// Delete an object as another client would, with a watch event.
    pub fn delete_for_test(&mut self, path: &str) {
        self.remove(path);
    }

    /// Change one field as a controller does with an update (the autoscaler through the scale
    /// subresource): `manager` becomes its only owner.
    pub fn update_for_test(&mut self, path: &str, field: &[&str], value: Value, manager: &str) {
        let field: Vec<String> = field.iter().map(|k| k.to_string()).collect();
        let mut object = self.objects[path].clone();
        let (last, parents) = field.split_last().unwrap();
        let mut cursor = &mut object;
        for key in parents {
            cursor = &mut cursor[key];
        }
        cursor[last] = value;
        let managers = self.owners.entry(path.to_string()).or_default();
        for owner in managers.values_mut() {
            owner.fields.remove(&field);
        }
        managers
            .entry(manager.to_string())
            .or_insert(FieldManager {
                operation: "Update",
                fields: BTreeSet::new(),
            })
            .fields
            .insert(field);
        managers.retain(|_, m| !m.fields.is_empty());
        object["metadata"]["managedFields"] = managed_fields(managers, &object["apiVersion"]);
        self.insert(path, object);
    }

    /// The object after `manager` applied `applied`, and the new ownership; a conflict names
    /// the fields. Nothing is stored.
    fn apply(
        &self,
        path: &str,
        applied: &Value,
        manager: &str,
        force: bool,
    ) -> Result<(Value, BTreeMap<String, FieldManager>), String> {
        let mut object = self.objects.get(path).cloned().unwrap_or(json!({}));
        let mut managers = self.owners.get(path).cloned().unwrap_or_default();
        let mut fields = BTreeSet::new();
        leaves(applied, &mut Vec::new(), &mut fields);
        let mut conflicts = Vec::new();
        for (name, owner) in &managers {
            for field in owner.fields.intersection(&fields) {
                if name != manager && value_at(&object, field) != value_at(applied, field) {
                    conflicts.push((name.clone(), field.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(format!("Apply failed with conflicts: {conflicts:?}"));
        }
        for (name, field) in conflicts {
            managers.get_mut(&name).unwrap().fields.remove(&field);
        }
        let previous = managers
            .get(manager)
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        for field in previous.difference(&fields) {
            let kept = managers
                .iter()
                .any(|(name, owner)| name != manager && owner.fields.contains(field));
            if !kept {
                remove_at(&mut object, field);
            }
        }
        merge(&mut object, applied);
        managers.insert(
            manager.to_string(),
            FieldManager {
                operation: "Apply",
                fields,
            },
        );
        managers.retain(|_, m| !m.fields.is_empty());
        if path.contains("/deployments/") && object["spec"].get("replicas").is_none() {
            object["spec"]["replicas"] = json!(1);
        }
        object["metadata"]["managedFields"] = managed_fields(&managers, &object["apiVersion"]);
        Ok((object, managers))
    }

    fn remove(&mut self, path: &str) -> Option<Value> {
        self.owners.remove(path);
        let object = self.objects.remove(path)?;
        let _ = self.events.send((
            path.to_string(),
            json!({"type": "DELETED", "object": object}),
        ));
        Some(object)
    }
}

fn without_metadata_and_status(object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    rest
}

fn status(code: StatusCode, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code.as_u16(), "message": reason});
    (code, axum::Json(body)).into_response()
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn matches_labels(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((key, value)) => object["metadata"]["labels"][key].as_str() == Some(value),
            None => true,
        })
}

async fn handle(State(api): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_string();
    let server_side_apply = request
        .headers()
        .get("content-type")
        .is_some_and(|t| t == "application/apply-patch+yaml");
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(url_decode_pairs)
        .unwrap_or_default();
    api.lock()
        .unwrap()
        .requests
        .push(format!("{method} {}", request.uri()));
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();

    if query.get("watch").map(String::as_str) == Some("true")
        || query.get("watch").map(String::as_str) == Some("1")
    {
        // Stream the changes below this collection that match the selectors, one JSON event per
        // line, until the client goes away.
        let receiver = api.lock().unwrap().events.subscribe();
        let prefix = format!("{path}/");
        let name = query
            .get("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name="))
            .map(str::to_string);
        let labels = query.get("labelSelector").cloned();
        let stream = futures::stream::unfold(receiver, move |mut receiver| {
            let (prefix, name, labels) = (prefix.clone(), name.clone(), labels.clone());
            async move {
                loop {
                    match receiver.recv().await {
                        Ok((item, event)) => {
                            let below =
                                item.starts_with(&prefix) && !item[prefix.len()..].contains('/');
                            let named = name
                                .as_deref()
                                .is_none_or(|n| event["object"]["metadata"]["name"] == n);
                            if below && named && matches_labels(&event["object"], labels.as_deref())
                            {
                                let mut line = serde_json::to_vec(&event).unwrap();
                                line.push(b'\n');
                                return Some((
                                    Ok::<_, std::io::Error>(Bytes::from(line)),
                                    receiver,
                                ));
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let (item_path, subresource) = match path.strip_suffix("/status") {
        Some(item) => (item.to_string(), true),
        None => (path.clone(), false),
    };
    let mut state = api.lock().unwrap();
    if state.forbidden.contains(&item_path) {
        return status(StatusCode::FORBIDDEN, "Forbidden");
    }
    match method {
        Method::GET => {
            if let Some(object) = state.objects.get(&path) {
                return axum::Json(object.clone()).into_response();
            }
            // A collection: every stored object directly below the path.
            let prefix = format!("{path}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                .map(|(_, o)| o.clone())
                .filter(|o| matches_labels(o, query.get("labelSelector").map(String::as_str)))
                .filter(|o| {
                    match query
                        .get("fieldSelector")
                        .and_then(|f| f.strip_prefix("metadata.name="))
                    {
                        Some(name) => o["metadata"]["name"] == name,
                        None => true,
                    }
                })
                .collect();
            if looks_like_item(&path) {
                return status(StatusCode::NOT_FOUND, "NotFound");
            }
            let version = state.version.to_string();
            axum::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items}))
                .into_response()
        }
        Method::POST => {
            let object: Value = serde_json::from_slice(&body).unwrap_or_default();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or("generated")
                .to_string();
            let item = format!("{path}/{name}");
            if state.objects.contains_key(&item) && !path.ends_with("/events") {
                return status(StatusCode::CONFLICT, "AlreadyExists");
            }
            state.insert(&item, object);
            (
                StatusCode::CREATED,
                axum::Json(state.objects[&item].clone()),
            )
                .into_response()
        }
        Method::PUT => {
            let object: Value = serde_json::from_slice(&body).unwrap_or_default();
            let Some(current) = state.objects.get(&item_path) else {
                return status(StatusCode::NOT_FOUND, "NotFound");
            };
            if object["metadata"]["resourceVersion"].is_string()
                && object["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
            {
                return status(StatusCode::CONFLICT, "Conflict");
            }
            state.insert(&item_path, object);
            axum::Json(state.objects[&item_path].clone()).into_response()
        }
        Method::PATCH => {
            let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
            let existing = state.objects.get(&item_path).cloned();
            let updated = match (existing, subresource) {
                (_, false) if server_side_apply => {
                    let manager = query.get("fieldManager").map_or("", String::as_str);
                    let force = query.get("force").map(String::as_str) == Some("true");
                    match state.apply(&item_path, &patch, manager, force) {
                        Ok((object, managers)) => {
                            state.owners.insert(item_path.clone(), managers);
                            object
                        }
                        Err(_) => return status(StatusCode::CONFLICT, "Conflict"),
                    }
                }
                (Some(mut current), _) => {
                    merge(&mut current, &patch);
                    current
                }
                (None, _) => return status(StatusCode::NOT_FOUND, "NotFound"),
            };
            // Like the API server, a patch that changes nothing is not persisted: no new
            // resourceVersion and no watch event.
            if state.objects.get(&item_path) != Some(&updated) {
                state.insert(&item_path, updated);
            }
            axum::Json(state.objects[&item_path].clone()).into_response()
        }
        Method::DELETE => match state.remove(&item_path) {
            Some(_) => {
                axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
                    .into_response()
            }
            None => status(StatusCode::NOT_FOUND, "NotFound"),
        },
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
    }
}

/// Item paths have an odd number of segments after the API prefix (`…/plural/name`).
fn looks_like_item(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let after_prefix = if segments.first() == Some(&"api") {
        &segments[2..]
    } else {
        &segments[3.min(segments.len())..]
    };
    matches!(
        after_prefix,
        ["namespaces", _, _, _] | ["namespaces", _] | [_, _] | []
    )
}

fn url_decode_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serve the fake API on 127.0.0.1; returns its address.
pub async fn serve(api: Shared) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().fallback(handle).with_state(api);
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A kubeconfig pointing at the fake API.
pub fn kubeconfig(api: SocketAddr, file: &std::path::Path) {
    std::fs::write(
        file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: telemetry}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
}

impl FakeApi {
    /// Reconcile passes so far: each starts by reading the gateway's ServiceAccount in the
    /// namespace `telemetry`.
    pub fn passes(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| {
                r.starts_with(
                    "GET /api/v1/namespaces/telemetry/serviceaccounts/telemetry-trace-gateway",
                )
            })
            .count()
    }
}

/// `telemetry-manager run` in the namespace `telemetry` as `identity`, against the API server of
/// `kubeconfig`, with its webhook and metrics on free ports and without the in-cluster
/// environment; the caller adds flags, output and spawns it.
pub fn manager_command(kubeconfig: &std::path::Path, identity: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-manager"));
    command
        .args(["run", "--namespace", "telemetry", "--identity", identity])
        .args([
            "--webhook-addr",
            &format!("127.0.0.1:{}", super::free_port()),
        ])
        .args([
            "--metrics-addr",
            &format!("127.0.0.1:{}", super::free_port()),
        ])
        .env("KUBECONFIG", kubeconfig)
        .env_remove("POD_NAMESPACE")
        .env_remove("POD_NAME")
        .env_remove("RUST_LOG");
    command
}
