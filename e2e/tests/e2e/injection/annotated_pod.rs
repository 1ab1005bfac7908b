//! A Pod annotated as the Vault agent injector's documentation writes it:
//! mutated by the webhook (and only once, and only when it asks), and its
//! injected agent, run locally with a token bound to the stored Pod,
//! renders what OpenBao's own agent renders. The steps share one webhook
//! and one Vault role, so they run as one test, in order.

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, Webhook, pod};

use super::agent::vault_role;
use super::agent_modes;
use super::oracle::{VAULT_AGENT_FUNCS_TEMPLATE, VAULT_AGENT_META_TEMPLATE};

/// What every step works on.
pub(super) struct Scene {
    pub(super) env: TestEnv,
    pub(super) webhook: Webhook,
    pub(super) pods: Api<Pod>,
    pub(super) user: String,
    pub(super) password: String,
}

#[tokio::test]
async fn annotated_pods_are_mutated_and_their_agent_renders_files() -> anyhow::Result<()> {
    let scene = set_up().await?;
    let annotated = vault_agent_pod(&scene.env.prefix);
    Webhook::wait_called(&scene.pods, &with_name(&annotated, "probe")).await?;
    scene.env.apply(annotated.clone()).await?;
    let stored = scene.pods.get("web").await?;
    assert_injected(&stored)?;
    readmission_leaves_it_as_it_is(&scene, &annotated).await?;
    unannotated_pods_never_reach_the_webhook(&scene).await?;
    an_endless_body_is_cut_off(&scene, &annotated).await?;

    let rendered = agent_modes::init_renders_as_bao_agent(&scene, &stored).await?;
    agent_modes::a_role_of_another_namespace_is_refused(&scene, &rendered).await?;
    agent_modes::exec_mode_puts_the_value_in_the_environment_only(&scene, &rendered).await?;
    agent_modes::exec_mode_without_a_command_is_refused(&scene).await?;
    agent_modes::sidecar_notifications_come_from_annotations(&scene).await?;
    agent_modes::kv2_paths_read_as_the_vault_agent_reads_them(&scene).await?;
    agent_modes::unapplied_injector_annotations_are_answered_by_name(&scene).await?;
    agent_modes::file_commands_run_after_their_file_is_written(&scene).await?;

    scene.webhook.stop().await;
    scene.env.cleanup().await;
    Ok(())
}

/// ServiceAccount `app`, its values in KV, a Vault role for it, a webhook.
async fn set_up() -> anyhow::Result<Scene> {
    let env = TestEnv::new("inject").await?;
    env.create_app_service_account().await?;
    let (user, password) = (env.secret_value("inject-user"), env.secret_value("inject-password"));
    // `note` is no secret: characters that Go's printing and JSON escape.
    env.bao
        .kv2_put(&format!("{}/web", env.prefix), json!({"user": user, "password": password, "note": "a<b>&\"c' d"}))
        .await?;
    vault_role(&env, &env.prefix, &env.namespace).await?;
    let webhook = Webhook::start(&env, "2160h", 1).await?;
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
    Ok(Scene { env, webhook, pods, user, password })
}

/// Pod `web` with the Vault agent injector's annotations: a template of
/// its documentation, the default template, and two that use more of
/// consul-template.
fn vault_agent_pod(prefix: &str) -> Value {
    let path = format!("secret/data/{prefix}/web");
    let template = format!(
        "{{{{- with secret \"{path}\" -}}}}user={{{{ .Data.data.user }}}}\npassword={{{{ .Data.data.password }}}}\n{{{{- end }}}}"
    );
    pod(
        "web",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": prefix,
            "vault.hashicorp.com/agent-inject-secret-config.txt": path,
            "vault.hashicorp.com/agent-inject-template-config.txt": template,
            "vault.hashicorp.com/agent-inject-secret-raw": path,
            "vault.hashicorp.com/agent-inject-secret-meta": path,
            "vault.hashicorp.com/agent-inject-template-meta": VAULT_AGENT_META_TEMPLATE.replace("PATH", &path),
            "vault.hashicorp.com/agent-inject-secret-funcs.json": path,
            "vault.hashicorp.com/agent-inject-template-funcs.json": VAULT_AGENT_FUNCS_TEMPLATE.replace("PATH", &path),
        }),
        json!({"name": "web", "image": "registry.example.com/web:1"}),
    )
}

fn with_name(manifest: &Value, name: &str) -> Value {
    let mut copy = manifest.clone();
    copy["metadata"]["name"] = json!(name);
    copy
}

/// The init container and the native sidecar, the read-only secrets mount,
/// the projected token of audience `vault`, the injector's status.
fn assert_injected(stored: &Pod) -> anyhow::Result<()> {
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
    Ok(())
}

/// Re-applied: admitted again (UPDATE) and left as it is.
async fn readmission_leaves_it_as_it_is(scene: &Scene, annotated: &Value) -> anyhow::Result<()> {
    let already = scene.webhook.admissions("already_injected").await?;
    let mut again = annotated.clone();
    again["metadata"]["labels"] = json!({"touched": "yes"});
    scene.env.apply(again).await?;
    let after = scene.pods.get("web").await?;
    assert_eq!(after.spec.and_then(|s| s.init_containers).map(|i| i.len()), Some(2), "no second injection");
    assert!(scene.webhook.admissions("already_injected").await? > already, "the webhook saw the re-admission");
    Ok(())
}

/// An unannotated Pod is stored unchanged and never reaches the webhook.
async fn unannotated_pods_never_reach_the_webhook(scene: &Scene) -> anyhow::Result<()> {
    let webhook = &scene.webhook;
    let seen = webhook.admissions("untouched").await? + webhook.admissions("mutated").await?;
    scene
        .env
        .apply(pod("plain", json!({"other": "x"}), json!({"name": "plain", "image": "registry.example.com/p:1"})))
        .await?;
    let plain = scene.pods.get("plain").await?;
    assert!(plain.spec.and_then(|s| s.init_containers).is_none_or(|i| i.is_empty()));
    assert_eq!(
        webhook.admissions("untouched").await? + webhook.admissions("mutated").await?,
        seen,
        "the matchCondition kept it away"
    );
    Ok(())
}

/// Anything in the cluster can reach the webhook: an endless body is cut
/// off at its limit, and the webhook goes on answering the API server.
async fn an_endless_body_is_cut_off(scene: &Scene, annotated: &Value) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    let flood = http.post(format!("https://{}/mutate", scene.webhook.addr)).body(vec![b' '; 12 << 20]).send().await;
    match flood {
        Ok(answer) => assert_eq!(answer.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE),
        // Closed while still sending: refused all the same.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let probe: Pod = serde_json::from_value(with_name(annotated, "after-flood"))?;
    let after = scene.pods.create(&PostParams { dry_run: true, ..Default::default() }, &probe).await?;
    assert!(after.spec.and_then(|s| s.init_containers).is_some_and(|i| !i.is_empty()), "still mutating");
    Ok(())
}
