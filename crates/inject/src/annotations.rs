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
pub const AGENT_SECRET_VOLUME_PATH: &str = "vault.hashicorp.com/secret-volume-path";
pub const AGENT_RENDER_INTERVAL: &str = "vault.hashicorp.com/template-static-secret-render-interval";
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
    /// Octal mode of this file (`agent-inject-perms-<name>`); none: the
    /// Pod's file mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Shell command run after this file is written
    /// (`agent-inject-command-<name>`): `/bin/sh -c <command>`, as the
    /// Vault agent runs it, so only with an agent image that has a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The template's action delimiters, left and right, when the Pod
    /// names others than `{{` and `}}` (`agent-template-left-delim-<name>`,
    /// `agent-template-right-delim-<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiters: Option<(String, String)>,
    /// `error-on-missing-key-<name>`: a missing key fails the render (Go's
    /// `missingkey=error`) rather than printing `<no value>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error_on_missing_key: bool,
}

/// What the Vault agent injector's annotations set on the agent containers
/// and the Pod beyond the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentShape {
    /// `agent-requests-*` / `agent-limits-*`: resource name to quantity.
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    /// `agent-run-as-user` / `-group` (or the app's, `-same-user`).
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    /// `agent-set-security-context: false`: the agent containers get none.
    pub no_security_context: bool,
    /// `agent-share-process-namespace`.
    pub share_process_namespace: Option<bool>,
    /// `agent-inject-containers`: only these get the secrets mounted.
    pub containers: Option<Vec<String>>,
    /// `log-level`, `log-format: json`.
    pub log_level: Option<String>,
    pub log_json: bool,
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
    /// The agent containers' and the Pod's settings.
    pub shape: AgentShape,
}

const AGENT: &str = "vault.hashicorp.com/";

/// The injector's `json` default template (`agent-inject-default-template:
/// json`): the secret's `.Data` as JSON, and a newline.
fn json_template(path: &str) -> String {
    let quoted = serde_json::to_string(path).unwrap_or_default();
    format!("{{{{ with secret {quoted} }}}}{{{{ .Data | toJSON }}}}\n{{{{ end }}}}")
}

