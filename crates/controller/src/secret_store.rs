//! Store health: log in with the store's credentials and report `Ready`.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::warn;
use vaultsync_api::{ClusterSecretStore, SecretStore, SecretStoreStatus, VaultProvider};

use crate::conditions::{apply_status, ready};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::{ResolvedStore, credentials};

pub(crate) async fn reconcile_store(store: Arc<SecretStore>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = store.namespace().unwrap_or_default();
    let outcome = match ResolvedStore::from_secret_store(&store) {
        Ok(resolved) => check(&ctx, &resolved, Some(&namespace)).await,
        Err(e) => Err(e),
    };
    let api = Api::<SecretStore>::namespaced(ctx.client.clone(), &namespace);
    report(&ctx, &api, &*store, store.status.as_ref(), outcome).await
}

pub(crate) async fn reconcile_cluster_store(store: Arc<ClusterSecretStore>, ctx: Arc<Context>) -> Result<Action> {
    let outcome = match ResolvedStore::from_cluster_store(&store) {
        // References without a namespace resolve in each ExternalSecret's
        // namespace, so there is no single identity to check here.
        Ok(resolved) if refs_need_namespace(&resolved.provider) => {
            Ok("credentials resolve in each ExternalSecret's namespace; they are checked on every sync".to_owned())
        }
        Ok(resolved) => check(&ctx, &resolved, None).await,
        Err(e) => Err(e),
    };
    let api = Api::<ClusterSecretStore>::all(ctx.client.clone());
    report(&ctx, &api, &*store, store.status.as_ref(), outcome).await
}

pub(crate) fn error_policy<K: ResourceExt>(store: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(store = %store.name_any(), error = %error, "store reconcile failed");
    Action::requeue(ctx.backoff(&format!("store/{}", store.name_any())))
}

async fn check(ctx: &Context, store: &ResolvedStore, namespace: Option<&str>) -> Result<String> {
    let creds = credentials(ctx, store, namespace.unwrap_or_default()).await?;
    let client = ctx.vault.client(creds).map_err(|source| Error::Vault { store: store.to_string(), source })?;
    client.ensure_token().await.map_err(|source| Error::Vault { store: store.to_string(), source })?;
    Ok(format!("logged in to {} with {} auth", store.provider.server, auth_method(&store.provider)))
}

fn auth_method(provider: &VaultProvider) -> &'static str {
    let auth = &provider.auth;
    if auth.token_secret_ref.is_some() {
        "token"
    } else if auth.kubernetes.is_some() {
        "kubernetes"
    } else if auth.app_role.is_some() {
        "appRole"
    } else {
        "jwt"
    }
}

fn refs_need_namespace(provider: &VaultProvider) -> bool {
    let auth = &provider.auth;
    let missing = |ns: &Option<String>| ns.is_none();
    provider.ca_provider.as_ref().is_some_and(|c| missing(&c.namespace))
        || auth.token_secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        || auth.kubernetes.as_ref().is_some_and(|k| {
            k.service_account_ref.as_ref().is_some_and(|s| missing(&s.namespace))
                || k.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.app_role.as_ref().is_some_and(|a| {
            missing(&a.secret_ref.namespace) || a.role_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.jwt.as_ref().is_some_and(|j| {
            j.kubernetes_service_account_token.as_ref().is_some_and(|t| missing(&t.service_account_ref.namespace))
                || j.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
}

async fn report<K>(
    ctx: &Context,
    api: &Api<K>,
    store: &K,
    previous: Option<&SecretStoreStatus>,
    outcome: Result<String>,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let previous = previous.cloned().unwrap_or_default();
    let key = format!("store/{}", store.meta().name.clone().unwrap_or_default());
    let (condition, action) = match outcome {
        Ok(message) => {
            ctx.reset_backoff(&key);
            (ready(true, "Valid", message, &previous.conditions), Action::requeue(ctx.config.store_recheck))
        }
        Err(Error::Kube(e)) => return Err(Error::Kube(e)),
        Err(error) => {
            let reason = match &error {
                Error::StoreConfig { .. } => "InvalidProviderConfig",
                Error::RefusedAudience { .. } => "RefusedAudience",
                _ => "ValidationFailed",
            };
            warn!(store = %key, reason, error = %error, "store not ready");
            (ready(false, reason, error.to_string(), &previous.conditions), Action::requeue(ctx.backoff(&key)))
        }
    };
    let status = SecretStoreStatus {
        conditions: vec![condition],
        capabilities: Some("ReadOnly".into()),
        observed_generation: store.meta().generation,
    };
    if status != previous {
        apply_status(api, store, &status).await?;
    }
    Ok(action)
}
