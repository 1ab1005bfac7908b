//! The ExternalSecret kind: its spec (which store, how often, what to
//! restart), its condition reasons and force-sync annotations. The rest of
//! its types live by job: [`target`] (the Secret written and its template),
//! [`data`] (where each value comes from), [`status`] (what was observed
//! and the leases issued) and [`rollout`] (workloads restarted on change).

mod data;
mod rollout;
mod status;
mod sync_windows;
mod target;

pub use data::*;
pub use rollout::*;
pub use status::*;
pub use sync_windows::*;
pub use target::*;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition reason: the Secret matches the remote values.
pub const REASON_SYNCED: &str = "SecretSynced";
/// Condition reason: the last sync failed; the existing Secret was kept.
pub const REASON_SYNC_ERROR: &str = "SecretSyncedError";
/// Condition reason: the target Secret was deleted by policy.
pub const REASON_DELETED: &str = "SecretDeleted";
/// [`REASON_SYNCED`] for a `target.manifest` object (ESO's reasons).
pub const REASON_RESOURCE_SYNCED: &str = "ResourceSynced";
/// [`REASON_SYNC_ERROR`] for a `target.manifest` object.
pub const REASON_RESOURCE_SYNC_ERROR: &str = "ResourceSyncedError";
/// [`REASON_DELETED`] for a `target.manifest` object.
pub const REASON_RESOURCE_DELETED: &str = "ResourceDeleted";

impl ExternalSecret {
    /// The condition reasons of this ExternalSecret's target: (synced,
    /// sync error, deleted), ESO's `Resource*` ones for `target.manifest`.
    pub fn reasons(&self) -> (&'static str, &'static str, &'static str) {
        if self.spec.target.manifest.is_some() {
            (REASON_RESOURCE_SYNCED, REASON_RESOURCE_SYNC_ERROR, REASON_RESOURCE_DELETED)
        } else {
            (REASON_SYNCED, REASON_SYNC_ERROR, REASON_DELETED)
        }
    }
}

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
    printcolumn = r#"{"name":"StoreType","type":"string","priority":1,"jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","priority":1,"jsonPath":".status.refreshTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // ESO's field selectors, so `kubectl get ... --field-selector` works the same.
    selectable = ".spec.secretStoreRef.name",
    selectable = ".spec.secretStoreRef.kind",
    selectable = ".spec.target.name",
    selectable = ".spec.refreshInterval"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretStoreRef) || (self.data.all(d, has(d.sourceRef)) && self.dataFrom.all(f, has(f.sourceRef)))").message("secretStoreRef is required unless every entry names its own source (data[].sourceRef.storeRef, dataFrom[].sourceRef)"))]
#[x_kube(validation = Rule::new("size(self.data) + size(self.dataFrom) > 0 || (has(self.target) && has(self.target.template) && (has(self.target.template.data) || has(self.target.template.templateFrom)))").message("set at least one entry in data or dataFrom, or target.template.data or templateFrom"))]
pub struct ExternalSecretSpec {
    /// The store to read `data`, `dataFrom[].extract` and `dataFrom[].find`
    /// from, unless an entry names its own (`sourceRef`). Not needed when
    /// every entry does.
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
    /// When periodic refreshes may run (ESO's `syncWindows`): cron-scheduled
    /// windows that allow or deny them. Unset: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<SyncWindows>,
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

/// The annotation ESO's docs, Argo CD's ESO refresh action and migrating
/// users' automation set (`kubectl annotate es NAME force-sync=$(date +%s)`;
/// ESO refreshes on any annotation change); honoured as well.
pub const ESO_FORCE_SYNC_ANNOTATION: &str = "force-sync";

/// ESO's own force-sync annotation (ESO v2.9's `AnnotationForceSync`);
/// honoured as well, and set on ESO-group ExternalSecrets vaultsync hands
/// back to ESO.
pub const ESO_GROUP_FORCE_SYNC_ANNOTATION: &str = "external-secrets.io/force-sync";

/// Annotation on a vaultsync.dev ExternalSecret that takes over a Secret
/// an ESO-group ExternalSecret left behind (value: `external-secrets.io`):
/// the last step of moving from ESO's group to vaultsync's without the
/// Secret ever being deleted (docs/migration.md).
pub const ADOPT_ANNOTATION: &str = "vaultsync.dev/adopt";

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

impl ExternalSecretSpec {
    /// Whether an entry reads from `secretStoreRef` (names no source of
    /// its own).
    pub fn uses_default_store(&self) -> bool {
        self.data.iter().any(|d| d.source_ref.is_none()) || self.data_from.iter().any(|f| f.source_ref.is_none())
    }

    /// Every store this spec names, each once: `secretStoreRef` and the
    /// stores entries name for themselves. All of them must be served by
    /// this operator (as in ESO, where one store of another class makes
    /// the whole ExternalSecret another controller's).
    pub fn store_refs(&self) -> Vec<&SecretStoreRef> {
        let default = self.secret_store_ref.as_ref();
        let mut refs: Vec<&SecretStoreRef> = Vec::new();
        let own = self.data.iter().filter_map(|d| d.store()).chain(self.data_from.iter().filter_map(|f| f.store()));
        for store in default.into_iter().chain(own) {
            if !refs.contains(&store) {
                refs.push(store);
            }
        }
        refs
    }

    /// Whether this spec reads from the store `kind`/`name`.
    pub fn uses_store(&self, kind: StoreKind, name: &str) -> bool {
        self.store_refs().iter().any(|r| r.kind == kind && r.name == name)
    }
}

impl ExternalSecret {
    /// Name of the Secret (or `target.manifest` object) this ExternalSecret
    /// writes.
    pub fn target_name(&self) -> &str {
        self.spec.target.name.as_deref().or(self.metadata.name.as_deref()).unwrap_or_default()
    }

    /// Kind of what this ExternalSecret writes: `Secret`, or
    /// `target.manifest`'s kind.
    pub fn target_kind(&self) -> &str {
        self.spec.target.manifest.as_ref().map_or("Secret", |m| m.kind.as_str())
    }

    /// The force-sync request this object carries: the values of the
    /// force-sync annotations; a change of any asks for a fresh read.
    pub fn force_sync_request(&self) -> Option<String> {
        let annotations = self.metadata.annotations.as_ref()?;
        let values = [FORCE_SYNC_ANNOTATION, ESO_FORCE_SYNC_ANNOTATION, ESO_GROUP_FORCE_SYNC_ANNOTATION]
            .map(|key| annotations.get(key).map_or("", String::as_str));
        values.iter().any(|v| !v.is_empty()).then(|| values.join("|"))
    }
}
