//! The cluster's identity for `k8s.cluster.uid` (docs/reference/gateway-enrichment.md#cluster-identity):
//! the UID of the `kube-system` namespace, which lives as long as the cluster. It is read once;
//! without permission (or without the namespace) the gateway goes on without it, and the
//! manager says so once.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

const NAMESPACE: &str = "kube-system";

/// What the manager knows about the cluster UID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClusterUid {
    /// Not read yet, or the last read failed in a way worth retrying.
    #[default]
    Unread,
    Known(String),
    /// Forbidden or absent: not asked again.
    Unavailable,
}

/// What a read of the namespace says about the cluster UID.
fn after_read(read: Result<Namespace, kube::Error>) -> ClusterUid {
    match read {
        Ok(namespace) => namespace
            .metadata
            .uid
            .filter(|uid| !uid.is_empty())
            .map_or(ClusterUid::Unavailable, ClusterUid::Known),
        Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => {
            ClusterUid::Unavailable
        }
        Err(_) => ClusterUid::Unread,
    }
}

impl ClusterUid {
    /// The UID, reading it when it was never read (or the last read hit a passing error).
    pub async fn resolve(&mut self, client: &kube::Client) -> Option<String> {
        if *self == ClusterUid::Unread {
            let read = Api::<Namespace>::all(client.clone()).get(NAMESPACE).await;
            let error = read.as_ref().err().map(ToString::to_string);
            *self = after_read(read);
            match (&*self, error) {
                (ClusterUid::Unavailable, Some(error)) => tracing::warn!(
                    %error,
                    "cannot read the kube-system namespace: spans get no k8s.cluster.uid (the manager needs get on namespaces/kube-system)"
                ),
                (ClusterUid::Unavailable, None) => {
                    tracing::warn!(
                        "the kube-system namespace has no UID: spans get no k8s.cluster.uid"
                    )
                }
                (ClusterUid::Unread, Some(error)) => tracing::warn!(
                    %error,
                    "reading the kube-system namespace failed; retrying with the next pass"
                ),
                _ => {}
            }
        }
        match self {
            ClusterUid::Known(uid) => Some(uid.clone()),
            _ => None,
        }
    }
}
