//! `vaultsync agent`: what runs inside a Pod that asked for injection. It
//! logs in to Vault with the Pod's own ServiceAccount token (Kubernetes
//! auth), so the Vault role bound to that ServiceAccount and namespace is
//! the whole access policy; then it renders files (init, sidecar) or
//! resolves `vault:` references in the environment (exec).
//!
//! Errors name the role, the path and Vault's answer, never a value: they
//! end up in `kubectl describe pod`.
#![forbid(unsafe_code)]

mod files;
mod held;
pub mod notify;
mod refs;
pub mod run;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use vaultsync_inject::AgentConfig;
use vaultsync_template::VaultCall;
use vaultsync_vault::{Auth, Client, IssueMethod, Sensitive, ServerConfig};

pub use files::{calls_of, render_files, write_atomically};
pub use held::HeldSecrets;
pub use refs::{VaultRef, resolve_env};

/// Why the agent could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent configuration: {0}")]
    Config(String),
    #[error("logging in to Vault at {address} as role {role:?} (auth/{mount}): {source}")]
    Login { address: String, role: String, mount: String, source: Box<vaultsync_vault::Error> },
    #[error("reading {path:?} from Vault (or writing to it, with parameters) as role {role:?}: {source}")]
    Read { path: String, role: String, source: Box<vaultsync_vault::Error> },
    #[error("rendering {file:?}: {reason}")]
    Render { file: String, reason: String },
    #[error("writing {file:?}: {reason}")]
    Write { file: String, reason: String },
    #[error("{0}")]
    Reference(String),
}

/// The configuration from the environment (`VAULTSYNC_AGENT_CONFIG`).
pub fn config_from_env() -> Result<AgentConfig, AgentError> {
    let text = std::env::var(vaultsync_inject::AGENT_CONFIG_ENV).map_err(|_| {
        AgentError::Config(format!("{} is not set (the webhook sets it)", vaultsync_inject::AGENT_CONFIG_ENV))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| AgentError::Config(format!("{} is not valid: {e}", vaultsync_inject::AGENT_CONFIG_ENV)))
}

/// A logged-in Vault client for `config`, or why not.
pub async fn login(config: &AgentConfig) -> Result<Client, AgentError> {
    let token_path = config.token_path.clone();
    let jwt: vaultsync_vault::JwtSource = Arc::new(move || {
        let token_path = token_path.clone();
        async move {
            tokio::fs::read_to_string(&token_path)
                .await
                .map(|t| Sensitive::new(t.trim()))
                .map_err(|e| format!("reading the Pod's ServiceAccount token at {token_path}: {e}"))
        }
        .boxed()
    });
    let server = ServerConfig {
        address: config.address.clone(),
        namespace: config.vault_namespace.clone(),
        ca_bundle_pem: config.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
        ..ServerConfig::default()
    };
    let auth = Auth::Kubernetes { mount_path: config.auth_path.clone(), role: config.role.clone(), jwt };
    let login_error = |source| AgentError::Login {
        address: config.address.clone(),
        role: config.role.clone(),
        mount: config.auth_path.clone(),
        source: Box::new(source),
    };
    let client = Client::new(server, auth).map_err(login_error)?;
    client.ensure_token().await.map_err(login_error)?;
    Ok(client)
}

/// Makes one `secret` call: a GET of its path, or a write of its
/// parameters (consul-template writes with PUT; Vault treats POST alike).
pub async fn call(
    client: &Client,
    config: &AgentConfig,
    call: &VaultCall,
) -> Result<vaultsync_vault::Issued, AgentError> {
    let read_error =
        |source| AgentError::Read { path: call.path.clone(), role: config.role.clone(), source: Box::new(source) };
    let body = call.is_write().then(|| call.body());
    let (method, path) = if call.is_write() {
        (IssueMethod::Put, call.path.clone())
    } else {
        // On a KV v2 mount `secret/devops` is read at `secret/data/devops`,
        // as the Vault agent reads it.
        (IssueMethod::Get, client.agent_read_path(&call.path).await.map_err(read_error)?)
    };
    client.issue(method, &path, &BTreeMap::new(), body.as_ref()).await.map_err(read_error)
}

/// Makes each of `calls` once: each answer (the whole response, as a Vault
/// agent template sees it) by [`VaultCall::key`].
pub async fn call_all(
    client: &Client,
    config: &AgentConfig,
    calls: &[VaultCall],
) -> Result<BTreeMap<String, serde_json::Value>, AgentError> {
    let mut answers = BTreeMap::new();
    for one in calls {
        answers.insert(one.key(), call(client, config, one).await?.response);
    }
    Ok(answers)
}

/// `poll` ± 20%.
pub fn jittered(poll: Duration) -> Duration {
    poll.mul_f64(0.8 + 0.4 * rand::random::<f64>())
}
