//! Store health: log in with the store's credentials and report `Ready`.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::warn;
use vaultsync_api::{ClusterSecretStore, SecretStore, SecretStoreStatus, VaultProvider};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::observe::conditions::{apply_status_of, condition, ready};
use crate::observe::events;
use crate::served::{self, Group};
use crate::stores::{ResolvedStore, credentials, refs_need_namespace, serves};

pub(crate) async fn reconcile_store(store: Arc<SecretStore>, ctx: Arc<Context>) -> Result<Action> {
    if !serves(&ctx, &store.spec.controller) {
        return Ok(Action::await_change());
    }
    let namespace = store.namespace().unwrap_or_default();
    let (recheck, bad_interval) = recheck_interval(&ctx, &store.name_any(), store.spec.refresh_interval.as_ref());
    let refused = unservable(&ctx, &*store, &store.spec, false);
    let outcome = match (ResolvedStore::from_secret_store(&store), refused.or(bad_interval)) {
        (_, Some(e)) | (Err(e), None) => Err(e),
        (Ok(resolved), None) => check(&ctx, &resolved, Some(&namespace)).await,
    };
    let insecure = store.spec.provider.vault().and_then(insecure_transport);
    report(&ctx, &*store, store.status.as_ref(), outcome, insecure, recheck).await
}

/// What makes an ESO-group store unservable (see `served`), as its error.
fn unservable<K: Resource + serde::Serialize>(
    ctx: &Context,
    store: &K,
    spec: &impl serde::Serialize,
    cluster: bool,
) -> Option<Error> {
    (ctx.group == Group::Eso)
        .then(|| served::unservable_store(store, spec, cluster))
        .flatten()
        .map(|reason| Error::StoreConfig { store: store.meta().name.clone().unwrap_or_default(), reason })
}

pub(crate) async fn reconcile_cluster_store(store: Arc<ClusterSecretStore>, ctx: Arc<Context>) -> Result<Action> {
    if !serves(&ctx, &store.spec.controller) {
        return Ok(Action::await_change());
    }
    let (recheck, bad_interval) = recheck_interval(&ctx, &store.name_any(), store.spec.refresh_interval.as_ref());
    let refused = unservable(&ctx, &*store, &store.spec, true);
    let outcome = match (ResolvedStore::from_cluster_store(&store), refused.or(bad_interval)) {
        (_, Some(e)) | (Err(e), None) => Err(e),
        // References without a namespace resolve in each ExternalSecret's
        // namespace, so there is no single identity to check here.
        (Ok(resolved), None) if refs_need_namespace(&resolved.provider) => {
            Ok("credentials resolve in each ExternalSecret's namespace; they are checked on every sync".to_owned())
        }
        (Ok(resolved), None) => check(&ctx, &resolved, None).await,
    };
    let insecure = store.spec.provider.vault().and_then(insecure_transport);
    report(&ctx, &*store, store.status.as_ref(), outcome, insecure, recheck).await
}

pub(crate) fn error_policy<K: Resource<DynamicType = ()>>(store: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(store = %crate::context::object_ref(&*store), error = %error, "store reconcile failed");
    Action::requeue(ctx.backoff(&crate::context::backoff_key(&*store)))
}

/// How long until a healthy store is checked again: its own
/// `spec.refreshInterval` (ESO's), else the operator's default; never
/// below the refresh floor, so one store cannot make us log in in a loop.
/// A value that does not parse is the store's error to report.
fn recheck_interval(
    ctx: &Context,
    name: &str,
    value: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
) -> (Duration, Option<Error>) {
    match vaultsync_api::store_refresh_interval(value) {
        Ok(Some(interval)) => (interval.max(ctx.config.min_refresh_interval), None),
        Ok(None) => (ctx.config.store_recheck, None),
        Err(reason) => (ctx.config.store_recheck, Some(Error::StoreConfig { store: name.to_owned(), reason })),
    }
}

async fn check(ctx: &Context, store: &ResolvedStore, namespace: Option<&str>) -> Result<String> {
    let creds = credentials(ctx, store, namespace.unwrap_or_default()).await?;
    let client = ctx.vault.client(creds).map_err(|source| Error::Vault { store: store.to_string(), source })?;
    client.ensure_token().await.map_err(|source| Error::Vault { store: store.to_string(), source })?;
    Ok(format!("logged in to {} with {} auth", store.provider.server, auth_method(&store.provider)))
}

