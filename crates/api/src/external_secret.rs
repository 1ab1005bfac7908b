use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;
use crate::vault_path::{
    FOLDER_MESSAGE, FOLDER_RULE, KEY_MESSAGE, KEY_RULE, MAX_PATH, RESERVED_SEGMENT_MESSAGE, RESERVED_SEGMENT_RULE,
};

/// Condition reason: the Secret matches the remote values.
pub const REASON_SYNCED: &str = "SecretSynced";
/// Condition reason: the last sync failed; the existing Secret was kept.
pub const REASON_SYNC_ERROR: &str = "SecretSyncedError";
/// Condition reason: the target Secret was deleted by policy.
pub const REASON_DELETED: &str = "SecretDeleted";

/// Declares a Kubernetes Secret whose values come from a SecretStore.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "vaultsync.dev",
    version = "v1alpha1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "vses",
    category = "vaultsync",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretStoreRef) || (size(self.data) == 0 && self.dataFrom.all(f, has(f.sourceRef)))").message("secretStoreRef is required unless every value comes from a generator (dataFrom[].sourceRef)"))]
#[x_kube(validation = Rule::new("size(self.data) + size(self.dataFrom) > 0 || (has(self.target) && has(self.target.template) && (has(self.target.template.data) || has(self.target.template.templateFrom)))").message("set at least one entry in data or dataFrom, or target.template.data or templateFrom"))]
pub struct ExternalSecretSpec {
    /// The store to read `data`, `dataFrom[].extract` and `dataFrom[].find`
    /// from. Not needed when every value comes from a generator
    /// (`dataFrom[].sourceRef.generatorRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// How often to read the remote values again, as a Go duration
    /// (`30s`, `15m`, `1h`). `0` reads once. Default `1h`.
    #[serde(default = "default_refresh_interval")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"))]
    pub refresh_interval: String,
    /// When to read the remote values again: `Periodic` (default, every
    /// refreshInterval), `OnChange` (only when this spec changes or a
    /// force-sync is requested), `CreatedOnce` (write the Secret once and
    /// never update it).
    #[serde(default)]
    pub refresh_policy: RefreshPolicy,
    /// The Secret to write.
    #[serde(default)]
    pub target: ExternalSecretTarget,
    /// Single values, each written to one key of the Secret (at most 1000;
    /// the bound lets the API server check every key's path rule).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub data: Vec<ExternalSecretData>,
    /// Whole remote secrets, each of their keys written to the Secret (at
    /// most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub data_from: Vec<ExternalSecretDataFrom>,
    /// Workloads in this namespace to restart (a rolling restart, as
    /// `kubectl rollout restart` does) when the data of the Secret this
    /// ExternalSecret writes actually changes: never when a refresh, a
    /// force-sync or an operator restart finds it unchanged. At most 16.
    /// The field and its kinds are those of the Vault Secrets Operator; a
    /// vaultsync extension to ESO's API. The chart grants the rights only
    /// with `rolloutRestart.enabled=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
}

/// A workload to restart when the Secret's data changes. It is restarted
/// only if it opts in: its own annotation `vaultsync.dev/rollout-restart-from`
/// lists this ExternalSecret's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct RolloutRestartTarget {
    /// `Deployment`, `StatefulSet`, `DaemonSet` (apps/v1: the pod template
    /// gets the annotation `vaultsync.dev/restartedAt`), or `argo.Rollout`
    /// (argoproj.io/v1alpha1: its `spec.restartAt` is set).
    pub kind: RolloutRestartKind,
    /// Name of the workload, in the ExternalSecret's namespace: a
    /// Kubernetes object name (lowercase letters, digits, '-' and '.').
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(OBJECT_NAME_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
}

/// CEL twin of [`is_object_name`]: a DNS-1123 subdomain.
const OBJECT_NAME_RULE: &str = r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
const OBJECT_NAME_MESSAGE: &str = "name must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// Whether `name` is a Kubernetes object name (a DNS-1123 subdomain). Checked
/// in code as well as by CEL, because objects of ESO's group carry no CEL,
/// and a name is put into a request path as it is.
pub fn is_object_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    (1..=253).contains(&name.len()) && name.split('.').all(label_ok)
}

/// Annotation by which a workload agrees to be restarted: a comma-separated
/// list of the names of ExternalSecrets (of its namespace) that may restart
/// it. Without it, naming the workload in `rolloutRestartTargets` does
/// nothing: whoever may create an ExternalSecret is not thereby allowed to
/// restart every workload of the namespace.
pub const ROLLOUT_RESTART_FROM_ANNOTATION: &str = "vaultsync.dev/rollout-restart-from";

