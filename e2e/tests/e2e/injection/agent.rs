//! The agent side of injection, run as local processes: the Vault role a
//! Pod logs in with, the token the kubelet would project into it, the
//! configuration the webhook put into it, and `vaultsync agent` itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, vaultsync_binary};

/// The Vault side: KV values, a policy reading them, a Kubernetes auth role
/// for ServiceAccount `app` of `namespace` (audience `vault`).
pub(super) async fn vault_role(env: &TestEnv, role: &str, namespace: &str) -> anyhow::Result<()> {
    let policy = format!("path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}", env.prefix);
    vault_role_with_policy(env, role, namespace, &env.prefix, &policy).await
}

/// Policy `policy_name` holding `policy`, and a Kubernetes auth role
/// `role` of ServiceAccount `app` of `namespace` (audience `vault`) with it.
pub(super) async fn vault_role_with_policy(
    env: &TestEnv,
    role: &str,
    namespace: &str,
    policy_name: &str,
    policy: &str,
) -> anyhow::Result<()> {
    env.bao.write(&format!("sys/policies/acl/{policy_name}"), json!({"policy": policy})).await?;
    env.bao
        .write(
            &format!("auth/kubernetes/role/{role}"),
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": [namespace],
                   "audience": "vault", "token_policies": [policy_name], "token_ttl": "10m"}),
        )
        .await?;
    Ok(())
}

/// A token of ServiceAccount `app` bound to the stored Pod, as the kubelet
/// would project it (audience `vault`), written to a file.
pub(super) async fn pod_token(env: &TestEnv, pod: &Pod, dir: &Path) -> anyhow::Result<PathBuf> {
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
pub(super) fn agent_config(pod: &Pod, container: &str, token: &Path, secrets: &Path) -> anyhow::Result<Value> {
    let spec = pod.spec.as_ref().context("spec")?;
    let all = spec.init_containers.iter().flatten().chain(spec.containers.iter());
    let c = all.into_iter().find(|c| c.name == container).with_context(|| format!("container {container}"))?;
    let value = c.env.iter().flatten().find(|e| e.name == "VAULTSYNC_AGENT_CONFIG").and_then(|e| e.value.clone());
    let mut config: Value = serde_json::from_str(&value.context("VAULTSYNC_AGENT_CONFIG")?)?;
    config["tokenPath"] = json!(token);
    config["secretsDir"] = json!(secrets);
    Ok(config)
}

/// `vaultsync agent ARGS` with `config` in its environment, in `dir`.
pub(super) async fn run_agent(config: &Value, args: &[&str], dir: &Path) -> anyhow::Result<std::process::Output> {
    Ok(tokio::process::Command::new(vaultsync_binary())
        .arg("agent")
        .args(args)
        .current_dir(dir)
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .output()
        .await?)
}
