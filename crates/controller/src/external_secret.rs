//! The ExternalSecret reconciler: resolve store, log in (cached), read,
//! render, write the Secret when it changed, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};
use vaultsync_api::{
    ExternalSecret, ExternalSecretStatus, REASON_SYNC_ERROR, REASON_SYNCED, SecretBinding,
    parse_duration,
};

use crate::conditions::{apply_status, now, ready};
use crate::context::{Context, SyncMemo};
use crate::error::{Error, Result};
use crate::render;
use crate::secret_writer::{Written, data_hash, still_synced, write};
use crate::store::{credentials, resolve};

pub(crate) async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action> {
    let memo_key = ObjectRef::from_obj(&*es);
    if es.meta().deletion_timestamp.is_some() {
        // The garbage collector removes an owned Secret; nothing to do here.
        ctx.forget(&memo_key);
        return Ok(Action::await_change());
    }
    let key = object_key(&es);
    let interval = match parse_duration(&es.spec.refresh_interval) {
        Ok(interval) => interval,
        Err(e) => {
            return fail(
                &es,
                &ctx,
                &key,
                Error::Target(format!("spec.refreshInterval: {e}")),
            )
            .await;
        }
    };
    match sync(&es, &ctx, interval).await {
        Ok((written, memo)) => {
            ctx.reset_backoff(&key);
            succeed(&es, &ctx, written, &memo).await?;
            Ok(match memo.next_refresh {
                Some(at) => Action::requeue(
                    at.saturating_duration_since(Instant::now())
                        .max(Duration::from_secs(1)),
                ),
                None => Action::await_change(),
            })
        }
        Err(error) => fail(&es, &ctx, &key, error).await,
    }
}

pub(crate) fn error_policy(es: Arc<ExternalSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(externalsecret = %object_key(&es), error = %error, "reconcile failed");
    Action::requeue(ctx.backoff(&object_key(&es)))
}

fn object_key(es: &ExternalSecret) -> String {
    format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any())
}

/// Brings the Secret up to date. Returns what was written (`None`: nothing
/// was due, Vault was not asked) and the record of the last good sync.
async fn sync(
    es: &ExternalSecret,
    ctx: &Context,
    interval: Duration,
) -> Result<(Option<Written>, SyncMemo)> {
    let namespace = es.namespace().unwrap_or_default();
    let store_ref = &es.spec.secret_store_ref;
    let store = resolve(ctx, store_ref.kind, &store_ref.name, &namespace).await?;
    let creds = credentials(ctx, &store, &namespace).await?;
    let memo_key = ObjectRef::from_obj(es);

    // A reconcile caused by our own write, a status change or a watch
    // restart must not cost a Vault read: when the spec and store are as
    // they were, the refresh is not due, and the Secret holds what we wrote,
    // there is nothing to do.
    if let Some(memo) = ctx.memo(&memo_key)
        && !memo.stale
        && memo.generation == es.meta().generation
        && memo.store_fingerprint == creds.fingerprint
        && memo.next_refresh.is_none_or(|at| Instant::now() < at)
        && still_synced(&ctx.client, es, &memo.data_hash, &memo.keys).await?
    {
        return Ok((None, memo));
    }

    let fingerprint = creds.fingerprint.clone();
    let store_name = store.to_string();
    let client = ctx.vault.client(creds).map_err(|source| Error::Vault {
        store: store_name.clone(),
        source,
    })?;
    let data = render::render(&client, &store.provider, &store_name, &es.spec).await?;
    let (written, resource_version) = write(&ctx.client, es, &data).await?;
    let memo = SyncMemo {
        generation: es.meta().generation,
        store_fingerprint: fingerprint,
        data_hash: data_hash(&data),
        keys: data.keys().cloned().collect(),
        next_refresh: (!interval.is_zero()).then(|| Instant::now() + ctx.jittered(interval)),
        refresh_time: now(),
        resource_version,
        stale: false,
    };
    ctx.remember(memo_key, memo.clone());
    Ok((Some(written), memo))
}

async fn succeed(
    es: &ExternalSecret,
    ctx: &Context,
    written: Option<Written>,
    memo: &SyncMemo,
) -> Result<()> {
    let previous = es.status.clone().unwrap_or_default();
    let message = match written {
        Some(Written::Skipped) => "values read; creationPolicy None writes no Secret".to_owned(),
        _ => format!("Secret {:?} is in sync with the store", es.target_name()),
    };
    // Built from the memo, not from the cached object, whose status may lag
    // behind our own last write.
    let status = ExternalSecretStatus {
        conditions: vec![ready(true, REASON_SYNCED, message, &previous.conditions)],
        refresh_time: Some(memo.refresh_time.clone()),
        synced_resource_version: memo.resource_version.clone(),
        binding: Some(SecretBinding {
            name: es.target_name().to_owned(),
        }),
        observed_generation: es.meta().generation,
    };
    if let Some(verb @ (Written::Created | Written::Updated)) = written {
        let verb = if verb == Written::Created {
            "Created"
        } else {
            "Updated"
        };
        info!(externalsecret = %object_key(es), secret = es.target_name(), "{verb} Secret");
        publish(
            ctx,
            es,
            EventType::Normal,
            verb,
            format!("{verb} Secret {:?}", es.target_name()),
        )
        .await;
    }
    if status != previous {
        let api = Api::<ExternalSecret>::namespaced(
            ctx.client.clone(),
            &es.namespace().unwrap_or_default(),
        );
        apply_status(&api, es, &status).await?;
    }
    Ok(())
}

async fn fail(es: &ExternalSecret, ctx: &Context, key: &str, error: Error) -> Result<Action> {
    let message = error.to_string();
    warn!(externalsecret = %key, reason = error.metric_label(), error = %message, "sync failed");
    let memo_key = ObjectRef::from_obj(es);
    ctx.mark_stale(&memo_key);
    let memo = ctx.memo(&memo_key);
    let previous = es.status.clone().unwrap_or_default();
    let status = ExternalSecretStatus {
        conditions: vec![ready(
            false,
            REASON_SYNC_ERROR,
            message.clone(),
            &previous.conditions,
        )],
        refresh_time: memo
            .as_ref()
            .map(|m| m.refresh_time.clone())
            .or(previous.refresh_time.clone()),
        synced_resource_version: memo
            .as_ref()
            .and_then(|m| m.resource_version.clone())
            .or(previous.synced_resource_version.clone()),
        binding: previous.binding.clone(),
        observed_generation: es.meta().generation,
    };
    if status != previous {
        let api = Api::<ExternalSecret>::namespaced(
            ctx.client.clone(),
            &es.namespace().unwrap_or_default(),
        );
        apply_status(&api, es, &status).await?;
    }
    publish(ctx, es, EventType::Warning, REASON_SYNC_ERROR, message).await;
    Ok(Action::requeue(ctx.backoff(key)))
}

async fn publish(ctx: &Context, es: &ExternalSecret, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &es.object_ref(&())).await {
        warn!(externalsecret = %object_key(es), error = %e, "cannot publish event");
    }
}
