//! Injection into Pods, no Secret object: `vaultsync webhook` registered
//! with the real API server through a MutatingWebhookConfiguration whose
//! clientConfig.url points at it over TLS (it publishes its own CA into the
//! configuration), and `vaultsync agent` run as a local process with a real
//! projected token of the Pod's ServiceAccount (TokenRequest bound to the
//! stored Pod), logging in through OpenBao's Kubernetes auth.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use vaultsync_e2e::{Postgres, TestEnv, eventually, report};

pub(crate) fn binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/vaultsync")
}

/// A webhook process, and the MutatingWebhookConfiguration that sends it
/// the annotated Pods of one namespace.
pub(crate) struct Webhook {
    pub(crate) children: Vec<tokio::process::Child>,
    addrs: Vec<String>,
    pub(crate) addr: String,
    config: String,
    client: kube::Client,
}

impl Webhook {
    /// `replicas` webhook processes; more than one share their certificate
    /// through a Secret of the test namespace, and each gets a webhook
    /// entry of its own (so every Pod goes through each of them).
    pub(crate) async fn start(env: &TestEnv, cert_lifetime: &str, replicas: usize) -> anyhow::Result<Webhook> {
        let mut addrs = Vec::new();
        for _ in 0..replicas {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            addrs.push(format!("127.0.0.1:{port}"));
        }
        let addr = addrs[0].clone();
        let config = format!("vaultsync-inject-{}", env.prefix);
        let annotated = "has(object.metadata.annotations) && \
            (object.metadata.annotations.exists(k, k == 'vaultsync.dev/inject' && object.metadata.annotations[k] == 'true') || \
             object.metadata.annotations.exists(k, k == 'vault.hashicorp.com/agent-inject' && object.metadata.annotations[k] == 'true'))";
        let entries: Vec<Value> = addrs.iter().enumerate().map(|(i, addr)| json!({
                "name": format!("inject-{i}.vaultsync.dev"),
                "clientConfig": {"url": format!("https://{addr}/mutate")},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.namespace}},
                "matchConditions": [{"name": "asks-for-injection", "expression": annotated}],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            })).collect();
        let mwc: MutatingWebhookConfiguration =
            serde_json::from_value(json!({"metadata": {"name": config}, "webhooks": entries}))?;
        Api::<MutatingWebhookConfiguration>::all(env.client.clone()).create(&PostParams::default(), &mwc).await?;
        let state = std::env::var("VAULTSYNC_STATE")?;
        let mut children = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let log = std::fs::File::create(format!("{state}/logs/webhook-{}-{i}.log", env.prefix))?;
            let mut command = tokio::process::Command::new(binary());
            command
                .args(["webhook", "--listen", addr, "--hosts", "127.0.0.1", "--cert-lifetime", cert_lifetime])
                .args(["--vault-address", &env.bao.addr, "--agent-image", "registry.example.com/vaultsync:test"])
                .args(["--webhook-config", &config]);
            if replicas > 1 {
                command.args(["--tls-secret", "vaultsync-webhook-tls", "--tls-secret-namespace", &env.namespace]);
            }
            children.push(command.stderr(log).kill_on_drop(true).spawn()?);
        }
        let webhook = Webhook { children, addrs, addr, config, client: env.client.clone() };
        // Ready once its CA is in the configuration.
        let api = Api::<MutatingWebhookConfiguration>::all(env.client.clone());
        eventually(Duration::from_secs(30), || async {
            let current = api.get(&webhook.config).await?;
            Ok(current.webhooks.unwrap_or_default().iter().all(|w| w.client_config.ca_bundle.is_some()))
        })
        .await
        .context("the webhook publishes its CA")?;
        Ok(webhook)
    }

    /// `vaultsync_webhook_admissions_total{result}`.
    async fn admissions(&self, result: &str) -> anyhow::Result<u64> {
        let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
        let text = http.get(format!("https://{}/metrics", self.addr)).send().await?.text().await?;
        metric(&text, &format!("vaultsync_webhook_admissions_total{{result=\"{result}\"}}"))
    }

    /// Rotations made, summed over the replicas.
    async fn rotations(&self) -> anyhow::Result<u64> {
        let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
        let mut total = 0;
        for addr in &self.addrs {
            let text = http.get(format!("https://{addr}/metrics")).send().await?.text().await?;
            total += metric(&text, "vaultsync_webhook_certificate_rotations_total")?;
        }
        Ok(total)
    }

    pub(crate) async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        let _ = Api::<MutatingWebhookConfiguration>::all(self.client.clone())
            .delete(&self.config, &DeleteParams::default())
            .await;
    }
}

