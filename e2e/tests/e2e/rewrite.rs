//! dataFrom[].rewrite[].transform and .merge (ESO v2.9's semantics)
//! against OpenBao: the Secret's exact keys and values.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn transform_renames_each_key_with_a_template() -> anyhow::Result<()> {
    let env = TestEnv::new("rewrite-transform").await?;
    env.token_store("vault", "root", json!({})).await?;
    let (user, pass) = (env.secret_value("user"), env.secret_value("pass"));
    let key = format!("{}/app", env.prefix);
    env.bao.kv2_put(&key, json!({"db-user": user, "db-pass": pass})).await?;

    env.apply(external_secret(
        "env-names",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key},
        "rewrite": [
            {"regexp": {"source": "^db-", "target": "db/"}},
            {"transform": {"template": r#"{{ .value | upper | replace "/" "_" }}"#}},
        ]}]}),
    ))
    .await?;
    let data = env.wait_secret("env-names").await?;
    assert_eq!(data.keys().map(String::as_str).collect::<Vec<_>>(), ["DB_PASS", "DB_USER"]);
    assert_eq!(data["DB_USER"], user);
    assert_eq!(data["DB_PASS"], pass);

    // A key the last step leaves invalid fails the sync, naming it.
    env.apply(external_secret(
        "bad-transform",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key}, "rewrite": [{"transform": {"template": "{{ .value }}:x"}}]}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("bad-transform", "False").await?;
    assert!(message.contains("\"db-pass:x\"") && message.contains("not a valid Secret key"), "{message}");

    // The CRD wants exactly one of regexp, transform, merge per entry.
    let two = external_secret(
        "two-steps",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key}, "rewrite": [
            {"regexp": {"source": "a", "target": "b"}, "transform": {"template": "{{ .value }}"}}]}]}),
    );
    let error = env.apply(two).await.expect_err("a rewrite entry with two steps must be refused").to_string();
    assert!(error.contains("each rewrite entry needs exactly one of regexp, transform or merge"), "{error}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn merge_extracts_fields_or_writes_json() -> anyhow::Result<()> {
    let env = TestEnv::new("rewrite-merge").await?;
    env.token_store("vault", "root", json!({})).await?;
    let (user, pass, host) = (env.secret_value("user"), env.secret_value("pass"), env.secret_value("host"));
    let other = env.secret_value("other");
    let key = format!("{}/creds", env.prefix);
    // Nested objects: dataFrom.extract writes each as a JSON key.
    env.bao
        .kv2_put(
            &key,
            json!({
                "mongo": {"username": user, "password": pass},
                "redis": {"host": host, "port": 6379, "tls": true},
                "other": {"host": other, "extra": {"b": 1, "a": [1.5, "x"]}},
            }),
        )
        .await?;

    // Extract: other first, then the priority keys in their order.
    env.apply(external_secret(
        "merged",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key},
            "rewrite": [{"merge": {"priority": ["mongo", "redis"], "conflictPolicy": "Ignore"}}]}]}),
    ))
    .await?;
    let data = env.wait_secret("merged").await?;
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["extra", "host", "password", "port", "tls", "username"]
    );
    assert_eq!(data["username"], user);
    assert_eq!(data["password"], pass);
    assert_eq!(data["host"], host, "redis is merged last");
    assert_eq!(data["port"], "6379");
    assert_eq!(data["tls"], "true");
    assert_eq!(data["extra"], r#"{"a":[1.5,"x"],"b":1}"#);

    // JSON: the keys stay, `into` holds the merged object.
    env.apply(external_secret(
        "merged-json",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key},
            "rewrite": [{"merge": {"strategy": "JSON", "into": "all", "priority": ["other"],
                                   "conflictPolicy": "Ignore"}}]}]}),
    ))
    .await?;
    let data = env.wait_secret("merged-json").await?;
    assert_eq!(data.keys().map(String::as_str).collect::<Vec<_>>(), ["all", "mongo", "other", "redis"]);
    let all = json!({"extra": {"a": [1.5, "x"], "b": 1}, "host": other, "password": pass, "port": 6379,
                     "tls": true, "username": user});
    assert_eq!(data["all"], serde_json::to_string(&all)?);
    assert_eq!(data["mongo"], json!({"password": pass, "username": user}).to_string());

    // Conflicts fail by default, naming the fields.
    env.apply(external_secret(
        "conflict",
        "vault",
        json!({"dataFrom": [{"extract": {"key": key}, "rewrite": [{"merge": {}}]}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("conflict", "False").await?;
    assert!(message.contains("conflicts in fields host"), "{message}");
    assert!(!message.contains(&host) && !message.contains(&other), "no value in the message: {message}");
    env.cleanup().await;
    Ok(())
}
