//! Rolling restarts of the workloads an ExternalSecret names in
//! `rolloutRestartTargets`, once per actual change of its Secret's data:
//! pods that read the Secret as environment variables never see a new
//! value otherwise. The caller decides when data changed; this module only
//! restarts, as `kubectl rollout restart` does, by changing the pod
//! template (an annotation), or an Argo Rollout's `spec.restartAt`.
//!
//! vaultsync may patch every workload of a namespace, and whoever may create
//! an ExternalSecret may not: a restart is made only for a workload whose
//! own annotation `vaultsync.dev/rollout-restart-from` names the
//! ExternalSecret, so the operator is no deputy for a tenant who could not
//! restart the workload itself.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};
use vaultsync_api::{
    ExternalSecret, RESTARTED_AT_ANNOTATION, ROLLOUT_RESTART_FROM_ANNOTATION, RolloutRestartKind, RolloutRestartTarget,
    argo_rollout_resource, is_object_name,
};

use crate::context::Context;
use crate::observe::events;

const REASON_RESTARTED: &str = "RolloutRestarted";
const REASON_FAILED: &str = "RolloutRestartFailed";
const REASON_REFUSED: &str = "RolloutRestartRefused";

/// Why a target was not restarted.
#[derive(Debug, PartialEq)]
enum NotRestarted {
    /// The workload did not opt in to restarts by this ExternalSecret.
    Refused(String),
    Failed(String),
}

/// Restarts every target of `es`, whose Secret's data just changed. A
/// target that cannot be restarted is reported (a Warning Event and a log
/// line) and does not fail the sync: the Secret is written either way.
pub(crate) async fn restart_targets(ctx: &Context, es: &ExternalSecret) {
    let namespace = es.namespace().unwrap_or_default();
    let es_name = es.name_any();
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    for target in &es.spec.rollout_restart_targets {
        // Quoted only when it is refused: then it may hold anything.
        let what = match is_object_name(&target.name) {
            true => format!("{} {namespace}/{}", kind_name(target.kind), target.name),
            false => format!("{} {namespace}/{:?}", kind_name(target.kind), target.name),
        };
        let (type_, reason, note) = match restart(&ctx.client, &namespace, &es_name, target, &at).await {
            Ok(()) => {
                info!(externalsecret = %crate::context::object_ref(es), target = %what, "rolling restart");
                (
                    EventType::Normal,
                    REASON_RESTARTED,
                    format!("restarted {what}: the data of Secret {:?} changed", es.target_name()),
                )
            }
            Err(NotRestarted::Refused(why)) => {
                warn!(externalsecret = %crate::context::object_ref(es), target = %what, reason = %why, "rolling restart refused");
                (EventType::Warning, REASON_REFUSED, format!("did not restart {what}: {why}"))
            }
            Err(NotRestarted::Failed(why)) => {
                warn!(externalsecret = %crate::context::object_ref(es), target = %what, error = %why, "rolling restart failed");
                (EventType::Warning, REASON_FAILED, format!("cannot restart {what}: {why}"))
            }
        };
        let related = is_object_name(&target.name).then(|| {
            let resource = request(target.kind, &at).0;
            k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some(resource.api_version),
                kind: Some(resource.kind),
                name: Some(target.name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            }
        });
        events::publish_related(
            &ctx.recorder,
            &ctx.group.object_ref(es),
            related,
            type_,
            reason,
            "RolloutRestart",
            note,
        )
        .await;
    }
}

