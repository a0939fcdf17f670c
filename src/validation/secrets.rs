//! Secret values for validation. Lookups are I/O and happen before validation, through a
//! [`SecretResolver`] (the API in the webhook and reconciler, manifests in the CLI and tests);
//! validation itself reads the collected [`ResolvedSecrets`] and stays pure.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::api::SecretKeyRef;

/// What a lookup of one Secret found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretLookup {
    Found(BTreeMap<String, Vec<u8>>),
    NotFound,
    /// The lookup failed (API error, timeout); the text says why.
    Failed(String),
}

/// Reads Secrets by namespace and name.
pub trait SecretResolver {
    fn lookup(&self, namespace: &str, name: &str) -> impl Future<Output = SecretLookup> + Send;
}

/// Why a reference did not resolve. Never contains a Secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    SecretNotFound {
        namespace: String,
        name: String,
    },
    KeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    NotUtf8 {
        namespace: String,
        name: String,
        key: String,
    },
    LookupFailed {
        namespace: String,
        name: String,
        reason: String,
    },
    /// The Secret was not among those looked up (a caller bug, reported rather than hidden).
    NotLookedUp {
        namespace: String,
        name: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::SecretNotFound { namespace, name } => write!(
                f,
                "Secret {name:?} in namespace {namespace:?} does not exist; create it or fix the reference"
            ),
            ResolveError::KeyNotFound {
                namespace,
                name,
                key,
            } => write!(
                f,
                "Secret {name:?} in namespace {namespace:?} has no key {key:?}; add the key to the Secret or fix the reference"
            ),
            ResolveError::NotUtf8 {
                namespace,
                name,
                key,
            } => write!(
                f,
                "key {key:?} of Secret {name:?} in namespace {namespace:?} is not valid UTF-8 text"
            ),
            ResolveError::LookupFailed {
                namespace,
                name,
                reason,
            } => write!(
                f,
                "could not read Secret {name:?} in namespace {namespace:?}: {reason}; try again"
            ),
            ResolveError::NotLookedUp { namespace, name } => write!(
                f,
                "Secret {name:?} in namespace {namespace:?} was not looked up"
            ),
        }
    }
}

/// Secrets by namespace, then name; looked up with borrowed names.
type ByNamespace<T> = BTreeMap<String, BTreeMap<String, T>>;

fn get<'a, T>(map: &'a ByNamespace<T>, namespace: &str, name: &str) -> Option<&'a T> {
    map.get(namespace).and_then(|names| names.get(name))
}

fn put<T>(map: &mut ByNamespace<T>, namespace: &str, name: &str, value: T) {
    map.entry(namespace.to_string())
        .or_default()
        .insert(name.to_string(), value);
}

/// The outcome of looking up every Secret a pipeline references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedSecrets {
    /// Namespace, name and outcome, sorted by namespace and name. A pipeline references a
    /// handful of Secrets at most, so a sorted list: the admission webhook builds one per
    /// request, and two levels of ordered maps cost more to build and drop.
    secrets: Vec<(String, String, SecretLookup)>,
}

impl ResolvedSecrets {
    /// Look up each distinct Secret of `refs` once.
    pub async fn resolve<'r>(
        refs: impl IntoIterator<Item = &'r SecretKeyRef>,
        resolver: &impl SecretResolver,
    ) -> Self {
        let mut resolved = ResolvedSecrets::default();
        for r in refs {
            if resolved.get(&r.namespace, &r.name).is_none() {
                let lookup = resolver.lookup(&r.namespace, &r.name).await;
                resolved.insert(&r.namespace, &r.name, lookup);
            }
        }
        resolved
    }

    pub fn insert(&mut self, namespace: &str, name: &str, lookup: SecretLookup) {
        match self.position(namespace, name) {
            Ok(at) => self.secrets[at].2 = lookup,
            Err(at) => self
                .secrets
                .insert(at, (namespace.to_string(), name.to_string(), lookup)),
        }
    }

    fn position(&self, namespace: &str, name: &str) -> Result<usize, usize> {
        self.secrets
            .binary_search_by(|(n, m, _)| (n.as_str(), m.as_str()).cmp(&(namespace, name)))
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&SecretLookup> {
        self.position(namespace, name)
            .ok()
            .map(|at| &self.secrets[at].2)
    }

    /// The text value a reference points to.
    pub fn value(&self, r: &SecretKeyRef) -> Result<&str, ResolveError> {
        let namespace = || r.namespace.clone();
        let name = || r.name.clone();
        match self.get(&r.namespace, &r.name) {
            None => Err(ResolveError::NotLookedUp {
                namespace: namespace(),
                name: name(),
            }),
            Some(SecretLookup::NotFound) => Err(ResolveError::SecretNotFound {
                namespace: namespace(),
                name: name(),
            }),
            Some(SecretLookup::Failed(reason)) => Err(ResolveError::LookupFailed {
                namespace: namespace(),
                name: name(),
                reason: reason.clone(),
            }),
            Some(SecretLookup::Found(data)) => {
                let bytes = data.get(&r.key).ok_or_else(|| ResolveError::KeyNotFound {
                    namespace: namespace(),
                    name: name(),
                    key: r.key.clone(),
                })?;
                std::str::from_utf8(bytes).map_err(|_| ResolveError::NotUtf8 {
                    namespace: namespace(),
                    name: name(),
                    key: r.key.clone(),
                })
            }
        }
    }
}

/// Secrets held in memory, e.g. read from manifests by the CLI.
#[derive(Clone, Debug, Default)]
pub struct InMemorySecrets {
    secrets: ByNamespace<BTreeMap<String, Vec<u8>>>,
}

impl InMemorySecrets {
    pub fn insert(&mut self, namespace: &str, name: &str, data: BTreeMap<String, Vec<u8>>) {
        put(&mut self.secrets, namespace, name, data);
    }
}

impl SecretResolver for InMemorySecrets {
    async fn lookup(&self, namespace: &str, name: &str) -> SecretLookup {
        match get(&self.secrets, namespace, name) {
            Some(data) => SecretLookup::Found(data.clone()),
            None => SecretLookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_ref(namespace: &str, name: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.to_string(),
            namespace: namespace.to_string(),
            key: "k".to_string(),
        }
    }

    /// The last outcome for a Secret wins, and the order of insertion does not matter.
    #[test]
    fn resolved_secrets_keep_one_outcome_per_secret() {
        let found = || SecretLookup::Found([("k".to_string(), b"v".to_vec())].into());
        let mut first = ResolvedSecrets::default();
        first.insert("b", "x", SecretLookup::NotFound);
        first.insert("a", "y", found());
        first.insert("b", "x", found());
        let mut second = ResolvedSecrets::default();
        second.insert("a", "y", found());
        second.insert("b", "x", found());
        assert_eq!(first, second);
        assert_eq!(first.value(&key_ref("b", "x")), Ok("v"));
        assert_eq!(first.value(&key_ref("a", "y")), Ok("v"));
        assert!(matches!(
            first.value(&key_ref("a", "x")),
            Err(ResolveError::NotLookedUp { .. })
        ));
    }
}