fn metric(text: &str, series: &str) -> anyhow::Result<u64> {
    let line = text.lines().find(|l| l.starts_with(series)).with_context(|| format!("{series} in /metrics"))?;
    Ok(line.rsplit(' ').next().unwrap_or("0").parse()?)
}

pub(crate) fn pod(name: &str, annotations: Value, container: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"serviceAccountName": "app", "containers": [container]},
    })
}

/// The Vault side: KV values, a policy reading them, a Kubernetes auth role
/// for ServiceAccount `app` of `namespace` (audience `vault`).
async fn vault_role(env: &TestEnv, role: &str, namespace: &str) -> anyhow::Result<()> {
    let policy = format!("path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}", env.prefix);
    env.bao.write(&format!("sys/policies/acl/{}", env.prefix), json!({"policy": policy})).await?;
    env.bao
        .write(
            &format!("auth/kubernetes/role/{role}"),
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": [namespace],
                   "audience": "vault", "token_policies": [env.prefix], "token_ttl": "10m"}),
        )
        .await?;
    Ok(())
}

/// A token of ServiceAccount `app` bound to the stored Pod, as the kubelet
/// would project it (audience `vault`), written to a file.
async fn pod_token(env: &TestEnv, pod: &Pod, dir: &Path) -> anyhow::Result<PathBuf> {
    let api = Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace);
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["vault"], "expirationSeconds": 600,
                 "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}},
    });
    let answer: Value = api.create_subresource("token", "app", &PostParams::default(), &request).await?;
    let path = dir.join("token");
    std::fs::write(&path, answer["status"]["token"].as_str().context("token")?)?;
    Ok(path)
}

/// The agent configuration the webhook put into the Pod, pointed at local
/// paths (the token file, a secrets directory).
fn agent_config(pod: &Pod, container: &str, token: &Path, secrets: &Path) -> anyhow::Result<Value> {
    let spec = pod.spec.as_ref().context("spec")?;
    let all = spec.init_containers.iter().flatten().chain(spec.containers.iter());
    let c = all.into_iter().find(|c| c.name == container).with_context(|| format!("container {container}"))?;
    let value = c.env.iter().flatten().find(|e| e.name == "VAULTSYNC_AGENT_CONFIG").and_then(|e| e.value.clone());
    let mut config: Value = serde_json::from_str(&value.context("VAULTSYNC_AGENT_CONFIG")?)?;
    config["tokenPath"] = json!(token);
    config["secretsDir"] = json!(secrets);
    Ok(config)
}

async fn agent(config: &Value, args: &[&str], dir: &Path) -> anyhow::Result<std::process::Output> {
    Ok(tokio::process::Command::new(binary())
        .arg("agent")
        .args(args)
        .current_dir(dir)
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .output()
        .await?)
}

/// A Vault agent template using what consul-template gives a `secret`:
/// nested data, metadata, lease fields, Go's `printf`, comparisons.
const VAULT_AGENT_META_TEMPLATE: &str = r#"{{- with secret "PATH" -}}
version={{ .Data.metadata.version }} lease={{ .LeaseDuration }} renewable={{ .Renewable }} keys={{ len .Data.data }}
{{ range $k, $v := .Data.data }}{{ $k }}={{ printf "%q" $v }}
{{ end }}{{ if eq .Data.data.note "x" }}eq{{ else }}ne{{ end }} {{ index .Data.data "note" }} {{ .Data.metadata.destroyed }} {{ .Data.metadata.custom_metadata }}
{{- end }}"#;

/// consul-template's functions, as Vault agent templates use them.
const VAULT_AGENT_FUNCS_TEMPLATE: &str = r#"{{ with secret "PATH" }}{{ .Data.data | toJSON }}
{{ .Data.data | toJSONPretty }}
{{ .Data.data.note | toUpper }} {{ .Data.data.note | base64Encode }} {{ .Data.data.note | sha256Hex }}
{{ .Data.data.note | replaceAll "<" "[" }} {{ .Data.data | sprig_keys | sprig_sortAlpha | join "," }} {{ if .Data.data.note | contains "&" }}amp{{ end }} [{{ .Data.data.missing }}]
{{ end }}"#;

/// The templates a Pod's Vault agent annotations ask for, file name to
/// template: `agent-inject-template-<name>`, or the injector's default
/// template (each key of `.Data`, as Go prints it) for a bare
/// `agent-inject-secret-<name>`.
fn vault_agent_templates(annotations: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
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
async fn bao_agent_render(
    env: &TestEnv,
    role: &str,
    token: &Path,
    dir: &Path,
    templates: &[(String, String)],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
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
    let mut rendered = std::collections::BTreeMap::new();
    for (name, _) in templates {
        rendered.insert(
            name.clone(),
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("bao agent's {name}"))?,
        );
    }
    Ok(rendered)
}

