use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;
use crate::external_secret::ExternalSecretSpec;

/// Label on every ExternalSecret a ClusterExternalSecret created, naming it.
pub const CLUSTER_EXTERNAL_SECRET_LABEL: &str = "vaultsync.dev/cluster-external-secret";

/// Fans one ExternalSecret spec out to every selected namespace.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "vaultsync.dev",
    version = "v1alpha1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    shortname = "vces",
    category = "vaultsync",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh","type":"string","jsonPath":".spec.externalSecretSpec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","priority":1,"jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.namespaceSelectors) || has(self.namespaceSelector) || has(self.namespaces)").message("select namespaces with namespaceSelectors (or namespaceSelector), namespaces, or both"))]
pub struct ClusterExternalSecretSpec {
    /// The ExternalSecret to create in each selected namespace.
    pub external_secret_spec: ExternalSecretSpec,
    /// Name of the ExternalSecrets. Default: this object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Extra labels and annotations of the ExternalSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_metadata: Option<ExternalSecretMetadata>,
    /// Namespaces matching any of these selectors are selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selectors: Option<Vec<LabelSelector>>,
    /// One more selector, counted as another entry of `namespaceSelectors`
    /// (ESO's older field, deprecated there in favour of the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces selected by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// How often to re-check the selected namespaces and the created
    /// ExternalSecrets, as a Go duration. Default `1m`. Changes to
    /// namespaces and to the created ExternalSecrets are also watched and
    /// acted on at once, so this is a safety net; `0` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"))]
    pub refresh_time: Option<String>,
}

/// Labels and annotations added to each created ExternalSecret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalSecretMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A namespace where the ExternalSecret could not be provisioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailedNamespace {
    /// The namespace.
    pub namespace: String,
    /// Why, for a person.
    pub reason: String,
}

/// Observed state of a ClusterExternalSecret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// `Ready` is True when every selected namespace is provisioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Namespaces holding the ExternalSecret, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// Selected namespaces where it could not be written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<FailedNamespace>,
    /// Last generation whose spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Name of the ExternalSecrets created (`spec.externalSecretName`, else
    /// this object's name), as ESO reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
}
