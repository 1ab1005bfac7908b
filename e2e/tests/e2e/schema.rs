//! Manifests that break the schema are rejected by the API server itself.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn invalid_manifests_are_rejected_by_the_api_server() -> anyhow::Result<()> {
    let env = TestEnv::new("schema").await?;
    let two_methods = json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "two-methods"},
        "spec": {"provider": {"vault": {
            "server": "http://127.0.0.1:8200",
            "auth": {
                "tokenSecretRef": {"name": "t", "key": "token"},
                "appRole": {"roleId": "r", "secretRef": {"name": "s", "key": "secret-id"}},
            },
        }}},
    });
    let error = env.apply(two_methods).await.expect_err("two auth methods must be rejected").to_string();
    assert!(error.contains("exactly one auth method"), "{error}");

    let no_method = json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "no-method"},
        "spec": {"provider": {"vault": {"server": "http://127.0.0.1:8200", "auth": {}}}},
    });
    assert!(env.apply(no_method).await.is_err(), "a store without auth method must be rejected");

    let bad_enum = external_secret(
        "bad-enum",
        "vault",
        json!({"target": {"creationPolicy": "Sometimes"}, "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}),
    );
    let error = env.apply(bad_enum).await.expect_err("a bad enum value must be rejected").to_string();
    assert!(error.contains("Sometimes") || error.contains("creationPolicy"), "{error}");

    let bad_version = json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "bad-version"},
        "spec": {"provider": {"vault": {"server": "http://127.0.0.1:8200", "version": "v3",
            "auth": {"tokenSecretRef": {"name": "t"}}}}},
    });
    assert!(env.apply(bad_version).await.is_err(), "KV version v3 must be rejected");

    let bad_interval = external_secret(
        "bad-interval",
        "vault",
        json!({"refreshInterval": "soon", "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}),
    );
    assert!(env.apply(bad_interval).await.is_err(), "refreshInterval 'soon' must be rejected");

    let no_data = external_secret("no-data", "vault", json!({}));
    let error = env.apply(no_data).await.expect_err("an ExternalSecret without data must be rejected").to_string();
    assert!(error.contains("data or dataFrom"), "{error}");

    let two_sources = external_secret(
        "two-sources",
        "vault",
        json!({"target": {"template": {"templateFrom": [
            {"literal": "a: b", "configMap": {"name": "c", "items": [{"key": "k"}]}},
        ]}}}),
    );
    let error = env.apply(two_sources).await.expect_err("templateFrom with two sources must be rejected").to_string();
    assert!(error.contains("exactly one of configMap, secret or literal"), "{error}");

    let bad_key = external_secret("bad-key", "vault", json!({"target": {"template": {"data": {"bad key": "x"}}}}));
    let error = env.apply(bad_key).await.expect_err("an invalid template.data key must be rejected").to_string();
    assert!(error.contains("valid Secret keys"), "{error}");

    let engine_v1 = external_secret(
        "engine-v1",
        "vault",
        json!({"target": {"template": {"engineVersion": "v1", "data": {"k": "v"}}}}),
    );
    assert!(env.apply(engine_v1).await.is_err(), "engineVersion v1 must be rejected");
    env.cleanup().await;
    Ok(())
}