#[tokio::test]
async fn annotated_pods_are_mutated_and_their_agent_renders_files() -> anyhow::Result<()> {
    let env = TestEnv::new("inject").await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "app"}}))?;
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &sa).await?;
    let (user, password) = (env.secret_value("inject-user"), env.secret_value("inject-password"));
    // `note` is no secret: characters that Go's printing and JSON escape.
    env.bao
        .kv2_put(&format!("{}/web", env.prefix), json!({"user": user, "password": password, "note": "a<b>&\"c' d"}))
        .await?;
    vault_role(&env, &env.prefix, &env.namespace).await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);

    // A Pod written as the Vault agent injector's documentation writes it.
    let template = format!(
        "{{{{- with secret \"secret/data/{}/web\" -}}}}user={{{{ .Data.data.user }}}}\npassword={{{{ .Data.data.password }}}}\n{{{{- end }}}}",
        env.prefix
    );
    let annotated = pod(
        "web",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": env.prefix,
            "vault.hashicorp.com/agent-inject-secret-config.txt": format!("secret/data/{}/web", env.prefix),
            "vault.hashicorp.com/agent-inject-template-config.txt": template,
            "vault.hashicorp.com/agent-inject-secret-raw": format!("secret/data/{}/web", env.prefix),
            "vault.hashicorp.com/agent-inject-secret-meta": format!("secret/data/{}/web", env.prefix),
            "vault.hashicorp.com/agent-inject-template-meta": VAULT_AGENT_META_TEMPLATE.replace("PATH", &format!("secret/data/{}/web", env.prefix)),
            "vault.hashicorp.com/agent-inject-secret-funcs.json": format!("secret/data/{}/web", env.prefix),
            "vault.hashicorp.com/agent-inject-template-funcs.json": VAULT_AGENT_FUNCS_TEMPLATE.replace("PATH", &format!("secret/data/{}/web", env.prefix)),
        }),
        json!({"name": "web", "image": "registry.example.com/web:1"}),
    );
    // The API server needs a moment to call a new webhook; until then the
    // Pod would be stored unmutated, so wait for a dry run to be mutated.
    eventually(Duration::from_secs(30), || async {
        let mut probe = annotated.clone();
        probe["metadata"]["name"] = json!("probe");
        let p: Pod = serde_json::from_value(probe)?;
        let created = pods.create(&PostParams { dry_run: true, ..Default::default() }, &p).await?;
        Ok(created.spec.and_then(|s| s.init_containers).is_some_and(|i| !i.is_empty()))
    })
    .await
    .context("the API server calls the webhook")?;
    env.apply(annotated.clone()).await?;
    let stored = pods.get("web").await?;
    let spec = stored.spec.clone().context("spec")?;
    let inits: Vec<_> = spec.init_containers.clone().unwrap_or_default();
    assert_eq!(inits.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["vaultsync-agent-init", "vaultsync-agent"]);
    assert_eq!(inits[1].restart_policy.as_deref(), Some("Always"), "the sidecar is a native sidecar");
    assert_eq!(inits[0].args.clone().unwrap_or_default(), ["agent", "init"]);
    let mounts = spec.containers[0].volume_mounts.clone().unwrap_or_default();
    assert!(mounts.iter().any(|m| m.mount_path == "/vault/secrets" && m.read_only == Some(true)));
    let volumes = spec.volumes.clone().unwrap_or_default();
    let token_volume = volumes.iter().find(|v| v.name == "vaultsync-token").context("token volume")?;
    let projected = serde_json::to_value(&token_volume.projected)?;
    assert_eq!(projected["sources"][0]["serviceAccountToken"]["audience"], "vault");
    let annotations = stored.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("vault.hashicorp.com/agent-inject-status").map(String::as_str), Some("injected"));

    // Re-applied: admitted again (UPDATE) and left as it is.
    let already = webhook.admissions("already_injected").await?;
    let mut again = annotated.clone();
    again["metadata"]["labels"] = json!({"touched": "yes"});
    env.apply(again).await?;
    let after = pods.get("web").await?;
    assert_eq!(after.spec.and_then(|s| s.init_containers).map(|i| i.len()), Some(2), "no second injection");
    assert!(webhook.admissions("already_injected").await? > already, "the webhook saw the re-admission");

    // An unannotated Pod is stored unchanged and never reaches the webhook.
    let seen = webhook.admissions("untouched").await? + webhook.admissions("mutated").await?;
    env.apply(pod("plain", json!({"other": "x"}), json!({"name": "plain", "image": "registry.example.com/p:1"})))
        .await?;
    let plain = pods.get("plain").await?;
    assert!(plain.spec.and_then(|s| s.init_containers).is_none_or(|i| i.is_empty()));
    assert_eq!(
        webhook.admissions("untouched").await? + webhook.admissions("mutated").await?,
        seen,
        "the matchCondition kept it away"
    );

    // Anything in the cluster can reach the webhook: an endless body is cut
    // off at its limit, and the webhook goes on answering the API server.
    let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    let flood = http.post(format!("https://{}/mutate", webhook.addr)).body(vec![b' '; 12 << 20]).send().await;
    match flood {
        Ok(answer) => assert_eq!(answer.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE),
        // Closed while still sending: refused all the same.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let mut probe = annotated.clone();
    probe["metadata"]["name"] = json!("after-flood");
    let after: Pod =
        pods.create(&PostParams { dry_run: true, ..Default::default() }, &serde_json::from_value(probe)?).await?;
    assert!(after.spec.and_then(|s| s.init_containers).is_some_and(|i| !i.is_empty()), "still mutating");

    // The injected agent, run as a local process with a token bound to
    // the stored Pod, logs in through Kubernetes auth and writes the files.
    let dir = std::env::temp_dir().join(format!("inject-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(&env, &stored, &dir).await?;
    let config = agent_config(&stored, "vaultsync-agent-init", &token, &secrets)?;
    let output = agent(&config, &["init"], &dir).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "agent init: {stderr}");
    assert!(!stderr.contains(&password), "no value in the agent's output");
    let rendered = std::fs::read_to_string(secrets.join("config.txt"))?;
    assert_eq!(rendered, format!("user={user}\npassword={password}"), "what the Vault agent renders for that template");
    let raw = std::fs::read_to_string(secrets.join("raw"))?;
    assert!(raw.starts_with("data: map[note:a<b>&\"c' d password:"), "{raw:?}");
    // The oracle: OpenBao's own agent (the Vault agent's fork, consul-template
    // inside), logged in the same way, renders each template byte for byte
    // as ours did.
    let oracle =
        bao_agent_render(&env, &env.prefix, &token, &dir.join("oracle"), &vault_agent_templates(&annotations)).await?;
    for (file, expected) in &oracle {
        let ours = std::fs::read_to_string(secrets.join(file))?;
        assert_eq!(&ours, expected, "{file}: vaultsync agent vs bao agent");
    }
    assert_eq!(oracle.len(), 4, "config.txt, raw, meta and funcs.json compared");
    report(&format!("inject: {} templates rendered byte for byte as `bao agent` renders them", oracle.len()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(secrets.join("config.txt"))?.permissions().mode() & 0o777, 0o440);

    // A role bound to another namespace is refused: non-zero, a message
    // naming the role, no file.
    let other_role = format!("{}-elsewhere", env.prefix);
    vault_role(&env, &other_role, "some-other-namespace").await?;
    let refused_dir = dir.join("refused");
    std::fs::create_dir_all(&refused_dir)?;
    let mut refused = config.clone();
    refused["role"] = json!(other_role);
    refused["secretsDir"] = json!(refused_dir);
    let output = agent(&refused, &["init"], &dir).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "refused login exits non-zero");
    assert!(stderr.contains(&other_role) && stderr.contains("login"), "{stderr}");
    assert_eq!(std::fs::read_dir(&refused_dir)?.count(), 0, "no file written");
    report(&format!(
        "inject: refused agent says: {}",
        stderr.lines().find(|l| l.starts_with("Error")).unwrap_or_default()
    ));

    // Exec mode: the value reaches the app's environment only.
    let exec_pod = pod(
        "exec",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": env.prefix, "vaultsync.dev/mode": "exec"}),
        json!({"name": "app", "image": "registry.example.com/app:1", "command": ["sh", "-c"], "args": ["echo \"$DB_PASSWORD\" > out"],
               "env": [{"name": "DB_PASSWORD", "value": format!("vault:secret/data/{}/web#password", env.prefix)}]}),
    );
    env.apply(exec_pod).await?;
    let stored_exec = pods.get("exec").await?;
    let app = &stored_exec.spec.clone().context("spec")?.containers[0];
    let command = app.command.clone().unwrap_or_default();
    assert_eq!(&command[..4], ["/vaultsync/bin/vaultsync", "agent", "exec", "--"]);
    assert_eq!(&command[4..], ["sh", "-c", "echo \"$DB_PASSWORD\" > out"]);
    std::fs::create_dir_all(dir.join("exec-token"))?;
    let exec_token = pod_token(&env, &stored_exec, &dir.join("exec-token")).await?;
    let exec_config = agent_config(&stored_exec, "app", &exec_token, &secrets)?;
    let exec_dir = dir.join("exec");
    std::fs::create_dir_all(&exec_dir)?;
    let output = tokio::process::Command::new(binary())
        .args(["agent", "exec", "--", "sh", "-c", "echo \"$DB_PASSWORD\" > out"])
        .current_dir(&exec_dir)
        .env("VAULTSYNC_AGENT_CONFIG", exec_config.to_string())
        .env("DB_PASSWORD", format!("vault:secret/data/{}/web#password", env.prefix))
        .output()
        .await?;
    let both = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "agent exec: {both}");
    assert_eq!(std::fs::read_to_string(exec_dir.join("out"))?.trim(), password);
    assert!(!both.contains(&password), "the value never appears in the agent's own output");

    // Exec mode without a command is refused at admission, clearly.
    let no_command = pod(
        "nocommand",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": env.prefix, "vaultsync.dev/mode": "exec"}),
        json!({"name": "app", "image": "registry.example.com/app:1",
               "env": [{"name": "X", "value": format!("vault:secret/data/{}/web#password", env.prefix)}]}),
    );
    let error = env.apply(no_command).await.expect_err("refused at admission").to_string();
    assert!(error.contains("has no command"), "{error}");

    // Sidecar notifications as annotations: an agent image of the Pod's
    // choosing (with the program its command needs), a reload URL; a
    // command that is not a JSON argv is refused at admission.
    let notifying = pod(
        "notifying",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": env.prefix, "vaultsync.dev/mode": "sidecar",
               "vaultsync.dev/secret-web": format!("secret/data/{}/web", env.prefix),
               "vaultsync.dev/agent-image": "registry.example.com/team/vaultsync-with-shell:1",
               "vaultsync.dev/notify-command": "[\"/bin/sh\", \"-c\", \"kill -HUP 1\"]",
               "vaultsync.dev/notify-url": "http://127.0.0.1:8080/-/reload"}),
        json!({"name": "app", "image": "registry.example.com/app:1"}),
    );
    env.apply(notifying.clone()).await?;
    let stored = pods.get("notifying").await?;
    let inits = stored.spec.and_then(|s| s.init_containers).unwrap_or_default();
    assert!(inits.iter().all(|c| c.image.as_deref() == Some("registry.example.com/team/vaultsync-with-shell:1")));
    let config: Value = serde_json::from_str(
        &inits[1]
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "VAULTSYNC_AGENT_CONFIG")
            .and_then(|e| e.value.clone())
            .context("config")?,
    )?;
    assert_eq!(config["notifyCommand"], json!(["/bin/sh", "-c", "kill -HUP 1"]));
    assert_eq!(config["notifyUrl"], "http://127.0.0.1:8080/-/reload");
    let mut shell_words = notifying.clone();
    shell_words["metadata"]["name"] = json!("shellwords");
    shell_words["metadata"]["annotations"]["vaultsync.dev/notify-command"] = json!("kill -HUP 1");
    let error = env.apply(shell_words).await.expect_err("refused at admission").to_string();
    assert!(error.contains("JSON array"), "{error}");

    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_sidecar_rewrites_files_atomically_and_notifies_the_app() -> anyhow::Result<()> {
    let env = TestEnv::new("sidecar").await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "app"}}))?;
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &sa).await?;
    let first = env.secret_value("sidecar-1");
    let path = format!("{}/web", env.prefix);
    env.bao.kv2_put(&path, json!({"v": first})).await?;
    vault_role(&env, &env.prefix, &env.namespace).await?;
    // No webhook needed here: the Pod is stored as the webhook stores it,
    // and the sidecar's configuration is what it would carry.
    let stored: Pod = Api::<Pod>::namespaced(env.client.clone(), &env.namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod("side", json!({}), json!({"name": "a", "image": "registry.example.com/a:1"})))?,
        )
        .await?;
    let dir = std::env::temp_dir().join(format!("sidecar-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(&env, &stored, &dir).await?;
    // A process to notify: it records each SIGUSR1 it receives.
    let signals = dir.join("signals");
    let app = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import signal,time\nsignal.signal(signal.SIGUSR1, lambda *a: open({:?},'a').write('usr1\\n'))\nwhile True: time.sleep(1)",
            signals.display().to_string()
        ))
        .kill_on_drop(true)
        .spawn()?;
    // An app's reload endpoint: counts the POSTs it gets.
    let reload = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let reload_url = format!("http://{}/-/reload", reload.local_addr()?);
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = posts.clone();
    let _endpoint = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = reload.accept().await {
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).await.unwrap_or(0);
            if request[..n].starts_with(b"POST /-/reload ") {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
        }
    });
    let commanded = dir.join("commanded");
    let config = json!({
        "address": env.bao.addr, "authPath": "kubernetes", "role": env.prefix,
        "tokenPath": token, "secretsDir": secrets, "fileMode": "0440", "pollInterval": "1s",
        "notifySignal": "SIGUSR1", "notifyProcess": "python3",
        "notifyCommand": ["touch", commanded], "notifyUrl": reload_url,
        "files": [{"name": "v", "path": format!("secret/data/{path}"), "file": "v",
                   "template": format!("{{{{ with secret \"secret/data/{path}\" }}}}{{{{ .Data.data.v }}}}{{{{ end }}}}")}],
    });
    let sidecar = tokio::process::Command::new(binary())
        .args(["agent", "sidecar"])
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let file = secrets.join("v");
    eventually(Duration::from_secs(20), || async { Ok(std::fs::read_to_string(&file).is_ok_and(|c| c == first)) })
        .await?;

    // A reader looping meanwhile never sees anything but a whole value.
    let second = env.secret_value("sidecar-2");
    let reader = {
        let (file, first, second) = (file.clone(), first.clone(), second.clone());
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut reads = 0u64;
            while started.elapsed() < Duration::from_secs(8) {
                let content = std::fs::read_to_string(&file).unwrap_or_default();
                assert!(content == first || content == second, "partial or empty read: {content:?}");
                reads += 1;
                if content == second {
                    return (reads, started.elapsed());
                }
            }
            (reads, started.elapsed())
        })
    };
    let changed_at = Instant::now();
    env.bao.kv2_put(&path, json!({"v": second})).await?;
    let (reads, _) = reader.await?;
    eventually(Duration::from_secs(10), || async { Ok(std::fs::read_to_string(&file).is_ok_and(|c| c == second)) })
        .await?;
    let arrived = changed_at.elapsed();
    eventually(Duration::from_secs(5), || async {
        Ok(std::fs::read_to_string(&signals).is_ok_and(|s| s.contains("usr1")))
    })
    .await
    .context("the app got SIGUSR1")?;
    eventually(Duration::from_secs(5), || async { Ok(commanded.exists()) }).await.context("the notify command ran")?;
    eventually(Duration::from_secs(5), || async { Ok(posts.load(std::sync::atomic::Ordering::SeqCst) == 1) })
        .await
        .context("the notify URL got one POST")?;
    report(&format!(
        "inject: sidecar file changed {arrived:?} after the Vault write (poll 1s ± 20%); {reads} reads saw only whole values"
    ));
    assert!(arrived < Duration::from_secs(5), "within the poll interval plus jitter: {arrived:?}");
    drop(sidecar);
    drop(app);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_webhook_rotates_its_certificate_and_keeps_being_called() -> anyhow::Result<()> {
    for replicas in [1, 2] {
        rotation(replicas).await?;
    }
    Ok(())
}

