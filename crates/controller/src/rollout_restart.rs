//! Rolling restarts of the workloads an ExternalSecret names in
//! `rolloutRestartTargets`, once per actual change of its Secret's data:
//! pods that read the Secret as environment variables never see a new
//! value otherwise. The caller decides when data changed; this module only
//! restarts, as `kubectl rollout restart` does, by changing the pod
//! template (an annotation), or an Argo Rollout's `spec.restartAt`.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};
use vaultsync_api::{
    ExternalSecret, RESTARTED_AT_ANNOTATION, RolloutRestartKind, RolloutRestartTarget, argo_rollout_resource,
};

use crate::context::Context;
use crate::events;

const REASON_RESTARTED: &str = "RolloutRestarted";
const REASON_FAILED: &str = "RolloutRestartFailed";

/// Restarts every target of `es`, whose Secret's data just changed. A
/// target that cannot be restarted is reported (a Warning Event and a log
/// line) and does not fail the sync: the Secret is written either way.
pub(crate) async fn restart_targets(ctx: &Context, es: &ExternalSecret) {
    let namespace = es.namespace().unwrap_or_default();
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    for target in &es.spec.rollout_restart_targets {
        let what = format!("{} {namespace}/{}", kind_name(target.kind), target.name);
        let (type_, reason, note) = match restart(&ctx.client, &namespace, target, &at).await {
            Ok(()) => {
                info!(externalsecret = %crate::context::object_ref(es), target = %what, "rolling restart");
                (
                    EventType::Normal,
                    REASON_RESTARTED,
                    format!("restarted {what}: the data of Secret {:?} changed", es.target_name()),
                )
            }
            Err(reason) => {
                warn!(externalsecret = %crate::context::object_ref(es), target = %what, error = %reason, "rolling restart failed");
                (EventType::Warning, REASON_FAILED, format!("cannot restart {what}: {reason}"))
            }
        };
        events::publish(ctx, &es.object_ref(&()), type_, reason, "RolloutRestart", note).await;
    }
}

async fn restart(
    client: &kube::Client,
    namespace: &str,
    target: &RolloutRestartTarget,
    at: &str,
) -> Result<(), String> {
    let (resource, patch) = request(target.kind, at);
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    match api.patch(&target.name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Err(format!("no {} of that name exists", kind_name(target.kind))),
        Err(kube::Error::Api(e)) if e.code == 403 => Err(format!(
            "vaultsync may not patch {}; install the chart with rolloutRestart.enabled=true",
            resource.plural
        )),
        Err(e) => Err(crate::store::kube_reason(&e)),
    }
}

/// The resource to patch and the merge patch that restarts it.
fn request(kind: RolloutRestartKind, at: &str) -> (ApiResource, Value) {
    let template = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: at}}}}});
    match kind {
        RolloutRestartKind::Deployment => (ApiResource::erase::<Deployment>(&()), template),
        RolloutRestartKind::StatefulSet => (ApiResource::erase::<StatefulSet>(&()), template),
        RolloutRestartKind::DaemonSet => (ApiResource::erase::<DaemonSet>(&()), template),
        // Argo Rollouts restarts the pods created before `spec.restartAt`.
        RolloutRestartKind::ArgoRollout => (argo_rollout_resource(), json!({"spec": {"restartAt": at}})),
    }
}

fn kind_name(kind: RolloutRestartKind) -> &'static str {
    match kind {
        RolloutRestartKind::Deployment => "Deployment",
        RolloutRestartKind::StatefulSet => "StatefulSet",
        RolloutRestartKind::DaemonSet => "DaemonSet",
        RolloutRestartKind::ArgoRollout => "Rollout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_get_a_pod_template_annotation_rollouts_a_restart_time() {
        let (resource, patch) = request(RolloutRestartKind::StatefulSet, "2026-12-01T00:00:00Z");
        assert_eq!((resource.group.as_str(), resource.plural.as_str()), ("apps", "statefulsets"));
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION],
            "2026-12-01T00:00:00Z"
        );
        let (resource, patch) = request(RolloutRestartKind::ArgoRollout, "2026-12-01T00:00:00Z");
        assert_eq!(resource.api_version, "argoproj.io/v1alpha1");
        assert_eq!(patch, json!({"spec": {"restartAt": "2026-12-01T00:00:00Z"}}));
    }
}
