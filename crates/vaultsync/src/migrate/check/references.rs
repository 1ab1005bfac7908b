//! What an ExternalSecret depends on elsewhere in the input: a store whose
//! provider vaultsync lacks keeps the ExternalSecret with ESO too.

use std::collections::HashMap;

use serde_json::Value;

use super::finding::Finding;
use super::provider::other_providers;
use crate::migrate::groups::{Classified, Kind, classify};

/// Stores of the input whose provider vaultsync lacks, by kind,
/// namespace (none for a ClusterSecretStore) and name.
#[derive(Default)]
pub struct Stores {
    unsupported: HashMap<(Kind, Option<String>, String), Vec<String>>,
}

impl Stores {
    pub fn index(documents: &[Value]) -> Stores {
        let mut stores = Stores::default();
        for doc in documents {
            let Classified::Eso(kind @ (Kind::SecretStore | Kind::ClusterSecretStore)) = classify(doc) else {
                continue;
            };
            let others = other_providers(&doc["spec"]["provider"]);
            if others.is_empty() {
                continue;
            }
            // A manifest without a namespace lands in the current one, as
            // its ExternalSecrets do: both count as "".
            let namespace = kind.namespaced().then(|| doc["metadata"]["namespace"].as_str().unwrap_or("").to_owned());
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            stores.unsupported.insert((kind, namespace, name), others);
        }
        stores
    }

    /// The finding for an ExternalSecret spec (at `at`) whose store is one
    /// of those. `namespace` is the ExternalSecret's (`""` when the manifest
    /// names none); `None` for a ClusterExternalSecret's, which lands in
    /// many namespaces, so only its ClusterSecretStore is looked up.
    pub fn check(&self, spec: &Value, at: &str, namespace: Option<&str>) -> Option<Finding> {
        let reference = spec.get("secretStoreRef")?;
        let name = reference["name"].as_str()?.to_owned();
        let cluster = reference["kind"].as_str() == Some("ClusterSecretStore");
        let key = if cluster {
            (Kind::ClusterSecretStore, None, name)
        } else {
            (Kind::SecretStore, Some(namespace?.to_owned()), name)
        };
        let providers = self.unsupported.get(&key)?;
        Some(Finding::fail(
            format!(
                "{at}.secretStoreRef names {} {:?}, whose provider {} vaultsync does not support",
                key.0.name(),
                key.2,
                providers.join(", ")
            ),
            "keep this ExternalSecret with ESO, with its store",
        ))
    }
}
