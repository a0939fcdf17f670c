//! Reading the gateway pods' metrics (docs/reference/status.md#flow-health): the ready endpoints of
//! the metrics Service's EndpointSlices, each scraped over plain HTTP with a deadline and a size
//! cap, concurrently.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use super::PodMetrics;

/// Limits of one scrape.
#[derive(Clone, Copy, Debug)]
pub struct ScrapeLimits {
    pub timeout: Duration,
    /// The collector's own metrics are about 150 KB; anything far larger is not a collector.
    pub max_bytes: usize,
}

impl Default for ScrapeLimits {
    fn default() -> Self {
        ScrapeLimits {
            timeout: Duration::from_secs(3),
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One gateway pod to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub pod: String,
    pub address: SocketAddr,
}

/// The ready endpoints behind Service `service` in `namespace`, on `port`.
pub async fn discover(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    port: u16,
) -> Result<Vec<Target>, kube::Error> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?;
    let mut targets = Vec::new();
    for slice in list.items {
        for endpoint in slice.endpoints {
            // A missing `ready` means ready, as Kubernetes documents it.
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let pod = endpoint.target_ref.as_ref().and_then(|r| r.name.clone());
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<std::net::IpAddr>() {
                    let pod = pod.clone().unwrap_or_else(|| address.clone());
                    targets.push(Target {
                        pod,
                        address: SocketAddr::new(ip, port),
                    });
                }
            }
        }
    }
    targets.sort_by(|a, b| a.pod.cmp(&b.pod));
    targets.dedup();
    Ok(targets)
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("scraping {pod} ({address}) timed out after {timeout:?}")]
    Timeout {
        pod: String,
        address: SocketAddr,
        timeout: Duration,
    },
    #[error("scraping {pod} ({address}) failed: {reason}")]
    Failed {
        pod: String,
        address: SocketAddr,
        reason: String,
    },
}

/// Scrape one target's `/metrics`.
pub async fn scrape(target: &Target, limits: ScrapeLimits) -> Result<PodMetrics, ScrapeError> {
    let failed = |reason: String| ScrapeError::Failed {
        pod: target.pod.clone(),
        address: target.address,
        reason,
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(target.address)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = http::Request::get("/metrics")
            .header(http::header::HOST, target.address.to_string())
            .header(http::header::ACCEPT, "text/plain; version=0.0.4")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = Limited::new(response.into_body(), limits.max_bytes)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e} (limit {} bytes)", limits.max_bytes))?
            .to_bytes();
        let text =
            std::str::from_utf8(&body).map_err(|_| "the metrics are not UTF-8 text".to_string())?;
        super::read_pod(text).map_err(|e| format!("not Prometheus text: {e}"))
    };
    match tokio::time::timeout(limits.timeout, attempt).await {
        Ok(result) => result.map_err(failed),
        Err(_) => Err(ScrapeError::Timeout {
            pod: target.pod.clone(),
            address: target.address,
            timeout: limits.timeout,
        }),
    }
}

/// Scrape every target concurrently. Any failure fails the probe (the flow is then
/// Unknown), with the first error; no target at all is a failure too.
pub async fn scrape_all(
    targets: &[Target],
    limits: ScrapeLimits,
) -> Result<BTreeMap<String, PodMetrics>, String> {
    if targets.is_empty() {
        return Err("no ready trace gateway pod to read metrics from".to_string());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets.iter().cloned() {
        tasks.spawn(async move { (target.pod.clone(), scrape(&target, limits).await) });
    }
    let mut pods = BTreeMap::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((pod, Ok(metrics))) => {
                pods.insert(pod, metrics);
            }
            Ok((_, Err(err))) => {
                first_error.get_or_insert(err.to_string());
            }
            Err(err) => {
                first_error.get_or_insert(format!("a scrape task failed: {err}"));
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(pods),
    }
}
