//! The ExternalSecret reconciler: resolve store, log in (cached), read,
//! render, write the Secret when it changed, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};
use vaultsync_api::{
    ConditionStatus, DeletionPolicy, ExternalSecret, ExternalSecretStatus, LEASE_FINALIZER, RefreshPolicy,
    SecretBinding, SecretStoreRef, parse_duration,
};

use crate::context::{Context, SyncMemo};
use crate::error::{Error, Result};
use crate::generators;
use crate::observe::conditions::{apply_status_of, now, ready};
use crate::observe::events;
use crate::reconcile::eso_finalizer;
use crate::secret_data::data_hash;
use crate::served::Group;
use crate::stores::{ResolvedStore, credentials, resolve};
use crate::sync::manifest_target;
use crate::sync::remote::{self, Rendered};
use crate::sync::secret_writer::{Written, delete_owned, exists_managed, still_synced, write};
use crate::sync::sync_windows;
use crate::sync::templating::apply_template;
use vaultsync_vault::Freshness;

/// What one sync did.
enum Synced {
    /// Nothing was due; Vault was not asked.
    Current(SyncMemo),
    /// `refreshPolicy: CreatedOnce` and the Secret exists: left alone.
    CreatedOnce,
    /// Vault was read and the Secret written (or found up to date).
    Refreshed { written: Written, memo: SyncMemo, gone: Vec<Error> },
    /// Every remote source is gone and `deletionPolicy: Delete` removed the
    /// Secret.
    Deleted { gone: Vec<Error> },
}

pub(crate) async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action> {
    let memo_key = ObjectRef::from_obj(&*es);
    ctx.due.started(&memo_key);
    if es.meta().deletion_timestamp.is_some() {
        if eso_finalizer::ours_to_finish(&ctx, &es) {
            ctx.forget(&memo_key);
            return eso_finalizer::finish(&ctx, &es).await;
        }
        if es.finalizers().iter().any(|f| f == LEASE_FINALIZER) {
            return release_leases(&es, &ctx).await;
        }
        // The garbage collector removes an owned Secret; nothing to do here.
        ctx.forget(&memo_key);
        ctx.leases.forget(&memo_key);
        ctx.metrics.forget(&es.namespace().unwrap_or_default(), &es.name_any());
        return Ok(Action::await_change());
    }
    let key = object_key(&es);
    let interval = match parse_duration(&es.spec.refresh_interval) {
        // 0 means once; anything else is at least the platform's floor.
        Ok(interval) if interval.is_zero() => interval,
        Ok(interval) => interval.max(ctx.config.min_refresh_interval),
        Err(e) => {
            return fail(&es, &ctx, &key, Error::Target(format!("spec.refreshInterval: {e}"))).await;
        }
    };
    // A panic while syncing this object (a bug) fails this object only: the
    // process and every other ExternalSecret carry on.
    let synced = std::panic::AssertUnwindSafe(sync(&es, &ctx, interval)).catch_unwind().await.unwrap_or_else(|_| {
        Err(Error::Internal("syncing this ExternalSecret failed inside vaultsync (a bug; please report it)".into()))
    });
    match synced {
        Ok(synced) => {
            ctx.reset_backoff(&key);
            ctx.store_proven(&es);
            let next = succeed(&es, &ctx, synced, interval).await?;
            Ok(match next {
                Some(at) => {
                    ctx.requeue(&memo_key, at.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)))
                }
                None => Action::await_change(),
            })
        }
        // Another controller's store: its ExternalSecrets are that
        // controller's to write and report on. Forgotten here, so that a
        // class handed back starts from a full sync.
        Err(Error::OtherClass { store, store_class, .. }) => {
            info!(externalsecret = %ctx.group.log_name(&*es), %store, %store_class, "left alone: its store belongs to another controller class");
            ctx.forget(&memo_key);
            ctx.metrics.forget(&es.namespace().unwrap_or_default(), &es.name_any());
            Ok(Action::await_change())
        }
        Err(error) => fail(&es, &ctx, &key, error).await,
    }
}

