//! What a Pod asks for, read from its annotations: vaultsync's own
//! (`vaultsync.dev/...`) or the Vault agent injector's
//! (`vault.hashicorp.com/...`), which mean the same.

use std::collections::BTreeMap;

use crate::{InjectConfig, Mode, Refused};

pub const INJECT: &str = "vaultsync.dev/inject";
pub const ROLE: &str = "vaultsync.dev/role";
pub const MODE: &str = "vaultsync.dev/mode";
pub const SECRET_PREFIX: &str = "vaultsync.dev/secret-";
pub const TEMPLATE_PREFIX: &str = "vaultsync.dev/template-";
pub const FILE_PREFIX: &str = "vaultsync.dev/file-";
pub const AUTH_PATH: &str = "vaultsync.dev/auth-path";
pub const VAULT_ADDRESS: &str = "vaultsync.dev/address";
pub const VAULT_NAMESPACE: &str = "vaultsync.dev/vault-namespace";
pub const SECRETS_DIR: &str = "vaultsync.dev/secrets-dir";
pub const FILE_MODE: &str = "vaultsync.dev/file-mode";
pub const POLL_INTERVAL: &str = "vaultsync.dev/poll-interval";
pub const NOTIFY_SIGNAL: &str = "vaultsync.dev/notify-signal";
pub const NOTIFY_PROCESS: &str = "vaultsync.dev/notify-process";
/// Sidecar: a command (a JSON array: program and arguments, run without a
/// shell) the sidecar runs when a file changed.
pub const NOTIFY_COMMAND: &str = "vaultsync.dev/notify-command";
/// Sidecar: an `http://` or `https://` URL the sidecar POSTs to when a
/// file changed (e.g. the app's reload endpoint on localhost).
pub const NOTIFY_URL: &str = "vaultsync.dev/notify-url";
/// The image of the agent containers instead of the webhook's
/// `--agent-image` (its entrypoint must be a vaultsync binary of the same
/// release; e.g. one built FROM it with a shell, for notify-command).
pub const AGENT_IMAGE: &str = "vaultsync.dev/agent-image";
/// Set on a mutated Pod: what was done. A Pod carrying it is left alone.
pub const INJECT_STATUS: &str = "vaultsync.dev/inject-status";

pub const AGENT_INJECT: &str = "vault.hashicorp.com/agent-inject";
pub const AGENT_ROLE: &str = "vault.hashicorp.com/role";
pub const AGENT_SECRET_PREFIX: &str = "vault.hashicorp.com/agent-inject-secret-";
pub const AGENT_TEMPLATE_PREFIX: &str = "vault.hashicorp.com/agent-inject-template-";
pub const AGENT_FILE_PREFIX: &str = "vault.hashicorp.com/agent-inject-file-";
pub const AGENT_PRE_POPULATE_ONLY: &str = "vault.hashicorp.com/agent-pre-populate-only";
pub const AGENT_AUTH_PATH: &str = "vault.hashicorp.com/auth-path";
pub const AGENT_NAMESPACE: &str = "vault.hashicorp.com/namespace";
pub const AGENT_ADDRESS: &str = "vault.hashicorp.com/service";
/// The Vault agent injector's own status annotation: `injected` means done
/// (`update` asks for injection again, as in the injector).
pub const AGENT_INJECT_STATUS: &str = "vault.hashicorp.com/agent-inject-status";

/// One file to render.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretFile {
    /// The annotation's name part, e.g. `db` of `...secret-db`.
    pub name: String,
    /// Vault API path read, e.g. `secret/data/app`.
    pub path: String,
    /// Go template (consul-template's `secret` function included); none:
    /// the Vault agent's default rendering of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// File name under the secrets directory.
    pub file: String,
}

/// Everything the annotations ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub role: String,
    pub mode: Mode,
    pub auth_path: String,
    pub address: String,
    pub vault_namespace: Option<String>,
    pub secrets_dir: String,
    pub file_mode: String,
    pub poll_interval: String,
    pub notify_signal: Option<String>,
    pub notify_process: Option<String>,
    pub notify_command: Option<Vec<String>>,
    pub notify_url: Option<String>,
    pub agent_image: Option<String>,
    pub files: Vec<SecretFile>,
    /// The Vault agent injector's annotations were used.
    pub agent_compatible: bool,
}

/// Whether the Pod asks for injection at all.
pub fn asks(annotations: &BTreeMap<String, String>) -> bool {
    let yes = |key: &str| annotations.get(key).is_some_and(|v| matches!(v.as_str(), "true" | "yes" | "on" | "1"));
    yes(INJECT) || yes(AGENT_INJECT)
}

/// Whether the Pod was already mutated (re-admission, a retried create).
pub fn done(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(INJECT_STATUS).is_some_and(|v| v == "injected")
        || annotations.get(AGENT_INJECT_STATUS).is_some_and(|v| v == "injected")
}

