//! Where the Secret's values come from: one key per `data` entry
//! (`remoteRef`), or many per `dataFrom` entry (a path, a search, or a
//! generator), with their decoding, conversion and rewrites.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vault_path::{
    FOLDER_MESSAGE, FOLDER_RULE, KEY_MESSAGE, KEY_RULE, MAX_PATH, RESERVED_SEGMENT_MESSAGE, RESERVED_SEGMENT_RULE,
};

/// One key of the Secret and where its value comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_key: String,
    /// The remote value.
    pub remote_ref: RemoteRef,
    /// Read this key from another store than `spec.secretStoreRef` (same
    /// rules: a ClusterSecretStore's namespace conditions apply, and in
    /// ESO's group the store must be of this operator's class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// The store one `data` entry is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreSourceRef {
    /// The store.
    pub store_ref: crate::SecretStoreRef,
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
    /// `Ignore` (default): values may hold NUL bytes (binary data). `Fail`:
    /// a value that holds one, after decoding, fails the sync, naming the
    /// key; for values meant as text, where a NUL byte means a wrong
    /// encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// Whether a fetched value may contain NUL bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NullBytePolicy {
    /// Allowed: written as they are.
    #[default]
    Ignore,
    /// The sync fails and the Secret keeps what it held.
    Fail,
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
#[x_kube(validation = Rule::new("(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) + (has(self.sourceRef) && has(self.sourceRef.generatorRef) ? 1 : 0) == 1").message("each dataFrom entry needs exactly one of extract, find or sourceRef.generatorRef"))]
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
    /// Another store to `extract` or `find` from than `spec.secretStoreRef`
    /// (`storeRef`), or values issued by a generator instead of read from a
    /// store (`generatorRef`), e.g. a database credential from a
    /// `VaultDynamicSecret`: every key of what it issues becomes a key of
    /// the Secret, and the credential is kept while its lease is valid (see
    /// `status.leases`), not issued anew at each refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<crate::generator::StoreGeneratorSourceRef>,
    /// Renames (or merges) the keys this entry produces, step by step in
    /// order (at most 100 steps; the bound lets the API server check each
    /// step's rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub rewrite: Vec<Rewrite>,
}

/// Which remote secrets `dataFrom.find` selects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.path) || has(self.name) || has(self.tags)").message("find needs a path, a name regexp or tags"))]
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
    /// Only secrets whose KV v2 `custom_metadata` has every one of these
    /// keys with these values (ESO's `find.tags`; each candidate's metadata
    /// is read, which needs `read` on `<mount>/metadata/...`). As in ESO,
    /// ignored when `name` is set, and refused on a KV v1 mount.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `None` (default), `Base64`, `Base64URL` or `Auto`, applied to each
    /// value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// `Default` (keys as found) or `Unicode` (`_U0041_`-style escapes in
    /// the keys become the characters they name). As in ESO, applied only
    /// when the entry has no `rewrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// `Ignore` (default) or `Fail`: as `remoteRef.nullBytePolicy`, for
    /// each value found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// A regular expression on secret paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FindName {
    /// RE2-style regular expression, e.g. `^db-.*`.
    #[schemars(length(min = 1))]
    pub regexp: String,
}

/// One step of `dataFrom[].rewrite`: set exactly one of `regexp`,
/// `transform` or `merge`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.regexp) ? 1 : 0) + (has(self.transform) ? 1 : 0) + (has(self.merge) ? 1 : 0) == 1").message("each rewrite entry needs exactly one of regexp, transform or merge"))]
pub struct Rewrite {
    /// Replace what `source` matches in each key with `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// Rename each key to what `template` renders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
    /// Merge the values (each a JSON object) into one: their fields become
    /// the keys (`strategy: Extract`), or one key `into` holds them as JSON
    /// (`strategy: JSON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<RewriteMerge>,
}

/// A Go template renaming each key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RewriteTransform {
    /// Go template (the functions of `target.template`) rendered once per
    /// key, with `.value` the key's name; what it renders is the new name,
    /// e.g. `{{ .value | upper }}`.
    pub template: String,
}

/// Merges values that are JSON objects, as ESO's `rewrite[].merge`.
/// Values are taken in key order, the `priority` keys last in their given
/// order; a later value's field wins over an earlier one's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// The key that receives the merged JSON object. Required if strategy
    /// is `JSON`, ignored otherwise.
    #[serde(default)]
    pub into: String,
    /// Keys merged last, in this order, so that their fields win conflicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// `Strict` (default: a `priority` key missing from the data fails the
    /// sync) or `IgnoreNotFound` (it is skipped).
    #[serde(default)]
    pub priority_policy: RewriteMergePriorityPolicy,
    /// `Error` (default: a field found in more than one value fails the
    /// sync, naming the fields) or `Ignore` (the later value wins).
    #[serde(default)]
    pub conflict_policy: RewriteMergeConflictPolicy,
    /// `Extract` (default: each field of the merged object becomes a key;
    /// strings as they are, anything else as JSON) or `JSON` (the merged
    /// object is written as JSON to `into`, beside the keys merged).
    #[serde(default)]
    pub strategy: RewriteMergeStrategy,
}

/// What a `priority` key missing from the data does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RewriteMergePriorityPolicy {
    /// Fails the sync.
    #[default]
    Strict,
    /// Skipped.
    IgnoreNotFound,
}

/// What a field found in more than one merged value does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RewriteMergeConflictPolicy {
    /// Fails the sync, naming the fields.
    #[default]
    Error,
    /// The later value's field wins.
    Ignore,
}

/// Where the merged object goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RewriteMergeStrategy {
    /// Each field of the merged object becomes a key.
    #[default]
    Extract,
    /// The merged object, as JSON, goes to the key `into`.
    #[serde(rename = "JSON")]
    Json,
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

impl ExternalSecretData {
    /// The store this entry names for itself, if any.
    pub fn store(&self) -> Option<&crate::SecretStoreRef> {
        self.source_ref.as_ref().map(|s| &s.store_ref)
    }
}

impl ExternalSecretDataFrom {
    /// The generator that issues this entry's values, if any.
    pub fn generator(&self) -> Option<&crate::GeneratorRef> {
        self.source_ref.as_ref()?.generator_ref.as_ref()
    }

    /// The store this entry names for itself, if any.
    pub fn store(&self) -> Option<&crate::SecretStoreRef> {
        self.source_ref.as_ref()?.store_ref.as_ref()
    }
}
