//! `vaultsync agent sidecar` started as the webhook configures it, after
//! `vaultsync agent init`: the fixture of the lease and certificate tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, pod, vaultsync_binary};

use super::agent::{pod_token, run_agent};

/// A sidecar of a Pod of ServiceAccount `app` (stored, with a token bound
/// to it), database_role's policy (KV is not needed; it allows
/// database/creds and pki/issue) behind a Kubernetes auth role of the
/// test's namespace: `vaultsync agent init`, then `vaultsync agent sidecar`
/// carrying on from it, with `files` and a 1m poll; the sidecar's output in
/// the returned log file, files in `secrets`.
pub(super) struct Sidecar {
    _process: tokio::process::Child,
    pub(super) secrets: PathBuf,
    pub(super) log: PathBuf,
    /// The files as the init container left them, before the sidecar ran.
    pub(super) initial: BTreeMap<String, String>,
}

pub(super) async fn start_sidecar(env: &TestEnv, ttl: &str, max_ttl: &str, files: Value) -> anyhow::Result<Sidecar> {
    env.create_app_service_account().await?;
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
    let init = run_agent(&config, &["init"], &dir).await?;
    anyhow::ensure!(init.status.success(), "agent init: {}", String::from_utf8_lossy(&init.stderr));
    let mut initial = BTreeMap::new();
    for entry in std::fs::read_dir(&secrets)? {
        let entry = entry?;
        initial.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(entry.path())?);
    }
    let log = dir.join("sidecar.log");
    let process = tokio::process::Command::new(vaultsync_binary())
        .args(["agent", "sidecar"])
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    Ok(Sidecar { _process: process, secrets, log, initial })
}