/// Go's `strconv.ParseBool`, as the injector reads its yes/no annotations.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
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
    let agent = |name: &str| annotations.get(&format!("{AGENT}{name}")).map(|v| v.trim().to_owned());
    // The injector's template for a secret without one: `map` (each key as
    // Go prints it, rendered by the agent) or `json`.
    let json_default = match agent("agent-inject-default-template").as_deref() {
        None | Some("map") => false,
        Some("json") => true,
        Some(_) => {
            return Err(Refused(format!("{AGENT}agent-inject-default-template must be \"map\" or \"json\"")));
        }
    };
    let mut files = Vec::new();
    for (key, path) in annotations {
        let (raw, injector, path) = match (key.strip_prefix(SECRET_PREFIX), key.strip_prefix(AGENT_SECRET_PREFIX)) {
            (Some(raw), _) => (raw, false, path.as_str()),
            (None, Some(raw)) => (raw, true, path.as_str()),
            // The injector also makes a secret of a template without an
            // agent-inject-secret-<name>: its file, its own paths.
            (None, None) => match key.strip_prefix(AGENT_TEMPLATE_PREFIX) {
                Some(raw)
                    if !raw.starts_with("file-")
                        && !annotations.contains_key(&format!("{AGENT_SECRET_PREFIX}{raw}")) =>
                {
                    if path.trim().is_empty() {
                        continue;
                    }
                    (raw, true, "")
                }
                _ => continue,
            },
        };
        // The injector skips an annotation left empty.
        if injector && key.starts_with(AGENT_SECRET_PREFIX) && path.trim().is_empty() {
            continue;
        }
        check_name(raw)?;
        // The injector lowercases a secret's name (its default file name)
        // unless preserve-secret-case(-<name>) is true; its other
        // annotations are found by the name as written.
        let preserve = agent(&format!("preserve-secret-case-{raw}")).or_else(|| agent("preserve-secret-case"));
        let name = match (injector, preserve.as_deref()) {
            (true, Some("true" | "1" | "t" | "T" | "TRUE" | "True")) | (false, _) => raw.to_owned(),
            (true, _) => raw.to_lowercase(),
        };
        let template = annotations
            .get(&format!("{TEMPLATE_PREFIX}{raw}"))
            .or_else(|| annotations.get(&format!("{AGENT_TEMPLATE_PREFIX}{raw}")))
            .cloned()
            .or_else(|| (injector && json_default).then(|| json_template(path.trim())));
        let delimiter = |side: &str| agent(&format!("agent-template-{side}-delim-{raw}")).filter(|d| !d.is_empty());
        let delimiters = match (delimiter("left"), delimiter("right")) {
            (None, None) => None,
            (left, right) => Some((left.unwrap_or_else(|| "{{".into()), right.unwrap_or_else(|| "}}".into()))),
        };
        // The injector joins the file name to the secrets directory, so a
        // leading `/` stays inside it.
        let file = annotations
            .get(&format!("{FILE_PREFIX}{raw}"))
            .or_else(|| annotations.get(&format!("{AGENT_FILE_PREFIX}{raw}")))
            .map(|file| if injector { file.trim_start_matches('/').to_owned() } else { file.clone() })
            .unwrap_or_else(|| name.clone());
        check_file(&file)?;
        if files.iter().any(|f: &SecretFile| f.file == file) {
            return Err(Refused(format!("two secrets would be written to the same file {file:?}")));
        }
        let mode = match agent(&format!("agent-inject-perms-{raw}")) {
            Some(mode) => Some(check_mode(&format!("{AGENT}agent-inject-perms-{raw}"), &mode)?),
            None => None,
        };
        let command = agent(&format!("agent-inject-command-{raw}")).filter(|c| !c.is_empty());
        if command.is_some() && get(AGENT_IMAGE, None).is_none_or(|image| image.is_empty()) {
            return Err(Refused(format!(
                "{AGENT}agent-inject-command-{raw}: the command runs with /bin/sh, and vaultsync's agent image has no shell: set {AGENT_IMAGE} to an image built on it with one (or notify the app with {NOTIFY_SIGNAL}, {NOTIFY_COMMAND} or {NOTIFY_URL})"
            )));
        }
        let error_on_missing_key = match agent(&format!("error-on-missing-key-{raw}")).as_deref() {
            None | Some("") => false,
            Some(value) => parse_bool(value).ok_or_else(|| {
                Refused(format!("{AGENT}error-on-missing-key-{raw} must be true or false, not {value:?}"))
            })?,
        };
        files.push(SecretFile {
            name,
            path: path.trim().to_owned(),
            template,
            file,
            mode,
            command,
            delimiters,
            error_on_missing_key,
        });
    }
    if files.is_empty() && mode != Mode::Exec {
        return Err(Refused(format!(
            "no secret to render: add an annotation {SECRET_PREFIX}<name> (or {AGENT_SECRET_PREFIX}<name>) naming a Vault path"
        )));
    }
    // The Vault agent writes a file 0644 unless told otherwise: a Pod
    // written for its injector may read it as another user than the
    // agent's. vaultsync's own annotations keep the tighter 0440.
    let default_mode = if agent_compatible && !annotations.contains_key(INJECT) { "0644" } else { "0440" };
    let file_mode = get(FILE_MODE, None).unwrap_or_else(|| default_mode.into());
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
    let secrets_dir = get(SECRETS_DIR, Some(AGENT_SECRET_VOLUME_PATH)).unwrap_or_else(|| "/vault/secrets".into());
    if let Some((key, _)) = annotations.iter().find(|(k, v)| {
        k.strip_prefix(AGENT_SECRET_VOLUME_PATH).is_some_and(|rest| rest.starts_with('-')) && v.trim() != secrets_dir
    }) {
        return Err(Refused(format!(
            "{key}: a secret of its own directory is not supported; put every secret in one secret-volume-path (and name subdirectories with agent-inject-file-<name>)"
        )));
    }
    Ok(Request {
        role,
        mode,
        auth_path,
        address: get(VAULT_ADDRESS, Some(AGENT_ADDRESS)).unwrap_or_else(|| config.vault_address.clone()),
        vault_namespace: get(VAULT_NAMESPACE, Some(AGENT_NAMESPACE)).filter(|n| !n.is_empty()),
        secrets_dir,
        file_mode,
        poll_interval: get(POLL_INTERVAL, Some(AGENT_RENDER_INTERVAL)).unwrap_or_else(|| "60s".into()),
        notify_signal: get(NOTIFY_SIGNAL, None),
        notify_process: get(NOTIFY_PROCESS, None),
        notify_command,
        notify_url,
        agent_image: get(AGENT_IMAGE, None).filter(|image| !image.trim().is_empty()),
        files,
        agent_compatible,
        shape: agent_shape(annotations)?,
    })
}

