//! `migrate check --cluster`: ESO's objects as the cluster of the current
//! kubeconfig holds them, listed as untyped objects (ESO's CRDs are not
//! vaultsync's types; a typed list would fail on the first odd object).

use anyhow::{Context as _, bail};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::groups::Kind;

/// Every object of ESO's kinds that vaultsync has, as manifests (status
/// and managedFields dropped). Kinds whose CRD is missing are named on
/// stderr; with none installed at all this is an error.
pub async fn read() -> anyhow::Result<Vec<Value>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (set KUBECONFIG, or check manifest files instead)")?;
    let mut objects = Vec::new();
    let mut missing = Vec::new();
    for kind in Kind::ALL {
        let (group, version) = kind.eso_api_version().split_once('/').expect("group/version");
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: kind.eso_api_version().into(),
            kind: kind.name().into(),
            plural: kind.plural().into(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for object in list.items {
                    let mut value = serde_json::to_value(&object).context("an object the cluster returned")?;
                    value["apiVersion"] = kind.eso_api_version().into();
                    value["kind"] = kind.name().into();
                    if let Some(fields) = value.as_object_mut() {
                        fields.remove("status");
                    }
                    if let Some(metadata) = value["metadata"].as_object_mut() {
                        metadata.remove("managedFields");
                    }
                    objects.push(value);
                }
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => missing.push(kind),
            Err(e) => return Err(e).with_context(|| format!("listing {}", resource.plural)),
        }
    }
    if missing.len() == Kind::ALL.len() {
        bail!("ESO's CRDs (external-secrets.io/v1) are not installed in this cluster: there is nothing to check");
    }
    for kind in missing {
        eprintln!("note: the cluster has no CRD for {} ({}): none checked", kind.name(), kind.eso_api_version());
    }
    Ok(objects)
}