/// The ExternalSecret is being deleted: revoke the leases of what its
/// generators issued, then let it go. Vault out of reach does not keep it
/// forever: after a few tries the finalizer goes anyway, with a Warning
/// naming the leases left to expire by themselves.
async fn release_leases(es: &ExternalSecret, ctx: &Context) -> Result<Action> {
    let key = ObjectRef::from_obj(es);
    match generators::release_all(ctx, es).await {
        Ok(()) => {
            info!(externalsecret = %ctx.group.log_name(es), "leases revoked; letting the ExternalSecret go");
        }
        Err(error) => {
            let tries = ctx.leases.revoke_failed(&key);
            if tries < generators::MAX_REVOKE_TRIES {
                warn!(externalsecret = %ctx.group.log_name(es), tries, error = %error, "revoking leases failed; trying again");
                return Ok(Action::requeue(Duration::from_secs(2u64 << tries)));
            }
            let note = format!(
                "deleted without revoking every lease after {tries} tries; they end at their own expiry: {error}"
            );
            warn!(externalsecret = %ctx.group.log_name(es), "{note}");
            publish(ctx, es, EventType::Warning, "LeaseRevokeFailed", note).await;
        }
    }
    generators::remove_finalizer(ctx, es).await?;
    ctx.forget(&key);
    ctx.leases.forget(&key);
    Ok(Action::await_change())
}

pub(crate) fn error_policy(es: Arc<ExternalSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(externalsecret = %ctx.group.log_name(&*es), error = %error, "reconcile failed");
    ctx.requeue(&ObjectRef::from_obj(&*es), ctx.backoff(&object_key(&es)))
}

fn object_key(es: &ExternalSecret) -> String {
    crate::context::backoff_key(es)
}

fn force_sync(es: &ExternalSecret) -> Option<String> {
    es.force_sync_request()
}

