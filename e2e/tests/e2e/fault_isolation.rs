//! One tenant's ExternalSecret cannot hurt the others: a template that
//! crashed the whole process (a printf width of 10^20) and one that runs as
//! long as the engine lets it fail on their own object, while the shared
//! operator keeps running and a canary in another namespace keeps syncing
//! on time (the delay of its change is printed).

use std::time::{Duration, Instant};

use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

fn operator_alive() -> anyhow::Result<bool> {
    let state = std::env::var("VAULTSYNC_STATE")?;
    let pid = std::fs::read_to_string(format!("{state}/pids/operator.pid"))?;
    Ok(std::path::Path::new(&format!("/proc/{}", pid.trim())).exists())
}

#[tokio::test]
async fn hostile_templates_fail_alone() -> anyhow::Result<()> {
    let mut env = TestEnv::new("faults").await?;
    let other = format!("{}-canary", env.namespace);
    env.create_namespace(&other).await?;
    let canary = env.in_namespace(&other);
    for target in [&env, &canary] {
        target.token_store("vault", "root", json!({})).await?;
    }
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("faults")})).await?;
    let canary_path = format!("{}/canary", env.prefix);
    env.bao.kv2_put(&canary_path, json!({"v": env.secret_value("canary-1")})).await?;
    canary
        .apply(external_secret(
            "canary",
            "vault",
            json!({"refreshInterval": "1s", "data": [{"secretKey": "v", "remoteRef": {"key": canary_path, "property": "v"}}]}),
        ))
        .await?;
    canary.wait_secret("canary").await?;

    let templated =
        |text: &str| json!({"dataFrom": [{"extract": {"key": path}}], "target": {"template": {"data": {"x": text}}}});
    env.apply(external_secret("width", "vault", templated(r#"{{ printf "%99999999999999999999d" 1 | len }}"#))).await?;
    env.apply(external_secret(
        "busy",
        "vault",
        templated(r#"{{ range 1000000 }}{{ range 1000000 }}{{ end }}{{ end }}"#),
    ))
    .await?;

    // The canary's next change arrives as usual while the busy template runs.
    let changed = env.secret_value("canary-2");
    let sent = Instant::now();
    env.bao.kv2_put(&canary_path, json!({"v": changed})).await?;
    eventually(Duration::from_secs(60), || async {
        Ok(canary.secret_data("canary").await?.get("v") == Some(&changed))
    })
    .await?;
    let delay = sent.elapsed();
    vaultsync_e2e::report(&format!(
        "fault isolation: the canary's change arrived {delay:?} after it was written (refreshInterval 1s), \
         with a printf-width bomb and a 10^12-step template in another namespace"
    ));

    let (_, width) = env.wait_ready("width", "False").await?;
    let (_, busy) = env.wait_ready("busy", "False").await?;
    for message in [&width, &busy] {
        assert!(message.contains("target.template") || message.contains("internal error"), "{message}");
    }
    assert!(operator_alive()?, "the operator process must survive hostile templates");
    assert!(env.secrets().get_opt("width").await?.is_none() && env.secrets().get_opt("busy").await?.is_none());
    env.cleanup().await;
    Ok(())
}
