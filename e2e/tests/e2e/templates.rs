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

/// Sprig's functions beyond the common ones, as ESO renders them: every
/// expected value is what Go's text/template with ESO v2.9.0's vendored
/// sprig printed for the same templates and data (a throwaway Go program,
/// not part of this repository).
#[tokio::test]
async fn sprig_functions_render_as_eso_does() -> anyhow::Result<()> {
    let env = TestEnv::new("templates-sprig").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/sprig", env.prefix);
    // Fixed values, so that the outputs can be Go's; recorded for the
    // leak checks all the same.
    let password = "Pa55-w0rd_42";
    env.record_secret(password);
    env.bao
        .kv2_put(
            &path,
            json!({"user": "app-user", "password": password, "host": "db.internal.example",
                   "config": r#"{"replicas":"3","tier":"gold"}"#,
                   "dsn": format!("postgres://app-user:{password}@db.internal.example:5432/app?sslmode=require"),
                   "version": "1.4.2"}),
        )
        .await?;
    let templates = json!({
        "strings": r#"{{ .password | trunc 6 }}|{{ substr 0 3 .user }}|{{ (splitn "." 2 .host)._1 }}|{{ .user | abbrev 5 }}"#,
        "hashes": r#"{{ .password | sha256sum }}|{{ .user | sha1sum }}|{{ adler32sum .user }}"#,
        "regex": r#"{{ regexReplaceAll "[^a-z]" .user "_" }}|{{ regexFindAll "[0-9]+" .password -1 | join "," }}|{{ regexSplit "\\." .host -1 | last }}"#,
        "case": r#"{{ .user | snakecase }}|{{ .user | camelcase }}|{{ .host | kebabcase }}|{{ .user | title }}"#,
        "base32": r#"{{ .password | b32enc }}|{{ .password | b32enc | b32dec }}"#,
        "dicts": r#"{{ $d := fromJson .config }}{{ $_ := set $d "user" .user }}{{ dig "tier" "none" $d }}|{{ $d | toJson }}|{{ add1 (int $d.replicas) }}"#,
        "lists": r#"{{ list "b" "a" "c" "a" | uniq | sortAlpha | join "," }}|{{ until 3 | toJson }}|{{ ext "file.tar.gz" }}|{{ seq 3 }}"#,
        "urls": r#"{{ $u := urlParse .dsn }}{{ $u.hostname }}|{{ $u.userinfo }}|{{ urlJoin (set $u "userinfo" "") }}|{{ semverCompare "^1.2" .version }}|{{ semverCompare "~1.1" .version }}|{{ divf 10 4 }}|{{ mulf 1.1 3 }}"#,
    });
    env.apply(external_secret(
        "sprig",
        "vault",
        json!({"dataFrom": [{"extract": {"key": path}}], "target": {"template": {"data": templates}}}),
    ))
    .await?;
    let data = env.wait_secret("sprig").await?;
    let expected = [
        ("base32", "KBQTKNJNO4YHEZC7GQZA====|Pa55-w0rd_42"),
        ("case", "app_user|AppUser|db.internal.example|App-User"),
        ("dicts", r#"gold|{"replicas":"3","tier":"gold","user":"app-user"}|4"#),
        (
            "hashes",
            "4d88f5c14b99339ace7ce699b18425f9693e0cc7a1a6bad7cc01bea91ca84599|\
             72cec457eafdb0c6b28cebcb5b70c13db8e03a0b|235537198",
        ),
        ("lists", "a,b,c|[0,1,2]|.gz|1 2 3"),
        ("regex", "app_user|55,0,42|example"),
        ("strings", "Pa55-w|app|internal.example|ap..."),
        (
            "urls",
            "db.internal.example|app-user:Pa55-w0rd_42|postgres://db.internal.example:5432/app?sslmode=require|\
             true|false|2.5|3.3",
        ),
    ];
    let got: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, expected);

    // What changes on every render is refused, naming the reason.
    env.apply(external_secret(
        "sprig-now",
        "vault",
        json!({"dataFrom": [{"extract": {"key": path}}],
               "target": {"template": {"data": {"at": "{{ now | date \"2006\" }}"}}}}),
    ))
    .await?;
    let (_, message) = env.wait_ready("sprig-now", "False").await?;
    assert!(message.contains("now") && message.contains("every render"), "{message}");
    env.cleanup().await;
    Ok(())
}