/// Brings the Secret up to date.
async fn sync(es: &ExternalSecret, ctx: &Context, interval: Duration) -> Result<Synced> {
    let namespace = es.namespace().unwrap_or_default();
    let stores = resolve_stores(es, ctx, &namespace).await?;
    // Ours from here on (its stores are of our class): what ESO's schema
    // lets through and vaultsync cannot serve is reported, not ignored.
    if ctx.group == Group::Eso
        && let Some(problem) = crate::served::unservable_external_secret(es)
    {
        return Err(Error::Target(problem));
    }
    // A Secret, or the kind target.manifest names if this operator writes it.
    let manifest = match &es.spec.target.manifest {
        Some(manifest) => Some(manifest_target::resolve(ctx, manifest).await?),
        None => None,
    };
    let mut logins = Vec::with_capacity(stores.len());
    for (store_ref, store) in stores {
        let creds = credentials(ctx, &store, &namespace).await?;
        logins.push((store_ref, store, creds));
    }
    // One store's change (its provider, its credentials) is a change of
    // what this ExternalSecret reads.
    let fingerprint = logins.iter().map(|(_, _, creds)| creds.fingerprint.as_str()).collect::<Vec<_>>().join("+");
    let memo_key = ObjectRef::from_obj(es);

    let exists = async || match &manifest {
        Some(resource) => manifest_target::exists_managed(ctx, es, resource).await,
        None => exists_managed(&ctx.client, ctx.group, es).await,
    };
    if es.spec.refresh_policy == RefreshPolicy::CreatedOnce && exists().await? {
        return Ok(Synced::CreatedOnce);
    }
    // A reconcile caused by our own write, a status change or a watch
    // restart must not cost a Vault read: when the spec, the stores and the
    // force-sync request are as they were, the refresh is not due, and the
    // Secret holds what we wrote, there is nothing to do.
    let previous = ctx.memo(&memo_key);
    if let Some(mut memo) = previous.clone()
        && !memo.stale
        && memo.generation == es.meta().generation
        && memo.force_sync == force_sync(es)
        && memo.store_fingerprint == fingerprint
    {
        let due = memo.next_refresh.is_some_and(|at| Instant::now() >= at);
        // A refresh due by refreshInterval alone waits while the sync
        // windows hold it (as in ESO); a lease to renew does not.
        let held = due
            && !generators::involved(es)
            && !sync_windows::refresh_allowed(es.spec.sync_windows.as_ref(), chrono::Utc::now());
        let unchanged = async || match &manifest {
            Some(resource) => manifest_target::still_synced(ctx, es, resource, &memo).await,
            None => still_synced(ctx, es, &memo).await,
        };
        if (!due || held) && unchanged().await? {
            if held {
                memo.next_refresh = Some(Instant::now() + ctx.jittered(sync_windows::RECHECK_WHILE_BLOCKED));
                ctx.remember(memo_key, memo.clone());
            }
            return Ok(Synced::Current(memo));
        }
    }

    let mut clients = Vec::with_capacity(logins.len());
    for (store_ref, store, creds) in logins {
        let name = store.to_string();
        let client = ctx.vault.client(creds).map_err(|source| Error::Vault { store: name.clone(), source })?;
        // Its Vault is down: wait for the server's one probe instead of
        // asking again (see crate::vault_clients::outage).
        if let Some(waiting) = ctx.outages.wait_if_down(client.address(), &memo_key) {
            return Err(Error::Vault { store: name, source: waiting.into_error(client.address()) });
        }
        clients.push((store_ref, store, name, client));
    }
    let generated =
        if generators::involved(es) { generators::generate(ctx, es).await? } else { generators::Generated::default() };
    let deletion = es.spec.target.deletion_policy;
    // A new force-sync request is a person asking for Vault as it is now:
    // an answer shared from a read made before the request will not do.
    let freshness = match previous {
        Some(memo) if memo.force_sync != force_sync(es) => Freshness::Now,
        _ => Freshness::Shared,
    };
    let tolerate_gone = deletion != DeletionPolicy::Retain;
    let sources = remote::Sources {
        default: es.spec.secret_store_ref.as_ref(),
        stores: clients
            .iter()
            .map(|(store_ref, store, name, client)| {
                let source =
                    remote::KvSource { client: ctx.vault.reads(client), provider: &store.provider, store: name };
                (store_ref, source)
            })
            .collect(),
    };
    let rendered = remote::render(&sources, &es.spec, tolerate_gone, freshness, &generated.data).await;
    if let Err(Error::Vault { store, source }) = &rendered
        && let Some((_, _, name, client)) = clients.iter().find(|(_, _, name, _)| name == store)
    {
        if ctx.outages.report_down(client, source, &memo_key) {
            tokio::spawn(ctx.outages.clone().probe(client.clone()));
        }
        // Found down now: reported as the waiting that it is from here on.
        if let Some(waiting) = ctx.outages.wait_if_down(client.address(), &memo_key) {
            return Err(Error::Vault { store: name.clone(), source: waiting.into_error(client.address()) });
        }
    }
    let Rendered { data, gone } = rendered?;
    if data.is_empty() && !gone.is_empty() && deletion == DeletionPolicy::Delete {
        match &manifest {
            Some(resource) => manifest_target::delete_owned(ctx, es, resource).await?,
            None => delete_owned(&ctx.client, ctx.group, es).await?,
        };
        ctx.forget(&memo_key);
        return Ok(Synced::Deleted { gone });
    }
    let mut shaped = apply_template(&ctx.client, &namespace, es.spec.target.template.as_ref(), data).await?;
    if generated.certificate {
        shaped.default_type = Some("kubernetes.io/tls".into());
    }
    let (written, resource_version) = match &manifest {
        Some(resource) => manifest_target::write(ctx, es, resource, &shaped).await?,
        None => write(&ctx.client, ctx.group, es, &mut shaped).await?,
    };
    if written == (Written::Updated { data_changed: true }) && !es.spec.rollout_restart_targets.is_empty() {
        crate::sync::rollout_restart::restart_targets(ctx, es).await;
    }
    let data = shaped.data;
    let periodic = es.spec.refresh_policy == RefreshPolicy::Periodic && !interval.is_zero();
    let memo = SyncMemo {
        generation: es.meta().generation,
        force_sync: force_sync(es),
        store_fingerprint: fingerprint,
        data_hash: data_hash(&data),
        keys: data.keys().cloned().collect(),
        // A lease that needs renewing or revoking brings the next sync
        // forward, whatever the refresh policy.
        next_refresh: [periodic.then(|| Instant::now() + ctx.jittered(interval)), generated.next_action]
            .into_iter()
            .flatten()
            .min(),
        refresh_time: now(),
        resource_version,
        stale: false,
    };
    ctx.remember(memo_key, memo.clone());
    Ok(Synced::Refreshed { written, memo, gone })
}

