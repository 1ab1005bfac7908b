//! The oracle of the template tests: OpenBao's own agent (the Vault
//! agent's fork, consul-template inside) renders the templates a Pod's
//! Vault agent annotations ask for, and vaultsync's agent must write the
//! same bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use vaultsync_e2e::TestEnv;

/// A Vault agent template using what consul-template gives a `secret`:
/// nested data, metadata, lease fields, Go's `printf`, comparisons.
pub(super) const VAULT_AGENT_META_TEMPLATE: &str = r#"{{- with secret "PATH" -}}
version={{ .Data.metadata.version }} lease={{ .LeaseDuration }} renewable={{ .Renewable }} keys={{ len .Data.data }}
{{ range $k, $v := .Data.data }}{{ $k }}={{ printf "%q" $v }}
{{ end }}{{ if eq .Data.data.note "x" }}eq{{ else }}ne{{ end }} {{ index .Data.data "note" }} {{ .Data.metadata.destroyed }} {{ .Data.metadata.custom_metadata }}
{{- end }}"#;

/// consul-template's functions, as Vault agent templates use them.
pub(super) const VAULT_AGENT_FUNCS_TEMPLATE: &str = r#"{{ with secret "PATH" }}{{ .Data.data | toJSON }}
{{ .Data.data | toJSONPretty }}
{{ .Data.data.note | toUpper }} {{ .Data.data.note | base64Encode }} {{ .Data.data.note | sha256Hex }}
{{ .Data.data.note | replaceAll "<" "[" }} {{ .Data.data | sprig_keys | sprig_sortAlpha | join "," }} {{ if .Data.data.note | contains "&" }}amp{{ end }} [{{ .Data.data.missing }}]
{{ .Data.data.note | regexReplaceAll "([<>])" "($1)" }} {{ regexMatch "^a<" .Data.data.note }} {{ regexMatch "^z" .Data.data.note }}
{{ 1 | add 2 }} {{ 10 | subtract 3 }} {{ 2 | multiply 3 }} {{ 7 | divide 2 }} {{ 7.0 | divide 2 }} {{ 10 | modulo 3 }} {{ 3 | minimum 5 }} {{ 2.5 | maximum 1 }} {{ .Data.data.note | base64URLEncode }}
{{ end }}"#;

/// One template stanza of the Vault agent's config, as the injector writes
/// it for a secret (vault-k8s `newTemplateConfigs`).
#[derive(Debug, Clone)]
pub(super) struct OracleTemplate {
    /// Where it is written, relative to the secrets volume.
    pub file: String,
    pub contents: String,
    pub left_delimiter: String,
    pub right_delimiter: String,
    /// `agent-inject-perms-<name>`; none: the agent's 0644.
    pub perms: Option<String>,
    /// `error-on-missing-key-<name>`.
    pub error_on_missing_key: bool,
}

/// The templates a Pod's Vault agent annotations ask for, as the injector
/// reads them: a secret for each `agent-inject-secret-<name>` or
/// `agent-inject-template-<name>`; its name lowercased unless
/// `preserve-secret-case`; its template, or the default one
/// (`agent-inject-default-template`: `map`, each key of `.Data` as Go
/// prints it, or `json`); its file (`agent-inject-file-<name>`, joined to
/// the volume), delimiters and perms.
pub(super) fn vault_agent_templates(annotations: &BTreeMap<String, String>) -> Vec<OracleTemplate> {
    const AGENT: &str = "vault.hashicorp.com/";
    let get = |key: String| annotations.get(&format!("{AGENT}{key}")).cloned();
    let json_default = get("agent-inject-default-template".into()).as_deref() == Some("json");
    let mut raw_names: Vec<&str> = Vec::new();
    for (key, value) in annotations {
        let raw = key
            .strip_prefix(&format!("{AGENT}agent-inject-secret-"))
            .or_else(|| key.strip_prefix(&format!("{AGENT}agent-inject-template-")));
        if let Some(raw) = raw
            && !value.trim().is_empty()
            && !raw_names.contains(&raw)
        {
            raw_names.push(raw);
        }
    }
    raw_names
        .into_iter()
        .map(|raw| {
            let preserve = get(format!("preserve-secret-case-{raw}"))
                .or_else(|| get("preserve-secret-case".into()))
                .is_some_and(|v| v == "true");
            let name = if preserve { raw.to_owned() } else { raw.to_lowercase() };
            let path = get(format!("agent-inject-secret-{raw}")).unwrap_or_default();
            let contents = get(format!("agent-inject-template-{raw}")).unwrap_or_else(|| {
                if json_default {
                    format!("{{{{ with secret \"{path}\" }}}}{{{{ .Data | toJSON }}}}\n{{{{ end }}}}")
                } else {
                    format!("{{{{ with secret \"{path}\" }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}")
                }
            });
            let delimiter = |side: &str, default: &str| {
                get(format!("agent-template-{side}-delim-{raw}")).filter(|d| !d.is_empty()).unwrap_or(default.into())
            };
            OracleTemplate {
                file: get(format!("agent-inject-file-{raw}"))
                    .map(|f| f.trim_start_matches('/').to_owned())
                    .unwrap_or(name),
                contents,
                left_delimiter: delimiter("left", "{{"),
                right_delimiter: delimiter("right", "}}"),
                perms: get(format!("agent-inject-perms-{raw}")),
                error_on_missing_key: get(format!("error-on-missing-key-{raw}")).is_some_and(|v| v == "true"),
            }
        })
        .collect()
}

/// Renders `templates` with `bao agent` (pre-populate only, as the Vault
/// agent injector's init container runs it), logging in through Kubernetes
/// auth as `role` with the token at `token`; file name to content.
pub(super) async fn bao_agent_render(
    env: &TestEnv,
    role: &str,
    token: &Path,
    dir: &Path,
    templates: &[OracleTemplate],
) -> anyhow::Result<BTreeMap<String, String>> {
    std::fs::create_dir_all(dir)?;
    let config = json!({
        "exit_after_auth": true,
        "vault": {"address": env.bao.addr},
        "auto_auth": {
            "method": {"type": "kubernetes", "mount_path": "auth/kubernetes",
                       "config": {"role": role, "token_path": token}},
            "sink": [{"type": "file", "config": {"path": dir.join("token")}}],
        },
        "template_config": {"exit_on_retry_failure": true},
        "template": templates.iter().map(|t| {
            let mut stanza = json!({
                "destination": dir.join(&t.file), "contents": t.contents,
                "left_delimiter": t.left_delimiter, "right_delimiter": t.right_delimiter,
                "error_on_missing_key": t.error_on_missing_key,
            });
            if let Some(perms) = &t.perms {
                stanza["perms"] = json!(perms);
            }
            stanza
        }).collect::<Vec<_>>(),
    });
    let file = dir.join("agent.json");
    std::fs::write(&file, config.to_string())?;
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bao").arg("agent").arg(format!("-config={}", file.display())).output(),
    )
    .await
    .context("bao agent did not finish")??;
    anyhow::ensure!(output.status.success(), "bao agent: {}", String::from_utf8_lossy(&output.stdout));
    let mut rendered = BTreeMap::new();
    for OracleTemplate { file, .. } in templates {
        rendered.insert(
            file.clone(),
            std::fs::read_to_string(dir.join(file)).with_context(|| format!("bao agent's {file}"))?,
        );
    }
    Ok(rendered)
}
