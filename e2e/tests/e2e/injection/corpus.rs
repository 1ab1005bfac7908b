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
use super::oracle::{bao_agent_render, vault_agent_templates};

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
    None,
];

#[tokio::test]
async fn a_corpus_of_injector_pods_renders_as_bao_agent_renders_it() -> anyhow::Result<()> {
    let env = TestEnv::new("inject-corpus").await?;
    env.create_app_service_account().await?;
    let (user, password) = (env.secret_value("corpus-user"), env.secret_value("corpus-password"));
    let fields = json!({
        "user": user, "password": password, "note": " Hello World ", "json": "{\"a\": 1}",
        "multi": "one\ntwo", "list": "a,b,c", "num": "41", "port": 5432, "ratio": 1.5, "whole": 2.0,
    });
    let path = format!("{}/corpus", env.prefix);
    env.bao.kv2_put(&path, fields.clone()).await?;
    env.bao.kv1_put(&path, fields).await?;
    let role = format!("{}-corpus", env.prefix);
    let policy = format!(
        "path \"secret/data/{p}/*\" {{ capabilities = [\"read\"] }}\npath \"kv1/{p}/*\" {{ capabilities = [\"read\"] }}",
        p = env.prefix
    );
    vault_role_with_policy(&env, &role, &env.namespace, &role, &policy).await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);

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
    Webhook::wait_called(&pods, &corpus[0]).await?;
    let dir = std::env::temp_dir().join(format!("inject-corpus-{}", env.prefix));
    std::fs::create_dir_all(&dir)?;
    let mut ours = BTreeMap::new();
    let mut oracle_templates = Vec::new();
    let mut token = None;
    for manifest in &corpus {
        env.apply(manifest.clone()).await?;
        let name = manifest["metadata"]["name"].as_str().context("name")?.to_owned();
        let stored = pods.get(&name).await?;
        let token = match &token {
            Some(token) => token,
            None => token.insert(pod_token(&env, &stored, &dir).await?),
        };
        let secrets = dir.join(&name);
        std::fs::create_dir_all(&secrets)?;
        let config = agent_config(&stored, "vaultsync-agent-init", token, &secrets)?;
        let output = run_agent(&config, &["init"], &dir).await?;
        let result = if output.status.success() {
            let file = secrets.join("out");
            Ok((std::fs::read_to_string(&file)?, mode(&file)?))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        };
        ours.insert(name.clone(), result);
        let annotations = stored.metadata.annotations.clone().unwrap_or_default();
        for (_, template) in vault_agent_templates(&annotations) {
            oracle_templates.push((name.clone(), template));
        }
    }
    let token = token.context("no Pod")?;
    let oracle_dir = dir.join("oracle");
    let oracle = bao_agent_render(&env, &role, &token, &oracle_dir, &oracle_templates).await?;

    let mut differences = Vec::new();
    for (name, expected) in &oracle {
        let expected_mode = mode(&oracle_dir.join(name))?;
        match ours.get(name) {
            Some(Ok((content, file_mode))) if content == expected && *file_mode == expected_mode => {}
            Some(Ok((content, file_mode))) => differences.push(format!(
                "{name}: ours {content:?} ({file_mode:o}), bao agent's {expected:?} ({expected_mode:o})"
            )),
            Some(Err(stderr)) => differences.push(format!("{name}: our agent failed: {stderr}")),
            None => differences.push(format!("{name}: not rendered by our agent")),
        }
    }
    anyhow::ensure!(oracle.len() == corpus.len(), "bao agent rendered {} of {}", oracle.len(), corpus.len());
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

fn mode(path: &std::path::Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}
