//! ESO's deletion finalizer, for a cluster whose ESO controller is gone.
//!
//! ESO puts `externalsecrets.external-secrets.io/externalsecret-cleanup` on
//! every ExternalSecret of its group, whatever its store's class, and
//! removes it when the ExternalSecret is deleted (after deleting the
//! Secret, with `deletionPolicy: Delete`). Once ESO's controller is
//! removed nobody does, and every deletion hangs. With
//! `--eso-claim-unclassed` (the flag for exactly that cluster) vaultsync
//! does what ESO would have done. While ESO runs, its finalizer is ESO's.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::info;
use vaultsync_api::{DeletionPolicy, ExternalSecret};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::served::Group;

/// ESO's finalizer on its ExternalSecrets.
pub(crate) const ESO_CLEANUP_FINALIZER: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";

/// Whether this deletion is vaultsync's to finish: an ESO-group
/// ExternalSecret with ESO's finalizer, in a cluster vaultsync was told
/// ESO no longer runs in.
pub(crate) fn ours_to_finish(ctx: &Context, es: &ExternalSecret) -> bool {
    ctx.group == Group::Eso
        && ctx.config.eso_claim_unclassed
        && es.meta().deletion_timestamp.is_some()
        && es.finalizers().iter().any(|f| f == ESO_CLEANUP_FINALIZER)
}

/// Deletes the Secret the ExternalSecret controls if its `deletionPolicy`
/// is `Delete` (as ESO does), then removes ESO's finalizer.
pub(crate) async fn finish(ctx: &Context, es: &ExternalSecret) -> Result<Action> {
    let namespace = es.namespace().unwrap_or_default();
    if es.spec.target.deletion_policy == DeletionPolicy::Delete {
        let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
        if let Some(secret) = secrets.get_opt(es.target_name()).await?
            && secret
                .owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(&o.uid) == es.meta().uid.as_ref())
        {
            // Guarded by uid: a Secret re-created by someone else stays.
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: secret.metadata.uid.clone(), resource_version: None }),
                ..DeleteParams::default()
            };
            match secrets.delete(es.target_name(), &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &Group::Eso.api_resource::<ExternalSecret>());
    let rest: Vec<&String> = es.finalizers().iter().filter(|f| *f != ESO_CLEANUP_FINALIZER).collect();
    // Guarded by resourceVersion: a finalizer added meanwhile is not lost.
    let patch = serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": es.resource_version()}});
    match api.patch(&es.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => {
            info!(externalsecret = %Group::Eso.log_name(es), "deleted: ESO's finalizer removed (ESO's controller is gone)");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
        // Changed meanwhile: the watch brings the new version.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(Error::Kube(e)),
    }
}
