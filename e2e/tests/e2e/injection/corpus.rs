//! The differential test of Vault agent templates: a corpus of Pods
//! written for the Vault agent injector (templates as its documentation and
//! common guides write them: fields, ranges, JSON, conditionals, string and
//! encoding functions, numbers as Vault stores them, the default template),
//! each on a KV v2 mount named without `data/`, with it, and on a KV v1
//! mount. Each Pod goes through the webhook (the real API server), its
//! injected agent renders the files, and OpenBao's own agent, configured as
//! the injector would configure it (same token, role and templates),
//! renders them too: the bytes and the file modes must be the same.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use vaultsync_e2e::{TestEnv, Webhook, pod, report};

use super::agent::{agent_config, pod_token, run_agent, vault_role_with_policy};
use super::oracle::{OracleTemplate, bao_agent_render, vault_agent_templates};

/// Templates over `DATA` (the secret's fields: `.Data.data` on KV v2,
/// `.Data` on KV v1) of the secret at `PATH`; `None`: the injector's
/// default template.
const TEMPLATES: &[Option<&str>] = &[
    Some(r#"{{ with secret "PATH" }}{{ DATA.user }}{{ end }}"#),
    Some("{{- with secret \"PATH\" -}}\nuser={{ DATA.user }}\npassword={{ DATA.password }}\n{{- end }}"),
    Some("{{ with secret \"PATH\" }}{{ range $k, $v := DATA }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}"),
    Some(r#"{{ with secret "PATH" }}{{ DATA | toJSON }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA | toJSONPretty }}{{ end }}"#),
    Some("{{ with secret \"PATH\" }}export USER=\"{{ DATA.user }}\"\nexport PASS=\"{{ DATA.password }}\"{{ end }}"),
    Some(r#"{{ with secret "PATH" }}{{ DATA.note | toUpper }}|{{ DATA.note | toLower }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ base64Encode DATA.password }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ if DATA.missing }}yes{{ else }}no{{ end }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ index DATA "user" }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ printf "%s:%s" DATA.user DATA.password }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ (DATA.json | parseJSON).a }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA.multi | indent 4 }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ range split "," DATA.list }}[{{ . }}]{{ end }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA.num | parseInt | add 1 }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ len DATA }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA.user | sha256Hex }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA.note | replaceAll " " "_" | trimSpace }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA.user | regexReplaceAll "^(.{3}).*$" "${1}***" }}{{ end }}"#),
    // Numbers in Vault's data: json.Number to consul-template, printed as
    // written, a string kind to eq, lt, len and print.
    Some(
        r#"{{ with secret "PATH" }}{{ DATA.port }} {{ DATA.ratio }} {{ DATA.whole }} {{ printf "%d|%v|%s|%q|%T|%6s" DATA.port DATA.port DATA.port DATA.port DATA.port DATA.port }} {{ print DATA.port DATA.whole }}{{ end }}"#,
    ),
    Some(
        r#"{{ with secret "PATH" }}{{ if eq DATA.port "5432" }}string{{ end }} {{ len DATA.ratio }} {{ if lt DATA.port "6" }}lt{{ end }} {{ DATA.port | sprig_toString }} {{ (DATA.json | parseJSON).a | add 1 }}{{ end }}"#,
    ),
    // The word `secret` in text, a comment and a string is no call.
    Some(
        "# the secret \"db\" is below {{/* secret \"c\" */}}\n{{ with secret \"PATH\" }}{{ print \"secret \\\"s\\\" \" DATA.user }}{{ end }}",
    ),
    // YAML and TOML as yaml.v2 and BurntSushi/toml write them: quoting,
    // blocks, Vault's numbers, parseJSON's floats, lists of tables.
    Some(r#"{{ with secret "PATH" }}{{ DATA | toYAML }}{{ end }}"#),
    Some(r#"{{ with secret "PATH" }}{{ DATA | toTOML }}{{ end }}"#),
    Some(
        r#"{{ with secret "PATH" }}{{ sprig_dict "dsn" "host: db:5432 # main" "quote" "it's \"q\"" "user" DATA.user "multi" DATA.multi "port" DATA.port "whole" DATA.whole | toYAML }}
{{ parseJSON "{\"db\": {\"hosts\": [\"a b\", \"yes\", \"12:30\"], \"port\": 5432, \"ratio\": 0.5, \"big\": 1e21}, \"tables\": [{\"k\": \"v\"}, {\"k\": null}]}" | toTOML }}
{{ DATA.json | parseJSON | toYAML }}{{ end }}"#,
    ),
    // The rest of consul-template's helpers.
    Some(
        r#"{{ with secret "PATH" }}{{ range loop 1 4 }}{{ . }},{{ end }} {{ range loop "2" }}{{ . }}{{ end }} {{ DATA.user | md5sum }} {{ parseUint "42" }} {{ (parseYAML "a: 1\nb: [x, y]\nc: {d: e}").b }} {{ parseJSON "{\"a/b\": 1, \"a/c\": \"x\", \"d\": true}" | explodeMap | toJSON }}{{ end }}"#,
    ),
    Some(
        r#"{{ with secret "PATH" }}{{ DATA | mergeMap (parseJSON "{\"user\": \"\", \"extra\": \"x\", \"n\": {\"a\": 1}}") | toJSON }} {{ DATA | mergeMapWithOverride (parseJSON "{\"user\": \"other\", \"extra\": [1]}") | toJSON }}{{ end }}"#,
    ),
    None,
];

/// The fields both corpora read, on KV v2 and KV v1: strings of every
/// kind a template meets, and numbers as Vault stores them.
fn fields(user: &str, password: &str) -> serde_json::Value {
    json!({
        "user": user, "password": password, "note": " Hello World ", "json": "{\"a\": 1}",
        "multi": "one\ntwo", "list": "a,b,c", "num": "41", "port": 5432, "ratio": 1.5, "whole": 2.0,
    })
}

/// Seeds `fields` at `<prefix>/<name>` on the KV v2 mount `secret` and the
/// KV v1 mount `kv1`, and a role that reads both: the role's name.
async fn seed(env: &TestEnv, name: &str) -> anyhow::Result<String> {
    let (user, password) = (env.secret_value(&format!("{name}-user")), env.secret_value(&format!("{name}-password")));
    let path = format!("{}/{name}", env.prefix);
    env.bao.kv2_put(&path, fields(&user, &password)).await?;
    env.bao.kv1_put(&path, fields(&user, &password)).await?;
    let role = format!("{}-{name}", env.prefix);
    let policy = format!(
        "path \"secret/data/{p}/*\" {{ capabilities = [\"read\"] }}\npath \"kv1/{p}/*\" {{ capabilities = [\"read\"] }}",
        p = env.prefix
    );
    vault_role_with_policy(env, &role, &env.namespace, &role, &policy).await?;
    Ok(role)
}

/// Sends each Pod through the webhook, renders its files with vaultsync's
/// agent (the init container's configuration, run locally with the Pod's
/// token) and with `bao agent` configured as the injector would configure
/// it (same token, role, templates, file names, delimiters and perms):
/// how many files were compared, and each difference, bytes or mode.
async fn compare_with_bao_agent(
    env: &TestEnv,
    role: &str,
    corpus: &[serde_json::Value],
    dir: &std::path::Path,
) -> anyhow::Result<(usize, Vec<String>)> {
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    Webhook::wait_called(&pods, &corpus[0]).await?;
    std::fs::create_dir_all(dir)?;
    let mut ours = BTreeMap::new();
    let mut oracle_templates = Vec::new();
    let mut token = None;
    for manifest in corpus {
        env.apply(manifest.clone()).await?;
        let name = manifest["metadata"]["name"].as_str().context("name")?.to_owned();
        let stored = pods.get(&name).await?;
        let token = match &token {
            Some(token) => token,
            None => token.insert(pod_token(env, &stored, dir).await?),
        };
        let secrets = dir.join(&name);
        std::fs::create_dir_all(&secrets)?;
        let config = agent_config(&stored, "vaultsync-agent-init", token, &secrets)?;
        let output = run_agent(&config, &["init"], dir).await?;
        let annotations = stored.metadata.annotations.clone().unwrap_or_default();
        for template in vault_agent_templates(&annotations) {
            let file = format!("{name}/{}", template.file);
            let result = if output.status.success() {
                let path = secrets.join(&template.file);
                std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|content| mode(&path).map(|m| (content, m)).map_err(|e| e.to_string()))
            } else {
                Err(format!("our agent failed: {}", String::from_utf8_lossy(&output.stderr)))
            };
            ours.insert(file.clone(), result);
            oracle_templates.push(OracleTemplate { file, ..template });
        }
    }
    let token = token.context("no Pod")?;
    let oracle_dir = dir.join("oracle");
    let oracle = bao_agent_render(env, role, &token, &oracle_dir, &oracle_templates).await?;
    anyhow::ensure!(oracle.len() == ours.len(), "bao agent rendered {} files of {}", oracle.len(), ours.len());
    let mut differences = Vec::new();
    for (file, expected) in &oracle {
        let expected_mode = mode(&oracle_dir.join(file))?;
        match ours.get(file) {
            Some(Ok((content, file_mode))) if content == expected && *file_mode == expected_mode => {}
            Some(Ok((content, file_mode))) => differences.push(format!(
                "{file}: ours {content:?} ({file_mode:o}), bao agent's {expected:?} ({expected_mode:o})"
            )),
            Some(Err(error)) => differences.push(format!("{file}: {error}")),
            None => differences.push(format!("{file}: not rendered by our agent")),
        }
    }
    Ok((oracle.len(), differences))
}

#[tokio::test]
async fn a_corpus_of_injector_pods_renders_as_bao_agent_renders_it() -> anyhow::Result<()> {
    let env = TestEnv::new("inject-corpus").await?;
    env.create_app_service_account().await?;
    let role = seed(&env, "corpus").await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let path = format!("{}/corpus", env.prefix);

    // Each template on each kind of path: KV v2 as the agent names it, KV
    // v2 with data/, KV v1.
    let variants = [
        (format!("secret/{path}"), ".Data.data"),
        (format!("secret/data/{path}"), ".Data.data"),
        (format!("kv1/{path}"), ".Data"),
    ];
    let mut corpus = Vec::new();
    for (v, (secret_path, data)) in variants.iter().enumerate() {
        for (t, template) in TEMPLATES.iter().enumerate() {
            let mut annotations = json!({
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": role,
                "vault.hashicorp.com/agent-pre-populate-only": "true",
                "vault.hashicorp.com/agent-inject-secret-out": secret_path,
            });
            if let Some(template) = template {
                annotations["vault.hashicorp.com/agent-inject-template-out"] =
                    json!(template.replace("PATH", secret_path).replace("DATA", data));
            }
            corpus.push(pod(&format!("c{v}-{t}"), annotations, json!({"name": "app", "image": "app:1"})));
        }
    }
    let dir = std::env::temp_dir().join(format!("inject-corpus-{}", env.prefix));
    let (files, differences) = compare_with_bao_agent(&env, &role, &corpus, &dir).await?;
    anyhow::ensure!(files == corpus.len(), "one file per Pod: {files} of {}", corpus.len());
    anyhow::ensure!(
        differences.is_empty(),
        "{} of {} Pods differ:\n{}",
        differences.len(),
        corpus.len(),
        differences.join("\n")
    );
    report(&format!(
        "inject corpus: {} Pods ({} templates x KV v2 without data/, with data/, KV v1) rendered byte for byte, modes too, as bao agent renders them",
        corpus.len(),
        TEMPLATES.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

/// The annotation sets of the injector's own tests (hashicorp/vault-k8s,
/// agent-inject/agent/config_test.go and annotations_test.go: several
/// secrets, a default template, other delimiters, a template without a
/// secret annotation, file names nested or with a leading `/`, perms,
/// preserved case, the `json` default template, error-on-missing-key) and of its documentation's
/// examples (a connection string, environment exports, a JSON file),
/// pointed at the seeded secret. Each Pod's files, rendered by vaultsync's
/// agent, are the bytes and modes bao agent writes for the same stanzas.
#[tokio::test]
async fn the_injectors_own_annotation_sets_render_as_bao_agent_renders_them() -> anyhow::Result<()> {
    let env = TestEnv::new("inject-cases").await?;
    env.create_app_service_account().await?;
    let role = seed(&env, "cases").await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let kv2 = format!("secret/{}/cases", env.prefix);
    let kv2_data = format!("secret/data/{}/cases", env.prefix);
    let kv1 = format!("kv1/{}/cases", env.prefix);
    let cases: Vec<(&str, serde_json::Value)> = vec![
        // config_test.go's Pod, less what vaultsync refuses (a template
        // file, a secret in another directory, the cache).
        (
            "config",
            json!({
                "agent-inject-secret-foo": kv2,
                "agent-inject-template-foo": format!("{{{{ with secret \"{kv2}\" }}}}template foo {{{{ .Data.data.user }}}}{{{{ end }}}}"),
                "agent-inject-secret-bar": kv2_data,
                "agent-inject-secret-baz": kv1,
                "agent-inject-template-baz": format!("[[ with secret \"{kv1}\" ]][[ range $k, $v := .Data ]][[ $k ]]: [[ $v ]]\n[[ end ]][[ end ]]"),
                "agent-template-left-delim-baz": "[[",
                "agent-template-right-delim-baz": "]]",
                "agent-inject-template-just-template": format!("{{{{ with secret \"{kv2}\" }}}}just-template {{{{ .Data.data.port }}}}{{{{ end }}}}"),
                "agent-inject-file-just-template": ".env",
                "agent-inject-perms-just-template": "0600",
            }),
        ),
        // File names and perms (TestConfigVaultAgentTemplateConfig's cases).
        ("nested", json!({"agent-inject-secret-foo": kv2, "agent-inject-file-foo": "nested/foofile"})),
        (
            "special",
            json!({"agent-inject-secret-foo": kv2, "agent-inject-file-foo": "/special/volume/foofile", "agent-inject-perms-foo": "0600"}),
        ),
        (
            "long-name",
            json!({"agent-inject-secret-foo": kv1, "agent-inject-file-foo": "foofile_name_is_very_very_very_long"}),
        ),
        ("perms", json!({"agent-inject-secret-foo": kv2_data, "agent-inject-perms-foo": "0400"})),
        (
            "nested-perms",
            json!({"agent-inject-secret-foo": kv1, "agent-inject-file-foo": "nested/foofile", "agent-inject-perms-foo": "0600"}),
        ),
        // The json default template, on each kind of path.
        (
            "json-default",
            json!({
                "agent-inject-default-template": "json",
                "agent-inject-secret-kv2": kv2, "agent-inject-secret-data": kv2_data, "agent-inject-secret-kv1": kv1,
            }),
        ),
        ("map-default", json!({"agent-inject-default-template": "map", "agent-inject-secret-kv1": kv1})),
        // A template that only reads keys that exist, under
        // error-on-missing-key (whose failure the unit tests show).
        (
            "missing-key",
            json!({
                "agent-inject-secret-strict": kv2,
                "agent-inject-template-strict": format!("{{{{ with secret \"{kv2}\" }}}}{{{{ .Data.data.user }}}} {{{{ index .Data.data \"absent\" }}}}{{{{ end }}}}"),
                "error-on-missing-key-strict": "true",
            }),
        ),
        // Secret names: lowercased, unless preserved (for all, or one).
        (
            "case",
            json!({
                "agent-inject-secret-MixedCase": kv2, "agent-inject-secret-Other": kv1,
                "preserve-secret-case-MixedCase": "true",
            }),
        ),
        ("case-all", json!({"agent-inject-secret-Upper": kv2_data, "preserve-secret-case": "true"})),
        // The documentation's examples.
        (
            "docs-connection",
            json!({
                "agent-inject-secret-database-config.txt": kv2,
                "agent-inject-template-database-config.txt": format!("{{{{- with secret \"{kv2}\" -}}}}\npostgresql://{{{{ .Data.data.user }}}}:{{{{ .Data.data.password }}}}@postgres:5432/wizard\n{{{{- end -}}}}"),
            }),
        ),
        (
            "docs-env",
            json!({
                "agent-inject-secret-config": kv2_data,
                "agent-inject-template-config": format!("{{{{ with secret \"{kv2_data}\" -}}}}\n  export api_key=\"{{{{ .Data.data.password }}}}\"\n  export port={{{{ .Data.data.port }}}}\n{{{{- end }}}}"),
            }),
        ),
        (
            "docs-json",
            json!({
                "agent-inject-secret-app.json": kv2,
                "agent-inject-template-app.json": format!("{{{{ with secret \"{kv2}\" }}}}{{{{ .Data.data | toJSONPretty }}}}{{{{ end }}}}"),
                "agent-inject-secret-app.props": kv1,
                "agent-inject-template-app.props": format!("{{{{- with secret \"{kv1}\" }}}}\n{{{{- range $k, $v := .Data }}}}\n{{{{ $k }}}}={{{{ $v }}}}\n{{{{- end }}}}\n{{{{ end }}}}"),
            }),
        ),
    ];
    let corpus: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, extra)| {
            let mut annotations = json!({
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": role,
                "vault.hashicorp.com/agent-pre-populate-only": "true",
            });
            for (key, value) in extra.as_object().into_iter().flatten() {
                annotations[format!("vault.hashicorp.com/{key}")] = value.clone();
            }
            pod(name, annotations, json!({"name": "app", "image": "app:1"}))
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("inject-cases-{}", env.prefix));
    let (files, differences) = compare_with_bao_agent(&env, &role, &corpus, &dir).await?;
    anyhow::ensure!(
        differences.is_empty(),
        "{} of {files} files differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
    report(&format!(
        "inject cases: {} Pods of the injector's own test and documentation annotation sets, {files} files rendered byte for byte, modes too, as bao agent renders them",
        corpus.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

fn mode(path: &std::path::Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}
