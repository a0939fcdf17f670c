//! The webhook HTTPS server: axum routes for the four webhook paths on hyper-util, TLS by
//! tokio-rustls. Each connection's TLS handshake runs in its own task with a deadline, headers
//! must arrive within a deadline, bodies are capped, and every request is bounded by the API
//! server's `?timeout=`. Shutdown stops accepting and lets in-flight requests finish.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::Histogram;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{Admission, AdmissionCluster, Endpoint, WebhookKind, review};
use crate::metrics::Metrics;

/// The largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// The API server's default webhook timeout, used when a request carries no `?timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// No admission request may take longer than this, whatever `?timeout=` says.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// The webhook routes (docs/operations.md#webhook-registration). Other paths get 404, other methods
/// 405.
pub fn router<C: AdmissionCluster>(admission: Arc<Admission<C>>, metrics: Arc<Metrics>) -> Router {
    let mut router = Router::new();
    for endpoint in Endpoint::ALL {
        let admission = admission.clone();
        let metrics = metrics.clone();
        let duration = metrics
            .webhook_duration
            .with_label_values(&[endpoint.kind.name()]);
        router = router.route(
            &endpoint.path(),
            post(move |request: Request| {
                handle(admission, metrics, duration.clone(), endpoint, request)
            }),
        );
    }
    router
}

/// The deadline the API server gave, from `?timeout=10s`, capped at [`MAX_TIMEOUT`].
fn timeout_of(query: Option<&str>) -> Duration {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(review::parse_go_duration)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT)
}

/// The `code` label of a webhook answer, without formatting the common ones.
fn code_label(code: u16) -> Cow<'static, str> {
    match code {
        200 => "200".into(),
        400 => "400".into(),
        422 => "422".into(),
        500 => "500".into(),
        other => other.to_string().into(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Answer one admission request. The API server's deadline bounds the body upload and the
/// cluster reads of the decision.
async fn handle<C: AdmissionCluster>(
    admission: Arc<Admission<C>>,
    metrics: Arc<Metrics>,
    duration: Histogram,
    endpoint: Endpoint,
    request: Request,
) -> Response {
    let started = Instant::now();
    let deadline = timeout_of(request.uri().query());
    let webhook = endpoint.kind.name();
    let record = |operation: &str, allowed: &str, code: u16| {
        metrics
            .webhook_requests
            .with_label_values(&[webhook, operation, allowed, &code_label(code)])
            .inc();
        duration.observe(started.elapsed().as_secs_f64());
    };
    if !is_json(request.headers()) {
        record("", "false", 415);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json\n",
        )
            .into_response();
    }
    let upload = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(deadline, upload).await {
        Ok(Ok(body)) => body,
        Ok(Err(err)) => {
            let too_large = err
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let (code, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body exceeds {MAX_BODY_BYTES} bytes\n"),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read\n".to_string(),
                )
            };
            record("", "false", code.as_u16());
            return (code, message).into_response();
        }
        Err(_) => {
            record("", "false", 408);
            let message = format!("the request body did not arrive within {deadline:?}\n");
            return (StatusCode::REQUEST_TIMEOUT, message).into_response();
        }
    };
    // Leave a tenth of the deadline to answer before the API server gives up.
    let remaining = || deadline.saturating_sub(started.elapsed()).mul_f64(0.9);
    let read = match endpoint.kind {
        WebhookKind::Validate => review::decode_read(&body),
        WebhookKind::Mutate => None,
    };
    let (review, decision) = if let Some(read) = read {
        let decision = admission.validate_read(&read, remaining()).await;
        (read.review, decision)
    } else {
        let review = match review::decode(&body) {
            Ok(review) => review,
            Err(err) => {
                record("", "false", 400);
                return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response();
            }
        };
        let decision = admission
            .decide(endpoint, &review.request, remaining())
            .await;
        (review, decision)
    };
    let code = decision.status.as_ref().and_then(|s| s.code).unwrap_or(200);
    record(
        review.request.operation.as_str(),
        if decision.allowed { "true" } else { "false" },
        u16::try_from(code).unwrap_or(500),
    );
    if !decision.allowed {
        tracing::info!(
            webhook,
            operation = review.request.operation.as_str(),
            name = %review.request.name,
            message = decision.status.as_ref().and_then(|s| s.message.as_deref()).unwrap_or_default(),
            "denied"
        );
    }
    let body = review::encode(&review.api_version, &review.request.uid, &decision);
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Serve `router` over TLS on `listener` until `shutdown`, then wait up to the grace period for
/// in-flight requests.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accepting a webhook connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(Ok(tls_stream)) =
                tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await
            else {
                return;
            };
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %err, "webhook connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("in-flight webhook requests did not finish within the shutdown grace period");
        }
    }
}
