//! Kubernetes auth against OpenBao's kubernetes method, which checks each
//! token with a real TokenReview on our API server.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, external_secret};

fn kubernetes_store(env: &TestEnv, role: &str) -> Value {
    json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret",
            "auth": {"kubernetes": {"mountPath": "kubernetes", "role": role, "serviceAccountRef": {"name": "app"}}},
        }}},
    })
}

#[tokio::test]
async fn bound_service_account_syncs_and_other_namespace_is_refused() -> anyhow::Result<()> {
    let mut env = TestEnv::new("k8s-auth").await?;
    let other = format!("{}-other", env.namespace);
    env.create_namespace(&other).await?;
    let value = env.secret_value("k8s");
    env.bao.kv2_put(&format!("{}/app", env.prefix), json!({"password": value})).await?;
    env.write_read_policy().await?;
    env.write_kubernetes_role(&[&env.namespace]).await?;

    let es = external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "password"}}]}),
    );
    for ns in [env.namespace.clone(), other.clone()] {
        env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": ns}}))
            .await?;
        let mut store = kubernetes_store(&env, &env.prefix);
        store["metadata"]["namespace"] = json!(ns);
        env.apply(store).await?;
        let mut es = es.clone();
        es["metadata"]["namespace"] = json!(ns);
        env.apply(es).await?;
    }

    // The bound ServiceAccount in the bound namespace gets the secret.
    assert_eq!(env.wait_secret("app").await?.get("password"), Some(&value));
    env.wait_store_ready("vault", "True").await?;

    // The same name in another namespace is refused, and the condition says so.
    let elsewhere = env.in_namespace(&other);
    let (reason, message) = elsewhere.wait_ready("app", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("kubernetes") && message.contains("not authorized"), "message: {message}");
    assert!(elsewhere.secrets().get_opt("app").await?.is_none(), "no Secret may be written in the refused namespace");
    let (store_reason, store_message) = elsewhere.wait_store_ready("vault", "False").await?;
    assert_eq!(store_reason, "ValidationFailed", "{store_message}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn service_account_token_kept_in_a_secret() -> anyhow::Result<()> {
    let env = TestEnv::new("k8s-secretref").await?;
    let value = env.secret_value("k8s-secretref");
    env.bao.kv2_put(&format!("{}/app", env.prefix), json!({"password": value})).await?;
    env.write_read_policy().await?;
    env.write_kubernetes_role(&[&env.namespace]).await?;
    env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}})).await?;
    // A token for Vault's audience, kept in an ordinary Secret (e.g. by a
    // job that renews it). A legacy token Secret, which the API server
    // accepts, is refused: tenant_attacks::no_kubernetes_token_reaches_a_tenant_server.
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["vault".into()]),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(env.client.clone(), &env.namespace)
        .create_token_request("app", &PostParams::default(), &request)
        .await?;
    let token = issued.status.and_then(|s| s.token).unwrap_or_default();
    env.record_secret(&token);
    env.create_secret("app-token", &[("token", &token)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret",
            "auth": {"kubernetes": {"role": env.prefix, "secretRef": {"name": "app-token", "key": "token"}}},
        }}},
    }))
    .await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "password"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("password"), Some(&value));
    env.cleanup().await;
    Ok(())
}
