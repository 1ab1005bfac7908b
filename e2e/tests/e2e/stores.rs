//! Store shapes: ClusterSecretStore namespace rules, JWT auth, Vault
//! namespaces, the openBao provider alias.

use kube::api::DeleteParams;
use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn cluster_store_serves_only_the_namespaces_its_conditions_allow() -> anyhow::Result<()> {
    let mut env = TestEnv::new("css").await?;
    let path = format!("{}/shared", env.prefix);
    let value = env.secret_value("css");
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let store = format!("shared-{}", env.prefix);
    let by_regex = format!("{}-team-x", env.namespace);
    let by_label = format!("{}-labelled", env.namespace);
    let denied = format!("{}-denied", env.namespace);
    env.create_namespace(&by_regex).await?;
    env.create_labelled_namespace(&by_label, json!({"vaultsync-e2e": env.prefix})).await?;
    env.create_namespace(&denied).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
        "metadata": {"name": store},
        "spec": {
            "provider": {"vault": {"server": env.bao.addr, "path": "secret",
                "auth": {"tokenSecretRef": {"name": "vault-token", "namespace": env.namespace}}}},
            "conditions": [
                {"namespaces": [env.namespace]},
                {"namespaceRegexes": [format!("^{}-team-", env.namespace)]},
                {"namespaceSelector": {"matchLabels": {"vaultsync-e2e": env.prefix}}},
            ],
        },
    }))
    .await?;

    for ns in [&env.namespace, &by_regex, &by_label, &denied] {
        let mut es = external_secret(
            "app",
            &store,
            json!({"secretStoreRef": {"kind": "ClusterSecretStore"}, "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        );
        es["metadata"]["namespace"] = json!(ns);
        env.apply(es).await?;
    }
    for ns in [&env.namespace, &by_regex, &by_label] {
        assert_eq!(env.in_namespace(ns).wait_secret("app").await?.get("v"), Some(&value), "namespace {ns}");
    }
    let refused = env.in_namespace(&denied);
    let (_, message) = refused.wait_ready("app", "False").await?;
    assert!(message.contains("does not allow namespace") && message.contains(&denied), "{message}");
    assert!(refused.secrets().get_opt("app").await?.is_none(), "nothing may be written where the store is not allowed");

    env.cluster_stores().delete(&store, &DeleteParams::default()).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn jwt_auth_with_a_service_account_token() -> anyhow::Result<()> {
    let env = TestEnv::new("jwt").await?;
    let mount = format!("jwt-{}", env.prefix);
    let state = std::env::var("VAULTSYNC_STATE")?;
    // OpenBao verifies the token's signature with the API server's
    // ServiceAccount public key.
    let public_key = std::fs::read_to_string(format!("{state}/pki/sa.pub"))?;
    env.bao.write(&format!("sys/auth/{mount}"), json!({"type": "jwt"})).await?;
    env.bao
        .write(
            &format!("auth/{mount}/config"),
            json!({"jwt_validation_pubkeys": [public_key], "bound_issuer": "https://kubernetes.default.svc"}),
        )
        .await?;
    env.write_read_policy().await?;
    env.bao
        .write(
            &format!("auth/{mount}/role/app"),
            json!({
                "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"],
                "bound_subject": format!("system:serviceaccount:{}:app", env.namespace),
                "token_policies": [env.prefix], "token_ttl": "10m",
            }),
        )
        .await?;
    let value = env.secret_value("jwt");
    env.bao.kv2_put(&format!("{}/app", env.prefix), json!({"v": value})).await?;
    env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}})).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret",
            "auth": {"jwt": {"path": mount, "role": "app", "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "app"}}}}}}},
    }))
    .await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));

    // The same role with a JWT kept in a Secret (here one minted by the
    // TokenRequest API for audience vault).
    let sa: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["vault"], "expirationSeconds": 3600}}))?;
    let minted = sa.create_token_request("app", &Default::default(), &request).await?;
    let jwt = minted.status.and_then(|s| s.token).expect("token");
    env.create_secret("app-jwt", &[("jwt", &jwt)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault-secret-jwt"},
        "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret",
            "auth": {"jwt": {"path": mount, "role": "app", "secretRef": {"name": "app-jwt", "key": "jwt"}}}}}},
    }))
    .await?;
    env.apply(external_secret(
        "app-from-secret-jwt",
        "vault-secret-jwt",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app-from-secret-jwt").await?.get("v"), Some(&value));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn vault_namespace_and_open_bao_alias() -> anyhow::Result<()> {
    let env = TestEnv::new("bao-ns").await?;
    let namespace = env.prefix.clone();
    env.bao.write(&format!("sys/namespaces/{namespace}"), json!({})).await?;
    env.bao.write_in_namespace(&namespace, "sys/mounts/kv", json!({"type": "kv", "options": {"version": "2"}})).await?;
    let value = env.secret_value("ns");
    env.bao.write_in_namespace(&namespace, "kv/data/app", json!({"data": {"v": value}})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "team"},
        "spec": {"provider": {"openBao": {"server": env.bao.addr, "path": "kv", "namespace": namespace,
            "auth": {"tokenSecretRef": {"name": "vault-token"}}}}},
    }))
    .await?;
    env.apply(external_secret(
        "app",
        "team",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": "app", "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.cleanup().await;
    Ok(())
}

/// A store of another controller class (ESO's `spec.controller`) is left
/// to that controller with its ExternalSecrets: no status, no Secret. Its
/// class removed, vaultsync serves it at once (the store's watch).
#[tokio::test]
async fn a_store_of_another_controller_class_is_left_alone_until_handed_over() -> anyhow::Result<()> {
    let env = TestEnv::new("class").await?;
    let value = env.secret_value("class");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let store = |class: Option<&str>| {
        let mut store = json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": "classed"},
            "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret",
                "auth": {"tokenSecretRef": {"name": "vault-token"}}}}},
        });
        if let Some(class) = class {
            store["spec"]["controller"] = json!(class);
        }
        store
    };
    env.apply(store(Some("someone-else"))).await?;
    env.apply(external_secret(
        "app",
        "classed",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    // Long enough for a served store to sync several times over.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let es = env.external_secrets().get("app").await?;
    assert!(es.status.is_none(), "another class's ExternalSecret got a status: {:?}", es.status);
    let stores: kube::Api<vaultsync_api::SecretStore> = kube::Api::namespaced(env.client.clone(), &env.namespace);
    assert!(stores.get("classed").await?.status.is_none(), "another class's store got a status");
    assert!(env.secrets().get_opt("app").await?.is_none(), "no Secret for another class's store");

    // Applied again without the field (server-side apply drops it): the
    // class is gone, and vaultsync serves the store.
    env.apply(store(None)).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    env.cleanup().await;
    Ok(())
}