/// Condition type of the warning about a plain `http://` Vault address.
const INSECURE_TRANSPORT: &str = "InsecureTransport";

/// A warning for a store that talks to Vault in clear text without saying
/// it means to.
fn insecure_transport(provider: &VaultProvider) -> Option<String> {
    let plain = provider.server.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    (plain && provider.allow_insecure_http != Some(true)).then(|| {
        format!(
            "server {} is plain http://: Vault tokens, login credentials and secret values cross the network \
             unencrypted. Use https://, or set allowInsecureHttp: true to acknowledge (e.g. a Vault on the same host)",
            provider.server
        )
    })
}

fn auth_method(provider: &VaultProvider) -> &'static str {
    let auth = &provider.auth;
    if auth.token_secret_ref.is_some() {
        "token"
    } else if auth.kubernetes.is_some() {
        "kubernetes"
    } else if auth.app_role.is_some() {
        "appRole"
    } else if auth.user_pass.is_some() {
        "userPass"
    } else if auth.ldap.is_some() {
        "ldap"
    } else if auth.cert.is_some() {
        "cert"
    } else {
        "jwt"
    }
}

/// Writes the store's status and Events. In ESO's group with ESO's
/// reasons and messages (`Valid` "store validated", `InvalidProviderConfig`
/// or `ValidationFailed` "unable to validate store"), each followed by
/// vaultsync's detail, so ESO's dashboards and alerts match.
async fn report<K>(
    ctx: &Context,
    store: &K,
    previous: Option<&SecretStoreStatus>,
    outcome: Result<String>,
    insecure: Option<String>,
    recheck: Duration,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let previous = previous.cloned().unwrap_or_default();
    let key = crate::context::backoff_key(store);
    let (ready_condition, action) = match outcome {
        Ok(message) => {
            ctx.reset_backoff(&key);
            let message = match ctx.group {
                Group::Vaultsync => message,
                Group::Eso => format!("store validated: {message}"),
            };
            (ready(true, "Valid", message, &previous.conditions), Action::requeue(recheck))
        }
        Err(Error::Kube(e)) => return Err(Error::Kube(e)),
        Err(error) => {
            let reason = match (&error, ctx.group) {
                (Error::StoreConfig { .. }, _) => "InvalidProviderConfig",
                (Error::RefusedAudience { .. } | Error::ServiceAccountNotAllowed { .. }, Group::Eso) => {
                    "InvalidProviderConfig"
                }
                (Error::RefusedAudience { .. }, Group::Vaultsync) => "RefusedAudience",
                (Error::ServiceAccountNotAllowed { .. }, Group::Vaultsync) => "ServiceAccountNotAllowed",
                _ => "ValidationFailed",
            };
            warn!(store = %ctx.group.log_name(store), reason, error = %error, "store not ready");
            let message = match ctx.group {
                Group::Vaultsync => error.to_string(),
                Group::Eso => format!("unable to validate store: {error}"),
            };
            (ready(false, reason, message, &previous.conditions), Action::requeue(ctx.backoff(&key)))
        }
    };
    events::announce_change(
        &ctx.recorder,
        &ctx.group.object_ref(store),
        &previous.conditions,
        &ready_condition,
        "Validate",
    )
    .await;
    let mut conditions = vec![ready_condition];
    if let Some(message) = insecure {
        let was_warned = previous.conditions.iter().any(|c| c.type_ == INSECURE_TRANSPORT);
        conditions.push(condition(INSECURE_TRANSPORT, true, "PlainHTTP", message.clone(), &previous.conditions));
        if !was_warned {
            events::publish(
                &ctx.recorder,
                &ctx.group.object_ref(store),
                EventType::Warning,
                INSECURE_TRANSPORT,
                "Validate",
                message,
            )
            .await;
        }
    }
    let status = SecretStoreStatus {
        conditions,
        capabilities: Some("ReadOnly".into()),
        // Not in ESO's schema: left out there, so a status compares equal
        // to the one read back.
        observed_generation: store.meta().generation.filter(|_| ctx.group == Group::Vaultsync),
    };
    if status != previous {
        let ar = ctx.group.api_resource::<K>();
        apply_status_of(&ctx.client, &ar, store.meta().namespace.as_deref(), &store.name_any(), &status).await?;
    }
    Ok(action)
}