/// Reads the request; errors are for the person who wrote the Pod.
pub fn read(annotations: &BTreeMap<String, String>, config: &InjectConfig) -> Result<Request, Refused> {
    let agent_compatible = annotations.keys().any(|k| k.starts_with("vault.hashicorp.com/"));
    let get = |ours: &str, theirs: Option<&str>| {
        annotations.get(ours).or_else(|| theirs.and_then(|t| annotations.get(t))).map(|v| v.trim().to_owned())
    };
    let role = get(ROLE, Some(AGENT_ROLE))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Refused(format!("annotation {ROLE} (or {AGENT_ROLE}) names no Vault role to log in with")))?;
    let mode = match get(MODE, None).as_deref() {
        Some("init") => Mode::Init,
        Some("sidecar") => Mode::Sidecar,
        Some("exec") => Mode::Exec,
        Some(other) => {
            return Err(Refused(format!("annotation {MODE}: {other:?} is not one of init, sidecar, exec")));
        }
        // The Vault agent injector runs an init container and a sidecar
        // unless told to pre-populate only.
        None if agent_compatible && annotations.get(AGENT_PRE_POPULATE_ONLY).is_none_or(|v| v != "true") => {
            Mode::Sidecar
        }
        None => Mode::Init,
    };
    // Vault's annotation names the whole path (`auth/kubernetes`); ours the
    // mount (`kubernetes`). Both are accepted in either.
    let auth_path = get(AUTH_PATH, Some(AGENT_AUTH_PATH)).unwrap_or_else(|| config.auth_path.clone());
    let auth_path = auth_path.trim_matches('/').trim_start_matches("auth/").to_owned();
    let mut files = Vec::new();
    for (key, path) in annotations {
        let name = key.strip_prefix(SECRET_PREFIX).or_else(|| key.strip_prefix(AGENT_SECRET_PREFIX));
        let Some(name) = name else { continue };
        check_name(name)?;
        let template = annotations
            .get(&format!("{TEMPLATE_PREFIX}{name}"))
            .or_else(|| annotations.get(&format!("{AGENT_TEMPLATE_PREFIX}{name}")))
            .cloned();
        let file = annotations
            .get(&format!("{FILE_PREFIX}{name}"))
            .or_else(|| annotations.get(&format!("{AGENT_FILE_PREFIX}{name}")))
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        check_file(&file)?;
        if files.iter().any(|f: &SecretFile| f.file == file) {
            return Err(Refused(format!("two secrets would be written to the same file {file:?}")));
        }
        files.push(SecretFile { name: name.to_owned(), path: path.trim().to_owned(), template, file });
    }
    if files.is_empty() && mode != Mode::Exec {
        return Err(Refused(format!(
            "no secret to render: add an annotation {SECRET_PREFIX}<name> (or {AGENT_SECRET_PREFIX}<name>) naming a Vault path"
        )));
    }
    let file_mode = get(FILE_MODE, None).unwrap_or_else(|| "0440".into());
    if !matches!(file_mode.as_str(), "0400" | "0440" | "0444" | "0600" | "0640" | "0644") {
        return Err(Refused(format!(
            "annotation {FILE_MODE}: {file_mode:?} is not one of 0400, 0440, 0444, 0600, 0640, 0644"
        )));
    }
    let notify_command = match get(NOTIFY_COMMAND, None) {
        None => None,
        Some(text) => match serde_json::from_str::<Vec<String>>(&text) {
            Ok(argv) if !argv.is_empty() && !argv[0].is_empty() => Some(argv),
            _ => {
                return Err(Refused(format!(
                    "annotation {NOTIFY_COMMAND} must be a JSON array of the program and its arguments, e.g. [\"/app/reload\", \"--now\"] (it runs without a shell)"
                )));
            }
        },
    };
    let notify_url = get(NOTIFY_URL, None);
    if let Some(url) = &notify_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Refused(format!("annotation {NOTIFY_URL} must be an http:// or https:// URL")));
    }
    Ok(Request {
        role,
        mode,
        auth_path,
        address: get(VAULT_ADDRESS, Some(AGENT_ADDRESS)).unwrap_or_else(|| config.vault_address.clone()),
        vault_namespace: get(VAULT_NAMESPACE, Some(AGENT_NAMESPACE)).filter(|n| !n.is_empty()),
        secrets_dir: get(SECRETS_DIR, None).unwrap_or_else(|| "/vault/secrets".into()),
        file_mode,
        poll_interval: get(POLL_INTERVAL, None).unwrap_or_else(|| "60s".into()),
        notify_signal: get(NOTIFY_SIGNAL, None),
        notify_process: get(NOTIFY_PROCESS, None),
        notify_command,
        notify_url,
        agent_image: get(AGENT_IMAGE, None).filter(|image| !image.trim().is_empty()),
        files,
        agent_compatible,
    })
}

fn check_name(name: &str) -> Result<(), Refused> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(Refused(format!("secret name {name:?} must be letters, digits, '-', '_' or '.'")));
    }
    Ok(())
}

/// A file name stays inside the secrets directory.
fn check_file(file: &str) -> Result<(), Refused> {
    let bad = file.is_empty()
        || file.starts_with('/')
        || file.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || file.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        return Err(Refused(format!("file name {file:?} must be a relative path inside the secrets directory")));
    }
    Ok(())
}
