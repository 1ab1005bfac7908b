//! The ClusterExternalSecret reconciler: one ExternalSecret per selected
//! namespace, owned by the ClusterExternalSecret so the garbage collector
//! removes them with it; ones in namespaces no longer selected are deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::warn;
use vaultsync_api::{
    CLUSTER_EXTERNAL_SECRET_LABEL, ClusterExternalSecret, ClusterExternalSecretStatus, ExternalSecret,
    ExternalSecretSpec, FIELD_MANAGER, FailedNamespace, parse_duration,
};

use crate::context::Context;
use crate::error::{Error, Result, kube_reason};
use crate::observe::conditions::{apply_status_of, ready};
use crate::served::{self, Group};
use crate::stores::selector_matches;

/// `spec.refreshTime` when unset, as in ESO.
const DEFAULT_REFRESH_TIME: Duration = Duration::from_secs(60);

pub(crate) async fn reconcile(ces: Arc<ClusterExternalSecret>, ctx: Arc<Context>) -> Result<Action> {
    if ces.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ces.name_any();
    let es_name = ces.spec.external_secret_name.clone().unwrap_or_else(|| name.clone());
    let previous = ces.status.clone().unwrap_or_default();
    // In ESO's group, what ESO's schema let through and vaultsync cannot
    // serve is reported, and nothing is provisioned.
    if let Some(problem) = unservable(&ctx, &ces) {
        let condition = ready(false, "NotProvisioned", problem, &previous.conditions);
        let status = ClusterExternalSecretStatus { conditions: vec![condition], ..previous.clone() };
        report(&ctx, &ces, &previous, status).await?;
        return Ok(Action::await_change());
    }
    let selected = selected_namespaces(&ctx, &ces).await?;

    // Remove what this object created where it no longer belongs.
    let es_resource = ctx.group.api_resource::<ExternalSecret>();
    let ours = Api::<DynamicObject>::all_with(ctx.client.clone(), &es_resource)
        .list(&ListParams::default().labels(&format!("{CLUSTER_EXTERNAL_SECRET_LABEL}={name}")))
        .await?;
    for es in ours {
        let namespace = es.namespace().unwrap_or_default();
        if !selected.contains(&namespace) || es.name_any() != es_name {
            Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, &es_resource)
                .delete(&es.name_any(), &DeleteParams::default())
                .await?;
        }
    }

    let mut provisioned = Vec::new();
    let mut failed = Vec::new();
    for namespace in &selected {
        match provision(&ctx, &ces, &es_name, namespace).await {
            Ok(()) => provisioned.push(namespace.clone()),
            Err(reason) => failed.push(FailedNamespace { namespace: namespace.clone(), reason }),
        }
    }

    let condition = if failed.is_empty() {
        ready(
            true,
            "Provisioned",
            format!("ExternalSecret {es_name:?} is in {} namespace(s)", provisioned.len()),
            &previous.conditions,
        )
    } else {
        let list = failed.iter().map(|f| f.namespace.as_str()).collect::<Vec<_>>().join(", ");
        ready(false, "NotProvisioned", format!("could not provision namespace(s): {list}"), &previous.conditions)
    };
    let status = ClusterExternalSecretStatus {
        conditions: vec![condition],
        provisioned_namespaces: provisioned,
        failed_namespaces: failed,
        observed_generation: ces.meta().generation,
        external_secret_name: Some(es_name.clone()),
    };
    report(&ctx, &ces, &previous, status).await?;
    // Namespace and ExternalSecret watches bring changes sooner; this is
    // the safety net. The schema checks the duration's syntax, so a parse
    // error here can only be an overflow: fall back to the default.
    let recheck = ces.spec.refresh_time.as_deref().map_or(Ok(DEFAULT_REFRESH_TIME), parse_duration);
    Ok(match recheck.unwrap_or(DEFAULT_REFRESH_TIME) {
        recheck if recheck.is_zero() => Action::await_change(),
        recheck => Action::requeue(recheck),
    })
}

/// Why an ESO-group ClusterExternalSecret cannot be served: fields
/// vaultsync lacks, or a rule vaultsync's CRD enforces by CEL.
fn unservable(ctx: &Context, ces: &ClusterExternalSecret) -> Option<String> {
    if ctx.group != Group::Eso {
        return None;
    }
    served::problem(ces)
        .cloned()
        .or_else(|| vaultsync_api::checks::cluster_external_secret(&ces.spec).err().map(|r| r.to_string()))
}

