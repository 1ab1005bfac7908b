//! Wires the watches and reconcilers together.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use vaultsync_api::{
    CLUSTER_EXTERNAL_SECRET_LABEL, ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore, StoreKind,
    VaultDynamicSecret,
};

use crate::context::{Context, StoreRecheck};
use crate::mapping::{
    changed_generator_users, log_result, secret_to_external_secret, spec_or_force_sync, timed, users_of,
};
use crate::reconcile::{cluster_external_secret, external_secret, store_health};
use crate::served::Group;
use crate::vault_clients::identity::StoreId;
use crate::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// A watch that fills a cache (without managedFields, which reconciles
/// never read) and yields each object it sees, for `watches_stream`;
/// `deleted` is told of each deletion it sees.
fn cached_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    deleted: impl Fn(&K) + Send + 'static,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (cache, writer) = reflector::store();
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(object) = event {
                deleted(object);
            }
        })
        .reflect(writer)
        .touched_objects();
    (cache, stream)
}

/// All objects of a kind, or those of one namespace in a namespace-scoped
/// install (whose RBAC grants nothing elsewhere).
fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let scope = ctx.config.namespace.clone();
    let scope = scope.as_deref();
    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };

    // ExternalSecrets: reconcile on spec changes only; our own status
    // writes must not trigger another Vault read.
    let (reader, writer) = reflector::store::<ExternalSecret>();
    let es_cache = reader.clone();
    let external_secrets = watcher::watcher(scoped_api::<ExternalSecret>(&client, scope), watcher::Config::default())
        .default_backoff()
        // managedFields are never read here, and are a large part of each
        // object kept in memory.
        .modify(|es| es.managed_fields_mut().clear())
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| match event {
                // Ready once the first full list of ExternalSecrets is in.
                watcher::Event::InitDone => ctx.standing().set_ready(),
                // Nothing is kept for ExternalSecrets that are gone.
                watcher::Event::Delete(es) => {
                    ctx.forget(&ObjectRef::from_obj(es));
                    ctx.metrics.forget(&es.namespace().unwrap_or_default(), &es.name_any());
                    drop_unused_namespace_client(&ctx, &es_cache, es);
                }
                _ => {}
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_force_sync, Default::default())
        .inspect_ok({
            let ctx = ctx.clone();
            move |es| ctx.due.triggered(ObjectRef::from_obj(es))
        });

    // Managed Secrets, metadata only and only ours: an edit or a deletion
    // of a Secret we wrote brings its ExternalSecret back.
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    let (secret_cache, secrets) =
        cached_watch(scoped_api::<PartialObjectMeta<Secret>>(&client, scope), managed, |_| {});
    // Stores: cached, and a change re-syncs the ExternalSecrets using them.
    // A deleted store's Vault clients are closed (their tokens revoked);
    // deleting a namespace deletes its stores, and so closes theirs.
    let (store_cache, stores) = cached_watch(scoped_api::<SecretStore>(&client, scope), watcher::Config::default(), {
        let ctx = ctx.clone();
        move |store: &SecretStore| {
            ctx.vault.drop_store(&StoreId::secret_store(&store.namespace().unwrap_or_default(), &store.name_any()));
        }
    });
    let (generator_cache, generators) =
        cached_watch(scoped_api::<VaultDynamicSecret>(&client, scope), watcher::Config::default(), |_| {});
    ctx.caches.generators.set(generator_cache);
    // Set before any reconcile runs; a later `run` (a new term of
    // leadership) replaces them with its own.
    ctx.caches.managed_secrets.set(secret_cache);
    ctx.caches.secret_stores.set(store_cache);

    // ESO's group (--eso-api): a context of its own, fed the changes of
    // the Secrets its ExternalSecrets write by this group's Secret watch.
    let (eso, eso_secret_changes) = if ctx.config.eso_api {
        let eso_ctx = Arc::new(ctx.for_group(Group::Eso));
        eso_ctx.caches.managed_secrets.set(ctx.caches.managed_secrets.get().expect("set above"));
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (Some((eso_ctx, tx)), Some(rx))
    } else {
        (None, None)
    };

    // ExternalSecrets that waited for a Vault server to come back.
    let (recovered_tx, recovered) = futures::channel::mpsc::unbounded();
    ctx.outages.set_requeue(recovered_tx);
    let recovered = recovered.inspect({
        let ctx = ctx.clone();
        move |key: &ObjectRef<ExternalSecret>| ctx.due.triggered(key.clone())
    });
    let es_controller = Controller::for_stream(external_secrets, reader.clone())
        .reconcile_on(recovered)
        // Bounded: unbounded reconciles at start-up only pile up requests
        // in memory (make bench: peak RSS 51 MB unbounded, 40 MB at 16,
        // and faster).
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency))
        .watches_stream(secrets, {
            let ctx = ctx.clone();
            let eso = eso.as_ref().map(|(eso_ctx, tx)| (eso_ctx.clone(), tx.clone()));
            move |secret| {
                // The ESO group's controller shares this watch.
                if let Some((eso_ctx, tx)) = &eso {
                    for key in eso_ctx.triggered(secret_to_external_secret(&secret, Group::Eso)) {
                        let _ = tx.unbounded_send(key);
                    }
                }
                ctx.triggered(secret_to_external_secret(&secret, Group::Vaultsync))
            }
        })
        .watches_stream(stores, {
            let (reader, ctx) = (reader.clone(), ctx.clone());
            move |store: SecretStore| {
                ctx.triggered(users_of(&reader, StoreKind::SecretStore, &store.name_any(), store.namespace()))
            }
        })
        // Generators: a changed spec issues new credentials at once (the
        // lease records the generation it was issued from).
        .watches_stream(generators, {
            let (reader, ctx) = (reader.clone(), ctx.clone());
            move |generator: VaultDynamicSecret| ctx.triggered(changed_generator_users(&reader, &ctx, &generator))
        });
    // A namespace-scoped install serves no cluster-scoped kinds: its RBAC
    // cannot read them, and an ExternalSecret naming a ClusterSecretStore
    // is told so by the reconcile.
    let es_controller = match scope {
        Some(_) => es_controller,
        None => {
            let (cluster_store_cache, cluster_stores) =
                cached_watch(Api::<ClusterSecretStore>::all(client.clone()), watcher::Config::default(), {
                    let ctx = ctx.clone();
                    move |store: &ClusterSecretStore| ctx.vault.drop_store(&StoreId::cluster_store(&store.name_any()))
                });
            ctx.caches.cluster_stores.set(cluster_store_cache);
            es_controller.watches_stream(cluster_stores, {
                let (reader, ctx) = (reader.clone(), ctx.clone());
                move |store: ClusterSecretStore| {
                    ctx.triggered(users_of(&reader, StoreKind::ClusterSecretStore, &store.name_any(), None))
                }
            })
        }
    };
    let es_controller = es_controller
        .graceful_shutdown_on(stopped(&shutdown_tx))
        .run(timed("ExternalSecret", external_secret::reconcile), external_secret::error_policy, ctx.clone())
        .for_each(log_result);

    // An ExternalSecret that syncs through a store reported not Ready has
    // the store checked again at once (Context::store_proven).
    let (store_recheck, stores_to_recheck) = futures::channel::mpsc::unbounded();
    let (cluster_store_recheck, cluster_stores_to_recheck) = futures::channel::mpsc::unbounded();
    ctx.set_store_recheck(StoreRecheck {
        stores: store_recheck,
        cluster_stores: scope.is_none().then_some(cluster_store_recheck),
    });
    let store_controller = Controller::new(scoped_api::<SecretStore>(&client, scope), watcher::Config::default())
        .reconcile_on(stores_to_recheck)
        .graceful_shutdown_on(stopped(&shutdown_tx))
        .run(timed("SecretStore", store_health::reconcile_store), store_health::error_policy, ctx.clone())
        .for_each(log_result);
    let cluster_controllers = scope.is_none().then(|| {
        let cluster_store_controller =
            Controller::new(Api::<ClusterSecretStore>::all(client.clone()), watcher::Config::default())
                .reconcile_on(cluster_stores_to_recheck)
                .graceful_shutdown_on(stopped(&shutdown_tx))
                .run(
                    timed("ClusterSecretStore", store_health::reconcile_cluster_store),
                    store_health::error_policy,
                    ctx.clone(),
                )
                .for_each(log_result);

        let ces_controller =
            Controller::new(Api::<ClusterExternalSecret>::all(client.clone()), watcher::Config::default());
        let ces_store = ces_controller.store();
        let created = watcher::Config::default().labels(CLUSTER_EXTERNAL_SECRET_LABEL);
        let ces_controller = ces_controller
            // There are few ClusterExternalSecrets: any namespace change
            // re-evaluates all of them.
            .watches(Api::<Namespace>::all(client.clone()), watcher::Config::default(), move |_| {
                ces_store.state().iter().map(|ces| ObjectRef::from_obj(&**ces)).collect::<Vec<_>>()
            })
            .owns_stream(owned_changes(
                watcher::watcher(Api::<PartialObjectMeta<ExternalSecret>>::all(client.clone()), created)
                    .default_backoff(),
            ))
            .graceful_shutdown_on(stopped(&shutdown_tx))
            .run(
                timed("ClusterExternalSecret", cluster_external_secret::reconcile),
                cluster_external_secret::error_policy,
                ctx.clone(),
            )
            .for_each(log_result);
        futures::future::join(cluster_store_controller, ces_controller)
    });

    // Deletions a watch missed (a store deleted while it reconnected, or
    // while a sync was creating its client) are caught by a sweep.
    let sweeper = {
        let ctx = ctx.clone();
        let others: Vec<Arc<Context>> = eso.iter().map(|(eso_ctx, _)| eso_ctx.clone()).collect();
        let stop = stopped(&shutdown_tx);
        async move {
            let sweep = async {
                let mut tick = tokio::time::interval(SWEEP_EVERY);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    sweep_clients(&ctx, &others).await;
                }
            };
            tokio::select! {
                () = stop => {}
                () = sweep => {}
            }
        }
    };

    let tx = shutdown_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let eso_controller = async {
        if let (Some((eso_ctx, _)), Some(changes)) = (&eso, eso_secret_changes) {
            crate::eso::run(eso_ctx.clone(), changes, &shutdown_tx).await;
        }
    };
    tokio::join!(es_controller, store_controller, sweeper, eso_controller, async {
        if let Some(controllers) = cluster_controllers {
            controllers.await;
        }
    });
}

