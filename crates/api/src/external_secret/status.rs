//! What vaultsync observed of an ExternalSecret: its conditions, the
//! Secret it manages, and the credentials generators issued for it (with
//! the finalizer that revokes them).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;

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
