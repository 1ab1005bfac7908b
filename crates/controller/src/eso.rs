//! Serving ESO's API group (`--eso-api`): watches of `external-secrets.io`
//! ExternalSecrets and stores, read into vaultsync's types, feeding the
//! same ExternalSecret reconciler as vaultsync's own group, in a context
//! of its own (see `served`).
//!
//! Served are the ESO-group stores whose `spec.controller` is this
//! operator's class (or unset, with `--eso-claim-unclassed`), and the
//! ExternalSecrets using them; every other ESO object is left to ESO,
//! untouched and unreported.

use std::fmt::Debug;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ObjectMeta;
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vaultsync_api::{
    CLUSTER_EXTERNAL_SECRET_LABEL, ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore, StoreKind,
    VaultDynamicSecret,
};

use crate::context::{Context, StoreRecheck};
use crate::mapping::{changed_generator_users, log_result, timed, users_of};
use crate::reconcile::{cluster_external_secret, external_secret, store_health};
use crate::served::{
    Group, read_as, unparsed_cluster_external_secret, unparsed_cluster_store, unparsed_external_secret,
    unparsed_generator, unparsed_secret_store,
};
use crate::vault_clients::identity::StoreId;

/// The watch events of an ESO-group kind, read as `K`.
fn eso_events<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    cluster_scoped: bool,
    fallback: fn(ObjectMeta, &DynamicObject) -> K,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Serialize + Send + 'static,
{
    let ar = Group::Eso.api_resource::<K>();
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) if !cluster_scoped => Api::namespaced_with(client.clone(), namespace, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    watcher::watcher(api, watcher::Config::default()).default_backoff().map_ok(move |event| {
        let read = |raw| read_as(raw, fallback);
        match event {
            watcher::Event::Apply(raw) => watcher::Event::Apply(read(raw)),
            watcher::Event::Delete(raw) => watcher::Event::Delete(read(raw)),
            watcher::Event::InitApply(raw) => watcher::Event::InitApply(read(raw)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        }
    })
}

/// A cached watch of an ESO-group kind, yielding each object it sees.
fn eso_cached<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    cluster_scoped: bool,
    fallback: fn(ObjectMeta, &DynamicObject) -> K,
    deleted: impl Fn(&K) + Send + 'static,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Serialize + Clone + Debug + Send + Sync + 'static,
{
    let (cache, writer) = reflector::store();
    let stream = eso_events(client, namespace, cluster_scoped, fallback)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(object) = event {
                deleted(object);
            }
        })
        .reflect(writer)
        .touched_objects();
    (cache, stream)
}

