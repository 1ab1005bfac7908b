//! The `target.manifest` kinds resolved through discovery so far, shared
//! by both groups' contexts.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::core::ApiResource;

/// Keyed by `apiVersion/Kind`. A failed lookup is not kept: its CRD may
/// be installed later.
#[derive(Default)]
pub(crate) struct TargetKinds {
    resolved: Mutex<HashMap<String, ApiResource>>,
}

impl TargetKinds {
    pub fn get(&self, key: &str) -> Option<ApiResource> {
        self.resolved.lock().expect("target kinds lock").get(key).cloned()
    }

    pub fn insert(&self, key: String, resource: ApiResource) {
        self.resolved.lock().expect("target kinds lock").insert(key, resource);
    }
}
