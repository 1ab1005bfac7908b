//! Status conditions and the server-side apply of status.

use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use serde::Serialize;
use vaultsync_api::{Condition, ConditionStatus, FIELD_MANAGER};

/// The `Ready` condition, keeping the previous transition time when the
/// status and reason did not change.
pub(crate) fn ready(ok: bool, reason: &str, message: String, previous: &[Condition]) -> Condition {
    condition("Ready", ok, reason, message, previous)
}

/// A condition of type `type_`, keeping the previous transition time when
/// the status and reason did not change.
pub(crate) fn condition(type_: &str, ok: bool, reason: &str, message: String, previous: &[Condition]) -> Condition {
    let status = if ok { ConditionStatus::True } else { ConditionStatus::False };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status && c.reason.as_deref() == Some(reason))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(now);
    Condition {
        type_: type_.into(),
        status,
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(last_transition_time),
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Applies `status` to the status subresource of object `name` of the
/// resource `ar` (in `namespace`, or cluster-scoped): for a kind served in
/// more than one API group.
pub(crate) async fn apply_status_of<S: Serialize>(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    status: &S,
) -> kube::Result<()> {
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let patch = serde_json::json!({ "apiVersion": ar.api_version, "kind": ar.kind, "status": status });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await.map(|_| ())
}
