//! `vaultsync render`: the Secret data an ExternalSecret would produce,
//! computed exactly as the controller does, with nothing written.

use kube::ResourceExt;
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore, SecretStoreRef, StoreKind};

use crate::context::{Config, Context};
use crate::error::{Error, Result};
use crate::stores::{ResolvedStore, credentials, resolve};
use crate::sync::remote;
use crate::sync::templating::{Shaped, apply_template};
use vaultsync_vault::Freshness;

/// A store given on the command line instead of read from the cluster.
pub enum StoreOverride {
    Namespaced(Box<SecretStore>),
    Cluster(Box<ClusterSecretStore>),
}

/// Reads, renders and templates `es` in `namespace` without writing anything. The
/// store comes from the cluster unless `store` is given; credentials
/// (token Secrets, ServiceAccount tokens) always come from the cluster.
pub async fn preview(
    client: kube::Client,
    es: &ExternalSecret,
    namespace: &str,
    store: Option<StoreOverride>,
) -> Result<Shaped> {
    let ctx = Context::new(client, Config::default());
    if es.spec.data_from.iter().any(|f| f.generator().is_some()) {
        return Err(Error::Target(
            "render issues no credentials from generators (dataFrom[].sourceRef.generatorRef): that would create a lease nobody renews or revokes".into(),
        ));
    }
    // The store given on the command line stands for spec.secretStoreRef;
    // the stores entries name for themselves come from the cluster.
    let overridden = match store {
        Some(StoreOverride::Namespaced(mut s)) => {
            s.metadata.namespace = Some(namespace.to_owned());
            let kind = StoreKind::SecretStore;
            Some((SecretStoreRef { name: s.name_any(), kind }, ResolvedStore::from_secret_store(&s)?))
        }
        Some(StoreOverride::Cluster(s)) => {
            let kind = StoreKind::ClusterSecretStore;
            Some((SecretStoreRef { name: s.name_any(), kind }, ResolvedStore::from_cluster_store(&s)?))
        }
        None => None,
    };
    let default = match (&overridden, &es.spec.secret_store_ref) {
        (Some(_), Some(named)) | (None, Some(named)) => Some(named.clone()),
        (Some((standing_in, _)), None) => Some(standing_in.clone()),
        (None, None) => None,
    };
    let mut stores = Vec::new();
    for store_ref in default.iter().chain(es.spec.store_refs()) {
        if stores.iter().any(|(r, _, _, _)| r == store_ref) {
            continue;
        }
        let store = match &overridden {
            Some((_, store)) if Some(store_ref) == default.as_ref() => store.clone(),
            _ => resolve(&ctx, store_ref.kind, &store_ref.name, namespace).await?,
        };
        let creds = credentials(&ctx, &store, namespace).await?;
        let name = store.to_string();
        let vault = ctx.vault.client(creds).map_err(|source| Error::Vault { store: name.clone(), source })?;
        stores.push((store_ref.clone(), store, name, vault));
    }
    let sources = remote::Sources {
        default: default.as_ref(),
        stores: stores
            .iter()
            .map(|(r, store, name, vault)| {
                (r, remote::KvSource { client: vault, provider: &store.provider, store: name.as_str() })
            })
            .collect(),
    };
    let rendered = remote::render(&sources, &es.spec, false, Freshness::Now, &Default::default()).await;
    // The tokens this one-off logged in for are of no further use.
    drop(sources);
    drop(stores);
    ctx.revoke_vault_tokens(std::time::Duration::from_secs(5)).await;
    let rendered = rendered?;
    let shaped = apply_template(&ctx.client, namespace, es.spec.target.template.as_ref(), rendered.data).await?;
    tracing::debug!(externalsecret = %es.name_any(), keys = shaped.data.len(), "rendered");
    Ok(shaped)
}
