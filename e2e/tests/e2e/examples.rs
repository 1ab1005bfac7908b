//! Every manifest under examples/ is applied here and its Secret checked.

use serde_json::{Value, json};
use vaultsync_e2e::TestEnv;

#[tokio::test]
async fn quickstart_example_syncs() -> anyhow::Result<()> {
    let env = TestEnv::new("quickstart").await?;
    let password = env.secret_value("quickstart");
    // The quickstart reads secret/quickstart/db, which `make demo` seeds;
    // this test's copy lives under its own prefix.
    let key = format!("{}/db", env.prefix);
    env.bao.kv2_put(&key, json!({"username": "app", "password": password})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let addr = env.bao.addr.clone();
    env.apply_file("examples/quickstart/secretstore.yaml", |doc| {
        doc["spec"]["provider"]["vault"]["server"] = json!(addr);
    })
    .await?;
    env.apply_file("examples/quickstart/externalsecret.yaml", |doc: &mut Value| {
        for item in doc["spec"]["data"].as_array_mut().into_iter().flatten() {
            item["remoteRef"]["key"] = json!(key);
        }
    })
    .await?;
    let data = env.wait_secret("db-credentials").await?;
    assert_eq!(data.get("password"), Some(&password));
    assert_eq!(data.get("username").map(String::as_str), Some("app"));
    env.cleanup().await;
    Ok(())
}
