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

/// The templates a Pod's Vault agent annotations ask for, file name to
/// template: `agent-inject-template-<name>`, or the injector's default
/// template (each key of `.Data`, as Go prints it) for a bare
/// `agent-inject-secret-<name>`.
pub(super) fn vault_agent_templates(annotations: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let secret = "vault.hashicorp.com/agent-inject-secret-";
    let template = "vault.hashicorp.com/agent-inject-template-";
    annotations
        .iter()
        .filter_map(|(key, path)| {
            let name = key.strip_prefix(secret)?;
            let contents = annotations.get(&format!("{template}{name}")).cloned().unwrap_or_else(|| {
                format!("{{{{ with secret \"{path}\" }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}")
            });
            Some((name.to_owned(), contents))
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
    templates: &[(String, String)],
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
        "template": templates.iter().map(|(name, contents)| json!({"destination": dir.join(name), "contents": contents}))
            .collect::<Vec<_>>(),
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
    for (name, _) in templates {
        rendered.insert(
            name.clone(),
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("bao agent's {name}"))?,
        );
    }
    Ok(rendered)
}