/// The controllers of ESO's group (ExternalSecrets, and the health of
/// the stores of this operator's class), run until `shutdown` sends.
/// `secret_changes` carries the ESO-group ExternalSecrets whose Secrets
/// changed (the Secret watch is vaultsync's, shared).
pub(crate) async fn run(
    ctx: Arc<Context>,
    secret_changes: UnboundedReceiver<ObjectRef<ExternalSecret>>,
    shutdown: &tokio::sync::broadcast::Sender<()>,
) {
    let stopped = || {
        let mut rx = shutdown.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let client = ctx.client.clone();
    let scope = ctx.config.namespace.clone();
    let scope = scope.as_deref();

    let (reader, writer) = reflector::store::<ExternalSecret>();
    let external_secrets = eso_events(&client, scope, false, unparsed_external_secret)
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| {
                if let watcher::Event::Delete(es) = event {
                    ctx.forget(&ObjectRef::from_obj(es));
                }
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(crate::mapping::spec_or_force_sync, Default::default())
        .inspect_ok({
            let ctx = ctx.clone();
            move |es| ctx.due.triggered(ObjectRef::from_obj(es))
        });

    let (store_cache, stores) = eso_cached(&client, scope, false, unparsed_secret_store, {
        let ctx = ctx.clone();
        move |store: &SecretStore| {
            ctx.vault.drop_store(&StoreId::secret_store(&store.namespace().unwrap_or_default(), &store.name_any()));
        }
    });
    ctx.caches.secret_stores.set(store_cache);
    // ESO's VaultDynamicSecret generators: a changed spec issues new
    // credentials at once, as in vaultsync's group.
    let (generator_cache, generators) = eso_cached(&client, scope, false, unparsed_generator, |_| {});
    ctx.caches.generators.set(generator_cache);
    // The Secrets' cache is the vaultsync group's: one watch serves both.
    let (recovered_tx, recovered) = futures::channel::mpsc::unbounded();
    ctx.outages.set_requeue(recovered_tx);

    // A store given back (its class no longer ours) has its
    // ExternalSecrets kicked for ESO, which neither watches stores nor
    // retries what it skipped.
    let stores = stores.inspect_ok({
        let (reader, ctx) = (reader.clone(), ctx.clone());
        let mut ours = std::collections::HashMap::new();
        move |store: &SecretStore| {
            let now_ours = crate::stores::serves(&ctx, &store.spec.controller);
            let key = (store.namespace().unwrap_or_default(), store.name_any());
            if ours.insert(key, now_ours) == Some(true) && !now_ours {
                let users = users_of(&reader, StoreKind::SecretStore, &store.name_any(), store.namespace());
                tokio::spawn(hand_back(ctx.clone(), users));
            }
        }
    });
    let controller = Controller::for_stream(external_secrets, reader.clone())
        .reconcile_on(futures::stream::select(recovered, secret_changes).inspect({
            let ctx = ctx.clone();
            move |key: &ObjectRef<ExternalSecret>| ctx.due.triggered(key.clone())
        }))
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency))
        .watches_stream(stores, {
            let (reader, ctx) = (reader.clone(), ctx.clone());
            move |store: SecretStore| {
                ctx.triggered(users_of(&reader, StoreKind::SecretStore, &store.name_any(), store.namespace()))
            }
        })
        .watches_stream(generators, {
            let (reader, ctx) = (reader.clone(), ctx.clone());
            move |generator: VaultDynamicSecret| ctx.triggered(changed_generator_users(&reader, &ctx, &generator))
        });
    let controller = match scope {
        Some(_) => controller,
        None => {
            let (cluster_cache, cluster_stores) = eso_cached(&client, None, true, unparsed_cluster_store, {
                let ctx = ctx.clone();
                move |store: &ClusterSecretStore| ctx.vault.drop_store(&StoreId::cluster_store(&store.name_any()))
            });
            ctx.caches.cluster_stores.set(cluster_cache);
            let cluster_stores = cluster_stores.inspect_ok({
                let (reader, ctx) = (reader.clone(), ctx.clone());
                let mut ours = std::collections::HashMap::new();
                move |store: &ClusterSecretStore| {
                    let now_ours = crate::stores::serves(&ctx, &store.spec.controller);
                    if ours.insert(store.name_any(), now_ours) == Some(true) && !now_ours {
                        let users = users_of(&reader, StoreKind::ClusterSecretStore, &store.name_any(), None);
                        tokio::spawn(hand_back(ctx.clone(), users));
                    }
                }
            });
            controller.watches_stream(cluster_stores, {
                let (reader, ctx) = (reader.clone(), ctx.clone());
                move |store: ClusterSecretStore| {
                    ctx.triggered(users_of(&reader, StoreKind::ClusterSecretStore, &store.name_any(), None))
                }
            })
        }
    };
    let es_controller = controller
        .graceful_shutdown_on(stopped())
        .run(timed("ExternalSecret", external_secret::reconcile), external_secret::error_policy, ctx.clone())
        .for_each(log_result);

    // Store health: a watch of their own (the one above feeds the
    // ExternalSecret controller). Stores of another class are skipped by
    // the reconcile, without a request.
    let (store_recheck, stores_to_recheck) = futures::channel::mpsc::unbounded();
    let (cluster_store_recheck, cluster_stores_to_recheck) = futures::channel::mpsc::unbounded();
    ctx.set_store_recheck(StoreRecheck {
        stores: store_recheck,
        cluster_stores: scope.is_none().then_some(cluster_store_recheck),
    });
    let (health_reader, health_writer) = reflector::store::<SecretStore>();
    let store_events =
        eso_events(&client, scope, false, unparsed_secret_store).reflect(health_writer).applied_objects();
    let store_controller = Controller::for_stream(store_events, health_reader)
        .reconcile_on(stores_to_recheck)
        .graceful_shutdown_on(stopped())
        .run(timed("SecretStore", store_health::reconcile_store), store_health::error_policy, ctx.clone())
        .for_each(log_result);
    let cluster_store_controller = async {
        if scope.is_some() {
            return;
        }
        let (reader, writer) = reflector::store::<ClusterSecretStore>();
        let events = eso_events(&client, None, true, unparsed_cluster_store).reflect(writer).applied_objects();
        Controller::for_stream(events, reader)
            .reconcile_on(cluster_stores_to_recheck)
            .graceful_shutdown_on(stopped())
            .run(
                timed("ClusterSecretStore", store_health::reconcile_cluster_store),
                store_health::error_policy,
                ctx.clone(),
            )
            .for_each(log_result)
            .await;
    };
    // ESO's ClusterExternalSecret controller has no class filter: while
    // ESO runs, it makes their ExternalSecrets (and vaultsync syncs those
    // of its stores). Only once ESO is gone does vaultsync make them.
    let ces_controller = async {
        if scope.is_some() || !ctx.config.eso_claim_unclassed {
            return;
        }
        cluster_external_secrets(ctx.clone(), stopped()).await;
    };
    tokio::join!(es_controller, store_controller, cluster_store_controller, ces_controller);
}

