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
    secrets: ByNamespace<SecretLookup>,
}

impl ResolvedSecrets {
    /// Look up each distinct Secret of `refs` once.
    pub async fn resolve<'r>(
        refs: impl IntoIterator<Item = &'r SecretKeyRef>,
        resolver: &impl SecretResolver,
    ) -> Self {
        let mut resolved = ResolvedSecrets::default();
        for r in refs {
            if get(&resolved.secrets, &r.namespace, &r.name).is_none() {
                let lookup = resolver.lookup(&r.namespace, &r.name).await;
                put(&mut resolved.secrets, &r.namespace, &r.name, lookup);
            }
        }
        resolved
    }

    pub fn insert(&mut self, namespace: &str, name: &str, lookup: SecretLookup) {
        put(&mut self.secrets, namespace, name, lookup);
    }

    /// The text value a reference points to.
    pub fn value(&self, r: &SecretKeyRef) -> Result<&str, ResolveError> {
        let namespace = || r.namespace.clone();
        let name = || r.name.clone();
        match get(&self.secrets, &r.namespace, &r.name) {
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
