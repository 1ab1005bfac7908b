//! The steps of `annotated_pod` that run the injected agent: init mode
//! against OpenBao's own agent, a refused login, exec mode, and the
//! admission rules of exec and sidecar mode.

use std::path::PathBuf;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use vaultsync_e2e::{pod, report, vaultsync_binary};

use super::agent::{agent_config, pod_token, run_agent, vault_role, vault_role_with_policy};
use super::annotated_pod::Scene;
use super::oracle::{bao_agent_render, vault_agent_templates};

/// Where the init step left its work, for the steps after it.
pub(super) struct Rendered {
    dir: PathBuf,
    secrets: PathBuf,
    /// The init container's configuration, pointed at local paths.
    config: Value,
}

/// The injected agent, run as a local process with a token bound to the
/// stored Pod, logs in through Kubernetes auth and writes the files, byte
/// for byte as OpenBao's own agent (the oracle, logged in the same way)
/// renders them.
pub(super) async fn init_renders_as_bao_agent(scene: &Scene, stored: &Pod) -> anyhow::Result<Rendered> {
    let (env, user, password) = (&scene.env, &scene.user, &scene.password);
    let dir = std::env::temp_dir().join(format!("inject-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(env, stored, &dir).await?;
    let config = agent_config(stored, "vaultsync-agent-init", &token, &secrets)?;
    let output = run_agent(&config, &["init"], &dir).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "agent init: {stderr}");
    assert!(!stderr.contains(password.as_str()), "no value in the agent's output");
    let rendered = std::fs::read_to_string(secrets.join("config.txt"))?;
    assert_eq!(rendered, format!("user={user}\npassword={password}"), "what the Vault agent renders for that template");
    let raw = std::fs::read_to_string(secrets.join("raw"))?;
    assert!(raw.starts_with("data: map[note:a<b>&\"c' d password:"), "{raw:?}");
    let annotations = stored.metadata.annotations.clone().unwrap_or_default();
    let oracle =
        bao_agent_render(env, &env.prefix, &token, &dir.join("oracle"), &vault_agent_templates(&annotations)).await?;
    for (file, expected) in &oracle {
        let ours = std::fs::read_to_string(secrets.join(file))?;
        assert_eq!(&ours, expected, "{file}: vaultsync agent vs bao agent");
    }
    assert_eq!(oracle.len(), 4, "config.txt, raw, meta and funcs.json compared");
    report(&format!("inject: {} templates rendered byte for byte as `bao agent` renders them", oracle.len()));
    // File modes too: the Vault agent writes 0644 unless told otherwise.
    for file in oracle.keys() {
        assert_eq!(mode(&secrets.join(file))?, mode(&dir.join("oracle").join(file))?, "{file}: mode");
    }
    assert_eq!(mode(&secrets.join("config.txt"))?, 0o644);
    Ok(Rendered { dir, secrets, config })
}

/// A role bound to another namespace is refused: non-zero, a message
/// naming the role, no file.
pub(super) async fn a_role_of_another_namespace_is_refused(scene: &Scene, init: &Rendered) -> anyhow::Result<()> {
    let env = &scene.env;
    let other_role = format!("{}-elsewhere", env.prefix);
    vault_role(env, &other_role, "some-other-namespace").await?;
    let refused_dir = init.dir.join("refused");
    std::fs::create_dir_all(&refused_dir)?;
    let mut refused = init.config.clone();
    refused["role"] = json!(other_role);
    refused["secretsDir"] = json!(refused_dir);
    let output = run_agent(&refused, &["init"], &init.dir).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "refused login exits non-zero");
    assert!(stderr.contains(&other_role) && stderr.contains("login"), "{stderr}");
    assert_eq!(std::fs::read_dir(&refused_dir)?.count(), 0, "no file written");
    report(&format!(
        "inject: refused agent says: {}",
        stderr.lines().find(|l| l.starts_with("Error")).unwrap_or_default()
    ));
    Ok(())
}

/// Exec mode: the webhook wraps the app's command, and the value reaches
/// the app's environment only.
pub(super) async fn exec_mode_puts_the_value_in_the_environment_only(
    scene: &Scene,
    init: &Rendered,
) -> anyhow::Result<()> {
    let (env, password) = (&scene.env, &scene.password);
    let exec_pod = pod(
        "exec",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": env.prefix, "vaultsync.dev/mode": "exec"}),
        json!({"name": "app", "image": "registry.example.com/app:1", "command": ["sh", "-c"], "args": ["echo \"$DB_PASSWORD\" > out"],
               "env": [{"name": "DB_PASSWORD", "value": format!("vault:secret/data/{}/web#password", env.prefix)}]}),
    );
    env.apply(exec_pod).await?;
    let stored_exec = scene.pods.get("exec").await?;
    let app = &stored_exec.spec.clone().context("spec")?.containers[0];
    let command = app.command.clone().unwrap_or_default();
    assert_eq!(&command[..4], ["/vaultsync-agent/bin/vaultsync", "agent", "exec", "--"]);
    assert_eq!(&command[4..], ["sh", "-c", "echo \"$DB_PASSWORD\" > out"]);
    std::fs::create_dir_all(init.dir.join("exec-token"))?;
    let exec_token = pod_token(env, &stored_exec, &init.dir.join("exec-token")).await?;
    let exec_config = agent_config(&stored_exec, "app", &exec_token, &init.secrets)?;
    let exec_dir = init.dir.join("exec");
    std::fs::create_dir_all(&exec_dir)?;
    let output = tokio::process::Command::new(vaultsync_binary())
        .args(["agent", "exec", "--", "sh", "-c", "echo \"$DB_PASSWORD\" > out"])
        .current_dir(&exec_dir)
        .env("VAULTSYNC_AGENT_CONFIG", exec_config.to_string())
        .env("DB_PASSWORD", format!("vault:secret/data/{}/web#password", env.prefix))
        .output()
        .await?;
    let both = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "agent exec: {both}");
    assert_eq!(std::fs::read_to_string(exec_dir.join("out"))?.trim(), password);
    assert!(!both.contains(password.as_str()), "the value never appears in the agent's own output");
    Ok(())
}

