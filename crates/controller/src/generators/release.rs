//! Letting an ExternalSecret go: its finalizer holds the deletion until
//! every lease its generators took is revoked (or the tries run out), so no
//! credential outlives the object that asked for it.

use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};
use kube::core::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;
use vaultsync_api::{ExternalSecret, LEASE_FINALIZER};

use crate::context::Context;
use crate::context::lease_books::Book;
use crate::error::{Error, Result};

use super::leases::revoke;

/// The ExternalSecrets of `es`'s group, in its namespace.
fn api(ctx: &Context, es: &ExternalSecret) -> Api<DynamicObject> {
    let resource = ctx.group.api_resource::<ExternalSecret>();
    Api::namespaced_with(ctx.client.clone(), &es.namespace().unwrap_or_default(), &resource)
}

/// Field manager of the finalizer apply, apart from the spec's owners.
const FINALIZER_MANAGER: &str = "vaultsync.dev/leases";

/// Revokes every lease of `es` (it is being deleted). `Ok` when none is
/// left.
pub(crate) async fn release_all(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    let key = ObjectRef::from_obj(es);
    let leases = match ctx.leases.get(&key) {
        Some(book) => book.leases,
        None => super::values::recorded_leases(ctx, es).await?,
    };
    let mut left = Vec::new();
    let mut errors = Vec::new();
    for lease in leases {
        match revoke(ctx, es, &lease).await {
            Ok(()) => {}
            Err(e) => {
                errors.push(format!("{} ({}): {e}", lease.lease_id.as_deref().unwrap_or("certificate"), lease.source));
                left.push(lease);
            }
        }
    }
    ctx.leases.put(&key, Book { leases: left, data: BTreeMap::new() });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Generator(format!("revoking leases failed: {}", errors.join("; "))))
    }
}

/// Removes the lease finalizer from `es`.
pub(crate) async fn remove_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    let api = api(ctx, es);
    let patch = json!({
        "apiVersion": ctx.group.api_version::<ExternalSecret>(),
        "kind": "ExternalSecret",
        "metadata": {"name": es.name_any()},
    });
    match api.patch(&es.name_any(), &PatchParams::apply(FINALIZER_MANAGER).force(), &Patch::Apply(patch)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(Error::Kube(e)),
    }
    // A finalizer another writer set the same way (client-side) is not ours
    // to apply away: take it out by a merge of the remaining list.
    let current = api.get_opt(&es.name_any()).await.map_err(Error::Kube)?;
    if let Some(current) = current
        && current.finalizers().iter().any(|f| f == LEASE_FINALIZER)
    {
        let rest: Vec<&String> = current.finalizers().iter().filter(|f| *f != LEASE_FINALIZER).collect();
        let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": current.resource_version()}});
        api.patch(&es.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await.map_err(Error::Kube)?;
    }
    Ok(())
}

pub(super) async fn ensure_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    if es.finalizers().iter().any(|f| f == LEASE_FINALIZER) {
        return Ok(());
    }
    let api = api(ctx, es);
    let patch = json!({
        "apiVersion": ctx.group.api_version::<ExternalSecret>(),
        "kind": "ExternalSecret",
        "metadata": {"name": es.name_any(), "finalizers": [LEASE_FINALIZER]},
    });
    api.patch(&es.name_any(), &PatchParams::apply(FINALIZER_MANAGER).force(), &Patch::Apply(patch))
        .await
        .map_err(Error::Kube)?;
    Ok(())
}