/// One webhook process, or two sharing their certificate through a Secret.
async fn rotation(replicas: usize) -> anyhow::Result<()> {
    let env = TestEnv::new("injectrot").await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "app"}}))?;
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &sa).await?;
    let webhook = Webhook::start(&env, "6s", replicas).await?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    let annotated = pod(
        "rot",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": "r", "vaultsync.dev/secret-db": "secret/data/x"}),
        json!({"name": "a", "image": "registry.example.com/a:1"}),
    );
    let mutated = || async {
        let p: Pod = serde_json::from_value(annotated.clone())?;
        let created = pods.create(&PostParams { dry_run: true, ..Default::default() }, &p).await?;
        anyhow::Ok(created.spec.and_then(|s| s.init_containers).is_some_and(|i| !i.is_empty()))
    };
    eventually(Duration::from_secs(30), || async { mutated().await }).await?;
    // Rotated at 2/3 of 6 s, twice; calls keep succeeding (Fail policy: a
    // TLS failure would refuse the Pod).
    eventually(Duration::from_secs(30), || async { Ok(webhook.rotations().await? >= 2) }).await?;
    assert!(mutated().await?, "the API server still calls the webhook after rotations");
    report(&format!(
        "inject: {replicas} webhook replica(s): certificate rotated {} times; calls kept working",
        webhook.rotations().await?
    ));
    webhook.stop().await;
    env.cleanup().await;
    Ok(())
}