/// Exec mode without a command is refused at admission, clearly.
pub(super) async fn exec_mode_without_a_command_is_refused(scene: &Scene) -> anyhow::Result<()> {
    let env = &scene.env;
    let no_command = pod(
        "nocommand",
        json!({"vaultsync.dev/inject": "true", "vaultsync.dev/role": env.prefix, "vaultsync.dev/mode": "exec"}),
        json!({"name": "app", "image": "registry.example.com/app:1",
               "env": [{"name": "X", "value": format!("vault:secret/data/{}/web#password", env.prefix)}]}),
    );
    let error = env.apply(no_command).await.expect_err("refused at admission").to_string();
    assert!(error.contains("has no command"), "{error}");
    Ok(())
}

/// Sidecar notifications as annotations: an agent image of the Pod's
/// choosing (with the program its command needs), a reload URL; a command
/// that is not a JSON argv is refused at admission.
pub(super) async fn sidecar_notifications_come_from_annotations(scene: &Scene) -> anyhow::Result<()> {
    let env = &scene.env;
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
    let stored = scene.pods.get("notifying").await?;
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
    Ok(())
}

/// The Pod of a widely read guide to the Vault agent injector, its
/// annotations as written there: a KV v2 secret named without `data/`
/// (`secret/devops`, as the Vault agent reads it: at `secret/data/devops`),
/// rendered byte for byte as OpenBao's own agent renders it, with the
/// default template, a path of the test's own, and an explicit `data/` one.
pub(super) async fn kv2_paths_read_as_the_vault_agent_reads_them(scene: &Scene) -> anyhow::Result<()> {
    let env = &scene.env;
    env.bao.kv2_put("devops", json!({"token": "pat"})).await?;
    let role = format!("{}-guide", env.prefix);
    let policy = format!(
        "path \"secret/data/devops\" {{ capabilities = [\"read\"] }}\npath \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}",
        env.prefix
    );
    vault_role_with_policy(env, &role, &env.namespace, &role, &policy).await?;
    let web = format!("secret/{}/web", env.prefix);
    let guide = pod(
        "guide",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": role,
            "vault.hashicorp.com/agent-inject-secret-credentials.txt": "secret/devops",
            "vault.hashicorp.com/agent-inject-template-credentials.txt":
                "{{- with secret \"secret/devops\" -}}\ntoken value stored on path secret/devops is {{ .Data.data.token }}\n{{- end }}",
            "vault.hashicorp.com/agent-inject-secret-devops-default": "secret/devops",
            "vault.hashicorp.com/agent-inject-secret-web.txt": web,
            "vault.hashicorp.com/agent-inject-template-web.txt":
                format!("{{{{ with secret \"{web}\" }}}}{{{{ .Data.data.user }}}} v{{{{ .Data.metadata.version }}}}{{{{ end }}}}"),
            "vault.hashicorp.com/agent-inject-secret-explicit.txt": "secret/data/devops",
            "vault.hashicorp.com/agent-inject-template-explicit.txt":
                "{{ with secret \"secret/data/devops\" }}{{ .Data.data.token }}{{ end }}",
        }),
        json!({"name": "web", "image": "registry.example.com/web:1"}),
    );
    env.apply(guide).await?;
    let stored = scene.pods.get("guide").await?;
    let dir = std::env::temp_dir().join(format!("inject-guide-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(env, &stored, &dir).await?;
    let config = agent_config(&stored, "vaultsync-agent-init", &token, &secrets)?;
    let output = run_agent(&config, &["init"], &dir).await?;
    anyhow::ensure!(output.status.success(), "agent init: {}", String::from_utf8_lossy(&output.stderr));
    let rendered = std::fs::read_to_string(secrets.join("credentials.txt"))?;
    assert_eq!(rendered, "token value stored on path secret/devops is pat");
    let annotations = stored.metadata.annotations.clone().unwrap_or_default();
    let oracle =
        bao_agent_render(env, &role, &token, &dir.join("oracle"), &vault_agent_templates(&annotations)).await?;
    assert_eq!(oracle.len(), 4, "{:?}", oracle.keys());
    for (file, expected) in &oracle {
        let ours = std::fs::read_to_string(secrets.join(file))?;
        assert_eq!(&ours, expected, "{file}: vaultsync agent vs bao agent");
        assert_eq!(mode(&secrets.join(file))?, mode(&dir.join("oracle").join(file))?, "{file}: mode");
    }
    report("inject: KV v2 paths without data/ read as the Vault agent reads them (4 files, byte for byte, modes too)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The Vault agent injector's annotations that vaultsync does not apply
/// reach the person who applies the Pod, through the real API server: a
/// warning `kubectl` prints when the Pod runs without it, a refusal naming
/// it when it would not.
pub(super) async fn unapplied_injector_annotations_are_answered_by_name(scene: &Scene) -> anyhow::Result<()> {
    let env = &scene.env;
    let annotated = |name: &str, extra: (&str, &str)| {
        let mut manifest = pod(
            name,
            json!({
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": env.prefix,
                "vault.hashicorp.com/agent-inject-secret-web": format!("secret/{}/web", env.prefix),
            }),
            json!({"name": "web", "image": "registry.example.com/web:1"}),
        );
        manifest["metadata"]["namespace"] = json!(env.namespace);
        manifest["metadata"]["annotations"][extra.0] = json!(extra.1);
        manifest
    };
    let kubectl_apply = |manifest: Value| async move {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("kubectl")
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take().context("stdin")?;
        input.write_all(manifest.to_string().as_bytes()).await?;
        drop(input);
        let output = child.wait_with_output().await?;
        anyhow::Ok((output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned()))
    };
    let (applied, stderr) = kubectl_apply(annotated("tuned", ("vault.hashicorp.com/go-max-procs", "2"))).await?;
    anyhow::ensure!(applied, "a tuning annotation refused the Pod: {stderr}");
    anyhow::ensure!(
        stderr.contains("Warning: vault.hashicorp.com/go-max-procs is not applied"),
        "no warning naming the annotation: {stderr:?}"
    );
    let (applied, stderr) =
        kubectl_apply(annotated("configured", ("vault.hashicorp.com/agent-configmap", "agent-config"))).await?;
    anyhow::ensure!(!applied, "a Pod needing a whole agent configuration was admitted");
    anyhow::ensure!(
        stderr.contains("vault.hashicorp.com/agent-configmap:"),
        "the refusal names no annotation: {stderr:?}"
    );
    report("inject: unapplied injector annotations answered through the API server (a warning, a refusal)");
    Ok(())
}

/// `agent-inject-command-<name>`: run with /bin/sh after its file is
/// written, as the Vault agent runs it (here the host's shell stands in for
/// an agent image with one, which the annotation then requires); a failing
/// command fails the init container.
pub(super) async fn file_commands_run_after_their_file_is_written(scene: &Scene) -> anyhow::Result<()> {
    let env = &scene.env;
    let path = format!("secret/data/{}/web", env.prefix);
    let with_command = |name: &str, command: &str| {
        pod(
            name,
            json!({
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/agent-pre-populate-only": "true",
                "vault.hashicorp.com/role": env.prefix,
                "vaultsync.dev/agent-image": "registry.example.com/vaultsync-with-shell:1",
                "vault.hashicorp.com/agent-inject-secret-app.conf": path,
                "vault.hashicorp.com/agent-inject-template-app.conf":
                    format!("{{{{ with secret \"{path}\" }}}}user={{{{ .Data.data.user }}}}{{{{ end }}}}"),
                "vault.hashicorp.com/agent-inject-command-app.conf": command,
            }),
            json!({"name": "web", "image": "registry.example.com/web:1"}),
        )
    };
    let run = |name: &'static str, command: &'static str| async move {
        env.apply(with_command(name, command)).await?;
        let stored = scene.pods.get(name).await?;
        let dir = std::env::temp_dir().join(format!("inject-{name}-{}", env.prefix));
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        let token = pod_token(env, &stored, &dir).await?;
        let config = agent_config(&stored, "vaultsync-agent-init", &token, &secrets)?;
        let output = run_agent(&config, &["init"], &dir).await?;
        anyhow::Ok((dir, output))
    };
    // The command sees the file written (it runs in the agent's directory).
    let (dir, output) = run("with-command", "cp secrets/app.conf copied.conf && echo ran >> ran.log").await?;
    anyhow::ensure!(output.status.success(), "agent init: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("copied.conf"))?, format!("user={}", scene.user));
    assert_eq!(std::fs::read_to_string(dir.join("ran.log"))?, "ran\n", "run once");
    let _ = std::fs::remove_dir_all(&dir);
    let (dir, output) = run("failing-command", "exit 3").await?;
    anyhow::ensure!(!output.status.success(), "a failing command left the init container successful");
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(stderr.contains("agent-inject-command"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    report("inject: agent-inject-command ran after its file was written; a failing one fails the init container");
    Ok(())
}

/// A file's permission bits.
fn mode(path: &std::path::Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path).with_context(|| path.display().to_string())?.permissions().mode() & 0o777)
}