/// Kind of a workload to restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RolloutRestartKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    #[serde(rename = "argo.Rollout")]
    ArgoRollout,
}

/// Argo Rollouts' `Rollout` (argoproj.io/v1alpha1), the resource an
/// `argo.Rollout` target names; vaultsync does not depend on its types.
pub fn argo_rollout_resource() -> kube::core::ApiResource {
    kube::core::ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

/// Pod-template annotation set to the time of a restart vaultsync causes
/// (a change of the pod template is what rolls the pods).
pub const RESTARTED_AT_ANNOTATION: &str = "vaultsync.dev/restartedAt";

fn default_refresh_interval() -> String {
    "1h".into()
}

/// When the remote values are read again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RefreshPolicy {
    /// Every refreshInterval (plus jitter).
    #[default]
    Periodic,
    /// Only when the spec changes or a force-sync is requested.
    OnChange,
    /// Once, when the Secret does not exist; never updated afterwards.
    CreatedOnce,
}

/// Annotation whose change forces an immediate read, e.g.
/// `kubectl annotate vses NAME vaultsync.dev/force-sync=$(date +%s) --overwrite`.
pub const FORCE_SYNC_ANNOTATION: &str = "vaultsync.dev/force-sync";

/// ESO's annotation of the same meaning, which Argo CD's ESO refresh action,
/// ESO's docs and migrating users' automation set; honoured as well.
pub const ESO_FORCE_SYNC_ANNOTATION: &str = "force-sync";

/// Kind of the referenced store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StoreKind {
    #[default]
    SecretStore,
    ClusterSecretStore,
}

/// Reference to a SecretStore in the same namespace or a ClusterSecretStore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the store.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// `SecretStore` (default) or `ClusterSecretStore`.
    #[serde(default)]
    pub kind: StoreKind,
}

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

/// Labels and annotations of the written Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One key of the Secret and where its value comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_key: String,
    /// The remote value.
    pub remote_ref: RemoteRef,
}

/// How a remote value is decoded before it is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DecodingStrategy {
    /// Written as is.
    #[default]
    None,
    /// Decoded from standard base64.
    Base64,
    /// Decoded from URL-safe base64.
    #[serde(rename = "Base64URL")]
    Base64Url,
    /// Decoded from base64 when it is valid base64, else written as is.
    Auto,
}

/// A secret (and optionally one property of it) in the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRef {
    /// Path of the secret inside the store's mount, e.g. `app/db`. It must
    /// stay inside the mount: no leading or trailing `/`, no empty, `.` or
    /// `..` segments (in any encoding), no `?`, `#`, `\` or control
    /// characters, and no segment named `auth`, `sys`, `identity` or
    /// `cubbyhole` (Vault's own mounts, which behind a Vault namespace can
    /// start at any segment). When the store sets no `path`, the first
    /// segment is the mount, which must be a KV secrets engine.
    #[schemars(length(min = 1, max = MAX_PATH))]
    #[x_kube(validation = Rule::new(KEY_RULE).message(KEY_MESSAGE))]
    #[x_kube(validation = Rule::new(RESERVED_SEGMENT_RULE).message(RESERVED_SEGMENT_MESSAGE))]
    pub key: String,
    /// A property of the secret. A dotted path (`a.b.c`) walks into nested
    /// JSON; a property whose literal name contains dots wins over the path.
    /// Unset: the whole secret as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// KV v2 version to read. Unset: the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub version: Option<String>,
    /// `None` (default), `Base64`, `Base64URL` or `Auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// `Default` (keys as they are) or `Unicode` (`_U0041_`-style escapes in
    /// extracted keys become the characters they name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// `None` (default): read the secret's data. `Fetch`: read its KV v2
    /// `custom_metadata` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<MetadataPolicy>,
}

/// How extracted key names are converted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConversionStrategy {
    #[default]
    Default,
    Unicode,
}

/// Whether a remote reference reads data or KV v2 custom metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MetadataPolicy {
    #[default]
    None,
    Fetch,
}

/// Whole remote secrets: one by path (`extract`) or many by name (`find`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) + (has(self.sourceRef) ? 1 : 0) == 1").message("each dataFrom entry needs exactly one of extract, find or sourceRef"))]
pub struct ExternalSecretDataFrom {
    /// Every key of this remote secret becomes a key of the Secret; nested
    /// values are written as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<RemoteRef>,
    /// Every remote secret whose path matches becomes one key of the Secret
    /// (its path, `/` written as `_`), holding the secret as JSON. Needs the
    /// `list` capability (KV v2: on `<mount>/metadata/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<FindRef>,
    /// Values issued by a generator instead of read from the store, e.g. a
    /// database credential from a `VaultDynamicSecret`. Every key of what
    /// it issues becomes a key of the Secret. The credential is kept while
    /// its lease is valid (see `status.leases`), not issued anew at each
    /// refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<crate::generator::StoreGeneratorSourceRef>,
    /// Renames the keys this entry produces, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<Rewrite>,
}

