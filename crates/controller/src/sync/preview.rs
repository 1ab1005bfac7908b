//! `vaultsync render`: the Secret data an ExternalSecret would produce,
//! computed exactly as the controller does, with nothing written.

use kube::ResourceExt;
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore};

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
    let store = match store {
        Some(StoreOverride::Namespaced(mut s)) => {
            s.metadata.namespace = Some(namespace.to_owned());
            ResolvedStore::from_secret_store(&s)?
        }
        Some(StoreOverride::Cluster(s)) => ResolvedStore::from_cluster_store(&s)?,
        None => {
            let Some(store_ref) = &es.spec.secret_store_ref else {
                return Err(Error::Target(
                    "render shows what a store holds; it issues no credentials from generators (dataFrom[].sourceRef) and this ExternalSecret names no store".into(),
                ));
            };
            resolve(&ctx, store_ref.kind, &store_ref.name, namespace).await?
        }
    };
    if es.spec.data_from.iter().any(|f| f.source_ref.is_some()) {
        return Err(Error::Target(
            "render issues no credentials from generators (dataFrom[].sourceRef): that would create a lease nobody renews or revokes".into(),
        ));
    }
    let creds = credentials(&ctx, &store, namespace).await?;
    let store_name = store.to_string();
    let vault = ctx.vault.client(creds).map_err(|source| Error::Vault { store: store_name.clone(), source })?;
    let source = remote::KvSource { client: &vault, provider: &store.provider, store: &store_name };
    let rendered = remote::render(Some(source), &es.spec, false, Freshness::Now, &Default::default()).await;
    // The token this one-off logged in for is of no further use.
    drop(vault);
    ctx.revoke_vault_tokens(std::time::Duration::from_secs(5)).await;
    let rendered = rendered?;
    let shaped = apply_template(&ctx.client, namespace, es.spec.target.template.as_ref(), rendered.data).await?;
    tracing::debug!(externalsecret = %es.name_any(), keys = shaped.data.len(), "rendered");
    Ok(shaped)
}
