//! Asking the operator for a read now, as users do: an annotation on the
//! ExternalSecret whose value changes.

use anyhow::Result;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::TestEnv;

impl TestEnv {
    /// Sets vaultsync's force-sync annotation of ExternalSecret `name` to
    /// `value` (a new value each time, or nothing happens).
    pub async fn force_sync(&self, name: &str, value: &str) -> Result<()> {
        self.force_sync_with(name, "vaultsync.dev/force-sync", value).await
    }

    /// The same through another annotation (ESO's plain `force-sync`, which
    /// Argo CD's refresh action sets).
    pub async fn force_sync_with(&self, name: &str, annotation: &str, value: &str) -> Result<()> {
        let patch = json!({"metadata": {"annotations": {annotation: value}}});
        self.external_secrets().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }
}