/// The ClusterExternalSecret controller of ESO's group: the same reconciler
/// as vaultsync's group, re-run on any namespace change and on a spec
/// change or deletion of an ExternalSecret one of them made.
async fn cluster_external_secrets(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (reader, writer) = reflector::store::<ClusterExternalSecret>();
    let events = eso_events(&client, None, true, unparsed_cluster_external_secret).reflect(writer).applied_objects();
    let all = {
        let reader = reader.clone();
        move || reader.state().iter().map(|ces| ObjectRef::from_obj(&**ces)).collect::<Vec<_>>()
    };
    // Their ExternalSecrets, metadata only: the maker's name is in a label;
    // only a spec change (generation) or a deletion counts, not the
    // status each sync writes.
    let es_resource = Group::Eso.api_resource::<ExternalSecret>();
    let made = watcher::Config::default().labels(CLUSTER_EXTERNAL_SECRET_LABEL);
    let mut generations = std::collections::HashMap::new();
    let made = watcher::watcher(Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &es_resource), made)
        .default_backoff()
        .try_filter_map(move |event| {
            let changed = match event {
                watcher::Event::Apply(es) | watcher::Event::InitApply(es) => {
                    let key = (es.namespace(), es.name_any());
                    let generation = es.metadata.generation;
                    (generations.insert(key, generation) != Some(generation)).then_some(es)
                }
                watcher::Event::Delete(es) => {
                    generations.remove(&(es.namespace(), es.name_any()));
                    Some(es)
                }
                watcher::Event::Init | watcher::Event::InitDone => None,
            };
            futures::future::ready(Ok(changed))
        });
    Controller::for_stream(events, reader)
        .watches(Api::<Namespace>::all(client.clone()), watcher::Config::default(), move |_| all())
        .reconcile_on(made.filter_map(|es| {
            let maker = es.ok().and_then(|es| es.labels().get(CLUSTER_EXTERNAL_SECRET_LABEL).cloned());
            futures::future::ready(maker.map(|maker| ObjectRef::<ClusterExternalSecret>::new(&maker)))
        }))
        .graceful_shutdown_on(stop)
        .run(
            timed("ClusterExternalSecret", cluster_external_secret::reconcile),
            cluster_external_secret::error_policy,
            ctx,
        )
        .for_each(log_result)
        .await;
}

/// Sets ESO's force-sync annotation on each ExternalSecret of a store this
/// operator just let go, so that ESO, which does not watch stores and does
/// not retry an ExternalSecret it skipped for another class, syncs them
/// again at once. A merge patch of that one annotation, under its own
/// field manager.
async fn hand_back(ctx: Arc<Context>, users: Vec<ObjectRef<ExternalSecret>>) {
    let ar = Group::Eso.api_resource::<ExternalSecret>();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = serde_json::json!({"metadata": {"annotations": {vaultsync_api::ESO_GROUP_FORCE_SYNC_ANNOTATION: now}}});
    for user in users {
        let Some(namespace) = user.namespace.as_deref() else { continue };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
        let params = kube::api::PatchParams { field_manager: Some(HAND_BACK_MANAGER.into()), ..Default::default() };
        match api.patch(&user.name, &params, &kube::api::Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(externalsecret = %format!("{namespace}/{}", user.name), "handed back to ESO (force-sync set)")
            }
            Err(error) => {
                tracing::warn!(externalsecret = %format!("{namespace}/{}", user.name), %error, "cannot set ESO's force-sync annotation; ESO syncs it at its next refresh")
            }
        }
    }
}

/// The field manager of the hand-back annotation.
const HAND_BACK_MANAGER: &str = "vaultsync-handback";