/// A sidecar of a Pod of ServiceAccount `app` (stored, with a token bound
/// to it), database_role's policy (KV is not needed; it allows
/// database/creds and pki/issue) behind a Kubernetes auth role of the
/// test's namespace: `vaultsync agent init`, then `vaultsync agent sidecar`
/// carrying on from it, with `files` and a 1m poll; the sidecar's output in
/// the returned log file, files in `secrets`.
struct Sidecar {
    _process: tokio::process::Child,
    secrets: PathBuf,
    log: PathBuf,
    /// The files as the init container left them, before the sidecar ran.
    initial: std::collections::BTreeMap<String, String>,
}

async fn start_sidecar(env: &TestEnv, ttl: &str, max_ttl: &str, files: Value) -> anyhow::Result<Sidecar> {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "app"}}))?;
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace).create(&PostParams::default(), &sa).await?;
    env.database_role(ttl, max_ttl).await?;
    env.write_kubernetes_role(&[&env.namespace]).await?;
    let stored: Pod = Api::<Pod>::namespaced(env.client.clone(), &env.namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod("app", json!({}), json!({"name": "a", "image": "registry.example.com/a:1"})))?,
        )
        .await?;
    let dir = std::env::temp_dir().join(format!("sidecar-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(env, &stored, &dir).await?;
    // As the webhook configures sidecar mode: init, then the sidecar, both
    // with the state directory the app does not see.
    let config = json!({
        "address": env.bao.addr, "authPath": "kubernetes", "role": env.prefix,
        "tokenPath": token, "secretsDir": secrets, "fileMode": "0440", "pollInterval": "1m",
        "stateDir": dir.join("state"), "files": files,
    });
    let init = agent(&config, &["init"], &dir).await?;
    anyhow::ensure!(init.status.success(), "agent init: {}", String::from_utf8_lossy(&init.stderr));
    let mut initial = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&secrets)? {
        let entry = entry?;
        initial.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(entry.path())?);
    }
    let log = dir.join("sidecar.log");
    let process = tokio::process::Command::new(binary())
        .args(["agent", "sidecar"])
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    Ok(Sidecar { _process: process, secrets, log, initial })
}

