//! The ClusterExternalSecret reconciler: one ExternalSecret per selected
//! namespace, owned by the ClusterExternalSecret so the garbage collector
//! removes them with it; ones in namespaces no longer selected are deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::warn;
use vaultsync_api::{
    CLUSTER_EXTERNAL_SECRET_LABEL, ClusterExternalSecret, ClusterExternalSecretStatus, ExternalSecret, FIELD_MANAGER,
    FailedNamespace, parse_duration,
};

use crate::context::Context;
use crate::error::{Error, Result, kube_reason};
use crate::observe::conditions::{apply_status, ready};
use crate::stores::selector_matches;

/// `spec.refreshTime` when unset, as in ESO.
const DEFAULT_REFRESH_TIME: Duration = Duration::from_secs(60);

pub(crate) async fn reconcile(ces: Arc<ClusterExternalSecret>, ctx: Arc<Context>) -> Result<Action> {
    if ces.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ces.name_any();
    let es_name = ces.spec.external_secret_name.clone().unwrap_or_else(|| name.clone());
    let selected = selected_namespaces(&ctx, &ces).await?;

    // Remove what this object created where it no longer belongs.
    let ours = Api::<ExternalSecret>::all(ctx.client.clone())
        .list(&ListParams::default().labels(&format!("{CLUSTER_EXTERNAL_SECRET_LABEL}={name}")))
        .await?;
    for es in ours {
        let namespace = es.namespace().unwrap_or_default();
        if !selected.contains(&namespace) || es.name_any() != es_name {
            Api::<ExternalSecret>::namespaced(ctx.client.clone(), &namespace)
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

    let previous = ces.status.clone().unwrap_or_default();
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
    crate::observe::events::announce_change(
        &ctx.recorder,
        &ces.object_ref(&()),
        &previous.conditions,
        &condition,
        "Provision",
    )
    .await;
    let status = ClusterExternalSecretStatus {
        conditions: vec![condition],
        provisioned_namespaces: provisioned,
        failed_namespaces: failed,
        observed_generation: ces.meta().generation,
        external_secret_name: Some(es_name.clone()),
    };
    if status != previous {
        apply_status(&Api::<ClusterExternalSecret>::all(ctx.client.clone()), &*ces, &status).await?;
    }
    // Namespace and ExternalSecret watches bring changes sooner; this is
    // the safety net. The schema checks the duration's syntax, so a parse
    // error here can only be an overflow: fall back to the default.
    let recheck = ces.spec.refresh_time.as_deref().map_or(Ok(DEFAULT_REFRESH_TIME), parse_duration);
    Ok(match recheck.unwrap_or(DEFAULT_REFRESH_TIME) {
        recheck if recheck.is_zero() => Action::await_change(),
        recheck => Action::requeue(recheck),
    })
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
    let api = Api::<ExternalSecret>::namespaced(ctx.client.clone(), namespace);
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
        "apiVersion": "vaultsync.dev/v1alpha1",
        "kind": "ExternalSecret",
        "metadata": {
            "name": es_name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": ces.controller_owner_ref(&()).into_iter().collect::<Vec<_>>(),
        },
        "spec": ces.spec.external_secret_spec,
    });
    // Already as it should be (what was last applied is what would be
    // applied now, and nobody changed the spec since): write nothing.
    // Namespace events re-run every ClusterExternalSecret, and each no-op
    // apply is still a write.
    let hash = format!("{:x}", Sha256::digest(manifest.to_string().as_bytes()));
    if existing.as_ref().is_some_and(|es| {
        es.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash) && es.spec == ces.spec.external_secret_spec
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