/// The ExternalSecrets a ClusterExternalSecret made, as its controller needs
/// them: new, changed in spec (generation), or deleted. Their status changes
/// with every sync, and passing those on re-ran the ClusterExternalSecret,
/// which re-applied every ExternalSecret it owns: a loop of hundreds of
/// applies a minute.
fn owned_changes(
    events: impl Stream<Item = Result<watcher::Event<PartialObjectMeta<ExternalSecret>>, watcher::Error>>,
) -> impl Stream<Item = Result<PartialObjectMeta<ExternalSecret>, watcher::Error>> {
    let mut generations: HashMap<ObjectRef<PartialObjectMeta<ExternalSecret>>, Option<i64>> = HashMap::new();
    events.filter_map(move |event| {
        let change = match event {
            Ok(watcher::Event::Apply(es) | watcher::Event::InitApply(es)) => {
                let generation = es.metadata.generation;
                let previous = generations.insert(ObjectRef::from_obj(&es), generation);
                (previous != Some(generation)).then_some(Ok(es))
            }
            Ok(watcher::Event::Delete(es)) => {
                generations.remove(&ObjectRef::from_obj(&es));
                Some(Ok(es))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(change)
    })
}

/// How often the Vault clients of stores that are gone are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Closes the Vault clients whose store the watch caches no longer hold.
/// Clients younger than a sweep are left alone: their store may be too new
/// for the cache.
/// Whether a watch cache (if any) has had its first full list.
async fn filled<K>(cache: Option<&Store<K>>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    match cache {
        None => true,
        Some(cache) => {
            matches!(tokio::time::timeout(Duration::from_secs(1), cache.wait_until_ready()).await, Ok(Ok(())))
        }
    }
}

/// The Vault clients are shared by the controllers of both API groups
/// (`others`: ESO's, with `--eso-api`), so a client goes only when no
/// group's cache has its store.
async fn sweep_clients(ctx: &Context, others: &[Arc<Context>]) {
    let mut caches = Vec::new();
    for context in std::iter::once(ctx).chain(others.iter().map(|other| &**other)) {
        let secret_stores = context.caches.secret_stores.get();
        let cluster_stores = context.caches.cluster_stores.get();
        // A cache not filled yet knows nothing of absence: this sweep is
        // skipped (one that never fills, ESO's CRDs missing say, must not
        // hold up every later sweep).
        if !filled(secret_stores.as_ref()).await || !filled(cluster_stores.as_ref()).await {
            return;
        }
        caches.push((secret_stores, cluster_stores));
    }
    let scoped = ctx.config.namespace.is_some();
    ctx.vault.drop_older_where(
        SWEEP_EVERY,
        |owner| {
            caches.iter().all(|(secret_stores, cluster_stores)| match &owner.store.namespace {
                Some(ns) => secret_stores
                    .as_ref()
                    .is_some_and(|c| c.get(&ObjectRef::new(&owner.store.name).within(ns)).is_none()),
                None => {
                    !scoped
                        && cluster_stores.as_ref().is_some_and(|c| c.get(&ObjectRef::new(&owner.store.name)).is_none())
                }
            })
        },
        "its store is gone",
    );
}

/// A ClusterSecretStore whose credentials resolve in each ExternalSecret's
/// namespace has a client per namespace: when `deleted` was the last
/// ExternalSecret of its namespace using that store (the namespace being
/// deleted, say), that client is closed. `cache` still holds `deleted`.
fn drop_unused_namespace_client(ctx: &Context, cache: &Store<ExternalSecret>, deleted: &ExternalSecret) {
    let namespace = deleted.namespace();
    for store_ref in deleted.spec.store_refs() {
        if store_ref.kind != StoreKind::ClusterSecretStore {
            continue;
        }
        let still_used = cache.state().iter().any(|es| {
            es.namespace() == namespace
                && es.name_any() != deleted.name_any()
                && es.spec.uses_store(StoreKind::ClusterSecretStore, &store_ref.name)
        });
        if !still_used {
            let namespace = namespace.clone().unwrap_or_default();
            ctx.vault.drop_namespace_client(&StoreId::cluster_store(&store_ref.name), &namespace);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMetaExt;

    use super::*;

    fn es(name: &str, generation: i64) -> PartialObjectMeta<ExternalSecret> {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            generation: Some(generation),
            ..ObjectMeta::default()
        }
        .into_response_partial()
    }

    #[tokio::test]
    async fn owned_external_secrets_pass_on_spec_changes_and_deletions_only() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let events = vec![
            Init,
            InitApply(es("a", 1)),
            InitDone,
            // Status writes: resourceVersion moves, generation does not.
            Apply(es("a", 1)),
            Apply(es("a", 1)),
            Apply(es("a", 2)),
            Apply(es("b", 1)),
            Apply(es("b", 1)),
            Delete(es("b", 1)),
            // Recreated with the same generation: new again.
            Apply(es("b", 1)),
        ];
        let passed: Vec<(String, i64)> = owned_changes(futures::stream::iter(events.into_iter().map(Ok)))
            .map(|es| {
                let es = es.expect("no errors here");
                (es.name_any(), es.metadata.generation.unwrap_or_default())
            })
            .collect()
            .await;
        let expected = [("a", 1), ("a", 2), ("b", 1), ("b", 1), ("b", 1)];
        assert_eq!(passed, expected.map(|(n, g)| (n.to_owned(), g)));
    }
}