/// Finds every store `es` names (`secretStoreRef` and the entries' own
/// `sourceRef.storeRef`), each checked as `secretStoreRef` would be: its
/// class, a ClusterSecretStore's namespace conditions.
async fn resolve_stores(
    es: &ExternalSecret,
    ctx: &Context,
    namespace: &str,
) -> Result<Vec<(SecretStoreRef, ResolvedStore)>> {
    let refs = es.spec.store_refs();
    if ctx.group == Group::Eso {
        eso_generators_are_ours(es, ctx, namespace, !refs.is_empty()).await?;
    }
    let mut stores = Vec::with_capacity(refs.len());
    // Every store is looked at before any other error is reported: one of
    // another class makes the ExternalSecret another controller's, and
    // then it is not this operator's to report on.
    let mut first_error = None;
    for store_ref in refs {
        let resolved = match resolve(ctx, store_ref.kind, &store_ref.name, namespace).await {
            // In ESO's group a store that does not exist has no class to
            // tell whose it is: ESO, which serves unclassed stores, reports
            // it. Its creation brings this ExternalSecret back.
            Err(Error::StoreNotFound { kind, name, .. })
                if ctx.group == Group::Eso && !ctx.config.eso_claim_unclassed =>
            {
                return Err(Error::OtherClass {
                    store: format!("{kind:?} {name} (not found)"),
                    store_class: String::new(),
                    class: ctx.config.controller_class.clone(),
                });
            }
            Err(other_class @ Error::OtherClass { .. }) => return Err(other_class),
            resolved => resolved,
        };
        match resolved {
            Ok(store) => stores.push((store_ref.clone(), store)),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(stores),
    }
}

/// ESO's rule for the generators of an ESO-group ExternalSecret: one of
/// another class makes it another controller's; one without a class
/// (which ESO serves whatever its class) leaves the decision to the rest.
/// Something must be explicitly of this operator's class (a store, when
/// `with_stores`, is checked by its resolution) unless unclassed objects
/// are claimed: an ExternalSecret of unclassed generators alone is ESO's.
/// A generator that does not exist (yet) is skipped, as ESO skips it.
async fn eso_generators_are_ours(es: &ExternalSecret, ctx: &Context, namespace: &str, with_stores: bool) -> Result<()> {
    let class = &ctx.config.controller_class;
    let mut ours = with_stores || ctx.config.eso_claim_unclassed;
    for generator_ref in es.spec.data_from.iter().filter_map(|f| f.generator()) {
        let Some(generator) = generators::find_generator(ctx, namespace, &generator_ref.name).await? else {
            continue;
        };
        match generator.spec.controller.as_deref().filter(|c| !c.is_empty()) {
            Some(own) if own == class => ours = true,
            Some(other) => {
                return Err(Error::OtherClass {
                    store: format!("VaultDynamicSecret {}", generator_ref.name),
                    store_class: other.to_owned(),
                    class: class.clone(),
                });
            }
            None => {}
        }
    }
    if ours {
        return Ok(());
    }
    Err(Error::OtherClass {
        store: "no store and no generator of this class (unclassed generators are ESO's)".into(),
        store_class: String::new(),
        class: class.clone(),
    })
}

/// Reports a successful sync; returns when the next refresh is due.
async fn succeed(es: &ExternalSecret, ctx: &Context, synced: Synced, interval: Duration) -> Result<Option<Instant>> {
    let previous = es.status.clone().unwrap_or_default();
    let target = es.target_name().to_owned();
    // "Secret", or target.manifest's kind.
    let kind = es.target_kind().to_owned();
    let (reason_synced, _, reason_deleted) = es.reasons();
    let gone_summary = |gone: &[Error]| gone.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    // Built from the memo, not from the cached object, whose status may lag
    // behind our own last write.
    let (condition, refresh_time, resource_version, next) = match &synced {
        Synced::Current(memo) | Synced::Refreshed { memo, .. } => {
            let message = match &synced {
                Synced::Refreshed { written: Written::Skipped, .. } => {
                    "values read; creationPolicy None writes no Secret".to_owned()
                }
                Synced::Refreshed { gone, .. } if !gone.is_empty() => format!(
                    "{kind} {target:?} is in sync; keys whose remote values are gone were removed ({:?}): {}",
                    es.spec.target.deletion_policy,
                    gone_summary(gone)
                ),
                _ => format!("{kind} {target:?} is in sync with the store"),
            };
            (
                ready(true, reason_synced, message, &previous.conditions),
                Some(memo.refresh_time.clone()),
                memo.resource_version.clone(),
                memo.next_refresh,
            )
        }
        Synced::CreatedOnce => (
            ready(
                true,
                reason_synced,
                format!("{kind} {target:?} exists; refreshPolicy CreatedOnce does not update it"),
                &previous.conditions,
            ),
            previous.refresh_time.clone(),
            previous.synced_resource_version.clone(),
            None,
        ),
        Synced::Deleted { gone } => (
            ready(
                false,
                reason_deleted,
                format!(
                    "every remote source is gone, so deletionPolicy Delete removed {kind} {target:?}: {}",
                    gone_summary(gone)
                ),
                &previous.conditions,
            ),
            Some(now()),
            None,
            // Keep looking: the remote secret may come back.
            (!interval.is_zero()).then(|| Instant::now() + ctx.jittered(interval)),
        ),
    };
    ctx.metrics.ready(&es.namespace().unwrap_or_default(), &es.name_any(), condition.status == ConditionStatus::True);
    ctx.metrics.sync(match &synced {
        Synced::Current(_) | Synced::CreatedOnce => "current",
        Synced::Refreshed { written: Written::Created, .. } => "created",
        Synced::Refreshed { written: Written::Updated { .. }, .. } => "updated",
        Synced::Refreshed { written: Written::Unchanged, .. } => "unchanged",
        Synced::Refreshed { written: Written::Skipped, .. } => "skipped",
        Synced::Deleted { .. } => "deleted",
    });
    let status = ExternalSecretStatus {
        conditions: vec![condition],
        refresh_time,
        synced_resource_version: resource_version,
        binding: Some(SecretBinding { name: target.clone() }),
        observed_generation: es.meta().generation,
        leases: ctx.leases.recorded(&ObjectRef::from_obj(es)).unwrap_or(previous.leases.clone()),
    };
    match &synced {
        Synced::Refreshed { written: written @ (Written::Created | Written::Updated { .. }), .. } => {
            let verb = if *written == Written::Created { "Created" } else { "Updated" };
            info!(externalsecret = %ctx.group.log_name(es), target = %target, kind = %kind, "{verb} {kind}");
            publish(ctx, es, EventType::Normal, verb, format!("{verb} {kind} {target:?}")).await;
        }
        Synced::Deleted { .. } if previous.conditions.iter().all(|c| c.reason.as_deref() != Some(reason_deleted)) => {
            info!(externalsecret = %ctx.group.log_name(es), target = %target, kind = %kind, "deleted {kind}: remote secrets are gone");
            publish(
                ctx,
                es,
                EventType::Normal,
                reason_deleted,
                format!("Deleted {kind} {target:?}: remote secrets are gone"),
            )
            .await;
        }
        _ => {}
    }
    let status = in_group_schema(ctx.group, status);
    if status != previous {
        write_status(ctx, es, &status).await?;
    }
    Ok(next)
}

async fn fail(es: &ExternalSecret, ctx: &Context, key: &str, error: Error) -> Result<Action> {
    let message = error.to_string();
    warn!(externalsecret = %ctx.group.log_name(es), reason = error.metric_label(), error = %message, "sync failed");
    ctx.metrics.sync_error(error.metric_label());
    ctx.metrics.ready(&es.namespace().unwrap_or_default(), &es.name_any(), false);
    let memo_key = ObjectRef::from_obj(es);
    ctx.mark_stale(&memo_key);
    let memo = ctx.memo(&memo_key);
    let previous = es.status.clone().unwrap_or_default();
    let status = ExternalSecretStatus {
        conditions: vec![ready(false, es.reasons().1, message.clone(), &previous.conditions)],
        refresh_time: memo.as_ref().map(|m| m.refresh_time.clone()).or(previous.refresh_time.clone()),
        synced_resource_version: memo
            .as_ref()
            .and_then(|m| m.resource_version.clone())
            .or(previous.synced_resource_version.clone()),
        binding: previous.binding.clone(),
        observed_generation: es.meta().generation,
        leases: ctx.leases.recorded(&memo_key).unwrap_or(previous.leases.clone()),
    };
    let status = in_group_schema(ctx.group, status);
    if status != previous {
        write_status(ctx, es, &status).await?;
    }
    publish(ctx, es, EventType::Warning, es.reasons().1, message).await;
    Ok(ctx.requeue(&memo_key, retry_after(ctx, key, &error)))
}

/// When to try again after `error`. Waiting for a Vault server that is down
/// costs no Vault request (see crate::vault_clients::outage) and does not count as this
/// object's failure: its backoff must not grow over a long outage, or a
/// later unrelated error (an API timeout on a busy control plane) would
/// leave it minutes behind the recovery.
fn retry_after(ctx: &Context, key: &str, error: &Error) -> Duration {
    match error {
        Error::Vault {
            source: vaultsync_vault::Error::Unreachable { .. } | vaultsync_vault::Error::Sealed { .. },
            ..
        } => {
            ctx.reset_backoff(key);
            ctx.jittered(crate::vault_clients::outage::RECHECK_WHILE_DOWN)
        }
        _ => ctx.backoff(key),
    }
}

async fn publish(ctx: &Context, es: &ExternalSecret, type_: EventType, reason: &str, note: String) {
    events::publish(&ctx.recorder, &ctx.group.object_ref(es), type_, reason, "Sync", note).await;
}

/// ESO's schema has no `observedGeneration` or `leases` (the API server
/// drops them): left out there, so a status compares equal to the one
/// read back.
fn in_group_schema(group: Group, mut status: ExternalSecretStatus) -> ExternalSecretStatus {
    if group == Group::Eso {
        status.observed_generation = None;
        status.leases.clear();
    }
    status
}

/// Writes the status, in the API group `es` was served from.
async fn write_status(ctx: &Context, es: &ExternalSecret, status: &ExternalSecretStatus) -> kube::Result<()> {
    let ar = ctx.group.api_resource::<ExternalSecret>();
    apply_status_of(&ctx.client, &ar, es.namespace().as_deref(), &es.name_any(), status).await
}
