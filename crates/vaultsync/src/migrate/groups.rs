//! Which kinds exist in which group. vaultsync's kinds carry ESO's kind
//! names, so moving an object between the groups is a change of
//! `apiVersion`; this module is the one table of that mapping.

use serde_json::Value;

/// ESO's main group and version.
pub const ESO_API_VERSION: &str = "external-secrets.io/v1";
/// ESO's generators.
pub const ESO_GENERATORS_API_VERSION: &str = "generators.external-secrets.io/v1alpha1";
/// vaultsync's main group and version.
pub const VAULTSYNC_API_VERSION: &str = "vaultsync.dev/v1alpha1";
/// vaultsync's generators.
pub const VAULTSYNC_GENERATORS_API_VERSION: &str = vaultsync_api::GENERATOR_API_VERSION;

/// A kind both groups have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ExternalSecret,
    SecretStore,
    ClusterSecretStore,
    ClusterExternalSecret,
    VaultDynamicSecret,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::SecretStore,
        Kind::ClusterSecretStore,
        Kind::ExternalSecret,
        Kind::ClusterExternalSecret,
        Kind::VaultDynamicSecret,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ExternalSecret => "ExternalSecret",
            Kind::SecretStore => "SecretStore",
            Kind::ClusterSecretStore => "ClusterSecretStore",
            Kind::ClusterExternalSecret => "ClusterExternalSecret",
            Kind::VaultDynamicSecret => "VaultDynamicSecret",
        }
    }

    pub fn eso_api_version(self) -> &'static str {
        match self {
            Kind::VaultDynamicSecret => ESO_GENERATORS_API_VERSION,
            _ => ESO_API_VERSION,
        }
    }

    pub fn vaultsync_api_version(self) -> &'static str {
        match self {
            Kind::VaultDynamicSecret => VAULTSYNC_GENERATORS_API_VERSION,
            _ => VAULTSYNC_API_VERSION,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::ExternalSecret => "externalsecrets",
            Kind::SecretStore => "secretstores",
            Kind::ClusterSecretStore => "clustersecretstores",
            Kind::ClusterExternalSecret => "clusterexternalsecrets",
            Kind::VaultDynamicSecret => "vaultdynamicsecrets",
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::ClusterSecretStore | Kind::ClusterExternalSecret)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a document is, as far as these commands care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// A kind of ESO's group that vaultsync has.
    Eso(Kind),
    /// A kind of vaultsync's group.
    Vaultsync(Kind),
    /// A kind of ESO's groups that vaultsync has no counterpart for
    /// (PushSecret, the other generators, ...): its `apiVersion` and `kind`.
    EsoOnly(String, String),
    /// Anything else: passed through, never checked.
    Other,
}

fn is_eso_group(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default();
    group == "external-secrets.io" || group == "generators.external-secrets.io"
}

/// Sorts a document by its `apiVersion` and `kind`. Only ESO's `v1` (and
/// the generators' `v1alpha1`) counts as ESO's: the field names of older
/// versions (`v1beta1`) differ, so those are named as ESO-only.
pub fn classify(doc: &Value) -> Classified {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind_name = doc["kind"].as_str().unwrap_or_default();
    match Kind::from_name(kind_name) {
        Some(kind) if api_version == kind.eso_api_version() => Classified::Eso(kind),
        Some(kind) if api_version == kind.vaultsync_api_version() => Classified::Vaultsync(kind),
        _ if is_eso_group(api_version) => Classified::EsoOnly(api_version.to_owned(), kind_name.to_owned()),
        _ => Classified::Other,
    }
}

/// `KIND namespace/name` (or `KIND name` without a namespace), how both
/// commands name an object.
pub fn display_name(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap_or("?");
    let name = doc["metadata"]["name"].as_str().unwrap_or("<no name>");
    match doc["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_are_sorted_by_group() {
        let doc = |v: &str, k: &str| json!({"apiVersion": v, "kind": k});
        assert_eq!(classify(&doc(ESO_API_VERSION, "ExternalSecret")), Classified::Eso(Kind::ExternalSecret));
        assert_eq!(
            classify(&doc(ESO_GENERATORS_API_VERSION, "VaultDynamicSecret")),
            Classified::Eso(Kind::VaultDynamicSecret)
        );
        assert_eq!(classify(&doc(VAULTSYNC_API_VERSION, "SecretStore")), Classified::Vaultsync(Kind::SecretStore));
        assert_eq!(
            classify(&doc(ESO_API_VERSION, "PushSecret")),
            Classified::EsoOnly(ESO_API_VERSION.into(), "PushSecret".into())
        );
        assert!(matches!(classify(&doc("external-secrets.io/v1beta1", "ExternalSecret")), Classified::EsoOnly(..)));
        assert_eq!(classify(&doc("v1", "Secret")), Classified::Other);
        // A generator kind in the main group is not a kind of ESO's.
        assert!(matches!(classify(&doc(ESO_API_VERSION, "VaultDynamicSecret")), Classified::EsoOnly(..)));
    }
}
