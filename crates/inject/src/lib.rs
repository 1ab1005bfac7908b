//! Pod mutation for injecting Vault secrets into Pods, without a Secret
//! object: a Pod's annotations in, the mutated Pod (as a JSON patch) out.
//! No I/O; the webhook server (`vaultsync webhook`) is a thin layer around
//! [`mutate`], and what it injects runs `vaultsync agent` with an
//! [`AgentConfig`].
#![forbid(unsafe_code)]

pub mod annotations;
mod pod;
pub mod vault_annotations;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use annotations::SecretFile;
pub use pod::{VAULT_REF_PREFIX, mutate_pod};

/// The environment variable that carries the [`AgentConfig`] as JSON.
pub const AGENT_CONFIG_ENV: &str = "VAULTSYNC_AGENT_CONFIG";
/// Where the Pod's own ServiceAccount token (audience-bound, projected) is
/// mounted for the agent.
pub const TOKEN_DIR: &str = "/var/run/secrets/vaultsync";
/// Where exec mode puts the vaultsync binary for the app containers.
/// Never under `/vaultsync`: in the agent's own image that is the binary,
/// a file, and the runtime cannot mount a volume below it ("not a
/// directory", found when injected Pods first ran on a real node).
pub const BIN_DIR: &str = "/vaultsync-agent/bin";
/// Where, in sidecar mode, the init container leaves what it was issued
/// (leases, certificates) for the sidecar to carry on with: a volume of
/// the agent containers only, never the app's. Not under `/vaultsync`
/// either (see [`BIN_DIR`]).
pub const STATE_DIR: &str = "/vaultsync-agent/state";

/// How secrets reach the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// An init container renders the files once, before the app starts.
    Init,
    /// The init container, then a native sidecar that re-renders on change.
    Sidecar,
    /// The app's command is wrapped: its environment's `vault:` references
    /// are resolved and the app is exec'd; nothing is written anywhere.
    Exec,
}

/// The webhook's settings: what applies to every Pod unless its
/// annotations say otherwise.
#[derive(Clone, Debug)]
pub struct InjectConfig {
    pub vault_address: String,
    /// PEM CA bundle the agent trusts for Vault, if any.
    pub vault_ca_pem: Option<String>,
    /// The vaultsync image (its entrypoint is `vaultsync`).
    pub agent_image: String,
    /// Kubernetes auth mount, e.g. `kubernetes`.
    pub auth_path: String,
    /// Audience of the projected token (the Vault role's `audience`).
    pub audience: String,
}

/// What the agent needs, passed in [`AGENT_CONFIG_ENV`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfig {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    pub auth_path: String,
    pub role: String,
    /// File holding the Pod's ServiceAccount token.
    pub token_path: String,
    pub secrets_dir: String,
    /// Octal, e.g. `0440`.
    pub file_mode: String,
    #[serde(default)]
    pub files: Vec<SecretFile>,
    /// Sidecar: how often to look for changes (Go duration; jittered).
    pub poll_interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_signal: Option<String>,
    /// Sidecar: the process to signal (its name, as `/proc/<pid>/comm` has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_process: Option<String>,
    /// Sidecar: program and arguments run (no shell) when a file changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_command: Option<Vec<String>>,
    /// Sidecar: URL POSTed to when a file changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// Sidecar mode: the directory (shared by the init container and the
    /// sidecar, not by the app) where the issued leases and certificates
    /// are kept, so the sidecar renews what the init container was issued
    /// instead of asking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// Why a Pod that asks for injection cannot have it; shown to whoever
/// creates the Pod (admission denies it with this message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("vaultsync injection: {0}")]
pub struct Refused(pub String);

/// What to do with a Pod.
#[derive(Debug)]
pub enum Decision {
    /// It does not ask for injection.
    Untouched,
    /// It was mutated already (re-admission): nothing more.
    AlreadyInjected,
    /// The patch to apply, the mode it injects, and warnings for the
    /// person who wrote the Pod (annotations of the Vault agent injector
    /// that are not applied).
    Patch(json_patch::Patch, Mode, Vec<String>),
}

/// Decides on `pod` (a Pod as JSON, as admission sends it).
pub fn mutate(pod: &serde_json::Value, config: &InjectConfig) -> Result<Decision, Refused> {
    let annotations: BTreeMap<String, String> =
        pod.pointer("/metadata/annotations").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    if !annotations::asks(&annotations) {
        return Ok(Decision::Untouched);
    }
    if annotations::done(&annotations) {
        return Ok(Decision::AlreadyInjected);
    }
    let warnings = vault_annotations::review(&annotations)?;
    let request = annotations::read(&annotations, config)?;
    let mutated = mutate_pod(pod, &request, config)?;
    Ok(Decision::Patch(json_patch::diff(pod, &mutated), request.mode, warnings))
}
