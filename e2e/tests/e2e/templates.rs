//! target.template: Go templates over the fetched values, templateFrom
//! ConfigMaps, Secrets and literals, labels and annotations, mergePolicy,
//! and the failures a template can cause.

use std::collections::BTreeMap;

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

/// A template ConfigMap in the test namespace.
async fn create_config_map(env: &TestEnv, name: &str, data: serde_json::Value) -> anyhow::Result<()> {
    env.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})).await?;
    Ok(())
}

/// The Secret's labels and annotations.
async fn metadata(env: &TestEnv, name: &str) -> anyhow::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let secret = env.secrets().get(name).await?;
    Ok((secret.metadata.labels.unwrap_or_default(), secret.metadata.annotations.unwrap_or_default()))
}

#[tokio::test]
async fn templates_build_data_labels_and_annotations() -> anyhow::Result<()> {
    let env = TestEnv::new("templates").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/db", env.prefix);
    let password = env.secret_value("tpl-password");
    env.bao.kv2_put(&path, json!({"user": "app", "password": password, "host": "db.internal"})).await?;
    create_config_map(
        &env,
        "db-templates",
        json!({
            "config.yaml": "url: postgres://{{ .user }}@{{ .host }}/app\n",
            "roles": "{{ .user }}-role: reader\n{{ .user }}-schema: public\n",
        }),
    )
    .await?;
    env.create_secret("pgpass-template", &[("pgpass", "{{ .host }}:5432:app:{{ .user }}:{{ .password }}")]).await?;

    let template = json!({
        "type": "Opaque",
        "metadata": {"labels": {"db-user": "{{ .user }}"}, "annotations": {"db-host": "{{ .host | upper }}"}},
        "data": {"dsn": "postgresql://{{ .user }}:{{ .password }}@{{ .host }}:5432/app"},
        "templateFrom": [
            {"configMap": {"name": "db-templates", "items": [
                {"key": "config.yaml"},
                {"key": "roles", "templateAs": "KeysAndValues"},
            ]}},
            {"secret": {"name": "pgpass-template", "items": [{"key": "pgpass"}]}},
            {"literal": "tier: {{ if eq .host \"db.internal\" }}internal{{ else }}public{{ end }}", "target": "Labels"},
            {"literal": "owner: team-{{ .user }}", "target": "Annotations"},
        ],
    });
    env.apply(external_secret(
        "db",
        "vault",
        json!({"dataFrom": [{"extract": {"key": path}}], "target": {"template": template}}),
    ))
    .await?;
    let data = env.wait_secret("db").await?;
    // Replace: only what the templates produce, not the fetched keys.
    assert_eq!(data.keys().collect::<Vec<_>>(), ["app-role", "app-schema", "config.yaml", "dsn", "pgpass"]);
    assert_eq!(data["dsn"], format!("postgresql://app:{password}@db.internal:5432/app"));
    assert_eq!(data["config.yaml"], "url: postgres://app@db.internal/app\n");
    assert_eq!(data["pgpass"], format!("db.internal:5432:app:app:{password}"));
    assert_eq!((data["app-role"].as_str(), data["app-schema"].as_str()), ("reader", "public"));
    let (labels, annotations) = metadata(&env, "db").await?;
    assert_eq!(labels.get("db-user").map(String::as_str), Some("app"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("internal"));
    assert_eq!(annotations.get("db-host").map(String::as_str), Some("DB.INTERNAL"));
    assert_eq!(annotations.get("owner").map(String::as_str), Some("team-app"));

    // Merge keeps the fetched keys beside the templated ones.
    env.apply(external_secret(
        "db-merged",
        "vault",
        json!({
            "dataFrom": [{"extract": {"key": path}}],
            "target": {"template": {"mergePolicy": "Merge", "data": {
                "user": "{{ .user | upper }}",
                "port": "5432",
                "app.yaml": "{{ dict \"db\" (dict \"user\" .user \"host\" .host) | toYaml }}",
                "from-yaml": "{{ (printf \"h: %s\" .host | fromYaml).h }}",
            }}},
        }),
    ))
    .await?;
    let data = env.wait_secret("db-merged").await?;
    assert_eq!(data.keys().collect::<Vec<_>>(), ["app.yaml", "from-yaml", "host", "password", "port", "user"]);
    assert_eq!(data["app.yaml"], "db:\n  host: db.internal\n  user: app");
    assert_eq!(data["from-yaml"], "db.internal");
    assert_eq!((data["user"].as_str(), data["password"].as_str()), ("APP", password.as_str()));

    // A template needs no remote data at all.
    env.apply(external_secret("static", "vault", json!({"target": {"template": {"data": {"greeting": "hello"}}}})))
        .await?;
    assert_eq!(env.wait_secret("static").await?.get("greeting").map(String::as_str), Some("hello"));

    // Templates only for labels leave the fetched data as it is (ESO
    // would write an empty Secret).
    env.apply(external_secret(
        "labels-only",
        "vault",
        json!({
            "dataFrom": [{"extract": {"key": path}}],
            "target": {"template": {"templateFrom": [{"literal": "team: payments", "target": "Labels"}]}},
        }),
    ))
    .await?;
    let data = env.wait_secret("labels-only").await?;
    assert_eq!(data.get("password"), Some(&password));
    assert_eq!(metadata(&env, "labels-only").await?.0.get("team").map(String::as_str), Some("payments"));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn template_errors_keep_the_secret_and_name_the_template() -> anyhow::Result<()> {
    let env = TestEnv::new("template-errors").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/app", env.prefix);
    let password = env.secret_value("tpl-error");
    env.bao.kv2_put(&path, json!({"user": "app", "password": password})).await?;
    let with_template = |dsn: &str| {
        external_secret(
            "app",
            "vault",
            json!({"dataFrom": [{"extract": {"key": path}}], "target": {"template": {"data": {"dsn": dsn}}}}),
        )
    };
    env.apply(with_template("{{ .user }}:{{ .password }}")).await?;
    assert_eq!(env.wait_secret("app").await?.get("dsn"), Some(&format!("app:{password}")));
    env.wait_ready("app", "True").await?;
    let resource_version = env.secrets().get("app").await?.metadata.resource_version;

    // A parse error: an unknown function on line 2.
    env.apply(with_template("{{ .user }}\n{{ .password | nosuchfunc }}")).await?;
    let (reason, message) = env.wait_ready("app", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("data[dsn]") && message.contains("2:") && message.contains("nosuchfunc"), "{message}");
    assert!(!message.contains(&password), "{message}");
    env.wait_warning("app").await?;

    // An execution error: `required` on a key the remote secret lacks.
    env.apply(with_template("{{ required \"the secret needs a port\" .port }}")).await?;
    vaultsync_e2e::eventually(std::time::Duration::from_secs(60), || async {
        let (_, message) = env.wait_ready("app", "False").await?;
        Ok(message.contains("the secret needs a port"))
    })
    .await?;
    let after = env.secrets().get("app").await?;
    assert_eq!(after.metadata.resource_version, resource_version, "a broken template must not touch the Secret");
    assert_eq!(env.secret_data("app").await?.get("dsn"), Some(&format!("app:{password}")));

    // A ConfigMap that does not exist yet: reported, then picked up once
    // it is created.
    env.apply(external_secret(
        "from-config-map",
        "vault",
        json!({
            "dataFrom": [{"extract": {"key": path}}],
            "target": {"template": {"templateFrom": [{"configMap": {"name": "later", "items": [{"key": "dsn"}]}}]}},
        }),
    ))
    .await?;
    let (_, message) = env.wait_ready("from-config-map", "False").await?;
    assert!(message.contains("ConfigMap \"later\"") && message.contains("not found"), "{message}");
    assert!(env.secrets().get_opt("from-config-map").await?.is_none());
    create_config_map(&env, "later", json!({"dsn": "{{ .user }}@db"})).await?;
    let data = env.wait_secret("from-config-map").await?;
    assert_eq!(data.get("dsn").map(String::as_str), Some("app@db"));

    // A KeysAndValues template whose output is not a YAML map.
    env.apply(external_secret(
        "not-a-map",
        "vault",
        json!({
            "dataFrom": [{"extract": {"key": path}}],
            "target": {"template": {"templateFrom": [{"literal": "{{ .password }}: [unclosed"}]}},
        }),
    ))
    .await?;
    let (_, message) = env.wait_ready("not-a-map", "False").await?;
    assert!(message.contains("templateFrom[0].literal") && message.contains("not a YAML map"), "{message}");
    assert!(!message.contains(&password), "{message}");
    env.cleanup().await;
    Ok(())
}
