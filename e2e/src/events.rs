//! Events about one object, as tests read them: what the operator told
//! users through `kubectl describe`.

use anyhow::Result;
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};

/// One Event, reduced to what tests assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    pub message: String,
}

/// Every Event in `namespace` about the object of `kind` named `name`
/// (a cluster-scoped object's Events are in `default`).
pub async fn events_about(client: &Client, namespace: &str, kind: &str, name: &str) -> Result<Vec<Seen>> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let fields = format!("involvedObject.name={name},involvedObject.kind={kind}");
    Ok(api
        .list(&ListParams::default().fields(&fields))
        .await?
        .items
        .into_iter()
        .map(|e| Seen {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
        })
        .collect())
}
