//! The tower-test API verifier: each step asserts the request the client made and answers as
//! the API server would.

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

pub type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// A client whose requests arrive at the returned handle.
pub fn client(default_namespace: &str) -> (kube::Client, ApiHandle) {
    telemetry_manager::tls::install_crypto_provider();
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, default_namespace), handle)
}

/// A `Status` failure, as the API server sends it.
pub fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

pub fn ok(value: &impl serde::Serialize) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

/// Wait for the next request, assert its method and path, and return its head, its body as JSON
/// (null when empty) and the responder.
pub async fn next_request(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
) -> (http::request::Parts, Value, SendResponse<Response<Body>>) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("expected {method} {path}, got no request"))
        .unwrap_or_else(|| panic!("expected {method} {path}, the client went away"));
    let (parts, body) = request.into_parts();
    assert_eq!(
        (&parts.method, parts.uri.path()),
        (&method, path),
        "{}",
        parts.uri
    );
    let bytes = body.collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts, body, send)
}

/// [`next_request`] without the head.
pub async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
) -> (Value, SendResponse<Response<Body>>) {
    let (_, body, send) = next_request(handle, method, path).await;
    (body, send)
}