/// Events on a change of Ready, and the status, in the group `ces` was
/// served from. ESO's schema has no condition reason, transition time or
/// observedGeneration: left out there, so a status compares equal to the
/// one read back (and is not rewritten at every reconcile).
async fn report(
    ctx: &Context,
    ces: &ClusterExternalSecret,
    previous: &ClusterExternalSecretStatus,
    mut status: ClusterExternalSecretStatus,
) -> Result<()> {
    if let Some(condition) = status.conditions.first() {
        crate::observe::events::announce_change(
            &ctx.recorder,
            &ctx.group.object_ref(ces),
            &previous.conditions,
            condition,
            "Provision",
        )
        .await;
    }
    if ctx.group == Group::Eso {
        status.observed_generation = None;
        for condition in &mut status.conditions {
            condition.reason = None;
            condition.last_transition_time = None;
        }
    }
    if &status != previous {
        let ar = ctx.group.api_resource::<ClusterExternalSecret>();
        apply_status_of(&ctx.client, &ar, None, &ces.name_any(), &status).await?;
    }
    Ok(())
}

pub(crate) fn error_policy(ces: Arc<ClusterExternalSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(clusterexternalsecret = %ces.name_any(), error = %error, "reconcile failed");
    Action::requeue(ctx.backoff(&crate::context::backoff_key(&*ces)))
}

async fn selected_namespaces(ctx: &Context, ces: &ClusterExternalSecret) -> Result<BTreeSet<String>> {
    let names = ces.spec.namespaces.as_deref().unwrap_or_default();
    let selectors: Vec<_> =
        ces.spec.namespace_selector.iter().chain(ces.spec.namespace_selectors.iter().flatten()).collect();
    let namespaces = Api::<Namespace>::all(ctx.client.clone()).list(&ListParams::default()).await?;
    Ok(namespaces
        .into_iter()
        // A terminating namespace accepts no new objects.
        .filter(|ns| ns.meta().deletion_timestamp.is_none())
        .filter(|ns| {
            let name = ns.name_any();
            names.contains(&name) || selectors.iter().any(|s| selector_matches(s, ns.labels()))
        })
        .map(|ns| ns.name_any())
        .collect())
}

/// Applies the ExternalSecret in one namespace; the error is the reason to
/// report for that namespace.
/// On each ExternalSecret a ClusterExternalSecret made: the hash of the
/// manifest last applied.
const APPLIED_HASH_ANNOTATION: &str = "vaultsync.dev/applied-hash";

async fn provision(ctx: &Context, ces: &ClusterExternalSecret, es_name: &str, namespace: &str) -> Result<(), String> {
    let api = Api::<DynamicObject>::namespaced_with(
        ctx.client.clone(),
        namespace,
        &ctx.group.api_resource::<ExternalSecret>(),
    );
    let owner = ces.name_any();
    let existing = api.get_opt(es_name).await.map_err(|e| kube_reason(&e))?;
    if let Some(existing) = &existing
        && existing.labels().get(CLUSTER_EXTERNAL_SECRET_LABEL) != Some(&owner)
    {
        return Err(format!(
            "an ExternalSecret {es_name:?} exists there and is not managed by this ClusterExternalSecret"
        ));
    }
    let metadata = ces.spec.external_secret_metadata.clone().unwrap_or_default();
    let mut labels = metadata.labels;
    labels.insert(CLUSTER_EXTERNAL_SECRET_LABEL.to_owned(), owner);
    let mut annotations = metadata.annotations;
    let mut manifest = json!({
        "apiVersion": ctx.group.api_version::<ExternalSecret>(),
        "kind": "ExternalSecret",
        "metadata": {
            "name": es_name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": ctx.group.controller_owner_ref(ces).into_iter().collect::<Vec<_>>(),
        },
        "spec": ces.spec.external_secret_spec,
    });
    // Already as it should be (what was last applied is what would be
    // applied now, and nobody changed the spec since): write nothing.
    // Namespace events re-run every ClusterExternalSecret, and each no-op
    // apply is still a write.
    let hash = format!("{:x}", Sha256::digest(manifest.to_string().as_bytes()));
    let spec_of = |es: &DynamicObject| serde_json::from_value::<ExternalSecretSpec>(es.data["spec"].clone()).ok();
    if existing.as_ref().is_some_and(|es| {
        es.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
            && spec_of(es).as_ref() == Some(&ces.spec.external_secret_spec)
    }) {
        return Ok(());
    }
    annotations.insert(APPLIED_HASH_ANNOTATION.to_owned(), hash);
    manifest["metadata"]["annotations"] = json!(annotations);
    api.patch(es_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(manifest))
        .await
        .map(|_| ())
        .map_err(|e| kube_reason(&e))
}
