//! A small in-memory Kubernetes API server for end-to-end tests of `telemetry-manager run`:
//! get, list (with label selectors), create, replace (with resourceVersion conflicts), apply,
//! merge patches (also of `/status`), delete, and watches that stay open without events. Every
//! request is logged, so tests can assert what the manager asked for.

use std::collections::BTreeMap;
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
    version: u64,
    /// (item path, watch event) of every change, for open watches.
    events: tokio::sync::broadcast::Sender<(String, Value)>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi {
            objects: BTreeMap::new(),
            requests: Vec::new(),
            version: 0,
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

pub type Shared = Arc<Mutex<FakeApi>>;

impl FakeApi {
    pub fn insert(&mut self, path: &str, mut object: Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{}", self.version));
        object["metadata"]["generation"] = json!(1);
        if object["metadata"].get("creationTimestamp").is_none() {
            object["metadata"]["creationTimestamp"] = json!("2026-11-24T10:00:00Z");
        }
        let kind = if self.objects.contains_key(path) {
            "MODIFIED"
        } else {
            "ADDED"
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

    fn remove(&mut self, path: &str) -> Option<Value> {
        let object = self.objects.remove(path)?;
        let _ = self.events.send((
            path.to_string(),
            json!({"type": "DELETED", "object": object}),
        ));
        Some(object)
    }
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
                (Some(mut current), _) => {
                    merge(&mut current, &patch);
                    current
                }
                (None, false) if query.contains_key("fieldManager") => patch,
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
