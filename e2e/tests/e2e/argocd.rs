//! Argo CD integration (integrations/argocd/): the health checks, run by a
//! real Lua interpreter on objects the API server returned, say Healthy,
//! Degraded and Progressing when they should; the refresh action makes
//! vaultsync read Vault again; the argocd-cm snippet carries exactly the
//! Lua files it is made from.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use vaultsync_e2e::{TestEnv, eventually, external_secret, repo_root};

/// Runs an Argo CD Lua script on `object` and returns `expression` of its result.
async fn run_lua(script: &str, object: &Value, expression: &str) -> anyhow::Result<String> {
    let mut child = tokio::process::Command::new("python3")
        .arg(repo_root().join("e2e/argocd_lua.py"))
        .arg(repo_root().join("integrations/argocd").join(script))
        .arg(expression)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(object.to_string().as_bytes()).await?;
    let output = child.wait_with_output().await?;
    anyhow::ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

async fn health(object: &Value) -> anyhow::Result<String> {
    run_lua("health.lua", object, "result.status").await
}

#[tokio::test]
async fn health_checks_and_refresh_action() -> anyhow::Result<()> {
    let env = TestEnv::new("argocd").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/app", env.prefix);
    let first = env.secret_value("argo-first");
    env.bao.kv2_put(&path, json!({"v": first})).await?;
    let data = |key: &str| json!({"data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]});
    env.apply(external_secret("good", "vault", data(&path))).await?;
    env.apply(external_secret("bad", "vault", data(&format!("{}/missing", env.prefix)))).await?;
    env.wait_ready("good", "True").await?;
    env.wait_ready("bad", "False").await?;
    env.wait_store_ready("vault", "True").await?;

    let good = serde_json::to_value(env.external_secrets().get("good").await?)?;
    let bad = serde_json::to_value(env.external_secrets().get("bad").await?)?;
    let store = serde_json::to_value(env.stores().get("vault").await?)?;
    assert_eq!(health(&good).await?, "Healthy");
    assert_eq!(health(&store).await?, "Healthy");
    assert_eq!(health(&bad).await?, "Degraded");
    // As the object is before vaultsync's first report, and after a spec
    // change it has not acted on yet.
    let mut fresh = good.clone();
    fresh.as_object_mut().context("object")?.remove("status");
    assert_eq!(health(&fresh).await?, "Progressing");
    let mut changed = good.clone();
    changed["metadata"]["generation"] = json!(good["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
    assert_eq!(health(&changed).await?, "Progressing");

    // The refresh action sets the force-sync annotation; applied, it makes
    // vaultsync read the changed value at once (refreshInterval is 1h).
    let second = env.secret_value("argo-second");
    env.bao.kv2_put(&path, json!({"v": second})).await?;
    let stamp =
        run_lua("refresh-action.lua", &good, r#"result.metadata.annotations["vaultsync.dev/force-sync"]"#).await?;
    assert!(!stamp.is_empty() && stamp != "nil", "{stamp}");
    let patch = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": stamp}}});
    env.external_secrets().patch("good", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch)).await?;
    eventually(Duration::from_secs(30), || async { Ok(env.secret_data("good").await?.get("v") == Some(&second)) })
        .await
        .context("the refresh action must bring the new value")?;
    assert_eq!(run_lua("refresh-discovery.lua", &good, r#"tostring(result["refresh"] ~= nil)"#).await?, "true");
    env.cleanup().await;
    Ok(())
}

#[test]
fn the_argocd_snippet_carries_the_lua_files() -> anyhow::Result<()> {
    let dir = repo_root().join("integrations/argocd");
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let snippet: Value = serde_saphyr::from_str(&read("argocd-cm.yaml")?)?;
    let data = &snippet["data"];
    let health = read("health.lua")?;
    for kind in ["ExternalSecret", "SecretStore", "ClusterSecretStore", "ClusterExternalSecret"] {
        let key = format!("resource.customizations.health.vaultsync.dev_{kind}");
        assert_eq!(data[&key].as_str(), Some(health.as_str()), "{key} differs from health.lua");
    }
    let actions: Value = serde_saphyr::from_str(
        data["resource.customizations.actions.vaultsync.dev_ExternalSecret"].as_str().unwrap_or(""),
    )?;
    assert_eq!(actions["discovery.lua"].as_str(), Some(read("refresh-discovery.lua")?.as_str()));
    assert_eq!(actions["definitions"][0]["name"], "refresh");
    assert_eq!(actions["definitions"][0]["action.lua"].as_str(), Some(read("refresh-action.lua")?.as_str()));
    Ok(())
}
