//! `--cert-mode=files`: `tls.crt` and `tls.key` from a directory (cert-manager, a mounted
//! Secret). The files are polled: a content comparison sees every change, including Kubernetes'
//! atomic `..data` symlink swap, without depending on file-system events inside containers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CertStore, ServingCertificate};
use crate::metrics::Metrics;

pub struct CertFiles {
    dir: PathBuf,
    loaded: Option<(Vec<u8>, Vec<u8>)>,
    /// The last problem reported, so that a broken state is reported once, not on every poll.
    rejected: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Loaded,
    /// The files changed but the pair is unusable; the previous pair stays in service.
    Rejected(String),
}

impl CertFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CertFiles {
            dir: dir.into(),
            loaded: None,
            rejected: None,
        }
    }

    fn read(dir: &Path) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((
            std::fs::read(dir.join("tls.crt"))?,
            std::fs::read(dir.join("tls.key"))?,
        ))
    }

    /// Load the pair into `store` if it changed since the last successful load.
    pub fn reload(&mut self, store: &CertStore) -> Reload {
        let problem = match Self::read(&self.dir) {
            Ok(pair) if self.loaded.as_ref() == Some(&pair) => return Reload::Unchanged,
            Ok(pair) => match ServingCertificate::from_pem(&pair.0, &pair.1) {
                Ok(certificate) => {
                    store.replace(certificate);
                    self.loaded = Some(pair);
                    self.rejected = None;
                    return Reload::Loaded;
                }
                Err(err) => format!("{}: {err}", self.dir.display()),
            },
            Err(err) => format!("cannot read {}: {err}", self.dir.display()),
        };
        if self.rejected.as_ref() == Some(&problem) {
            return Reload::Unchanged;
        }
        self.rejected = Some(problem.clone());
        Reload::Rejected(problem)
    }

    /// Reload every `interval` until `shutdown`.
    pub async fn watch(
        mut self,
        store: Arc<CertStore>,
        metrics: Arc<Metrics>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            match self.reload(&store) {
                Reload::Unchanged => {}
                Reload::Loaded => {
                    tracing::info!(dir = %self.dir.display(), "loaded the webhook serving certificate");
                    if let Some(current) = store.current() {
                        metrics.certificate_not_after.set(current.not_after as f64);
                    }
                }
                Reload::Rejected(reason) => {
                    metrics.certificate_reload_failures.inc();
                    tracing::warn!(%reason, "keeping the previous webhook serving certificate");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
