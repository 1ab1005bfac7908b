//! Who a Vault client is for and what it logs in with: the keys of the
//! client cache and of the per-store metrics. A leaf: it imports nothing
//! from the rest of the crate, so every module may name a store.

use std::fmt;

use vaultsync_vault::{Auth, ServerConfig};

/// A store, by kind and name: a SecretStore has a namespace, a
/// ClusterSecretStore none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StoreId {
    pub namespace: Option<String>,
    pub name: String,
    /// A VaultDynamicSecret's provider rather than a store.
    pub generator: bool,
}

impl StoreId {
    pub fn secret_store(namespace: &str, name: &str) -> Self {
        Self { namespace: Some(namespace.to_owned()), name: name.to_owned(), generator: false }
    }

    pub fn cluster_store(name: &str) -> Self {
        Self { namespace: None, name: name.to_owned(), generator: false }
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.namespace, self.generator) {
            (Some(ns), true) => write!(f, "VaultDynamicSecret {ns}/{}", self.name),
            (Some(ns), false) => write!(f, "SecretStore {ns}/{}", self.name),
            (None, _) => write!(f, "ClusterSecretStore {}", self.name),
        }
    }
}

/// Whose client a cached Vault client is: a store's, or, for a
/// ClusterSecretStore whose credentials resolve in each ExternalSecret's
/// namespace, that store's in one namespace. One client (one login) each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientOwner {
    pub store: StoreId,
    pub namespace: Option<String>,
}

impl fmt::Display for ClientOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} for namespace {ns}", self.store),
            None => write!(f, "{}", self.store),
        }
    }
}

/// Everything needed to build a Vault client, plus a fingerprint that
/// changes whenever the server settings, the credential identity or the
/// credential material change.
pub(crate) struct Credentials {
    pub server: ServerConfig,
    pub auth: Auth,
    pub fingerprint: String,
    /// The client's place in the cache: a new fingerprint for the same
    /// owner replaces (and closes) the old client.
    pub owner: ClientOwner,
}
