//! Custom resource types of vaultsync (`vaultsync.dev/v1alpha1`).
//!
//! Field names follow the External Secrets Operator's `external-secrets.io/v1`
//! Vault provider, so a manifest moves over by changing its `apiVersion`.
//! This crate holds types and schemas only; it performs no I/O.
#![forbid(unsafe_code)]

pub mod checks;
mod cluster_external_secret;
mod common;
mod duration;
mod external_secret;
mod generator;
mod store;
mod vault_path;

pub use cluster_external_secret::*;
pub use common::{Condition, ConditionStatus, SecretKeySelector};
pub use duration::{DurationError, parse_duration};
pub use external_secret::*;
pub use generator::*;
pub use store::*;

/// API group of every vaultsync kind.
pub const GROUP: &str = "vaultsync.dev";
/// API version of every vaultsync kind.
pub const VERSION: &str = "v1alpha1";
/// Field manager used for every server-side apply vaultsync performs.
pub const FIELD_MANAGER: &str = "vaultsync";

/// Every CRD as `(file name, YAML)`, exactly as `vaultsync crdgen` writes
/// them into `crds/`.
pub fn crds_yaml() -> Result<Vec<(String, String)>, serde_saphyr::SerializeError> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            serde_saphyr::to_string(&crd).map(|yaml| (name, yaml))
        })
        .collect()
}

/// All CustomResourceDefinitions, in the order `crdgen` writes them.
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![
        SecretStore::crd(),
        ClusterSecretStore::crd(),
        ExternalSecret::crd(),
        ClusterExternalSecret::crd(),
        VaultDynamicSecret::crd(),
    ]
}

#[cfg(test)]
mod tests {
    /// `crds/` is what users install; it must match the types.
    #[test]
    fn crds_directory_is_fresh() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
        for (name, yaml) in super::crds_yaml().expect("CRDs encode") {
            let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
            assert!(on_disk == yaml, "crds/{name} is stale: run `make crds` and commit the result");
        }
    }

    /// ExternalSecret declares ESO's selectable fields, so
    /// `kubectl get externalsecrets --field-selector spec.target.name=db`
    /// works as it does with ESO.
    #[test]
    fn external_secret_declares_esos_selectable_fields() {
        let crd =
            super::crds().into_iter().find(|c| c.spec.names.kind == "ExternalSecret").expect("ExternalSecret CRD");
        for version in &crd.spec.versions {
            let fields: Vec<&str> = version.selectable_fields.iter().flatten().map(|f| f.json_path.as_str()).collect();
            assert_eq!(
                fields,
                [
                    ".spec.secretStoreRef.name",
                    ".spec.secretStoreRef.kind",
                    ".spec.target.name",
                    ".spec.refreshInterval"
                ],
                "version {}",
                version.name
            );
        }
    }
}
