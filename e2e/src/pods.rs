//! Pods as the injection tests and the listener tests make them: one
//! container, ServiceAccount `app`.

use anyhow::Result;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::TestEnv;

/// A Pod manifest of ServiceAccount `app` with these annotations and one
/// container.
pub fn pod(name: &str, annotations: Value, container: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"serviceAccountName": "app", "containers": [container]},
    })
}

impl TestEnv {
    /// ServiceAccount `app` of the test's namespace, which `pod` runs as.
    pub async fn create_app_service_account(&self) -> Result<()> {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "app"}}))?;
        Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &sa)
            .await?;
        Ok(())
    }
}

/// Whether the API server stores `manifest` with vaultsync's agent
/// injected, i.e. it called the webhook and the webhook answered (a dry run
/// stores nothing).
pub async fn injected(pods: &Api<Pod>, manifest: Value, dry_run: bool) -> Result<bool> {
    let pod: Pod = serde_json::from_value(manifest)?;
    let created = pods.create(&PostParams { dry_run, ..Default::default() }, &pod).await?;
    Ok(created.spec.and_then(|s| s.init_containers).is_some_and(|i| i.iter().any(|c| c.name.starts_with("vaultsync"))))
}