/// The injector's settings of the agent containers and the Pod.
fn agent_shape(annotations: &BTreeMap<String, String>) -> Result<AgentShape, Refused> {
    let agent = |name: &str| annotations.get(&format!("{AGENT}{name}")).map(|v| v.trim().to_owned());
    let flag = |name: &str| -> Result<Option<bool>, Refused> {
        match agent(name).as_deref() {
            None => Ok(None),
            Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(Some(true)),
            Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(Some(false)),
            Some(other) => Err(Refused(format!("{AGENT}{name}: {other:?} is not true or false"))),
        }
    };
    let id = |name: &str| -> Result<Option<i64>, Refused> {
        agent(name)
            .map(|v| v.parse::<i64>().map_err(|_| Refused(format!("{AGENT}{name}: {v:?} is not a numeric id"))))
            .transpose()
    };
    let mut shape = AgentShape::default();
    for (resource, suffix) in [("cpu", "cpu"), ("memory", "mem"), ("ephemeral-storage", "ephemeral")] {
        if let Some(quantity) = agent(&format!("agent-requests-{suffix}")).filter(|q| !q.is_empty()) {
            shape.requests.insert(resource.to_owned(), quantity);
        }
        if let Some(quantity) = agent(&format!("agent-limits-{suffix}")).filter(|q| !q.is_empty()) {
            shape.limits.insert(resource.to_owned(), quantity);
        }
    }
    shape.run_as_user = id("agent-run-as-user")?;
    shape.run_as_group = id("agent-run-as-group")?;
    shape.no_security_context = flag("agent-set-security-context")? == Some(false);
    shape.share_process_namespace = flag("agent-share-process-namespace")?;
    shape.containers = agent("agent-inject-containers")
        .filter(|list| !list.is_empty())
        .map(|list| list.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect());
    shape.log_level = agent("log-level").filter(|l| !l.is_empty());
    if let Some(level) = &shape.log_level
        && !matches!(level.as_str(), "trace" | "debug" | "info" | "warn" | "error")
    {
        return Err(Refused(format!("{AGENT}log-level: {level:?} is not one of trace, debug, info, warn, error")));
    }
    shape.log_json = agent("log-format").as_deref() == Some("json");
    Ok(shape)
}

/// A file mode the injector's `agent-inject-perms-<name>` may set: octal,
/// never writable by group or others.
fn check_mode(annotation: &str, mode: &str) -> Result<String, Refused> {
    let digits = mode.trim_start_matches('0');
    let value = u32::from_str_radix(if digits.is_empty() { "0" } else { digits }, 8)
        .ok()
        .filter(|v| *v <= 0o777 && mode.chars().all(|c| c.is_ascii_digit()));
    match value {
        Some(v) if v & 0o022 == 0 => Ok(format!("{v:04o}")),
        Some(_) => Err(Refused(format!(
            "{annotation}: {mode:?} lets group or others write the file; vaultsync writes secrets read-only for them"
        ))),
        None => Err(Refused(format!("{annotation}: {mode:?} is not an octal file mode such as 0400"))),
    }
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
