//! The Secret an ExternalSecret writes: who owns it, what happens when
//! remote values go, and the template that shapes its data and metadata.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who owns the target Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CreationPolicy {
    /// vaultsync creates the Secret and sets the ExternalSecret as its owner,
    /// so deleting the ExternalSecret deletes the Secret.
    #[default]
    Owner,
    /// vaultsync creates the Secret without an owner reference.
    Orphan,
    /// vaultsync only merges its keys into a Secret that already exists.
    Merge,
    /// vaultsync writes nothing.
    None,
    /// As in ESO: vaultsync creates the Secret when it is missing (without
    /// an owner reference) and otherwise merges its keys into it as `Merge`
    /// does; the Secret stays when the ExternalSecret is deleted.
    CreateOrMerge,
}

impl CreationPolicy {
    /// `Merge` and `CreateOrMerge`: the writer claims only its own keys of
    /// a Secret that others may share.
    pub fn merges(self) -> bool {
        matches!(self, CreationPolicy::Merge | CreationPolicy::CreateOrMerge)
    }
}

/// What happens to the Secret when remote secrets or keys disappear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the Secret as it is and report the error.
    #[default]
    Retain,
    /// Remove the keys whose remote values are gone; delete the Secret when
    /// all are gone (only a Secret vaultsync created).
    Delete,
    /// Remove the keys whose remote values are gone; keep the Secret.
    Merge,
}

/// The Secret vaultsync writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Name of the Secret. Default: the ExternalSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Owner` (default), `Orphan`, `Merge` or `None`.
    #[serde(default)]
    pub creation_policy: CreationPolicy,
    /// When a remote secret or one of its keys disappears: `Retain`
    /// (default: keep the Secret, report the error), `Delete` or `Merge`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Make the Secret immutable once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Shape of the Secret beyond its data: type, labels, annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplate>,
    /// Write another kind than a Secret (ESO's generic target), e.g. a
    /// ConfigMap or a custom resource, named `name` in this namespace. Only
    /// the kinds the operator was started with (`--generic-target`, chart
    /// `genericTargets`, off by default) are written; any other is refused
    /// with `Ready=False`. A ConfigMap gets the values in `data` (or
    /// `binaryData` for a value that is not UTF-8); another kind in
    /// `spec.data`, or where `template` puts them. The values are then
    /// stored in the clear: mind who may read that kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<TargetManifest>,
}

/// The kind of object `target.manifest` writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetManifest {
    /// API version of the target, e.g. `v1` for a ConfigMap or
    /// `argoproj.io/v1alpha1`.
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Kind of the target, e.g. `ConfigMap`.
    #[schemars(length(min = 1))]
    pub kind: String,
}

impl TargetManifest {
    /// `apiVersion/kind`, e.g. `v1/ConfigMap`, as `--generic-target` takes it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.api_version, self.kind)
    }
}

/// How the written Secret looks: its type, labels and annotations, and
/// optionally data computed by Go templates from the fetched values.
///
/// Never a ServiceAccount token Secret: kube-controller-manager fills one
/// in with a non-expiring API token, which would hand whoever writes an
/// ExternalSecret the rights of any ServiceAccount of the namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.type) || self.type != 'kubernetes.io/service-account-token'").message("type kubernetes.io/service-account-token is refused: vaultsync never writes Secrets that Kubernetes fills with API tokens"))]
#[x_kube(validation = Rule::new("!has(self.metadata) || !has(self.metadata.annotations) || !('kubernetes.io/service-account.name' in self.metadata.annotations || 'kubernetes.io/service-account.uid' in self.metadata.annotations)").message("annotations kubernetes.io/service-account.name and .uid are refused: vaultsync never writes Secrets that Kubernetes fills with API tokens"))]
pub struct SecretTemplate {
    /// Secret type, e.g. `kubernetes.io/tls` or
    /// `kubernetes.io/dockerconfigjson`. Default `Opaque`. The API server
    /// checks that the keys the type needs are present.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Template engine. Only `v2` (ESO's current engine: Go text/template
    /// with sprig functions, values seen as strings) exists.
    #[serde(default)]
    pub engine_version: TemplateEngineVersion,
    /// `Replace` (default): when templates produce data, the Secret holds
    /// only the keys they produce. `Merge`: the fetched keys are kept and
    /// the templated keys are added on top (a templated key wins).
    #[serde(default)]
    pub merge_policy: TemplateMergePolicy,
    /// Labels and annotations added to the Secret. Their values are
    /// templates too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Secret key to Go template, e.g. `{{ .username }}:{{ .password }}`.
    /// `.name` is the fetched value of key `name` (from data and dataFrom)
    /// as a string. These win over keys from templateFrom.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[-._a-zA-Z0-9]+$'))").message("template.data keys must be valid Secret keys: letters, digits, '-', '_' and '.'"))]
    pub data: BTreeMap<String, String>,
    /// Templates kept elsewhere: in a ConfigMap, in a Secret, or inline as
    /// a literal. Applied in order, before `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
}

/// The template engine version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplateEngineVersion {
    /// Go text/template with sprig functions.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// How templated data combines with the fetched data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplateMergePolicy {
    /// Only the templated keys are written (when templates produce data).
    #[default]
    Replace,
    /// The fetched keys are written too; templated keys win.
    Merge,
}

/// One source of templates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.literal) ? 1 : 0) == 1").message("each templateFrom entry needs exactly one of configMap, secret or literal"))]
pub struct TemplateFrom {
    /// Templates stored in a ConfigMap in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Templates stored in a Secret in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// A template whose output is a YAML map of `key: value`, e.g.
    /// `"{{ .user }}-url: postgres://{{ .user }}@db"`; each entry becomes a
    /// key of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// `None` (default), `Base64`, `Base64URL` or `Auto` (ESO's): each value
    /// this entry renders is decoded so, after rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<crate::DecodingStrategy>,
    /// Where the output goes: `Data` (default), `Labels` or `Annotations`.
    #[serde(default)]
    pub target: TemplateTarget,
}

/// A ConfigMap or Secret holding templates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateRef {
    /// Name of the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The keys that hold templates.
    #[schemars(length(min = 1))]
    pub items: Vec<TemplateRefItem>,
}

/// One key of a ConfigMap or Secret that holds a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// The key in the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// `Values` (default): the output is the value of the key of the same
    /// name. `KeysAndValues`: the output is a YAML map of `key: value`, each
    /// entry a key of the target.
    #[serde(default)]
    pub template_as: TemplateScope,
}

/// How a template's output is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplateScope {
    /// The output is one value, stored under the template's key.
    #[default]
    Values,
    /// The output is a YAML map of keys to values.
    KeysAndValues,
}

/// Where a template's output goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplateTarget {
    /// The Secret's data.
    #[default]
    Data,
    /// The Secret's labels.
    Labels,
    /// The Secret's annotations.
    Annotations,
}

/// Labels, annotations and finalizers of the written Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Finalizers added to the Secret (as written, not templated), as in
    /// ESO: whoever put one there must remove it before the Secret can go.
    /// One taken out of this list is taken off the Secret at the next
    /// write. Not added to a Secret already being deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub finalizers: Vec<String>,
}
