//! Fewer Vault requests: reads of one secret are shared, counted in
//! OpenBao's audit log.

use serde_json::json;
use vaultsync_e2e::{Bao, TestEnv, external_secret};

#[tokio::test]
async fn reads_of_one_secret_are_coalesced() -> anyhow::Result<()> {
    let env = TestEnv::new("coalesce").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/shared", env.prefix);
    let (user, pass) = (env.secret_value("user"), env.secret_value("pass"));
    env.bao.kv2_put(&path, json!({"user": user, "pass": pass})).await?;

    // Ten ExternalSecrets created together, each with three keys of the
    // same secret: thirty values from one path.
    let names: Vec<String> = (0..10).map(|i| format!("app-{i}")).collect();
    for name in &names {
        env.apply(external_secret(
            name,
            "vault",
            json!({"data": [
                {"secretKey": "user", "remoteRef": {"key": path, "property": "user"}},
                {"secretKey": "pass", "remoteRef": {"key": path, "property": "pass"}},
                {"secretKey": "all", "remoteRef": {"key": path}},
            ]}),
        ))
        .await?;
    }
    for name in &names {
        assert_eq!(env.wait_secret(name).await?.get("pass"), Some(&pass));
    }
    let reads = Bao::audited_responses(&format!("secret/data/{path}"))?;
    eprintln!("coalesce: {reads} Vault reads for {} ExternalSecrets x 3 keys", names.len());
    assert!(reads >= 1);
    assert!(
        reads < names.len(),
        "reads of one secret must be shared ({reads} reads for {} ExternalSecrets)",
        names.len()
    );
    env.cleanup().await;
    Ok(())
}
