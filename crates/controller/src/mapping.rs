//! Which objects a watched change concerns: the maps from Secrets, stores
//! and generators to the ExternalSecrets that use them, shared by the
//! controllers of both API groups; and the timing of reconciles.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, warn};
use vaultsync_api::{ExternalSecret, StoreKind};

use crate::context::Context;
use crate::served::Group;

pub(crate) async fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) {
    match result {
        Ok(object) => debug!(?object, "reconciled"),
        Err(error) => warn!(%error, "reconcile error"),
    }
}

/// Changes that call for a sync: the spec (generation) or a force-sync
/// request (annotation).
pub(crate) fn spec_or_force_sync(es: &ExternalSecret) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    es.metadata.generation.hash(&mut hasher);
    es.force_sync_request().hash(&mut hasher);
    Some(hasher.finish())
}

/// The ExternalSecrets of `group` writing a Secret: the one that manages it, and
/// every `creationPolicy: Merge` writer, each recorded by its hash
/// annotation.
pub(crate) fn secret_to_external_secret(
    secret: &PartialObjectMeta<Secret>,
    group: Group,
) -> Vec<ObjectRef<ExternalSecret>> {
    let Some(namespace) = secret.namespace() else {
        return Vec::new();
    };
    let annotations = secret.annotations();
    let manager = annotations.get(group.manager_annotation()).map(String::as_str);
    let mergers = annotations.keys().filter_map(|key| key.strip_prefix(group.merge_hash_prefix()));
    manager.into_iter().chain(mergers).map(|name| ObjectRef::new(name).within(&namespace)).collect()
}

/// The ExternalSecrets of `namespace` whose `dataFrom` names generator `name`.
pub(crate) fn generator_users(
    reader: &Store<ExternalSecret>,
    name: &str,
    namespace: Option<String>,
) -> Vec<ObjectRef<ExternalSecret>> {
    reader
        .state()
        .iter()
        .filter(|es| {
            es.namespace() == namespace
                && es.spec.data_from.iter().any(|f| f.generator().is_some_and(|g| g.name == name))
        })
        .map(|es| ObjectRef::from_obj(&**es))
        .collect()
}

/// The ExternalSecrets using `generator`, which changed: their memos go
/// stale, so its new spec issues new credentials at once (the lease
/// records the generation it was issued from).
pub(crate) fn changed_generator_users(
    reader: &Store<ExternalSecret>,
    ctx: &crate::context::Context,
    generator: &vaultsync_api::VaultDynamicSecret,
) -> Vec<ObjectRef<ExternalSecret>> {
    let users = generator_users(reader, &generator.name_any(), generator.namespace());
    for user in &users {
        ctx.mark_stale(user);
    }
    users
}

pub(crate) fn users_of(
    reader: &Store<ExternalSecret>,
    kind: StoreKind,
    name: &str,
    namespace: Option<String>,
) -> Vec<ObjectRef<ExternalSecret>> {
    reader
        .state()
        .iter()
        .filter(|es| es.spec.uses_store(kind, name) && (namespace.is_none() || es.namespace() == namespace))
        .map(|es| ObjectRef::from_obj(&**es))
        .collect()
}

/// `reconcile`, counted in the in-flight gauge and timed into the duration
/// histogram of `controller`.
pub(crate) fn timed<K, F, Fut, T>(
    controller: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, T>
where
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    K: Send + Sync + 'static,
{
    move |object, ctx| {
        let reconcile = reconcile.clone();
        Box::pin(async move {
            let _timer = ctx.metrics.reconcile_started(controller);
            reconcile(object, ctx.clone()).await
        })
    }
}
