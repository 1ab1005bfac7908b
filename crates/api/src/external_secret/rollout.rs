//! Workloads an ExternalSecret restarts when its Secret's data changes:
//! the target type, the opt-in and restart annotations, and the object
//! name rule a target's name must meet.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A workload to restart when the Secret's data changes. It is restarted
/// only if it opts in: its own annotation `vaultsync.dev/rollout-restart-from`
/// lists this ExternalSecret's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct RolloutRestartTarget {
    /// `Deployment`, `StatefulSet`, `DaemonSet` (apps/v1: the pod template
    /// gets the annotation `vaultsync.dev/restartedAt`), or `argo.Rollout`
    /// (argoproj.io/v1alpha1: its `spec.restartAt` is set).
    pub kind: RolloutRestartKind,
    /// Name of the workload, in the ExternalSecret's namespace: a
    /// Kubernetes object name (lowercase letters, digits, '-' and '.').
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(OBJECT_NAME_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
}

/// CEL twin of [`is_object_name`]: a DNS-1123 subdomain.
pub(crate) const OBJECT_NAME_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
pub(crate) const OBJECT_NAME_MESSAGE: &str = "name must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// Whether `name` is a Kubernetes object name (a DNS-1123 subdomain). Checked
/// in code as well as by CEL, because objects of ESO's group carry no CEL,
/// and a name is put into a request path as it is.
pub fn is_object_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    (1..=253).contains(&name.len()) && name.split('.').all(label_ok)
}

/// Annotation by which a workload agrees to be restarted: a comma-separated
/// list of the names of ExternalSecrets (of its namespace) that may restart
/// it. Without it, naming the workload in `rolloutRestartTargets` does
/// nothing: whoever may create an ExternalSecret is not thereby allowed to
/// restart every workload of the namespace.
pub const ROLLOUT_RESTART_FROM_ANNOTATION: &str = "vaultsync.dev/rollout-restart-from";

/// Kind of a workload to restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RolloutRestartKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    #[serde(rename = "argo.Rollout")]
    ArgoRollout,
}

/// Argo Rollouts' `Rollout` (argoproj.io/v1alpha1), the resource an
/// `argo.Rollout` target names; vaultsync does not depend on its types.
pub fn argo_rollout_resource() -> kube::core::ApiResource {
    kube::core::ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

/// Pod-template annotation set to the time of a restart vaultsync causes
/// (a change of the pod template is what rolls the pods).
pub const RESTARTED_AT_ANNOTATION: &str = "vaultsync.dev/restartedAt";