async fn restart(
    client: &kube::Client,
    namespace: &str,
    es_name: &str,
    target: &RolloutRestartTarget,
    at: &str,
) -> Result<(), NotRestarted> {
    // kube puts the name into the request path as it is: a name with `?`,
    // `/` or `%` would change the request itself.
    if !is_object_name(&target.name) {
        return Err(NotRestarted::Failed(
            "the name is not a Kubernetes object name (lowercase letters, digits, '-' and '.')".into(),
        ));
    }
    let (resource, restart_patch) = request(target.kind, at);
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let kind = kind_name(target.kind);
    let api_error = |verb: &str, error: kube::Error| match error {
        kube::Error::Api(e) if e.code == 404 => NotRestarted::Failed(format!("no {kind} of that name exists")),
        kube::Error::Api(e) if e.code == 403 => NotRestarted::Failed(format!(
            "vaultsync may not {verb} {}; install the chart with rolloutRestart.enabled=true",
            resource.plural
        )),
        other => NotRestarted::Failed(crate::error::kube_reason(&other)),
    };
    // A second attempt only when the workload changed between the read and
    // the write (409): the write must be decided on what it changes.
    let mut retried = false;
    loop {
        let workload = api.get(&target.name).await.map_err(|e| api_error("get", e))?;
        if !opted_in(&workload, es_name) {
            return Err(NotRestarted::Refused(format!(
                "the {kind} does not list this ExternalSecret in its annotation {ROLLOUT_RESTART_FROM_ANNOTATION}; \
                 to allow restarts, add to the {kind}'s metadata.annotations: \
                 {ROLLOUT_RESTART_FROM_ANNOTATION}: {es_name:?} (a comma-separated list of ExternalSecret names)"
            )));
        }
        let Some(resource_version) = workload.resource_version() else {
            return Err(NotRestarted::Failed(format!("the {kind} has no resourceVersion")));
        };
        let patch = Patch::Merge(guarded(restart_patch.clone(), &resource_version));
        match api.patch(&target.name, &PatchParams::default(), &patch).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 && !retried => retried = true,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                return Err(NotRestarted::Failed(format!("the {kind} kept changing while vaultsync restarted it")));
            }
            Err(e) => return Err(api_error("patch", e)),
        }
    }
}

/// Whether the workload's own annotation lists the ExternalSecret `es_name`.
fn opted_in(workload: &DynamicObject, es_name: &str) -> bool {
    workload
        .annotations()
        .get(ROLLOUT_RESTART_FROM_ANNOTATION)
        .is_some_and(|names| names.split(',').any(|name| name.trim() == es_name))
}

/// `patch` made conditional on the workload being still at
/// `resource_version`: the API server answers 409 otherwise.
fn guarded(mut patch: Value, resource_version: &str) -> Value {
    patch["metadata"] = json!({"resourceVersion": resource_version});
    patch
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
    use std::collections::BTreeMap;

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

    #[test]
    fn the_patch_carries_the_resource_version_it_was_decided_on() {
        let (_, patch) = request(RolloutRestartKind::Deployment, "t");
        let patch = guarded(patch, "42");
        assert_eq!(patch["metadata"], json!({"resourceVersion": "42"}));
        assert_eq!(patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION], "t");
    }

    fn annotated(value: Option<&str>) -> DynamicObject {
        let mut object = DynamicObject::new("web", &ApiResource::erase::<Deployment>(&()));
        if let Some(value) = value {
            object.metadata.annotations =
                Some(BTreeMap::from([(ROLLOUT_RESTART_FROM_ANNOTATION.to_owned(), value.to_owned())]));
        }
        object
    }

    #[test]
    fn only_a_workload_that_names_the_external_secret_is_restarted() {
        assert!(opted_in(&annotated(Some("creds")), "creds"));
        assert!(opted_in(&annotated(Some("db, creds ,other")), "creds"));
        assert!(!opted_in(&annotated(None), "creds"));
        assert!(!opted_in(&annotated(Some("")), "creds"));
        assert!(!opted_in(&annotated(Some("creds-old,credsx")), "creds"));
        assert!(!opted_in(&annotated(Some("*")), "creds"));
    }

    #[test]
    fn names_that_would_change_the_request_path_are_refused() {
        for bad in ["victim?dryRun=All", "a/b", "../x", "web%3F", "Web", "-web", "web-", "", "a..b", "web#x", "w b"] {
            assert!(!is_object_name(bad), "{bad:?}");
        }
        assert!(!is_object_name(&"a".repeat(254)));
        for good in ["web", "platform-app", "a.b-c.d", "0", &"a".repeat(253)] {
            assert!(is_object_name(good), "{good:?}");
        }
    }
}
