//! dataFrom.find (KV v2 metadata LIST, recursive, name regexp) and rewrite.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn find_by_path_and_name_with_rewrite() -> anyhow::Result<()> {
    let env = TestEnv::new("find").await?;
    env.token_store("vault", "root", json!({})).await?;
    let base = format!("{}/find", env.prefix);
    let (a, b, c) = (env.secret_value("a"), env.secret_value("b"), env.secret_value("c"));
    env.bao.kv2_put(&format!("{base}/db-a"), json!({"password": a})).await?;
    env.bao.kv2_put(&format!("{base}/db-b"), json!({"password": b})).await?;
    env.bao.kv2_put(&format!("{base}/nested/db-c"), json!({"password": c})).await?;
    env.bao.kv2_put(&format!("{base}/unrelated"), json!({"x": env.secret_value("x")})).await?;
    let (user, pass) = (env.secret_value("user"), env.secret_value("pass"));
    env.bao.kv2_put(&format!("{}/single", env.prefix), json!({"user": user, "pass": pass})).await?;

    env.apply(external_secret(
        "found",
        "vault",
        json!({"dataFrom": [
            {"find": {"path": base, "name": {"regexp": "db-[a-z]$"}},
             "rewrite": [{"regexp": {"source": "^.*_(db-[a-z])$", "target": "$1"}}]},
            {"extract": {"key": format!("{}/single", env.prefix)},
             "rewrite": [{"regexp": {"source": "^", "target": "app_"}}]},
        ]}),
    ))
    .await?;
    let data = env.wait_secret("found").await?;
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["app_pass", "app_user", "db-a", "db-b", "db-c"]);
    assert_eq!(data["db-a"], json!({"password": a}).to_string());
    assert_eq!(data["db-c"], json!({"password": c}).to_string());
    assert_eq!(data["app_user"], user);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn find_errors_are_clear() -> anyhow::Result<()> {
    let env = TestEnv::new("find-errors").await?;
    env.bao.kv2_put(&format!("{}/x/one", env.prefix), json!({"k": env.secret_value("one")})).await?;
    // May read, may not list.
    let token = env.bao.token_with_policy(&env.prefix, &env.read_policy()).await?;
    env.token_store("vault", &token, json!({})).await?;
    env.apply(external_secret(
        "no-list",
        "vault",
        json!({"dataFrom": [{"find": {"path": format!("{}/x", env.prefix)}}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("no-list", "False").await?;
    assert!(message.contains("permission denied to list") && message.contains("metadata"), "{message}");

    env.apply(external_secret(
        "bad-regexp",
        "vault",
        json!({"dataFrom": [{"find": {"name": {"regexp": "(unclosed"}}}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("bad-regexp", "False").await?;
    assert!(message.contains("(unclosed") && message.contains("not a valid regular expression"), "{message}");

    env.apply(external_secret(
        "bad-rewrite",
        "vault",
        json!({"dataFrom": [{"extract": {"key": format!("{}/x/one", env.prefix)}, "rewrite": [{"regexp": {"source": "k", "target": "a/b"}}]}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("bad-rewrite", "False").await?;
    assert!(message.contains("not a valid Secret key"), "{message}");
    env.cleanup().await;
    Ok(())
}