/// Which remote secrets `dataFrom.find` selects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.path) || has(self.name)").message("find needs a path, a name regexp, or both"))]
pub struct FindRef {
    /// Only secrets under this folder of the mount (searched recursively).
    /// The same rules as `remoteRef.key`, except that it may end with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    #[x_kube(validation = Rule::new(RESERVED_SEGMENT_RULE).message(RESERVED_SEGMENT_MESSAGE))]
    pub path: Option<String>,
    /// Only secrets whose path (relative to the mount) matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// `None` (default), `Base64`, `Base64URL` or `Auto`, applied to each
    /// value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
}

/// A regular expression on secret paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FindName {
    /// RE2-style regular expression, e.g. `^db-.*`.
    #[schemars(length(min = 1))]
    pub regexp: String,
}

/// One renaming step of `dataFrom[].rewrite`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rewrite {
    /// Replace what `source` matches in each key with `target`.
    pub regexp: RewriteRegexp,
}

/// A regular-expression replacement on keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RewriteRegexp {
    /// Regular expression matched against each key.
    #[schemars(length(min = 1))]
    pub source: String,
    /// Replacement; `$1` or `${name}` refer to capture groups.
    pub target: String,
}

/// Reference to the Secret an ExternalSecret manages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretBinding {
    /// Name of the Secret.
    pub name: String,
}

/// Observed state of an ExternalSecret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// `Ready` with reason `SecretSynced`, `SecretSyncedError` or
    /// `SecretDeleted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the remote values were last read successfully (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// resourceVersion of the Secret as vaultsync last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// The Secret this ExternalSecret manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<SecretBinding>,
    /// Last generation whose spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// vaultsync extension: the credentials generators issued for this
    /// ExternalSecret that are still alive (ids and times, never values),
    /// so that a restart or a new leader neither issues new ones nor
    /// loses track of the old. Revoked when the ExternalSecret is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<IssuedLease>,
}

/// One credential a generator issued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedLease {
    /// The `dataFrom` entry it was issued for, e.g. `dataFrom[0]`.
    pub source: String,
    /// Name of the VaultDynamicSecret that issued it.
    pub generator: String,
    /// Vault's lease id (none for a certificate issued without a lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// Serial number of an issued certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When it ends as last seen: the lease's end after its last renewal,
    /// or the certificate's notAfter (RFC 3339).
    pub expires_at: String,
    /// When vaultsync acts next: renews or replaces it (`Active`), or
    /// revokes it (`Retiring`) (RFC 3339).
    pub next_action_at: String,
    /// Whether Vault lets the lease be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// The lease's TTL when issued, in seconds: what each renewal asks for.
    #[serde(default)]
    pub ttl_seconds: i64,
    /// `Active`: the credential in the Secret. `Retiring`: replaced, kept
    /// for the grace period, then revoked.
    pub state: LeaseState,
    /// Generation of the generator it was issued from: a change of the
    /// generator's spec issues a new credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_generation: Option<i64>,
}

/// Where a credential is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LeaseState {
    #[default]
    Active,
    Retiring,
}

/// Finalizer that keeps an ExternalSecret until the leases of the
/// credentials issued for it are revoked.
pub const LEASE_FINALIZER: &str = "vaultsync.dev/revoke-leases";

impl ExternalSecret {
    /// Name of the Secret this ExternalSecret writes.
    pub fn target_name(&self) -> &str {
        self.spec.target.name.as_deref().or(self.metadata.name.as_deref()).unwrap_or_default()
    }

    /// The force-sync request this object carries: the values of both
    /// force-sync annotations; a change of either asks for a fresh read.
    pub fn force_sync_request(&self) -> Option<String> {
        let annotations = self.metadata.annotations.as_ref()?;
        let ours = annotations.get(FORCE_SYNC_ANNOTATION);
        let eso = annotations.get(ESO_FORCE_SYNC_ANNOTATION);
        match (ours, eso) {
            (None, None) => None,
            (ours, eso) => Some(format!("{}|{}", ours.map_or("", String::as_str), eso.map_or("", String::as_str))),
        }
    }
}