/// A sidecar rendering a dynamic database credential keeps it: the lease is
/// renewed (the credential logs in past its first TTL, OpenBao issued it
/// once), and a new one is written only when the max TTL is near, while the
/// old one still logs in. Its poll interval (1m) is longer than the lease's
/// TTL: it wakes when the lease is due.
#[tokio::test]
async fn the_sidecar_renews_a_dynamic_lease_and_replaces_it_before_its_end() -> anyhow::Result<()> {
    let env = TestEnv::new("sidelease").await?;
    let pg = Postgres::from_env()?;
    // Renewed about every 6 s; from about 24 s on, Vault grants less than a
    // full TTL, and the sidecar reads a new credential then, with some 6 s
    // of the old one left.
    let creds = format!("database/creds/{}", env.prefix);
    let files = json!([{"name": "db", "path": creds, "file": "db",
        "template": format!("{{{{ with secret \"{creds}\" }}}}{{{{ .Data.username }}}} {{{{ .Data.password }}}}{{{{ end }}}}")}]);
    let sidecar = start_sidecar(&env, "9s", "30s", files).await?;
    let (secrets, log) = (sidecar.secrets.clone(), sidecar.log.clone());
    let file = secrets.join("db");
    // The file's credentials, once they differ from `other_than`'s user.
    let read = |other_than: Option<String>| {
        let file = file.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let content = std::fs::read_to_string(&file).unwrap_or_default();
                if let Some((user, password)) = content.split_once(' ')
                    && other_than.as_deref() != Some(user)
                {
                    return anyhow::Ok((user.to_owned(), password.to_owned()));
                }
                anyhow::ensure!(Instant::now() < deadline, "no new credentials in {} after 40 s", file.display());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let (user, password) = read(None).await?;
    let started = Instant::now();
    env.record_secret(&password);
    assert_eq!(
        sidecar.initial.get("db"),
        Some(&format!("{user} {password}")),
        "the sidecar renews what the init container was issued"
    );
    assert!(pg.can_log_in(&user, &password)?, "the sidecar's credential logs in");

    // Past its first 9 s TTL: the same credential, still alive, issued once.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(std::fs::read_to_string(&file)?, format!("{user} {password}"), "renewal keeps the file as it is");
    assert!(pg.can_log_in(&user, &password)?, "the lease was renewed: the credential outlives its first TTL");
    assert_eq!(vaultsync_e2e::Bao::audited_responses(&creds)?, 1, "OpenBao issued one credential, then renewed it");

    // Near the max TTL, a new credential, written while the old one lives.
    let (new_user, new_password) = read(Some(user.clone())).await?;
    env.record_secret(&new_password);
    let replaced_after = started.elapsed();
    // The replacement comes while the old lease has at least a third of its
    // TTL (3 s) left: it still logs in a moment later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_alive = pg.can_log_in(&user, &password)?;
    assert!(pg.can_log_in(&new_user, &new_password)?, "the replacement logs in");
    assert_eq!(vaultsync_e2e::Bao::audited_responses(&creds)?, 2, "one new credential, not one per poll");
    let text = std::fs::read_to_string(&log)?;
    let renewals = text.matches("renewed lease").count();
    report(&format!(
        "inject: sidecar lease renewed {renewals} times, credential replaced {:.1}s after issue (max TTL 30s); \
         old one still logged in 1.5 s later: {old_alive}",
        replaced_after.as_secs_f64()
    ));
    assert!(renewals >= 2, "renewals logged: {text}");
    assert!(old_alive, "the new credential was written well before the old one ended");
    assert!(!text.contains(&password) && !text.contains(&new_password), "no credential in the sidecar's output");
    drop(sidecar);
    env.cleanup().await;
    Ok(())
}

/// A Vault agent template that issues a certificate (`secret` with
/// parameters: a write to `pki/issue/...`): one issue serves both files
/// (key and certificate match), it is kept, and issued anew at about two
/// thirds of its lifetime, though the poll interval (1m) is longer.
#[tokio::test]
async fn the_sidecar_issues_certificates_anew_by_their_lifetime() -> anyhow::Result<()> {
    let env = TestEnv::new("sidepki").await?;
    let issue = format!("secret \"pki/issue/example-dot-com\" \"common_name={}.example.com\" \"ttl=30s\"", env.prefix);
    let files = json!([
        {"name": "crt", "path": "pki/issue/example-dot-com", "file": "tls.crt",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.certificate }}}}\n{{{{ end }}}}")},
        {"name": "ca", "path": "pki/issue/example-dot-com", "file": "ca.crt",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.issuing_ca }}}}\n{{{{ end }}}}")},
        {"name": "key", "path": "pki/issue/example-dot-com", "file": "tls.key",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.private_key }}}}\n{{{{ end }}}}")},
    ]);
    // database_role's policy allows pki/issue/example-dot-com.
    let sidecar = start_sidecar(&env, "1m", "2m", files).await?;
    let (secrets, log) = (sidecar.secrets.clone(), sidecar.log.clone());
    let crt = secrets.join("tls.crt");
    eventually(Duration::from_secs(20), || async {
        Ok(std::fs::read_to_string(&crt).is_ok_and(|c| c.contains("BEGIN")))
    })
    .await
    .context("the sidecar writes the certificate")?;
    let started = Instant::now();
    // The sidecar carries on with the init container's certificate.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = std::fs::read_to_string(&crt)?;
    assert_eq!(sidecar.initial.get("tls.crt"), Some(&first), "the sidecar keeps what the init container was issued");
    let first_key = std::fs::read_to_string(secrets.join("tls.key"))?;
    env.record_secret(first_key.lines().nth(1).unwrap_or_default());
    let openssl = |args: &[&str]| -> anyhow::Result<String> {
        let output = std::process::Command::new("openssl").args(args).current_dir(&secrets).output()?;
        anyhow::ensure!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    openssl(&["verify", "-CAfile", "ca.crt", "tls.crt"]).context("the certificate verifies against the PKI's CA")?;
    assert_eq!(
        openssl(&["x509", "-in", "tls.crt", "-noout", "-pubkey"])?,
        openssl(&["pkey", "-in", "tls.key", "-pubout"])?,
        "one issue serves both files: the key is the certificate's"
    );

    // Issued anew at about 2/3 of its 30 s, before the next poll (1m).
    let mut seen = vec![first.clone()];
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && seen.len() < 2 {
        let now = std::fs::read_to_string(&crt).unwrap_or_default();
        if !seen.contains(&now) {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let renewed_after = started.elapsed();
    anyhow::ensure!(seen.len() == 2, "no new certificate within 40 s");
    openssl(&["verify", "-CAfile", "ca.crt", "tls.crt"]).context("the new certificate verifies")?;
    let new_key = std::fs::read_to_string(secrets.join("tls.key"))?;
    env.record_secret(new_key.lines().nth(1).unwrap_or_default());
    assert_ne!(new_key, first_key, "a new key with the new certificate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(std::fs::read_to_string(&crt)?, seen[1], "not issued again right after");
    let text = std::fs::read_to_string(&log)?;
    report(&format!(
        "inject: sidecar certificate (30s lifetime, first issued by the init container) issued anew {:.1}s after; {} issue(s) by the sidecar",
        renewed_after.as_secs_f64(),
        text.matches("written; its answer lives").count()
    ));
    assert_eq!(text.matches("written; its answer lives").count(), 1, "the sidecar issued once, at 2/3: {text}");
    assert!(!text.contains("PRIVATE KEY"), "no key in the sidecar's output");
    drop(sidecar);
    env.cleanup().await;
    Ok(())
}
