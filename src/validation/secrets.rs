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

/// The outcome of looking up every Secret a pipeline references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedSecrets {
    secrets: BTreeMap<(String, String), SecretLookup>,
}

impl ResolvedSecrets {
    /// Look up each distinct Secret of `refs` once.
    pub async fn resolve<'r>(
        refs: impl IntoIterator<Item = &'r SecretKeyRef>,
        resolver: &impl SecretResolver,
    ) -> Self {
        let mut resolved = ResolvedSecrets::default();
        for r in refs {
            let id = (r.namespace.clone(), r.name.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = resolved.secrets.entry(id) {
                slot.insert(resolver.lookup(&r.namespace, &r.name).await);
            }
        }
        resolved
    }

    pub fn insert(&mut self, namespace: &str, name: &str, lookup: SecretLookup) {
        self.secrets
            .insert((namespace.to_string(), name.to_string()), lookup);
    }

    /// The text value a reference points to.
    pub fn value(&self, r: &SecretKeyRef) -> Result<&str, ResolveError> {
        let namespace = r.namespace.clone();
        let name = r.name.clone();
        match self.secrets.get(&(r.namespace.clone(), r.name.clone())) {
            None => Err(ResolveError::NotLookedUp { namespace, name }),
            Some(SecretLookup::NotFound) => Err(ResolveError::SecretNotFound { namespace, name }),
            Some(SecretLookup::Failed(reason)) => Err(ResolveError::LookupFailed {
                namespace,
                name,
                reason: reason.clone(),
            }),
            Some(SecretLookup::Found(data)) => {
                let key = r.key.clone();
                let bytes = data.get(&r.key).ok_or_else(|| ResolveError::KeyNotFound {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    key: key.clone(),
                })?;
                std::str::from_utf8(bytes).map_err(|_| ResolveError::NotUtf8 {
                    namespace,
                    name,
                    key,
                })
            }
        }
    }
}

/// Secrets held in memory, e.g. read from manifests by the CLI.
#[derive(Clone, Debug, Default)]
pub struct InMemorySecrets {
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
}

impl InMemorySecrets {
    pub fn insert(&mut self, namespace: &str, name: &str, data: BTreeMap<String, Vec<u8>>) {
        self.secrets
            .insert((namespace.to_string(), name.to_string()), data);
    }
}

impl SecretResolver for InMemorySecrets {
    async fn lookup(&self, namespace: &str, name: &str) -> SecretLookup {
        match self.secrets.get(&(namespace.to_string(), name.to_string())) {
            Some(data) => SecretLookup::Found(data.clone()),
            None => SecretLookup::NotFound,
        }
    }
}
